//! The hub's role policy against hostile clients and a real `spoke-relay`
//! process: members of every role send, as raw frames, ops the policy
//! forbids (often alongside ops it allows). Each forbidden op must be
//! answered with an `Error` naming the op and the rule, never stored nor
//! fanned out, while the rest of its Submit is handled on its own merits and
//! a well-behaved member keeps receiving a gapless log.

mod common;

use common::process::HubSetup;
use common::{Client, Outcome, TIMEOUT, assert_seqs};
use futures_util::StreamExt;
use serde_json::{Value, json};
use spoke_relay::policy::{RELAY_ACTOR, RELAY_CLIENT};
use spoke_relay::proto::{
    ClientId, EntityKey, ErrorCode, Frame, Hlc, Op, OpId, decode_frame, decode_op,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

/// A hub made with the CLI and a token per member.
type Setup = HubSetup;

fn setup(members: &[(&str, &str)]) -> Setup {
    HubSetup::new("Policy Studio", members)
}

// ---------------------------------------------------------------------------
// Members building raw ops.

static LOGICAL: AtomicU32 = AtomicU32::new(1);

/// A clock reading after the relay's grants: fields merge last-writer-wins,
/// so a lead's change of roles must be stamped later than the grant.
fn now_hlc() -> Hlc {
    Hlc {
        wall_ms: spoke_relay::auth::now_ms(),
        logical: LOGICAL.fetch_add(1, Ordering::Relaxed),
    }
}

fn set_body(fields: Value) -> Vec<u8> {
    let map: BTreeMap<String, Value> =
        serde_json::from_value(fields).expect("set fields are a JSON object");
    rmp_serde::to_vec_named(&map).expect("a map of fields encodes")
}

fn append_body(item: Value) -> Vec<u8> {
    rmp_serde::to_vec_named(&item).expect("an item encodes")
}

fn raw_op(id: OpId, actor: &str, kind: &str, entity: &str, change: &str, body: Vec<u8>) -> Op {
    Op {
        id,
        hlc: now_hlc(),
        actor: actor.to_owned(),
        entity: EntityKey {
            kind: kind.to_owned(),
            id: entity.to_owned(),
        },
        kind: change.to_owned(),
        body,
    }
}

/// One member's connection.
struct Member {
    c: Client,
}

impl Member {
    /// Connects with cursor 0 (the first use of the token grants its role).
    async fn join(addr: SocketAddr, s: &Setup, handle: &str) -> (Member, u64) {
        let mut c = Client::connect(addr, &s.hub).await;
        let welcome = c.hello(&s.tokens[handle], &s.hub, 0, 0).await;
        assert_eq!(welcome.member, handle);
        (Member { c }, welcome.head)
    }

    fn handle(&self) -> String {
        self.c.handle.clone()
    }

    fn next_id(&mut self) -> OpId {
        self.c.next_seq += 1;
        OpId {
            client: ClientId(self.c.client_id),
            seq: self.c.next_seq,
        }
    }

    /// An op from this member's client id and handle.
    fn raw(&mut self, kind: &str, entity: &str, change: &str, body: Vec<u8>) -> Op {
        let id = self.next_id();
        raw_op(id, &self.handle(), kind, entity, change, body)
    }

    fn set(&mut self, kind: &str, entity: &str, fields: Value) -> Op {
        self.raw(kind, entity, "set", set_body(fields))
    }

    fn append(&mut self, kind: &str, entity: &str, item: Value) -> Op {
        self.raw(kind, entity, "append", append_body(item))
    }

    fn delete(&mut self, kind: &str, entity: &str) -> Op {
        self.raw(kind, entity, "delete", Vec::new())
    }

    /// A chat message: allowed for every member who writes.
    fn chat(&mut self, text: &str) -> Op {
        self.append("thread", "th-1", json!({ "text": text }))
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
        code: ErrorCode,
        rule: &'static str,
    },
}

fn ok(op: Op) -> (Op, Want) {
    (op, Want::Stored)
}

/// Refused by the hub's rules (`forbidden`).
fn no(case: &'static str, rule: &'static str, op: Op) -> (Op, Want) {
    let code = ErrorCode::Forbidden;
    (op, Want::Refused { case, code, rule })
}

/// Refused before the rules (`bad_op`): a forged actor, an unreadable op.
fn bad(case: &'static str, rule: &'static str, op: Op) -> (Op, Want) {
    let code = ErrorCode::BadOp;
    (op, Want::Refused { case, code, rule })
}

fn describe(op: &Op) -> String {
    let body: Value = rmp_serde::from_slice(&op.body).unwrap_or(Value::Null);
    format!(
        "op {} by @{}: {} {}/{} {}",
        op.id, op.actor, op.kind, op.entity.kind, op.entity.id, body
    )
}

/// Everything submitted so far and what became of it.
#[derive(Default)]
struct Ledger {
    /// Stored ops by seq, as acked.
    stored: BTreeMap<u64, Op>,
    /// Refused ops (none may ever be stored). Some share their id with a
    /// stored op (a squatted client id, the relay's client id).
    refused: Vec<Op>,
    /// One line per forbidden case: the case, the op, the rule.
    cases: Vec<String>,
    /// Answers that differ from the expected ones; the test fails on any.
    surprises: Vec<String>,
}

impl Ledger {
    /// Submits a batch and compares each op's outcome with what it wants.
    async fn check(&mut self, m: &mut Member, batch: Vec<(Op, Want)>) {
        let ops: Vec<Op> = batch.iter().map(|(o, _)| o.clone()).collect();
        let outcomes = submit(m, &ops).await;
        for ((op, want), outcome) in batch.into_iter().zip(outcomes) {
            match (want, outcome) {
                (Want::Stored, Outcome::Stored(seq)) => {
                    self.stored.insert(seq, op);
                }
                (Want::Stored, Outcome::Refused { rule, message, .. }) => {
                    self.refused.push(op.clone());
                    self.surprises.push(format!(
                        "an allowed op was refused ({rule:?}: {message}): {}",
                        describe(&op)
                    ));
                }
                (Want::Refused { case, rule, .. }, Outcome::Stored(seq)) => {
                    self.stored.insert(seq, op.clone());
                    self.surprises.push(format!(
                        "ACCEPTED `{case}` (want {rule}): {} was stored at seq {seq}",
                        describe(&op)
                    ));
                }
                (
                    Want::Refused { case, code, rule },
                    Outcome::Refused {
                        code: got_code,
                        rule: got_rule,
                        message,
                    },
                ) => {
                    self.refused.push(op.clone());
                    if got_code == code && got_rule.as_deref() == Some(rule) {
                        self.cases
                            .push(format!("{case}: {} -> {rule}", describe(&op)));
                    } else {
                        self.surprises.push(format!(
                            "`{case}` refused as {got_code:?} {got_rule:?} (want {code:?} {rule}): {}: {message}",
                            describe(&op)
                        ));
                    }
                }
            }
        }
    }

    /// Submits ops that must all be stored.
    async fn allowed(&mut self, m: &mut Member, ops: Vec<Op>) {
        self.check(m, ops.into_iter().map(ok).collect()).await;
    }

    fn assert_no_surprises(&self) {
        assert!(
            self.surprises.is_empty(),
            "{} answer(s) differ from the policy:\n{}",
            self.surprises.len(),
            self.surprises.join("\n")
        );
    }

    /// The log holds the members' grants (`(handle, role)`) and exactly the
    /// stored ops, each at its acked seq; no refused op.
    fn assert_log(&self, log: &[(u64, Op)], granted: &[(&str, &str)]) {
        let roles: HashMap<&str, &str> = granted.iter().copied().collect();
        let mut grants = BTreeSet::new();
        let mut members_ops = 0;
        for (seq, op) in log {
            assert!(
                !self.refused.contains(op),
                "refused {} is in the log at seq {seq}",
                describe(op)
            );
            if op.id.client == RELAY_CLIENT {
                let handle = op.entity.id.as_str();
                let role = roles
                    .get(handle)
                    .unwrap_or_else(|| panic!("seq {seq}: a grant for @{handle}: {op:?}"));
                common::assert_grant(op, handle, role);
                assert!(grants.insert(handle.to_owned()), "two grants for @{handle}");
                continue;
            }
            members_ops += 1;
            assert_eq!(
                Some(op),
                self.stored.get(seq),
                "seq {seq} holds the op acked with it"
            );
        }
        assert_eq!(members_ops, self.stored.len(), "every acked op is stored");
        let want: BTreeSet<String> = roles.keys().map(|h| (*h).to_owned()).collect();
        assert_eq!(grants, want, "one grant per member's first token use");
    }
}

/// A well-behaved member's connection: reads `Ops` frames from seq 1,
/// checking each continues exactly where the last ended, until the head
/// `until` names. Answers the relay's pings.
async fn watch_log(mut c: Client, mut until: watch::Receiver<u64>) -> Vec<(u64, Op)> {
    let mut log: Vec<(u64, Op)> = Vec::new();
    loop {
        let want = *until.borrow_and_update();
        let have = log.last().map_or(0, |(s, _)| *s);
        if want > 0 && have >= want {
            assert_eq!(have, want, "the watcher got ops past the head");
            c.close().await;
            return log;
        }
        let next = tokio::select! {
            changed = until.changed() => {
                changed.expect("the test names the head before it ends");
                None
            }
            message = tokio::time::timeout(TIMEOUT * 12, c.ws.next()) => Some(message),
        };
        let Some(message) = next else { continue };
        let message = message
            .expect("the watcher hears from the relay in time")
            .expect("the watcher's connection stays open")
            .expect("the watcher's connection reads cleanly");
        let bytes = match message {
            Message::Binary(b) => b,
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("the watcher got {other:?}"),
        };
        match decode_frame(&bytes).expect("the relay sends decodable frames") {
            Frame::Ops { from, ops } => {
                assert_eq!(
                    from,
                    have + 1,
                    "Ops continue the watcher's log: no gap, no repeat"
                );
                for (i, so) in ops.into_iter().enumerate() {
                    assert_eq!(so.seq, from + i as u64, "seqs in Ops are contiguous");
                    log.push((so.seq, decode_op(&so.op).expect("stored ops decode")));
                }
            }
            Frame::Ping { nonce } => c.send(&Frame::Pong { nonce }).await,
            other => panic!("the watcher got {other:?}"),
        }
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

fn decision(stage: u32, reviewer: &str, decision: &str) -> Value {
    json!({ "stage": stage, "reviewer": reviewer, "decision": decision, "comment": "looked at it" })
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_ops_are_refused_with_their_rule_and_never_stored() {
    let roster = [
        ("wes", "requester"), // the well-behaved watcher
        ("lea", "lead"),
        ("cora", "creative"),
        ("cole", "creative"),
        ("rex", "requester"),
        ("ria", "requester"),
        ("rev", "reviewer"),
        ("rob", "reviewer"),
        ("ai", "agent"),
        ("vic", "read-only"),
        ("zed", "creative"), // made read-only by a lead
        ("zia", "creative"), // stripped of every role by a lead
        ("zoe", "creative"), // deleted by a lead
    ];
    let s = setup(&roster);
    let relay = s.start().await;
    let addr = relay.addr;

    // The watcher joins first and reads everything from seq 1.
    let mut wes = Client::connect(addr, &s.hub).await;
    let welcome = wes.hello(&s.tokens["wes"], &s.hub, 0, 0).await;
    assert_eq!(welcome.head, 1, "the watcher's own grant");
    let (head_tx, head_rx) = watch::channel(0u64);
    let watcher = tokio::spawn(watch_log(wes, head_rx));

    let mut head = 1;
    let mut join = async |handle: &str| {
        let (m, h) = Member::join(addr, &s, handle).await;
        head += 1;
        assert_eq!(h, head, "@{handle}'s first Hello adds its grant");
        m
    };
    let mut admin = join("admin").await;
    let mut lea = join("lea").await;
    let mut cora = join("cora").await;
    let mut cole = join("cole").await;
    let mut rex = join("rex").await;
    let mut ria = join("ria").await;
    let mut rev = join("rev").await;
    let mut rob = join("rob").await;
    let mut ai = join("ai").await;
    let mut vic = join("vic").await;
    let mut zed = join("zed").await;
    let mut zia = join("zia").await;
    let mut zoe = join("zoe").await;
    let mut l = Ledger::default();
    let hub = s.hub.clone();

    // --- The hub as the attackers find it (all allowed). ---
    let ops = vec![
        admin.set(
            "hub",
            &hub,
            json!({"name": "Policy Studio", "settings": {"due_days": 7}}),
        ),
        admin.set(
            "brief",
            "b-lead",
            json!({"title": "Launch", "created_by": "admin", "status": "new"}),
        ),
        admin.set(
            "brief",
            "b-assigned",
            json!({"title": "Poster", "created_by": "admin", "assignees:cole": true}),
        ),
    ];
    l.allowed(&mut admin, ops).await;
    let ops = vec![rex.set(
        "brief",
        "b-rex",
        json!({"title": "Flyer", "requester": "rex", "created_by": "rex", "status": "new"}),
    )];
    l.allowed(&mut rex, ops).await;
    let ops = vec![
        cora.chat("hello"),
        cora.set(
            "brief",
            "b-cora",
            json!({"title": "Reel", "requester": "cora", "created_by": "cora"}),
        ),
        cora.set("asset", "a-1", json!({"title": "Key visual", "status": "wip"})),
        cora.append(
            "asset",
            "a-1",
            json!({"version": 1, "provenance": {"by": "human"}}),
        ),
        cora.set("asset", "a-2", json!({"title": "Banner", "status": "wip"})),
        cora.set(
            "proposal",
            "p-1",
            json!({"kind": "brief_update", "payload": {"title": "Launch v2"}, "brief": "b-lead",
                   "status": "pending", "created_by": "cora"}),
        ),
        // Open: two stages, rev then rob.
        cora.set(
            "approval",
            "r-1",
            json!({"title": "Launch v2?", "subject": {"type": "proposal", "id": "p-1"},
                   "stages": [{"name": "review", "reviewers": ["rev"], "mode": "decide"},
                              {"name": "sign-off", "reviewers": ["rob"], "mode": "decide"}],
                   "created_by": "cora"}),
        ),
        // Will be rejected.
        cora.set(
            "approval",
            "r-2",
            json!({"title": "Key visual ok?", "subject": {"type": "asset_version", "asset": "a-1", "version": 1},
                   "stages": [{"name": "review", "reviewers": ["rev"], "mode": "decide"}],
                   "created_by": "cora"}),
        ),
        // Will be approved.
        cora.set(
            "approval",
            "r-3",
            json!({"title": "Banner ok?", "subject": {"type": "asset_version", "asset": "a-2", "version": 1},
                   "stages": [{"name": "review", "reviewers": ["role:reviewer"], "mode": "decide"}],
                   "created_by": "cora"}),
        ),
        cora.append(
            "audit",
            "au-1",
            json!({"action": "brief.create", "brief": "b-cora"}),
        ),
    ];
    l.allowed(&mut cora, ops).await;
    let ops = vec![
        rev.append("approval", "r-2", decision(0, "rev", "rejected")),
        rev.append("approval", "r-3", decision(0, "rev", "approved")),
    ];
    l.allowed(&mut rev, ops).await;
    let ops = vec![rob.append("approval", "r-3", decision(0, "rob", "approved"))];
    l.allowed(&mut rob, ops).await;
    let ops = vec![
        ai.set(
            "asset",
            "a-ai",
            json!({"title": "AI draft", "status": "draft", "created_by": "ai"}),
        ),
        ai.append(
            "asset",
            "a-ai",
            json!({"version": 1, "provenance": {"by": "ai", "model": "m-1"}}),
        ),
    ];
    l.allowed(&mut ai, ops).await;
    assert!(l.surprises.is_empty(), "setup: {:?}", l.surprises);

    // --- Agents. ---
    let batch = vec![
        no(
            "agent edits a brief",
            "role-table",
            ai.set("brief", "b-lead", json!({"title": "AI knows best"})),
        ),
        ok(ai.chat("drafting")),
        no(
            "agent sets a brief's status",
            "role-table",
            ai.set("brief", "b-rex", json!({"status": "approved"})),
        ),
        no(
            "agent decides on an approval",
            "only-current-reviewers-decide",
            ai.append("approval", "r-1", decision(0, "ai", "approved")),
        ),
        no(
            "agent rewrites a request's stages",
            "stages-are-lead-only",
            ai.set(
                "approval",
                "r-1",
                json!({"stages": [{"name": "review", "reviewers": ["ai"], "mode": "decide"}]}),
            ),
        ),
        no(
            "agent appends a human-labelled version to its own asset",
            "agents-draft-only",
            ai.append(
                "asset",
                "a-ai",
                json!({"version": 2, "provenance": {"by": "human"}}),
            ),
        ),
        no(
            "agent appends an unlabelled version to its own asset",
            "agents-draft-only",
            ai.append("asset", "a-ai", json!({"version": 2})),
        ),
        ok(ai.append(
            "asset",
            "a-ai",
            json!({"version": 2, "provenance": {"by": "ai", "model": "m-1"}}),
        )),
        no(
            "agent appends an AI version to someone else's asset",
            "role-table",
            ai.append(
                "asset",
                "a-1",
                json!({"version": 2, "provenance": {"by": "ai"}}),
            ),
        ),
        no(
            "agent creates an asset already approved",
            "asset-approval-needs-a-request",
            ai.set(
                "asset",
                "a-ai2",
                json!({"title": "Done", "status": "approved"}),
            ),
        ),
        no(
            "agent creates a task",
            "role-table",
            ai.set(
                "task",
                "t-1",
                json!({"title": "Do it", "brief": "b-lead", "assignee": "ai"}),
            ),
        ),
        no(
            "agent writes a task as the effect of an unapproved proposal",
            "effect-needs-its-approval",
            ai.set(
                "task",
                "t-1-a",
                json!({"title": "Do it", "brief": "b-lead", "from_proposal": "p-1"}),
            ),
        ),
    ];
    l.check(&mut ai, batch).await;

    // --- Creatives. ---
    let batch = vec![
        no(
            "creative promotes itself",
            "roles-are-lead-only",
            cora.set("member", "cora", json!({"roles:lead": true})),
        ),
        ok(cora.set("member", "cora", json!({"display_name": "Cora"}))),
        no(
            "creative appends to its member record",
            "role-table",
            cora.append("member", "cora", json!({"roles": ["lead"]})),
        ),
        no(
            "creative creates a member",
            "role-table",
            cora.set("member", "newbie", json!({"display_name": "New"})),
        ),
        no(
            "non-lead deletes a member",
            "role-table",
            cora.delete("member", "rex"),
        ),
        no(
            "creative sets the hub's settings",
            "role-table",
            cora.set("hub", &hub, json!({"settings": {"due_days": 1}})),
        ),
        no(
            "creative marks an asset approved",
            "asset-approval-needs-a-request",
            cora.set("asset", "a-1", json!({"status": "approved"})),
        ),
        no(
            "creative changes who requested its own brief",
            "ownership-is-lead-only",
            cora.set("brief", "b-cora", json!({"requester": "cole"})),
        ),
        no(
            "non-lead changes the stages of its own request",
            "stages-are-lead-only",
            cora.set(
                "approval",
                "r-1",
                json!({"stages": [{"name": "review", "reviewers": ["cora"], "mode": "decide"}]}),
            ),
        ),
        no(
            "non-lead changes the subject of its own request",
            "stages-are-lead-only",
            cora.set(
                "approval",
                "r-1",
                json!({"subject": {"type": "asset_version", "asset": "a-1", "version": 1}}),
            ),
        ),
        ok(cora.set("approval", "r-1", json!({"title": "Launch v2, please"}))),
        no(
            "effect from an unapproved proposal",
            "effect-needs-its-approval",
            cora.set(
                "brief",
                "b-lead",
                json!({"title": "Launch v2", "from_proposal": "p-1"}),
            ),
        ),
        no(
            "effect naming an open request",
            "effect-needs-its-approval",
            cora.set(
                "proposal",
                "p-1",
                json!({"status": "applied", "approval": "r-1"}),
            ),
        ),
        no(
            "effect contradicting its request's outcome (rejected)",
            "effect-needs-its-approval",
            cora.set(
                "asset",
                "a-1",
                json!({"status": "approved", "approval": "r-2"}),
            ),
        ),
        ok(cora.set(
            "asset",
            "a-1",
            json!({"status": "wip", "approval": "r-2", "review_feedback": "off-brand"}),
        )),
        no(
            "effect naming another subject's request",
            "effect-needs-its-approval",
            cora.set(
                "asset",
                "a-1",
                json!({"status": "approved", "approval": "r-3"}),
            ),
        ),
        no(
            "set creating an audit entry",
            "audit-is-append-only",
            cora.set("audit", "au-2", json!({"action": "nothing happened"})),
        ),
    ];
    l.check(&mut cora, batch).await;

    let batch = vec![
        no(
            "creative edits a brief it neither created nor is assigned to",
            "role-table",
            cole.set("brief", "b-rex", json!({"title": "Mine now"})),
        ),
        ok(cole.set("brief", "b-assigned", json!({"title": "Poster, A2"}))),
        no(
            "creative assigns itself",
            "assignment-is-lead-only",
            cole.set("brief", "b-lead", json!({"assignees:cole": true})),
        ),
        no(
            "creative deletes someone else's asset",
            "role-table",
            cole.delete("asset", "a-1"),
        ),
        no(
            "creative deletes a thread",
            "role-table",
            cole.delete("thread", "th-1"),
        ),
        no(
            "decision by a member who reviews no stage",
            "only-current-reviewers-decide",
            cole.append("approval", "r-1", decision(0, "cole", "approved")),
        ),
    ];
    l.check(&mut cole, batch).await;

    // --- Requesters. ---
    let batch = vec![
        no(
            "requester cancels someone else's brief",
            "role-table",
            ria.set("brief", "b-rex", json!({"status": "cancelled"})),
        ),
        ok(ria.chat("any news?")),
        no(
            "requester deletes someone else's brief",
            "role-table",
            ria.delete("brief", "b-rex"),
        ),
        no(
            "requester deletes someone else's brief by setting `deleted`",
            "role-table",
            ria.set("brief", "b-rex", json!({"deleted": true})),
        ),
        no(
            "requester files a brief already assigned",
            "assignment-is-lead-only",
            ria.set(
                "brief",
                "b-ria",
                json!({"title": "Mine", "requester": "ria", "assignees:cole": true}),
            ),
        ),
        no(
            "requester removes another member's role",
            "roles-are-lead-only",
            ria.set("member", "rex", json!({"roles:requester": false})),
        ),
        no(
            "requester edits a proposal",
            "role-table",
            ria.set(
                "proposal",
                "p-1",
                json!({"payload": {"title": "Something else"}}),
            ),
        ),
    ];
    l.check(&mut ria, batch).await;

    // --- Reviewers and decisions. ---
    let batch = vec![
        no(
            "decision for the wrong stage",
            "only-current-reviewers-decide",
            rev.append("approval", "r-1", decision(1, "rev", "approved")),
        ),
        ok(rev.chat("reviewing")),
        no(
            "decision naming another reviewer",
            "only-current-reviewers-decide",
            rev.append("approval", "r-1", decision(0, "rob", "approved")),
        ),
        no(
            "decision on a closed request",
            "approval-closed",
            rev.append("approval", "r-2", decision(0, "rev", "approved")),
        ),
        no(
            "decision on a request that does not exist",
            "only-current-reviewers-decide",
            rev.append("approval", "r-none", decision(0, "rev", "approved")),
        ),
        no(
            "something that is not a decision appended to a request",
            "decisions-are-append-only",
            rev.append("approval", "r-1", json!({"text": "lgtm"})),
        ),
    ];
    l.check(&mut rev, batch).await;
    let batch = vec![
        no(
            "decision by the next stage's reviewer before its turn",
            "only-current-reviewers-decide",
            rob.append("approval", "r-1", decision(1, "rob", "approved")),
        ),
        no(
            "reviewer files a brief",
            "role-table",
            rob.set("brief", "b-rob", json!({"title": "Mine"})),
        ),
        ok(rob.chat("waiting for stage 1")),
    ];
    l.check(&mut rob, batch).await;

    // --- Audit entries, even for a lead. ---
    let batch = vec![
        no(
            "lead deletes an audit entry",
            "audit-is-append-only",
            admin.delete("audit", "au-1"),
        ),
        no(
            "lead sets fields of an audit entry",
            "audit-is-append-only",
            admin.set("audit", "au-1", json!({"action": "nothing happened"})),
        ),
        ok(admin.append(
            "audit",
            "au-1",
            json!({"action": "audit.read", "by": "admin"}),
        )),
    ];
    l.check(&mut admin, batch).await;

    // --- Forged identities and unreadable ops. ---
    let mut forged = cora.set("brief", "b-lead", json!({"title": "Signed, admin"}));
    forged.actor = "admin".to_owned();
    let mut as_relay = cora.set("member", "cora", json!({"roles:lead": true}));
    as_relay.actor = RELAY_ACTOR.to_owned();
    let relay_client = |seq: u64| OpId {
        client: RELAY_CLIENT,
        seq,
    };
    let grant_lead = set_body(json!({"roles:lead": true}));
    let batch = vec![
        bad(
            "forged actor (another member)",
            "actor-is-the-token",
            forged,
        ),
        bad("forged actor (the relay's)", "actor-is-the-token", as_relay),
        no(
            "the relay's client id, forging a grant",
            "client-id-owned",
            raw_op(
                relay_client(1000),
                "cora",
                "member",
                "cora",
                "set",
                grant_lead.clone(),
            ),
        ),
        no(
            "the relay's client id with the seq of a stored grant",
            "client-id-owned",
            raw_op(relay_client(1), "cora", "member", "cora", "set", grant_lead),
        ),
        ok(cora.chat("still here")),
        bad(
            "malformed set body (not a MessagePack map)",
            "malformed",
            cora.raw(
                "brief",
                "b-cora",
                "set",
                rmp_serde::to_vec_named("not a map").expect("encode"),
            ),
        ),
        bad(
            "malformed body (not MessagePack)",
            "malformed",
            cora.raw("thread", "th-1", "append", vec![0xc1, 0xff]),
        ),
        bad(
            "unknown entity kind",
            "malformed",
            cora.set("invoice", "i-1", json!({"total": 1})),
        ),
        bad(
            "unknown change kind",
            "malformed",
            cora.raw("brief", "b-cora", "patch", set_body(json!({"title": "x"}))),
        ),
    ];
    l.check(&mut cora, batch).await;
    let batch = vec![no(
        "a lead under the relay's client id",
        "client-id-owned",
        raw_op(
            relay_client(2000),
            "lea",
            "brief",
            "b-lead",
            "set",
            set_body(json!({"title": "x"})),
        ),
    )];
    l.check(&mut lea, batch).await;

    // --- Members a lead demoted, stripped or deleted. ---
    let ops = vec![
        lea.set(
            "member",
            "zed",
            json!({"roles:creative": false, "roles:read-only": true}),
        ),
        lea.set("member", "zia", json!({"roles:creative": false})),
        lea.delete("member", "zoe"),
    ];
    l.allowed(&mut lea, ops).await;
    let batch = vec![no(
        "member a lead made read-only (its token still says creative)",
        "read-only",
        zed.chat("can I still talk?"),
    )];
    l.check(&mut zed, batch).await;
    let batch = vec![
        no(
            "member holding no role",
            "not-a-member",
            zia.chat("anyone?"),
        ),
        no(
            "member holding no role files a brief",
            "not-a-member",
            zia.set("brief", "b-zia", json!({"title": "Mine"})),
        ),
    ];
    l.check(&mut zia, batch).await;
    let batch = vec![no(
        "deleted member",
        "not-a-member",
        zoe.set("brief", "b-cora", json!({"title": "Revenge"})),
    )];
    l.check(&mut zoe, batch).await;

    // --- A read-only token cannot submit at all (a frame-level refusal). ---
    let ops = vec![
        vic.chat("hi"),
        vic.set("brief", "b-vic", json!({"title": "Mine"})),
    ];
    l.refused.extend(ops.iter().cloned());
    vic.c.send(&Frame::Submit { ops }).await;
    let (message, op, rule) = vic.c.expect_refusal(ErrorCode::Forbidden).await;
    assert_eq!((op, rule), (None, None), "{message}");
    vic.c.ping(7).await;
    l.cases
        .push("read-only token submits anything -> frame-level forbidden".to_owned());

    // The attackers' connections are all still open and usable.
    for (m, nonce) in [
        (&mut ai, 11),
        (&mut cora, 12),
        (&mut cole, 13),
        (&mut ria, 14),
        (&mut rev, 15),
        (&mut rob, 16),
        (&mut zed, 17),
        (&mut zia, 18),
        (&mut zoe, 19),
        (&mut vic, 20),
        (&mut lea, 21),
    ] {
        m.c.ping(nonce).await;
    }
    let ops = vec![cora.chat("done")];
    l.allowed(&mut cora, ops).await;

    eprintln!(
        "{} forbidden cases:\n  {}",
        l.cases.len(),
        l.cases.join("\n  ")
    );
    l.assert_no_surprises();
    assert!(l.cases.len() >= 25, "only {} cases", l.cases.len());

    // The log from seq 1, read afresh and by the watcher all along.
    let log = read_full_log(addr, &s, "admin").await;
    let mut granted = vec![("admin", "lead")];
    granted.extend(roster);
    l.assert_log(&log, &granted);
    head_tx
        .send(log.last().map_or(0, |(s, _)| *s))
        .expect("the watcher is running");
    let seen = tokio::time::timeout(TIMEOUT * 3, watcher)
        .await
        .expect("the watcher catches up")
        .expect("the watcher saw a gapless log");
    assert_eq!(seen, log, "the watcher saw exactly the stored log");
    drop(relay);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_members_client_id_is_refused_and_the_owners_ops_stay_intact() {
    let s = setup(&[("ana", "creative"), ("ben", "creative")]);
    let relay = s.start().await;
    let (mut a, _) = Member::join(relay.addr, &s, "ana").await;
    let (mut b, _) = Member::join(relay.addr, &s, "ben").await;
    let mut l = Ledger::default();
    let x = a.c.client_id;

    let ops: Vec<Op> = (1..=3)
        .map(|i| a.append("thread", "th-1", json!({ "text": format!("ana {i}") })))
        .collect();
    l.allowed(&mut a, ops.clone()).await;
    let first_seqs: Vec<u64> = l.stored.keys().copied().collect();

    // Ben under Ana's client id: the next seqs, and the seqs Ana used (which
    // must not be answered with Ana's seqs as duplicates).
    let squat = |seq: u64, text: &str| {
        raw_op(
            OpId {
                client: ClientId(x),
                seq,
            },
            "ben",
            "thread",
            "th-1",
            "append",
            append_body(json!({ "text": text })),
        )
    };
    let batch = vec![
        no(
            "another member's client id, next seq",
            "client-id-owned",
            squat(4, "ben as ana"),
        ),
        no(
            "another member's client id, next seq + 1",
            "client-id-owned",
            squat(5, "ben as ana"),
        ),
    ];
    l.check(&mut b, batch).await;
    let batch = (1..=3)
        .map(|seq| {
            no(
                "another member's client id, a seq its owner used",
                "client-id-owned",
                squat(seq, "ben rewrites ana"),
            )
        })
        .collect();
    l.check(&mut b, batch).await;
    let batch = vec![
        no(
            "another member's client id beside an own op",
            "client-id-owned",
            squat(6, "ben as ana"),
        ),
        ok(b.chat("ben as ben")),
    ];
    l.check(&mut b, batch).await;
    l.assert_no_surprises();

    // Ana's next seqs are new ops with new seqs; her resend keeps its seq.
    let ops: Vec<Op> = (4..=5)
        .map(|i| a.append("thread", "th-1", json!({ "text": format!("ana {i}") })))
        .collect();
    let outcomes = submit(&mut a, &ops).await;
    let head_before = *l.stored.keys().last().expect("stored ops");
    for (op, outcome) in ops.iter().zip(&outcomes) {
        match outcome {
            Outcome::Stored(seq) => {
                assert!(*seq > head_before, "{} got an old seq {seq}", op.id);
                l.stored.insert(*seq, op.clone());
            }
            other => panic!("Ana's own {} was refused: {other:?}", op.id),
        }
    }
    let resend = submit(&mut a, &[l.stored[&first_seqs[0]].clone()]).await;
    assert_eq!(
        resend,
        [Outcome::Stored(first_seqs[0])],
        "the owner's resend is a duplicate"
    );

    let log = read_full_log(relay.addr, &s, "ana").await;
    l.assert_log(&log, &[("ana", "creative"), ("ben", "creative")]);
    let under_x: Vec<(u64, &Op)> = log
        .iter()
        .filter(|(_, o)| o.id.client.0 == x)
        .map(|(s, o)| (*s, o))
        .collect();
    assert_eq!(under_x.len(), 5, "Ana's five ops under her client id");
    for (seq, op) in under_x {
        assert_eq!(op.actor, "ana", "seq {seq}");
        let item: Value = rmp_serde::from_slice(&op.body).expect("an item");
        assert_eq!(
            item["text"],
            json!(format!("ana {}", op.id.seq)),
            "seq {seq} holds Ana's body"
        );
    }
    drop(relay);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demoted_lead_is_refused_from_the_next_op_and_its_earlier_ops_stand() {
    let s = setup(&[("lee", "lead"), ("cy", "creative")]);
    let relay = s.start().await;
    let (mut l2, _) = Member::join(relay.addr, &s, "admin").await;
    let (mut l1, _) = Member::join(relay.addr, &s, "lee").await;
    let (mut cy, _) = Member::join(relay.addr, &s, "cy").await;
    let mut l = Ledger::default();

    let ops = vec![cy.set(
        "brief",
        "b-cy",
        json!({"title": "Cy's", "requester": "cy", "created_by": "cy"}),
    )];
    l.allowed(&mut cy, ops).await;
    let early = l1.set("brief", "b-cy", json!({"title": "Edited by a lead"}));
    l.allowed(&mut l1, vec![early.clone()]).await;

    let ops = vec![l2.set(
        "member",
        "lee",
        json!({"roles:lead": false, "roles:creative": true}),
    )];
    l.allowed(&mut l2, ops).await;

    // The same connection, no reconnect: the next op is judged as a creative.
    let batch = vec![
        no(
            "a demoted lead edits a brief it did not create",
            "role-table",
            l1.set("brief", "b-cy", json!({"title": "Still a lead?"})),
        ),
        no(
            "a demoted lead gives itself the role back",
            "roles-are-lead-only",
            l1.set("member", "lee", json!({"roles:lead": true})),
        ),
        ok(l1.set(
            "brief",
            "b-lee",
            json!({"title": "Lee's own", "requester": "lee"}),
        )),
    ];
    l.check(&mut l1, batch).await;
    l.assert_no_surprises();

    let log = read_full_log(relay.addr, &s, "cy").await;
    l.assert_log(
        &log,
        &[("admin", "lead"), ("lee", "lead"), ("cy", "creative")],
    );
    assert!(
        log.iter().any(|(_, o)| o == &early),
        "the op Lee made as a lead stands"
    );
    drop(relay);
}

/// A request whose stages hold no deciding reviewer (none at all, or only
/// comment-only ones) is evaluated as approved the moment it is made, so
/// whoever makes it can apply its subject's effects without anyone deciding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_nobody_decides_approves_nothing() {
    let s = setup(&[("ai", "agent"), ("cora", "creative")]);
    let relay = s.start().await;
    let (mut admin, _) = Member::join(relay.addr, &s, "admin").await;
    let (mut ai, _) = Member::join(relay.addr, &s, "ai").await;
    let (mut cora, _) = Member::join(relay.addr, &s, "cora").await;
    let mut l = Ledger::default();
    let ops = vec![admin.set("brief", "b-lead", json!({"title": "Launch"}))];
    l.allowed(&mut admin, ops).await;
    let ops = vec![cora.set(
        "asset",
        "a-1",
        json!({"title": "Key visual", "status": "wip"}),
    )];
    l.allowed(&mut cora, ops).await;

    let proposal = |by: &str, brief_title: &str| {
        json!({"kind": "brief_update", "payload": {"title": brief_title}, "brief": "b-lead",
               "status": "pending", "created_by": by})
    };
    let request = |subject: Value, stages: Value, by: &str| json!({"title": "ok?", "subject": subject, "stages": stages, "created_by": by});
    // Each attempt: ops that may be stored or refused, then the effect, which
    // must be refused (whichever rule the fix names).
    let attempts: Vec<(&mut Member, Vec<Op>, Op)> = vec![
        // An agent (which may not edit briefs) hijacks a lead's brief.
        {
            let setup_ops = vec![
                ai.set("proposal", "p-1", proposal("ai", "hijacked")),
                ai.set(
                    "approval",
                    "r-1",
                    request(json!({"type": "proposal", "id": "p-1"}), json!([]), "ai"),
                ),
            ];
            let effect = ai.set(
                "brief",
                "b-lead",
                json!({"title": "hijacked", "from_proposal": "p-1"}),
            );
            (&mut ai, setup_ops, effect)
        },
        // The same through a stage whose reviewers only comment.
        {
            let setup_ops = vec![
                cora.set("proposal", "p-2", proposal("cora", "hijacked again")),
                cora.set(
                    "approval",
                    "r-2",
                    request(
                        json!({"type": "proposal", "id": "p-2"}),
                        json!([{"name": "fyi", "reviewers": ["ai"], "mode": "comment_only"}]),
                        "cora",
                    ),
                ),
            ];
            let effect = cora.set(
                "brief",
                "b-lead",
                json!({"title": "hijacked again", "from_proposal": "p-2"}),
            );
            (&mut cora, setup_ops, effect)
        },
    ];
    let mut stored_effects = Vec::new();
    for (m, setup_ops, effect) in attempts {
        submit(m, &setup_ops).await;
        if let [Outcome::Stored(seq)] = submit(m, std::slice::from_ref(&effect)).await[..] {
            stored_effects.push(format!("{} at seq {seq}", describe(&effect)));
        }
    }
    // A creative approves its own asset through a request nobody reviews.
    let ops = vec![cora.set(
        "approval",
        "r-3",
        request(
            json!({"type": "asset_version", "asset": "a-1", "version": 1}),
            json!([]),
            "cora",
        ),
    )];
    submit(&mut cora, &ops).await;
    let effect = cora.set(
        "asset",
        "a-1",
        json!({"status": "approved", "approval": "r-3"}),
    );
    if let [Outcome::Stored(seq)] = submit(&mut cora, std::slice::from_ref(&effect)).await[..] {
        stored_effects.push(format!("{} at seq {seq}", describe(&effect)));
    }
    assert!(
        stored_effects.is_empty(),
        "effects of requests nobody decided were stored:\n{}",
        stored_effects.join("\n")
    );
    drop(relay);
}
