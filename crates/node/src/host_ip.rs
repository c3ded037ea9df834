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
