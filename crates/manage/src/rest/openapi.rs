//! `GET /openapi.json`: the API described as OpenAPI 3.1, its schemas generated from the
//! firecamp-api types (so they cannot drift from what the server sends).

use firecamp_api::{ApiError, CreateService, MemberStatus, Service, ServiceList, paths};
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

/// Every path the server routes, as OpenAPI writes them.
pub fn all_paths() -> Vec<String> {
    vec![
        paths::SERVICES.to_string(),
        paths::service("{name}"),
        paths::members("{name}"),
        paths::stop("{name}"),
        paths::start("{name}"),
        paths::logs("{name}"),
        paths::operations("{name}"),
        paths::operation("{name}", "{id}"),
        paths::cancel_operation("{name}", "{id}"),
        paths::backups("{name}"),
        paths::backup("{name}", "{id}"),
        paths::restore("{name}"),
        paths::HEALTH.to_string(),
        super::METRICS_PATH.to_string(),
        paths::OPENAPI.to_string(),
    ]
}

fn error(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}})
}

fn ok(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn errors(codes: &[u16]) -> Map<String, Value> {
    codes
        .iter()
        .map(|c| {
            let d = match c {
                400 => "The request or the spec breaks a rule (`fields` names every broken one).",
                401 => "No bearer token, or Kubernetes did not authenticate it.",
                403 => "The cluster's RBAC does not allow this on firecampservices.firecamp.dev in the namespace.",
                404 => "No service of that name in the namespace.",
                409 => "A service of that name exists, or (operations) another operation of the service is not finished.",
                412 => "Another change won the race; read the service again and retry.",
                501 => "Not available on this cluster (member logs need --aws, backups --backup-target).",
                503 => "Kubernetes is unreachable.",
                _ => "Error.",
            };
            (c.to_string(), error(d))
        })
        .collect()
}

fn responses(success: (&str, Value), codes: &[u16]) -> Value {
    let mut m = Map::new();
    m.insert(success.0.to_string(), success.1);
    m.extend(errors(codes));
    m.insert("500".into(), error("An internal error."));
    Value::Object(m)
}

fn namespace_param() -> Value {
    json!({"name": "namespace", "in": "query", "required": false, "description": "The services' namespace.",
           "schema": {"type": "string", "default": "default"}})
}

fn name_param() -> Value {
    json!({"name": "name", "in": "path", "required": true, "description": "The service's name.", "schema": {"type": "string"}})
}

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// The document.
pub fn document() -> Value {
    let mut generator = SchemaSettings::draft2020_12().with(|s| s.definitions_path = "/components/schemas".into()).into_generator();
    let mut schemas = Map::new();
    for (name, schema) in [
        ("CreateService", generator.subschema_for::<CreateService>()),
        ("Service", generator.subschema_for::<Service>()),
        ("ServiceList", generator.subschema_for::<ServiceList>()),
        ("MemberStatus", generator.subschema_for::<MemberStatus>()),
        ("ApiError", generator.subschema_for::<ApiError>()),
        ("OperationRequest", generator.subschema_for::<firecamp_api::OperationRequest>()),
        ("Operation", generator.subschema_for::<firecamp_api::Operation>()),
        ("OperationList", generator.subschema_for::<firecamp_api::OperationList>()),
        ("Backup", generator.subschema_for::<firecamp_api::Backup>()),
        ("BackupList", generator.subschema_for::<firecamp_api::BackupList>()),
        ("RestoreRequest", generator.subschema_for::<firecamp_api::RestoreRequest>()),
    ] {
        // Named types come back as references to the definitions collected below.
        if schema.get("$ref").is_none() {
            schemas.insert(name.to_string(), schema.to_value());
        }
    }
    schemas.extend(generator.take_definitions(true));

    let auth = json!([{"bearer": []}]);
    let as_operation = |summary: &str, id: &str| {
        json!({"post": {"summary": summary, "operationId": id, "security": auth, "parameters": [name_param(), namespace_param()],
            "responses": responses(("202", ok("Accepted: the operation, Pending until the controller takes it up.", r("Operation"))), &[400, 401, 403, 404, 409, 503])}})
    };
    let operations_path = json!({
        "get": {"summary": "The service's operations, newest first.", "operationId": "listOperations", "security": auth,
                "parameters": [name_param(), namespace_param()],
                "responses": responses(("200", ok("The operations.", r("OperationList"))), &[400, 401, 403, 404, 503])},
        "post": {"summary": "Start a day-2 operation (upgrade, restart, config, resources, stop, start); 409 while another runs.",
                 "operationId": "createOperation", "security": auth, "parameters": [name_param(), namespace_param()],
                 "requestBody": {"required": true, "content": {"application/json": {"schema": r("OperationRequest")}}},
                 "responses": responses(("202", ok("Accepted.", r("Operation"))), &[400, 401, 403, 404, 409, 503])}
    });
    let operation_path = json!({
        "get": {"summary": "One operation with its steps.", "operationId": "getOperation", "security": auth,
                "parameters": [name_param(), namespace_param(), {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": responses(("200", ok("The operation.", r("Operation"))), &[400, 401, 403, 404, 503])}
    });
    let logs_path = json!({"get": {"summary": "The members' log lines from CloudWatch Logs (?member=, ?since=, ?follow=true); 501 without --aws.",
        "operationId": "serviceLogs", "security": auth, "parameters": [name_param(), namespace_param()],
        "responses": responses(("200", json!({"description": "Lines, `<RFC 3339> <message>`.", "content": {"text/plain": {"schema": {"type": "string"}}}})), &[400, 401, 403, 404, 501, 503])}});
    let services_path = json!({
        "get": {"summary": "List the services of a namespace.", "operationId": "listServices", "security": auth,
                "parameters": [namespace_param()],
                "responses": responses(("200", ok("The services.", r("ServiceList"))), &[400, 401, 403, 503])},
        "post": {"summary": "Create a service; the controller then brings it to ACTIVE.", "operationId": "createService", "security": auth,
                 "parameters": [namespace_param()],
                 "requestBody": {"required": true, "content": {"application/json": {"schema": r("CreateService")}}},
                 "responses": responses(("201", ok("Created; its phase is CREATING.", r("Service"))), &[400, 401, 403, 409, 503])}
    });
    let service_path = json!({
        "get": {"summary": "One service, its status and members.", "operationId": "getService", "security": auth,
                "parameters": [name_param(), namespace_param()],
                "responses": responses(("200", ok("The service.", r("Service"))), &[400, 401, 403, 404, 503])},
        "delete": {"summary": "Delete a service; its volumes are kept unless deleteVolumes=true.", "operationId": "deleteService", "security": auth,
                   "parameters": [name_param(), namespace_param(),
                       {"name": "deleteVolumes", "in": "query", "required": false, "description": "Also delete the members' data (irreversible).",
                        "schema": {"type": "boolean", "default": false}}],
                   "responses": responses(("200", ok("Being deleted; its phase is DELETING.", r("Service"))), &[400, 401, 403, 404, 412, 503])}
    });
    let members_path = json!({
        "get": {"summary": "The service's members: zone, node, address, role, readiness.", "operationId": "listMembers", "security": auth,
                "parameters": [name_param(), namespace_param()],
                "responses": responses(("200", ok("The members.", json!({"type": "array", "items": r("MemberStatus")}))), &[400, 401, 403, 404, 503])}
    });
    let text = |d: &str, t: &str| json!({"description": d, "content": {t: {"schema": {"type": "string"}}}});
    let mut p = Map::new();
    p.insert(paths::SERVICES.into(), services_path);
    p.insert(paths::service("{name}"), service_path);
    p.insert(paths::members("{name}"), members_path);
    p.insert(paths::stop("{name}"), as_operation("Stop every member, data kept: an operation of kind stop.", "stopService"));
    p.insert(paths::start("{name}"), as_operation("Start a stopped service: an operation of kind start.", "startService"));
    p.insert(paths::operations("{name}"), operations_path);
    p.insert(paths::operation("{name}", "{id}"), operation_path);
    p.insert(paths::logs("{name}"), logs_path);
    // Served by the local runtime (docs/backup.md); the manage service answers 501 for now.
    let id_param = json!({"name": "id", "in": "path", "required": true, "description": "A backup id, as listed.", "schema": {"type": "string"}});
    p.insert(
        paths::backups("{name}"),
        json!({"get": {"summary": "The service's backups, newest first (also a deleted service's). Local runtime; 501 on Kubernetes for now.",
            "operationId": "listBackups", "security": auth, "parameters": [name_param(), namespace_param()],
            "responses": responses(("200", ok("The backups.", r("BackupList"))), &[400, 401, 403, 404, 501, 503])}}),
    );
    p.insert(
        paths::backup("{name}", "{id}"),
        json!({"delete": {"summary": "Delete one backup and the archived WAL only it needed. Local runtime; 501 on Kubernetes for now.",
            "operationId": "deleteBackup", "security": auth, "parameters": [name_param(), namespace_param(), id_param],
            "responses": responses(("200", ok("The deleted backup.", r("Backup"))), &[400, 401, 403, 404, 409, 501, 503])}}),
    );
    p.insert(
        paths::restore("{name}"),
        json!({"post": {"summary": "Make a new service from a backup (PostgreSQL: up to toTime). Checked first; nothing is made when refused. Local runtime; 501 on Kubernetes for now.",
            "operationId": "restoreService", "security": auth, "parameters": [name_param(), namespace_param()],
            "requestBody": {"required": true, "content": {"application/json": {"schema": r("RestoreRequest")}}},
            "responses": responses(("201", ok("Created; its first start restores the backup.", r("Service"))), &[400, 401, 403, 404, 409, 501, 503])}}),
    );
    p.insert(
        paths::cancel_operation("{name}", "{id}"),
        json!({"post": {"summary": "Cancel an operation: no further step starts (Kubernetes: at once; local runtime: after the step under way).",
        "operationId": "cancelOperation", "security": auth,
        "parameters": [name_param(), namespace_param(), {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": responses(("202", ok("Cancel requested.", r("Operation"))), &[400, 401, 403, 404, 503])}}),
    );
    p.insert(
        paths::HEALTH.into(),
        json!({"get": {"summary": "Liveness and readiness; no authentication.", "security": [],
        "responses": {"200": text("The server is up.", "text/plain")}}}),
    );
    p.insert(
        super::METRICS_PATH.into(),
        json!({"get": {"summary": "Prometheus metrics: FireCamp's counters and every service's gauges (on Kubernetes, from the leading replica). Kubernetes: an ordinary ServiceAccount token RBAC allows `get` on the non-resource URL /metrics; local runtime: the API's token.",
        "operationId": "metrics", "security": auth,
        "responses": responses(("200", text("Metrics in the Prometheus text format.", "text/plain; version=0.0.4")), &[401, 403, 503])}}),
    );
    p.insert(
        paths::OPENAPI.into(),
        json!({"get": {"summary": "This document; no authentication.", "security": [],
        "responses": {"200": {"description": "OpenAPI 3.1.", "content": {"application/json": {"schema": {"type": "object"}}}}}}}),
    );

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "FireCamp manage service",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Stateful services on Kubernetes. Every request under /v1 needs `Authorization: Bearer <token>` (a Kubernetes token, checked with a TokenReview); the cluster's RBAC on firecampservices.firecamp.dev decides what it may do (SubjectAccessReview). Errors are ApiError bodies."
        },
        "paths": p,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "A Kubernetes token (e.g. `kubectl create token <serviceaccount>`)."}}
        },
        "security": auth
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_lists_every_path_and_resolves_every_reference() {
        let doc = document();
        let text = serde_json::to_string(&doc).unwrap();
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["openapi"], "3.1.0");
        let listed: Vec<&String> = back["paths"].as_object().unwrap().keys().collect();
        for p in all_paths() {
            assert!(listed.contains(&&p), "{p} missing from {listed:?}");
        }
        assert_eq!(listed.len(), all_paths().len());
        // Every $ref points at a schema in components.
        let schemas = back["components"]["schemas"].as_object().unwrap();
        for name in ["CreateService", "Service", "ServiceList", "MemberStatus", "ApiError", "ServiceSpec"] {
            assert!(schemas.contains_key(name), "{name} missing from {:?}", schemas.keys().collect::<Vec<_>>());
        }
        let mut refs = Vec::new();
        collect_refs(&back, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("reference outside components: {r}"));
            assert!(schemas.contains_key(name), "dangling reference {r}");
        }
    }

    #[test]
    fn create_service_schema_refuses_unknown_fields() {
        let doc = document();
        assert_eq!(doc["components"]["schemas"]["CreateService"]["additionalProperties"], false);
    }

    fn collect_refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("$ref", Value::String(s)) => out.push(s.clone()),
                        _ => collect_refs(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
            _ => {}
        }
    }
}
