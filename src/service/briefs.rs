//! Brief services: intake, triage (of one brief, or a batch with the ops
//! that undo it) and the completeness check.

use super::Hub;
use crate::model::brief::{
    Brief, BriefField, BriefStatus, Deliverable, Due, Priority, Question, field_writes,
    normalize_tag,
};
use crate::model::ids::new_entity_id;
use crate::model::input::InputError;
use crate::model::member::{Member, Role};
use crate::model::{Change, EntityKind, EntityRecord, EntityRef};
use anyhow::{Context, Result};
use jiff::Timestamp;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A brief as submitted; text fields are validated and parsed here.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewBrief {
    pub title: String,
    pub objective: Option<String>,
    pub audience: Option<String>,
    pub key_message: Option<String>,
    pub requester: Option<String>,
    pub due: Option<String>,
    pub priority: Option<String>,
    pub deliverables: Vec<String>,
    pub tags: Vec<String>,
    pub brand: Option<String>,
    pub budget: Option<String>,
    pub status: Option<String>,
}

/// Which briefs to list.
#[derive(Debug, Clone, Default)]
pub struct BriefFilter {
    pub status: Option<BriefStatus>,
    pub priority: Option<Priority>,
    pub assignee: Option<String>,
    pub tag: Option<String>,
}

impl BriefFilter {
    pub fn matches(&self, b: &Brief) -> bool {
        self.status.is_none_or(|s| b.status == s)
            && self.priority.is_none_or(|p| b.priority == p)
            && self
                .assignee
                .as_ref()
                .is_none_or(|a| b.assignees.contains(a))
            && self.tag.as_ref().is_none_or(|t| b.tags.contains(t))
    }
}

/// What a batch edit of briefs did. A brief that already had the asked-for
/// values is in neither list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchOutcome {
    /// Ids of the briefs that changed, in the order they were asked for.
    pub done: Vec<String>,
    /// Ops that put every changed field back as it was, for [`Hub::apply_undo`].
    pub undo: Vec<(EntityRef, Change)>,
    /// Briefs left as they were, each with the message the single-brief call
    /// (and so the CLI) gives for it.
    pub refused: Vec<(String, String)>,
}

/// Field writes for one brief, keyed by stored field name.
type Writes = BTreeMap<String, Value>;

/// One brief's change and the writes that restore what it overwrites.
struct Planned {
    id: String,
    forward: Writes,
    inverse: Writes,
}

impl NewBrief {
    /// Checks one answer of the new-brief form in the writer's `zone`,
    /// exactly as `spoke brief set FIELD=TEXT` would read it.
    pub fn check_answer(field: BriefField, text: &str, zone: &str) -> Result<(), InputError> {
        field_writes(None, field, text, zone).map(|_| ())
    }

    /// A brief from the new-brief form's answers; blank answers stay open
    /// questions. Lists are comma-separated, as `spoke brief set` takes them;
    /// [`Hub::add_brief`] validates the rest.
    pub fn from_answers(answers: &[(BriefField, String)]) -> Result<NewBrief, InputError> {
        let mut new = NewBrief::default();
        for (field, text) in answers {
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            let one = Some(text.to_owned());
            let list = |separators: &[char]| -> Vec<String> {
                text.split(separators)
                    .map(|s| s.trim().trim_start_matches('+'))
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            };
            match field {
                BriefField::Title => new.title = text.to_owned(),
                BriefField::Requester => new.requester = one,
                BriefField::Objective => new.objective = one,
                BriefField::Audience => new.audience = one,
                BriefField::KeyMessage => new.key_message = one,
                BriefField::Brand => new.brand = one,
                BriefField::Budget => new.budget = one,
                BriefField::Due => new.due = one,
                BriefField::Priority => new.priority = one,
                BriefField::Deliverables => new.deliverables = list(&[',']),
                BriefField::Tags => new.tags = list(&[',', ' ']),
                BriefField::Mandatories
                | BriefField::References
                | BriefField::SuccessMetric
                | BriefField::SnoozeUntil => {
                    return Err(InputError::new(format!(
                        "{0} is set once the brief exists: spoke brief set ID {0}=...",
                        field.name()
                    )));
                }
            }
        }
        Ok(new)
    }
}

const BRIEF_PREFIX: &str = "b";

impl Hub {
    /// Adds a brief and returns it. New briefs start as `draft` unless a
    /// status is given (which must be reachable from draft, or `intake`).
    pub fn add_brief(&mut self, new: NewBrief) -> Result<Brief> {
        let title = new.title.trim();
        if title.is_empty() {
            return Err(InputError::new("a brief needs a title: --title \"Spring launch\"").into());
        }
        let zone = self.zone();
        let me = self.actor()?.to_owned();
        let status = match &new.status {
            Some(s) => {
                let s = BriefStatus::parse(s)?;
                BriefStatus::Draft.check_transition(s)?;
                s
            }
            None => BriefStatus::Draft,
        };
        let mut fields: BTreeMap<String, Value> = BTreeMap::new();
        fields.insert("title".into(), json!(title));
        fields.insert("status".into(), json!(status));
        fields.insert("created_by".into(), json!(me));
        fields.insert(
            "requester".into(),
            json!(new.requester.clone().unwrap_or_else(|| me.clone())),
        );
        let priority = match &new.priority {
            Some(p) => Priority::parse(p)?,
            None => Priority::default(),
        };
        fields.insert("priority".into(), json!(priority));
        for (name, value) in [
            ("objective", &new.objective),
            ("audience", &new.audience),
            ("key_message", &new.key_message),
            ("brand", &new.brand),
            ("budget", &new.budget),
        ] {
            if let Some(v) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                fields.insert(name.into(), json!(v));
            }
        }
        if let Some(due) = &new.due {
            fields.insert("due".into(), json!(Due::parse(due, &zone)?));
        }
        if !new.deliverables.is_empty() {
            let parsed = new
                .deliverables
                .iter()
                .map(|d| Deliverable::parse(d))
                .collect::<Result<Vec<_>, _>>()?;
            fields.insert("deliverables".into(), json!(parsed));
        }
        for tag in &new.tags {
            fields.insert(format!("tags:{}", normalize_tag(tag)?), json!(true));
        }
        let id = new_entity_id(BRIEF_PREFIX);
        self.commit(vec![(
            EntityRef::new(EntityKind::Brief, id.clone()),
            Change::Set(fields),
        )])?;
        self.brief(&id)
    }

    /// Adds a brief as [`Hub::add_brief`] does, with the op that undoes it
    /// (a delete).
    pub fn add_brief_with_undo(
        &mut self,
        new: NewBrief,
    ) -> Result<(Brief, Vec<(EntityRef, Change)>)> {
        let brief = self.add_brief(new)?;
        let undo = vec![(
            EntityRef::new(EntityKind::Brief, brief.id.clone()),
            Change::Delete,
        )];
        Ok((brief, undo))
    }

    /// One brief by id or unique id prefix.
    pub fn brief(&self, typed_id: &str) -> Result<Brief> {
        self.brief_and_record(typed_id).map(|(brief, _)| brief)
    }

    /// A brief with the record it was read from, whose raw values undo
    /// ops restore.
    fn brief_and_record(&self, typed_id: &str) -> Result<(Brief, EntityRecord)> {
        let id = self.resolve_id(EntityKind::Brief, typed_id, BRIEF_PREFIX)?;
        let rec = self
            .replica
            .record(&EntityRef::new(EntityKind::Brief, id.clone()))?
            .unwrap_or_default();
        let brief = Brief::from_record(&id, &rec);
        if brief.deleted {
            return Err(InputError::new(format!("brief {id} was deleted")).into());
        }
        Ok((brief, rec))
    }

    /// Briefs matching `filter`, most urgent first: priority, then due date
    /// (undated last), then oldest first.
    pub fn briefs(&self, filter: &BriefFilter) -> Result<Vec<Brief>> {
        let mut out: Vec<Brief> = self
            .replica
            .records(EntityKind::Brief)?
            .iter()
            .map(|(id, rec)| Brief::from_record(id, rec))
            .filter(|b| !b.deleted && filter.matches(b))
            .collect();
        out.sort_by(|a, b| {
            a.priority
                .cmp(&b.priority)
                .then_with(|| match (&a.due, &b.due) {
                    (Some(x), Some(y)) => x.at.cmp(&y.at),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => std::cmp::Ordering::Equal,
                })
                .then_with(|| a.created_at.cmp(&b.created_at))
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(out)
    }

    /// Sets fields from `(field, text)` pairs, all in one op.
    pub fn set_brief_fields(
        &mut self,
        typed_id: &str,
        pairs: &[(String, String)],
    ) -> Result<Brief> {
        let zone = self.zone();
        self.edit_brief(typed_id, |_, brief| {
            if pairs.is_empty() {
                return Err(InputError::new(
                    "nothing to set: give FIELD=VALUE pairs, e.g. audience=\"Designers in EMEA\"",
                )
                .into());
            }
            let mut fields = Writes::new();
            for (name, text) in pairs {
                let field = BriefField::parse(name)?;
                fields.extend(field_writes(Some(brief), field, text, &zone)?);
            }
            Ok(fields)
        })
    }

    /// Moves a brief to a new status if the lifecycle allows it.
    pub fn set_brief_status(&mut self, typed_id: &str, status: &str) -> Result<Brief> {
        self.move_brief(typed_id, status, false)
    }

    /// Moves a brief through the lifecycle. A brief with open intake
    /// questions stays in intake: moving it to `ready` needs `force`, and
    /// only a lead may force it.
    pub fn move_brief(&mut self, typed_id: &str, status: &str, force: bool) -> Result<Brief> {
        self.edit_brief(typed_id, |hub, brief| {
            let to = BriefStatus::parse(status)?;
            hub.status_writes(brief, to, force)
        })
    }

    /// Moves briefs through the lifecycle under the rules of
    /// [`Hub::move_brief`], one commit for all that may move.
    pub fn move_briefs(
        &mut self,
        ids: &[String],
        to: BriefStatus,
        force: bool,
    ) -> Result<BatchOutcome> {
        self.edit_briefs(ids, |hub, brief| hub.status_writes(brief, to, force))
    }

    /// Required fields still open that keep `brief` from moving to `to`
    /// unless a lead forces it; empty when the move needs no force.
    pub fn open_questions_for_move(brief: &Brief, to: BriefStatus) -> Vec<Question> {
        if to == BriefStatus::Ready
            && matches!(brief.status, BriefStatus::Draft | BriefStatus::Intake)
        {
            brief.missing_fields()
        } else {
            Vec::new()
        }
    }

    /// Whether `member` may force a brief past its open questions.
    pub fn may_force_past_questions(member: Option<&Member>) -> bool {
        member.is_some_and(|m| m.has_role(Role::Lead))
    }

    /// The status write for one brief, or why the move is not allowed.
    fn status_writes(&self, brief: &Brief, to: BriefStatus, force: bool) -> Result<Writes> {
        brief
            .status
            .check_transition(to)
            .with_context(|| format!("brief {}", brief.id))?;
        let open = Hub::open_questions_for_move(brief, to);
        if !open.is_empty() {
            let fields: Vec<&str> = open.iter().map(|q| q.field.as_str()).collect();
            if !force {
                return Err(InputError::new(format!(
                    "brief {} still has open questions ({}): answer them with `spoke brief set`, \
                     or as a lead move it on with --force",
                    brief.id,
                    fields.join(", ")
                ))
                .into());
            }
            if !Hub::may_force_past_questions(self.me()?.as_ref()) {
                return Err(InputError::new(format!(
                    "only a lead can move brief {} to ready with open questions ({})",
                    brief.id,
                    fields.join(", ")
                ))
                .into());
            }
        }
        if brief.status == to {
            return Ok(Writes::new());
        }
        Ok(Writes::from([("status".to_owned(), json!(to))]))
    }

    /// Sets the priority of several briefs in one commit.
    pub fn set_briefs_priority(
        &mut self,
        ids: &[String],
        priority: Priority,
    ) -> Result<BatchOutcome> {
        self.edit_briefs(ids, |_, brief| {
            if brief.priority == priority {
                return Ok(Writes::new());
            }
            Ok(Writes::from([("priority".to_owned(), json!(priority))]))
        })
    }

    /// Adds (or with `remove`, takes away) an assignee.
    pub fn assign_brief(&mut self, typed_id: &str, handle: &str, remove: bool) -> Result<Brief> {
        self.edit_brief(typed_id, |hub, brief| {
            let handle = hub.assignee(handle, remove)?;
            Ok(assign_writes(brief, &handle, remove))
        })
    }

    /// Adds (or with `remove`, takes away) an assignee on several briefs in
    /// one commit.
    pub fn assign_briefs(
        &mut self,
        ids: &[String],
        handle: &str,
        remove: bool,
    ) -> Result<BatchOutcome> {
        let handle = self.assignee(handle, remove)?;
        self.edit_briefs(ids, |_, brief| Ok(assign_writes(brief, &handle, remove)))
    }

    /// The handle to assign, checked to be a member when adding.
    fn assignee(&self, handle: &str, remove: bool) -> Result<String> {
        let handle = handle.trim().trim_start_matches('@');
        if !remove && self.member(handle)?.is_none() {
            let known: Vec<String> = self.members()?.into_iter().map(|m| m.handle).collect();
            return Err(InputError::new(format!(
                "no member `{handle}` in this hub (members: {}); add one with `spoke member add`",
                known.join(", ")
            ))
            .into());
        }
        Ok(handle.to_owned())
    }

    /// Adds and removes tags on several briefs in one commit.
    pub fn tag_briefs(
        &mut self,
        ids: &[String],
        add: &[String],
        remove: &[String],
    ) -> Result<BatchOutcome> {
        let normalize = |tags: &[String]| -> Result<Vec<String>, InputError> {
            tags.iter().map(|t| normalize_tag(t)).collect()
        };
        let (add, remove) = (normalize(add)?, normalize(remove)?);
        if add.is_empty() && remove.is_empty() {
            return Err(InputError::new("no tags given: +tag adds one, -tag removes one").into());
        }
        self.edit_briefs(ids, |_, brief| {
            let mut writes = Writes::new();
            for tag in remove.iter().filter(|t| brief.tags.contains(t)) {
                writes.insert(format!("tags:{tag}"), json!(false));
            }
            for tag in add.iter().filter(|t| !brief.tags.contains(t)) {
                writes.insert(format!("tags:{tag}"), json!(true));
            }
            Ok(writes)
        })
    }

    /// Snoozes several briefs until a time (`None` wakes them), in one commit.
    pub fn snooze_briefs(
        &mut self,
        ids: &[String],
        until: Option<Timestamp>,
    ) -> Result<BatchOutcome> {
        self.edit_briefs(ids, |_, brief| {
            if brief.snooze_until == until {
                return Ok(Writes::new());
            }
            Ok(Writes::from([("snooze_until".to_owned(), json!(until))]))
        })
    }

    /// Commits the undo ops a brief edit returned. Only brief fields and
    /// deletes are accepted: undo never appends.
    pub fn apply_undo(&mut self, undo: Vec<(EntityRef, Change)>) -> Result<()> {
        if let Some((entity, _)) = undo
            .iter()
            .find(|(e, c)| e.kind != EntityKind::Brief || matches!(c, Change::Append(_)))
        {
            return Err(
                InputError::new(format!("undo restores brief fields only, not {entity}")).into(),
            );
        }
        if !undo.is_empty() {
            self.commit(undo)?;
        }
        Ok(())
    }

    /// Plans one edit per brief and commits them together. A brief the plan
    /// refuses (or that cannot be read) is reported and the rest go ahead.
    fn edit_briefs(
        &mut self,
        ids: &[String],
        mut plan: impl FnMut(&Hub, &Brief) -> Result<Writes>,
    ) -> Result<BatchOutcome> {
        let mut planned = Vec::new();
        let mut refused = Vec::new();
        for typed_id in ids {
            match self.plan_edit(typed_id, &mut plan) {
                Ok(p) => planned.push(p),
                Err(e) => refused.push((typed_id.clone(), format!("{e:#}"))),
            }
        }
        self.commit_planned(planned, refused)
    }

    /// One brief's edit, failing with the plan's own error.
    fn edit_brief(
        &mut self,
        typed_id: &str,
        mut plan: impl FnMut(&Hub, &Brief) -> Result<Writes>,
    ) -> Result<Brief> {
        let planned = self.plan_edit(typed_id, &mut plan)?;
        let id = planned.id.clone();
        self.commit_planned(vec![planned], Vec::new())?;
        self.brief(&id)
    }

    /// Runs `plan` on one brief and pairs its writes with the stored values
    /// they replace. Plans leave out writes that would change nothing; a
    /// write of the current value is kept, as it still wins over a concurrent
    /// edit not yet seen here.
    fn plan_edit(
        &self,
        typed_id: &str,
        plan: &mut impl FnMut(&Hub, &Brief) -> Result<Writes>,
    ) -> Result<Planned> {
        let (brief, rec) = self.brief_and_record(typed_id)?;
        let forward = plan(self, &brief)?;
        let inverse = forward
            .keys()
            .map(|name| (name.clone(), rec.get(name).cloned().unwrap_or(Value::Null)))
            .collect();
        Ok(Planned {
            id: brief.id,
            forward,
            inverse,
        })
    }

    fn commit_planned(
        &mut self,
        planned: Vec<Planned>,
        refused: Vec<(String, String)>,
    ) -> Result<BatchOutcome> {
        let mut out = BatchOutcome {
            refused,
            ..BatchOutcome::default()
        };
        let mut seen = std::collections::BTreeSet::new();
        let mut forward = Vec::new();
        for p in planned {
            // The same brief asked for twice (an id and its prefix) changes once.
            if p.forward.is_empty() || !seen.insert(p.id.clone()) {
                continue;
            }
            let entity = EntityRef::new(EntityKind::Brief, p.id.clone());
            forward.push((entity.clone(), Change::Set(p.forward)));
            out.undo.push((entity, Change::Set(p.inverse)));
            out.done.push(p.id);
        }
        if !forward.is_empty() {
            self.commit(forward)?;
        }
        Ok(out)
    }

    /// Clarifying questions for the brief's missing required fields.
    pub fn check_brief(&self, typed_id: &str) -> Result<(Brief, Vec<Question>)> {
        let brief = self.brief(typed_id)?;
        let questions = brief.missing_fields();
        Ok((brief, questions))
    }
}

/// The assignee write for one brief; nothing when it already holds.
fn assign_writes(brief: &Brief, handle: &str, remove: bool) -> Writes {
    let has = brief.assignees.iter().any(|a| a == handle);
    if has != remove {
        return Writes::new();
    }
    Writes::from([(format!("assignees:{handle}"), json!(!remove))])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{NewHub, NewMember};

    /// ana (a lead) with kenji (a creative) assigned to one complete and one
    /// incomplete brief in intake; the hub then acts as kenji.
    fn as_kenji(dir: &std::path::Path) -> (Hub, String, String) {
        let mut hub = Hub::init(
            dir,
            NewHub {
                name: "Test",
                handle: "ana",
                tz: "Europe/Lisbon",
                display_name: None,
            },
        )
        .expect("init");
        let mut kenji = NewMember::new("kenji", "Asia/Tokyo");
        kenji.roles = vec![Role::Creative];
        hub.add_member(kenji).expect("kenji");
        let complete = hub
            .add_brief(NewBrief {
                title: "Launch reel".into(),
                objective: Some("Drive trials".into()),
                audience: Some("Designers".into()),
                key_message: Some("One hub".into()),
                due: Some("2027-03-01T17:00".into()),
                deliverables: vec!["instagram-reel:1080x1920".into()],
                status: Some("intake".into()),
                ..NewBrief::default()
            })
            .expect("complete")
            .id;
        let incomplete = hub
            .add_brief(NewBrief {
                title: "Holiday header".into(),
                status: Some("intake".into()),
                ..NewBrief::default()
            })
            .expect("incomplete")
            .id;
        let both = [complete.clone(), incomplete.clone()];
        hub.assign_briefs(&both, "kenji", false).expect("assign");
        hub.meta = hub
            .replica
            .update_meta(|m| m.me = Some("kenji".into()))
            .expect("act as kenji");
        (hub, complete, incomplete)
    }

    #[test]
    fn a_batch_move_refuses_a_brief_with_the_single_moves_message_and_moves_the_rest_in_one_op() {
        let dir = tempfile::tempdir().expect("tmp");
        let (mut hub, complete, incomplete) = as_kenji(dir.path());
        let alone = hub
            .move_brief(&incomplete, "ready", false)
            .expect_err("open questions");
        let forced = hub
            .move_brief(&incomplete, "ready", true)
            .expect_err("kenji is no lead");
        let before = hub.replica.pending_count().expect("pending");
        let ids = [complete.clone(), incomplete.clone()];
        let outcome = hub
            .move_briefs(&ids, BriefStatus::Ready, false)
            .expect("batch");
        assert_eq!(outcome.done, vec![complete.clone()]);
        assert_eq!(
            outcome.refused,
            [(incomplete.clone(), format!("{alone:#}"))]
        );
        assert_eq!(hub.replica.pending_count().expect("pending"), before + 1);
        let outcome = hub
            .move_briefs(std::slice::from_ref(&incomplete), BriefStatus::Ready, true)
            .expect("batch");
        assert_eq!(
            outcome.refused,
            [(incomplete.clone(), format!("{forced:#}"))]
        );
        assert!(format!("{forced:#}").starts_with("only a lead can move"));
        let moved = hub
            .move_briefs(
                std::slice::from_ref(&complete),
                BriefStatus::InProgress,
                false,
            )
            .expect("move");
        hub.apply_undo(moved.undo).expect("undo");
        assert_eq!(
            hub.brief(&complete).expect("brief").status,
            BriefStatus::Ready
        );
    }

    #[test]
    fn undo_restores_tags_snooze_and_priority_as_they_were() {
        let dir = tempfile::tempdir().expect("tmp");
        let (mut hub, complete, incomplete) = as_kenji(dir.path());
        let ids = [complete.clone(), incomplete.clone()];
        let tagged = hub
            .tag_briefs(std::slice::from_ref(&complete), &["hero".into()], &[])
            .expect("tag");
        let record = |hub: &Hub, id: &str| hub.brief_and_record(id).expect("brief").0;
        let before: Vec<Brief> = ids.iter().map(|id| record(&hub, id)).collect();
        let mut undo = Vec::new();
        let until = Due::parse("2027-01-04", "Asia/Tokyo").expect("date").at;
        let outcomes = [
            hub.tag_briefs(&ids, &["q4".into()], &["hero".into()]),
            hub.snooze_briefs(&ids, Some(until)),
            hub.set_briefs_priority(&ids, Priority::P0),
        ];
        for outcome in outcomes {
            let outcome = outcome.expect("edit");
            assert_eq!(outcome.done.len(), 2, "{outcome:?}");
            undo.push(outcome.undo);
        }
        assert_eq!(record(&hub, &complete).tags, ["q4"]);
        for changes in undo.into_iter().rev() {
            hub.apply_undo(changes).expect("undo");
        }
        let after: Vec<Brief> = ids.iter().map(|id| record(&hub, id)).collect();
        let fields = |b: &Brief| (b.tags.clone(), b.snooze_until, b.priority);
        assert_eq!(
            after.iter().map(fields).collect::<Vec<_>>(),
            before.iter().map(fields).collect::<Vec<_>>()
        );
        assert_eq!(tagged.done, [complete]);
        let nothing = hub
            .set_briefs_priority(&ids, Priority::P2)
            .expect("already p2");
        assert!(nothing.done.is_empty() && nothing.undo.is_empty());
        let appended = vec![(
            EntityRef::new(EntityKind::Thread, "brief:x"),
            Change::Append(json!({"body": "x"})),
        )];
        assert!(hub.apply_undo(appended).is_err(), "undo never appends");
    }
}
