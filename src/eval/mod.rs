//! Evaluation of completions against references: the text-similarity
//! metrics (the `eval --references` command comes with checkpoint loading).

pub mod metrics;
