//! The members' roles from their engines (role source `engine`): each ready member is asked
//! over its own protocol at its address, with the service's password from its Secret, and its
//! pod is relabelled when the engine says otherwise (the client Service selects the primary by
//! that label). Done while an operation runs, when roles decide what happens next.

use std::collections::BTreeMap;

use firecamp_api::Role;
use firecamp_catalog::{postgresql, redis, zookeeper, ServicePlan};
use firecamp_core::EngineKind;
use firecamp_kube::{labels, names};
use firecamp_probe::Target;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};

use crate::error::{Error, Result};

/// The port, the password key of the Secret, and the login of each engine's probe.
fn access(engine: EngineKind) -> (u16, Option<&'static str>) {
    match engine {
        EngineKind::Postgresql => (postgresql::PORT, Some(postgresql::SUPERUSER_PASSWORD)),
        EngineKind::Redis => (redis::PORT, Some(redis::PASSWORD)),
        EngineKind::Zookeeper => (zookeeper::CLIENT_PORT, None),
    }
}

async fn ask(engine: EngineKind, t: Target) -> Role {
    let r = match engine {
        EngineKind::Postgresql => firecamp_probe::postgresql::role(&t, postgresql::SUPERUSER).await,
        EngineKind::Redis => firecamp_probe::redis::role(&t).await,
        EngineKind::Zookeeper => firecamp_probe::zookeeper::role(&t).await,
    };
    // A member that does not answer is not (yet) back in the engine's membership.
    r.unwrap_or(Role::Unknown)
}

/// Each member's role as its engine reports it now (`Unknown` for one without a ready pod or
/// that does not answer); pods whose label disagrees are relabelled.
pub async fn probe(client: &kube::Client, plan: &ServicePlan, ns: &str, pods: &BTreeMap<String, Pod>) -> Result<BTreeMap<String, Role>> {
    let (port, key) = access(plan.engine);
    let password = match key {
        Some(k) => {
            let name = names::secret(&plan.name);
            let secret = Api::<Secret>::namespaced(client.clone(), ns).get_opt(&name).await.map_err(Error::kube("get", "Secret", &name))?;
            secret.and_then(|s| s.data?.get(k).map(|b| String::from_utf8_lossy(&b.0).into_owned()))
        }
        None => None,
    };
    let asks = plan.members.iter().map(|m| {
        let pod = pods.get(&names::pod_of(&m.member.name));
        let addr = m.member.static_ip.map(|ip| ip.to_string()).or_else(|| pod.and_then(|p| p.status.as_ref()?.pod_ip.clone()));
        let password = password.clone();
        async move {
            let role = match addr {
                Some(a) => {
                    let t = Target::new(a, port);
                    ask(plan.engine, match password { Some(p) => t.with_password(p), None => t }).await
                }
                None => Role::Unknown,
            };
            (m.member.name.to_string(), role)
        }
    });
    let roles: BTreeMap<String, Role> = futures::future::join_all(asks).await.into_iter().collect();
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    for (member, role) in &roles {
        let Some(pod) = pods.get(member) else { continue };
        if *role != Role::Unknown && pod.labels().get(labels::ROLE).map(String::as_str) != Some(role.as_str()) {
            let patch = serde_json::json!({"metadata": {"labels": {labels::ROLE: role.as_str()}}});
            api.patch(member, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(Error::kube("relabel", "Pod", member))?;
        }
    }
    Ok(roles)
}
