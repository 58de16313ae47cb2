//! Named failpoints for the fault-injection tests (`tests/compiler_faults.rs`).
//!
//! In a build with debug assertions (every test build) `hit` acts as
//! `CATRUST_FAILPOINTS` says (`abort`, `sleep(MS)`, `enospc`; see the
//! `catrust-failpoints` crate); in a release build it is an inlined `Ok(())` and the
//! variable is never read.
//!
//! | name | where |
//! | --- | --- |
//! | `output.after_file` | `output::write` staged one file (written, fsynced) |

pub use catrust_failpoints::hit;
