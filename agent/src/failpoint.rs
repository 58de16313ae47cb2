//! Named failpoints for the fault-injection tests (`tests/faults.rs`).
//!
//! Only with the test-only cargo feature `failpoints` (off by default) does `hit` do
//! anything: it then acts as `CATRUST_FAILPOINTS` says (see the `catrust-failpoints`
//! crate: `abort`, `sleep(MS)`, `enospc`). Without the feature it is an inlined
//! `Ok(())`, the crate is not linked and the variable is never read. With the feature
//! and debug assertions off (a release build) the agent does not compile.
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

#[cfg(all(feature = "failpoints", not(debug_assertions)))]
compile_error!("the `failpoints` feature is for test builds only, never for a release build");

#[cfg(feature = "failpoints")]
pub fn hit(name: &str) -> std::io::Result<()> {
    catrust_failpoints::hit(name)
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) -> std::io::Result<()> {
    Ok(())
}
