//! HTTPS: a rustls server (ring) whose certificate is looked at again while it runs (minted
//! daily from FireCamp's CA, or PEM files re-read each minute so a cert-manager renewal is
//! picked up), and a listener for `axum::serve` that does each TLS handshake in its own task, so
//! a slow or broken client never holds up the others.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, anyhow};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;

use super::ca::{self, CaPem};

/// How long a client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often certificate files are read again.
const FILES_EVERY: Duration = Duration::from_secs(60);

/// Where the serving certificate comes from.
#[derive(Debug, Clone)]
pub enum CertSource {
    /// A chain and key in PEM files (a mounted Secret, e.g. cert-manager's).
    Files { cert: PathBuf, key: PathBuf },
    /// Minted from this CA for these names and addresses.
    Minted { ca: CaPem, names: Vec<String>, ips: Vec<IpAddr> },
}

impl CertSource {
    fn load(&self, provider: &CryptoProvider) -> anyhow::Result<CertifiedKey> {
        let (certs, key) = match self {
            CertSource::Files { cert, key } => read_files(cert, key)?,
            CertSource::Minted { ca, names, ips } => {
                let s = ca::issue_serving(ca, names, ips, firecamp_pki::OffsetDateTime::now_utc())?;
                (vec![CertificateDer::from(s.cert)], PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(s.key)))
            }
        };
        CertifiedKey::from_der(certs, key, provider).context("the TLS certificate and key do not form a usable pair")
    }

    fn every(&self) -> Duration {
        match self {
            CertSource::Files { .. } => FILES_EVERY,
            CertSource::Minted { .. } => ca::RENEW_EVERY,
        }
    }
}

fn read_files(cert: &Path, key: &Path) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading the TLS certificate {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing the TLS certificate {}", cert.display()))?;
    if certs.is_empty() {
        return Err(anyhow!("{} holds no PEM certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading the TLS private key {}", key.display()))?;
    Ok((certs, key))
}

/// The certificate in use, replaced by the renewal task.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

/// The server's TLS configuration; an error when the first certificate cannot be had. Later
/// failures keep the certificate in use and are logged.
pub fn server_config(source: CertSource) -> anyhow::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let current = Arc::new(Current(RwLock::new(Arc::new(source.load(&provider)?))));
    let renewing = (current.clone(), provider.clone());
    tokio::spawn(async move {
        let (current, provider) = renewing;
        loop {
            tokio::time::sleep(source.every()).await;
            match source.load(&provider) {
                Ok(k) => *current.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(k),
                Err(e) => tracing::warn!(error = format!("{e:#}"), "renewing the REST API's certificate; the current one stays"),
            }
        }
    });
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_cert_resolver(current);
    // axum serves HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts TCP connections and hands on those whose TLS handshake succeeded.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of file descriptors and the like: wait rather than spin.
                        tracing::warn!(error = %e, "accepting a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accept loop only ends when this listener is gone; never reached.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
