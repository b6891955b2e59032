//! `spoke agent eval`: its table and JSON against a model server that is not
//! there (every scenario reported, the intake falling back to the rules),
//! without a model (a clear refusal), and against the real local model.

mod common_cli;
mod common_llm;

use common_cli::{Sandbox, closed_port, stderr, stdout};
use common_llm::peer_url;
use serde_json::Value;

fn eval(sb: &Sandbox, config: &str, json: bool) -> std::process::Output {
    std::fs::write(&sb.config, config).expect("config");
    let mut args = vec!["agent", "eval"];
    if json {
        args.push("--json");
    }
    sb.run(&args)
}

const SCENARIOS: [&str; 4] = ["tone", "logo", "assign", "missing"];

#[test]
fn a_dead_server_is_scored_scenario_by_scenario_and_intake_falls_back_to_the_rules() {
    let sb = Sandbox::with_hub();
    let config = format!(
        "[agent]\nprovider = \"openai\"\nurl = \"http://127.0.0.1:{}/v1\"\nmodel = \"gone\"\nretries = 0\ntimeout_secs = 5\n",
        closed_port()
    );
    let out = eval(&sb, &config, false);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    for scenario in SCENARIOS {
        let row = table
            .lines()
            .find(|l| l.starts_with(scenario))
            .unwrap_or_else(|| panic!("no {scenario} row in:\n{table}"));
        assert!(row.contains("failed:"), "{row}");
    }
    assert_eq!(
        table.lines().filter(|l| l.starts_with("intake b-")).count(),
        2,
        "{table}"
    );
    assert!(table.contains("intake accepted       0/2"), "{table}");
    assert!(table.contains("(fallen back to the rules: 2)"), "{table}");
    assert!(table.contains("citations right       0/2"), "{table}");
    assert!(table.contains("proposals made        0/1"), "{table}");
    // Progress goes to stderr as each scenario ends.
    assert!(stderr(&out).contains("logo"), "{}", stderr(&out));

    let out = eval(&sb, &config, true);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(report["rows"].as_array().map(Vec::len), Some(6));
    assert_eq!(report["intake_fallen_back"], 2);
    assert_eq!(report["proposals_expected"], 1);
    // The user's own replica got nothing from the evaluation.
    let briefs = sb.json(&["brief", "list"]);
    assert_eq!(briefs.as_array().map(Vec::len), Some(0), "{briefs}");
}

#[test]
fn without_a_model_there_is_nothing_to_evaluate() {
    let sb = Sandbox::with_hub();
    let out = eval(&sb, "", false);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nothing to evaluate") && stderr(&out).contains("[agent]"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_real_local_model_gets_a_table() {
    let Some(url) = peer_url("SPOKE_TEST_LLAMA_URL", "http://127.0.0.1:18082/v1") else {
        return;
    };
    let sb = Sandbox::with_hub();
    let config = format!(
        "[agent]\nprovider = \"openai\"\nurl = \"{url}\"\nmodel = \"smollm2\"\nmax_tokens = 200\ntimeout_secs = 120\n"
    );
    let out = eval(&sb, &config, true);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).expect("json");
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 6, "{report:#}");
    // Every intake ends one way or the other; nothing is left undecided.
    assert_eq!(
        report["intake_accepted"].as_u64().unwrap_or(0)
            + report["intake_fallen_back"].as_u64().unwrap_or(0),
        2,
        "{report:#}"
    );
    assert!(report["valid_tool_calls"].as_u64() <= report["tool_calls"].as_u64());
    eprintln!("{report:#}");
}
