//! `cargo run -p lumiqtrace-openapi`: writes `public/openapi.json` from the types.

use std::path::Path;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = root.join(lumiqtrace_openapi::OUTPUT);
    std::fs::write(&path, lumiqtrace_openapi::render())?;
    println!("wrote {}", lumiqtrace_openapi::OUTPUT);
    Ok(())
}
