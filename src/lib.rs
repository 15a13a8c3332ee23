//! headsup: a terminal workbench for training and inspecting small GPT-style
//! language models. The binary (`src/main.rs`) and the tests use this library.

// Every unsafe operation sits in an `unsafe` block, even inside an `unsafe fn`,
// and every such block says why it is sound.
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod app;
pub mod bench;
pub mod cli;
pub mod commands;
pub mod config;
pub mod data;
pub mod errors;
pub mod eval;
pub mod experiment;
pub mod fsutil;
pub mod hash;
pub mod memory;
pub mod model;
pub mod runs;
pub mod sanitize;
pub mod serve;
pub mod tokenizer;
pub mod train;
pub mod tui;
pub mod ui;
pub mod viewer;
pub mod watch;
