//! A NATS JetStream cluster on loopback for the relay's JetStream modes:
//! one node, or three nodes routed to each other (as the relay's tests
//! start them), each `nats-server` on free ports with its own store folder,
//! pinned to core 0 with the relays. Ready once every node serves JetStream
//! (and, for three, knows the meta leader). Every node is killed on drop.

use crate::has_taskset;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long the cluster has to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

struct Node {
    child: Child,
    client_port: u16,
    monitor_port: u16,
}

/// Running `nats-server` nodes with JetStream.
pub struct JsCluster {
    nodes: Vec<Node>,
}

impl Drop for JsCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.child.kill();
            let _ = node.child.wait();
        }
    }
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `GET path` on loopback; the body when the status is 200.
async fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let req = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.ok()?;
    let text = String::from_utf8_lossy(&out);
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.split_whitespace()
        .nth(1)
        .is_some_and(|s| s == "200")
        .then(|| body.to_owned())
}

impl JsCluster {
    /// Starts `nodes` nodes (1 or 3) storing under `dir`, and waits until
    /// JetStream is ready on each.
    pub async fn start(nodes: usize, dir: &Path) -> anyhow::Result<JsCluster> {
        anyhow::ensure!(
            nodes == 1 || nodes == 3,
            "--nats-nodes must be 1 or 3, not {nodes}"
        );
        let ports = (0..nodes)
            .map(|_| Ok((free_port()?, free_port()?, free_port()?)))
            .collect::<anyhow::Result<Vec<(u16, u16, u16)>>>()?;
        let mut cluster = JsCluster { nodes: Vec::new() };
        for (i, &(client_port, cluster_port, monitor_port)) in ports.iter().enumerate() {
            let store = dir.join(format!("n{i}"));
            std::fs::create_dir_all(&store)
                .map_err(|e| anyhow::anyhow!("creating {}: {e}", store.display()))?;
            let log = std::fs::File::create(dir.join(format!("n{i}.log")))?;
            let mut cmd = if has_taskset() {
                let mut c = Command::new("taskset");
                c.args(["-c", "0", "nats-server"]);
                c
            } else {
                Command::new("nats-server")
            };
            cmd.args(["--jetstream", "--store_dir"])
                .arg(&store)
                .args(["--addr", "127.0.0.1", "--port"])
                .arg(client_port.to_string())
                .arg("--http_port")
                .arg(monitor_port.to_string())
                .args(["--server_name", &format!("n{i}")]);
            if nodes > 1 {
                let routes: Vec<String> = ports
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, p)| format!("nats://127.0.0.1:{}", p.1))
                    .collect();
                cmd.args(["--cluster_name", "spoke-bench", "--cluster"])
                    .arg(format!("nats://127.0.0.1:{cluster_port}"))
                    .args(["--routes", &routes.join(",")]);
            }
            let child = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| anyhow::anyhow!("starting nats-server (is it installed?): {e}"))?;
            cluster.nodes.push(Node {
                child,
                client_port,
                monitor_port,
            });
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        for i in 0..nodes {
            loop {
                let ready = match http_get(cluster.nodes[i].monitor_port, "/jsz").await {
                    Some(body) => {
                        serde_json::from_str::<serde_json::Value>(&body).is_ok_and(|jsz| {
                            !jsz["config"].is_null()
                                && (nodes == 1
                                    || jsz["meta_cluster"]["leader"]
                                        .as_str()
                                        .is_some_and(|l| !l.is_empty()))
                        })
                    }
                    None => false,
                };
                if ready {
                    break;
                }
                if let Ok(Some(status)) = cluster.nodes[i].child.try_wait() {
                    anyhow::bail!(
                        "nats-server n{i} exited with {status}; see {}",
                        dir.join(format!("n{i}.log")).display()
                    );
                }
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "nats-server n{i} had no JetStream within {} s; see {}",
                    READY_TIMEOUT.as_secs(),
                    dir.join(format!("n{i}.log")).display()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(cluster)
    }

    /// Every node's client URL, comma-separated (what `--nats` takes).
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The node processes' ids (the CPU they use is the cluster's).
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().map(|n| n.child.id()).collect()
    }
}
