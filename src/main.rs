//! `headsup`: parse the command line and dispatch; errors become one line and
//! a non-zero exit.

use std::io::Write;

fn main() {
    headsup::memory::tune_allocator();
    if let Err(e) = headsup::cli::main() {
        // One line: the chain of causes joined, as anyhow's alternate form does.
        // Escaped: messages quote file names, keys and values from user data,
        // which must not reach the terminal as control sequences.
        let msg = format!("{e:#}").replace('\n', " ");
        // Not eprintln!, which panics when stderr is gone.
        let _ = writeln!(
            std::io::stderr(),
            "error: {}",
            headsup::sanitize::escape(&msg)
        );
        std::process::exit(1);
    }
}
