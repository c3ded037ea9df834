//! The REST client of the manage service (local runtime or Kubernetes).

use std::time::Duration;

use firecamp_api::{ApiError, ErrorCode};
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
    pub fn new(args: &ServerArgs) -> Result<Self, CliError> {
        let mut b = reqwest::Client::builder().connect_timeout(Duration::from_secs(5));
        if let Some(path) = &args.ca_cert {
            let pem = std::fs::read(path).map_err(|e| CliError::Usage(format!("--ca-cert {path}: {e}")))?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| CliError::Usage(format!("--ca-cert {path}: {e}")))?;
            b = b.add_root_certificate(cert);
        }
        let http = b.build().map_err(|e| CliError::Failed(format!("HTTP client: {e}")))?;
        Ok(Client { http, base: args.server.trim_end_matches('/').to_string(), token: args.token.clone(), namespace: args.namespace.clone() })
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
            CliError::Failed(format!(
                "cannot reach the manage service at {}: {e}\n(start the local runtime with `firecamp local up`, or point --server/FIRECAMP_SERVER at your cluster's)",
                self.base
            ))
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
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

fn api_error(e: ApiError) -> CliError {
    match e.code {
        ErrorCode::Invalid => CliError::Usage(e.message),
        ErrorCode::NotFound => CliError::NotFound(e.message),
        _ => CliError::Failed(e.message),
    }
}
