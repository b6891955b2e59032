//! `spoke generate template` and `spoke generate brand` end to end: API
//! workflows added, listed and shown; published UI workflows refused with
//! the export hint; a creative refused by the hub's rules; brand presets;
//! `--check` against a stand-in ComfyUI serving `/object_info`.

mod common_cli;

use common_cli::{
    Sandbox, array, assert_exit_code_2, closed_port, json_in, loopback_relay, ok_in, spoke_in,
    stderr, stdout, str_field,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/comfy")
        .join(name)
}

fn arg(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

const TXT2IMG: &str = "sdxl_lora_txt2img_api.json";
const IMG2IMG: &str = "sdxl_img2img_api.json";
const UI_FILES: [&str; 2] = ["image_sdxl_simple.json", "sdxlturbo_example.json"];

/// A sandbox hub whose config points `[generate] url` at `url`.
fn hub_with_comfy(url: &str) -> Sandbox {
    let sb = Sandbox::with_hub();
    std::fs::write(&sb.config, format!("[generate]\nurl = \"{url}\"\n")).expect("write config");
    sb
}

fn down_url() -> String {
    format!("http://127.0.0.1:{}", closed_port())
}

fn names(list: &Value) -> Vec<String> {
    array(list.clone(), "template list")
        .iter()
        .map(|t| str_field(t, "name").to_owned())
        .collect()
}

#[test]
fn api_templates_are_added_listed_shown_marked_and_removed() {
    let sb = hub_with_comfy(&down_url());
    let txt = fixture(TXT2IMG);
    let out = sb.ok(&[
        "generate",
        "template",
        "add",
        "sdxl",
        arg(&txt),
        "--bind",
        "steps=3.steps",
    ]);
    assert!(out.contains("template sdxl saved: 8 placeholders"), "{out}");
    assert!(
        out.contains("not checked: ComfyUI at http://127.0.0.1:"),
        "{out}"
    );
    let i2i = fixture(IMG2IMG);
    sb.ok(&["generate", "template", "add", "i2i", arg(&i2i)]);

    let list = sb.json(&["generate", "template", "list"]);
    assert_eq!(names(&list), vec!["i2i", "sdxl"]);

    let shown = sb.json(&["generate", "template", "show", "sdxl"]);
    assert_eq!(shown["provider"], "comfyui");
    assert_eq!(shown["created_by"], "ana");
    assert_eq!(shown["bindings"]["prompt"][0]["node"], "6");
    assert_eq!(
        shown["bindings"]["prompt"][0]["class_type"],
        "CLIPTextEncode"
    );
    assert_eq!(shown["bindings"]["steps"][0]["input"], "steps");
    assert_eq!(shown["graph"]["6"]["inputs"]["text"], "{{prompt}}");
    let hash = str_field(&shown, "graph_sha256");
    assert_eq!(hash.len(), 64);
    assert_eq!(hash, str_field(&array(list, "list")[1], "graph_sha256"));
    assert_eq!(
        hash,
        spoke::generate::template::graph_sha256(&shown["graph"]),
        "the stored graph hashes to the recorded hash"
    );

    let text = sb.ok(&["generate", "template", "show", "i2i"]);
    assert!(
        text.contains("image          node 2 (LoadImage).image"),
        "{text}"
    );
    assert!(text.contains("brand LoRA: not bound"), "{text}");

    sb.ok(&["generate", "template", "lora-optional", "i2i", "on"]);
    let shown = sb.json(&["generate", "template", "show", "i2i"]);
    assert_eq!(shown["brand_lora_optional"], true);

    sb.ok(&["generate", "template", "remove", "i2i"]);
    assert_eq!(
        names(&sb.json(&["generate", "template", "list"])),
        vec!["sdxl"]
    );
    let out = sb.run(&["generate", "template", "show", "i2i"]);
    let err = assert_exit_code_2(&out, "show a removed template");
    assert!(err.contains("no template `i2i`"), "{err}");
}

#[test]
fn published_ui_workflows_are_refused_with_the_export_hint() {
    let sb = hub_with_comfy(&down_url());
    for name in UI_FILES {
        let path = fixture(name);
        let out = sb.run(&["generate", "template", "add", "ui", arg(&path)]);
        let err = assert_exit_code_2(&out, name);
        assert!(
            err.contains(&format!(
                "{name} is a ComfyUI UI workflow; export it in API format (Workflow → Export (API)) and add that file"
            )),
            "{err}"
        );
    }
    let bad = sb.file("broken.json", b"{\"3\": {\"class_type\": \"KSampler\",,}}");
    let err = assert_exit_code_2(
        &sb.run(&["generate", "template", "add", "bad", arg(&bad)]),
        "broken JSON",
    );
    assert!(
        err.contains("broken.json is not valid JSON (line 1, column"),
        "{err}"
    );
    assert!(names(&sb.json(&["generate", "template", "list"])).is_empty());
}

#[test]
fn check_fails_when_comfyui_cannot_be_reached_and_saves_nothing() {
    let sb = hub_with_comfy(&down_url());
    let txt = fixture(TXT2IMG);
    let out = sb.run(&["generate", "template", "add", "sdxl", arg(&txt), "--check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("--check needs the ComfyUI server to answer")
            && err.contains("cannot be reached"),
        "{err}"
    );
    assert!(names(&sb.json(&["generate", "template", "list"])).is_empty());
}

#[test]
fn brand_presets_are_set_in_parts_and_shown() {
    let sb = hub_with_comfy(&down_url());
    let empty = sb.json(&["generate", "brand"]);
    assert_eq!(empty["loras"], serde_json::json!([]));
    sb.ok(&[
        "generate",
        "brand",
        "set",
        "--lora",
        "brand_v1.safetensors:0.8",
        "--size",
        "1024x1024",
        "--size",
        "1216x832",
    ]);
    sb.ok(&["generate", "brand", "set", "--negative", "text, watermark"]);
    let p = sb.json(&["generate", "brand", "show"]);
    assert_eq!(p["loras"][0]["name"], "brand_v1.safetensors");
    assert_eq!(p["loras"][0]["strength"], 0.8);
    assert_eq!(p["negative"], "text, watermark");
    assert_eq!(p["sizes"], serde_json::json!(["1024x1024", "1216x832"]));
    let text = sb.ok(&["generate", "brand"]);
    assert!(
        text.contains("LoRAs:    brand_v1.safetensors (0.8)"),
        "{text}"
    );

    let err = assert_exit_code_2(
        &sb.run(&["generate", "brand", "set", "--size", "1000x1001"]),
        "a size not a multiple of 8",
    );
    assert!(err.contains("multiple of 8"), "{err}");
    let err = assert_exit_code_2(&sb.run(&["generate", "brand", "set"]), "nothing to set");
    assert!(err.contains("nothing to set"), "{err}");

    // With a brand LoRA, a template that cannot load it needs the lead's mark.
    let i2i = fixture(IMG2IMG);
    let err = assert_exit_code_2(
        &sb.run(&["generate", "template", "add", "i2i", arg(&i2i)]),
        "no LoRA binding",
    );
    assert!(err.contains("binds no {{lora}}"), "{err}");
    sb.ok(&[
        "generate",
        "template",
        "add",
        "i2i",
        arg(&i2i),
        "--lora-optional",
    ]);

    sb.ok(&["generate", "brand", "set", "--no-sizes", "--no-loras"]);
    let p = sb.json(&["generate", "brand"]);
    assert_eq!(p["sizes"], serde_json::json!([]));
    assert_eq!(p["loras"], serde_json::json!([]));
    assert_eq!(p["negative"], "text, watermark");
}

#[test]
fn a_creative_is_refused_templates_and_brand_presets_but_sees_the_leads() {
    let root = tempfile::tempdir().expect("tmp");
    let (_rt, running) = loopback_relay(&root.path().join("relay"));
    let registry = &running.relay.registry;
    let hub = registry.create_hub("Brand").expect("hub");
    let token = |handle: &str, role: &str| {
        registry
            .issue(&hub.id, handle, role, None)
            .expect("token")
            .0
    };
    let url = format!("ws://{}/v1/hubs/{}", running.addr, hub.id);
    let (ana, kenji) = (root.path().join("ana"), root.path().join("kenji"));
    for (home, handle, role) in [(&ana, "ana", "lead"), (&kenji, "kenji", "creative")] {
        std::fs::write(
            home.with_extension("toml"),
            format!("[generate]\nurl = \"{}\"\n", down_url()),
        )
        .expect("config");
        ok_in(
            home,
            &[
                "hub",
                "join",
                &url,
                "--token",
                &token(handle, role),
                "--tz",
                "UTC",
            ],
        );
    }
    let txt = fixture(TXT2IMG);

    let out = spoke_in(&kenji, &["generate", "template", "add", "sdxl", arg(&txt)]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("only a lead may add templates"),
        "{}",
        stderr(&out)
    );
    let out = spoke_in(
        &kenji,
        &["generate", "brand", "set", "--negative", "anything goes"],
    );
    assert!(
        stderr(&out).contains("only a lead may set the brand's presets"),
        "{}",
        stderr(&out)
    );

    ok_in(&ana, &["generate", "template", "add", "sdxl", arg(&txt)]);
    ok_in(&ana, &["generate", "brand", "set", "--size", "1216x832"]);
    ok_in(&ana, &["sync"]);
    ok_in(&kenji, &["sync"]);
    assert_eq!(
        names(&json_in(&kenji, &["generate", "template", "list"])),
        vec!["sdxl"]
    );
    assert_eq!(
        json_in(&kenji, &["generate", "brand"])["sizes"],
        serde_json::json!(["1216x832"])
    );
    assert_eq!(
        json_in(&kenji, &["generate", "brand"])["negative"],
        "",
        "the creative's refused change left nothing behind"
    );
    let out = spoke_in(&kenji, &["generate", "template", "remove", "sdxl"]);
    assert!(
        stderr(&out).contains("only a lead may remove templates"),
        "{}",
        stderr(&out)
    );
    let out = spoke_in(
        &kenji,
        &["generate", "template", "lora-optional", "sdxl", "on"],
    );
    assert!(
        stderr(&out).contains("only a lead may change templates"),
        "{}",
        stderr(&out)
    );
}

/// A stand-in ComfyUI answering `GET /object_info` with `info`; counts the
/// requests it served.
struct FakeComfy {
    _rt: tokio::runtime::Runtime,
    url: String,
    served: Arc<AtomicUsize>,
}

fn fake_comfy(info: Value) -> FakeComfy {
    use axum::routing::get;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime for the stand-in");
    let served = Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    let app = axum::Router::new().route(
        "/object_info",
        get(move || {
            let info = info.clone();
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                axum::Json(info)
            }
        }),
    );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move { axum::serve(listener, app).await });
    FakeComfy {
        _rt: rt,
        url: format!("http://{addr}"),
        served,
    }
}

#[test]
fn check_names_the_missing_lora_and_an_unknown_node_class() {
    let mut info: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("object_info.json")).expect("read"))
            .expect("object_info fixture");
    info.as_object_mut().expect("object").remove("VAEEncode");
    let comfy = fake_comfy(info);
    let sb = hub_with_comfy(&comfy.url);
    sb.ok(&[
        "generate",
        "brand",
        "set",
        "--lora",
        "brand_v2.safetensors:0.7",
    ]);

    let txt = fixture(TXT2IMG);
    let err = assert_exit_code_2(
        &sb.run(&["generate", "template", "add", "sdxl", arg(&txt), "--check"]),
        "a brand LoRA the server lacks",
    );
    assert!(
        err.contains(&format!(
            "LoRA brand_v2.safetensors is not on ComfyUI at {} (it has: brand_v1.safetensors, film_grain.safetensors)",
            comfy.url
        )),
        "{err}"
    );
    assert!(err.contains("nothing was saved"), "{err}");

    let i2i = fixture(IMG2IMG);
    let err = assert_exit_code_2(
        &sb.run(&[
            "generate",
            "template",
            "add",
            "i2i",
            arg(&i2i),
            "--lora-optional",
        ]),
        "a node class the server lacks",
    );
    assert!(
        err.contains(&format!(
            "node 3 (VAEEncode): ComfyUI at {} has no such node class",
            comfy.url
        )),
        "{err}"
    );
    assert!(names(&sb.json(&["generate", "template", "list"])).is_empty());
    assert_eq!(comfy.served.load(Ordering::SeqCst), 2);

    // With the LoRA the server has, the same template checks clean.
    sb.ok(&[
        "generate",
        "brand",
        "set",
        "--lora",
        "brand_v1.safetensors:0.8",
    ]);
    let out = sb.ok(&["generate", "template", "add", "sdxl", arg(&txt), "--check"]);
    assert!(
        out.contains(&format!("checked against ComfyUI at {}", comfy.url)),
        "{out}"
    );
    assert_eq!(
        names(&sb.json(&["generate", "template", "list"])),
        vec!["sdxl"]
    );

    // A UI workflow converts with the server's node definitions.
    let ui = fixture(UI_FILES[0]);
    let out = sb.ok(&[
        "generate",
        "template",
        "add",
        "statue",
        arg(&ui),
        "--bind",
        "prompt=10.text",
        "--lora-optional",
    ]);
    assert!(out.contains("converted from a UI workflow"), "{out}");
    let shown = sb.json(&["generate", "template", "show", "statue"]);
    assert_eq!(shown["graph"]["12"]["class_type"], "KSampler");
    assert_eq!(shown["graph"]["12"]["inputs"]["steps"], 25);
    assert_eq!(
        shown["graph"]["12"]["inputs"]["model"],
        serde_json::json!(["15", 0])
    );
    assert_eq!(shown["bindings"]["prompt"][0]["node"], "10");
    assert!(shown["graph"].get("16").is_none(), "the note is dropped");
}
