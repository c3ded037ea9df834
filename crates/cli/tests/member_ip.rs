//! `firecamp member-ip`, the sidecar that holds a member's static IP, for real: in a network
//! namespace of its own (10.124.0.0/24 on one end of a veth pair, nothing leaves it) the IP is on the
//! interface while the sidecar runs and gone once it has been stopped with SIGTERM, as
//! Kubernetes stops it after the engine. Needs root (CI runs as root); fails, never skips.

use std::process::{Command, Stdio};

fn ok(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

#[test]
fn the_sidecar_holds_the_ip_until_sigterm_then_takes_it_off() {
    let ns = Netns(format!("fcip{}", std::process::id()));
    ok(&["ip", "netns", "add", &ns.0]);
    ok(&["ip", "-n", &ns.0, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1"]);
    ok(&["ip", "-n", &ns.0, "link", "set", "eth0", "up"]);
    // The node's own address: its subnet is where members' IPs may go.
    ok(&["ip", "-n", &ns.0, "address", "add", "10.124.0.2/24", "dev", "eth0"]);
    let dir = std::env::temp_dir().join(format!("firecamp-member-ip-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("static-ip"), "10.124.0.7\n").unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_firecamp"))
        .args(["member-ip", "--interface=eth0", &format!("--netns={}", ns.0), &format!("--config-dir={}", dir.display())])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // It says so once the IP is on: read its first line rather than guessing a delay.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
    assert!(line.contains("holding 10.124.0.7 on eth0"), "{line}");
    assert!(ok(&["ip", "-n", &ns.0, "-4", "-o", "address", "show", "dev", "eth0"]).contains("10.124.0.7/32"));

    ok(&["kill", "-TERM", &child.id().to_string()]);
    let status = child.wait().unwrap();
    assert!(status.success(), "member-ip exits cleanly on SIGTERM: {status:?}");
    assert!(!ok(&["ip", "-n", &ns.0, "-4", "-o", "address", "show", "dev", "eth0"]).contains("10.124.0.7"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `static-ip` written into the member's ConfigMap by someone who may edit it must not put
/// the node's own address, its gateway, IMDS or an address of another network on the node.
#[test]
fn the_sidecar_refuses_addresses_that_are_not_a_members_to_hold() {
    let ns = Netns(format!("fcipx{}", std::process::id()));
    ok(&["ip", "netns", "add", &ns.0]);
    ok(&["ip", "-n", &ns.0, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1"]);
    ok(&["ip", "-n", &ns.0, "link", "set", "eth0", "up"]);
    ok(&["ip", "-n", &ns.0, "address", "add", "10.125.0.2/24", "dev", "eth0"]);
    ok(&["ip", "-n", &ns.0, "route", "add", "default", "via", "10.125.0.1"]);
    let dir = std::env::temp_dir().join(format!("firecamp-member-ipx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (ip, why) in [
        ("169.254.169.254", "link-local"),
        ("10.125.0.2", "the node's own address"),
        ("10.125.0.1", "gateway"),
        ("10.99.0.7", "outside the interface's subnets (10.125.0.0/24)"),
        ("10.125.0.255", "broadcast"),
    ] {
        std::fs::write(dir.join("static-ip"), format!("{ip}\n")).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_firecamp"))
            .args(["member-ip", "--interface=eth0", &format!("--netns={}", ns.0), &format!("--config-dir={}", dir.display())])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{ip} was accepted: {err}");
        assert!(err.contains(&format!("refusing to put {ip} on eth0")) && err.contains(why), "{ip}: {err}");
        let addrs = ok(&["ip", "-n", &ns.0, "-4", "-o", "address", "show", "dev", "eth0"]);
        assert_eq!(addrs.matches("inet ").count(), 1, "{ip} reached the interface: {addrs}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
