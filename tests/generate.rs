//! `spoke generate` end to end: members on a relay on loopback, a lead's
//! template and brand presets, and a stand-in ComfyUI speaking its HTTP and
//! WebSocket API. A run's images become AI-labelled versions of one asset
//! with one approval request; a reviewer picks one; faults name the node or
//! setting and import nothing.

mod common_cli;
mod common_comfy;
mod common_llm;

use common_cli::{LoopbackHub, json_in as json, ok_in as ok, spoke_in as spoke};
use common_comfy::{ComfyFault, FakeComfy};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const TEMPLATE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/comfy/sdxl_lora_txt2img_api.json"
);

/// ana leads, rui reviews, kenji (a creative) generates.
struct Studio {
    _root: tempfile::TempDir,
    _relay: LoopbackHub,
    ana: PathBuf,
    rui: PathBuf,
    kenji: PathBuf,
    scout: PathBuf,
    brief: String,
    comfy: FakeComfy,
}

impl Studio {
    fn new() -> Studio {
        let root = tempfile::tempdir().expect("tmp");
        let relay = LoopbackHub::start(&root.path().join("relay"), "North");
        let comfy = FakeComfy::start();
        comfy.add_choice(
            "CheckpointLoaderSimple",
            "ckpt_name",
            "sd_xl_base_1.0.safetensors",
        );
        let (ana, rui, kenji, scout) = (
            root.path().join("ana"),
            root.path().join("rui"),
            root.path().join("kenji"),
            root.path().join("scout"),
        );
        for (home, handle, role) in [
            (&ana, "ana", "lead"),
            (&rui, "rui", "reviewer"),
            (&kenji, "kenji", "creative"),
            (&scout, "scout", "agent"),
        ] {
            relay.join(home, handle, role);
            std::fs::write(
                home.with_extension("toml"),
                format!("[generate]\nurl = \"{}\"\nstall_secs = 3\n", comfy.url()),
            )
            .expect("config");
        }
        let brief = ok(
            &ana,
            &[
                "brief",
                "add",
                "--title",
                "Lighthouse campaign",
                "--objective",
                "Launch the coastal line",
                "--audience",
                "sailors in Lisbon",
            ],
        )
        .trim()
        .to_owned();
        ok(&ana, &["generate", "template", "add", "social", TEMPLATE]);
        ok(
            &ana,
            &[
                "generate",
                "brand",
                "set",
                "--lora",
                "brand_v1.safetensors:0.8",
                "--negative",
                "blurry, off-brand",
                "--size",
                "1024x1024",
            ],
        );
        ok(&ana, &["sync"]);
        for home in [&rui, &kenji, &scout] {
            ok(home, &["sync"]);
        }
        Studio {
            _root: root,
            _relay: relay,
            ana,
            rui,
            kenji,
            scout,
            brief,
            comfy,
        }
    }

    fn generate(&self, extra: &[&str]) -> std::process::Output {
        let mut args = vec!["generate", "--brief", &self.brief, "--template", "social"];
        args.extend_from_slice(extra);
        spoke(&self.kenji, &args)
    }

    fn assets(&self, home: &Path) -> Vec<Value> {
        json(home, &["asset", "list"])
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn two_drafts_one_request_naming_template_seed_and_lora_and_a_reviewer_approves_one() {
    let s = Studio::new();
    let out = s.generate(&["--count", "2", "--seed", "42", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let outcome: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(outcome["versions"], json!([1, 2]));
    assert_eq!(outcome["seeds"], json!([42, 43]));
    let asset = outcome["asset"].as_str().unwrap().to_owned();
    let approval = outcome["approval"].as_str().unwrap().to_owned();

    // What ComfyUI received: the template's graph with the brand's LoRA and
    // negative prompt, the grounded prompt, each seed, the brand's size.
    let graphs = s.comfy.graphs();
    assert_eq!(graphs.len(), 2);
    for (g, seed) in graphs.iter().zip([42, 43]) {
        assert_eq!(g["3"]["inputs"]["seed"], json!(seed));
        assert_eq!(g["10"]["inputs"]["lora_name"], "brand_v1.safetensors");
        assert_eq!(g["10"]["inputs"]["strength_model"], json!(0.8));
        assert_eq!(g["5"]["inputs"]["width"], json!(1024));
        let prompt = g["6"]["inputs"]["text"].as_str().unwrap();
        assert!(
            prompt.contains("Lighthouse campaign") && prompt.contains("sailors in Lisbon"),
            "{prompt}"
        );
        assert_eq!(g["7"]["inputs"]["text"], "blurry, off-brand");
    }
    assert!(s.comfy.malformed().is_empty(), "{:?}", s.comfy.malformed());

    // Two AI-labelled versions of one asset, with how each was made.
    ok(&s.kenji, &["sync"]);
    ok(&s.rui, &["sync"]);
    let shown = json(&s.rui, &["asset", "show", &asset]);
    let versions = shown["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 2, "{shown:#}");
    for (v, seed) in versions.iter().zip([42, 43]) {
        assert_eq!(v["provenance"]["by"], "ai");
        assert_eq!(v["provenance"]["provider"], "comfyui");
        assert_eq!(v["generation"]["template"], "social");
        assert_eq!(v["generation"]["seed"], json!(seed));
        assert_eq!(v["generation"]["loras"][0]["name"], "brand_v1.safetensors");
        assert_eq!(
            v["generation"]["graph_sha256"].as_str().map(str::len),
            Some(64)
        );
        assert_eq!(v["mime"], "image/png");
    }
    assert_eq!(shown["brief"], s.brief.as_str());

    // One request, for rui the reviewer, naming template, seeds and LoRA.
    let requests: Vec<Value> = json(&s.rui, &["approvals", "list"])
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let title = requests[0]["title"].as_str().unwrap_or_default();
    for word in ["social", "42", "43", "brand_v1.safetensors"] {
        assert!(title.contains(word), "{title}");
    }
    let shown = ok(&s.rui, &["approvals", "show", &approval]);
    assert!(shown.contains(&format!("{asset}@1, {asset}@2")), "{shown}");

    // rui approves the second one.
    ok(&s.rui, &["approve", &approval, "--pick", "2"]);
    ok(&s.rui, &["sync"]);
    ok(&s.ana, &["sync"]);
    let approved = json(&s.ana, &["asset", "show", &asset]);
    assert_eq!(approved["status"], "approved", "{approved:#}");
    assert_eq!(approved["approved_version"], json!(2), "{approved:#}");
}

#[test]
fn node_errors_from_comfyui_name_the_node_and_nothing_is_imported() {
    let s = Studio::new();
    s.comfy.fail_next(ComfyFault::NodeErrors(json!({
        "4": {"errors": [{"type": "value_not_in_list", "message": "Value not in list",
                          "details": "ckpt_name: 'sd_xl_base_1.0.safetensors' not in ['sdxl.safetensors']",
                          "extra_info": {}}],
              "dependent_outputs": ["9"], "class_type": "CheckpointLoaderSimple"}
    })));
    let out = s.generate(&["--count", "2"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("node 4 (CheckpointLoaderSimple)") && err.contains("ckpt_name"),
        "{err}"
    );
    assert!(err.contains("nothing was imported"), "{err}");
    assert!(s.assets(&s.kenji).is_empty());
    // The same run goes through once the server accepts it.
    let out = s.generate(&["--count", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(s.assets(&s.kenji).len(), 1);
}

#[test]
fn a_failure_mid_batch_or_a_stall_imports_nothing_and_a_missing_lora_or_server_is_named() {
    let s = Studio::new();
    // An image that fails in the sampler: nothing is kept.
    s.comfy
        .fail_next(ComfyFault::ExecutionError { node: "3".into() });
    let out = s.generate(&["--count", "1"]);
    let err = stderr(&out);
    assert!(
        !out.status.success() && err.contains("node 3") && err.contains("KSampler"),
        "{err}"
    );
    assert!(s.assets(&s.kenji).is_empty());

    // A server that goes quiet is interrupted.
    s.comfy.fail_next(ComfyFault::Stall);
    let out = s.generate(&["--count", "1"]);
    let err = stderr(&out);
    assert!(
        !out.status.success() && err.contains("said nothing"),
        "{err}"
    );
    assert!(
        !s.comfy.interrupts().is_empty(),
        "the run was interrupted on the server"
    );
    assert!(s.assets(&s.kenji).is_empty());

    // A brand LoRA the server lacks is named with what it has.
    ok(
        &s.ana,
        &[
            "generate",
            "brand",
            "set",
            "--lora",
            "brand_v2.safetensors:0.7",
        ],
    );
    ok(&s.ana, &["sync"]);
    ok(&s.kenji, &["sync"]);
    let out = s.generate(&[]);
    let err = stderr(&out);
    assert!(
        !out.status.success()
            && err.contains("brand_v2.safetensors")
            && err.contains("brand_v1.safetensors"),
        "{err}"
    );

    // No server at all: the address and the setting.
    std::fs::write(
        s.kenji.with_extension("toml"),
        format!(
            "[generate]\nurl = \"http://127.0.0.1:{}\"\n",
            common_cli::closed_port()
        ),
    )
    .expect("config");
    let out = s.generate(&[]);
    let err = stderr(&out);
    assert!(
        !out.status.success()
            && err.contains("cannot be reached")
            && err.contains("[generate] url"),
        "{err}"
    );
    assert!(s.assets(&s.kenji).is_empty());
}

#[test]
fn brand_rules_and_midjourney_are_refused_before_anything_is_sent() {
    let s = Studio::new();
    // A template that does not load the brand's LoRA.
    let plain = s._root.path().join("plain.json");
    let mut graph: Value =
        serde_json::from_str(&std::fs::read_to_string(TEMPLATE).unwrap()).unwrap();
    graph["10"]["inputs"]["lora_name"] = json!("brand_v1.safetensors");
    graph["10"]["inputs"]["strength_model"] = json!(1.0);
    graph["10"]["inputs"]["strength_clip"] = json!(1.0);
    std::fs::write(&plain, graph.to_string()).unwrap();
    let plain = plain.to_str().unwrap();
    // Refused when added while the brand has a LoRA ...
    let out = spoke(&s.ana, &["generate", "template", "add", "plain", plain]);
    assert!(
        !out.status.success() && stderr(&out).contains("--lora-optional"),
        "{}",
        stderr(&out)
    );
    // ... and, added before the brand had one, refused when it runs.
    ok(&s.ana, &["generate", "brand", "set", "--no-loras"]);
    ok(&s.ana, &["generate", "template", "add", "plain", plain]);
    ok(
        &s.ana,
        &[
            "generate",
            "template",
            "add",
            "mj",
            plain,
            "--provider",
            "midjourney",
        ],
    );
    ok(
        &s.ana,
        &[
            "generate",
            "brand",
            "set",
            "--lora",
            "brand_v1.safetensors:0.8",
        ],
    );
    ok(&s.ana, &["sync"]);
    ok(&s.kenji, &["sync"]);
    let before = s.comfy.requests().len();
    let out = spoke(
        &s.kenji,
        &["generate", "--brief", &s.brief, "--template", "plain"],
    );
    let err = stderr(&out);
    assert!(
        !out.status.success()
            && err.contains("does not apply the brand's LoRA")
            && err.contains("lora-optional"),
        "{err}"
    );
    let out = spoke(
        &s.kenji,
        &["generate", "--brief", &s.brief, "--template", "mj"],
    );
    let err = stderr(&out);
    assert!(
        !out.status.success() && err.contains("Midjourney") && err.contains("no public API"),
        "{err}"
    );
    // A size the brand does not allow.
    let out = s.generate(&["--size", "640x640"]);
    let err = stderr(&out);
    assert!(!out.status.success() && err.contains("1024x1024"), "{err}");
    assert_eq!(s.comfy.requests().len(), before, "nothing was sent");
    // Once a lead marks it optional, it runs without the LoRA binding.
    ok(
        &s.ana,
        &["generate", "template", "lora-optional", "plain", "on"],
    );
    ok(&s.ana, &["sync"]);
    ok(&s.kenji, &["sync"]);
    let out = spoke(
        &s.kenji,
        &["generate", "--brief", &s.brief, "--template", "plain"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_batch_like_approved_work_says_so_in_its_request() {
    let s = Studio::new();
    let first: Value =
        serde_json::from_slice(&s.generate(&["--seed", "7", "--json"]).stdout).expect("first run");
    ok(&s.kenji, &["sync"]);
    ok(&s.rui, &["sync"]);
    ok(&s.rui, &["approve", first["approval"].as_str().unwrap()]);
    ok(&s.rui, &["sync"]);
    ok(&s.kenji, &["sync"]);
    // The same seed again makes the same picture: the request says so.
    let out = s.generate(&["--seed", "7", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let again: Value = serde_json::from_slice(&out.stdout).expect("json");
    let notes: Vec<&str> = again["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        notes.iter().any(|n| n.contains("looks like approved asset")
            && n.contains(first["asset"].as_str().unwrap())),
        "{notes:?}"
    );
    // Two seeds of one batch that came out the same are flagged too.
    let requests = json(&s.kenji, &["approvals", "list"]);
    let title = requests
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == again["approval"])
        .and_then(|r| r["title"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(title.contains("looks like approved asset"), "{title}");
}

#[test]
fn the_agents_proposed_generation_runs_once_a_lead_approves_it() {
    use spoke::agent::tools::ToolOutcome;
    let s = Studio::new();
    let propose = |template: &str| {
        let mut hub = spoke::service::Hub::open(&s.scout, None).expect("scout's replica");
        common_llm::run_tool(
            &mut hub,
            "test",
            &common_llm::tool_call(
                "propose_generation",
                json!({"brief_id": s.brief, "template": template, "count": 2,
                       "prompt": "a lighthouse at dawn", "rationale": "hero options"}),
            ),
        )
    };
    match propose("nope") {
        ToolOutcome::Refused(e) => assert!(e.contains("nope"), "{e}"),
        other => panic!("an unknown template was proposed: {}", other.for_model()),
    }
    let approval = match propose("social") {
        ToolOutcome::Proposed { approval, .. } => approval,
        other => panic!("nothing proposed: {}", other.for_model()),
    };
    // Nothing runs before a lead approves.
    let out = spoke(&s.scout, &["generate", "approved"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(s.comfy.graphs().is_empty());
    ok(&s.scout, &["sync"]);
    ok(&s.ana, &["sync"]);
    ok(&s.ana, &["approve", &approval]);
    ok(&s.ana, &["sync"]);
    ok(&s.scout, &["sync"]);
    let ran = ok(&s.scout, &["generate", "approved"]);
    assert!(ran.contains("2 AI draft(s) with template social"), "{ran}");
    assert_eq!(s.comfy.graphs().len(), 2);
    let prompt = s.comfy.graphs()[0]["6"]["inputs"]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(prompt.starts_with("a lighthouse at dawn"), "{prompt}");
    // Carried out once.
    let again = ok(&s.scout, &["generate", "approved"]);
    assert!(again.contains("No approved generation"), "{again}");
    assert_eq!(s.comfy.graphs().len(), 2);
    ok(&s.scout, &["sync"]);
    ok(&s.rui, &["sync"]);
    let assets = s.assets(&s.rui);
    assert_eq!(assets.len(), 1, "{assets:#?}");
}

#[cfg(unix)]
#[test]
fn ctrl_c_interrupts_the_run_on_the_server_and_imports_nothing() {
    let s = Studio::new();
    // The server goes quiet after the first node, as a long sampler does.
    s.comfy.fail_next(ComfyFault::Stall);
    std::fs::write(
        s.kenji.with_extension("toml"),
        format!("[generate]\nurl = \"{}\"\nstall_secs = 60\n", s.comfy.url()),
    )
    .expect("config");
    let child = common_cli::base_command()
        .arg("--home")
        .arg(&s.kenji)
        .arg("--config")
        .arg(s.kenji.with_extension("toml"))
        .args(["generate", "--brief", &s.brief, "--template", "social"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn spoke generate");
    let started = std::time::Instant::now();
    while s.comfy.graphs().is_empty() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the prompt never reached ComfyUI"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: signalling a child process we spawned and still own.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let out = child.wait_with_output().expect("wait");
    let err = stderr(&out);
    assert!(!out.status.success() && err.contains("cancelled"), "{err}");
    assert!(
        !s.comfy.interrupts().is_empty(),
        "the run was interrupted on the server"
    );
    assert!(s.assets(&s.kenji).is_empty(), "nothing was imported");
}

#[test]
fn doctor_asks_the_configured_comfyui_for_its_nodes_and_loras() {
    let s = Studio::new();
    let check = |home: &Path| -> Value {
        let out = spoke(home, &["doctor", "--json"]);
        let report: Value = serde_json::from_slice(&out.stdout).expect("doctor json");
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "comfyui")
            .cloned()
            .unwrap_or(Value::Null)
    };
    let ok_check = check(&s.kenji);
    assert_eq!(ok_check["status"], "ok", "{ok_check:#}");
    assert!(
        ok_check["detail"]
            .as_str()
            .unwrap()
            .contains("brand_v1.safetensors"),
        "{ok_check:#}"
    );
    std::fs::write(
        s.kenji.with_extension("toml"),
        format!(
            "[generate]\nurl = \"http://127.0.0.1:{}\"\n",
            common_cli::closed_port()
        ),
    )
    .expect("config");
    let down = check(&s.kenji);
    assert_eq!(down["status"], "fail", "{down:#}");
    assert!(
        down["fix"].as_str().unwrap().contains("[generate]"),
        "{down:#}"
    );
    // Without [generate] url there is no such line.
    std::fs::write(s.kenji.with_extension("toml"), "").expect("config");
    assert!(check(&s.kenji).is_null());
}
