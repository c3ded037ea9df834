//! Who is calling, and may they: the bearer token is checked with a Kubernetes TokenReview and
//! the request with a SubjectAccessReview for that user, so the cluster's RBAC decides (verbs on
//! `firecampservices` in group `firecamp.dev`, in the request's namespace). Positive answers are
//! cached briefly so a client polling once a second costs the API server nothing extra.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use firecamp_api::ErrorCode;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, TokenReviewStatus};
use k8s_openapi::api::authorization::v1::{NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec, SubjectAccessReviewStatus};
use kube::api::PostParams;
use kube::{Api, Client};
use sha2::{Digest, Sha256};

use super::error::{Fail, fail, kube_call};
use super::metrics::METRICS;
use crate::crd::GROUP;

pub const RESOURCE: &str = "firecampservices";
/// The audience the REST API takes tokens for. Clients request tokens for it (`kubectl create
/// token <sa> --audience firecamp`): a token stolen from a pod (minted for the API server) or
/// meant for another service is refused here, and one meant for FireCamp opens nothing else.
pub const AUDIENCE: &str = "firecamp";
/// How long a positive TokenReview or SubjectAccessReview is reused.
pub const CACHE_TTL: Duration = Duration::from_secs(30);
/// At most this many tokens (and as many grants) are remembered.
pub const CACHE_MAX: usize = 1024;

/// The caller, as the TokenReview names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub username: String,
    pub uid: Option<String>,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// What a request wants to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access<'a> {
    pub verb: &'a str,
    pub namespace: &'a str,
    /// The service, for verbs on one (RBAC's resourceNames can then restrict them).
    pub name: Option<&'a str>,
}

/// The token of `Authorization: Bearer <token>`; 401 when there is none.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, Fail> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(fail(
            ErrorCode::Unauthorized,
            "no bearer token: send `Authorization: Bearer <token>` (a Kubernetes ServiceAccount token, e.g. from `kubectl create token`)",
        ));
    };
    let value = value.to_str().map_err(|_| fail(ErrorCode::Unauthorized, "the Authorization header is not text"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(token.trim()),
        _ => Err(fail(ErrorCode::Unauthorized, "the Authorization header must be `Bearer <token>`")),
    }
}

/// The user a TokenReview's answer names; 401 unless it authenticated the token for `audience`
/// (`None`: the API server's own).
pub fn user_from_review(status: Option<&TokenReviewStatus>, audience: Option<&str>) -> Result<User, Fail> {
    let Some(st) = status else {
        return Err(fail(ErrorCode::Unauthorized, "Kubernetes did not review the token"));
    };
    if st.authenticated != Some(true) {
        let why = st.error.as_deref().filter(|e| !e.is_empty()).map(|e| format!(": {e}")).unwrap_or_default();
        // The API server refuses a token of another audience before FireCamp sees it.
        let hint = match audience {
            Some(a) if why.contains("audience") => format!(" (request one for FireCamp: kubectl create token <serviceaccount> --audience {a})"),
            None if why.contains("audience") => " (this path takes an ordinary ServiceAccount token, as the API server's own /metrics does)".into(),
            _ => String::new(),
        };
        return Err(fail(ErrorCode::Unauthorized, format!("the token is not valid{why}{hint}")));
    }
    // An audience-aware reviewer echoes ours; an empty list would mean the API server's own.
    if let Some(audience) = audience
        && !st.audiences.as_ref().is_some_and(|a| a.iter().any(|x| x == audience))
    {
        return Err(fail(
            ErrorCode::Unauthorized,
            format!(
                "the token is not meant for FireCamp: request one with audience {audience:?} (kubectl create token <serviceaccount> --audience {audience})"
            ),
        ));
    }
    let Some(u) = st.user.as_ref().filter(|u| u.username.as_deref().is_some_and(|n| !n.is_empty())) else {
        return Err(fail(ErrorCode::Unauthorized, "the token names no user"));
    };
    Ok(User {
        username: u.username.clone().unwrap_or_default(),
        uid: u.uid.clone(),
        groups: u.groups.clone().unwrap_or_default(),
        extra: u.extra.clone().unwrap_or_default(),
    })
}

/// A SubjectAccessReview for `user`, asking about `spec`'s attributes.
fn review_for(user: &User, spec: SubjectAccessReviewSpec) -> SubjectAccessReview {
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.username.clone()),
            uid: user.uid.clone(),
            groups: Some(user.groups.clone()),
            extra: (!user.extra.is_empty()).then(|| user.extra.clone()),
            ..spec
        },
        ..Default::default()
    }
}

/// The SubjectAccessReview that asks whether `user` may do `access`.
pub fn access_review(user: &User, access: &Access<'_>) -> SubjectAccessReview {
    let attributes = ResourceAttributes {
        group: Some(GROUP.into()),
        resource: Some(RESOURCE.into()),
        verb: Some(access.verb.into()),
        namespace: Some(access.namespace.into()),
        name: access.name.map(String::from),
        ..Default::default()
    };
    review_for(user, SubjectAccessReviewSpec { resource_attributes: Some(attributes), ..Default::default() })
}

/// The SubjectAccessReview that asks whether `user` may `get` the non-resource URL `path` (as
/// for the API server's own `/metrics`: RBAC's `nonResourceURLs`).
pub fn url_review(user: &User, path: &str) -> SubjectAccessReview {
    let attributes = NonResourceAttributes { path: Some(path.into()), verb: Some("get".into()) };
    review_for(user, SubjectAccessReviewSpec { non_resource_attributes: Some(attributes), ..Default::default() })
}

/// The decision in a SubjectAccessReview's answer; 403 unless it allowed the access.
pub fn decision(status: Option<&SubjectAccessReviewStatus>, user: &User, access: &Access<'_>) -> Result<(), Fail> {
    if status.is_some_and(|s| s.allowed && s.denied != Some(true)) {
        return Ok(());
    }
    let what = match access.name {
        Some(n) => format!("{} {RESOURCE}.{GROUP} {n:?}", access.verb),
        None => format!("{} {RESOURCE}.{GROUP}", access.verb),
    };
    let why =
        status.and_then(|s| s.reason.clone().or_else(|| s.evaluation_error.clone())).filter(|r| !r.is_empty()).map(|r| format!(" ({r})")).unwrap_or_default();
    Err(fail(ErrorCode::Forbidden, format!("{} may not {what} in namespace {:?}{why}", user.username, access.namespace)))
}

/// A map from a hash to a value, each entry valid for a time; at most `max` entries.
pub struct TtlCache<T> {
    ttl: Duration,
    max: usize,
    map: HashMap<[u8; 32], (T, Instant)>,
}

impl<T: Clone> TtlCache<T> {
    pub fn new(ttl: Duration, max: usize) -> Self {
        TtlCache { ttl, max, map: HashMap::new() }
    }

    pub fn get(&self, key: &[u8; 32], now: Instant) -> Option<T> {
        self.map.get(key).filter(|(_, at)| now.duration_since(*at) < self.ttl).map(|(v, _)| v.clone())
    }

    pub fn insert(&mut self, key: [u8; 32], value: T, now: Instant) {
        if self.map.len() >= self.max && !self.map.contains_key(&key) {
            let ttl = self.ttl;
            self.map.retain(|_, (_, at)| now.duration_since(*at) < ttl);
            if self.map.len() >= self.max {
                // Still full of live entries: forget them all rather than grow (they are only
                // a cache; the next requests review again).
                self.map.clear();
            }
        }
        self.map.insert(key, (value, now));
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

fn hash(parts: &[&str]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize().into()
}

/// Checks requests against the cluster: TokenReview, then SubjectAccessReview.
pub struct Authenticator {
    client: Client,
    users: Mutex<TtlCache<User>>,
    grants: Mutex<TtlCache<()>>,
}

impl Authenticator {
    pub fn new(client: Client) -> Self {
        Authenticator { client, users: Mutex::new(TtlCache::new(CACHE_TTL, CACHE_MAX)), grants: Mutex::new(TtlCache::new(CACHE_TTL, CACHE_MAX)) }
    }

    /// The caller when they may do `access`: 401 without a valid token, 403 when RBAC says no,
    /// 503 when Kubernetes cannot be asked.
    pub async fn authorize(&self, headers: &HeaderMap, access: &Access<'_>) -> Result<User, Fail> {
        let token = bearer_token(headers)?;
        let user = self.authenticate(token, Some(AUDIENCE)).await?;
        let key = hash(&[token, access.verb, access.namespace, access.name.unwrap_or("")]);
        let review = access_review(&user, access);
        self.review_access(key, review, |status| decision(status, &user, access)).await?;
        Ok(user)
    }

    /// The caller when they may `get` the non-resource URL `path` (`/metrics`). Scrapers hold
    /// ordinary ServiceAccount tokens (the API server's audience), as for the API server's and
    /// kubelets' own `/metrics`; RBAC's `nonResourceURLs` decides, as there.
    pub async fn authorize_url(&self, headers: &HeaderMap, path: &str) -> Result<User, Fail> {
        let token = bearer_token(headers)?;
        let user = self.authenticate(token, None).await?;
        let key = hash(&["url", token, path]);
        let review = url_review(&user, path);
        self.review_access(key, review, |status| {
            if status.is_some_and(|s| s.allowed && s.denied != Some(true)) {
                Ok(())
            } else {
                Err(fail(ErrorCode::Forbidden, format!("{} may not get {path} (RBAC: nonResourceURLs {path:?}, verb get)", user.username)))
            }
        })
        .await?;
        Ok(user)
    }

    /// A SubjectAccessReview, or its cached positive answer.
    async fn review_access(
        &self,
        key: [u8; 32],
        review: SubjectAccessReview,
        decide: impl FnOnce(Option<&SubjectAccessReviewStatus>) -> Result<(), Fail>,
    ) -> Result<(), Fail> {
        if lock(&self.grants).get(&key, Instant::now()).is_some() {
            METRICS.auth_cache_hit();
            return Ok(());
        }
        METRICS.access_review();
        let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
        let answer = kube_call("asking Kubernetes whether the caller may do this", api.create(&PostParams::default(), &review)).await?;
        decide(answer.status.as_ref())?;
        lock(&self.grants).insert(key, (), Instant::now());
        Ok(())
    }

    /// The token's user; `audience` is the one it must be for (`None`: the API server's own).
    async fn authenticate(&self, token: &str, audience: Option<&str>) -> Result<User, Fail> {
        let key = hash(&[audience.unwrap_or(""), token]);
        if let Some(u) = lock(&self.users).get(&key, Instant::now()) {
            METRICS.auth_cache_hit();
            return Ok(u);
        }
        METRICS.token_review();
        let api: Api<TokenReview> = Api::all(self.client.clone());
        let review = TokenReview { spec: TokenReviewSpec { token: token.into(), audiences: audience.map(|a| vec![a.into()]) }, ..Default::default() };
        let answer = kube_call("asking Kubernetes to review the token", api.create(&PostParams::default(), &review)).await?;
        let user = user_from_review(answer.status.as_ref(), audience)?;
        lock(&self.users).insert(key, user.clone(), Instant::now());
        Ok(user)
    }
}

/// A poisoned lock only means another request panicked while holding it; the cache is still
/// usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderValue, StatusCode};
    use k8s_openapi::api::authentication::v1::UserInfo;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    fn user() -> User {
        User { username: "system:serviceaccount:ns:ci".into(), uid: Some("u1".into()), groups: vec!["system:serviceaccounts".into()], extra: BTreeMap::new() }
    }

    #[test]
    fn bearer_token_is_required() {
        assert_eq!(bearer_token(&HeaderMap::new()).unwrap_err().status(), StatusCode::UNAUTHORIZED);
        assert_eq!(bearer_token(&headers("Basic abc")).unwrap_err().status(), StatusCode::UNAUTHORIZED);
        assert_eq!(bearer_token(&headers("Bearer ")).unwrap_err().status(), StatusCode::UNAUTHORIZED);
        assert_eq!(bearer_token(&headers("Bearer abc.def")).unwrap(), "abc.def");
        assert_eq!(bearer_token(&headers("bearer xyz")).unwrap(), "xyz");
    }

    #[test]
    fn only_an_authenticated_review_names_a_user() {
        assert_eq!(user_from_review(None, Some(AUDIENCE)).unwrap_err().status(), StatusCode::UNAUTHORIZED);
        let refused = TokenReviewStatus { authenticated: Some(false), error: Some("token expired".into()), ..Default::default() };
        let e = user_from_review(Some(&refused), Some(AUDIENCE)).unwrap_err();
        assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
        assert!(e.0.message.contains("token expired"), "{}", e.0.message);
        let ours = Some(vec![AUDIENCE.to_string()]);
        let nameless = TokenReviewStatus { authenticated: Some(true), user: Some(UserInfo::default()), audiences: ours.clone(), ..Default::default() };
        assert_eq!(user_from_review(Some(&nameless), Some(AUDIENCE)).unwrap_err().status(), StatusCode::UNAUTHORIZED);
        let ok = TokenReviewStatus {
            authenticated: Some(true),
            audiences: ours,
            user: Some(UserInfo { username: Some("alice".into()), groups: Some(vec!["devs".into()]), uid: Some("42".into()), extra: None }),
            ..Default::default()
        };
        let u = user_from_review(Some(&ok), Some(AUDIENCE)).unwrap();
        assert_eq!((u.username.as_str(), u.groups.as_slice(), u.uid.as_deref()), ("alice", &["devs".to_string()][..], Some("42")));
        let other = TokenReviewStatus {
            authenticated: Some(false),
            error: Some("token audiences [\"https://kubernetes.default.svc\"] is invalid for the target audiences [\"firecamp\"]".into()),
            ..Default::default()
        };
        assert!(user_from_review(Some(&other), Some(AUDIENCE)).unwrap_err().0.message.contains("--audience firecamp"));
        // A token valid for the API server only (no audience echoed) or for another service.
        for audiences in [None, Some(vec![]), Some(vec!["vault".to_string()])] {
            let replayed = TokenReviewStatus { audiences, ..ok.clone() };
            let e = user_from_review(Some(&replayed), Some(AUDIENCE)).unwrap_err();
            assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
            assert!(e.0.message.contains("--audience firecamp"), "{}", e.0.message);
        }
    }

    #[test]
    fn metrics_take_the_api_servers_audience_and_ask_about_the_url() {
        let user_info = UserInfo { username: Some("system:serviceaccount:monitoring:prometheus".into()), ..Default::default() };
        // The API server's reviewer echoes its own audiences (or none): accepted for /metrics.
        let ok = TokenReviewStatus { authenticated: Some(true), user: Some(user_info), audiences: None, ..Default::default() };
        assert_eq!(user_from_review(Some(&ok), None).unwrap().username, "system:serviceaccount:monitoring:prometheus");
        // A token for FireCamp's audience is refused there with a hint for this path.
        let other = TokenReviewStatus {
            authenticated: Some(false),
            error: Some("token audiences [\"firecamp\"] is invalid for the target audiences [\"https://kubernetes.default.svc\"]".into()),
            ..Default::default()
        };
        let e = user_from_review(Some(&other), None).unwrap_err();
        assert!(e.0.message.contains("ordinary ServiceAccount token") && !e.0.message.contains("--audience"), "{}", e.0.message);
        let r = url_review(&user(), "/metrics");
        let a = r.spec.non_resource_attributes.unwrap();
        assert_eq!((a.path.as_deref(), a.verb.as_deref()), (Some("/metrics"), Some("get")));
        assert!(r.spec.resource_attributes.is_none());
        assert_eq!(r.spec.user.as_deref(), Some("system:serviceaccount:ns:ci"));
    }

    #[test]
    fn the_review_asks_about_firecampservices_in_the_namespace() {
        let r = access_review(&user(), &Access { verb: "delete", namespace: "team-a", name: Some("zk") });
        let a = r.spec.resource_attributes.unwrap();
        assert_eq!(a.group.as_deref(), Some("firecamp.dev"));
        assert_eq!(a.resource.as_deref(), Some("firecampservices"));
        assert_eq!(a.verb.as_deref(), Some("delete"));
        assert_eq!(a.namespace.as_deref(), Some("team-a"));
        assert_eq!(a.name.as_deref(), Some("zk"));
        assert_eq!(r.spec.user.as_deref(), Some("system:serviceaccount:ns:ci"));
        assert_eq!(r.spec.groups.unwrap(), vec!["system:serviceaccounts".to_string()]);
    }

    #[test]
    fn rbac_decides() {
        let access = Access { verb: "create", namespace: "team-a", name: None };
        let allowed = SubjectAccessReviewStatus { allowed: true, ..Default::default() };
        assert!(decision(Some(&allowed), &user(), &access).is_ok());
        let no_opinion = SubjectAccessReviewStatus { allowed: false, reason: Some("no RBAC policy matched".into()), ..Default::default() };
        let e = decision(Some(&no_opinion), &user(), &access).unwrap_err();
        assert_eq!(e.status(), StatusCode::FORBIDDEN);
        assert!(e.0.message.contains("may not create firecampservices.firecamp.dev in namespace \"team-a\""), "{}", e.0.message);
        assert!(e.0.message.contains("no RBAC policy matched"));
        let contradictory = SubjectAccessReviewStatus { allowed: true, denied: Some(true), ..Default::default() };
        assert_eq!(decision(Some(&contradictory), &user(), &access).unwrap_err().status(), StatusCode::FORBIDDEN);
        assert_eq!(decision(None, &user(), &access).unwrap_err().status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn cache_entries_expire_and_the_cache_stays_bounded() {
        let t0 = Instant::now();
        let mut c = TtlCache::new(Duration::from_secs(30), 3);
        c.insert(hash(&["a"]), 1, t0);
        assert_eq!(c.get(&hash(&["a"]), t0 + Duration::from_secs(29)), Some(1));
        assert_eq!(c.get(&hash(&["a"]), t0 + Duration::from_secs(30)), None);
        assert_eq!(c.get(&hash(&["b"]), t0), None);
        for (i, k) in ["b", "c", "d", "e", "f"].iter().enumerate() {
            c.insert(hash(&[k]), i, t0 + Duration::from_secs(31));
            assert!(c.len() <= 3);
        }
        // Different parts never collide by concatenation.
        assert_ne!(hash(&["ab", "c"]), hash(&["a", "bc"]));
    }
}
