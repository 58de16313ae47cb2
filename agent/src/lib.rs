//! The library part of `catrust-agent`: its command line ([`cli`]), so the DaemonSet's
//! rendered `args` can be checked against it, and its bundle reader ([`bundle_dir`], with
//! the failpoints it hits), for the fuzz target. Everything else is the binary.
#![forbid(unsafe_code)]

pub mod bundle_dir;
pub mod cli;
pub mod failpoint;
