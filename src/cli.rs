//! Command line: clap subcommands and flags.
