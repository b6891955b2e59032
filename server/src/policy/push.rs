//! The push lease: which one replica delivers a hub's outbox to the outside
//! world. A lead names a pusher member (`integration/_push` field `pusher`);
//! one of that member's replicas holds the lease (`lease: {client, until}`)
//! at a time, and only the holder writes delivery results and mirrors
//! tracker state onto tasks. Because the relay judges every claim in seq
//! order against the lease before it, two replicas can never both hold it.

use super::rules::{Refusal, Rule};
use super::state::PolicyState;
use super::{Change, EntityKind, OpRef, Role};
use serde_json::Value;

/// The integration entity holding the pusher and the lease.
pub const PUSH_ENTITY: &str = "_push";
/// How far ahead a lease may reach (a holder renews it well before).
pub const MAX_LEASE_MS: u64 = 10 * 60 * 1000;

/// Delivery fields the lease holder writes after an attempt.
const RESULT_FIELDS: &[&str] = &[
    "status",
    "attempts",
    "next_at",
    "last_error",
    "result",
    "done_at",
];

/// The lease as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub client: u64,
    /// Wall-clock milliseconds.
    pub until: u64,
}

impl Lease {
    pub fn read(value: &Value) -> Option<Lease> {
        Some(Lease {
            client: value.get("client")?.as_u64()?,
            until: value.get("until")?.as_u64()?,
        })
    }
}

/// The hub's pusher, if a lead named one.
pub fn pusher(state: &PolicyState) -> Option<&str> {
    state.field_str(EntityKind::Integration, PUSH_ENTITY, "pusher")
}

/// The lease in force, as the log left it.
pub fn lease(state: &PolicyState) -> Option<Lease> {
    state
        .field(EntityKind::Integration, PUSH_ENTITY, "lease")
        .and_then(Lease::read)
}

/// Whether the op's client holds an unexpired lease at the op's clock.
fn holds_lease(state: &PolicyState, op: &OpRef<'_>) -> bool {
    lease(state).is_some_and(|l| l.client == op.id.client.0 && l.until > op.hlc.wall_ms)
}

/// How far ahead of the relay's clock a lease claim may be stamped.
pub const MAX_CLAIM_SKEW_MS: u64 = 60_000;

/// The relay's own check at intake, before the rules: a lease claim is
/// judged by its stamp, so one stamped far ahead of the relay's clock would
/// hold the lease for longer than any real time allows. Replicas replaying
/// the log never run this (their clocks differ); what the relay stored
/// passed it.
pub fn check_claim_clock(op: &OpRef<'_>, relay_now_ms: u64) -> Result<(), Refusal> {
    let claim = op.kind == EntityKind::Integration
        && op.entity == PUSH_ENTITY
        && matches!(op.change, Change::Set(f) if f.get("lease").is_some_and(|v| !v.is_null()));
    if claim && op.hlc.wall_ms > relay_now_ms.saturating_add(MAX_CLAIM_SKEW_MS) {
        return Err(Refusal::new(
            Rule::LeaseIsExclusive,
            format!(
                "op {} claims the push lease stamped {} s ahead of the relay's clock; check the clock of @{}'s machine",
                op.id,
                (op.hlc.wall_ms - relay_now_ms) / 1000,
                op.actor
            ),
        ));
    }
    Ok(())
}

/// Judges ops the lease governs; `None` leaves the op to the role table.
pub fn judge_push(
    state: &PolicyState,
    op: &OpRef<'_>,
    roles: &[Role],
) -> Option<Result<(), Refusal>> {
    let Change::Set(fields) = op.change else {
        return None;
    };
    let lead = roles.contains(&Role::Lead);
    let refuse = |rule: Rule, why: String| {
        Some(Err(Refusal::new(
            rule,
            format!(
                "op {} on {}/{} by @{}: {why}",
                op.id, op.kind, op.entity, op.actor
            ),
        )))
    };
    if op.kind == EntityKind::Integration && op.entity == PUSH_ENTITY {
        let claim = fields.get("lease")?;
        if fields.len() > 1 {
            return refuse(
                Rule::LeaseIsExclusive,
                "a lease claim sets the lease and nothing else".into(),
            );
        }
        let current = lease(state).filter(|l| l.until > op.hlc.wall_ms);
        if claim.is_null() {
            // Releasing: the holder, or a lead who takes the outbox back.
            let holder = current.is_some_and(|l| l.client == op.id.client.0);
            return if holder || lead {
                Some(Ok(()))
            } else {
                refuse(
                    Rule::LeaseIsExclusive,
                    "only the holder or a lead releases the push lease".into(),
                )
            };
        }
        if pusher(state) != Some(op.actor) {
            return refuse(
                Rule::LeaseIsExclusive,
                match pusher(state) {
                    Some(p) => format!("the hub's pusher is @{p}"),
                    None => "the hub has no pusher (a lead names one)".into(),
                },
            );
        }
        let Some(wanted) = Lease::read(claim) else {
            return refuse(
                Rule::Malformed,
                "a lease is {client, until} in milliseconds".into(),
            );
        };
        if wanted.client != op.id.client.0 {
            return refuse(
                Rule::LeaseIsExclusive,
                "a replica claims the lease for itself only".into(),
            );
        }
        if wanted.until <= op.hlc.wall_ms || wanted.until - op.hlc.wall_ms > MAX_LEASE_MS {
            return refuse(
                Rule::LeaseIsExclusive,
                format!(
                    "a lease ends after the claim and within {} minutes of it",
                    MAX_LEASE_MS / 60_000
                ),
            );
        }
        return match current {
            Some(l) if l.client != op.id.client.0 => refuse(
                Rule::LeaseIsExclusive,
                format!("client {} holds the push lease", l.client),
            ),
            _ => Some(Ok(())),
        };
    }
    // The pusher's results: only these fields, and only while holding the lease.
    if lead || pusher(state) != Some(op.actor) {
        return None;
    }
    let exists = state
        .entry(op.kind, op.entity)
        .is_some_and(|e| e.creator.is_some());
    let results = match op.kind {
        EntityKind::Delivery if exists => {
            fields.keys().all(|k| RESULT_FIELDS.contains(&k.as_str()))
        }
        EntityKind::Task if exists => fields
            .keys()
            .all(|k| k == "status" || k.starts_with("external:")),
        _ => return None,
    };
    if !results {
        return None;
    }
    if holds_lease(state, op) {
        Some(Ok(()))
    } else {
        refuse(
            Rule::PusherHoldsTheLease,
            "delivery results and tracker state come from the replica holding the push lease"
                .into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_lease_is_a_client_id_and_an_end_in_milliseconds() {
        assert_eq!(
            Lease::read(&json!({"client": 7, "until": 1_000})),
            Some(Lease {
                client: 7,
                until: 1_000
            })
        );
        assert_eq!(
            Lease::read(&json!({"client": u64::MAX, "until": u64::MAX})),
            Some(Lease {
                client: u64::MAX,
                until: u64::MAX
            }),
            "client ids use the whole u64 range"
        );
    }

    #[test]
    fn malformed_leases_read_as_none() {
        for value in [
            json!(null),
            json!("mine"),
            json!(42),
            json!([7, 1_000]),
            json!({}),
            json!({"client": "x"}),
            json!({"client": 7}),
            json!({"until": 1_000}),
            json!({"client": "7", "until": 1_000}),
            json!({"client": 7, "until": "1000"}),
            json!({"client": -7, "until": 1_000}),
            json!({"client": 7, "until": -5}),
            json!({"client": 7.5, "until": 1_000}),
            json!({"client": 7, "until": 1_000.5}),
            json!({"client": null, "until": 1_000}),
        ] {
            assert_eq!(Lease::read(&value), None, "{value} is not a lease");
        }
    }
}
