//! End-to-end tests of `spoke search`, `spoke kb ...` and `spoke index ...`:
//! the real binary on its own temporary `--home` and `--config`, with the
//! environment variables that could point at the user's own data removed.

mod common_cli;

use common_cli::{
    Sandbox, array, assert_exit_code_2, assert_success, parse_json, stderr, stdout, str_field,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

/// Steps only these tests take.
impl Sandbox {
    /// A hub created by `ana`, with three briefs.
    fn with_briefs() -> Sandbox {
        let sb = Sandbox::with_hub();
        sb.ok(&[
            "brief",
            "add",
            "--title",
            "Museum night campaign",
            "--objective",
            "Fill the late opening with students",
            "--tag",
            "culture",
        ]);
        sb.ok(&[
            "brief",
            "add",
            "--title",
            "Autumn coffee subscription",
            "--key-message",
            "A warm tone of voice for lapsed subscribers",
            "--status",
            "intake",
        ]);
        sb.ok(&[
            "brief",
            "add",
            "--title",
            "Harbour festival posters",
            "--objective",
            "Street posters for the summer harbour festival",
        ]);
        sb
    }

    /// `with_briefs` plus brand-voice.md and photography.md in the knowledge base.
    fn with_kb() -> Sandbox {
        let sb = Sandbox::with_briefs();
        let brand = kb_fixture("brand-voice.md");
        let photo = kb_fixture("photography.md");
        sb.ok(&["kb", "add", path_str(&brand), path_str(&photo)]);
        sb
    }

    fn search(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["search"];
        all.extend_from_slice(args);
        array(self.json(&all), "search --json")
    }

    fn kb_list(&self) -> Vec<Value> {
        array(self.json(&["kb", "list"]), "kb list --json")
    }

    /// The id of the knowledge document with this title.
    fn kb_id(&self, title: &str) -> String {
        let docs = self.kb_list();
        let doc = docs
            .iter()
            .find(|d| d["title"] == title)
            .unwrap_or_else(|| panic!("{title} not in {docs:?}"));
        str_field(doc, "id").to_owned()
    }
}

fn kb_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/retrieval/kb")
        .join(name)
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// Asserts exit code 2 (bad input), no panic, and that stdout and stderr
/// together mention every one of `needles`. Returns stderr.
fn assert_bad_input(out: &Output, what: &str, needles: &[&str]) -> String {
    let err = assert_exit_code_2(out, what);
    let out_text = stdout(out);
    let both = format!("{out_text}\n{err}");
    for needle in needles {
        assert!(
            both.contains(needle),
            "{what}: the output should mention `{needle}`, got:\nstdout:\n{out_text}\nstderr:\n{err}"
        );
    }
    err
}

fn is_brand_voice_chunk(hit: &Value) -> bool {
    hit["kind"] == "kb" && str_field(hit, "title").starts_with("brand-voice.md")
}

/// A config whose embedder is an OpenAI-compatible server that refuses
/// connections: a port bound but never listened on (so no other socket can
/// take it while the test runs). Returns the config and the base URL.
fn config_with_closed_embeddings_port(sb: &Sandbox) -> (PathBuf, String, tokio::net::TcpSocket) {
    let socket = tokio::net::TcpSocket::new_v4().expect("create a socket");
    socket
        .bind("127.0.0.1:0".parse().expect("address"))
        .expect("bind a port");
    let port = socket.local_addr().expect("bound address").port();
    let url = format!("http://127.0.0.1:{port}/v1");
    let config = sb.file(
        "openai.toml",
        format!(
            "[search]\nembedder = \"openai\"\n\n[search.openai]\nurl = \"{url}\"\n\
             model = \"text-embedding-3-small\"\nretries = 0\ntimeout_secs = 2\n"
        )
        .as_bytes(),
    );
    (config, url, socket)
}

// 1. The knowledge base and search, as a user meets them.

#[test]
fn kb_add_reports_each_file_with_its_chunk_count_and_list_shows_both() {
    let sb = Sandbox::with_briefs();
    let brand = kb_fixture("brand-voice.md");
    let photo = kb_fixture("photography.md");
    let out = sb.ok(&["kb", "add", path_str(&brand), path_str(&photo)]);

    let docs = sb.kb_list();
    assert_eq!(docs.len(), 2, "{docs:?}");
    for (path, title) in [(&brand, "brand-voice.md"), (&photo, "photography.md")] {
        let doc = docs
            .iter()
            .find(|d| d["title"] == title)
            .unwrap_or_else(|| panic!("{title} not in {docs:?}"));
        let id = str_field(doc, "id");
        assert!(id.starts_with("k-"), "{doc}");
        let chunks = doc["chunks"].as_u64().expect("`chunks` is a number");
        assert!(chunks > 1, "a guideline page makes several chunks: {doc}");
        let line = out
            .lines()
            .find(|l| l.contains(path_str(path)))
            .unwrap_or_else(|| panic!("no line for {title} in:\n{out}"));
        assert!(
            line.starts_with("added")
                && line.contains(id)
                && line.contains(&format!("{chunks} chunks")),
            "{line}"
        );
    }
}

#[test]
fn adding_the_same_file_again_reports_it_unchanged() {
    let sb = Sandbox::with_kb();
    let id = sb.kb_id("brand-voice.md");
    let out = sb.ok(&["kb", "add", path_str(&kb_fixture("brand-voice.md"))]);
    let line = out
        .lines()
        .find(|l| l.contains("brand-voice.md"))
        .unwrap_or_else(|| panic!("no line for the file in:\n{out}"));
    assert!(
        line.starts_with("unchanged") && line.contains(&id),
        "{line}"
    );
    assert_eq!(sb.kb_list().len(), 2, "no second copy");
}

#[test]
fn search_json_lists_results_best_first_with_a_brand_voice_chunk_on_top() {
    let sb = Sandbox::with_kb();
    let hits = sb.search(&["tone of voice"]);
    assert!(!hits.is_empty());
    for hit in &hits {
        for key in ["kind", "id", "title", "snippet"] {
            assert!(!str_field(hit, key).is_empty(), "`{key}` is empty in {hit}");
        }
        assert!(hit["score"].is_number(), "`score` is a number in {hit}");
    }
    let scores: Vec<f64> = hits
        .iter()
        .map(|h| h["score"].as_f64().expect("score"))
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "best first: {scores:?}"
    );
    assert!(
        hits.iter().take(3).any(is_brand_voice_chunk),
        "a brand-voice chunk in the top 3: {hits:#?}"
    );
    let brand = sb.kb_id("brand-voice.md");
    let top = hits.iter().find(|h| is_brand_voice_chunk(h)).expect("hit");
    assert!(
        str_field(top, "id").starts_with(&format!("{brand}#")),
        "a chunk id is DOC#N: {top}"
    );
}

#[test]
fn search_kind_brief_returns_only_briefs() {
    let sb = Sandbox::with_kb();
    let hits = sb.search(&["--kind", "brief", "tone of voice"]);
    assert!(
        !hits.is_empty(),
        "the coffee brief mentions the tone of voice"
    );
    assert!(hits.iter().all(|h| h["kind"] == "brief"), "{hits:#?}");
    assert_eq!(hits[0]["title"], "Autumn coffee subscription");
}

#[test]
fn search_limit_caps_the_number_of_results() {
    let sb = Sandbox::with_kb();
    assert!(sb.search(&["voice"]).len() > 2, "more than two would match");
    let hits = sb.search(&["--limit", "2", "voice"]);
    assert_eq!(hits.len(), 2, "{hits:#?}");
}

#[test]
fn removed_knowledge_document_no_longer_appears_in_search() {
    let sb = Sandbox::with_kb();
    let brand = sb.kb_id("brand-voice.md");
    assert!(
        sb.search(&["tone of voice"])
            .iter()
            .any(is_brand_voice_chunk)
    );

    let out = sb.ok(&["kb", "remove", &brand]);
    assert!(
        out.contains(&brand) && out.contains("brand-voice.md"),
        "{out}"
    );
    let hits = sb.search(&["--limit", "50", "tone of voice"]);
    assert!(
        hits.iter()
            .all(|h| !str_field(h, "id").starts_with(&format!("{brand}#"))),
        "{hits:#?}"
    );
    assert!(
        hits.iter().any(|h| h["kind"] == "brief"),
        "the rest is still found"
    );
    assert_eq!(sb.kb_list().len(), 1);
}

// 2. Bad input: exit code 2 and a reason that names the file.

#[test]
fn kb_add_of_a_pdf_names_the_file_and_the_formats_it_takes() {
    let sb = Sandbox::with_briefs();
    let pdf = sb.file("x.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n");
    let out = sb.run(&["kb", "add", path_str(&pdf)]);
    assert_bad_input(&out, "kb add x.pdf", &["x.pdf", "Markdown", "plain text"]);
    assert!(sb.kb_list().is_empty());
}

#[test]
fn kb_add_of_text_that_is_not_utf8_names_the_file() {
    let sb = Sandbox::with_briefs();
    let latin1 = sb.file("menu.txt", b"caf\xe9 cr\xe8me\n");
    let out = sb.run(&["kb", "add", path_str(&latin1)]);
    assert_bad_input(&out, "kb add menu.txt", &["menu.txt", "UTF-8"]);
    assert!(sb.kb_list().is_empty());
}

#[test]
fn kb_add_of_a_missing_file_is_bad_input() {
    let sb = Sandbox::with_briefs();
    let missing = sb.root.path().join("nowhere.md");
    let out = sb.run(&["kb", "add", path_str(&missing)]);
    assert_bad_input(&out, "kb add nowhere.md", &["nowhere.md"]);
}

#[test]
fn kb_add_of_an_empty_markdown_file_is_bad_input() {
    let sb = Sandbox::with_briefs();
    let empty = sb.file("empty.md", b"");
    let out = sb.run(&["kb", "add", path_str(&empty)]);
    assert_bad_input(&out, "kb add empty.md", &["empty.md", "no text"]);
    assert!(sb.kb_list().is_empty());
}

#[test]
fn kb_add_of_one_good_and_one_bad_file_adds_the_good_one_and_summarises() {
    let sb = Sandbox::with_briefs();
    let good = kb_fixture("photography.md");
    let bad = sb.file("deck.pdf", b"%PDF-1.7\n");
    let out = sb.run(&["kb", "add", path_str(&good), path_str(&bad)]);
    let err = assert_bad_input(&out, "kb add good + bad", &["deck.pdf", "Markdown"]);
    assert!(err.contains("1 of 2 files"), "a summary on stderr: {err}");
    let added = stdout(&out);
    assert!(
        added
            .lines()
            .any(|l| l.starts_with("added") && l.contains("photography.md")),
        "{added}"
    );
    let docs = sb.kb_list();
    assert_eq!(docs.len(), 1, "{docs:?}");
    assert_eq!(docs[0]["title"], "photography.md");
    assert!(
        sb.search(&["--kind", "kb", "retouching"])
            .iter()
            .any(|h| str_field(h, "title").starts_with("photography.md")),
        "the good file is searchable at once"
    );
}

/// `kb add` prints each file's outcome on stdout; a script that keeps stderr
/// (`2>>errors.log`) should still learn why a file was refused.
#[test]
fn kb_add_failure_reason_reaches_stderr() {
    let sb = Sandbox::with_briefs();
    let pdf = sb.file("x.pdf", b"%PDF-1.4\n");
    let out = sb.run(&["kb", "add", path_str(&pdf)]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("x.pdf") && err.contains("Markdown"), "{err}");
}

#[test]
fn search_with_an_unknown_kind_is_bad_input() {
    let sb = Sandbox::with_briefs();
    let out = sb.run(&["search", "--kind", "nonsense", "x"]);
    assert_bad_input(&out, "search --kind nonsense", &["nonsense", "brief"]);
}

#[test]
fn search_with_an_unknown_status_is_bad_input() {
    let sb = Sandbox::with_briefs();
    let out = sb.run(&["search", "--status", "bogus", "x"]);
    assert_bad_input(&out, "search --status bogus", &["bogus", "draft"]);
}

// 3. The index.

#[test]
fn index_status_json_names_the_embedder_and_counts_documents_by_kind() {
    let sb = Sandbox::with_kb();
    let status = sb.json(&["index", "status"]);
    assert_eq!(status["embedder"]["kind"], "local", "{status}");
    let documents = status["documents"]
        .as_u64()
        .expect("`documents` is a number");
    let by_kind = status["by_kind"]
        .as_object()
        .expect("`by_kind` is an object");
    assert_eq!(by_kind["brief"], 3, "{status}");
    let chunks: u64 = sb
        .kb_list()
        .iter()
        .map(|d| d["chunks"].as_u64().expect("chunks"))
        .sum();
    assert_eq!(by_kind["kb"], chunks, "{status}");
    let sum: u64 = by_kind.values().map(|n| n.as_u64().expect("count")).sum();
    assert_eq!(sum, documents, "{status}");
}

#[test]
fn index_rebuild_leaves_the_same_document_count() {
    let sb = Sandbox::with_kb();
    let before = sb.json(&["index", "status"]);
    let out = sb.ok(&["index", "rebuild"]);
    let documents = before["documents"].as_u64().expect("documents");
    assert!(
        out.contains(&format!("rebuilt: {documents} documents embedded")),
        "{out}"
    );
    let after = sb.json(&["index", "status"]);
    assert_eq!(after["documents"], before["documents"]);
    assert_eq!(after["by_kind"], before["by_kind"]);
    assert!(
        sb.search(&["tone of voice"])
            .iter()
            .any(is_brand_voice_chunk)
    );
}

/// A rebuild writes a new generation beside the live one and then switches
/// the manifest to it, so the old files stay whole until the switch and
/// other processes see that the index changed.
#[test]
fn index_rebuild_saves_a_newer_generation() {
    let sb = Sandbox::with_kb();
    let before = sb.json(&["index", "status"]);
    sb.ok(&["index", "rebuild"]);
    let after = sb.json(&["index", "status"]);
    assert!(
        after["generation"].as_u64() > before["generation"].as_u64(),
        "{} -> {}",
        before["generation"],
        after["generation"]
    );
}

// 4. Config.

/// Switching `[search]` to an OpenAI-compatible server that is down, on a
/// home whose index the local embedder built. What happens today:
/// - `spoke search` exits 0 with one warning on stderr naming the embeddings
///   URL and saying it is unreachable, and answers by words from the saved
///   index (its vectors belong to the old embedder and are not used);
/// - `spoke index rebuild` exits 1 naming the URL and keeping the old files;
/// - back on the local embedder, the old index is used as it was.
#[test]
fn a_down_openai_embedder_is_named_in_a_warning_and_the_local_index_survives() {
    let sb = Sandbox::with_kb();
    let before = sb.json(&["index", "status"]);
    let (config, url, _reserved) = config_with_closed_embeddings_port(&sb);
    let endpoint = format!("{url}/embeddings");

    let out = sb.run_with_config(&config, &["search", "--json", "voice"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    let warning = err
        .lines()
        .find(|l| l.contains(&endpoint))
        .unwrap_or_else(|| panic!("stderr should name {endpoint}:\n{err}"));
    assert!(
        warning.starts_with("spoke: warning:") && warning.contains("unreachable"),
        "{warning}"
    );
    let hits = array(
        parse_json(&stdout(&out), &["search", "--json", "voice"]),
        "search --json",
    );
    assert!(!hits.is_empty(), "the saved words still answer");
    assert!(
        hits.iter().all(|h| h["vector_rank"].is_null()),
        "no vectors from another embedder: {hits:?}"
    );
    assert!(err.contains("word matches only"), "{err}");

    let out = sb.run_with_config(&config, &["index", "rebuild"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{err}");
    assert!(
        err.contains(&endpoint) && err.contains("previous index files are kept"),
        "{err}"
    );

    // The local embedder again: the index it built is still there, unchanged.
    let out = sb.run(&["search", "--json", "tone of voice"]);
    assert_success(&out, &["search", "--json", "tone of voice"]);
    assert!(
        !stderr(&out).contains("rebuilt"),
        "no rebuild needed: {}",
        stderr(&out)
    );
    let hits = array(parse_json(&stdout(&out), &["search"]), "search --json");
    assert!(hits.iter().take(3).any(is_brand_voice_chunk), "{hits:#?}");
    let after = sb.json(&["index", "status"]);
    assert_eq!(after["generation"], before["generation"]);
    assert_eq!(after["documents"], before["documents"]);
}

/// The same situation as above, with the outcome a user needs: the search
/// either still finds documents (the saved index's words need no embedder)
/// or fails; it should not report success with nothing found while saying
/// it is "searching the index as it was".
#[test]
fn search_after_switching_to_a_down_embedder_finds_documents_by_words_or_fails() {
    let sb = Sandbox::with_kb();
    let (config, _url, _reserved) = config_with_closed_embeddings_port(&sb);
    let out = sb.run_with_config(&config, &["search", "--json", "tone of voice"]);
    let found = serde_json::from_slice::<Value>(&out.stdout)
        .ok()
        .and_then(|v| v.as_array().map(|a| !a.is_empty()))
        .unwrap_or(false);
    assert!(
        found || out.status.code() != Some(0),
        "exit {:?}, stdout:\n{}\nstderr:\n{}",
        out.status.code(),
        stdout(&out),
        stderr(&out)
    );
}

#[test]
fn unknown_embedder_in_config_is_bad_input_naming_search_embedder() {
    let sb = Sandbox::with_briefs();
    let config = sb.file("bad.toml", b"[search]\nembedder = \"nonsense\"\n");
    let out = sb.run_with_config(&config, &["search", "voice"]);
    let err = assert_bad_input(
        &out,
        "embedder = nonsense",
        &["search.embedder", "nonsense"],
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains("local") && err.contains("openai"), "{err}");
}
