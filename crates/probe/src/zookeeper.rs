//! ZooKeeper: the `srvr` four-letter word reports `Mode: leader|follower|standalone` once the
//! member serves (in a quorum, or alone).

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{ProbeError, Role, Target, within};

/// Sends a four-letter word and returns the whole answer (the server closes the connection).
pub async fn four_letter_word(t: &Target, word: &str) -> Result<String, ProbeError> {
    within(t, async {
        let mut s = TcpStream::connect(t.addr()).await.map_err(|e| ProbeError::failed(t, e))?;
        s.write_all(word.as_bytes()).await.map_err(|e| ProbeError::failed(t, e))?;
        let mut out = String::new();
        s.read_to_string(&mut out).await.map_err(|e| ProbeError::failed(t, e))?;
        Ok(out)
    })
    .await
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
