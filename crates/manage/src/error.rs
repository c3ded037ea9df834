//! The manage service's errors: typed, with the object they concern.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the service spec is invalid: {0}")]
    Invalid(#[from] firecamp_core::ValidationErrors),
    #[error("{action} {kind} {name}: {source}")]
    Kube {
        action: &'static str,
        kind: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("the resource has no {0}")]
    MissingField(&'static str),
    #[error("{action} for {service}: {source}")]
    Cloud {
        action: &'static str,
        service: String,
        #[source]
        source: firecamp_core::cloud::CloudError,
    },
    /// Objects of the names the service needs exist and are not its own: FireCamp never
    /// adopts them (they would be changed, mounted and garbage-collected with the service).
    #[error("refusing to take over objects this service does not own: {}", .0.join("; "))]
    NotOwned(Vec<String>),
    /// The service's CA cannot sign (a damaged `<service>-ca` Secret): never replaced silently,
    /// since every client trusts it.
    #[error("TLS: {0}")]
    Tls(#[from] firecamp_pki::PkiError),
    /// A member's engine did not do what a switchover or failover needs yet (retried).
    #[error("{member}: {reason}")]
    Engine { member: String, reason: String },
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

impl Error {
    pub fn kube(action: &'static str, kind: &'static str, name: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let name = name.into();
        move |source| Error::Kube { action, kind, name, source }
    }

    pub fn engine(member: &str, reason: impl std::fmt::Display) -> Error {
        Error::Engine { member: member.to_string(), reason: reason.to_string() }
    }

    pub fn cloud(action: &'static str, service: impl Into<String>) -> impl FnOnce(firecamp_core::cloud::CloudError) -> Error {
        let service = service.into();
        move |source| Error::Cloud { action, service, source }
    }

    /// Short label for metrics and Events.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Invalid(_) => "InvalidSpec",
            Error::Kube { .. } => "KubernetesError",
            Error::MissingField(_) => "MalformedResource",
            Error::Cloud { .. } => "CloudError",
            Error::NotOwned(_) => "ObjectNotOwned",
            Error::Tls(_) => "TlsError",
            Error::Engine { .. } => "EngineError",
            Error::Finalizer(_) => "FinalizerError",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
