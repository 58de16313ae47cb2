//! `argocd-catrust-plugin`: skeleton; the plugin lands with its own issue.
#![forbid(unsafe_code)]

fn main() {
    eprintln!(
        "argocd-catrust-plugin {}: not implemented yet",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
