//! Runs the benchmark harness without the `skiff` binary's wiring:
//! `cargo run --release -p skiff-bench --example bench -- --skiff-bin target/release/skiff --quick`.

use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "bench", about = "Skiff benchmark harness")]
struct Cli {
    #[command(flatten)]
    bench: skiff_bench::BenchOptions,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    skiff_bench::run(Cli::parse().bench).await
}
