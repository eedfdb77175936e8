//! A deterministic, host-only simulation of the change log at internet scale (issue 20): the
//! deployment ([`model`]), the designs compared ([`design`]), the event engine and its
//! measurements ([`sim`]) and the Markdown tables `cargo run -p lumiqtrace-sim --release` prints
//! ([`report`]). The model and its sources: `docs/change-log-at-scale.md`.

pub mod design;
pub mod model;
pub mod report;
pub mod sim;
