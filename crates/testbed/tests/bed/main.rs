//! Integration tests that prove the test bed (issue 3). They need a running bed
//! (`testbed/bed build && testbed/bed up`) and fail, never skip, without one.

mod nodes;
mod statefulset;
mod storage;
mod util;
