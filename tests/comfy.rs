//! The ComfyUI client against a stand-in that speaks ComfyUI's HTTP and
//! WebSocket API: catalogue, uploads, runs with their progress stream,
//! images, refusals, failures, stalls, cancels and a server that is gone.

mod common_comfy;

use common_comfy::{ComfyFault, FakeComfy, colour_for_seed, png, txt2img};
use serde_json::{Value, json};
use spoke::generate::comfy::{Comfy, GenError, ImageRef, Progress};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn client(server: &FakeComfy) -> Comfy {
    // Generous: only the stall test relies on it firing.
    Comfy::new(&server.url(), Duration::from_secs(30))
}

/// Runs `graph`, collecting the progress.
async fn run(comfy: &Comfy, graph: &Value) -> (Result<Vec<ImageRef>, GenError>, Vec<Progress>) {
    let mut seen = Vec::new();
    let result = comfy
        .run(graph, &mut |p| seen.push(p), &CancellationToken::new())
        .await;
    (result, seen)
}

fn queued_id(progress: &[Progress]) -> String {
    match progress.first() {
        Some(Progress::Queued { prompt_id, .. }) => prompt_id.clone(),
        other => panic!("the first progress is not Queued: {other:?}"),
    }
}

fn executing(node: &str, class_type: &str) -> Progress {
    Progress::Executing {
        node: node.into(),
        class_type: Some(class_type.into()),
    }
}

fn step(value: u64) -> Progress {
    Progress::Step {
        node: "3".into(),
        value,
        max: 4,
    }
}

#[tokio::test]
async fn object_info_lists_the_servers_node_classes_and_their_choices() {
    let server = FakeComfy::start();
    server.add_choice("CheckpointLoaderSimple", "ckpt_name", "flux.safetensors");
    let info = client(&server).object_info().await.unwrap();
    assert_eq!(
        info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0],
        json!(["sdxl.safetensors", "flux.safetensors"])
    );
    assert_eq!(
        info["LoraLoader"]["input"]["required"]["lora_name"][0],
        json!(["brand_v1.safetensors"])
    );
    assert_eq!(info["KSampler"]["output"], json!(["LATENT"]));
    assert_eq!(server.requests_to("/object_info")[0].method, "GET");
}

#[tokio::test]
async fn upload_image_sends_a_multipart_form_and_returns_the_stored_name() {
    let server = FakeComfy::start();
    let bytes = png(4, 3, [10, 20, 30]);
    let name = client(&server)
        .upload_image("reference shot.png", bytes.clone())
        .await
        .unwrap();
    assert_eq!(name, "reference shot.png");
    assert!(server.malformed().is_empty(), "{:?}", server.malformed());
    let upload = &server.requests_to("/upload/image")[0];
    assert_eq!(upload.method, "POST");
    let image = upload.part("image").unwrap();
    assert_eq!(image.filename.as_deref(), Some("reference shot.png"));
    assert_eq!(image.content_type.as_deref(), Some("image/png"));
    assert_eq!(image.data, bytes);
    assert_eq!(upload.part("type").unwrap().data, b"input");
    assert_eq!(upload.part("overwrite").unwrap().data, b"true");
    assert_eq!(
        server.file("input", "", "reference shot.png"),
        Some(bytes.clone())
    );
    // Now a LoadImage node may name it.
    let info = client(&server).object_info().await.unwrap();
    assert_eq!(
        info["LoadImage"]["input"]["required"]["image"][0],
        json!(["reference shot.png"])
    );
}

#[tokio::test]
async fn a_valid_graph_reports_its_progress_in_order_and_lists_its_images() {
    let server = FakeComfy::start();
    let comfy = client(&server);
    let graph = txt2img(42, 512, 384, 4);
    let (result, progress) = run(&comfy, &graph).await;
    let images = result.unwrap();
    let prompt_id = queued_id(&progress);
    assert!(!prompt_id.is_empty());
    let mut expected = vec![
        Progress::Started,
        Progress::Cached { nodes: vec![] },
        executing("5", "EmptyLatentImage"),
        executing("4", "CheckpointLoaderSimple"),
        executing("10", "LoraLoader"),
        executing("6", "CLIPTextEncode"),
        executing("7", "CLIPTextEncode"),
        executing("3", "KSampler"),
    ];
    expected.extend((1..=4).map(step));
    expected.extend([
        executing("8", "VAEDecode"),
        executing("9", "SaveImage"),
        Progress::Executed { node: "9".into() },
        Progress::Done,
    ]);
    assert_eq!(progress[1..], expected[..]);
    assert_eq!(
        images,
        vec![ImageRef {
            filename: "spoke_00001_.png".into(),
            subfolder: String::new(),
            kind: "output".into(),
            node: "9".into(),
        }]
    );
    // What ComfyUI received: our graph and client id, on the socket too.
    assert_eq!(server.graphs(), vec![graph]);
    let queued = &server.requests_to("/prompt")[0];
    assert_eq!(queued.body["client_id"], json!(comfy.client_id));
    let socket = &server.requests_to("/ws")[0];
    assert_eq!(socket.param("clientId"), Some(comfy.client_id.clone()));
    let history = &server.requests_to(&format!("/history/{prompt_id}"));
    assert_eq!(history.len(), 1);
    assert!(server.malformed().is_empty(), "{:?}", server.malformed());
}

#[tokio::test]
async fn view_returns_the_png_each_seed_rendered_and_a_rerun_reuses_cached_nodes() {
    let server = FakeComfy::start();
    let comfy = client(&server);
    let mut colours = Vec::new();
    for seed in [42, 43] {
        let (result, progress) = run(&comfy, &txt2img(seed, 512, 384, 4)).await;
        let images = result.unwrap();
        let bytes = comfy.view(&images[0]).await.unwrap();
        let decoded = image::load_from_memory(&bytes).unwrap().to_rgb8();
        assert_eq!(decoded.dimensions(), (64, 48));
        assert_eq!(decoded.get_pixel(10, 10).0, colour_for_seed(seed));
        colours.push(decoded.get_pixel(0, 0).0);
        if seed == 43 {
            // Only the sampler's seed changed: loaders and prompts come from the cache.
            let cached = progress.iter().find_map(|p| match p {
                Progress::Cached { nodes } => Some(nodes.clone()),
                _ => None,
            });
            assert_eq!(
                cached,
                Some(["5", "4", "10", "6", "7"].map(String::from).to_vec())
            );
            assert!(!progress.contains(&executing("4", "CheckpointLoaderSimple")));
            assert!(progress.contains(&executing("3", "KSampler")));
        }
    }
    assert_ne!(colours[0], colours[1]);
    let view = &server.requests_to("/view")[1];
    assert_eq!(view.param("filename").as_deref(), Some("spoke_00002_.png"));
    assert_eq!(view.param("type").as_deref(), Some("output"));
    assert_eq!(view.param("subfolder").as_deref(), Some(""));
}

#[tokio::test]
async fn a_missing_image_is_an_http_error() {
    let server = FakeComfy::start();
    let missing = ImageRef {
        filename: "nothing.png".into(),
        subfolder: String::new(),
        kind: "output".into(),
        node: "9".into(),
    };
    match client(&server).view(&missing).await {
        Err(GenError::Http { status, what, .. }) => {
            assert_eq!(status, 404);
            assert!(what.contains("nothing.png"), "{what}");
        }
        other => panic!("expected Http 404, got {other:?}"),
    }
}

#[tokio::test]
async fn node_errors_name_each_node_its_class_and_the_details() {
    let server = FakeComfy::start();
    let mut graph = txt2img(1, 512, 512, 4);
    graph["4"]["inputs"]["ckpt_name"] = json!("missing.safetensors");
    graph["3"]["inputs"]
        .as_object_mut()
        .unwrap()
        .remove("steps");
    let (result, progress) = run(&client(&server), &graph).await;
    let Err(error) = result else {
        panic!("the graph was accepted");
    };
    let GenError::NodeErrors { message, nodes } = &error else {
        panic!("expected NodeErrors, got {error:?}");
    };
    assert!(message.starts_with("Prompt outputs failed validation"));
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    assert_eq!(nodes[0].node, "3");
    assert_eq!(nodes[0].class_type, "KSampler");
    assert_eq!(nodes[0].errors, ["Required input is missing: steps"]);
    assert_eq!(nodes[1].node, "4");
    assert_eq!(nodes[1].class_type, "CheckpointLoaderSimple");
    assert_eq!(
        nodes[1].errors,
        ["Value not in list: ckpt_name: 'missing.safetensors' not in ['sdxl.safetensors']"]
    );
    let shown = error.to_string();
    assert!(
        shown.contains("node 4 (CheckpointLoaderSimple)") && shown.contains("missing.safetensors"),
        "{shown}"
    );
    assert!(progress.is_empty(), "{progress:?}");
    assert!(server.requests_to("/history").is_empty());
}

#[tokio::test]
async fn scripted_node_errors_and_a_graph_without_outputs_are_refused() {
    let server = FakeComfy::start();
    let comfy = client(&server);
    server.fail_next(ComfyFault::NodeErrors(json!({"10": {
        "errors": [{"type": "value_smaller_than_min", "message": "Value -200 smaller than min of -100",
                    "details": "strength_model", "extra_info": {}}],
        "dependent_outputs": ["9"], "class_type": "LoraLoader"}})));
    let (result, _) = run(&comfy, &txt2img(1, 512, 512, 4)).await;
    match result {
        Err(GenError::NodeErrors { nodes, .. }) => {
            assert_eq!(nodes[0].node, "10");
            assert_eq!(nodes[0].class_type, "LoraLoader");
            assert_eq!(
                nodes[0].errors,
                ["Value -200 smaller than min of -100: strength_model"]
            );
        }
        other => panic!("expected NodeErrors, got {other:?}"),
    }

    let mut graph = txt2img(1, 512, 512, 4);
    graph.as_object_mut().unwrap().remove("9");
    match run(&comfy, &graph).await.0 {
        Err(GenError::NodeErrors { message, nodes }) => {
            assert_eq!(message, "Prompt has no outputs");
            assert!(nodes.is_empty());
        }
        other => panic!("expected NodeErrors, got {other:?}"),
    }

    let mut graph = txt2img(1, 512, 512, 4);
    graph["8"]["class_type"] = json!("VAEDecodeTiled");
    match run(&comfy, &graph).await.0 {
        Err(GenError::NodeErrors { message, .. }) => {
            assert!(
                message.contains("VAEDecodeTiled does not exist") && message.contains("#8"),
                "{message}"
            );
        }
        other => panic!("expected NodeErrors, got {other:?}"),
    }
}

#[tokio::test]
async fn an_execution_error_names_the_node_and_its_type() {
    let server = FakeComfy::start();
    server.fail_next(ComfyFault::ExecutionError { node: "3".into() });
    let (result, progress) = run(&client(&server), &txt2img(7, 512, 512, 4)).await;
    match result {
        Err(GenError::Execution {
            node,
            class_type,
            message,
        }) => {
            assert_eq!(node, "3");
            assert_eq!(class_type, "KSampler");
            assert!(message.contains("OutOfMemoryError"), "{message}");
        }
        other => panic!("expected Execution, got {other:?}"),
    }
    assert!(progress.contains(&executing("3", "KSampler")));
    assert!(!progress.contains(&Progress::Done));
}

#[tokio::test]
async fn a_silent_server_is_a_stall_and_the_run_is_interrupted() {
    let server = FakeComfy::start();
    server.fail_next(ComfyFault::Stall);
    let comfy = Comfy::new(&server.url(), Duration::from_millis(300));
    let (result, progress) = run(&comfy, &txt2img(7, 512, 512, 4)).await;
    assert!(
        matches!(result, Err(GenError::Stalled { .. })),
        "{result:?}"
    );
    let prompt_id = queued_id(&progress);
    assert_eq!(server.interrupts(), vec![json!({ "prompt_id": prompt_id })]);
}

#[tokio::test]
async fn cancelling_mid_run_interrupts_it() {
    let server = FakeComfy::start();
    let comfy = client(&server);
    let cancel = CancellationToken::new();
    let mut progress = Vec::new();
    let result = comfy
        .run(
            &txt2img(7, 512, 512, 4),
            &mut |p| {
                if matches!(p, Progress::Step { value: 1, .. }) {
                    cancel.cancel();
                }
                progress.push(p);
            },
            &cancel,
        )
        .await;
    assert_eq!(result, Err(GenError::Cancelled));
    assert_eq!(progress.last(), Some(&step(1)));
    let prompt_id = queued_id(&progress);
    assert_eq!(server.interrupts(), vec![json!({ "prompt_id": prompt_id })]);
}

#[tokio::test]
async fn a_closed_port_is_unreachable_with_its_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let comfy = Comfy::new(&format!("http://127.0.0.1:{port}"), Duration::from_secs(5));
    match comfy.object_info().await {
        Err(GenError::Unreachable { url, .. }) => {
            assert_eq!(url, format!("http://127.0.0.1:{port}/object_info"));
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    match run(&comfy, &txt2img(1, 512, 512, 4)).await.0 {
        Err(GenError::Unreachable { url, .. }) => {
            assert!(
                url.starts_with(&format!("ws://127.0.0.1:{port}/ws?clientId=")),
                "{url}"
            );
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_dropped_socket_mid_run_is_unreachable_naming_the_prompt() {
    let server = FakeComfy::start();
    server.fail_next(ComfyFault::DropSocket);
    let (result, progress) = run(&client(&server), &txt2img(1, 512, 512, 4)).await;
    let prompt_id = queued_id(&progress);
    match result {
        Err(GenError::Unreachable { url, detail }) => {
            assert!(url.contains("/ws?clientId="), "{url}");
            assert!(detail.contains(&prompt_id), "{detail}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[tokio::test]
async fn another_prompts_messages_are_ignored() {
    let server = FakeComfy::start();
    server.fail_next(ComfyFault::ForeignPrompt);
    let (result, progress) = run(&client(&server), &txt2img(5, 512, 512, 4)).await;
    // Its failure and its end did not stop ours; none of its progress shows.
    let images = result.unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].filename, "spoke_00001_.png");
    let steps: Vec<&Progress> = progress
        .iter()
        .filter(|p| matches!(p, Progress::Step { .. }))
        .collect();
    assert_eq!(
        steps,
        [step(1), step(2), step(3), step(4)]
            .iter()
            .collect::<Vec<_>>()
    );
    assert_eq!(
        progress
            .iter()
            .filter(|p| matches!(p, Progress::Started | Progress::Cached { .. }))
            .count(),
        2
    );
    assert_eq!(progress.last(), Some(&Progress::Done));
}

#[tokio::test]
async fn binary_preview_frames_are_skipped() {
    let server = FakeComfy::start();
    let (result, progress) = run(&client(&server), &txt2img(5, 512, 512, 4)).await;
    assert_eq!(result.unwrap().len(), 1);
    assert!(server.binary_frames() >= 1);
    assert_eq!(progress.last(), Some(&Progress::Done));
}
