//! The workbench application state (placeholder until the workbench lands).

use crate::train::Prepared;

/// Opens the workbench; until it exists, trains headless.
pub fn run_workbench_or_headless(p: Prepared, _theme: Option<String>) -> anyhow::Result<()> {
    crate::train::headless::run_headless(&p)
}
