//! The unprivileged OS user each engine's servers run as when the daemon is root (issue #12):
//! the one Debian's package creates, looked up at each start.

use firecamp_core::EngineKind;

use crate::error::{LocalError, Result};

/// The engine's OS user and the Debian command that creates it.
pub fn engine_user(engine: EngineKind) -> (&'static str, &'static str) {
    match engine {
        EngineKind::Postgresql => ("postgres", "apt-get install postgresql"),
        EngineKind::Redis => ("redis", "apt-get install redis-server"),
        EngineKind::Zookeeper => ("zookeeper", "apt-get install zookeeper"),
        // No Debian package: scripts/setup.d/30-local.sh creates the user.
        EngineKind::Kafka => ("kafka", "adduser --system --group kafka"),
        EngineKind::Mariadb => ("mysql", "apt-get install mariadb-server"),
        // No Debian package: scripts/setup.d/30-local.sh creates the user.
        EngineKind::Cassandra => ("cassandra", "adduser --system --group cassandra"),
    }
}

/// (uid, gid) of the engine's user through `find` (name → uid, gid); a missing user, or one
/// that is root in disguise (uid 0), is refused naming the package that creates it.
pub fn lookup(engine: EngineKind, find: impl Fn(&str) -> Option<(u32, u32)>) -> Result<(u32, u32)> {
    let (user, package) = engine_user(engine);
    match find(user) {
        Some((uid, gid)) if uid != 0 => Ok((uid, gid)),
        Some(_) => Err(LocalError::Unavailable(format!("the OS user `{user}` has uid 0; {engine} servers must run unprivileged"))),
        None => Err(LocalError::Unavailable(format!(
            "{engine} servers run as the unprivileged OS user `{user}`, which does not exist (Debian: `{package}` creates it)"
        ))),
    }
}

/// The system's users (/etc/passwd, NSS).
pub fn system(name: &str) -> Option<(u32, u32)> {
    nix::unistd::User::from_name(name).ok().flatten().map(|u| (u.uid.as_raw(), u.gid.as_raw()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_user_names_the_package_that_creates_it() {
        for (engine, user, package) in [
            (EngineKind::Redis, "`redis`", "apt-get install redis-server"),
            (EngineKind::Zookeeper, "`zookeeper`", "apt-get install zookeeper"),
            (EngineKind::Kafka, "`kafka`", "adduser --system --group kafka"),
        ] {
            let e = lookup(engine, |_| None).unwrap_err().to_string();
            assert!(e.contains(user) && e.contains(package), "{e}");
        }
    }

    #[test]
    fn root_is_never_an_engine_user() {
        let e = lookup(EngineKind::Redis, |_| Some((0, 0))).unwrap_err().to_string();
        assert!(e.contains("uid 0"), "{e}");
        assert_eq!(lookup(EngineKind::Redis, |n| (n == "redis").then_some((102, 105))).unwrap(), (102, 105));
    }
}
