//! Hubs and member tokens. A token is `spk_<id>_<secret>`: the id finds the
//! record, the secret is checked against its stored SHA-256 in constant time.
//! Secrets are shown once, at issue, and never stored.
//!
//! The registry is kept in one of two places: `DATA/relay.redb` (the
//! default, [`redb`]), opened so that the admin CLI can issue and revoke
//! tokens while the relay is serving; or a NATS JetStream key-value bucket
//! ([`kv`]), shared by every relay and admin command given the same
//! `--nats` servers. [`Registry`] checks and shapes records the same way
//! for both; only where they are stored differs.

pub mod kv;
pub mod redb;

use crate::nats::Nats;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Roles the relay knows; only `read-only` changes what a connection may do.
pub const ROLES: [&str; 6] = [
    "lead",
    "creative",
    "reviewer",
    "requester",
    "agent",
    "read-only",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubRecord {
    pub id: String,
    pub name: String,
    pub created_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    pub hub: String,
    pub handle: String,
    pub role: String,
    /// SHA-256 of the secret part.
    pub secret_sha256: [u8; 32],
    pub created_ms: u64,
    #[serde(default)]
    pub expires_ms: Option<u64>,
    #[serde(default)]
    pub revoked: bool,
}

impl TokenRecord {
    pub fn can_submit(&self) -> bool {
        self.role != "read-only"
    }
}

/// Why a token was not accepted. Messages never echo the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("malformed token (expected spk_<id>_<secret>)")]
    Malformed,
    #[error("unknown token")]
    Unknown,
    #[error("token {0} was revoked")]
    Revoked(String),
    #[error("token {0} has expired")]
    Expired(String),
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("relay registry {}: {detail}", path.display())]
    Db { path: PathBuf, detail: String },
    #[error("relay registry on NATS (bucket {bucket}): {detail}")]
    Nats { bucket: String, detail: String },
    #[error("no hub `{0}` on this relay")]
    UnknownHub(String),
    #[error("unknown role `{0}`: use one of lead, creative, reviewer, requester, agent, read-only")]
    BadRole(String),
    #[error("bad handle `{0}`: use 1-32 lowercase letters, digits, `.`, `_` or `-`")]
    BadHandle(String),
    #[error("no token `{0}` in hub {1}")]
    UnknownToken(String, String),
}

/// Where the records are kept.
enum Backend {
    Redb(redb::RedbRegistry),
    Kv(Box<kv::KvRegistry>),
}

/// The hubs and tokens a relay serves: of one data folder, or shared on NATS.
pub struct Registry {
    backend: Backend,
}

impl Registry {
    /// The registry of the data folder `data` (`DATA/relay.redb`).
    pub fn open(data: &Path) -> Result<Registry, RegistryError> {
        Ok(Registry {
            backend: Backend::Redb(redb::RedbRegistry::open(data)?),
        })
    }

    /// The registry shared on the NATS cluster `nats` (its key-value bucket
    /// created with `replicas` copies when missing). Loads every record
    /// and keeps following the bucket, so a change made anywhere is seen
    /// here within moments. Blocks: call it outside async code or accept a
    /// short wait.
    pub fn open_nats(nats: &Nats, replicas: usize) -> Result<Registry, RegistryError> {
        Ok(Registry {
            backend: Backend::Kv(Box::new(kv::KvRegistry::open(nats, replicas)?)),
        })
    }

    /// Ticks whenever a record changes in the shared registry, so an open
    /// connection can check its token at once; `None` for a data folder's
    /// registry, which open connections re-read on a timer instead.
    pub fn changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        match &self.backend {
            Backend::Redb(_) => None,
            Backend::Kv(k) => Some(k.changes()),
        }
    }

    pub fn create_hub(&self, name: &str) -> Result<HubRecord, RegistryError> {
        let hub = HubRecord {
            id: format!("h-{}", base32(&random::<5>())),
            name: name.trim().to_owned(),
            created_ms: now_ms(),
        };
        match &self.backend {
            Backend::Redb(r) => r.insert_hub(&hub)?,
            Backend::Kv(k) => k.insert_hub(&hub)?,
        }
        Ok(hub)
    }

    pub fn hub(&self, id: &str) -> Result<Option<HubRecord>, RegistryError> {
        match &self.backend {
            Backend::Redb(r) => r.hub(id),
            Backend::Kv(k) => k.hub(id),
        }
    }

    pub fn hubs(&self) -> Result<Vec<HubRecord>, RegistryError> {
        match &self.backend {
            Backend::Redb(r) => r.hubs(),
            Backend::Kv(k) => k.hubs(),
        }
    }

    /// Issues a token and returns it with its record. The returned string is
    /// the only copy of the secret.
    pub fn issue(
        &self,
        hub: &str,
        handle: &str,
        role: &str,
        expires_ms: Option<u64>,
    ) -> Result<(String, TokenRecord), RegistryError> {
        if self.hub(hub)?.is_none() {
            return Err(RegistryError::UnknownHub(hub.to_owned()));
        }
        if !ROLES.contains(&role) {
            return Err(RegistryError::BadRole(role.to_owned()));
        }
        let handle_ok = !handle.is_empty()
            && handle.len() <= 32
            && handle
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
        if !handle_ok {
            return Err(RegistryError::BadHandle(handle.to_owned()));
        }
        let id = base32(&random::<5>());
        let secret = base32(&random::<20>());
        let record = TokenRecord {
            id: id.clone(),
            hub: hub.to_owned(),
            handle: handle.to_owned(),
            role: role.to_owned(),
            secret_sha256: Sha256::digest(secret.as_bytes()).into(),
            created_ms: now_ms(),
            expires_ms,
            revoked: false,
        };
        match &self.backend {
            Backend::Redb(r) => r.insert_token(&record)?,
            Backend::Kv(k) => k.insert_token(&record)?,
        }
        Ok((format!("spk_{id}_{secret}"), record))
    }

    /// Revokes a token by id; the hub must match.
    pub fn revoke(&self, hub: &str, token_id: &str) -> Result<TokenRecord, RegistryError> {
        match &self.backend {
            Backend::Redb(r) => r.revoke(hub, token_id),
            Backend::Kv(k) => k.revoke(hub, token_id),
        }
    }

    pub fn tokens(&self, hub: &str) -> Result<Vec<TokenRecord>, RegistryError> {
        match &self.backend {
            Backend::Redb(r) => r.tokens(hub),
            Backend::Kv(k) => k.tokens(hub),
        }
    }

    /// Checks a presented token. A data folder's registry is read fresh
    /// each time, so a revocation by the admin CLI takes effect on the next
    /// check; the shared registry answers from its view of the bucket,
    /// which follows every change as it is stored.
    pub fn authenticate(
        &self,
        token: &str,
    ) -> Result<Result<TokenRecord, AuthError>, RegistryError> {
        let Some((id, secret)) = token
            .strip_prefix("spk_")
            .and_then(|rest| rest.split_once('_'))
        else {
            return Ok(Err(AuthError::Malformed));
        };
        let found = match &self.backend {
            Backend::Redb(r) => r.token(id)?,
            Backend::Kv(k) => k.token(id)?,
        };
        let Some(record) = found else {
            return Ok(Err(AuthError::Unknown));
        };
        let presented: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        if !constant_time_eq(&presented, &record.secret_sha256) {
            return Ok(Err(AuthError::Unknown));
        }
        if record.revoked {
            return Ok(Err(AuthError::Revoked(record.id)));
        }
        if record.expires_ms.is_some_and(|e| e <= now_ms()) {
            return Ok(Err(AuthError::Expired(record.id)));
        }
        Ok(Ok(record))
    }
}

/// Compares two digests without an early exit, so timing reveals nothing
/// about how much of a guess was right.
pub fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

pub(crate) fn random<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    if let Err(e) = getrandom::fill(&mut buf) {
        panic!("the operating system's random number source failed: {e}");
    }
    buf
}

/// Lowercase base32 without look-alike letters.
pub(crate) fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let mut out = String::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Parses `30d`, `12h`, `45m` or `90s` into milliseconds.
pub fn parse_duration_ms(text: &str) -> Option<u64> {
    let text = text.trim();
    let (num, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = num.parse().ok()?;
    let mult = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_authenticate_and_wrong_secrets_do_not() {
        let dir = tempfile::tempdir().expect("tmp");
        let reg = Registry::open(dir.path()).expect("open");
        let hub = reg.create_hub("Studio").expect("hub");
        let (token, record) = reg.issue(&hub.id, "ana", "lead", None).expect("issue");
        assert_eq!(reg.authenticate(&token).expect("db"), Ok(record.clone()));
        let mut forged = token.clone();
        forged.pop();
        forged.push('x');
        assert_eq!(
            reg.authenticate(&forged).expect("db"),
            Err(AuthError::Unknown)
        );
        assert_eq!(
            reg.authenticate("nonsense").expect("db"),
            Err(AuthError::Malformed)
        );
        reg.revoke(&hub.id, &record.id).expect("revoke");
        assert!(matches!(
            reg.authenticate(&token).expect("db"),
            Err(AuthError::Revoked(_))
        ));
    }

    #[test]
    fn expired_tokens_are_refused_and_roles_are_checked() {
        let dir = tempfile::tempdir().expect("tmp");
        let reg = Registry::open(dir.path()).expect("open");
        let hub = reg.create_hub("Studio").expect("hub");
        let (token, _) = reg.issue(&hub.id, "bot", "agent", Some(1)).expect("issue");
        assert!(matches!(
            reg.authenticate(&token).expect("db"),
            Err(AuthError::Expired(_))
        ));
        assert!(matches!(
            reg.issue(&hub.id, "x", "boss", None),
            Err(RegistryError::BadRole(_))
        ));
        assert!(matches!(
            reg.issue("h-nope", "x", "lead", None),
            Err(RegistryError::UnknownHub(_))
        ));
    }

    #[test]
    fn the_secret_is_not_stored() {
        let dir = tempfile::tempdir().expect("tmp");
        let reg = Registry::open(dir.path()).expect("open");
        let hub = reg.create_hub("Studio").expect("hub");
        let (token, _) = reg.issue(&hub.id, "ana", "lead", None).expect("issue");
        drop(reg);
        let secret = token.rsplit('_').next().expect("secret");
        let file = std::fs::read(dir.path().join("relay.redb")).expect("read");
        assert!(!file.windows(secret.len()).any(|w| w == secret.as_bytes()));
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration_ms("30d"), Some(30 * 86_400_000));
        assert_eq!(parse_duration_ms("90s"), Some(90_000));
        assert_eq!(parse_duration_ms("soon"), None);
        assert_eq!(parse_duration_ms("5y"), None);
    }
}
