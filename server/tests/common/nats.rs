//! A three-node NATS JetStream cluster on loopback for the tests that keep a
//! hub's log on JetStream: `nats-server` processes on free ports with their
//! own temporary store folders and routes to each other, ready once
//! JetStream has a meta leader. Nodes can be killed (SIGKILL) and started
//! again; every node is killed when the cluster is dropped.

use super::process::free_port;
use super::try_http;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a cluster (or a restarted node) has to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether `nats-server` can run here. Without it a test skips with a
/// notice, unless `SPOKE_REQUIRE_PEERS=1` asks for every peer program, when
/// its absence fails the test.
pub fn nats_server_available() -> bool {
    let found = Command::new("nats-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if std::env::var("SPOKE_REQUIRE_PEERS").as_deref() == Ok("1") {
            panic!("nats-server is required (SPOKE_REQUIRE_PEERS=1) but was not found");
        }
        eprintln!("skipping: nats-server is not installed (apt-get install nats-server)");
    }
    found
}

struct Node {
    name: String,
    client_port: u16,
    cluster_port: u16,
    monitor_port: u16,
    store: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// A running three-node cluster.
pub struct NatsCluster {
    nodes: Vec<Node>,
    // Dropped last: the nodes' stores and logs live here.
    dir: tempfile::TempDir,
}

impl NatsCluster {
    /// Starts three nodes and waits until JetStream answers with a meta
    /// leader. `None` (after a notice) when `nats-server` is missing.
    pub async fn start() -> Option<NatsCluster> {
        if !nats_server_available() {
            return None;
        }
        // Ports are picked free, but another test can take one before a
        // node binds it: then the cluster starts again on other ports.
        let mut attempt = 1;
        loop {
            let mut cluster = NatsCluster::on_free_ports();
            for i in 0..3 {
                cluster.spawn(i);
            }
            let mut failed = None;
            for i in 0..3 {
                if let Err(e) = cluster.node_ready(i).await {
                    failed = Some(e);
                    break;
                }
            }
            match failed {
                None => return Some(cluster),
                Some(e) if attempt < 5 && e.contains("address already in use") => {
                    eprintln!("a port was taken before nats-server bound it; starting again");
                    attempt += 1;
                }
                Some(e) => panic!("{e}"),
            }
        }
    }

    /// Three nodes on ports free now, not started.
    fn on_free_ports() -> NatsCluster {
        let dir = tempfile::tempdir().expect("a temporary folder for the cluster");
        let nodes = (0..3)
            .map(|i| Node {
                name: format!("n{i}"),
                client_port: free_port(),
                cluster_port: free_port(),
                monitor_port: free_port(),
                store: dir.path().join(format!("n{i}")),
                log: dir.path().join(format!("n{i}.log")),
                child: None,
            })
            .collect();
        NatsCluster { nodes, dir }
    }

    /// The client URLs of every node, comma-separated.
    pub fn urls(&self) -> String {
        (0..self.nodes.len())
            .map(|i| self.url(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The client URL of node `i`.
    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[i].client_port)
    }

    /// The name node `i` reports as its peer name.
    pub fn node_name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    fn spawn(&mut self, i: usize) {
        let routes: Vec<String> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, n)| format!("nats://127.0.0.1:{}", n.cluster_port))
            .collect();
        let node = &mut self.nodes[i];
        std::fs::create_dir_all(&node.store).expect("the node's store folder");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .expect("the node's log file");
        let child = Command::new("nats-server")
            .args(["--jetstream", "--store_dir"])
            .arg(&node.store)
            .args(["--addr", "127.0.0.1", "--port"])
            .arg(node.client_port.to_string())
            .args(["--http_port"])
            .arg(node.monitor_port.to_string())
            .args(["--server_name", &node.name, "--cluster_name", "spoke-test"])
            .args(["--cluster"])
            .arg(format!("nats://127.0.0.1:{}", node.cluster_port))
            .args(["--routes", &routes.join(",")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn nats-server");
        node.child = Some(child);
    }

    /// Waits until node `i` serves JetStream and knows the meta leader.
    async fn wait_node_ready(&mut self, i: usize) {
        if let Err(e) = self.node_ready(i).await {
            panic!("{e}");
        }
    }

    /// As [`Self::wait_node_ready`]; an error with its log when the node
    /// exited.
    async fn node_ready(&mut self, i: usize) -> Result<(), String> {
        let monitor: SocketAddr = ([127, 0, 0, 1], self.nodes[i].monitor_port).into();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(r) = try_http(monitor, "GET", "/jsz").await
                && r.status == 200
                && let Ok(jsz) = serde_json::from_slice::<serde_json::Value>(&r.body)
                && jsz["meta_cluster"]["leader"]
                    .as_str()
                    .is_some_and(|l| !l.is_empty())
            {
                return Ok(());
            }
            if let Some(status) = self.nodes[i]
                .child
                .as_mut()
                .and_then(|c| c.try_wait().expect("poll nats-server"))
            {
                return Err(format!(
                    "nats-server {i} exited with {status}: {}",
                    self.log_text(i)
                ));
            }
            assert!(
                Instant::now() < deadline,
                "nats-server {i} was not ready in time: {}",
                self.log_text(i)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL node `i`, then reap it.
    pub fn kill_node(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            child.kill().expect("kill -9 nats-server");
            child.wait().expect("reap nats-server");
        }
    }

    /// Starts node `i` again on its ports and store, and waits until it is
    /// back in the cluster.
    pub async fn restart_node(&mut self, i: usize) {
        self.kill_node(i);
        self.spawn(i);
        self.wait_node_ready(i).await;
    }

    /// What node `i` printed.
    pub fn log_text(&self, i: usize) -> String {
        std::fs::read_to_string(&self.nodes[i].log).unwrap_or_default()
    }

    /// The cluster's folder (stores and logs).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
