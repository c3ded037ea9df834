//! ZooKeeper: the `srvr` four-letter word reports `Mode: leader|follower|standalone` once the
//! member serves (in a quorum, or alone).
//!
//! FireCamp's members serve clients over TLS (`secureClientPort`), their plain port closed unless
//! the service allows it: with [`Target::with_tls`] the word goes over TLS, the member's
//! certificate verified against the service's CA under the given name ([`crate::tls`]). Four-letter
//! words need no SASL login (ZooKeeper answers them before any session), and FireCamp allows only
//! the read-only ones (`srvr`, `ruok`, `mntr`, `conf`, `isro`).

pub mod ensemble;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::tls::Connector;
use crate::{ProbeError, Role, Target, within};

/// Sends a four-letter word and returns the whole answer (the server closes the connection);
/// over TLS when the target says so.
pub async fn four_letter_word(t: &Target, word: &str) -> Result<String, ProbeError> {
    within(t, async {
        // Unusable TLS settings are refused before connecting.
        let connector = match &t.tls {
            Some(s) => Some(Connector::new(s).map_err(|e| ProbeError::tls_settings(t, e))?),
            None => None,
        };
        let tcp = TcpStream::connect((t.host.as_str(), t.port)).await.map_err(|e| ProbeError::failed(t, e))?;
        match connector {
            None => exchange(t, tcp, word).await,
            Some(c) => {
                let tls = c.handshake(tcp).await.map_err(|e| ProbeError::handshake(t, &e))?;
                exchange(t, tls, word).await
            }
        }
    })
    .await
}

/// Writes the word and reads until the server closes. ZooKeeper may close a TLS connection
/// without `close_notify`; the answer read before that is whole all the same.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(t: &Target, mut s: S, word: &str) -> Result<String, ProbeError> {
    s.write_all(word.as_bytes()).await.map_err(|e| ProbeError::failed(t, e))?;
    s.flush().await.map_err(|e| ProbeError::failed(t, e))?;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => break,
            Err(e) => return Err(ProbeError::failed(t, e)),
        }
    }
    String::from_utf8(out).map_err(|_| ProbeError::unexpected(t, format!("an answer to {word} that is not UTF-8")))
}

/// The role in a `srvr` answer; `None` when the member does not serve (no quorum yet).
pub fn parse_mode(srvr: &str) -> Option<Role> {
    let mode = srvr.lines().find_map(|l| l.strip_prefix("Mode: "))?.trim();
    match mode {
        "leader" => Some(Role::Leader),
        "follower" => Some(Role::Follower),
        "standalone" => Some(Role::Standalone),
        _ => None,
    }
}

/// `leader`, `follower` or `standalone`, from `srvr`.
pub async fn role(t: &Target) -> Result<Role, ProbeError> {
    let answer = four_letter_word(t, "srvr").await?;
    parse_mode(&answer).ok_or_else(|| {
        let first = answer.lines().next().unwrap_or("(nothing)").to_string();
        ProbeError::unexpected(t, format!("not serving: {first}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_mode() {
        let a = "Zookeeper version: 3.8.0\nLatency min/avg/max: 0/0.0/0\nMode: follower\nNode count: 5\n";
        assert_eq!(parse_mode(a), Some(Role::Follower));
        assert_eq!(parse_mode("This ZooKeeper instance is not currently serving requests\n"), None);
    }
}
