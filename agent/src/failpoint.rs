//! Named failpoints for the fault-injection tests (`tests/faults.rs`).
//!
//! In a build with debug assertions (every test build) `hit` acts as
//! `CATRUST_FAILPOINTS` says (`abort`, `sleep(MS)`, `enospc`; see the
//! `catrust-failpoints` crate); in a release build it is an inlined `Ok(())` and the
//! variable is never read.
//!
//! | name | where |
//! | --- | --- |
//! | `apply.intent_recorded` | the write-ahead record is saved, no file written yet |
//! | `apply.tmp_written` | an anchor's temp file is written and fsynced, not renamed |
//! | `apply.renamed` | an anchor's temp file is renamed into place |
//! | `apply.refreshed` | the refresh command ran and succeeded |
//! | `apply.recorded` | the final record is saved (before any containerd restart) |
//! | `apply.containerd_restarted` | containerd was restarted, `restartPending` still set |
//! | `bundle.read_mid` | the bundle reader has read the first file of a version |

pub use catrust_failpoints::hit;
