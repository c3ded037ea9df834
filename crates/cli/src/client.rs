//! The REST client of the manage service (local runtime or Kubernetes).

use std::path::PathBuf;
use std::time::Duration;

use firecamp_api::{ApiError, ErrorCode};
use firecamp_local::config::{Config, default_dir};
use reqwest::{Method, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::args::ServerArgs;
use crate::error::CliError;

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    /// Sent as `?namespace=` on every request.
    namespace: String,
}

impl Client {
    /// The server's URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn new(args: &ServerArgs) -> Result<Self, CliError> {
        let mut b = reqwest::Client::builder().connect_timeout(Duration::from_secs(5));
        if let Some(path) = &args.ca_cert {
            let pem = std::fs::read(path).map_err(|e| CliError::Usage(format!("--ca-cert {path}: {e}")))?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| CliError::Usage(format!("--ca-cert {path}: {e}")))?;
            b = b.add_root_certificate(cert);
        }
        let http = b.build().map_err(|e| CliError::Failed(format!("HTTP client: {e}")))?;
        let base = args.server.trim_end_matches('/').to_string();
        let token = match &args.token {
            Some(t) => Some(t.clone()),
            None => local_token(&base)?,
        };
        Ok(Client { http, base, token, namespace: args.namespace.clone() })
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let url = format!("{}{path}", self.base);
        let r = match reqwest::Url::parse(&url) {
            Ok(mut u) => {
                u.query_pairs_mut().append_pair("namespace", &self.namespace);
                self.http.request(method, u)
            }
            // reqwest reports the bad URL when the request is sent.
            Err(_) => self.http.request(method, url),
        };
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    async fn send(&self, r: RequestBuilder) -> Result<Response, CliError> {
        let resp = r.send().await.map_err(|e| {
            // reqwest's message alone hides why (a refused connection, an unknown CA).
            let mut why = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                why.push_str(&format!(": {s}"));
                source = s.source();
            }
            let hint = if why.contains("certificate") {
                "trust the manage service's CA with --ca-cert FILE; on Kubernetes it is published by \
                 `kubectl get configmap -n firecamp-system firecamp-manage-ca -o jsonpath='{.data.ca\\.crt}'`"
            } else {
                "start the local runtime with `firecamp local up`, or point --server/FIRECAMP_SERVER at your cluster's"
            };
            CliError::Failed(format!("cannot reach the manage service at {}: {why}\n({hint})", self.base))
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        if status == reqwest::StatusCode::UNAUTHORIZED && self.token.is_none() && loopback(&self.base) {
            return Err(CliError::Failed(format!(
                "the local runtime at {} wants its API token, and no state directory ({}) says a runtime listens there; \
                 set FIRECAMP_LOCAL_DIR to the runtime's --dir (its token is <dir>/api-token), or pass --token",
                self.base,
                token_dirs().iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
            )));
        }
        let text = resp.text().await.unwrap_or_default();
        Err(match serde_json::from_str::<ApiError>(&text) {
            Ok(e) => api_error(e),
            Err(_) => CliError::Failed(format!("the manage service answered {status}: {text}")),
        })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        let resp = self.send(self.request(Method::GET, path)).await?;
        resp.json().await.map_err(|e| CliError::Failed(format!("reading {path}: {e}")))
    }

    /// `None` when the object does not exist.
    pub async fn get_opt<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, CliError> {
        match self.get(path).await {
            Err(CliError::NotFound(_)) => Ok(None),
            other => other.map(Some),
        }
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, CliError> {
        let resp = self.send(self.request(Method::POST, path).json(body)).await?;
        resp.json().await.map_err(|e| CliError::Failed(format!("reading {path}: {e}")))
    }

    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        let resp = self.send(self.request(Method::DELETE, path)).await?;
        resp.json().await.map_err(|e| CliError::Failed(format!("reading {path}: {e}")))
    }

    /// A streamed text body (logs).
    pub async fn stream(&self, path: &str) -> Result<Response, CliError> {
        self.send(self.request(Method::GET, path)).await
    }
}

/// Where local runtimes may keep their state: `$FIRECAMP_LOCAL_DIR` or this user's default, and
/// root's (a runtime started with sudo serves every user on the machine).
fn token_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![default_dir()];
    let root = PathBuf::from("/var/lib/firecamp");
    if !dirs.contains(&root) {
        dirs.push(root);
    }
    dirs
}

fn loopback(url: &str) -> bool {
    reqwest::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_string)).is_some_and(|h| firecamp_local::guard::loopback_host(&h))
}

/// The state of the local runtime that listens at `base` (a loopback URL): the one whose state
/// directory's address file names the same port.
pub fn local_runtime(base: &str) -> Option<Config> {
    let want = reqwest::Url::parse(base).ok()?;
    if !loopback(base) {
        return None;
    }
    token_dirs().into_iter().map(|d| Config::new(&d)).find(|cfg| {
        let there = std::fs::read_to_string(cfg.addr_path()).ok().and_then(|a| reqwest::Url::parse(a.trim()).ok());
        there.is_some_and(|t| loopback(t.as_str()) && t.port_or_known_default() == want.port_or_known_default())
    })
}

/// The API token of the local runtime that listens at `base`: the one whose state directory's
/// address file names the same loopback port. The token goes to no other server. A token that
/// exists but cannot be read is an error naming the file.
fn local_token(base: &str) -> Result<Option<String>, CliError> {
    if let Some(cfg) = local_runtime(base) {
        let path = cfg.token_path();
        return match std::fs::read_to_string(&path) {
            Ok(t) => Ok(Some(t.trim().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(CliError::Failed(format!(
                "cannot read the local runtime's API token {}: {e}; only the runtime's user (root) and, when that group exists, \
                 the `{}` group may read it: run this as root (sudo) or join the group",
                path.display(),
                firecamp_local::guard::GROUP
            ))),
            Err(e) => Err(CliError::Failed(format!("cannot read the local runtime's API token {}: {e}", path.display()))),
        };
    }
    Ok(None)
}

fn api_error(e: ApiError) -> CliError {
    match e.code {
        ErrorCode::Invalid => CliError::Usage(e.message),
        ErrorCode::NotFound => CliError::NotFound(e.message),
        _ => CliError::Failed(e.message),
    }
}
