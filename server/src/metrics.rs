//! Counters and the fan-out latency histogram, rendered in Prometheus text.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Upper bounds of the latency buckets, in microseconds.
const BUCKETS_US: [u64; 12] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 20_000, 50_000, 100_000, 250_000, 1_000_000,
];

#[derive(Default)]
pub struct Metrics {
    pub connections: AtomicU64,
    pub hubs_open: AtomicU64,
    pub ops_stored: AtomicU64,
    pub ops_duplicate: AtomicU64,
    /// Ops the hub's rules refused (never stored).
    pub ops_refused: AtomicU64,
    /// HTTP connections cut because no whole request head came in time.
    pub http_head_timeouts: AtomicU64,
    /// Page cache given to the open hubs' logs, in bytes.
    pub store_cache_bytes: AtomicU64,
    /// The memory budget the relay plans for, in bytes.
    pub memory_budget_bytes: AtomicU64,
    pub deliveries: AtomicU64,
    pub commits: AtomicU64,
    pub frames_rejected: AtomicU64,
    pub slow_consumers: AtomicU64,
    pub blobs_stored: AtomicU64,
    /// Blob uploads cut for sending under the minimum rate (nothing stored).
    pub blob_uploads_stalled: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS_US.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
}

impl Metrics {
    /// Records the time from commit to a batch being written to one subscriber.
    pub fn observe_fanout_us(&self, us: u64) {
        if let Some(i) = BUCKETS_US.iter().position(|&b| us <= b) {
            self.latency_buckets[i].fetch_add(1, Relaxed);
        }
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_sum_us.fetch_add(us, Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, kind: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
                v.load(Relaxed)
            );
        };
        counter(
            "spoke_relay_connections",
            "gauge",
            "Open WebSocket connections.",
            &self.connections,
        );
        counter(
            "spoke_relay_hubs_open",
            "gauge",
            "Hubs with an open op log.",
            &self.hubs_open,
        );
        counter(
            "spoke_relay_ops_stored_total",
            "counter",
            "Ops sequenced and stored.",
            &self.ops_stored,
        );
        counter(
            "spoke_relay_ops_duplicate_total",
            "counter",
            "Resent ops answered with their original seq.",
            &self.ops_duplicate,
        );
        counter(
            "spoke_relay_ops_refused_total",
            "counter",
            "Ops the hub's rules refused; never stored.",
            &self.ops_refused,
        );
        counter(
            "spoke_relay_http_head_timeouts_total",
            "counter",
            "HTTP connections cut because no whole request head came in time.",
            &self.http_head_timeouts,
        );
        counter(
            "spoke_relay_store_cache_bytes",
            "gauge",
            "Page cache given to the open hubs' logs, in bytes.",
            &self.store_cache_bytes,
        );
        counter(
            "spoke_relay_memory_budget_bytes",
            "gauge",
            "The memory budget the relay plans for (--memory-budget-mib), in bytes.",
            &self.memory_budget_bytes,
        );
        counter(
            "spoke_relay_deliveries_total",
            "counter",
            "Ops delivered to subscribers.",
            &self.deliveries,
        );
        counter(
            "spoke_relay_commits_total",
            "counter",
            "Durable log commits (group commits).",
            &self.commits,
        );
        counter(
            "spoke_relay_frames_rejected_total",
            "counter",
            "Frames answered with an error.",
            &self.frames_rejected,
        );
        counter(
            "spoke_relay_slow_consumers_total",
            "counter",
            "Connections dropped for falling behind.",
            &self.slow_consumers,
        );
        counter(
            "spoke_relay_blobs_stored_total",
            "counter",
            "Blobs uploaded and stored.",
            &self.blobs_stored,
        );
        counter(
            "spoke_relay_blob_uploads_stalled_total",
            "counter",
            "Blob uploads cut for sending under the minimum rate; nothing stored.",
            &self.blob_uploads_stalled,
        );
        let name = "spoke_relay_fanout_latency_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time from durable commit to the batch being written to a subscriber."
        );
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, bound) in BUCKETS_US.iter().enumerate() {
            cumulative += self.latency_buckets[i].load(Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{}\"}} {cumulative}",
                *bound as f64 / 1e6
            );
        }
        let count = self.latency_count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.latency_sum_us.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.observe_fanout_us(80);
        m.observe_fanout_us(3_000);
        m.observe_fanout_us(5_000_000);
        let text = m.render();
        assert!(text.contains("spoke_relay_fanout_latency_seconds_bucket{le=\"0.0001\"} 1"));
        assert!(text.contains("spoke_relay_fanout_latency_seconds_bucket{le=\"0.005\"} 2"));
        assert!(text.contains("spoke_relay_fanout_latency_seconds_bucket{le=\"+Inf\"} 3"));
        assert!(text.contains("spoke_relay_fanout_latency_seconds_count 3"));
    }
}
