//! Kafka (KRaft): the active controller of the metadata quorum, through Kafka's own protocol
//! (`DescribeQuorum` for `__cluster_metadata`), which a broker forwards to the controllers; and
//! the partitions whose in-sync replicas are fewer than their replicas (`Metadata`), which a
//! rolling restart waits to see at none before it takes the next broker down.
//!
//! FireCamp's brokers listen with SASL_SSL only: with [`Target::with_tls`] the connection is
//! TLS (the member's certificate verified against the service's CA under the given name,
//! [`crate::tls`]), then SASL SCRAM-SHA-512 as the given user with the target's password
//! ([`crate::scram`]: only a proof crosses the wire, and the broker proves it holds the
//! credential too). Only the handful of requests needed are spoken: `SaslHandshake` v1,
//! `SaslAuthenticate` v0, `Metadata` v1 and `DescribeQuorum` v0 (a flexible version: compact
//! strings and arrays, tagged fields).

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::scram;
use crate::tls::Connector;
use crate::{ProbeError, Role, Target, within};

const SASL_HANDSHAKE: i16 = 17;
const SASL_AUTHENTICATE: i16 = 36;
const DESCRIBE_QUORUM: i16 = 55;
const METADATA: i16 = 3;
const CREATE_ACLS: i16 = 30;
const METADATA_TOPIC: &str = "__cluster_metadata";
/// Responses larger than this are not ours to read (the metadata of every partition is the
/// largest we ask for).
const MAX_RESPONSE: usize = 64 << 20;

/// The node id of the quorum's leader, the active controller, as the member sees it.
pub async fn quorum_leader(t: &Target, user: &str) -> Result<i32, ProbeError> {
    let r = call_logged_in(t, user, DESCRIBE_QUORUM, 0, true, &describe_quorum_body()).await?;
    parse_describe_quorum(&r).map_err(|e| ProbeError::unexpected(t, e))
}

/// `leader` when member `node_id` is the active controller, else `follower` (a voter).
pub async fn role(t: &Target, user: &str, node_id: u32) -> Result<Role, ProbeError> {
    let leader = quorum_leader(t, user).await?;
    Ok(if i64::from(leader) == i64::from(node_id) { Role::Leader } else { Role::Follower })
}

/// The partitions (`topic-N`) with fewer in-sync replicas than replicas, as the member's
/// metadata says; empty when every partition is fully replicated.
pub async fn under_replicated(t: &Target, user: &str) -> Result<Vec<String>, ProbeError> {
    // Metadata v1 with a null topic array: every topic.
    let r = call_logged_in(t, user, METADATA, 1, false, &(-1i32).to_be_bytes()).await?;
    parse_metadata(&r).map_err(|e| ProbeError::unexpected(t, e))
}

/// An ACL that allows `principal` (`User:<name>`) every operation on every resource of a type:
/// Kafka's resource type codes, e.g. 2 topic, 3 group, 5 transactional id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllowAll<'a> {
    pub principal: &'a str,
    pub resource_type: i8,
}

/// Resource types of [`AllowAll`] (Kafka's `ResourceType` codes).
pub const TOPIC: i8 = 2;
pub const GROUP: i8 = 3;
pub const TRANSACTIONAL_ID: i8 = 5;

/// Creates the ACLs (`CreateAcls` v1: the literal resource name `*`, any host). Creating an ACL
/// that exists changes nothing, so this can run again.
pub async fn allow_all(t: &Target, user: &str, acls: &[AllowAll<'_>]) -> Result<(), ProbeError> {
    let r = call_logged_in(t, user, CREATE_ACLS, 1, false, &create_acls_body(acls)).await?;
    parse_create_acls(&r).map_err(|e| ProbeError::unexpected(t, e))
}

fn create_acls_body(acls: &[AllowAll<'_>]) -> Vec<u8> {
    const LITERAL: i8 = 3;
    const ALL: i8 = 2;
    const ALLOW: i8 = 3;
    let mut b = (acls.len() as i32).to_be_bytes().to_vec();
    for a in acls {
        b.push(a.resource_type as u8);
        put_string(&mut b, "*");
        b.push(LITERAL as u8);
        put_string(&mut b, a.principal);
        put_string(&mut b, "*");
        b.push(ALL as u8);
        b.push(ALLOW as u8);
    }
    b
}

/// The first failure of a CreateAcls v1 answer, if any.
fn parse_create_acls(r: &[u8]) -> Result<(), String> {
    let mut c = Cursor { r, i: 0 };
    c.i32()?; // throttle time
    for _ in 0..c.count()? {
        let code = c.i16()?;
        let message = c.string()?;
        if code != 0 {
            return Err(format!("an ACL was refused (error {code}): {message}"));
        }
    }
    Ok(())
}

/// Connects (over TLS when the target says so), logs in and makes one call; its response body.
async fn call_logged_in(t: &Target, user: &str, key: i16, version: i16, flexible: bool, body: &[u8]) -> Result<Vec<u8>, ProbeError> {
    within(t, async {
        let connector = match &t.tls {
            Some(s) => Some(Connector::new(s).map_err(|e| ProbeError::tls_settings(t, e))?),
            None => None,
        };
        let tcp = TcpStream::connect((t.host.as_str(), t.port)).await.map_err(|e| ProbeError::failed(t, e))?;
        match connector {
            None => session(t, tcp, user, key, version, flexible, body).await,
            Some(c) => {
                let tls = c.handshake(tcp).await.map_err(|e| ProbeError::handshake(t, &e))?;
                session(t, tls, user, key, version, flexible, body).await
            }
        }
    })
    .await
}

async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    t: &Target,
    mut s: S,
    user: &str,
    key: i16,
    version: i16,
    flexible: bool,
    body: &[u8],
) -> Result<Vec<u8>, ProbeError> {
    let password = t.password.as_deref().ok_or_else(|| ProbeError::failed(t, "no password to log in with"))?;
    // SaslHandshake v1: the mechanism.
    let mut hs = Vec::new();
    put_string(&mut hs, scram::MECHANISM);
    let r = call(t, &mut s, SASL_HANDSHAKE, 1, 1, false, &hs).await?;
    let mut rd = Reader::new(t, &r);
    let code = rd.i16()?;
    if code != 0 {
        return Err(ProbeError::unexpected(t, format!("SASL {} refused (error {code})", scram::MECHANISM)));
    }
    // SaslAuthenticate v0, twice: the client's first message, then its proof; the broker's last
    // answer carries its own signature, checked before anything else is asked.
    let refused = |code: i16, message: String| ProbeError::Failed { addr: t.addr(), message: format!("login as {user} refused (error {code}): {message}") };
    let mut login = scram::Scram::new(user, password);
    let r = call(t, &mut s, SASL_AUTHENTICATE, 0, 2, false, &bytes(login.client_first().as_bytes())).await?;
    let (code, message, server_first) = authenticate_answer(t, &r)?;
    if code != 0 {
        return Err(refused(code, message));
    }
    let last = login.client_final(&server_first).map_err(|e| ProbeError::unexpected(t, e))?;
    let r = call(t, &mut s, SASL_AUTHENTICATE, 0, 3, false, &bytes(last.as_bytes())).await?;
    let (code, message, server_final) = authenticate_answer(t, &r)?;
    if code != 0 {
        // The broker's message says why (never the password).
        return Err(refused(code, message));
    }
    login.verify_server(&server_final).map_err(|e| ProbeError::unexpected(t, e))?;
    call(t, &mut s, key, version, 4, flexible, body).await
}

/// Bytes as Kafka sends them: an i32 length, then the bytes.
fn bytes(b: &[u8]) -> Vec<u8> {
    let mut out = (b.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(b);
    out
}

/// A SaslAuthenticate v0 answer: its error code, message and the server's SCRAM message.
fn authenticate_answer(t: &Target, r: &[u8]) -> Result<(i16, String, String), ProbeError> {
    let mut rd = Reader::new(t, r);
    let code = rd.i16()?;
    let message = rd.string()?;
    let n = rd.take(4)?;
    let n = usize::try_from(i32::from_be_bytes([n[0], n[1], n[2], n[3]])).unwrap_or(0);
    let auth = String::from_utf8_lossy(rd.take(n)?).into_owned();
    Ok((code, message, auth))
}

/// The under-replicated partitions in a Metadata v1 response.
pub fn parse_metadata(r: &[u8]) -> Result<Vec<String>, String> {
    let mut c = Cursor { r, i: 0 };
    for _ in 0..c.count()? {
        c.i32()?; // node id
        c.string()?; // host
        c.i32()?; // port
        c.string()?; // rack
    }
    c.i32()?; // controller id
    let mut out = Vec::new();
    for _ in 0..c.count()? {
        c.i16()?; // error code
        let topic = c.string()?;
        c.take(1)?; // is_internal
        for _ in 0..c.count()? {
            c.i16()?;
            let partition = c.i32()?;
            c.i32()?; // leader
            let replicas = c.count()?;
            (0..replicas).try_for_each(|_| c.i32().map(drop))?;
            let isr = c.count()?;
            (0..isr).try_for_each(|_| c.i32().map(drop))?;
            if isr < replicas {
                out.push(format!("{topic}-{partition}"));
            }
        }
    }
    Ok(out)
}

/// A reader of a non-flexible response: big-endian numbers, i16-length strings, i32-count arrays.
struct Cursor<'a> {
    r: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let s = self.r.get(self.i..self.i + n).ok_or("an answer cut short")?;
        self.i += n;
        Ok(s)
    }
    fn i16(&mut self) -> Result<i16, String> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Result<i32, String> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// An array's length (a null array is empty).
    fn count(&mut self) -> Result<usize, String> {
        Ok(usize::try_from(self.i32()?).unwrap_or(0))
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.i16()?;
        let Ok(n) = usize::try_from(n) else { return Ok(String::new()) };
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
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

    #[test]
    fn finds_partitions_with_fewer_in_sync_replicas() {
        let mut r = Vec::new();
        let i32s = |r: &mut Vec<u8>, v: &[i32]| v.iter().for_each(|x| r.extend_from_slice(&x.to_be_bytes()));
        let st = |r: &mut Vec<u8>, s: &str| {
            r.extend_from_slice(&(s.len() as i16).to_be_bytes());
            r.extend_from_slice(s.as_bytes());
        };
        i32s(&mut r, &[1, 0]); // one broker, node 0
        st(&mut r, "kf-0");
        i32s(&mut r, &[9092]);
        r.extend_from_slice(&(-1i16).to_be_bytes()); // no rack
        i32s(&mut r, &[0, 1]); // controller 0; one topic
        r.extend_from_slice(&0i16.to_be_bytes());
        st(&mut r, "orders");
        r.push(0);
        i32s(&mut r, &[2]);
        for (p, isr) in [(0, &[0, 1, 2][..]), (1, &[0, 2][..])] {
            r.extend_from_slice(&0i16.to_be_bytes());
            i32s(&mut r, &[p, 0, 3, 0, 1, 2, isr.len() as i32]);
            i32s(&mut r, isr);
        }
        assert_eq!(parse_metadata(&r), Ok(vec!["orders-1".to_string()]));
        assert!(parse_metadata(&r[..r.len() - 2]).unwrap_err().contains("cut short"));
    }

    #[test]
    fn create_acls_asks_for_every_resource_of_a_type_and_reads_refusals() {
        let body = create_acls_body(&[AllowAll { principal: "User:client", resource_type: TOPIC }]);
        // One creation: topic, "*", literal, the principal, any host, ALL, ALLOW.
        assert_eq!(body, hex("00000001 02 0001 2a 03 000b 557365723a636c69656e74 0001 2a 02 03"));
        assert_eq!(parse_create_acls(&hex("00000000 00000002 0000 ffff 0000 ffff")), Ok(()));
        let e = parse_create_acls(&hex("00000000 00000001 0036 0003 6e6f21")).unwrap_err();
        assert!(e.contains("error 54") && e.contains("no!"), "{e}");
        assert!(parse_create_acls(&hex("00000000 00000001 00")).unwrap_err().contains("cut short"));
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }
}
