//! The CLI as a user meets it: exit codes, messages, and what --dry-run prints.

use std::process::{Command, Output};

fn firecamp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_firecamp")).args(args).env_remove("FIRECAMP_ZONES").output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const ZONES: &str = "--zones=us-east-1a,us-east-1b,us-east-1c";

#[test]
fn unknown_engine_is_a_usage_error_listing_the_engines() {
    let o = firecamp(&["service", "create", "mysql", "db", ZONES, "--dry-run"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown engine \"mysql\"; FireCamp's catalog has: postgresql, redis, zookeeper, kafka"), "{}", stderr(&o));
}

#[test]
fn invalid_spec_exits_2_naming_every_field() {
    let o = firecamp(&["service", "create", "zookeeper", "Zk", ZONES, "--replicas=4", "--volume-size=10GB", "--dry-run"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("name: must start with a lowercase letter"), "{e}");
    assert!(e.contains("spec.replicas: a ZooKeeper ensemble needs an odd number of members"), "{e}");
    assert!(e.contains("spec.volumes.data.size: \"10GB\" is not a quantity"), "{e}");
    assert!(o.stdout.is_empty(), "nothing is printed for a refused spec");
}

#[test]
fn zones_are_required() {
    let o = firecamp(&["service", "create", "postgresql", "pg", "--dry-run"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--zones is required"), "{}", stderr(&o));
}

#[test]
fn unknown_engine_option_names_the_allowed_ones() {
    let o = firecamp(&["service", "create", "redis", "r", ZONES, "--option=shard=3", "--dry-run"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("--option for redis: unknown field `shard`"), "{e}");
    assert!(e.contains("`shards`"), "{e}");
}

#[test]
fn redis_cluster_defaults_to_two_members_per_shard() {
    let o = firecamp(&["service", "create", "redis", "rc", ZONES, "--option=mode=cluster", "--option=shards=3", "--dry-run", "-o", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let sts = list["items"].as_array().unwrap().iter().find(|i| i["kind"] == "StatefulSet").unwrap();
    assert_eq!(sts["spec"]["replicas"], 6);
}

/// #13: `--tls-issuer` takes Issuer/NAME or ClusterIssuer/NAME (exit 2 otherwise); the dry run
/// shows a cert-manager Certificate per member and no CA Secret.
#[test]
fn a_tls_issuer_renders_certificates_and_bad_ones_are_usage_errors() {
    for bad in ["--tls-issuer=Secret/ca", "--tls-issuer=Issuer/Bad_Name", "--tls-issuer=ca"] {
        let o = firecamp(&["service", "create", "postgresql", "pg", ZONES, bad, "--dry-run"]);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", stderr(&o));
        assert!(stderr(&o).contains("--tls-issuer"), "{bad}: {}", stderr(&o));
    }
    let o = firecamp(&["service", "create", "postgresql", "pg", ZONES, "--replicas=2", "--tls-issuer=Issuer/ca", "--dry-run", "-o", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let items = list["items"].as_array().unwrap();
    let certs: Vec<&str> = items.iter().filter(|i| i["kind"] == "Certificate").map(|i| i["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(certs, ["pg-0-certificate", "pg-1-certificate"]);
    assert!(items.iter().all(|i| i["metadata"]["name"] != "pg-ca"), "no CA Secret with an issuer");
}

#[test]
fn creating_without_a_manage_service_says_where_it_looked() {
    let o = firecamp(&["service", "create", "postgresql", "pg", ZONES, "--server", "http://127.0.0.1:9"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("cannot reach the manage service at http://127.0.0.1:9"), "{e}");
    assert!(e.contains("firecamp local up"), "{e}");
}

#[test]
fn passwords_are_printed_only_when_asked() {
    let redacted = firecamp(&["service", "create", "redis", "r", ZONES, "--dry-run"]);
    let text = String::from_utf8(redacted.stdout).unwrap();
    assert!(text.contains("password: \"<redacted: print with --show-secrets>\""), "{text}");
    let shown = firecamp(&["service", "create", "redis", "r", ZONES, "--dry-run", "--show-secrets", "-o", "json"]);
    let list: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let secret = list["items"].as_array().unwrap().iter().find(|i| i["kind"] == "Secret").unwrap();
    let pw = secret["stringData"]["password"].as_str().unwrap();
    assert_eq!(pw.len(), 32);
    assert!(pw.chars().all(|c| c.is_ascii_alphanumeric()));
}

#[test]
fn catalog_lists_pinned_versions() {
    let o = firecamp(&["catalog", "-o", "json"]);
    assert_eq!(o.status.code(), Some(0));
    let entries: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let images: Vec<&str> = entries.as_array().unwrap().iter().map(|e| e["image"].as_str().unwrap()).collect();
    assert!(images.contains(&"docker.io/library/postgres:15.10-bookworm"));
    assert!(images.iter().all(|i| !i.ends_with(":latest") && i.contains(':')));
}

#[test]
fn install_render_refuses_values_that_would_reach_the_deployment_unchecked() {
    let base = ["install", "render", "--cluster=prod", "--zones=a,b,c"];
    for (flag, field) in [
        ("--image-registry=evil;rm", "--image-registry"),
        ("--aws-credentials-secret=../x", "--aws-credentials-secret"),
        ("--aws-endpoint-url=http://h:1/$(id)", "--aws-endpoint-url"),
        ("--aws-endpoint-url=file:///etc/passwd", "--aws-endpoint-url"),
        ("--tls-secret=../x", "--tls-secret"),
        ("--cert-manager-issuer=Secret/x", "--cert-manager-issuer"),
        ("--cert-manager-issuer=Issuer/Bad_Name", "--cert-manager-issuer"),
        ("--zones=a,b;id", "--zones"),
        ("--zones=a,a", "--zones"),
    ] {
        let mut args = base.to_vec();
        args.push(flag);
        let o = firecamp(&args);
        assert_eq!(o.status.code(), Some(2), "{flag}: {}", stderr(&o));
        assert!(stderr(&o).contains(field), "{flag}: {}", stderr(&o));
    }
    let ok = firecamp(&["install", "render", "--cluster=prod", "--zones=a,b,c", "--aws-credentials-secret=aws", "--aws-endpoint-url=http://10.250.0.1:5000"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
}

/// #19: `install render --zones` reaches the manage service, which refuses services placed
/// outside them.
#[test]
fn install_render_gives_the_manage_service_the_clusters_zones() {
    let o = firecamp(&["install", "render", "--cluster=prod", "--zones=us-east-1a,us-east-1b", "-o", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let deployment = list["items"].as_array().unwrap().iter().find(|o| o["kind"] == "Deployment").expect("the manage Deployment");
    let args: Vec<&str> = deployment["spec"]["template"]["spec"]["containers"][0]["args"].as_array().unwrap().iter().filter_map(|a| a.as_str()).collect();
    assert!(args.contains(&"--zones=us-east-1a,us-east-1b"), "{args:?}");
}

/// #12 item 6: the manage service serves plain HTTP only on loopback unless told
/// `--insecure-http`; the refusal (exit 2, before any listening) names the flags that fix it.
#[test]
fn manage_refuses_plain_http_on_a_non_loopback_address() {
    for listen in ["0.0.0.0:0", "10.250.0.1:0", "[::]:0"] {
        let o = Command::new(env!("CARGO_BIN_EXE_firecamp"))
            .args(["manage", "--cluster=prod", &format!("--listen={listen}")])
            .env("KUBECONFIG", "/nonexistent")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{listen}: {}", stderr(&o));
        for flag in ["--listen", "--tls-ca-secret", "--tls-cert", "--insecure-http"] {
            assert!(stderr(&o).contains(flag), "{listen}: {}", stderr(&o));
        }
    }
}

/// `install render` serves HTTPS from FireCamp's own CA by default; the other choices are asked for.
#[test]
fn install_render_serves_https_by_default() {
    let render = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["install", "render", "--cluster=prod", "--zones=a,b,c", "-o", "json"];
        args.extend(extra);
        let o = firecamp(&args);
        assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let deployment = |v: &serde_json::Value| v["items"].as_array().unwrap().iter().find(|o| o["kind"] == "Deployment").unwrap().clone();
    let args = |v: &serde_json::Value| deployment(v)["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    let probe = |v: &serde_json::Value| deployment(v)["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["scheme"].clone();

    let default = render(&[]);
    assert!(args(&default).contains("--tls-ca-secret=firecamp-manage-ca"), "{}", args(&default));
    assert_eq!(probe(&default), "HTTPS");
    let tls = render(&["--tls-secret=my-tls"]);
    assert!(args(&tls).contains("--tls-cert=/etc/firecamp/tls/tls.crt") && !args(&tls).contains("--tls-ca-secret"), "{}", args(&tls));
    assert_eq!(deployment(&tls)["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"], "my-tls");
    let cm = render(&["--cert-manager-issuer=ClusterIssuer/corp-ca"]);
    let cert = cm["items"].as_array().unwrap().iter().find(|o| o["kind"] == "Certificate").expect("a cert-manager Certificate").clone();
    assert_eq!((cert["spec"]["issuerRef"]["kind"].as_str(), cert["spec"]["issuerRef"]["name"].as_str()), (Some("ClusterIssuer"), Some("corp-ca")));
    assert_eq!(cert["spec"]["secretName"], deployment(&cm)["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"]);
    let plain = render(&["--insecure-http"]);
    assert!(args(&plain).contains("--insecure-http"), "{}", args(&plain));
    assert_eq!(probe(&plain), serde_json::Value::Null);
    let o = firecamp(&["install", "render", "--cluster=prod", "--zones=a,b,c", "--insecure-http", "--tls-secret=x"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// Issue #19: shell completions. The bash script, sourced, completes the commands; zsh and fish
/// get theirs; an unknown shell is a usage error naming the ones there are.
#[test]
fn completion_scripts_complete_the_commands() {
    let script = std::env::temp_dir().join(format!("firecamp-completion-{}.bash", std::process::id()));
    let o = firecamp(&["completion", "bash"]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(&script, &o.stdout).unwrap();
    // As bash calls it: the words so far, the index of the one completed, and the function's
    // arguments (the command, the current word, the previous word).
    let complete = |words: &str, cword: usize| {
        let sh = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD={cword}; _firecamp firecamp \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; echo \"${{COMPREPLY[@]}}\"",
            script.display()
        );
        let out = Command::new("bash").args(["-c", &sh]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let top = complete("firecamp ''", 1);
    for c in ["service", "local", "catalog", "completion"] {
        assert!(top.split_whitespace().any(|w| w == c), "{c} in {top:?}");
    }
    let service = complete("firecamp service rot", 2);
    assert_eq!(service.trim(), "rotate-certs");
    let _ = std::fs::remove_file(&script);
    for shell in ["zsh", "fish"] {
        let o = firecamp(&["completion", shell]);
        assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("rotate-certs"), "{shell}");
    }
    let o = firecamp(&["completion", "ksh"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("possible values: bash"), "{}", stderr(&o));
}

/// Issue #19: update policies in the spellings users type.
#[test]
fn policies_are_accepted_as_users_type_them() {
    let o = firecamp(&["service", "restart", "pg", "--policy", "sideways", "--server=http://127.0.0.1:9"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("allowed: PrimaryFirst, PrimaryLast (or primary-first, primary-last)"), "{}", stderr(&o));
    // Accepted: the command goes on to the (absent) server.
    for p in ["primary-last", "primarylast", "PrimaryFirst"] {
        let o = firecamp(&["service", "restart", "pg", "--policy", p, "--server=http://127.0.0.1:9"]);
        assert!(!stderr(&o).contains("unknown update policy"), "{p}: {}", stderr(&o));
    }
}

/// Issue #19: a manual page and examples under --help.
#[test]
fn the_manual_page_and_help_show_examples() {
    let o = firecamp(&["man"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let page = String::from_utf8_lossy(&o.stdout);
    assert!(page.contains(".TH firecamp 1") && page.contains("Examples:"), "{page}");
    let help = String::from_utf8_lossy(&firecamp(&["--help"]).stdout).into_owned();
    assert!(help.contains("firecamp service create postgresql pg") && help.contains("completion bash"), "{help}");
}

/// Golden files of the CLI's renderings: `UPDATE_GOLDEN=1 cargo test -p firecamp --test cli`
/// accepts a change.
fn golden(name: &str, text: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, text).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(text, want, "{} differs; review and run with UPDATE_GOLDEN=1 to accept", path.display());
}

/// #19 item 4, the EKS path: `install render` for IRSA (both ServiceAccounts annotated with
/// their roles) and the roles' trust policies for the cluster's OIDC provider, each a golden
/// file; ARNs and providers that are not are refused (exit 2, naming the flag).
#[test]
fn install_render_for_eks_annotates_the_service_accounts_and_prints_the_trust_policies() {
    let manage_role = "--service-account-role-arn=arn:aws:iam::123456789012:role/firecamp-manage-prod";
    let agent_role = "--log-agent-role-arn=arn:aws:iam::123456789012:role/firecamp-log-agent-prod";
    let o = firecamp(&["install", "render", "--cluster=prod", ZONES, "--vpc-id=vpc-0abc", "--region=us-east-1", manage_role, agent_role]);
    assert!(o.status.success(), "{}", stderr(&o));
    golden("install-eks.yaml", &String::from_utf8(o.stdout).unwrap());
    let issuer = "--oidc-provider=https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";
    let o = firecamp(&["install", "render", "--cluster=prod", ZONES, "--iam-trust-policy", "--account-id=123456789012", issuer]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("system:serviceaccount:firecamp-system:firecamp-manage")
            && text.contains("system:serviceaccount:firecamp-system:firecamp-log-agent-prod"),
        "{text}"
    );
    golden("iam-trust-eks.json", &text);
    for (args, flag) in [
        (vec!["--service-account-role-arn=arn:aws:iam::123:role/x"], "--service-account-role-arn"),
        (vec!["--service-account-role-arn=arn:aws:iam::123456789012:role/a b"], "--service-account-role-arn"),
        (vec!["--log-agent-role-arn=arn:aws:s3:::bucket"], "--log-agent-role-arn"),
        (vec!["--iam-trust-policy", "--account-id=123456789012", "--oidc-provider=https://oidc.eks/$(id)"], "--oidc-provider"),
        (vec!["--iam-trust-policy", "--account-id=12", issuer], "--account-id"),
        (vec!["--iam-trust-policy", "--account-id=123456789012"], "--oidc-provider"),
    ] {
        let mut all = vec!["install", "render", "--cluster=prod", ZONES];
        all.extend(args.iter().copied());
        let o = firecamp(&all);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(flag), "{args:?}: {}", stderr(&o));
    }
}

/// `service scale` takes 1 to 99 members or shards, one of them; anything else is a usage error before any request.
#[test]
fn scale_replicas_out_of_range_is_a_usage_error() {
    for bad in ["0", "100", "-1", "three"] {
        let o = firecamp(&["service", "scale", "pg", "--replicas", bad]);
        assert_eq!(o.status.code(), Some(2), "--replicas {bad}: {}", stderr(&o));
        assert!(stderr(&o).contains("--replicas"), "{}", stderr(&o));
    }
    for bad in ["0", "100"] {
        let o = firecamp(&["service", "scale", "rc", "--shards", bad]);
        assert_eq!(o.status.code(), Some(2), "--shards {bad}: {}", stderr(&o));
        assert!(stderr(&o).contains("--shards"), "{}", stderr(&o));
    }
    let o = firecamp(&["service", "scale", "pg"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--replicas <REPLICAS>|--shards <SHARDS>"), "{}", stderr(&o));
    let o = firecamp(&["service", "scale", "rc", "--replicas", "8", "--shards", "4"]);
    assert_eq!(o.status.code(), Some(2), "one size at a time: {}", stderr(&o));
}
