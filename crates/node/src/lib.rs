//! Node-side helpers of `firecamp member-init`: put a member's static IP on the host interface
//! before the engine starts, and take it off when the member stops. Needs only NET_ADMIN.
//!
//! It shells out to `ip` (iproute2) rather than speaking netlink itself: FireCamp's image already
//! ships iproute2, `ip` is what an operator would type to check or undo it, and it keeps the
//! async netlink stack (and its unsafe socket code) out of FireCamp for two small operations.

pub mod host_ip;

pub use host_ip::{HostIp, HostIpError};
