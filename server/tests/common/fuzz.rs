//! A small mutation fuzzer for the stable toolchain: coverage-guided
//! engines (libFuzzer through cargo-fuzz, honggfuzz) need a nightly
//! compiler or a native toolchain this project does not install, so each
//! target here starts from seeds (made by code, plus the committed files in
//! `fuzz/corpus/<target>/`) and mutates them at random for a bounded time:
//! `SPOKE_FUZZ_SECONDS` (2 s by default; CI runs longer), seeded from the
//! clock or `SPOKE_FUZZ_SEED` to replay a run. A panic is a failure: the
//! input is written to the temporary folder and named in the message, to
//! be committed to the corpus as a regression seed once fixed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The seconds each target runs for.
pub fn budget() -> Duration {
    let secs = std::env::var("SPOKE_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(secs.max(0.1))
}

/// Runs `target` on mutations of `seeds` (and of the corpus files under
/// `corpus_root/name/`) until the time budget is spent.
pub fn run(name: &str, corpus_root: &Path, mut seeds: Vec<Vec<u8>>, target: impl Fn(&[u8])) {
    seeds.extend(corpus(&corpus_root.join(name)));
    if seeds.is_empty() {
        seeds.push(Vec::new());
    }
    let seed = std::env::var("SPOKE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    let mut rng = Rng(seed | 1);
    let deadline = Instant::now() + budget();
    let mut runs = 0u64;
    // Every seed as it is, then mutations.
    let mut inputs: Box<dyn Iterator<Item = Vec<u8>>> = Box::new(seeds.clone().into_iter());
    loop {
        let input = match inputs.next() {
            Some(i) => i,
            None => {
                if Instant::now() >= deadline {
                    break;
                }
                inputs = Box::new(std::iter::once(mutate(&mut rng, &seeds)));
                continue;
            }
        };
        runs += 1;
        if catch_unwind(AssertUnwindSafe(|| target(&input))).is_err() {
            let saved = save_failure(name, &input);
            panic!(
                "fuzz target {name} panicked (SPOKE_FUZZ_SEED={seed}, run {runs}) on {} bytes, saved to {}: {}",
                input.len(),
                saved.display(),
                hex(&input[..input.len().min(256)])
            );
        }
    }
    eprintln!(
        "fuzz {name}: {runs} inputs in {:.1} s (seed {seed})",
        budget().as_secs_f64()
    );
}

fn corpus(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
    files.sort();
    files
        .into_iter()
        .filter(|p| p.extension().is_none_or(|e| e != "md"))
        .filter_map(|p| std::fs::read(p).ok())
        .collect()
}

fn save_failure(name: &str, input: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join("spoke-fuzz-failures");
    let _ = std::fs::create_dir_all(&dir);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in input {
        h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
    }
    let path = dir.join(format!("{name}-{h:016x}"));
    let _ = std::fs::write(&path, input);
    path
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// xorshift64*: enough randomness for mutations, reproducible from a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// One seed with one to eight random edits: bit flips, boundary bytes,
/// inserted or deleted runs, duplicated runs, a splice with another seed,
/// a truncation.
fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(8) {
        let len = data.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = [0x00, 0xff, 0x7f, 0x80, 0x01, 0xc0, 0xc1][rng.below(7)];
            }
            2 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                data.splice(at..at, bytes);
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(32));
                data.drain(at..at + n);
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(64));
                let run: Vec<u8> = data[at..at + n].to_vec();
                let to = rng.below(len + 1);
                data.splice(to..to, run);
            }
            5 => {
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let from = rng.below(other.len());
                    let at = rng.below(len + 1);
                    data.truncate(at);
                    data.extend_from_slice(&other[from..]);
                }
            }
            _ if len > 0 => data.truncate(rng.below(len)),
            _ => data.push(rng.next() as u8),
        }
    }
    data
}
