//! The embedded DNS server answers for the members' names.

mod common;

use std::time::Duration;

use common::{require, spec, with_bed};
use firecamp_api::Phase;
use firecamp_core::EngineKind;
use serde_json::json;

/// A minimal DNS A query for `name`, sent over UDP; returns the answer's addresses.
async fn query_a(server: std::net::SocketAddr, name: &str) -> Vec<std::net::Ipv4Addr> {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(&q, server).await.unwrap();
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut buf)).await.expect("a DNS answer").unwrap();
    let answers = u16::from_be_bytes([buf[6], buf[7]]);
    let mut at = q.len();
    let mut out = Vec::new();
    for _ in 0..answers {
        // The owner name: labels ending in a zero byte, or a compression pointer.
        while at < n {
            let b = buf[at];
            if b & 0xC0 == 0xC0 {
                at += 2;
                break;
            }
            at += 1 + b as usize;
            if b == 0 {
                break;
            }
        }
        let rtype = u16::from_be_bytes([buf[at], buf[at + 1]]);
        let rdlen = u16::from_be_bytes([buf[at + 8], buf[at + 9]]) as usize;
        let data = &buf[at + 10..at + 10 + rdlen];
        if rtype == 1 && rdlen == 4 {
            out.push(std::net::Ipv4Addr::new(data[0], data[1], data[2], data[3]));
        }
        at += 10 + rdlen;
    }
    out
}

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
