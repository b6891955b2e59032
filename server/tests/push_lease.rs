//! The push lease against hostile clients and a real `spoke-relay` process:
//! members send, as raw frames, the ops that name the hub's pusher, claim
//! and release the lease, and write delivery results and tracker state onto
//! tasks. Each op carries its own clock reading, and the relay judges the
//! lease at that reading, so the tests move time by stamping ops rather
//! than by sleeping. Every refused op must be answered with an `Error`
//! naming it and its rule and must never reach the log; the accepted ones
//! must be there, at their acked seqs, in order.

mod common;

use common::process::HubSetup;
use common::{Client, Outcome, assert_seqs};
use serde_json::{Value, json};
use spoke_relay::policy::RELAY_CLIENT;
use spoke_relay::policy::push::{MAX_LEASE_MS, PUSH_ENTITY};
use spoke_relay::proto::{ClientId, EntityKey, ErrorCode, Hlc, Op, OpId};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};

/// A hub made with the CLI and a token per member.
type Setup = HubSetup;

fn setup(members: &[(&str, &str)]) -> Setup {
    HubSetup::new("Push Studio", members)
}

// ---------------------------------------------------------------------------
// Members building raw ops at chosen clock readings.

/// Keeps stamps distinct when two ops share a wall time.
static LOGICAL: AtomicU32 = AtomicU32::new(1);

fn hlc_at(wall_ms: u64) -> Hlc {
    Hlc {
        wall_ms,
        logical: LOGICAL.fetch_add(1, Ordering::Relaxed),
    }
}

fn set_body(fields: Value) -> Vec<u8> {
    let map: BTreeMap<String, Value> =
        serde_json::from_value(fields).expect("set fields are a JSON object");
    rmp_serde::to_vec_named(&map).expect("a map of fields encodes")
}

/// One replica of a member: its own connection and client id.
struct Member {
    c: Client,
}

impl Member {
    /// Connects with cursor 0 (the first use of a token grants its role).
    async fn join(addr: SocketAddr, s: &Setup, handle: &str) -> Member {
        let mut c = Client::connect(addr, &s.hub).await;
        let welcome = c.hello(&s.tokens[handle], &s.hub, 0, 0).await;
        assert_eq!(welcome.member, handle);
        Member { c }
    }

    fn client(&self) -> u64 {
        self.c.client_id
    }

    fn next_id(&mut self) -> OpId {
        self.c.next_seq += 1;
        OpId {
            client: ClientId(self.c.client_id),
            seq: self.c.next_seq,
        }
    }

    /// An op from this replica, stamped `wall_ms`.
    fn op_at(&mut self, wall_ms: u64, kind: &str, entity: &str, change: &str, body: Vec<u8>) -> Op {
        Op {
            id: self.next_id(),
            hlc: hlc_at(wall_ms),
            actor: self.c.handle.clone(),
            entity: EntityKey {
                kind: kind.to_owned(),
                id: entity.to_owned(),
            },
            kind: change.to_owned(),
            body,
        }
    }

    fn set_at(&mut self, wall_ms: u64, kind: &str, entity: &str, fields: Value) -> Op {
        self.op_at(wall_ms, kind, entity, "set", set_body(fields))
    }

    /// A `set` of `integration/_push`.
    fn push_at(&mut self, wall_ms: u64, fields: Value) -> Op {
        self.set_at(wall_ms, "integration", PUSH_ENTITY, fields)
    }

    /// Claims the lease for this replica until `until`, stamped `wall_ms`.
    fn claim_at(&mut self, wall_ms: u64, until: u64) -> Op {
        let client = self.client();
        self.push_at(
            wall_ms,
            json!({"lease": {"client": client, "until": until}}),
        )
    }

    fn release_at(&mut self, wall_ms: u64) -> Op {
        self.push_at(wall_ms, json!({ "lease": null }))
    }
}

/// Submits `ops` in one Submit and waits until each is acked or refused.
async fn submit(m: &mut Member, ops: &[Op]) -> Vec<Outcome> {
    m.c.submit_judged(ops).await
}

/// What a case expects of one op.
enum Want {
    Stored,
    Refused {
        case: &'static str,
        rule: &'static str,
        /// Text the refusal's message must contain, when the case says who.
        mentions: Option<String>,
    },
}

fn ok(op: Op) -> (Op, Want) {
    (op, Want::Stored)
}

/// Refused by the hub's rules: `forbidden`, naming `rule`.
fn no(case: &'static str, rule: &'static str, op: Op) -> (Op, Want) {
    let mentions = None;
    (
        op,
        Want::Refused {
            case,
            rule,
            mentions,
        },
    )
}

/// Like [`no`], and the message must contain `mentions`.
fn no_naming(case: &'static str, rule: &'static str, mentions: String, op: Op) -> (Op, Want) {
    let mentions = Some(mentions);
    (
        op,
        Want::Refused {
            case,
            rule,
            mentions,
        },
    )
}

fn describe(op: &Op) -> String {
    let body: Value = rmp_serde::from_slice(&op.body).unwrap_or(Value::Null);
    format!(
        "op {} by @{} at {}: {} {}/{} {}",
        op.id, op.actor, op.hlc.wall_ms, op.kind, op.entity.kind, op.entity.id, body
    )
}

/// Everything submitted so far and what became of it.
#[derive(Default)]
struct Ledger {
    /// Stored ops by seq, as acked.
    stored: BTreeMap<u64, Op>,
    /// Refused ops; none may ever be stored.
    refused: Vec<Op>,
    /// One line per refused case, for the test's output.
    cases: Vec<String>,
    /// Answers that differ from the expected ones; the test fails on any.
    surprises: Vec<String>,
}

impl Ledger {
    /// Submits a batch from one replica and compares each op's outcome with
    /// what it wants.
    async fn check(&mut self, m: &mut Member, batch: Vec<(Op, Want)>) {
        let ops: Vec<Op> = batch.iter().map(|(o, _)| o.clone()).collect();
        let outcomes = submit(m, &ops).await;
        for ((op, want), outcome) in batch.into_iter().zip(outcomes) {
            match (want, outcome) {
                (Want::Stored, Outcome::Stored(seq)) => {
                    self.stored.insert(seq, op);
                }
                (Want::Stored, Outcome::Refused { rule, message, .. }) => {
                    self.surprises.push(format!(
                        "an allowed op was refused ({rule:?}: {message}): {}",
                        describe(&op)
                    ));
                    self.refused.push(op);
                }
                (Want::Refused { case, rule, .. }, Outcome::Stored(seq)) => {
                    self.surprises.push(format!(
                        "ACCEPTED `{case}` (want {rule}): {} was stored at seq {seq}",
                        describe(&op)
                    ));
                    self.stored.insert(seq, op);
                }
                (
                    Want::Refused {
                        case,
                        rule,
                        mentions,
                    },
                    Outcome::Refused {
                        code,
                        rule: got_rule,
                        message,
                    },
                ) => {
                    let named = mentions.as_deref().is_none_or(|m| message.contains(m));
                    if code == ErrorCode::Forbidden && got_rule.as_deref() == Some(rule) && named {
                        self.cases
                            .push(format!("{case}: {} -> {rule}", describe(&op)));
                    } else {
                        self.surprises.push(format!(
                            "`{case}` refused as {code:?} {got_rule:?} (want Forbidden {rule}{}): {}: {message}",
                            mentions.map(|m| format!(", naming `{m}`")).unwrap_or_default(),
                            describe(&op)
                        ));
                    }
                    self.refused.push(op);
                }
            }
        }
    }

    fn assert_no_surprises(&self) {
        assert!(
            self.surprises.is_empty(),
            "{} answer(s) differ from the push rules:\n{}",
            self.surprises.len(),
            self.surprises.join("\n")
        );
    }

    /// The log holds one grant per member who connected and exactly the
    /// stored ops, each at its acked seq, in order; no refused op.
    fn assert_log(&self, log: &[(u64, Op)], members: usize) {
        let mut grants = 0;
        let mut ours = Vec::new();
        for (seq, op) in log {
            assert!(
                !self.refused.iter().any(|r| r == op || r.id == op.id),
                "refused {} is in the log at seq {seq}",
                describe(op)
            );
            if op.id.client == RELAY_CLIENT {
                grants += 1;
            } else {
                ours.push((*seq, op.clone()));
            }
        }
        assert_eq!(grants, members, "one grant per member's first token use");
        let want: Vec<(u64, Op)> = self.stored.iter().map(|(s, o)| (*s, o.clone())).collect();
        assert_eq!(
            ours, want,
            "the log holds exactly the accepted ops at their acked seqs"
        );
    }
}

/// Connects with cursor 0 and reads the whole log (seqs 1..=head).
async fn read_full_log(addr: SocketAddr, s: &Setup, handle: &str) -> Vec<(u64, Op)> {
    let mut c = Client::connect(addr, &s.hub).await;
    let welcome = c.hello(&s.tokens[handle], &s.hub, 0, 0).await;
    let log = if welcome.head == 0 {
        Vec::new()
    } else {
        c.collect_ops_until(welcome.head).await
    };
    assert_seqs(&log, 1, welcome.head);
    c.expect_nothing_but_pong(1).await;
    c.close().await;
    log
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_of_the_named_pusher_holds_the_lease_at_a_time() {
    let s = setup(&[("cora", "creative"), ("bot", "agent")]);
    let relay = s.start().await;
    let addr = relay.addr;
    let mut admin = Member::join(addr, &s, "admin").await;
    let mut cora = Member::join(addr, &s, "cora").await;
    let mut bot1 = Member::join(addr, &s, "bot").await;
    let mut bot2 = Member::join(addr, &s, "bot").await;
    assert_ne!(bot1.client(), bot2.client(), "two replicas of @bot");
    let mut l = Ledger::default();
    // Every op names its own clock reading; `t` is the test's epoch.
    let t = spoke_relay::auth::now_ms();
    let minute = 60_000;

    // --- Naming the pusher is a lead's. ---
    let batch = vec![
        no(
            "a creative names itself pusher",
            "role-table",
            cora.push_at(t + 1, json!({"pusher": "cora"})),
        ),
        no_naming(
            "a claim before any pusher is named",
            "lease-is-exclusive",
            "no pusher".into(),
            cora.claim_at(t + 2, t + minute),
        ),
    ];
    l.check(&mut cora, batch).await;
    let batch = vec![ok(admin.push_at(t + 3, json!({"pusher": "bot"})))];
    l.check(&mut admin, batch).await;
    let batch = vec![no(
        "an agent renames the pusher",
        "role-table",
        bot1.push_at(t + 4, json!({"pusher": "cora"})),
    )];
    l.check(&mut bot1, batch).await;

    // --- A claim stamped far ahead of the relay's clock would outlive any
    // real lease; the relay refuses it at intake. ---
    let batch = vec![no_naming(
        "the pusher claims with a clock an hour fast",
        "lease-is-exclusive",
        "ahead of the relay's clock".into(),
        bot1.claim_at(t + 60 * minute, t + 65 * minute),
    )];
    l.check(&mut bot1, batch).await;

    // --- Claims nobody but the pusher's replica, for itself, may make. ---
    let batch = vec![no_naming(
        "a lead who is not the pusher claims",
        "lease-is-exclusive",
        "the hub's pusher is @bot".into(),
        admin.claim_at(t + 10, t + minute),
    )];
    l.check(&mut admin, batch).await;
    let batch = vec![no(
        "a creative who is not the pusher claims",
        "lease-is-exclusive",
        cora.claim_at(t + 10, t + minute),
    )];
    l.check(&mut cora, batch).await;
    let other = bot2.client();
    let mine = bot1.client();
    let batch = vec![
        no(
            "the pusher claims for another of its client ids",
            "lease-is-exclusive",
            bot1.push_at(
                t + 10,
                json!({"lease": {"client": other, "until": t + minute}}),
            ),
        ),
        no(
            "a lease that ended before the claim",
            "lease-is-exclusive",
            bot1.claim_at(t + 10, t + 9),
        ),
        no(
            "a lease that ends at the claim",
            "lease-is-exclusive",
            bot1.claim_at(t + 10, t + 10),
        ),
        no_naming(
            "a lease over ten minutes long",
            "lease-is-exclusive",
            "within 10 minutes".into(),
            bot1.claim_at(t + 10, t + 10 + MAX_LEASE_MS + 1),
        ),
        no_naming(
            "a claim that sets another field too",
            "lease-is-exclusive",
            "nothing else".into(),
            bot1.push_at(
                t + 10,
                json!({"lease": {"client": mine, "until": t + minute}, "pusher": "bot"}),
            ),
        ),
        no(
            "a lease whose client is not a number",
            "malformed",
            bot1.push_at(t + 10, json!({"lease": {"client": "x"}})),
        ),
        no(
            "a lease without an end",
            "malformed",
            bot1.push_at(t + 10, json!({"lease": {"client": mine}})),
        ),
        no(
            "a lease ending at a negative time",
            "malformed",
            bot1.push_at(t + 10, json!({"lease": {"client": mine, "until": -5}})),
        ),
        no(
            "a lease that is a word",
            "malformed",
            bot1.push_at(t + 10, json!({"lease": "mine"})),
        ),
        no(
            "the pusher releases a lease nobody holds",
            "lease-is-exclusive",
            bot1.release_at(t + 10),
        ),
    ];
    l.check(&mut bot1, batch).await;

    // --- One replica at a time. ---
    let first_until = t + 1_500;
    let batch = vec![ok(bot1.claim_at(t + 1_000, first_until))];
    l.check(&mut bot1, batch).await;
    let batch = vec![
        no_naming(
            "a second replica claims a live lease",
            "lease-is-exclusive",
            format!("client {mine} holds the push lease"),
            bot2.claim_at(t + 1_100, t + 1_100 + minute),
        ),
        no(
            "a replica that does not hold the lease releases it",
            "lease-is-exclusive",
            bot2.release_at(t + 1_200),
        ),
    ];
    l.check(&mut bot2, batch).await;
    let batch = vec![no(
        "a creative releases the pusher's lease",
        "lease-is-exclusive",
        cora.release_at(t + 1_200),
    )];
    l.check(&mut cora, batch).await;

    // The first lease ends at `first_until`: a claim stamped after it wins.
    let second_until = first_until + 1 + minute;
    let batch = vec![ok(bot2.claim_at(first_until + 1, second_until))];
    l.check(&mut bot2, batch).await;
    let batch = vec![no_naming(
        "the former holder renews a lease it lost",
        "lease-is-exclusive",
        format!("client {other} holds the push lease"),
        bot1.claim_at(t + 1_600, t + 1_600 + minute),
    )];
    l.check(&mut bot1, batch).await;

    // --- Releases: the holder's and a lead's end the lease at once. ---
    let batch = vec![ok(bot2.release_at(t + 1_700))];
    l.check(&mut bot2, batch).await;
    assert!(t + 1_800 < second_until, "the released lease had time left");
    let batch = vec![ok(bot1.claim_at(t + 1_800, t + 1_800 + MAX_LEASE_MS))];
    l.check(&mut bot1, batch).await;
    let batch = vec![no(
        "a second replica claims a ten-minute lease",
        "lease-is-exclusive",
        bot2.claim_at(t + 1_900, t + 1_900 + minute),
    )];
    l.check(&mut bot2, batch).await;
    let batch = vec![ok(admin.release_at(t + 2_000))];
    l.check(&mut admin, batch).await;
    let batch = vec![
        ok(bot2.claim_at(t + 2_100, t + 3_100)),
        ok(bot2.claim_at(t + 2_200, t + 2_200 + minute)),
        ok(bot2.release_at(t + 2_300)),
    ];
    l.check(&mut bot2, batch).await;

    eprintln!(
        "{} refused cases:\n  {}",
        l.cases.len(),
        l.cases.join("\n  ")
    );
    l.assert_no_surprises();
    assert_eq!(l.cases.len(), 21, "every refused case was answered");

    let log = read_full_log(addr, &s, "admin").await;
    l.assert_log(&log, 3);
    drop(relay);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_replica_holding_the_lease_writes_results_and_tracker_state() {
    let s = setup(&[("cora", "creative"), ("bot", "agent")]);
    let relay = s.start().await;
    let addr = relay.addr;
    let mut admin = Member::join(addr, &s, "admin").await;
    let mut cora = Member::join(addr, &s, "cora").await;
    let mut bot1 = Member::join(addr, &s, "bot").await;
    let mut bot2 = Member::join(addr, &s, "bot").await;
    let mut l = Ledger::default();
    let t = spoke_relay::auth::now_ms();
    let until = t + 1_000 + 60_000;

    // A pusher, an outbox item a creative enqueued, a task a lead planned.
    let batch = vec![
        ok(admin.push_at(t + 1, json!({"pusher": "bot"}))),
        ok(admin.set_at(
            t + 2,
            "task",
            "t-1",
            json!({"title": "Cut the teaser", "brief": "b-1", "status": "todo"}),
        )),
    ];
    l.check(&mut admin, batch).await;
    let batch = vec![ok(cora.set_at(
        t + 3,
        "delivery",
        "d-1",
        json!({"connector": "jira", "action": "create", "task": "t-1",
               "status": "pending", "attempts": 0, "created_by": "cora"}),
    ))];
    l.check(&mut cora, batch).await;
    // Results before any lease.
    let batch = vec![no(
        "the pusher writes a result before claiming",
        "pusher-holds-the-lease",
        bot1.set_at(t + 500, "delivery", "d-1", json!({"status": "done"})),
    )];
    l.check(&mut bot1, batch).await;
    let batch = vec![ok(bot1.claim_at(t + 1_000, until))];
    l.check(&mut bot1, batch).await;

    // --- The holder writes results and tracker state. ---
    let batch = vec![
        ok(bot1.set_at(
            t + 2_000,
            "delivery",
            "d-1",
            json!({"status": "done", "attempts": 1, "result": {"key": "SPK-7"},
                   "done_at": t + 2_000, "last_error": null, "next_at": null}),
        )),
        ok(bot1.set_at(
            t + 2_001,
            "task",
            "t-1",
            json!({"external:jira": {"key": "SPK-7", "url": "https://jira.example/browse/SPK-7"},
                   "status": "in_progress"}),
        )),
        no(
            "the pusher retitles a task",
            "role-table",
            bot1.set_at(t + 2_002, "task", "t-1", json!({"title": "Renamed"})),
        ),
        no(
            "the pusher slips a title in beside tracker state",
            "role-table",
            bot1.set_at(
                t + 2_003,
                "task",
                "t-1",
                json!({"status": "done", "title": "Renamed"}),
            ),
        ),
        no(
            "the pusher deletes a task through its tombstone field",
            "role-table",
            bot1.set_at(t + 2_004, "task", "t-1", json!({"deleted": true})),
        ),
        no(
            "the pusher repoints a delivery at another connector",
            "role-table",
            bot1.set_at(t + 2_005, "delivery", "d-1", json!({"connector": "asana"})),
        ),
        no(
            "the pusher slips a connector in beside a result",
            "role-table",
            bot1.set_at(
                t + 2_006,
                "delivery",
                "d-1",
                json!({"status": "failed", "connector": "asana"}),
            ),
        ),
        no(
            "the pusher deletes a delivery",
            "role-table",
            bot1.op_at(t + 2_007, "delivery", "d-1", "delete", Vec::new()),
        ),
        no(
            "the holder writes a result stamped after its lease ends",
            "pusher-holds-the-lease",
            bot1.set_at(until + 1, "delivery", "d-1", json!({"status": "failed"})),
        ),
    ];
    l.check(&mut bot1, batch).await;

    // --- The same member's other replica holds no lease. ---
    let batch = vec![
        no(
            "a replica without the lease writes a delivery result",
            "pusher-holds-the-lease",
            bot2.set_at(
                t + 2_100,
                "delivery",
                "d-1",
                json!({"status": "done", "result": {"key": "SPK-8"}}),
            ),
        ),
        no(
            "a replica without the lease mirrors tracker state",
            "pusher-holds-the-lease",
            bot2.set_at(
                t + 2_101,
                "task",
                "t-1",
                json!({"external:jira": {"key": "SPK-8"}, "status": "done"}),
            ),
        ),
    ];
    l.check(&mut bot2, batch).await;

    // --- Delivery edits are otherwise a lead's. ---
    let batch = vec![no(
        "a creative marks its own delivery done",
        "role-table",
        cora.set_at(t + 2_200, "delivery", "d-1", json!({"status": "done"})),
    )];
    l.check(&mut cora, batch).await;
    let batch = vec![
        ok(admin.set_at(
            t + 2_300,
            "delivery",
            "d-1",
            json!({"status": "pending", "attempts": 0, "next_at": null, "last_error": null}),
        )),
        ok(admin.release_at(t + 2_400)),
    ];
    l.check(&mut admin, batch).await;

    // A lead took the outbox back: the former holder's results are refused.
    let batch = vec![no(
        "the holder writes a result after a lead released its lease",
        "pusher-holds-the-lease",
        bot1.set_at(t + 2_500, "delivery", "d-1", json!({"status": "done"})),
    )];
    l.check(&mut bot1, batch).await;

    eprintln!(
        "{} refused cases:\n  {}",
        l.cases.len(),
        l.cases.join("\n  ")
    );
    l.assert_no_surprises();
    assert_eq!(l.cases.len(), 12, "every refused case was answered");

    let log = read_full_log(addr, &s, "admin").await;
    l.assert_log(&log, 3);
    drop(relay);
}
