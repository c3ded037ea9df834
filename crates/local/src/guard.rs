//! Who may use the local runtime's API (issue #12): a bearer token from a file only the daemon's
//! user (and the `firecamp` group, if it exists) can read; a loopback `Host`, so a page that
//! rebinds its own name to 127.0.0.1 is refused; and JSON bodies only, so a browser's "simple"
//! cross-site POST (text/plain, form) never reaches a handler.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use firecamp_api::{ApiError, ErrorCode, paths};
use rand::distr::{Alphanumeric, SampleString};

use crate::error::{LocalError, Result};

/// The group whose members may read the token (as Docker's `docker` group), when it exists.
pub const GROUP: &str = "firecamp";

/// The token the daemon accepts.
pub struct Token(String);

impl Token {
    /// Constant time in the token's contents (its length is public).
    fn matches(&self, given: &[u8]) -> bool {
        let want = self.0.as_bytes();
        want.len() == given.len() && want.iter().zip(given).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The token in `path`, created (48 random alphanumerics) when missing. The file belongs to the
/// daemon's user and is 0600, or 0640 with group `group` (`firecamp`, [`GROUP`]) when that
/// group exists; its mode and group are set again at every start.
pub fn load_or_create(path: &Path, group: &str) -> Result<Token> {
    let group = nix::unistd::Group::from_name(group).ok().flatten().map(|g| g.gid);
    let existing = std::fs::read_to_string(path).ok().map(|s| s.trim().to_string()).filter(|s| s.len() >= 32);
    let token = match existing {
        Some(t) => t,
        None => {
            let t = Alphanumeric.sample_string(&mut rand::rng(), 48);
            // Written whole under a temp name then renamed: a reader never sees half a token.
            let tmp = path.with_extension("tmp");
            let _ = std::fs::remove_file(&tmp);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(LocalError::io(format!("creating {}", tmp.display())))?;
            f.write_all(format!("{t}\n").as_bytes()).and_then(|_| f.sync_all()).map_err(LocalError::io(format!("writing {}", tmp.display())))?;
            std::fs::rename(&tmp, path).map_err(LocalError::io(format!("renaming {} to {}", tmp.display(), path.display())))?;
            t
        }
    };
    let mode = if group.is_some() { 0o640 } else { 0o600 };
    if let Some(gid) = group {
        std::os::unix::fs::chown(path, None, Some(gid.as_raw())).map_err(LocalError::io(format!("chgrp {GROUP} {}", path.display())))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(LocalError::io(format!("chmod {}", path.display())))?;
    Ok(Token(token))
}

/// The API serves plain HTTP: it listens on loopback only (there is no TLS to protect a token
/// on a network).
pub fn check_listen(addr: SocketAddr) -> Result<()> {
    if addr.ip().is_loopback() {
        return Ok(());
    }
    Err(LocalError::BadRequest(format!(
        "--listen {addr}: the local runtime's API serves plain HTTP (no TLS), so it listens on a loopback address only (127.0.0.1, ::1); \
         reach it from elsewhere through an SSH tunnel"
    )))
}

/// The embedded DNS server answers whoever reaches it (UDP, so also to a forged source address)
/// with the names and addresses of this machine's members, which only local processes can
/// reach: it listens on loopback only, like the API.
pub fn check_dns_listen(addr: SocketAddr) -> Result<()> {
    if addr.ip().is_loopback() {
        return Ok(());
    }
    Err(LocalError::BadRequest(format!(
        "--dns-listen {addr}: the local runtime's DNS server answers for this machine's members, whose addresses are loopback addresses \
         only local processes reach, so it listens on a loopback address only (127.0.0.1, ::1)"
    )))
}

/// Whether a `Host` header names this machine's loopback: `localhost`, 127.0.0.0/8 or `[::1]`,
/// with or without a port.
pub fn loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, port)) if port.is_empty() || port.strip_prefix(':').is_some_and(is_port) => ip,
            _ => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((n, port)) if is_port(port) => n,
            Some(_) => return false,
            None => host,
        }
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.parse::<u16>().is_ok()
}

fn refuse(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    (status, axum::Json(ApiError::new(code, message))).into_response()
}

/// Whether the request carries a body or says what its body is.
fn has_body(method: &Method, headers: &HeaderMap) -> bool {
    let length = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    headers.contains_key(header::CONTENT_TYPE)
        || headers.contains_key(header::TRANSFER_ENCODING)
        || length.is_some_and(|n| n > 0)
        || (length.is_none() && !matches!(*method, Method::GET | Method::HEAD | Method::DELETE | Method::POST | Method::OPTIONS))
}

fn is_json(headers: &HeaderMap) -> bool {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    ct.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

/// Host first (a rebinding page learns nothing, not even whether a token is wanted), then the
/// token (everything but /healthz), then the body's type.
pub async fn check(State(token): State<Arc<Token>>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| req.uri().authority().map(|a| a.as_str()));
    if !host.is_some_and(loopback_host) {
        return refuse(
            StatusCode::MISDIRECTED_REQUEST,
            ErrorCode::Forbidden,
            "the local runtime answers only requests for a loopback host (127.0.0.1, localhost, [::1])",
        );
    }
    if req.uri().path() != paths::HEALTH {
        let given = headers.get(header::AUTHORIZATION).and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
        if !given.is_some_and(|g| token.matches(g)) {
            let mut r = refuse(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, "a valid bearer token is required");
            r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer realm=\"firecamp-local\""));
            return r;
        }
    }
    if has_body(req.method(), headers) && !is_json(headers) {
        return refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, ErrorCode::Invalid, "request bodies must be Content-Type: application/json");
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for ok in ["127.0.0.1", "127.0.0.1:27040", "127.1.2.3:80", "localhost", "LOCALHOST:1", "[::1]", "[::1]:27040"] {
            assert!(loopback_host(ok), "{ok}");
        }
        for bad in ["evil.example", "evil.example:27040", "10.0.0.1:27040", "localhost.evil.example", "[::1]x", "127.0.0.1:x", "::1", ""] {
            assert!(!loopback_host(bad), "{bad}");
        }
    }

    #[test]
    fn token_compare() {
        let t = Token("abc".into());
        assert!(t.matches(b"abc"));
        assert!(!t.matches(b"abd") && !t.matches(b"ab") && !t.matches(b""));
    }

    /// Mode, owner and group of a file.
    fn stat(p: &Path) -> (u32, u32, u32) {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(p).unwrap();
        (m.mode() & 0o7777, m.uid(), m.gid())
    }

    /// What docs/local.md promises: 48 alphanumerics kept across starts, in a file of the
    /// daemon's user, 0600 without the group; the mode is set again at every start.
    #[test]
    fn token_file_is_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("api-token");
        let no_group = "firecamp-test-no-such-group";
        let a = load_or_create(&p, no_group).unwrap();
        let (uid, gid) = (nix::unistd::Uid::effective().as_raw(), nix::unistd::Gid::effective().as_raw());
        assert_eq!(stat(&p), (0o600, uid, gid));
        assert_eq!(a.as_str().len(), 48);
        assert!(a.as_str().bytes().all(|b| b.is_ascii_alphanumeric()), "{}", a.as_str());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(load_or_create(&p, no_group).unwrap().as_str(), a.as_str(), "kept");
        assert_eq!(stat(&p).0, 0o600, "the mode is set again");
        assert!(!dir.path().join("api-token.tmp").exists());
    }

    /// With the group: 0640 and that group, at the first start and when the group appears
    /// later; back to 0600 when it is gone. (Changing a file's group to one the user is not in
    /// needs root, as the daemon is; CI runs the tests as root.)
    #[test]
    fn token_file_is_readable_by_the_group_when_it_exists() {
        assert!(nix::unistd::Uid::effective().is_root(), "this test needs root (the daemon's user; CI runs tests as root)");
        let group = nix::unistd::Group::from_name("nogroup").unwrap().expect("Debian's group nogroup");
        let uid = nix::unistd::Uid::effective().as_raw();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("api-token");
        let a = load_or_create(&p, "nogroup").unwrap();
        assert_eq!(stat(&p), (0o640, uid, group.gid.as_raw()));
        let q = dir.path().join("later");
        load_or_create(&q, "firecamp-test-no-such-group").unwrap();
        assert_eq!(stat(&q).0, 0o600);
        load_or_create(&q, "nogroup").unwrap();
        assert_eq!(stat(&q), (0o640, uid, group.gid.as_raw()), "the group that appeared since");
        load_or_create(&p, "firecamp-test-no-such-group").unwrap();
        assert_eq!(stat(&p).0, 0o600, "the group is gone: nobody but the owner reads it");
        assert_eq!(load_or_create(&p, "nogroup").unwrap().as_str(), a.as_str());
    }

    #[test]
    fn listen_on_loopback_only() {
        assert!(check_listen("127.0.0.1:0".parse().unwrap()).is_ok());
        assert!(check_listen("[::1]:1".parse().unwrap()).is_ok());
        let e = check_listen("0.0.0.0:27040".parse().unwrap()).unwrap_err().to_string();
        assert!(e.contains("--listen 0.0.0.0:27040") && e.contains("TLS"), "{e}");
    }

    #[test]
    fn dns_on_loopback_only() {
        for ok in ["127.0.0.1:27053", "127.0.0.53:53", "[::1]:0"] {
            assert!(check_dns_listen(ok.parse().unwrap()).is_ok(), "{ok}");
        }
        for bad in ["0.0.0.0:27053", "10.1.2.3:53", "[::]:27053", "192.168.1.1:0"] {
            let e = check_dns_listen(bad.parse().unwrap()).unwrap_err().to_string();
            assert!(e.contains(&format!("--dns-listen {bad}")) && e.contains("loopback"), "{e}");
        }
    }
}
