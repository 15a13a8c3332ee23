//! `headsup`: parse the command line and dispatch; errors become one line and
//! a non-zero exit.

fn main() {
    if let Err(e) = headsup::cli::main() {
        // One line: the chain of causes joined, as anyhow's alternate form does.
        let msg = format!("{e:#}").replace('\n', " ");
        eprintln!("error: {msg}");
        std::process::exit(1);
    }
}
