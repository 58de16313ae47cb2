//! `catrust-agent`: skeleton; the agent lands with its own issue.
#![forbid(unsafe_code)]

fn main() {
    eprintln!(
        "catrust-agent {}: not implemented yet",
        env!("CARGO_PKG_VERSION")
    );
    let _ = catrust_bundle::SCHEMA_VERSION;
    std::process::exit(2);
}
