//! The static IP really lands on an interface and really leaves it, in network namespaces this
//! test makes: ns A holds the IP on one end of a veth pair, ns B connects to it from the other
//! end. Only 10.x addresses inside these namespaces; nothing leaves them. Needs root (CI runs as
//! root); it fails, never skips, without it.

use std::net::Ipv4Addr;
use std::process::Command;

use firecamp_node::HostIp;

fn sh(args: &[&str]) -> std::process::Output {
    Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn ok(args: &[&str]) {
    let out = sh(args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Two namespaces joined by a veth pair; removed on drop, whatever the test did.
struct Pair {
    a: String,
    b: String,
}

impl Pair {
    fn new() -> Pair {
        let id = std::process::id();
        let p = Pair { a: format!("fcn{id}a"), b: format!("fcn{id}b") };
        ok(&["ip", "netns", "add", &p.a]);
        ok(&["ip", "netns", "add", &p.b]);
        ok(&["ip", "-n", &p.a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", &p.b]);
        ok(&["ip", "-n", &p.a, "address", "add", "10.123.0.1/24", "dev", "va"]);
        ok(&["ip", "-n", &p.b, "address", "add", "10.123.0.2/24", "dev", "vb"]);
        for (ns, dev) in [(&p.a, "va"), (&p.b, "vb")] {
            ok(&["ip", "-n", ns, "link", "set", dev, "up"]);
            ok(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        p
    }

    /// What a TCP connect from B to `ip`:9 gets, bounded to 3 s: "refused" proves a host holds
    /// the IP (its kernel answered with a reset, no listener needed); anything else does not.
    fn connect_from_b(&self, ip: Ipv4Addr) -> String {
        // A failed lookup is cached in B's neighbour table: forget it so each probe asks anew.
        ok(&["ip", "-n", &self.b, "neigh", "flush", "all"]);
        let script = format!("exec 3<>/dev/tcp/{ip}/9 && echo connected");
        let out = sh(&["ip", "netns", "exec", &self.b, "timeout", "3", "bash", "-c", &script]);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if text.contains("Connection refused") || text.contains("connected") { "reachable".into() } else { format!("unreachable ({})", text.trim()) }
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = sh(&["ip", "netns", "del", &self.a]);
        let _ = sh(&["ip", "netns", "del", &self.b]);
    }
}

#[test]
fn a_member_ip_is_added_reachable_removed_and_gone() {
    let uid = String::from_utf8_lossy(&sh(&["id", "-u"]).stdout).trim().to_string();
    assert_eq!(uid, "0", "this test makes network namespaces and needs root (CI runs as root)");
    let pair = Pair::new();
    let host = HostIp::in_netns(&pair.a);
    let ip = Ipv4Addr::new(10, 123, 0, 50);

    assert!(!host.has("va", ip).unwrap());
    assert!(pair.connect_from_b(ip).starts_with("unreachable"), "the IP answers before it was added");

    host.add("va", ip).unwrap();
    host.add("va", ip).unwrap(); // idempotent
    assert!(host.has("va", ip).unwrap());
    assert_eq!(pair.connect_from_b(ip), "reachable");

    host.remove("va", ip).unwrap();
    host.remove("va", ip).unwrap(); // idempotent
    assert!(!host.has("va", ip).unwrap());
    let after = pair.connect_from_b(ip);
    assert!(after.starts_with("unreachable"), "still answers after removal: {after}");
    // The interface's own address is untouched.
    assert!(host.has("va", Ipv4Addr::new(10, 123, 0, 1)).unwrap());
}

#[test]
fn a_missing_interface_is_an_error_with_context() {
    let err = HostIp::new().add("fc-no-such0", Ipv4Addr::new(10, 123, 9, 9)).unwrap_err();
    assert!(err.to_string().contains("fc-no-such0"), "{err}");
}
