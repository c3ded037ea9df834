//! Kafka (KRaft): the active controller of the metadata quorum, through Kafka's own protocol
//! (`DescribeQuorum` for `__cluster_metadata`), which a broker forwards to the controllers.
//!
//! FireCamp's brokers listen with SASL_SSL only: with [`Target::with_tls`] the connection is
//! TLS (the member's certificate verified against the service's CA under the given name,
//! [`crate::tls`]), then SASL PLAIN as the given user with the target's password, which is sent
//! only inside TLS. Only the handful of requests needed are spoken: `SaslHandshake` v1,
//! `SaslAuthenticate` v0 and `DescribeQuorum` v0 (a flexible version: compact strings and
//! arrays, tagged fields).

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::tls::Connector;
use crate::{ProbeError, Role, Target, within};

const SASL_HANDSHAKE: i16 = 17;
const SASL_AUTHENTICATE: i16 = 36;
const DESCRIBE_QUORUM: i16 = 55;
const METADATA_TOPIC: &str = "__cluster_metadata";
/// Responses larger than this are not ours to read (a quorum's description is tiny).
const MAX_RESPONSE: usize = 1 << 20;

/// The node id of the quorum's leader, the active controller, as the member sees it.
pub async fn quorum_leader(t: &Target, user: &str) -> Result<i32, ProbeError> {
    within(t, async {
        let connector = match &t.tls {
            Some(s) => Some(Connector::new(s).map_err(|e| ProbeError::tls_settings(t, e))?),
            None => None,
        };
        let tcp = TcpStream::connect((t.host.as_str(), t.port)).await.map_err(|e| ProbeError::failed(t, e))?;
        match connector {
            None => leader_over(t, tcp, user).await,
            Some(c) => {
                let tls = c.handshake(tcp).await.map_err(|e| ProbeError::handshake(t, &e))?;
                leader_over(t, tls, user).await
            }
        }
    })
    .await
}

/// `leader` when member `node_id` is the active controller, else `follower` (a voter).
pub async fn role(t: &Target, user: &str, node_id: u32) -> Result<Role, ProbeError> {
    let leader = quorum_leader(t, user).await?;
    Ok(if i64::from(leader) == i64::from(node_id) { Role::Leader } else { Role::Follower })
}

async fn leader_over<S: AsyncRead + AsyncWrite + Unpin>(t: &Target, mut s: S, user: &str) -> Result<i32, ProbeError> {
    let password = t.password.as_deref().ok_or_else(|| ProbeError::failed(t, "no password to log in with"))?;
    // SaslHandshake v1: the mechanism.
    let mut body = Vec::new();
    put_string(&mut body, "PLAIN");
    let r = call(t, &mut s, SASL_HANDSHAKE, 1, 1, false, &body).await?;
    let mut rd = Reader::new(t, &r);
    let code = rd.i16()?;
    if code != 0 {
        return Err(ProbeError::unexpected(t, format!("SASL PLAIN refused (error {code})")));
    }
    // SaslAuthenticate v0: `\0user\0password`.
    let token = format!("\0{user}\0{password}");
    let mut body = Vec::new();
    body.extend_from_slice(&(token.len() as i32).to_be_bytes());
    body.extend_from_slice(token.as_bytes());
    let r = call(t, &mut s, SASL_AUTHENTICATE, 0, 2, false, &body).await?;
    let mut rd = Reader::new(t, &r);
    let code = rd.i16()?;
    if code != 0 {
        // The broker's message says why (never the password).
        let message = rd.string().unwrap_or_default();
        return Err(ProbeError::Failed { addr: t.addr(), message: format!("login as {user} refused (error {code}): {message}") });
    }
    let r = call(t, &mut s, DESCRIBE_QUORUM, 0, 3, true, &describe_quorum_body()).await?;
    parse_describe_quorum(&r).map_err(|e| ProbeError::unexpected(t, e))
}

/// DescribeQuorum v0 for partition 0 of the metadata topic.
fn describe_quorum_body() -> Vec<u8> {
    let mut b = vec![2]; // one topic (compact array: n + 1)
    b.push(METADATA_TOPIC.len() as u8 + 1);
    b.extend_from_slice(METADATA_TOPIC.as_bytes());
    b.push(2); // one partition
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&[0, 0, 0]); // tagged fields: partition, topic, request
    b
}

/// The leader id in a DescribeQuorum v0 response (after its header).
pub fn parse_describe_quorum(r: &[u8]) -> Result<i32, String> {
    let mut i = 0usize;
    let mut take = |n: usize| -> Result<&[u8], String> {
        let s = r.get(i..i + n).ok_or("a DescribeQuorum answer cut short")?;
        i += n;
        Ok(s)
    };
    let code = i16::from_be_bytes(take(2)?.try_into().map_err(|_| "bad length")?);
    if code != 0 {
        return Err(format!("DescribeQuorum failed (error {code})"));
    }
    let topics = take(1)?[0];
    if topics < 2 {
        return Err("DescribeQuorum named no topic".into());
    }
    let name_len = usize::from(take(1)?[0]).saturating_sub(1);
    take(name_len)?;
    if take(1)?[0] < 2 {
        return Err("DescribeQuorum named no partition".into());
    }
    take(4)?; // partition index
    let code = i16::from_be_bytes(take(2)?.try_into().map_err(|_| "bad length")?);
    if code != 0 {
        return Err(format!("DescribeQuorum failed for the metadata partition (error {code})"));
    }
    let leader = i32::from_be_bytes(take(4)?.try_into().map_err(|_| "bad length")?);
    if leader < 0 { Err("the controller quorum has no leader".into()) } else { Ok(leader) }
}

/// Sends one request (header v1, or v2 when `flexible`) and returns the response body.
async fn call<S: AsyncRead + AsyncWrite + Unpin>(
    t: &Target,
    s: &mut S,
    key: i16,
    version: i16,
    correlation: i32,
    flexible: bool,
    body: &[u8],
) -> Result<Vec<u8>, ProbeError> {
    let mut msg = Vec::with_capacity(body.len() + 32);
    msg.extend_from_slice(&key.to_be_bytes());
    msg.extend_from_slice(&version.to_be_bytes());
    msg.extend_from_slice(&correlation.to_be_bytes());
    put_string(&mut msg, "firecamp-probe");
    if flexible {
        msg.push(0);
    }
    msg.extend_from_slice(body);
    let mut framed = (msg.len() as i32).to_be_bytes().to_vec();
    framed.extend_from_slice(&msg);
    s.write_all(&framed).await.map_err(|e| ProbeError::failed(t, e))?;
    s.flush().await.map_err(|e| ProbeError::failed(t, e))?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.map_err(|e| ProbeError::failed(t, format!("the broker closed the connection: {e}")))?;
    let len = usize::try_from(i32::from_be_bytes(len)).map_err(|_| ProbeError::unexpected(t, "a negative length"))?;
    if !(4..=MAX_RESPONSE).contains(&len) {
        return Err(ProbeError::unexpected(t, format!("a response of {len} bytes")));
    }
    let mut r = vec![0u8; len];
    s.read_exact(&mut r).await.map_err(|e| ProbeError::failed(t, e))?;
    if r[..4] != correlation.to_be_bytes() {
        return Err(ProbeError::unexpected(t, "an answer to another request"));
    }
    // Response header v1 (flexible) carries tagged fields: none are sent here (one byte, 0).
    let start = if flexible { 5 } else { 4 };
    Ok(r.get(start..).unwrap_or_default().to_vec())
}

fn put_string(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(&(s.len() as i16).to_be_bytes());
    b.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    t: &'a Target,
    r: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn new(t: &'a Target, r: &'a [u8]) -> Self {
        Reader { t, r, i: 0 }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProbeError> {
        let s = self.r.get(self.i..self.i + n).ok_or_else(|| ProbeError::unexpected(self.t, "an answer cut short"))?;
        self.i += n;
        Ok(s)
    }
    fn i16(&mut self) -> Result<i16, ProbeError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    /// A nullable string (i16 length).
    fn string(&mut self) -> Result<String, ProbeError> {
        let n = self.i16()?;
        if n < 0 {
            return Ok(String::new());
        }
        Ok(String::from_utf8_lossy(self.take(n as usize)?).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_leader_of_a_describe_quorum_answer() {
        // As Kafka 4.4 answered (after the header): leader 2.
        let r = hex("0000 02 13 5f5f636c75737465725f6d65746164617461 02 00000000 0000 00000002 0000000100");
        assert_eq!(parse_describe_quorum(&r), Ok(2));
        let mut no_leader = r.clone();
        no_leader[29..33].copy_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(parse_describe_quorum(&no_leader).unwrap_err(), "the controller quorum has no leader");
        assert!(parse_describe_quorum(&r[..10]).unwrap_err().contains("cut short"));
        assert!(parse_describe_quorum(&hex("0029")).unwrap_err().contains("error 41"));
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }
}
