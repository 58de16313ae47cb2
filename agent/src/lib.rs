//! The library part of `catrust-agent`: only its command line ([`cli`]), so the
//! DaemonSet's rendered `args` can be checked against it. Everything else is the binary.
#![forbid(unsafe_code)]

pub mod cli;
