//! Where service commands go: the manage service's REST API, or (`--kube`) the cluster's
//! FireCampService resources directly through the kubeconfig.

use firecamp_api::{CreateService, Operation, OperationList, OperationRequest, Service, ServiceList, paths};
use firecamp_manage::crd::{FireCampService, FireCampServiceSpec};
use firecamp_manage::operations::RequestError;
use firecamp_manage::view::to_service;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};

use crate::args::ServerArgs;
use crate::client::Client;
use crate::error::CliError;

pub enum Backend {
    Rest(Client),
    Kube(Api<FireCampService>),
}

fn kube_err(what: &str, name: &str, e: kube::Error) -> CliError {
    match e {
        kube::Error::Api(s) if s.code == 404 => CliError::NotFound(format!("service {name:?} does not exist")),
        kube::Error::Api(s) if s.code == 409 => CliError::Failed(format!("service {name:?} already exists")),
        kube::Error::Api(s) if s.code == 422 || s.code == 400 => CliError::Usage(format!("{what} {name}: {}", s.message)),
        e => CliError::Failed(format!("{what} {name}: {e}")),
    }
}

impl Backend {
    pub async fn new(args: &ServerArgs) -> Result<Self, CliError> {
        if !args.kube {
            return Ok(Backend::Rest(Client::new(args)?));
        }
        let client =
            kube::Client::try_default().await.map_err(|e| CliError::Failed(format!("cannot use the kubeconfig (KUBECONFIG or ~/.kube/config): {e}")))?;
        Ok(Backend::Kube(Api::namespaced(client, &args.namespace)))
    }

    /// The certificate of the service's CA: from the API, or (`--kube`) from the members'
    /// Secret `<service>-tls`, which the kubeconfig's user must be allowed to read.
    pub async fn ca(&self, name: &str) -> Result<String, CliError> {
        match self {
            Backend::Rest(c) => Ok(c.get::<firecamp_api::ServiceCa>(&paths::ca(name)).await?.ca),
            Backend::Kube(api) => {
                self.get(name).await?;
                let secret_name = firecamp_kube::names::tls_secret(name);
                let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(api.clone().into_client(), api.namespace().unwrap_or("default"));
                let secret = secrets.get_opt(&secret_name).await.map_err(|e| kube_err("reading Secret", &secret_name, e))?;
                secret.and_then(|s| s.data?.get(firecamp_catalog::tls::CA_FILE).map(|b| String::from_utf8_lossy(&b.0).into_owned())).ok_or_else(|| {
                    CliError::NotFound(format!(
                        "service {name:?} has no CA yet (Secret {secret_name}): its engine serves no TLS, or its certificates are not issued yet"
                    ))
                })
            }
        }
    }

    /// One key of a Secret in the service's namespace (`--kube` only: read with the kubeconfig's
    /// rights); `None` when either is missing.
    pub async fn secret_value(&self, secret: &str, key: &str) -> Result<Option<String>, CliError> {
        let Backend::Kube(api) = self else { return Ok(None) };
        let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(api.clone().into_client(), api.namespace().unwrap_or("default"));
        let s = secrets.get_opt(secret).await.map_err(|e| kube_err("reading Secret", secret, e))?;
        Ok(s.and_then(|s| s.data?.get(key).map(|b| String::from_utf8_lossy(&b.0).into_owned())))
    }

    pub fn rest(&self) -> Result<&Client, CliError> {
        match self {
            Backend::Rest(c) => Ok(c),
            Backend::Kube(_) => Err(CliError::Usage("this command needs the manage service's REST API; drop --kube".into())),
        }
    }

    /// Asks for an operation: through the API, or (`--kube`) as the API would, on the resource.
    pub async fn request_operation(&self, name: &str, req: &OperationRequest) -> Result<Operation, CliError> {
        match self {
            Backend::Rest(c) => c.post(&paths::operations(name), req).await,
            Backend::Kube(api) => {
                let cluster = firecamp_core::ClusterConfig::new(std::env::var("FIRECAMP_CLUSTER").unwrap_or_else(|_| "firecamp".into()));
                firecamp_manage::operations::request(api, &cluster, name, req, "firecamp-cli").await.map_err(|e| match e {
                    RequestError::NotFound(_) => CliError::NotFound(format!("service {name:?} does not exist")),
                    RequestError::Busy(m) => CliError::Failed(m),
                    RequestError::Invalid(v) => CliError::from(v),
                    RequestError::Kube(k) => kube_err("asking for an operation on", name, k),
                })
            }
        }
    }

    /// Asks to cancel operation `id`, or the unfinished one.
    pub async fn cancel_operation(&self, name: &str, id: Option<&str>) -> Result<Operation, CliError> {
        match self {
            Backend::Rest(c) => {
                let id = match id {
                    Some(id) => id.to_string(),
                    None => {
                        let ops: OperationList = c.get(&paths::operations(name)).await?;
                        let op = ops.items.into_iter().find(|o| !o.phase.is_terminal());
                        op.map(|o| o.id).ok_or_else(|| CliError::Usage(format!("service {name:?} has no operation under way")))?
                    }
                };
                c.post(&paths::cancel_operation(name, &id), &serde_json::json!({})).await
            }
            Backend::Kube(api) => firecamp_manage::operations::cancel(api, name, id, "firecamp-cli").await.map_err(|e| match e {
                RequestError::NotFound(_) => CliError::NotFound(format!("service {name:?} does not exist")),
                RequestError::Busy(m) => CliError::Failed(m),
                RequestError::Invalid(v) => CliError::from(v),
                RequestError::Kube(k) => kube_err("cancelling an operation of", name, k),
            }),
        }
    }

    pub async fn operations(&self, name: &str) -> Result<OperationList, CliError> {
        match self {
            Backend::Rest(c) => c.get(&paths::operations(name)).await,
            Backend::Kube(api) => {
                let svc = api.get_opt(name).await.map_err(|e| kube_err("reading", name, e))?;
                let svc = svc.ok_or_else(|| CliError::NotFound(format!("service {name:?} does not exist")))?;
                Ok(OperationList { items: firecamp_manage::operations::list(&svc) })
            }
        }
    }

    pub async fn create(&self, req: &CreateService) -> Result<Service, CliError> {
        match self {
            Backend::Rest(c) => c.post(paths::SERVICES, req).await,
            Backend::Kube(api) => {
                let r = FireCampService::new(&req.name, FireCampServiceSpec(req.spec.clone()));
                let created = api.create(&PostParams::default(), &r).await.map_err(|e| kube_err("creating", &req.name, e))?;
                Ok(to_service(&created))
            }
        }
    }

    pub async fn get_opt(&self, name: &str) -> Result<Option<Service>, CliError> {
        match self {
            Backend::Rest(c) => c.get_opt(&paths::service(name)).await,
            Backend::Kube(api) => Ok(api.get_opt(name).await.map_err(|e| kube_err("reading", name, e))?.map(|r| to_service(&r))),
        }
    }

    pub async fn get(&self, name: &str) -> Result<Service, CliError> {
        self.get_opt(name).await?.ok_or_else(|| CliError::NotFound(format!("service {name:?} does not exist")))
    }

    pub async fn list(&self) -> Result<ServiceList, CliError> {
        match self {
            Backend::Rest(c) => c.get(paths::SERVICES).await,
            Backend::Kube(api) => {
                let list = api.list(&ListParams::default()).await.map_err(|e| kube_err("listing", "services", e))?;
                Ok(ServiceList { items: list.items.iter().map(to_service).collect() })
            }
        }
    }

    pub async fn delete(&self, name: &str, delete_volumes: bool) -> Result<(), CliError> {
        match self {
            Backend::Rest(c) => {
                let _: Service = c.delete(&format!("{}?deleteVolumes={delete_volumes}", paths::service(name))).await?;
                Ok(())
            }
            Backend::Kube(api) => {
                // The controller's finalizer reads the annotation when it cleans up.
                let patch = firecamp_manage::crd::delete_volumes_mark(delete_volumes);
                api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(|e| kube_err("deleting", name, e))?;
                if let Err(e) = api.delete(name, &DeleteParams::default()).await {
                    // Not deleted: no mark may stay behind for a later deletion to act on.
                    let _ = api.patch(name, &PatchParams::default(), &Patch::Merge(&firecamp_manage::crd::delete_volumes_unmark())).await;
                    return Err(kube_err("deleting", name, e));
                }
                Ok(())
            }
        }
    }
}
