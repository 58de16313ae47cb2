//! The agent's bundle reader as a library, for the fuzz target; the binary is `main.rs`.
pub mod bundle_dir;
pub mod failpoint;
