//! The embedded DNS server answers for the members' names.

mod common;

use std::time::Duration;

use common::{query_a, require, spec, with_bed};
use firecamp_api::Phase;
use firecamp_core::EngineKind;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn member_names_resolve_through_the_embedded_server() {
    require(EngineKind::Redis);
    with_bed(
        "t-dns",
        "127.0.150.1/10",
        |_| {},
        |bed| async move {
            bed.create(json!({ "name": "rd", "spec": spec("redis", 1, "128Mi") })).await.expect("created");
            bed.wait_phase("rd", Phase::Active, Duration::from_secs(60)).await;
            let got = query_a(bed.dns_addr, "rd-0.t-dns-firecamp.com").await;
            assert_eq!(got, vec!["127.0.150.1".parse::<std::net::Ipv4Addr>().unwrap()]);
            bed.delete("rd", true).await;
            assert!(query_a(bed.dns_addr, "rd-0.t-dns-firecamp.com").await.is_empty(), "the name goes with the service");
            assert!(!bed.cfg.service_dir("rd").exists(), "deleteVolumes removes the data");
        },
    )
    .await;
}
