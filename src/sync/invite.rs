//! Finding a hub from the relay's address and a token: the relay's
//! `GET /v1/token` answers which hub, member and role a token is for, so a
//! member given only `wss://hub.example.com` and a token can join.

use super::HubAddress;
use super::session::SyncError;
use crate::model::input::InputError;
use anyhow::{Context, Result};
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

/// What the relay says a token is for.
#[derive(Debug, Clone, Deserialize)]
struct TokenOwner {
    hub: String,
    member: String,
    role: String,
}

/// The relay's refusal body.
#[derive(Debug, Deserialize)]
struct Refusal {
    #[serde(default)]
    error: String,
    #[serde(default)]
    message: String,
}

/// Asks the relay at `base` which hub `token` belongs to.
pub async fn hub_of_token(base: &str, token: &str, ca_file: Option<&Path>) -> Result<HubAddress> {
    let url = format!("{}/v1/token", HubAddress::http_base(base));
    let tls = super::tls::client_config(ca_file)?;
    let http = reqwest::Client::builder()
        .use_preconfigured_tls((*tls).clone())
        .connect_timeout(Duration::from_secs(15))
        .timeout(Duration::from_secs(30))
        .build()
        .context("setting up the HTTP client")?;
    tracing::debug!(target: "spoke::sync", relay = base, "asking the relay which hub the token is for");
    let response = http
        .get(&url)
        .bearer_auth(token.trim())
        .send()
        .await
        .map_err(|e| SyncError::Unreachable {
            url: base.to_owned(),
            detail: format!("{e:#}"),
        })?;
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap_or_default();
    match status {
        200 => {
            let owner: TokenOwner = serde_json::from_slice(&body)
                .map_err(|e| SyncError::Protocol(format!("unreadable answer from {url}: {e}")))?;
            tracing::info!(
                target: "spoke::sync",
                relay = base,
                hub = %owner.hub,
                member = %owner.member,
                role = %owner.role,
                "the relay named the token's hub"
            );
            Ok(HubAddress {
                base: base.to_owned(),
                hub: owner.hub,
            })
        }
        401 | 403 => {
            let refusal: Option<Refusal> = serde_json::from_slice(&body).ok();
            let (code, message) = refusal
                .map(|r| (r.error, r.message))
                .unwrap_or_else(|| ("unauthorized".into(), String::from_utf8_lossy(&body).into()));
            tracing::warn!(target: "spoke::sync", relay = base, %message, "the relay refused the token");
            Err(
                anyhow::Error::new(SyncError::Refused { code, message }).context(format!(
                    "the relay at {base} does not accept this token, so it cannot tell which hub \
                 to join: ask the hub's lead for a fresh invite (`spoke-relay token issue` \
                 prints a `spoke hub join` line) and run that line as printed"
                )),
            )
        }
        404 | 405 => Err(InputError::new(format!(
            "the relay at {base} cannot tell which hub a token belongs to: pass the hub's own \
             URL instead, {base}/v1/hubs/HUB_ID, as printed by `spoke-relay hub create` or \
             `spoke-relay token issue`"
        ))
        .into()),
        code => Err(SyncError::Protocol(format!(
            "{url} answered {code}: {}",
            String::from_utf8_lossy(&body)
        ))
        .into()),
    }
}
