//! headsup: a terminal workbench for training and inspecting small GPT-style
//! language models. The binary (`src/main.rs`) and the tests use this library.

pub mod app;
pub mod bench;
pub mod cli;
pub mod config;
pub mod data;
pub mod fsutil;
pub mod memory;
pub mod model;
pub mod runs;
pub mod sanitize;
pub mod serve;
pub mod tokenizer;
pub mod train;
pub mod ui;
pub mod watch;
