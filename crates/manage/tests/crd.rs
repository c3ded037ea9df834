//! deploy/crd.yaml is generated from the Rust types; this fails when they drift apart.
//! To regenerate: `cargo run -p firecamp -- install crd > deploy/crd.yaml`.

#[test]
fn committed_crd_matches_the_rust_types() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/crd.yaml");
    let committed = std::fs::read_to_string(path).unwrap();
    assert!(committed == firecamp_manage::crd::crd_yaml(), "deploy/crd.yaml is stale: run `cargo run -p firecamp -- install crd > deploy/crd.yaml`");
}

#[test]
fn install_rbac_has_no_wildcards_and_no_cluster_admin() {
    let role = firecamp_manage::install::cluster_role();
    for r in role.rules.unwrap() {
        for v in r.verbs.iter().chain(r.resources.iter().flatten()).chain(r.api_groups.iter().flatten()) {
            assert_ne!(v, "*", "wildcard in {r:?}");
        }
    }
    let objs = firecamp_manage::install::render(&firecamp_manage::install::InstallOptions {
        cluster: "prod".into(),
        zones: vec!["us-east-1a".into()],
        networks: vec!["10.0.0.0/16".into()],
        volume_provisioner: "ebs.csi.aws.com".into(),
        image: "example/firecamp:1".into(),
        image_registry: Some("mirror.example:5000".into()),
        aws_vpc_id: Some("vpc-0abc".into()),
        aws_region: Some("us-east-1".into()),
        aws_endpoint_url: None,
        aws_credentials_secret: Some("aws".into()),
        backup_target: Some("s3://backups/prod".into()),
        backup_credentials_secret: Some("backup-keys".into()),
        service_account_role_arn: None,
        node_selector: [("pool".to_string(), "system".to_string())].into(),
        watch_namespace: None,
        tls: Default::default(),
    });
    let text = serde_json::to_string(&objs).unwrap();
    assert!(
        text.contains("--aws") && text.contains("--vpc-id=vpc-0abc") && text.contains("--aws-region=us-east-1"),
        "the manage service runs with its AWS parts"
    );
    assert!(!serde_json::to_string(&objs).unwrap().contains("cluster-admin"));
    let deploy = objs.iter().find(|o| o["kind"] == "Deployment").unwrap();
    assert_eq!(deploy["spec"]["replicas"], 2);
    let manage = &deploy["spec"]["template"]["spec"]["containers"][0];
    assert!(manage["args"].as_array().unwrap().iter().any(|a| a == "--image-registry=mirror.example:5000"), "{manage}");
    for arg in ["--backup-target=s3://backups/prod", "--backup-credentials-secret=backup-keys"] {
        assert!(manage["args"].as_array().unwrap().iter().any(|a| a == arg), "{arg}: {manage}");
    }
    assert_eq!(deploy["spec"]["template"]["spec"]["nodeSelector"]["pool"], "system");
    assert_eq!(manage["envFrom"][0]["secretRef"]["name"], "aws", "credentials from a Secret, never in argv: {manage}");
}

#[test]
fn a_manage_service_of_one_namespace_holds_its_namespaced_rights_there_only() {
    let objs = firecamp_manage::install::render(&firecamp_manage::install::InstallOptions {
        cluster: "prod".into(),
        zones: vec!["us-east-1a".into()],
        networks: vec!["10.0.0.0/16".into()],
        volume_provisioner: "ebs.csi.aws.com".into(),
        image: "example/firecamp:1".into(),
        image_registry: None,
        aws_vpc_id: None,
        aws_region: None,
        aws_endpoint_url: None,
        aws_credentials_secret: None,
        backup_target: None,
        backup_credentials_secret: None,
        service_account_role_arn: None,
        node_selector: Default::default(),
        watch_namespace: Some("team-a".into()),
        tls: Default::default(),
    });
    let resources = |o: &serde_json::Value| -> Vec<String> {
        o["rules"].as_array().unwrap().iter().flat_map(|r| r["resources"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string())).collect()
    };
    let cluster_role = objs.iter().find(|o| o["kind"] == "ClusterRole").unwrap();
    let cluster_wide = resources(cluster_role);
    for namespaced in ["secrets", "pods", "persistentvolumeclaims", "roles", "rolebindings", "firecampservices", "statefulsets", "configmaps"] {
        assert!(!cluster_wide.iter().any(|r| r == namespaced), "{namespaced} cluster-wide: {cluster_wide:?}");
    }
    let role = objs.iter().find(|o| o["kind"] == "Role" && o["metadata"]["namespace"] == "team-a").expect("a Role in team-a");
    assert!(resources(role).iter().any(|r| r == "secrets"), "{role}");
    let binding = objs.iter().find(|o| o["kind"] == "RoleBinding" && o["metadata"]["namespace"] == "team-a").expect("its RoleBinding");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(binding["subjects"][0]["namespace"], "firecamp-system");
    let deploy = objs.iter().find(|o| o["kind"] == "Deployment").unwrap();
    assert!(deploy["spec"]["template"]["spec"]["containers"][0]["args"].as_array().unwrap().iter().any(|a| a == "--watch-namespace=team-a"));
}
