//! Brief services: intake, triage and the completeness check.

use super::{Hub, set};
use crate::model::brief::{
    Brief, BriefField, BriefStatus, Deliverable, Due, Priority, Question, field_writes,
    normalize_tag,
};
use crate::model::ids::new_entity_id;
use crate::model::input::InputError;
use crate::model::{Change, EntityKind, EntityRef};
use anyhow::{Context, Result};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A brief as submitted; text fields are validated and parsed here.
#[derive(Debug, Clone, Default)]
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

    /// One brief by id or unique id prefix.
    pub fn brief(&self, typed_id: &str) -> Result<Brief> {
        let id = self.resolve_id(EntityKind::Brief, typed_id, BRIEF_PREFIX)?;
        let rec = self
            .replica
            .record(&EntityRef::new(EntityKind::Brief, id.clone()))?
            .unwrap_or_default();
        let brief = Brief::from_record(&id, &rec);
        if brief.deleted {
            return Err(InputError::new(format!("brief {id} was deleted")).into());
        }
        Ok(brief)
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
        let brief = self.brief(typed_id)?;
        if pairs.is_empty() {
            return Err(InputError::new(
                "nothing to set: give FIELD=VALUE pairs, e.g. audience=\"Designers in EMEA\"",
            )
            .into());
        }
        let zone = self.zone();
        let mut fields = BTreeMap::new();
        for (name, text) in pairs {
            let field = BriefField::parse(name)?;
            for (k, v) in field_writes(Some(&brief), field, text, &zone)? {
                fields.insert(k, v);
            }
        }
        self.commit(vec![(
            EntityRef::new(EntityKind::Brief, brief.id.clone()),
            Change::Set(fields),
        )])?;
        self.brief(&brief.id)
    }

    /// Moves a brief to a new status if the lifecycle allows it.
    pub fn set_brief_status(&mut self, typed_id: &str, status: &str) -> Result<Brief> {
        self.move_brief(typed_id, status, false)
    }

    /// Moves a brief through the lifecycle. A brief with open intake
    /// questions stays in intake: moving it to `ready` needs `force`, and
    /// only a lead may force it.
    pub fn move_brief(&mut self, typed_id: &str, status: &str, force: bool) -> Result<Brief> {
        let brief = self.brief(typed_id)?;
        let to = BriefStatus::parse(status)?;
        brief
            .status
            .check_transition(to)
            .with_context(|| format!("brief {}", brief.id))?;
        let missing = brief.missing_fields();
        if to == BriefStatus::Ready
            && matches!(brief.status, BriefStatus::Draft | BriefStatus::Intake)
            && !missing.is_empty()
        {
            let fields: Vec<&str> = missing.iter().map(|q| q.field.as_str()).collect();
            if !force {
                return Err(InputError::new(format!(
                    "brief {} still has open questions ({}): answer them with `spoke brief set`, \
                     or as a lead move it on with --force",
                    brief.id,
                    fields.join(", ")
                ))
                .into());
            }
            let lead = self
                .me()?
                .is_some_and(|m| m.has_role(crate::model::Role::Lead));
            if !lead {
                return Err(InputError::new(format!(
                    "only a lead can move brief {} to ready with open questions ({})",
                    brief.id,
                    fields.join(", ")
                ))
                .into());
            }
        }
        if brief.status != to {
            self.commit(vec![(
                EntityRef::new(EntityKind::Brief, brief.id.clone()),
                set([("status", json!(to))]),
            )])?;
        }
        self.brief(&brief.id)
    }

    /// Adds (or with `remove`, takes away) an assignee.
    pub fn assign_brief(&mut self, typed_id: &str, handle: &str, remove: bool) -> Result<Brief> {
        let brief = self.brief(typed_id)?;
        let handle = handle.trim().trim_start_matches('@');
        if !remove && self.member(handle)?.is_none() {
            let known: Vec<String> = self.members()?.into_iter().map(|m| m.handle).collect();
            return Err(InputError::new(format!(
                "no member `{handle}` in this hub (members: {}); add one with `spoke member add`",
                known.join(", ")
            ))
            .into());
        }
        self.commit(vec![(
            EntityRef::new(EntityKind::Brief, brief.id.clone()),
            Change::Set(BTreeMap::from([(
                format!("assignees:{handle}"),
                json!(!remove),
            )])),
        )])?;
        self.brief(&brief.id)
    }

    /// Clarifying questions for the brief's missing required fields.
    pub fn check_brief(&self, typed_id: &str) -> Result<(Brief, Vec<Question>)> {
        let brief = self.brief(typed_id)?;
        let questions = brief.missing_fields();
        Ok((brief, questions))
    }
}
