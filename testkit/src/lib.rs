//! `flash-testkit`: the pieces every Flash test suite shares, in a crate that depends on no other
//! Flash crate.
//!
//! Most shared test machinery lives in `flash-conformance`, beside the servers it starts. These
//! pieces are needed by the load tester's own tests too, and the load tester shares nothing
//! with what it measures (no `flash-common`, no server): so they live here, with no dependency
//! but the standard library, and `flash-conformance` re-exports them.
//!
//! - [`wait`]: poll for a condition with a deadline, the one way a Flash test waits.
//! - [`browser`]: load a page in headless Chromium and read back the DOM its scripts left.
//! - [`script`]: write an executable script that another thread's fork cannot make "busy".
//! - [`child`]: a child process killed and reaped when the test ends, however it ends.

pub mod browser;
pub mod child;
pub mod script;
pub mod wait;
