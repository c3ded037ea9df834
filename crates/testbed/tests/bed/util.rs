//! Waiting helpers: every wait is a watch with a deadline, never a sleep.

use std::fmt::Debug;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::runtime::wait::{Condition, await_condition};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

pub const TIMEOUT: Duration = Duration::from_secs(60);

/// Waits until `cond` holds for object `name`; panics with `what` on timeout.
pub async fn wait<K>(api: &Api<K>, name: &str, what: &str, cond: impl Condition<K>) -> K
where
    K: Clone + Debug + Send + DeserializeOwned + Resource + 'static,
{
    match tokio::time::timeout(TIMEOUT, await_condition(api.clone(), name, cond)).await {
        Ok(Ok(Some(obj))) => obj,
        Ok(Ok(None)) => panic!("{what}: {name} does not exist"),
        Ok(Err(e)) => panic!("{what}: watching {name}: {e}"),
        Err(_) => panic!("{what}: not reached within {TIMEOUT:?} for {name}"),
    }
}

/// Waits for the first object of a watch that satisfies `pred`.
pub async fn wait_any<K>(api: &Api<K>, what: &str, pred: impl Fn(&K) -> bool) -> K
where
    K: Clone + Debug + Send + DeserializeOwned + Resource + 'static,
{
    let mut stream = watcher(api.clone(), watcher::Config::default()).applied_objects().try_filter(|o| futures::future::ready(pred(o))).boxed_local();
    match tokio::time::timeout(TIMEOUT, stream.try_next()).await {
        Ok(Ok(Some(obj))) => obj,
        Ok(Ok(None)) => panic!("{what}: watch ended"),
        Ok(Err(e)) => panic!("{what}: watch failed: {e}"),
        Err(_) => panic!("{what}: not seen within {TIMEOUT:?}"),
    }
}

pub fn pod_ready(pod: &Pod) -> bool {
    condition(pod, "Ready", "True")
}

pub fn condition(pod: &Pod, type_: &str, status: &str) -> bool {
    pod.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|cs| cs.iter().any(|c| c.type_ == type_ && c.status == status))
}

/// The zone of the node a pod runs on.
pub async fn pod_zone(client: &Client, pod: &Pod) -> String {
    let node = pod.spec.as_ref().and_then(|s| s.node_name.clone()).expect("pod is not scheduled");
    let node = Api::<Node>::all(client.clone()).get(&node).await.expect("get node");
    firecamp_testbed::nodes::zone_of(&node).expect("node without zone label")
}

/// Best-effort namespace deletion at the end of a test (kwok finishes the pods' deletion).
pub async fn cleanup(client: &Client, ns: &str) {
    let api = Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone());
    let _ = api.delete(ns, &Default::default()).await;
}

/// Waits until object `name` with this uid is gone.
pub async fn wait_deleted<K>(api: &Api<K>, name: &str, uid: &str, what: &str)
where
    K: Clone + Debug + Send + DeserializeOwned + Resource + 'static,
{
    let gone = kube::runtime::wait::conditions::is_deleted(uid);
    match tokio::time::timeout(TIMEOUT, await_condition(api.clone(), name, gone)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => panic!("{what}: watching {name}: {e}"),
        Err(_) => panic!("{what}: {name} still there after {TIMEOUT:?}"),
    }
}
