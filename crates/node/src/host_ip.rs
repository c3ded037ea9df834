//! Adding and removing one IPv4 /32 on an interface, idempotently.

use std::net::Ipv4Addr;
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum HostIpError {
    #[error("cannot run {program}: {source}")]
    Spawn { program: String, source: std::io::Error },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed { command: String, status: String, stderr: String },
    #[error("interface name {0:?} is not valid")]
    BadInterface(String),
    #[error("refusing to put {ip} on {interface}: {why}")]
    Refused { ip: Ipv4Addr, interface: String, why: String },
}

/// The host's addresses, through `ip`; optionally inside a named network namespace (tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostIp {
    program: String,
    netns: Option<String>,
}

impl Default for HostIp {
    fn default() -> Self {
        HostIp { program: "ip".into(), netns: None }
    }
}

impl HostIp {
    pub fn new() -> Self {
        Self::default()
    }

    /// Acts inside the network namespace `name` (`ip -n name …`).
    pub fn in_netns(name: impl Into<String>) -> Self {
        HostIp { netns: Some(name.into()), ..Self::default() }
    }

    /// Puts `ip`/32 on `interface`. Adding an address that is there already is fine.
    pub fn add(&self, interface: &str, ip: Ipv4Addr) -> Result<(), HostIpError> {
        check_interface(interface)?;
        // `replace` adds, or succeeds unchanged when the address is already there.
        self.run(&["-4", "address", "replace", &format!("{ip}/32"), "dev", interface])?;
        Ok(())
    }

    /// Puts a member's static IP on `interface` after checking it is one a member may hold
    /// there ([`static_ip_problem`]): the IP comes from a ConfigMap, and whoever can write that
    /// must not get to claim the node's own address, its gateway, the API server's or IMDS's.
    pub fn add_member_ip(&self, interface: &str, ip: Ipv4Addr) -> Result<(), HostIpError> {
        check_interface(interface)?;
        let nets = networks(&self.run(&["-4", "-o", "address", "show", "dev", interface])?);
        let mut forbidden: Vec<Ipv4Addr> = default_gateway(&self.run(&["-4", "route", "show", "default"])?).into_iter().collect();
        // The API server as pods reach it.
        forbidden.extend(std::env::var("KUBERNETES_SERVICE_HOST").ok().and_then(|h| h.parse::<Ipv4Addr>().ok()));
        if let Some(why) = static_ip_problem(ip, &nets, &forbidden) {
            return Err(HostIpError::Refused { ip, interface: interface.into(), why });
        }
        self.add(interface, ip)
    }

    /// Takes `ip`/32 off `interface`. Removing an address that is not there is fine.
    pub fn remove(&self, interface: &str, ip: Ipv4Addr) -> Result<(), HostIpError> {
        check_interface(interface)?;
        if !self.has(interface, ip)? {
            return Ok(());
        }
        match self.run(&["-4", "address", "del", &format!("{ip}/32"), "dev", interface]) {
            Ok(_) => Ok(()),
            // Gone between the look and the delete (a concurrent stop hook): still fine.
            Err(_) if !self.has(interface, ip)? => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Whether `interface` holds `ip`.
    pub fn has(&self, interface: &str, ip: Ipv4Addr) -> Result<bool, HostIpError> {
        check_interface(interface)?;
        let out = self.run(&["-4", "-o", "address", "show", "dev", interface])?;
        Ok(addresses(&out).contains(&ip))
    }

    /// The interface of the default route: where a host-network member's IP goes.
    pub fn default_interface(&self) -> Result<String, HostIpError> {
        let out = self.run(&["-4", "route", "show", "default"])?;
        default_route_interface(&out).ok_or_else(|| HostIpError::Failed {
            command: "ip -4 route show default".into(),
            status: "no default route".into(),
            stderr: "give the interface with --interface".into(),
        })
    }

    fn run(&self, args: &[&str]) -> Result<String, HostIpError> {
        let mut cmd = Command::new(&self.program);
        if let Some(ns) = &self.netns {
            cmd.args(["-n", ns]);
        }
        cmd.args(args);
        let out = cmd.output().map_err(|source| HostIpError::Spawn { program: self.program.clone(), source })?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            let mut command = self.program.clone();
            if let Some(ns) = &self.netns {
                command.push_str(&format!(" -n {ns}"));
            }
            command.push(' ');
            command.push_str(&args.join(" "));
            Err(HostIpError::Failed { command, status: out.status.to_string(), stderr: String::from_utf8_lossy(&out.stderr).trim().to_string() })
        }
    }
}

/// Linux interface names: 1–15 bytes, no `/`, no whitespace (and never an option to `ip`).
fn check_interface(name: &str) -> Result<(), HostIpError> {
    let ok = !name.is_empty() && name.len() <= 15 && !name.starts_with('-') && name.bytes().all(|b| b.is_ascii_graphic() && b != b'/');
    if ok { Ok(()) } else { Err(HostIpError::BadInterface(name.into())) }
}

/// The IPv4 addresses in `ip -4 -o address show` output
/// (`2: eth0    inet 10.0.1.5/32 scope global eth0\ …`).
pub fn addresses(output: &str) -> Vec<Ipv4Addr> {
    output
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "inet")?;
            words.next()?.split('/').next()?.parse().ok()
        })
        .collect()
}

/// The IPv4 addresses with their prefix lengths in `ip -4 -o address show` output.
pub fn networks(output: &str) -> Vec<(Ipv4Addr, u8)> {
    output
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "inet")?;
            let (addr, len) = words.next()?.split_once('/')?;
            Some((addr.parse().ok()?, len.parse().ok().filter(|l| *l <= 32)?))
        })
        .collect()
}

/// The gateway of the first default route (`default via 10.0.1.1 dev ens5 …`).
pub fn default_gateway(output: &str) -> Option<Ipv4Addr> {
    output.lines().filter(|l| l.starts_with("default")).find_map(|l| {
        let mut words = l.split_whitespace();
        words.find(|w| *w == "via")?;
        words.next()?.parse().ok()
    })
}

/// Why `ip` may not be a member's address on an interface holding `nets`: it must lie inside
/// one of the interface's own subnets (as a VPC's secondary private IP lies in its ENI's
/// subnet), be neither that subnet's network nor broadcast address, nor an address the node
/// holds as its own (anything but a member's /32), nor one of `forbidden` (the gateway, the API
/// server); never loopback, link-local (IMDS is 169.254.169.254), multicast or unspecified.
pub fn static_ip_problem(ip: Ipv4Addr, nets: &[(Ipv4Addr, u8)], forbidden: &[Ipv4Addr]) -> Option<String> {
    if ip.is_loopback() || ip.is_link_local() || ip.is_multicast() || ip.is_unspecified() || ip.is_broadcast() {
        return Some("loopback, link-local, multicast and unspecified addresses are never a member's".into());
    }
    if forbidden.contains(&ip) {
        return Some("it is the node's gateway or the API server's address".into());
    }
    if nets.iter().any(|(a, len)| *a == ip && *len < 32) {
        return Some("it is the node's own address".into());
    }
    let mask = |len: u8| if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
    let subnet = nets.iter().filter(|(_, len)| *len < 31).find(|(a, len)| u32::from(*a) & mask(*len) == u32::from(ip) & mask(*len));
    match subnet {
        None => {
            let mine: Vec<String> = nets.iter().filter(|(_, l)| *l < 31).map(|(a, l)| format!("{}/{l}", Ipv4Addr::from(u32::from(*a) & mask(*l)))).collect();
            Some(format!("it is outside the interface's subnets ({})", if mine.is_empty() { "none".to_string() } else { mine.join(", ") }))
        }
        Some((a, len)) => {
            let net = u32::from(*a) & mask(*len);
            let host = u32::from(ip) & !mask(*len);
            (host == 0 || host == !mask(*len)).then(|| format!("it is the network or broadcast address of {}/{len}", Ipv4Addr::from(net)))
        }
    }
}

/// The `dev` of the first default route in `ip -4 route show default` output
/// (`default via 10.0.1.1 dev ens5 proto dhcp src 10.0.1.4 metric 100`).
pub fn default_route_interface(output: &str) -> Option<String> {
    output.lines().filter(|l| l.starts_with("default")).find_map(|l| {
        let mut words = l.split_whitespace();
        words.find(|w| *w == "dev")?;
        words.next().map(String::from)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_addresses_from_ip_output() {
        let out = "2: eth0    inet 10.0.1.4/24 brd 10.0.1.255 scope global eth0\\       valid_lft forever preferred_lft forever\n\
                   2: eth0    inet 10.0.1.50/32 scope global eth0\\       valid_lft forever preferred_lft forever\n";
        assert_eq!(addresses(out), vec![Ipv4Addr::new(10, 0, 1, 4), Ipv4Addr::new(10, 0, 1, 50)]);
        assert!(addresses("").is_empty());
    }

    #[test]
    fn a_member_ip_lies_in_the_nodes_subnet_and_is_nobody_elses() {
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        let out = "2: eth0    inet 10.0.1.4/24 brd 10.0.1.255 scope global eth0\\ x\n2: eth0    inet 10.0.1.50/32 scope global eth0\\ x\n";
        let nets = networks(out);
        assert_eq!(nets, vec![(ip("10.0.1.4"), 24), (ip("10.0.1.50"), 32)]);
        let forbidden = [ip("10.0.1.1"), ip("10.0.1.9")];
        assert_eq!(static_ip_problem(ip("10.0.1.77"), &nets, &forbidden), None);
        // A member's own /32, already there (a restarted member-init): fine.
        assert_eq!(static_ip_problem(ip("10.0.1.50"), &nets, &forbidden), None);
        for (bad, why) in [
            ("169.254.169.254", "link-local"),
            ("127.0.0.1", "loopback"),
            ("224.0.0.1", "multicast"),
            ("0.0.0.0", "unspecified"),
            ("10.0.1.4", "the node's own"),
            ("10.0.1.1", "gateway"),
            ("10.0.1.9", "API server"),
            ("10.0.2.7", "outside the interface's subnets (10.0.1.0/24)"),
            ("10.0.1.0", "network or broadcast address of 10.0.1.0/24"),
            ("10.0.1.255", "network or broadcast"),
        ] {
            let p = static_ip_problem(ip(bad), &nets, &forbidden).unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(p.contains(why), "{bad}: {p}");
        }
        assert!(static_ip_problem(ip("10.0.1.77"), &[], &[]).unwrap().contains("(none)"));
        assert_eq!(default_gateway("default via 10.0.1.1 dev ens5 proto dhcp\n"), Some(ip("10.0.1.1")));
        assert_eq!(default_gateway(""), None);
    }

    #[test]
    fn finds_the_default_route_interface() {
        assert_eq!(default_route_interface("default via 10.0.1.1 dev ens5 proto dhcp src 10.0.1.4 metric 100\n").as_deref(), Some("ens5"));
        assert_eq!(default_route_interface("10.0.0.0/8 dev eth1 scope link\n"), None);
    }

    #[test]
    fn refuses_names_that_are_not_interfaces() {
        for bad in ["", "-n", "a/b", "eth 0", "sixteen-chars-xx"] {
            assert!(check_interface(bad).is_err(), "{bad:?}");
        }
        assert!(check_interface("eth0").is_ok());
        assert!(check_interface("ens5").is_ok());
    }
}
