//! A small HTTP proxy in front of moto: counts every AWS call by operation and answers chosen
//! calls with injected failures (throttling, busy zone, 5xx, or a reply lost after moto
//! applied the request). One request per connection (`Connection: close`), 127.0.0.1 only.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The service's "slow down" error (Route53 Throttling, EC2 RequestLimitExceeded, Logs
    /// ThrottlingException), not forwarded.
    Throttle,
    /// Route53's PriorRequestNotComplete, not forwarded.
    PriorRequestNotComplete,
    /// HTTP 500, not forwarded.
    ServerError,
    /// Forwarded and applied by moto, then answered with HTTP 500: the caller cannot know.
    LoseReply,
}

#[derive(Default)]
struct State {
    counts: BTreeMap<String, u32>,
    faults: Vec<(String, u32, Fault)>,
    injected: u32,
}

#[derive(Clone)]
pub struct Proxy {
    pub endpoint: String,
    state: Arc<Mutex<State>>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Proxy {
        let upstream = upstream.trim_start_matches("http://").trim_end_matches('/').to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(handle(conn, upstream.clone(), st.clone()));
            }
        });
        Proxy { endpoint, state }
    }

    /// Answers the next `n` calls of `op` (e.g. `ec2:AssignPrivateIpAddresses`) with `fault`.
    pub fn fail(&self, op: &str, n: u32, fault: Fault) {
        self.state.lock().unwrap().faults.push((op.to_string(), n, fault));
    }

    /// Calls per operation since the last `take_counts`, and resets them.
    pub fn take_counts(&self) -> BTreeMap<String, u32> {
        std::mem::take(&mut self.state.lock().unwrap().counts)
    }

    pub fn injected(&self) -> u32 {
        self.state.lock().unwrap().injected
    }
}

pub fn total(counts: &BTreeMap<String, u32>) -> u32 {
    counts.values().sum()
}

async fn read_request(conn: &mut TcpStream) -> Option<(String, Vec<(String, String)>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?.to_string();
    let headers: Vec<(String, String)> = lines.filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))).collect();
    let len: usize = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((request_line, headers, body))
}

/// `service:Operation` of a request, from the JSON target, the Query action or the REST path.
fn operation(request_line: &str, headers: &[(String, String)], body: &[u8]) -> (String, &'static str) {
    if let Some((_, t)) = headers.iter().find(|(k, _)| k == "x-amz-target") {
        return (format!("logs:{}", t.rsplit('.').next().unwrap_or(t)), "logs");
    }
    let body = String::from_utf8_lossy(body);
    if let Some(a) = body.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
        return (format!("ec2:{a}"), "ec2");
    }
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or("");
    let path = parts.next().unwrap_or("").split('?').next().unwrap_or("");
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let op = match (method, segs.as_slice()) {
        ("POST", [_, "hostedzone"]) => "CreateHostedZone",
        ("GET", [_, "hostedzonesbyname"]) => "ListHostedZonesByName",
        ("GET", [_, "hostedzone", _]) => "GetHostedZone",
        ("DELETE", [_, "hostedzone", _]) => "DeleteHostedZone",
        ("POST", [_, "hostedzone", _, "rrset"]) => "ChangeResourceRecordSets",
        ("GET", [_, "hostedzone", _, "rrset"]) => "ListResourceRecordSets",
        ("GET", [_, "change", _]) => "GetChange",
        _ => return (format!("other:{method} {path}"), "other"),
    };
    (format!("route53:{op}"), "route53")
}

fn error_reply(service: &str, fault: Fault) -> Vec<u8> {
    let (status, code) = match (service, fault) {
        ("route53", Fault::Throttle) => (400, "Throttling"),
        ("route53", Fault::PriorRequestNotComplete) => (400, "PriorRequestNotComplete"),
        ("ec2", Fault::Throttle) => (503, "RequestLimitExceeded"),
        (_, Fault::Throttle) => (400, "ThrottlingException"),
        _ => (500, "InternalError"),
    };
    let (ctype, body) = match service {
        "route53" => (
            "text/xml",
            format!(
                r#"<?xml version="1.0"?><ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Error><Type>Sender</Type><Code>{code}</Code><Message>injected by the test proxy</Message></Error><RequestId>proxy</RequestId></ErrorResponse>"#
            ),
        ),
        "ec2" => (
            "text/xml",
            format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>{code}</Code><Message>injected by the test proxy</Message></Error></Errors><RequestID>proxy</RequestID></Response>"#
            ),
        ),
        _ => ("application/x-amz-json-1.1", format!(r#"{{"__type":"{code}","message":"injected by the test proxy"}}"#)),
    };
    format!("HTTP/1.1 {status} Injected\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).into_bytes()
}

async fn forward(upstream: &str, request_line: &str, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let mut up = TcpStream::connect(upstream).await.unwrap();
    let mut req = format!("{request_line}\r\n");
    for (k, v) in headers.iter().filter(|(k, _)| k != "connection") {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("connection: close\r\n\r\n");
    up.write_all(req.as_bytes()).await.unwrap();
    up.write_all(body).await.unwrap();
    let mut resp = Vec::new();
    up.read_to_end(&mut resp).await.unwrap();
    // Tell the client this connection ends with the reply.
    let Some(p) = resp.windows(4).position(|w| w == b"\r\n\r\n") else {
        return resp;
    };
    let head = String::from_utf8_lossy(&resp[..p]).to_string();
    let mut out: Vec<String> = head.split("\r\n").filter(|l| !l.to_ascii_lowercase().starts_with("connection:")).map(String::from).collect();
    out.push("Connection: close".into());
    let mut bytes = out.join("\r\n").into_bytes();
    bytes.extend_from_slice(&resp[p..]);
    bytes
}

async fn handle(mut conn: TcpStream, upstream: String, state: Arc<Mutex<State>>) {
    let Some((request_line, headers, body)) = read_request(&mut conn).await else {
        return;
    };
    let (op, service) = operation(&request_line, &headers, &body);
    let fault = {
        let mut st = state.lock().unwrap();
        *st.counts.entry(op.clone()).or_default() += 1;
        let f = st.faults.iter_mut().find(|(o, n, _)| *o == op && *n > 0).map(|(_, n, f)| {
            *n -= 1;
            *f
        });
        if f.is_some() {
            st.injected += 1;
        }
        f
    };
    let reply = match fault {
        None => forward(&upstream, &request_line, &headers, &body).await,
        Some(Fault::LoseReply) => {
            forward(&upstream, &request_line, &headers, &body).await;
            error_reply(service, Fault::ServerError)
        }
        Some(f) => error_reply(service, f),
    };
    let _ = conn.write_all(&reply).await;
    let _ = conn.shutdown().await;
}
