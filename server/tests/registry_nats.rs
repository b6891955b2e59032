//! Hubs and tokens shared on a real three-node NATS cluster: two
//! `spoke-relay serve --nats` processes with empty data folders serve what
//! `spoke-relay hub create --nats` and `token issue --nats` (real processes)
//! stored; a revocation through the admin command reaches the other relay's
//! open sessions and new connections; and the registry goes on with a node
//! killed.

mod common;

use common::Client;
use common::nats::NatsCluster;
use common::process::{RelayProcess, cli_json, field, free_port};
use spoke_relay::proto::{ErrorCode, Frame};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Instant;

/// A hub made with `hub create --nats`, and a token per member made with
/// `token issue --nats`.
struct SharedHub {
    hub: String,
    /// handle -> (token, token id).
    tokens: HashMap<String, (String, String)>,
}

fn issue(urls: &str, hub: &str, handle: &str, role: &str) -> (String, String) {
    let issued = cli_json(&[
        "token", "issue", "--nats", urls, "--hub", hub, "--handle", handle, "--role", role,
        "--json",
    ]);
    assert_eq!(field(&issued, "role"), role);
    (field(&issued, "token"), field(&issued, "token_id"))
}

fn shared_hub(urls: &str, name: &str, members: &[(&str, &str)]) -> SharedHub {
    let created = cli_json(&["hub", "create", name, "--nats", urls, "--json"]);
    let hub = field(&created, "hub");
    let mut tokens = HashMap::from([(
        "admin".to_owned(),
        (field(&created, "token"), field(&created, "token_id")),
    )]);
    for (handle, role) in members {
        tokens.insert((*handle).to_owned(), issue(urls, &hub, handle, role));
    }
    SharedHub { hub, tokens }
}

/// `token revoke --nats`, as an admin runs it.
fn revoke(urls: &str, hub: &str, token_id: &str) {
    let out = Command::new(common::process::BIN)
        .args(["token", "revoke", "--nats", urls, "--hub", hub, token_id])
        .output()
        .expect("run spoke-relay token revoke");
    assert!(
        out.status.success(),
        "token revoke failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("revoked token {token_id}")));
}

/// A relay serving from the cluster alone: its data folder starts empty.
async fn relay_on(
    cluster: &NatsCluster,
    run: usize,
    logs: &std::path::Path,
) -> (RelayProcess, tempfile::TempDir) {
    let data = tempfile::tempdir().expect("data folder");
    let urls = cluster.urls();
    let relay = RelayProcess::start_with(
        data.path(),
        free_port(),
        logs,
        run,
        &["--nats", urls.as_str(), "--nats-replicas", "3"],
    )
    .await;
    (relay, data)
}

async fn join(addr: SocketAddr, hub: &str, token: &str) -> Client {
    let mut client = Client::connect(addr, hub).await;
    client.hello(token, hub, 0, 0).await;
    client
}

/// A Hello with `token` is refused as unauthorized, and the socket closed.
async fn refused(addr: SocketAddr, hub: &str, token: &str) {
    let mut client = Client::connect(addr, hub).await;
    client
        .send(&Frame::Hello {
            token: token.to_owned(),
            hub: hub.to_owned(),
            epoch: 0,
            cursor: 0,
        })
        .await;
    assert_eq!(
        client.expect_error_and_close(ErrorCode::Unauthorized).await,
        Some(1008)
    );
}

/// Reads past the log and presence until an `Error`, which must say the
/// token is no longer accepted; then the relay closes the socket.
async fn closed_as_unauthorized(client: &mut Client) -> String {
    loop {
        match client.recv().await {
            Frame::Ops { .. } | Frame::Presence { .. } => continue,
            Frame::Error { code, message, .. } => {
                assert_eq!(code, ErrorCode::Unauthorized, "{message}");
                assert_eq!(client.expect_close().await, Some(1008));
                return message;
            }
            other => panic!("expected the session to end as unauthorized, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_from_the_admin_command_work_on_both_relays_and_a_revocation_reaches_the_other() {
    let Some(cluster) = NatsCluster::start().await else {
        return;
    };
    let urls = cluster.urls();
    let logs = tempfile::tempdir().expect("log folder");
    let (relay_a, _data_a) = relay_on(&cluster, 0, logs.path()).await;
    let (relay_b, _data_b) = relay_on(&cluster, 1, logs.path()).await;
    // Made after both relays started: they learn of it from the bucket.
    let shared = shared_hub(&urls, "Shared", &[("cy", "creative"), ("dee", "reviewer")]);
    let hub = shared.hub.as_str();
    let (cy, cy_id) = shared.tokens["cy"].clone();

    // The admin command stored the secret's hash, never the secret.
    let listed = Command::new(common::process::BIN)
        .args(["token", "list", "--nats", &urls, "--hub", hub, "--json"])
        .output()
        .expect("run token list");
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains(&cy_id) && !listed.contains(cy.rsplit('_').next().expect("secret")));

    // Every token is accepted by both relays, and submits through either.
    for (handle, (token, _)) in &shared.tokens {
        for relay in [&relay_a, &relay_b] {
            let mut client = join(relay.addr, hub, token).await;
            assert_eq!(client.handle, *handle);
            if handle != "dee" {
                assert_eq!(client.submit(2).await.len(), 2);
            }
        }
    }

    // Sessions open with cy's token on the other relay: one idle, one that
    // was submitting.
    let mut idle = join(relay_b.addr, hub, &cy).await;
    let mut busy = join(relay_b.addr, hub, &cy).await;
    assert_eq!(busy.submit(1).await.len(), 1);
    let revoked_at = Instant::now();
    revoke(&urls, hub, &cy_id);
    let message = closed_as_unauthorized(&mut idle).await;
    eprintln!(
        "the open session on the other relay closed {:?} after the revoke command started: {message}",
        revoked_at.elapsed()
    );
    assert!(message.contains(&cy_id), "{message}");
    // So is the one that was submitting, before it can store more.
    closed_as_unauthorized(&mut busy).await;
    // New connections with it are refused on both relays; others go on.
    refused(relay_b.addr, hub, &cy).await;
    refused(relay_a.addr, hub, &cy).await;
    let (dee, _) = &shared.tokens["dee"];
    join(relay_a.addr, hub, dee).await;
    join(relay_b.addr, hub, dee).await;
}

/// What `GET /v1/token` answers for `token`: the registry alone decides it,
/// without the hub's log.
async fn token_status(addr: SocketAddr, token: &str) -> u16 {
    let auth = format!("Bearer {token}");
    common::http(addr, "GET", "/v1/token", &[("Authorization", &auth)], &[])
        .await
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_registry_goes_on_with_a_nats_node_killed() {
    let Some(mut cluster) = NatsCluster::start().await else {
        return;
    };
    let urls = cluster.urls();
    let logs = tempfile::tempdir().expect("log folder");
    let shared = shared_hub(&urls, "Sturdy", &[("ana", "creative")]);
    let hub = shared.hub.as_str();
    let (relay_a, _data_a) = relay_on(&cluster, 0, logs.path()).await;
    let (relay_b, _data_b) = relay_on(&cluster, 1, logs.path()).await;
    let (ana, ana_id) = shared.tokens["ana"].clone();
    // The hub's own log is not what this test is about: its sessions are
    // opened before the node dies and are not needed after.
    join(relay_a.addr, hub, &ana).await;
    join(relay_b.addr, hub, &ana).await;

    cluster.kill_node(0);
    // The admin command reaches the nodes left; both relays follow it.
    let alive = format!("{},{}", cluster.url(1), cluster.url(2));
    let (ben, ben_id) = issue(&alive, hub, "ben", "creative");
    assert_eq!(token_status(relay_a.addr, &ben).await, 200);
    assert_eq!(token_status(relay_b.addr, &ben).await, 200);
    // A second hub made now is known to both too.
    let other = shared_hub(&alive, "Second", &[]);
    assert_eq!(
        token_status(relay_a.addr, &other.tokens["admin"].0).await,
        200
    );
    assert_eq!(
        token_status(relay_b.addr, &other.tokens["admin"].0).await,
        200
    );

    // Revocations made with the node down reach both relays (the watch
    // of a relay served by the dead node catches up by reading): lookups
    // and new sessions are refused.
    revoke(&alive, hub, &ana_id);
    revoke(&alive, hub, &ben_id);
    for relay in [&relay_a, &relay_b] {
        for token in [&ana, &ben] {
            let deadline = Instant::now() + common::TIMEOUT;
            while token_status(relay.addr, token).await != 401 {
                assert!(
                    Instant::now() < deadline,
                    "a revoked token is still accepted"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        refused(relay.addr, hub, &ana).await;
        refused(relay.addr, hub, &ben).await;
    }

    // The node comes back; the records written without it are all there.
    cluster.restart_node(0).await;
    let listed = cli_json(&["hub", "list", "--nats", &cluster.url(0), "--json"]);
    let names: Vec<&str> = listed
        .as_array()
        .expect("a list of hubs")
        .iter()
        .filter_map(|h| h["name"].as_str())
        .collect();
    assert_eq!(names, ["Sturdy", "Second"]);
}

/// A member's own op setting `fields` on a member record.
fn member_op(
    client: &mut Client,
    member: &str,
    fields: serde_json::Value,
) -> spoke_relay::proto::Op {
    let mut op = client.make_ops(1).remove(0);
    op.entity.kind = "member".to_owned();
    op.entity.id = member.to_owned();
    op.hlc.wall_ms = spoke_relay::auth::now_ms();
    let map: std::collections::BTreeMap<String, serde_json::Value> =
        serde_json::from_value(fields).expect("fields are a JSON object");
    op.body = rmp_serde::to_vec_named(&map).expect("a map of fields encodes");
    op
}

/// A token grants its role once, on its first use, whichever relay sees
/// it: a lead demoted after joining through one relay does not become a
/// lead again by presenting the same token to the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tokens_first_use_through_one_relay_is_known_to_the_other() {
    let Some(cluster) = NatsCluster::start().await else {
        return;
    };
    let urls = cluster.urls();
    let logs = tempfile::tempdir().expect("log folder");
    let shared = shared_hub(&urls, "Once", &[("lee", "lead")]);
    let hub = shared.hub.as_str();
    let (relay_a, _data_a) = relay_on(&cluster, 0, logs.path()).await;
    let (relay_b, _data_b) = relay_on(&cluster, 1, logs.path()).await;
    let (admin_token, _) = shared.tokens["admin"].clone();
    let (lee_token, lee_id) = shared.tokens["lee"].clone();

    let mut admin = join(relay_a.addr, hub, &admin_token).await;
    let mut lee = Client::connect(relay_a.addr, hub).await;
    let welcome = lee.hello(&lee_token, hub, 0, 0).await;
    assert_eq!(
        welcome.role, "lead",
        "the first use grants the token's role"
    );
    lee.close().await;

    let demote = member_op(
        &mut admin,
        "lee",
        serde_json::json!({"roles:lead": false, "roles:creative": true}),
    );
    let outcome = admin.submit_judged(&[demote]).await;
    assert!(
        matches!(outcome[..], [common::Outcome::Stored(_)]),
        "the admin demotes lee: {outcome:?}"
    );

    // Through the other relay, which never saw the token used.
    let mut again = Client::connect(relay_b.addr, hub).await;
    let welcome = again.hello(&lee_token, hub, 0, 0).await;
    assert_eq!(
        welcome.role, "creative",
        "token {lee_id} was used already: the other relay must not grant it again"
    );
    let back = member_op(&mut again, "lee", serde_json::json!({"roles:lead": true}));
    let outcome = again.submit_judged(&[back]).await;
    assert!(
        matches!(&outcome[..], [common::Outcome::Refused { .. }]),
        "a creative gives itself the lead role back: {outcome:?}"
    );
    // The first relay answers the same.
    let mut third = Client::connect(relay_a.addr, hub).await;
    assert_eq!(third.hello(&lee_token, hub, 0, 0).await.role, "creative");
}
