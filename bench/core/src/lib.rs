//! bench/core: empty library; the benchmark itself lives in `benches/verify.rs`.
