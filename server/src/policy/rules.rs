//! The rules as data: for each entity kind and action, which roles may act
//! and on which entities ([`TABLE`]); the named rules a refusal cites
//! ([`Rule`]); and [`judge`], which applies both to one op against the
//! policy state.

use super::approval::{Decision, StageMode};
use super::state::PolicyState;
use super::{Change, DELETED_FIELD, EntityKind, OpRef, RELAY_ACTOR, RELAY_CLIENT, Role};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// What an op does, as far as the rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A `set` on an entity no accepted op has touched yet.
    Create,
    /// A `set` on an existing entity.
    Edit,
    /// An appended item: comment, message, version, decision, audit entry.
    Append,
    /// A `delete`, or a `set` of the `deleted` field.
    Delete,
}

impl Action {
    pub const ALL: [Action; 4] = [Action::Create, Action::Edit, Action::Append, Action::Delete];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Edit => "edit",
            Action::Append => "append",
            Action::Delete => "delete",
        }
    }
}

/// On which entities a role may act.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Any entity of the kind.
    Any,
    /// Entities it created (the first accepted op), or briefs it requested.
    Own,
    /// Briefs listing it among the assignees; tasks assigned to it.
    Assigned,
    /// Its own member record (profile fields only: roles are a lead's).
    OwnProfile,
    /// Requests whose current stage names it as a reviewer.
    CurrentReviewer,
    /// Items labelled as made by an AI, on entities it created.
    OwnAiLabelled,
}

impl Scope {
    fn label(self) -> &'static str {
        match self {
            Scope::Any => "any",
            Scope::Own => "own",
            Scope::Assigned => "assigned",
            Scope::OwnProfile => "own profile",
            Scope::CurrentReviewer => "if a current reviewer",
            Scope::OwnAiLabelled => "own, AI-labelled",
        }
    }
}

/// One row of the table: who may do `action` to entities of `kind`.
pub struct Grant {
    pub kind: EntityKind,
    pub action: Action,
    pub who: &'static [(Role, Scope)],
}

use Role::{Agent, Creative, Lead, Requester, Reviewer};
use Scope::{Any, Assigned, CurrentReviewer, Own, OwnAiLabelled, OwnProfile};

/// Every role that writes, on any entity of the kind.
const WRITERS: &[(Role, Scope)] = &[
    (Lead, Any),
    (Creative, Any),
    (Reviewer, Any),
    (Requester, Any),
    (Agent, Any),
];

const fn g(kind: EntityKind, action: Action, who: &'static [(Role, Scope)]) -> Grant {
    Grant { kind, action, who }
}

/// Who may do what. `read-only` appears nowhere: it changes nothing. An
/// `agent` may only create proposals, approval requests, chat messages,
/// AI-labelled drafts and audit entries; approval effects (below) are
/// authorised by the approval, not by this table.
pub const TABLE: &[Grant] = &[
    // Hub name, brand, presets and settings: leads.
    g(EntityKind::Hub, Action::Create, &[(Lead, Any)]),
    g(EntityKind::Hub, Action::Edit, &[(Lead, Any)]),
    g(EntityKind::Hub, Action::Delete, &[(Lead, Any)]),
    // Members and roles: leads; everyone else edits their own profile.
    g(EntityKind::Member, Action::Create, &[(Lead, Any)]),
    g(
        EntityKind::Member,
        Action::Edit,
        &[
            (Lead, Any),
            (Creative, OwnProfile),
            (Reviewer, OwnProfile),
            (Requester, OwnProfile),
        ],
    ),
    g(EntityKind::Member, Action::Delete, &[(Lead, Any)]),
    // Briefs: requesters and creatives file them; leads triage everything;
    // a requester edits its own, a creative its own and those assigned to it.
    g(
        EntityKind::Brief,
        Action::Create,
        &[(Lead, Any), (Requester, Any), (Creative, Any)],
    ),
    g(
        EntityKind::Brief,
        Action::Edit,
        &[
            (Lead, Any),
            (Requester, Own),
            (Creative, Own),
            (Creative, Assigned),
        ],
    ),
    g(EntityKind::Brief, Action::Append, &[(Lead, Any)]),
    g(
        EntityKind::Brief,
        Action::Delete,
        &[(Lead, Any), (Requester, Own), (Creative, Own)],
    ),
    // Assets: the shared library of creatives; agents add AI drafts.
    g(
        EntityKind::Asset,
        Action::Create,
        &[(Lead, Any), (Creative, Any), (Agent, Any)],
    ),
    g(
        EntityKind::Asset,
        Action::Edit,
        &[(Lead, Any), (Creative, Any), (Agent, Own)],
    ),
    g(
        EntityKind::Asset,
        Action::Append,
        &[(Lead, Any), (Creative, Any), (Agent, OwnAiLabelled)],
    ),
    g(
        EntityKind::Asset,
        Action::Delete,
        &[(Lead, Any), (Creative, Own)],
    ),
    // Threads: comments and chat, from every member who writes.
    g(EntityKind::Thread, Action::Create, WRITERS),
    g(
        EntityKind::Thread,
        Action::Edit,
        &[
            (Lead, Any),
            (Creative, Own),
            (Reviewer, Own),
            (Requester, Own),
            (Agent, Own),
        ],
    ),
    g(EntityKind::Thread, Action::Append, WRITERS),
    g(EntityKind::Thread, Action::Delete, &[(Lead, Any)]),
    // Proposals: anyone who writes may propose; a proposal is frozen once
    // made (its outcome is written as an approval effect).
    g(EntityKind::Proposal, Action::Create, WRITERS),
    g(EntityKind::Proposal, Action::Edit, &[(Lead, Any)]),
    g(EntityKind::Proposal, Action::Delete, &[(Lead, Any)]),
    // Approval requests: anyone who writes may ask; only a current stage's
    // reviewers decide; stages and subject change only by a lead.
    g(EntityKind::Approval, Action::Create, WRITERS),
    g(
        EntityKind::Approval,
        Action::Edit,
        &[
            (Lead, Any),
            (Creative, Own),
            (Reviewer, Own),
            (Requester, Own),
        ],
    ),
    g(
        EntityKind::Approval,
        Action::Append,
        &[
            (Lead, CurrentReviewer),
            (Creative, CurrentReviewer),
            (Reviewer, CurrentReviewer),
            (Requester, CurrentReviewer),
        ],
    ),
    g(EntityKind::Approval, Action::Delete, &[(Lead, Any)]),
    // Tasks: leads plan them; the assignee moves its own.
    g(EntityKind::Task, Action::Create, &[(Lead, Any)]),
    g(
        EntityKind::Task,
        Action::Edit,
        &[(Lead, Any), (Creative, Assigned)],
    ),
    g(EntityKind::Task, Action::Delete, &[(Lead, Any)]),
    // Connectors to trackers and webhooks, the pusher and its lease: leads
    // (the pusher's own lease and results follow the push rules).
    g(EntityKind::Integration, Action::Create, &[(Lead, Any)]),
    g(EntityKind::Integration, Action::Edit, &[(Lead, Any)]),
    g(EntityKind::Integration, Action::Delete, &[(Lead, Any)]),
    // The outbox: any change that has consequences outside enqueues them;
    // leads retry and drop items.
    g(EntityKind::Delivery, Action::Create, WRITERS),
    g(EntityKind::Delivery, Action::Edit, &[(Lead, Any)]),
    g(EntityKind::Delivery, Action::Delete, &[(Lead, Any)]),
    // Generation workflow templates: leads, like the brand they serve.
    g(EntityKind::Template, Action::Create, &[(Lead, Any)]),
    g(EntityKind::Template, Action::Edit, &[(Lead, Any)]),
    g(EntityKind::Template, Action::Delete, &[(Lead, Any)]),
    // The audit log: appended by every member who acts, never edited.
    g(EntityKind::Audit, Action::Append, WRITERS),
    // The knowledge base: brand guidelines and case studies.
    g(
        EntityKind::Knowledge,
        Action::Create,
        &[(Lead, Any), (Creative, Any), (Reviewer, Any)],
    ),
    g(
        EntityKind::Knowledge,
        Action::Edit,
        &[(Lead, Any), (Creative, Own), (Reviewer, Own)],
    ),
    g(
        EntityKind::Knowledge,
        Action::Append,
        &[(Lead, Any), (Creative, Own), (Reviewer, Own)],
    ),
    g(
        EntityKind::Knowledge,
        Action::Delete,
        &[(Lead, Any), (Creative, Own), (Reviewer, Own)],
    ),
];

/// Fields only a lead may write (outside approval effects), by kind.
pub const LEAD_ONLY_FIELDS: &[(EntityKind, &str, Rule)] = &[
    (EntityKind::Member, "roles:", Rule::RolesAreLeadOnly),
    (EntityKind::Brief, "assignees:", Rule::AssignmentIsLeadOnly),
    (EntityKind::Approval, "stages", Rule::StagesAreLeadOnly),
    (EntityKind::Approval, "subject", Rule::StagesAreLeadOnly),
    (EntityKind::Approval, "choices", Rule::StagesAreLeadOnly),
];

/// Every rule a refusal can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    NotAMember,
    ReadOnly,
    ActorIsTheToken,
    ClientIdOwned,
    RelayOnly,
    Malformed,
    RoleTable,
    RolesAreLeadOnly,
    AssignmentIsLeadOnly,
    OwnershipIsLeadOnly,
    StagesAreLeadOnly,
    RequestsNeedAReviewer,
    AssetApprovalNeedsARequest,
    OnlyCurrentReviewersDecide,
    ApprovalClosed,
    DecisionsAreAppendOnly,
    AuditIsAppendOnly,
    EffectNeedsItsApproval,
    AgentsDraftOnly,
    LeaseIsExclusive,
    PusherHoldsTheLease,
    PickIsAChoice,
}

impl Rule {
    pub const ALL: [Rule; 22] = [
        Rule::NotAMember,
        Rule::ReadOnly,
        Rule::ActorIsTheToken,
        Rule::ClientIdOwned,
        Rule::RelayOnly,
        Rule::Malformed,
        Rule::RoleTable,
        Rule::RolesAreLeadOnly,
        Rule::AssignmentIsLeadOnly,
        Rule::OwnershipIsLeadOnly,
        Rule::StagesAreLeadOnly,
        Rule::RequestsNeedAReviewer,
        Rule::AssetApprovalNeedsARequest,
        Rule::OnlyCurrentReviewersDecide,
        Rule::ApprovalClosed,
        Rule::DecisionsAreAppendOnly,
        Rule::AuditIsAppendOnly,
        Rule::EffectNeedsItsApproval,
        Rule::AgentsDraftOnly,
        Rule::LeaseIsExclusive,
        Rule::PusherHoldsTheLease,
        Rule::PickIsAChoice,
    ];

    /// The rule's name as refusals and the docs spell it.
    pub fn name(self) -> &'static str {
        match self {
            Rule::NotAMember => "not-a-member",
            Rule::ReadOnly => "read-only",
            Rule::ActorIsTheToken => "actor-is-the-token",
            Rule::ClientIdOwned => "client-id-owned",
            Rule::RelayOnly => "relay-only",
            Rule::Malformed => "malformed",
            Rule::RoleTable => "role-table",
            Rule::RolesAreLeadOnly => "roles-are-lead-only",
            Rule::AssignmentIsLeadOnly => "assignment-is-lead-only",
            Rule::OwnershipIsLeadOnly => "ownership-is-lead-only",
            Rule::StagesAreLeadOnly => "stages-are-lead-only",
            Rule::RequestsNeedAReviewer => "requests-need-a-reviewer",
            Rule::AssetApprovalNeedsARequest => "asset-approval-needs-a-request",
            Rule::OnlyCurrentReviewersDecide => "only-current-reviewers-decide",
            Rule::ApprovalClosed => "approval-closed",
            Rule::DecisionsAreAppendOnly => "decisions-are-append-only",
            Rule::AuditIsAppendOnly => "audit-is-append-only",
            Rule::EffectNeedsItsApproval => "effect-needs-its-approval",
            Rule::AgentsDraftOnly => "agents-draft-only",
            Rule::LeaseIsExclusive => "lease-is-exclusive",
            Rule::PusherHoldsTheLease => "pusher-holds-the-lease",
            Rule::PickIsAChoice => "pick-is-a-choice",
        }
    }

    pub fn parse(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.name() == name)
    }

    /// What the rule says, for the docs and `spoke-relay policy`.
    pub fn summary(self) -> &'static str {
        match self {
            Rule::NotAMember => {
                "the actor holds no role in this hub (never granted, removed, or deleted)"
            }
            Rule::ReadOnly => "read-only members change nothing",
            Rule::ActorIsTheToken => "an op's actor is the member whose token submitted it",
            Rule::ClientIdOwned => {
                "a client id belongs to the member that first used it; nobody else may submit ops under it"
            }
            Rule::RelayOnly => {
                "the relay's client id and actor are the relay's alone (role grants from tokens)"
            }
            Rule::Malformed => {
                "an op whose entity kind, change kind or body cannot be read is never stored"
            }
            Rule::RoleTable => {
                "the role table: which roles may create, edit, append to or delete each kind of entity, and on which entities"
            }
            Rule::RolesAreLeadOnly => "only leads change members' roles",
            Rule::AssignmentIsLeadOnly => {
                "only leads assign briefs (or an approved assignment proposal)"
            }
            Rule::OwnershipIsLeadOnly => "only leads change who requested or created a brief",
            Rule::StagesAreLeadOnly => {
                "an approval request's stages and subject are set when it is made; after that only leads change them"
            }
            Rule::RequestsNeedAReviewer => {
                "a request has a deciding stage with a reviewer; a member who is not a lead never reviews a request it made"
            }
            Rule::AssetApprovalNeedsARequest => {
                "an asset becomes approved only through a closed approval request (or a lead)"
            }
            Rule::OnlyCurrentReviewersDecide => {
                "only the reviewers of a request's current stage decide, each for themselves"
            }
            Rule::ApprovalClosed => "a closed request is locked: no more decisions",
            Rule::DecisionsAreAppendOnly => {
                "items appended to a request are decisions in the decision shape"
            }
            Rule::AuditIsAppendOnly => "audit entries are appended, never set or deleted",
            Rule::EffectNeedsItsApproval => {
                "an approval effect (from_proposal / approval link) applies only what its closed request approved, to its own subject"
            }
            Rule::AgentsDraftOnly => "an agent's asset versions must be labelled as made by an AI",
            Rule::LeaseIsExclusive => {
                "one replica of the hub's pusher holds the push lease at a time; a claim waits until the lease ends"
            }
            Rule::PusherHoldsTheLease => {
                "the pusher writes delivery results and tracker state onto tasks only while holding the push lease"
            }
            Rule::PickIsAChoice => {
                "a reviewer picks one of the versions a request offers, and only with an approval; the approved version is the standing pick"
            }
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an op was refused: the rule and a sentence naming who and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub rule: Rule,
    pub message: String,
}

impl Refusal {
    pub fn new(rule: Rule, message: impl Into<String>) -> Refusal {
        Refusal {
            rule,
            message: message.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (rule {})", self.message, self.rule)
    }
}

impl std::error::Error for Refusal {}

/// The action an op takes on its entity, given whether any accepted op
/// has touched the entity before.
pub fn action_of(change: &Change, exists: bool) -> Action {
    match change {
        Change::Set(fields) if fields.contains_key(DELETED_FIELD) => Action::Delete,
        Change::Set(_) if exists => Action::Edit,
        Change::Set(_) => Action::Create,
        Change::Append(_) => Action::Append,
        Change::Delete => Action::Delete,
    }
}

/// Checks one op against the state before it. `from_relay` marks the
/// relay's own ops (role grants), which only the relay may write.
pub fn judge(state: &PolicyState, op: &OpRef<'_>, from_relay: bool) -> Result<(), Refusal> {
    judge_owner(state, op)?;
    if op.id.client == RELAY_CLIENT || op.actor == RELAY_ACTOR {
        judge_relay(op, from_relay)?;
        return judge_first_use(state, op);
    }
    if !state.rules_in_force() {
        // A hub's log from before it had rules: what it says stands.
        return Ok(());
    }
    let roles = state.roles_of(op.actor);
    if roles.is_empty() {
        return Err(Refusal::new(
            Rule::NotAMember,
            format!("@{} holds no role in this hub", op.actor),
        ));
    }
    if roles.iter().all(|r| !r.can_write()) {
        return Err(Refusal::new(
            Rule::ReadOnly,
            format!("@{} is read-only and changes nothing", op.actor),
        ));
    }
    if let Some(verdict) = super::push::judge_push(state, op, &roles) {
        return verdict;
    }
    if let Some(effect) = effect_claim(op) {
        return judge_effect(state, op, effect);
    }
    let entry = state.entry(op.kind, op.entity);
    let action = action_of(op.change, entry.is_some_and(|e| e.creator.is_some()));
    let lead = roles.contains(&Lead);
    // Fields a lead alone writes, checked before the table so the refusal
    // names the precise rule.
    if !lead && let Change::Set(fields) = op.change {
        for (kind, prefix, rule) in LEAD_ONLY_FIELDS {
            if *kind == op.kind && fields.keys().any(|f| f.starts_with(prefix)) {
                let creating_request = op.kind == EntityKind::Approval && action == Action::Create;
                if !creating_request {
                    return Err(Refusal::new(
                        *rule,
                        format!(
                            "@{} may not change {} on {}/{}: {}",
                            op.actor,
                            prefix.trim_end_matches(':'),
                            op.kind,
                            op.entity,
                            rule.summary()
                        ),
                    ));
                }
            }
        }
        if op.kind == EntityKind::Brief
            && action == Action::Edit
            && fields.keys().any(|f| f == "requester" || f == "created_by")
        {
            return Err(Refusal::new(
                Rule::OwnershipIsLeadOnly,
                format!(
                    "@{} may not change who requested brief {}",
                    op.actor, op.entity
                ),
            ));
        }
        if op.kind == EntityKind::Asset && fields.get("status") == Some(&Value::from("approved")) {
            return Err(Refusal::new(
                Rule::AssetApprovalNeedsARequest,
                format!(
                    "@{} may not mark asset {} approved: {}",
                    op.actor,
                    op.entity,
                    Rule::AssetApprovalNeedsARequest.summary()
                ),
            ));
        }
    }
    let allowed = grants_for(op.kind, action)
        .filter(|(role, _)| roles.contains(role))
        .any(|(_, scope)| in_scope(state, op, scope));
    if allowed {
        return check_item(state, op, action);
    }
    if action == Action::Append && op.kind == EntityKind::Approval {
        return Err(reviewer_refusal(state, op));
    }
    if op.kind == EntityKind::Audit {
        return Err(Refusal::new(
            Rule::AuditIsAppendOnly,
            format!(
                "@{} may not {} audit/{}: {}",
                op.actor,
                action.as_str(),
                op.entity,
                Rule::AuditIsAppendOnly.summary()
            ),
        ));
    }
    if action == Action::Append
        && op.kind == EntityKind::Asset
        && roles.contains(&Agent)
        && state.is_creator(op.kind, op.entity, op.actor)
    {
        return Err(Refusal::new(
            Rule::AgentsDraftOnly,
            format!(
                "@{}'s version of asset {} is not labelled as made by an AI",
                op.actor, op.entity
            ),
        ));
    }
    Err(Refusal::new(
        Rule::RoleTable,
        format!(
            "@{} ({}) may not {} {}/{}{}",
            op.actor,
            roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            action.as_str(),
            op.kind,
            op.entity,
            scope_hint(op.kind, action, &roles)
        ),
    ))
}

/// A client id is bound to the first member that used it.
pub fn judge_owner(state: &PolicyState, op: &OpRef<'_>) -> Result<(), Refusal> {
    match state.client_owner(op.id.client.0) {
        Some(owner) if owner != op.actor => Err(Refusal::new(
            Rule::ClientIdOwned,
            format!(
                "client id {} belongs to @{owner}; @{} may not submit op {} under it",
                op.id.client, op.actor, op.id
            ),
        )),
        _ => Ok(()),
    }
}

/// The field of a relay grant that names the token whose first use it
/// records (`token:<token id>`), so every relay sharing the hub's log knows
/// the token was used, whichever relay saw it.
pub const GRANT_TOKEN_FIELD: &str = "token:";

fn judge_relay(op: &OpRef<'_>, from_relay: bool) -> Result<(), Refusal> {
    let grant_shape = op.id.client == RELAY_CLIENT
        && op.actor == RELAY_ACTOR
        && op.kind == EntityKind::Member
        && matches!(op.change, Change::Set(f) if !f.is_empty() && f.keys().all(|k| k.starts_with("roles:") || k.starts_with(GRANT_TOKEN_FIELD)));
    if from_relay && grant_shape {
        Ok(())
    } else {
        Err(Refusal::new(
            Rule::RelayOnly,
            format!(
                "op {} by @{} uses the relay's identity: {}",
                op.id,
                op.actor,
                Rule::RelayOnly.summary()
            ),
        ))
    }
}

/// A token grants its role once: a grant naming a token whose first use is
/// already recorded (through any relay sharing the log) is refused.
fn judge_first_use(state: &PolicyState, op: &OpRef<'_>) -> Result<(), Refusal> {
    match granted_tokens(op).find(|token| state.token_granted(token)) {
        Some(token) => Err(Refusal::new(
            Rule::RelayOnly,
            format!(
                "op {}: token {token} was used already, and a token grants its role once",
                op.id
            ),
        )),
        None => Ok(()),
    }
}

/// The tokens whose first use an op records (`token:{id}` fields of a set).
pub fn granted_tokens<'a>(op: &'a OpRef<'_>) -> impl Iterator<Item = &'a str> {
    let fields = match op.change {
        Change::Set(fields) => Some(fields),
        _ => None,
    };
    fields
        .into_iter()
        .flat_map(|f| f.keys())
        .filter_map(|k| k.strip_prefix(GRANT_TOKEN_FIELD))
}

/// A grant in the log is the relay's when it has the relay's shape; a
/// replica cannot tell who wrote bytes, only that the relay sequenced them.
pub fn is_relay_grant(op: &OpRef<'_>) -> bool {
    judge_relay(op, true).is_ok()
}

fn grants_for(kind: EntityKind, action: Action) -> impl Iterator<Item = (Role, Scope)> {
    TABLE
        .iter()
        .filter(move |g| g.kind == kind && g.action == action)
        .flat_map(|g| g.who.iter().copied())
}

fn in_scope(state: &PolicyState, op: &OpRef<'_>, scope: Scope) -> bool {
    match scope {
        Scope::Any => true,
        Scope::Own => {
            state.is_creator(op.kind, op.entity, op.actor)
                || (op.kind == EntityKind::Brief
                    && state.field_str(op.kind, op.entity, "requester") == Some(op.actor))
        }
        Scope::Assigned => match op.kind {
            EntityKind::Brief => {
                state.field(op.kind, op.entity, &format!("assignees:{}", op.actor))
                    == Some(&Value::Bool(true))
            }
            EntityKind::Task => state.field_str(op.kind, op.entity, "assignee") == Some(op.actor),
            _ => false,
        },
        Scope::OwnProfile => op.kind == EntityKind::Member && op.entity == op.actor,
        Scope::CurrentReviewer => state
            .evaluation(op.entity)
            .is_some_and(|e| e.current_reviewers().contains(&op.actor)),
        Scope::OwnAiLabelled => {
            state.is_creator(op.kind, op.entity, op.actor)
                && matches!(op.change, Change::Append(v) if v["provenance"]["by"] == "ai")
        }
    }
}

/// Checks the shape of what is appended where the rules depend on it, and
/// that a new request has someone to decide it.
fn check_item(state: &PolicyState, op: &OpRef<'_>, action: Action) -> Result<(), Refusal> {
    if op.kind == EntityKind::Approval
        && action == Action::Create
        && let Change::Set(fields) = op.change
    {
        let stages = fields.get("stages").cloned().unwrap_or(Value::Null);
        let stages = state.expanded_stages(&stages, Some(op.actor));
        let decided_by_someone = stages
            .iter()
            .any(|(reviewers, mode)| *mode == StageMode::Decide && !reviewers.is_empty());
        if !decided_by_someone {
            return Err(Refusal::new(
                Rule::RequestsNeedAReviewer,
                format!(
                    "approval {} by @{} has no stage where someone else decides",
                    op.entity, op.actor
                ),
            ));
        }
    }
    if op.kind == EntityKind::Approval && action == Action::Append {
        let Some(entry) = decision_of(op) else {
            return Err(Refusal::new(
                Rule::DecisionsAreAppendOnly,
                format!(
                    "op {} appends something that is not a decision to approval {}",
                    op.id, op.entity
                ),
            ));
        };
        let current = state.evaluation(op.entity).map(|e| e.stage).unwrap_or(0);
        if entry.reviewer != op.actor || entry.stage as usize != current {
            return Err(reviewer_refusal(state, op));
        }
        if let Some(pick) = entry.pick {
            let choices = state.choices(op.entity);
            let approving = matches!(
                entry.decision,
                Some(Decision::Approved | Decision::ApprovedWithChanges)
            );
            if !approving || !choices.contains(&pick) {
                return Err(Refusal::new(
                    Rule::PickIsAChoice,
                    format!(
                        "@{} picks version {pick} of approval {}: {} (choices: {})",
                        op.actor,
                        op.entity,
                        Rule::PickIsAChoice.summary(),
                        choices
                            .iter()
                            .map(u32::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A decision as appended to a request.
#[derive(Debug, Clone, Deserialize)]
pub struct DecisionItem {
    pub stage: u32,
    pub reviewer: String,
    #[serde(default)]
    pub decision: Option<Decision>,
    /// The version an approving reviewer chose, when the request offers
    /// several (`choices`).
    #[serde(default)]
    pub pick: Option<u32>,
}

pub fn decision_of(op: &OpRef<'_>) -> Option<DecisionItem> {
    match op.change {
        Change::Append(v) => serde_json::from_value(v.clone()).ok(),
        _ => None,
    }
}

fn reviewer_refusal(state: &PolicyState, op: &OpRef<'_>) -> Refusal {
    match state.evaluation(op.entity) {
        None => Refusal::new(
            Rule::OnlyCurrentReviewersDecide,
            format!("approval {} does not exist", op.entity),
        ),
        Some(e) if e.status.is_closed() => Refusal::new(
            Rule::ApprovalClosed,
            format!(
                "approval {} is closed ({}); @{} may not decide on it",
                op.entity,
                serde_json::to_value(e.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                op.actor
            ),
        ),
        Some(e) => {
            let reviewers = e.current_reviewers();
            Refusal::new(
                Rule::OnlyCurrentReviewersDecide,
                format!(
                    "@{} is not a reviewer of stage {} of approval {} (reviewers: {})",
                    op.actor,
                    e.stage + 1,
                    op.entity,
                    if reviewers.is_empty() {
                        "none".to_owned()
                    } else {
                        reviewers
                            .iter()
                            .map(|r| format!("@{r}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
            )
        }
    }
}

fn scope_hint(kind: EntityKind, action: Action, roles: &[Role]) -> String {
    let scopes: Vec<&str> = grants_for(kind, action)
        .filter(|(r, _)| roles.contains(r))
        .map(|(_, s)| s.label())
        .collect();
    if scopes.is_empty() {
        String::new()
    } else {
        format!(" (allowed only on: {})", scopes.join(", "))
    }
}

/// What an op claims to be the effect of.
enum Effect<'a> {
    /// A change an approved proposal makes (`from_proposal`).
    OfProposal(&'a str),
    /// A subject's outcome written after its request closed (`approval`).
    OfApproval(&'a str),
}

fn effect_claim<'a>(op: &OpRef<'a>) -> Option<Effect<'a>> {
    let Change::Set(fields) = op.change else {
        return None;
    };
    match op.kind {
        EntityKind::Brief | EntityKind::Task => fields
            .get("from_proposal")
            .and_then(Value::as_str)
            .map(Effect::OfProposal),
        EntityKind::Proposal | EntityKind::Asset => fields
            .get("approval")
            .and_then(Value::as_str)
            .map(Effect::OfApproval),
        _ => None,
    }
}

fn judge_effect(state: &PolicyState, op: &OpRef<'_>, effect: Effect<'_>) -> Result<(), Refusal> {
    let refuse = |why: String| {
        Err(Refusal::new(
            Rule::EffectNeedsItsApproval,
            format!("op {} on {}/{}: {why}", op.id, op.kind, op.entity),
        ))
    };
    let Change::Set(fields) = op.change else {
        return refuse("an effect is a set of fields".into());
    };
    match effect {
        Effect::OfProposal(proposal) => {
            let closed = state.closed_of(EntityKind::Proposal, proposal);
            if !closed.is_some_and(|c| c.status.lets_next_stage_start()) {
                return refuse(format!("proposal {proposal} has not been approved"));
            }
            let brief = state.field_str(EntityKind::Proposal, proposal, "brief");
            let target_ok = match op.kind {
                EntityKind::Brief => brief == Some(op.entity),
                EntityKind::Task => {
                    let prefix = format!("t-{}-", proposal.trim_start_matches("p-"));
                    op.entity.starts_with(&prefix)
                        && fields.get("brief").and_then(Value::as_str) == brief
                }
                _ => false,
            };
            if !target_ok {
                return refuse(format!("proposal {proposal} does not change this entity"));
            }
            if fields.contains_key(DELETED_FIELD) {
                return refuse("an approved proposal never deletes".into());
            }
            Ok(())
        }
        Effect::OfApproval(approval) => {
            let Some(closed) = state.closed_of(EntityKind::Approval, approval) else {
                return refuse(format!("approval {approval} is not closed"));
            };
            if !state.approval_is_about(approval, op.kind, op.entity) {
                return refuse(format!("approval {approval} is about another subject"));
            }
            let allowed = ["status", "approval", "review_feedback", "approved_version"];
            if let Some(other) = fields.keys().find(|k| !allowed.contains(&k.as_str())) {
                return refuse(format!(
                    "an outcome sets status and feedback, not `{other}`"
                ));
            }
            let approved = closed.status.lets_next_stage_start();
            let status = fields.get("status").and_then(Value::as_str);
            let consistent = match (op.kind, status) {
                (_, None) => true,
                (EntityKind::Proposal, Some("applied")) => approved,
                (EntityKind::Proposal, Some("rejected")) => !approved,
                (EntityKind::Asset, Some("approved")) => approved,
                (EntityKind::Asset, Some("wip")) => !approved,
                _ => false,
            };
            if !consistent {
                return refuse(format!(
                    "status {} does not follow from approval {approval}'s outcome",
                    status.unwrap_or_default()
                ));
            }
            if let Some(version) = fields.get("approved_version").filter(|v| !v.is_null()) {
                let chosen = state.approved_version(approval);
                if !approved || version.as_u64() != chosen.map(u64::from) {
                    return refuse(format!(
                        "approved_version {version} is not what approval {approval} chose ({})",
                        chosen
                            .map(|c| c.to_string())
                            .unwrap_or_else(|| "none".into())
                    ));
                }
            }
            Ok(())
        }
    }
}

/// The role table as Markdown: one row per kind and action.
pub fn table_markdown() -> String {
    let mut out = String::from(
        "| entity | action | lead | creative | reviewer | requester | agent | read-only |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for kind in EntityKind::ALL {
        for action in Action::ALL {
            let cells: Vec<String> = Role::ALL
                .iter()
                .map(|role| {
                    let scopes: Vec<&str> = grants_for(kind, action)
                        .filter(|(r, _)| r == role)
                        .map(|(_, s)| s.label())
                        .collect();
                    if scopes.is_empty() {
                        "-".to_owned()
                    } else {
                        scopes.join(", ")
                    }
                })
                .collect();
            if cells.iter().all(|c| c == "-") {
                continue;
            }
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                kind,
                action.as_str(),
                cells.join(" | ")
            ));
        }
    }
    out.push_str(
        "\nNamed rules (a refusal cites one):\n\n| rule | what it says |\n| --- | --- |\n",
    );
    for rule in Rule::ALL {
        out.push_str(&format!("| `{}` | {} |\n", rule.name(), rule.summary()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table between the `policy-table` markers of a document.
    fn published(path: &str) -> String {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let start = "<!-- policy-table -->\n";
        let end = "<!-- /policy-table -->";
        match (text.find(start), text.find(end)) {
            (Some(a), Some(b)) if a + start.len() <= b => text[a + start.len()..b].to_owned(),
            _ => String::new(),
        }
    }

    #[test]
    fn the_published_tables_are_the_rules_in_force() {
        let table = table_markdown();
        for doc in ["PROTOCOL.md", "../README.md"] {
            let path = format!("{}/{doc}", env!("CARGO_MANIFEST_DIR"));
            assert_eq!(
                published(&path),
                table,
                "{doc} must publish the policy table as `spoke-relay policy` prints it"
            );
        }
    }

    #[test]
    fn every_rule_has_a_distinct_name_that_parses_back() {
        let names: std::collections::BTreeSet<&str> = Rule::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(names.len(), Rule::ALL.len());
        for rule in Rule::ALL {
            assert_eq!(Rule::parse(rule.name()), Some(rule));
        }
    }

    #[test]
    fn read_only_and_agents_appear_only_where_intended() {
        for grant in TABLE {
            assert!(grant.who.iter().all(|(r, _)| *r != Role::ReadOnly));
            for (role, _) in grant.who {
                if *role == Role::Agent {
                    assert!(
                        matches!(
                            grant.kind,
                            EntityKind::Proposal
                                | EntityKind::Approval
                                | EntityKind::Thread
                                | EntityKind::Asset
                                | EntityKind::Audit
                                | EntityKind::Delivery
                        ),
                        "agents only propose, ask, chat, draft and record: {:?}",
                        grant.kind
                    );
                }
            }
        }
    }
}
