//! The members' identity: `firecamp member-init` may read its own member's ConfigMap, nothing else.

use firecamp_catalog::ServicePlan;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};

use crate::{labels, meta, names};

pub fn service_account(plan: &ServicePlan) -> ServiceAccount {
    ServiceAccount {
        metadata: meta::namespaced(plan, names::member_account(&plan.name), labels::common(plan)),
        automount_service_account_token: Some(false),
        ..Default::default()
    }
}

pub fn role(plan: &ServicePlan) -> Role {
    Role {
        metadata: meta::namespaced(plan, names::member_account(&plan.name), labels::common(plan)),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["configmaps".into()]),
            resource_names: Some(plan.members.iter().map(|m| names::config_map(&m.member.name)).collect()),
            verbs: vec!["get".into()],
            ..Default::default()
        }]),
    }
}

pub fn role_binding(plan: &ServicePlan) -> RoleBinding {
    let name = names::member_account(&plan.name);
    RoleBinding {
        metadata: meta::namespaced(plan, name.clone(), labels::common(plan)),
        role_ref: RoleRef { api_group: Some("rbac.authorization.k8s.io".into()), kind: "Role".into(), name: name.clone() },
        subjects: Some(vec![Subject { kind: "ServiceAccount".into(), name, namespace: Some(plan.cluster.namespace.clone()), ..Default::default() }]),
    }
}
