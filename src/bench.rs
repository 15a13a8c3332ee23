//! `headsup bench`: training throughput, generation speed and peak memory, as JSON.

use clap::Args;

#[derive(Debug, Args, Clone)]
pub struct BenchArgs {
    #[command(flatten)]
    pub exp: crate::cli::ExperimentArgs,
    /// Timed training steps (after 3 warm-up steps).
    #[arg(long, default_value_t = 30)]
    pub steps: usize,
}

pub fn run(a: &BenchArgs) -> anyhow::Result<()> {
    let _ = a;
    anyhow::bail!("bench: not available yet")
}
