//! headsup: a terminal workbench for training and inspecting small GPT-style
//! language models. The binary (`src/main.rs`) and the tests use this library.

pub mod app;
pub mod bench;
pub mod cli;
pub mod commands;
pub mod config;
pub mod data;
pub mod errors;
pub mod experiment;
pub mod fsutil;
pub mod memory;
pub mod model;
pub mod sanitize;
pub mod tokenizer;
pub mod train;
pub mod ui;
