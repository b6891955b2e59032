//! `spoke-relay`: serve a relay, create hubs, issue and revoke tokens.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use serde_json::json;
use spoke_relay::auth::{Registry, RegistryError, parse_duration_ms};
use spoke_relay::relay::RelayConfig;
use spoke_relay::server::{Advertised, serve_until, shutdown_signal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "spoke-relay",
    version,
    about = "The Spoke hub: a WebSocket relay that sequences, stores and fans out a team's ops, and serves its blobs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve hubs over HTTP and WebSocket
    Serve {
        /// Address to listen on
        #[arg(long, default_value = "127.0.0.1:7878")]
        listen: String,
        /// Data folder (hubs, tokens, op logs, blobs)
        #[arg(long, env = "SPOKE_RELAY_DATA")]
        data: PathBuf,
        /// Largest blob accepted, in MiB
        #[arg(long, default_value_t = 256)]
        max_blob_mib: u64,
        /// Seconds over which a blob upload must average at least 16 KiB/s, or it is cut
        #[arg(long, default_value_t = 10)]
        blob_stall_secs: u64,
        /// Memory the relay plans for, in MiB; a quarter is the page cache of all hubs' logs together
        #[arg(long, default_value_t = 256)]
        memory_budget_mib: u64,
        /// Ops per second one connection may submit
        #[arg(long, default_value_t = 20_000)]
        max_ops_per_sec: u32,
        /// Seconds a new connection has to send Hello
        #[arg(long, default_value_t = 10)]
        hello_timeout_secs: u64,
        /// Seconds without a word from a member before its connection is closed (it is pinged after a third of that)
        #[arg(long, default_value_t = 90)]
        idle_timeout_secs: u64,
        /// Frames that may wait for a connection whose socket is full before it is dropped as slow
        #[arg(long, default_value_t = 4096)]
        outbound_batches: usize,
        /// Serve over TLS with this PEM certificate chain (needs --tls-key)
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key for --tls-cert
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// The URL members use to reach this relay, e.g. wss://hub.example.com behind a
        /// proxy [default: ws://LISTEN-ADDRESS, or wss:// with TLS]; recorded in the data
        /// folder so `hub create` and `token issue` print a ready-to-paste join line
        #[arg(long, env = "SPOKE_RELAY_PUBLIC_URL", value_name = "URL")]
        public_url: Option<String>,
        /// Keep hubs' logs, hubs and tokens on this NATS JetStream cluster
        /// (comma-separated nats://host:port servers) instead of the data
        /// folder, so several relays serve one hub; `hub create --nats` and
        /// `token issue --nats` manage what they serve
        #[arg(long, env = "SPOKE_RELAY_NATS", value_name = "URL[,URL...]")]
        nats: Option<String>,
        /// Copies of every op and registry record the NATS cluster keeps (at most its number of nodes)
        #[arg(long, default_value_t = 3, requires = "nats", value_name = "N")]
        nats_replicas: usize,
    },
    /// Hubs on this relay
    #[command(subcommand)]
    Hub(HubCommand),
    /// Member tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// Print the hub's rules: who may change what, and every rule a refusal names
    Policy,
}

/// Where the admin commands find hubs and tokens.
#[derive(Debug, clap::Args)]
struct RegistryArgs {
    /// Data folder of the relay whose hubs and tokens to change
    #[arg(long, env = "SPOKE_RELAY_DATA", required_unless_present = "nats")]
    data: Option<PathBuf>,
    /// Change the hubs and tokens shared on this NATS cluster (comma-separated
    /// nats://host:port servers), which every `serve --nats` relay serves,
    /// instead of a data folder's
    #[arg(long, env = "SPOKE_RELAY_NATS", value_name = "URL[,URL...]")]
    nats: Option<String>,
    /// Copies of each record the NATS cluster keeps, if this command creates the registry
    #[arg(long, default_value_t = 3, requires = "nats", value_name = "N")]
    nats_replicas: usize,
}

/// A registry opened for one admin command, with the runtime its NATS
/// connection runs on (dropped after the registry).
struct AdminRegistry {
    registry: Registry,
    _runtime: Option<tokio::runtime::Runtime>,
}

impl RegistryArgs {
    fn open(&self) -> Result<AdminRegistry> {
        match (&self.nats, &self.data) {
            (Some(urls), _) => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .context("starting the async runtime")?;
                let nats = runtime.block_on(spoke_relay::nats::Nats::connect(urls))?;
                let registry = Registry::open_nats(&nats, self.nats_replicas.max(1))?;
                Ok(AdminRegistry {
                    registry,
                    _runtime: Some(runtime),
                })
            }
            (None, Some(data)) => Ok(AdminRegistry {
                registry: Registry::open(data)?,
                _runtime: None,
            }),
            (None, None) => Err(BadInput(
                "name the registry: --data DIR (or SPOKE_RELAY_DATA), or --nats URL[,URL...] (or SPOKE_RELAY_NATS)".into(),
            )
            .into()),
        }
    }
}

#[derive(Debug, Subcommand)]
enum HubCommand {
    /// Create a hub; prints its id and an admin token (shown once)
    Create {
        name: String,
        #[command(flatten)]
        registry: RegistryArgs,
        /// Handle for the admin token
        #[arg(long, default_value = "admin")]
        handle: String,
        /// The relay's URL for the join line [default: what `serve` recorded in the data folder]
        #[arg(long, env = "SPOKE_RELAY_PUBLIC_URL", value_name = "URL")]
        public_url: Option<String>,
        /// Print JSON: hub, token, url and the join line
        #[arg(long)]
        json: bool,
    },
    /// List hubs
    List {
        #[command(flatten)]
        registry: RegistryArgs,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Issue a member token (shown once)
    Issue {
        #[command(flatten)]
        registry: RegistryArgs,
        #[arg(long)]
        hub: String,
        #[arg(long)]
        handle: String,
        /// lead, creative, reviewer, requester, agent or read-only
        #[arg(long)]
        role: String,
        /// Lifetime, e.g. 30d, 12h
        #[arg(long)]
        expires: Option<String>,
        /// The relay's URL for the join line [default: what `serve` recorded in the data folder]
        #[arg(long, env = "SPOKE_RELAY_PUBLIC_URL", value_name = "URL")]
        public_url: Option<String>,
        /// Print JSON: token, url and the join line
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its id (the part after `spk_`, before the next `_`)
    Revoke {
        #[command(flatten)]
        registry: RegistryArgs,
        #[arg(long)]
        hub: String,
        token_id: String,
    },
    /// List a hub's tokens (never their secrets)
    List {
        #[command(flatten)]
        registry: RegistryArgs,
        #[arg(long)]
        hub: String,
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spoke-relay: {e:#}");
            let bad_input = e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<RegistryError>(),
                    Some(
                        RegistryError::UnknownHub(_)
                            | RegistryError::BadRole(_)
                            | RegistryError::BadHandle(_)
                            | RegistryError::UnknownToken(..)
                    )
                ) || c.downcast_ref::<BadInput>().is_some()
            });
            ExitCode::from(if bad_input { 2 } else { 1 })
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BadInput(String);

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Policy => {
            print!("{}", spoke_relay::policy::rules::table_markdown());
            Ok(())
        }
        Command::Serve {
            listen,
            data,
            max_blob_mib,
            blob_stall_secs,
            memory_budget_mib,
            max_ops_per_sec,
            hello_timeout_secs,
            idle_timeout_secs,
            outbound_batches,
            tls_cert,
            tls_key,
            public_url,
            nats,
            nats_replicas,
        } => {
            // RUST_LOG in full env-filter syntax; `info` when unset or unreadable.
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .with_target(false)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .init();
            let public_url = public_url.as_deref().map(normalise_url).transpose()?;
            let tls = tls_cert.is_some();
            let data_dir = data.clone();
            let mut config = RelayConfig::new(data);
            config.max_blob_bytes = max_blob_mib.saturating_mul(1024 * 1024);
            config.blob_stall_window = std::time::Duration::from_secs(blob_stall_secs.max(1));
            config.memory_budget = memory_budget_mib.max(16).saturating_mul(1024 * 1024);
            config.max_ops_per_sec = max_ops_per_sec;
            config.hello_timeout = std::time::Duration::from_secs(hello_timeout_secs.max(1));
            config.idle_timeout = std::time::Duration::from_secs(idle_timeout_secs.max(3));
            config.outbound_batches = outbound_batches;
            config.nats = nats.map(|urls| spoke_relay::relay::NatsSettings {
                urls,
                replicas: nats_replicas.max(1),
            });
            if let (Some(cert), Some(key)) = (&tls_cert, &tls_key) {
                config.tls = Some(spoke_relay::tls::server_config(cert, key)?);
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(async {
                let listener = tokio::net::TcpListener::bind(&listen)
                    .await
                    .with_context(|| format!("cannot listen on {listen}"))?;
                let advertised = match public_url {
                    Some(url) => Advertised { url, public: true },
                    None => {
                        let addr = listener
                            .local_addr()
                            .with_context(|| format!("reading the address bound for {listen}"))?;
                        let scheme = if tls { "wss" } else { "ws" };
                        Advertised {
                            url: format!("{scheme}://{addr}"),
                            public: false,
                        }
                    }
                };
                // Joining works without it (the URL can be typed): a warning, not a stop.
                match advertised.record(&data_dir) {
                    Ok(()) => tracing::info!("members join at {}", advertised.url),
                    Err(e) => tracing::warn!("{e:#}"),
                }
                serve_until(listener, config, shutdown_signal()).await
            })
        }
        Command::Hub(HubCommand::Create {
            name,
            registry,
            handle,
            public_url,
            json,
        }) => {
            if name.trim().is_empty() {
                return Err(BadInput("the hub needs a name".into()).into());
            }
            let data = registry.data.clone();
            let registry = registry.open()?;
            let hub = registry.registry.create_hub(&name)?;
            let (token, record) = registry.registry.issue(&hub.id, &handle, "lead", None)?;
            let invite = Invite::new(data.as_deref(), public_url.as_deref(), &hub.id, &token)?;
            if json {
                println!(
                    "{}",
                    json!({ "hub": hub.id, "name": hub.name, "token": token, "token_id": record.id, "handle": record.handle, "role": record.role, "url": invite.url, "join": invite.join })
                );
            } else {
                println!(
                    "hub   {}\nname  {}\ntoken {token}\n(@{} lead; the token is shown only now)\n",
                    hub.id, hub.name, record.handle
                );
                invite.print(&format!("@{} joins", record.handle));
            }
            Ok(())
        }
        Command::Hub(HubCommand::List { registry, json }) => {
            let hubs = registry.open()?.registry.hubs()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&hubs)?);
            } else {
                for h in hubs {
                    println!("{}  {}", h.id, h.name);
                }
            }
            Ok(())
        }
        Command::Token(TokenCommand::Issue {
            registry,
            hub,
            handle,
            role,
            expires,
            public_url,
            json,
        }) => {
            let expires_ms = match expires {
                Some(e) => Some(
                    parse_duration_ms(&e)
                        .ok_or_else(|| {
                            BadInput(format!(
                                "cannot read --expires `{e}`: use 30d, 12h, 45m or 90s"
                            ))
                        })?
                        .saturating_add(spoke_relay::auth::now_ms()),
                ),
                None => None,
            };
            let data = registry.data.clone();
            let registry = registry.open()?;
            let (token, record) = registry.registry.issue(&hub, &handle, &role, expires_ms)?;
            let invite = Invite::new(data.as_deref(), public_url.as_deref(), &record.hub, &token)?;
            if json {
                println!(
                    "{}",
                    json!({ "token": token, "token_id": record.id, "hub": record.hub, "handle": record.handle, "role": record.role, "expires_ms": record.expires_ms, "url": invite.url, "join": invite.join })
                );
            } else {
                println!(
                    "token {token}\n(@{} {}; the token is shown only now)\n",
                    record.handle, record.role
                );
                invite.print(&format!("Send @{} this line to join", record.handle));
            }
            Ok(())
        }
        Command::Token(TokenCommand::Revoke {
            registry,
            hub,
            token_id,
        }) => {
            let record = registry.open()?.registry.revoke(&hub, &token_id)?;
            println!(
                "revoked token {} (@{}, {})",
                record.id, record.handle, record.role
            );
            Ok(())
        }
        Command::Token(TokenCommand::List {
            registry,
            hub,
            json,
        }) => {
            let tokens = registry.open()?.registry.tokens(&hub)?;
            if json {
                let rows: Vec<_> = tokens
                    .iter()
                    .map(|t| json!({ "token_id": t.id, "handle": t.handle, "role": t.role, "revoked": t.revoked, "expires_ms": t.expires_ms }))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for t in tokens {
                    let state = if t.revoked { "revoked" } else { "active" };
                    println!("{}  @{}  {}  {state}", t.id, t.handle, t.role);
                }
            }
            Ok(())
        }
    }
}

/// A relay base URL as members type it: `ws[s]://HOST[:PORT][/PREFIX]`
/// (`http[s]://` taken as `ws[s]://`), without a trailing `/` or `/v1`.
fn normalise_url(url: &str) -> Result<String, BadInput> {
    let bad = |why: &str| {
        BadInput(format!(
            "cannot use `{url}` as the relay's URL: {why}; expected ws://HOST:PORT or wss://HOST \
             (for example wss://hub.example.com)"
        ))
    };
    spoke_relay::proto::relay_base_url(url).map_err(bad)
}

/// What a new member is given: the relay's URL and the line to run.
struct Invite {
    /// The relay's base URL, when known.
    url: Option<String>,
    /// `spoke hub join URL --token TOKEN`, quoted for a POSIX shell.
    join: Option<String>,
    /// What the admin should know about the URL (how to set it, a caveat).
    note: Option<String>,
    /// The line with a placeholder, when the URL is unknown.
    template: String,
}

impl Invite {
    /// The URL comes from `--public-url`, else from what `serve` recorded.
    fn new(
        data: Option<&Path>,
        public_url: Option<&str>,
        hub: &str,
        token: &str,
    ) -> Result<Invite> {
        // More relays serving the same hub (`--public-url A,B`): the member
        // tries them after `url` when it fails.
        let mut relays = Vec::new();
        let (url, note) = match public_url {
            Some(u) => {
                // A comma-separated list names several relays of one hub.
                for one in u.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let one = normalise_url(one)?;
                    if !relays.contains(&one) {
                        relays.push(one);
                    }
                }
                if relays.is_empty() {
                    return Err(normalise_url(u).err().map_or_else(
                        || anyhow::anyhow!("no relay URL in `{u}`"),
                        anyhow::Error::from,
                    ));
                }
                (Some(relays.remove(0)), None)
            }
            None => match data.map(Advertised::read).transpose()?.flatten() {
                Some(a) => {
                    let note = (!a.public && listens_everywhere(&a.url)).then(|| {
                        format!(
                            "the relay listens on every interface ({}): members on other \
                             machines need this machine's name or address in its place; \
                             `spoke-relay serve --public-url URL` (or --public-url here) sets it",
                            a.url
                        )
                    });
                    (Some(a.url), note)
                }
                None => (
                    None,
                    Some(match data {
                        Some(data) => format!(
                            "no URL is known for this relay yet: start it with `spoke-relay serve \
                             --data {} [--public-url wss://hub.example.com]`, or pass --public-url \
                             here (or set SPOKE_RELAY_PUBLIC_URL)",
                            data.display()
                        ),
                        None => "no relay URL is known without --data: pass --public-url \
                                 wss://relay1,wss://relay2 (or set SPOKE_RELAY_PUBLIC_URL) to \
                                 name the relays members join"
                            .to_owned(),
                    }),
                ),
            },
        };
        let more: String = relays
            .iter()
            .map(|r| format!(" --relay {}", shell_quote(r)))
            .collect();
        let line = |base: &str| {
            format!(
                "spoke hub join {}{more} --token {}",
                shell_quote(&format!("{base}/v1/hubs/{hub}")),
                shell_quote(token)
            )
        };
        Ok(Invite {
            join: url.as_deref().map(line),
            template: line("URL"),
            url,
            note,
        })
    }

    /// The join line under `lead`, or how to make one.
    fn print(&self, lead: &str) {
        match &self.join {
            Some(join) => println!("{lead}:\n  {join}"),
            None => println!(
                "{lead} (put the relay's URL in place of URL):\n  {}",
                self.template
            ),
        }
        if let Some(note) = &self.note {
            eprintln!("note: {note}");
        }
    }
}

/// `ws://0.0.0.0:7878` and `ws://[::]:7878` name no machine a member can reach.
fn listens_everywhere(url: &str) -> bool {
    let host = url.split_once("://").map_or(url, |(_, rest)| rest);
    host.starts_with("0.0.0.0") || host.starts_with("[::]")
}

/// Quotes `word` for a POSIX shell when it holds anything but plain characters.
fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_urls_are_normalised_and_paths_refused() {
        assert_eq!(
            normalise_url("wss://hub.example.com/").ok(),
            Some("wss://hub.example.com".into())
        );
        assert_eq!(
            normalise_url("https://x.example/spoke/v1").ok(),
            Some("wss://x.example/spoke".into())
        );
        assert_eq!(
            normalise_url("ws://127.0.0.1:7878").ok(),
            Some("ws://127.0.0.1:7878".into())
        );
        assert!(normalise_url("127.0.0.1:7878").is_err());
        assert!(normalise_url("ws://x/v1/hubs/h-1").is_err());
        assert!(normalise_url("ftp://x").is_err());
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(
            shell_quote("ws://127.0.0.1:7878/v1/hubs/h-1"),
            "ws://127.0.0.1:7878/v1/hubs/h-1"
        );
        assert_eq!(shell_quote("wss://x/a b"), "'wss://x/a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
