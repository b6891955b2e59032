//! The hub: joined or local only, whether the relay answers, whether it
//! takes the token and with which role, the last sync and the ops waiting.
//! The relay is asked the way a sync session starts (Hello, Welcome), and
//! the connection is closed before any op is exchanged.

use super::paths::{ReplicaFacts, ReplicaFound};
use super::{Check, NETWORK_TIMEOUT};
use crate::model::hlc::wall_now_ms;
use crate::sync::{HubAddress, Session, SyncError};

const AREA: &str = "hub";

pub async fn checks(replica: &ReplicaFound) -> Vec<Check> {
    let Some(facts) = &replica.facts else {
        return vec![Check::warn(
            AREA,
            "hub",
            "not checked: the replica could not be read",
            "see the `data folder` check",
        )];
    };
    let meta = &facts.meta;
    let Some(url) = &meta.hub_url else {
        return vec![
            Check::ok(
                AREA,
                "hub",
                "local only: this replica has not joined a relay (`spoke hub join URL --token TOKEN` joins one)",
            ),
            pending(facts, false),
        ];
    };
    let name = meta.hub_name.as_deref().unwrap_or("?");
    let mut out = vec![Check::ok(
        AREA,
        "hub",
        format!(
            "joined \"{name}\" at {url}{}{}",
            {
                let more = crate::sync::relay_urls(meta);
                if more.len() > 1 {
                    format!(" (relays, tried in turn: {})", more.join(", "))
                } else {
                    String::new()
                }
            },
            meta.me
                .as_deref()
                .map(|m| format!(" as @{m}"))
                .unwrap_or_default()
        ),
    )];
    let rejoin = format!("re-join with a new token: `spoke hub join {url} --token NEW_TOKEN`");
    let addr = match HubAddress::parse(url) {
        Ok(a) => a,
        Err(e) => {
            out.push(Check::fail(
                AREA,
                "relay",
                format!("the stored relay address {url} is unreadable: {e:#}"),
                "join again from a fresh --home: `spoke hub join URL --token TOKEN`",
            ));
            return out;
        }
    };
    let Some(token) = &meta.hub_token else {
        out.push(Check::fail(
            AREA,
            "token",
            "no member token is stored in the replica",
            rejoin,
        ));
        return out;
    };
    let ca = crate::sync::trusted_ca(meta);
    let connecting = Session::connect(&addr, token, meta.epoch, meta.cursor, ca.as_deref());
    let not_checked = |why: &str| {
        Check::warn(
            AREA,
            "token",
            format!("not checked: {why}"),
            "see the `relay` check",
        )
    };
    let down_fix = "start the relay (`spoke-relay serve --listen HOST:PORT --data DIR`) or check \
                    the address and the network; if the hub moved, `spoke hub join NEW_URL --token TOKEN`";
    match tokio::time::timeout(NETWORK_TIMEOUT, connecting).await {
        Err(_) => {
            out.push(Check::fail(
                AREA,
                "relay",
                format!(
                    "no answer from {url} within {} s",
                    NETWORK_TIMEOUT.as_secs()
                ),
                down_fix,
            ));
            out.push(not_checked("the relay did not answer"));
        }
        Ok(Ok(session)) => {
            let welcome = session.welcome.clone();
            let _ = tokio::time::timeout(NETWORK_TIMEOUT, session.close()).await;
            out.push(Check::ok(
                AREA,
                "relay",
                format!(
                    "{url} answers: hub \"{}\" at head seq {}, @{} signed in as {}",
                    welcome.hub_name, welcome.head, welcome.member, welcome.role
                ),
            ));
            match &meta.me {
                Some(me) if *me != welcome.member => out.push(Check::fail(
                    AREA,
                    "token",
                    format!(
                        "the token is for @{} but this replica acts as @{me}",
                        welcome.member
                    ),
                    format!("use a token issued for @{me}: {rejoin}"),
                )),
                _ => out.push(Check::ok(
                    AREA,
                    "token",
                    format!("valid for @{} with role {}", welcome.member, welcome.role),
                )),
            }
        }
        Ok(Err(SyncError::Refused { code, message }))
            if code == "unauthorized" || code == "forbidden" =>
        {
            out.push(Check::ok(AREA, "relay", format!("{url} answers")));
            out.push(Check::fail(
                AREA,
                "token",
                format!("the relay refused the token: {message} ({code})"),
                format!("ask a lead for a new token (`spoke-relay token issue`), then {rejoin}"),
            ));
        }
        Ok(Err(SyncError::Refused { code, message })) if code == "unknown_hub" => {
            out.push(Check::fail(
                AREA,
                "relay",
                format!("{url} answers but does not know this hub: {message}"),
                "check the hub id with whoever runs the relay, then `spoke hub join URL --token TOKEN` from a fresh --home",
            ));
            out.push(not_checked("the relay does not know the hub"));
        }
        Ok(Err(e)) => {
            let detail = match &e {
                SyncError::Unreachable { .. } => e.to_string(),
                other => format!("{url}: {other}"),
            };
            out.push(Check::fail(AREA, "relay", detail, down_fix));
            out.push(not_checked("the relay did not let us in"));
        }
    }
    out.push(last_sync(facts));
    out.push(pending(facts, true));
    out
}

/// When the replica last heard from the relay, and where its cursor is.
fn last_sync(facts: &ReplicaFacts) -> Check {
    let meta = &facts.meta;
    let position = format!(
        "cursor at seq {} of {} seen",
        meta.cursor,
        meta.head_seen.max(meta.cursor)
    );
    let error = meta
        .last_error
        .as_deref()
        .map(|e| format!("; last error: {e}"))
        .unwrap_or_default();
    match meta.last_contact_ms {
        Some(at) => {
            let when = jiff::Timestamp::from_millisecond(at as i64)
                .map(|t| t.to_string())
                .unwrap_or_else(|_| at.to_string());
            Check::ok(
                AREA,
                "last sync",
                format!(
                    "{when} ({} ago), {position}{error}",
                    age(wall_now_ms().saturating_sub(at))
                ),
            )
        }
        None => Check::warn(
            AREA,
            "last sync",
            format!("never synced, {position}{error}"),
            "`spoke sync` exchanges ops with the hub",
        ),
    }
}

fn pending(facts: &ReplicaFacts, joined: bool) -> Check {
    match &facts.pending {
        Ok(n) if joined => Check::ok(
            AREA,
            "pending",
            format!("{n} local ops not yet acknowledged by the hub"),
        ),
        Ok(n) => Check::ok(
            AREA,
            "pending",
            format!("{n} local ops, sent when the replica joins a hub"),
        ),
        Err(e) => Check::fail(
            AREA,
            "pending",
            format!("cannot count the pending ops: {e}"),
            "run `spoke --rebuild-cache status` to rebuild the state from the stored ops",
        ),
    }
}

/// `42 s`, `5 min`, `3 h`, `2 days`.
fn age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::age;

    #[test]
    fn ages_read_in_the_largest_whole_unit() {
        assert_eq!(age(42_000), "42 s");
        assert_eq!(age(5 * 60_000 + 10), "5 min");
        assert_eq!(age(3 * 3_600_000), "3 h");
        assert_eq!(age(2 * 86_400_000), "2 days");
    }
}
