//! `catrust`: the command line over the `catrust` library. It parses flags, reads
//! and writes files, picks the exit code, and leaves every decision to the library.
#![forbid(unsafe_code)]

mod cli;

fn main() {
    std::process::exit(cli::main());
}
