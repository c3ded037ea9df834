//! The bed's StorageClasses.

use anyhow::{Context, Result};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

use crate::{PROVISIONER, STORAGE_CLASS};

/// `testbed-local`: the provisioner's WaitForFirstConsumer class with reclaim Delete.
pub fn testbed_local() -> StorageClass {
    StorageClass {
        metadata: ObjectMeta { name: Some(STORAGE_CLASS.to_string()), ..Default::default() },
        provisioner: PROVISIONER.to_string(),
        volume_binding_mode: Some("WaitForFirstConsumer".to_string()),
        reclaim_policy: Some("Delete".to_string()),
        allow_volume_expansion: Some(true),
        ..Default::default()
    }
}

/// Creates the class unless it exists.
pub async fn ensure(client: &Client, class: &StorageClass) -> Result<()> {
    let name = class.metadata.name.clone().unwrap_or_default();
    match Api::<StorageClass>::all(client.clone()).create(&PostParams::default(), class).await {
        Ok(_) => tracing::info!(%name, "storage class created"),
        Err(kube::Error::Api(s)) if s.code == 409 => tracing::info!(%name, "storage class exists"),
        Err(e) => return Err(e).with_context(|| format!("creating storage class {name}")),
    }
    Ok(())
}
