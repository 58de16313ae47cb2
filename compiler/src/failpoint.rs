//! Named failpoints for the fault-injection tests (`tests/compiler_faults.rs`).
//!
//! Only with the test-only cargo feature `failpoints` (off by default) does `hit` do
//! anything: it then acts as `CATRUST_FAILPOINTS` says (`abort`, `sleep(MS)`, `enospc`;
//! see the `catrust-failpoints` crate). This is the one place the library reads the
//! environment, and only in that test build. Without the feature `hit` is an inlined
//! `Ok(())` and the crate is not linked; with the feature and debug assertions off (a
//! release build) `catrust` does not compile.
//!
//! | name | where |
//! | --- | --- |
//! | `output.after_file` | `output::write` staged one file (written, fsynced) |

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
