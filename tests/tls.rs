//! `wss://`: a relay serving TLS with a team CA, and clients that trust it
//! only when told to.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use spoke::service::{Hub, NewBrief, replica_path};
use spoke_relay::relay::RelayConfig;
use std::path::Path;

/// A CA and a certificate for 127.0.0.1 / localhost signed by it, as PEM files.
fn team_ca(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key")).expect("ca");
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("leaf params")
        .signed_by(&leaf_key, &ca)
        .expect("leaf");
    let (ca_pem, cert_pem, key_pem) = (
        dir.join("ca.pem"),
        dir.join("relay.pem"),
        dir.join("relay.key"),
    );
    std::fs::write(&ca_pem, ca.pem()).expect("write ca");
    std::fs::write(&cert_pem, leaf.pem()).expect("write cert");
    std::fs::write(&key_pem, leaf_key.serialize_pem()).expect("write key");
    (ca_pem, cert_pem, key_pem)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_syncs_over_wss_when_it_trusts_the_relays_ca() {
    let dir = tempfile::tempdir().expect("tmp");
    let (ca, cert, key) = team_ca(dir.path());
    let mut config = RelayConfig::new(dir.path().join("relay"));
    config.tls = Some(spoke_relay::tls::server_config(&cert, &key).expect("tls config"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let running = spoke_relay::server::start(listener, config)
        .await
        .expect("start");
    let hub = running.relay.registry.create_hub("Secure").expect("hub");
    let (token, _) = running
        .relay
        .registry
        .issue(&hub.id, "ana", "lead", None)
        .expect("token");
    let url = format!("wss://127.0.0.1:{}/v1/hubs/{}", running.addr.port(), hub.id);

    // Without the team CA the relay's certificate is not trusted.
    let stranger = dir.path().join("stranger");
    let err = spoke::sync::join(&stranger, &url, &token, None)
        .await
        .expect_err("untrusted certificate");
    let msg = format!("{err:#}");
    assert!(msg.contains("cannot reach the relay"), "{msg}");
    assert!(
        !replica_path(&stranger).exists(),
        "a failed join leaves no replica"
    );

    // Plain ws:// to a TLS port fails cleanly too.
    let plain = url.replacen("wss://", "ws://", 1);
    assert!(
        spoke::sync::join(&dir.path().join("plain"), &plain, &token, None)
            .await
            .is_err()
    );

    // With it, join, write and sync work as over ws://.
    let home = dir.path().join("ana");
    let (welcome, _) = spoke::sync::join(&home, &url, &token, Some(&ca))
        .await
        .expect("join over wss");
    assert_eq!(welcome.member, "ana");
    {
        let mut hub = Hub::open(&home, None).expect("open");
        hub.add_brief(NewBrief {
            title: "Encrypted in transit".into(),
            ..NewBrief::default()
        })
        .expect("add");
    }
    let report = spoke::sync::sync_once(&home).await.expect("sync over wss");
    assert_eq!(report.pushed, 1);
    // The relay's grant of ana's role, then her brief.
    assert_eq!(report.cursor, 2);
    running.shutdown().await.expect("shutdown");
}
