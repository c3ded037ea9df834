//! Integration tests that prove the test bed (issue 3) and the parts it adds (cert-manager).
//! They need a running bed (`testbed/bed build && testbed/bed up`) and fail, never skip,
//! without one.

mod cert_manager;
mod nodes;
mod statefulset;
mod storage;
mod util;
