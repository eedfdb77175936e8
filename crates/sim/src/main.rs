//! Prints the standard scenario's Markdown tables: `cargo run -p lumiqtrace-sim --release
//! [seed]` (default seed 20). Same seed, same output.

use lumiqtrace_sim::report::standard;
use lumiqtrace_sim::sim::Params;

fn main() {
    let seed = std::env::args()
        .nth(1)
        .map_or(Ok(20), |a| a.parse::<u64>())
        .unwrap_or_else(|e| {
            eprintln!("usage: lumiqtrace-sim [seed]: {e}");
            std::process::exit(2)
        });
    print!("{}", standard(seed, &[1, 10, 100], &Params::default()));
}
