//! Briefs: what a requester asks the team for, its lifecycle and the
//! completeness check that turns gaps into clarifying questions.

use super::input::{InputError, parse_due};
use super::record::EntityRecord;
use jiff::{Timestamp, ZonedDateTime};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BriefStatus {
    Draft,
    Intake,
    Ready,
    InProgress,
    InReview,
    Approved,
    Delivered,
    OnHold,
    Cancelled,
}

use BriefStatus::*;

impl BriefStatus {
    pub const ALL: [BriefStatus; 9] = [
        Draft, Intake, Ready, InProgress, InReview, Approved, Delivered, OnHold, Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Draft => "draft",
            Intake => "intake",
            Ready => "ready",
            InProgress => "in_progress",
            InReview => "in_review",
            Approved => "approved",
            Delivered => "delivered",
            OnHold => "on_hold",
            Cancelled => "cancelled",
        }
    }

    /// Accepts `in_progress`, `in-progress` and `inprogress`, any case.
    pub fn parse(text: &str) -> Result<BriefStatus, InputError> {
        let norm = text.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        BriefStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == norm || s.as_str().replace('_', "") == norm)
            .ok_or_else(|| {
                InputError::new(format!(
                    "unknown status `{text}`: use one of {}",
                    names(&BriefStatus::ALL)
                ))
            })
    }

    /// The states a brief may move to from this one.
    pub fn next_states(self) -> &'static [BriefStatus] {
        match self {
            Draft => &[Intake, OnHold, Cancelled],
            Intake => &[Draft, Ready, OnHold, Cancelled],
            Ready => &[Intake, InProgress, OnHold, Cancelled],
            InProgress => &[Ready, InReview, OnHold, Cancelled],
            InReview => &[InProgress, Approved, OnHold, Cancelled],
            Approved => &[InReview, InProgress, Delivered],
            Delivered => &[InProgress],
            OnHold => &[Draft, Intake, Ready, InProgress, Cancelled],
            Cancelled => &[Draft],
        }
    }

    /// The states from which this one can be reached.
    pub fn previous_states(self) -> Vec<BriefStatus> {
        BriefStatus::ALL
            .into_iter()
            .filter(|s| s.next_states().contains(&self))
            .collect()
    }

    pub fn check_transition(self, to: BriefStatus) -> Result<(), TransitionError> {
        if self == to || self.next_states().contains(&to) {
            Ok(())
        } else {
            Err(TransitionError { from: self, to })
        }
    }

    /// Whether the brief still needs work (for queues and load).
    pub fn is_open(self) -> bool {
        !matches!(self, Delivered | Cancelled)
    }
}

impl fmt::Display for BriefStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status change the lifecycle does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cannot move a brief from {from} to {to}: {to} is reached only from {}; from {from} it can go to {}",
    names(&to.previous_states()),
    names(from.next_states())
)]
pub struct TransitionError {
    pub from: BriefStatus,
    pub to: BriefStatus,
}

fn names(states: &[BriefStatus]) -> String {
    states
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    P0,
    P1,
    #[default]
    P2,
    P3,
}

impl Priority {
    pub const ALL: [Priority; 4] = [Priority::P0, Priority::P1, Priority::P2, Priority::P3];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::P0 => "p0",
            Priority::P1 => "p1",
            Priority::P2 => "p2",
            Priority::P3 => "p3",
        }
    }

    pub fn parse(text: &str) -> Result<Priority, InputError> {
        let norm = text.trim().to_ascii_lowercase();
        Priority::ALL
            .into_iter()
            .find(|p| p.as_str() == norm || p.as_str()[1..] == norm)
            .ok_or_else(|| {
                InputError::new(format!(
                    "unknown priority `{text}`: use p0 (most urgent), p1, p2 or p3"
                ))
            })
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing to deliver: a channel, its spec and how many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deliverable {
    pub channel: String,
    #[serde(default)]
    pub spec: String,
    #[serde(default = "one")]
    pub quantity: u32,
}

fn one() -> u32 {
    1
}

impl Deliverable {
    /// Parses `CHANNEL[:SPEC][*QUANTITY]`, e.g. `linkedin:1200x627`,
    /// `instagram:1080x1350*3`, `email-header:600x200`.
    pub fn parse(text: &str) -> Result<Deliverable, InputError> {
        let bad = |why: &str| {
            InputError::new(format!(
                "cannot read deliverable `{text}`: {why}; use CHANNEL[:SPEC][*QUANTITY], \
                 e.g. linkedin:1200x627 or instagram:1080x1350*3"
            ))
        };
        let (rest, quantity) = match text.rsplit_once('*') {
            Some((rest, q)) => {
                let q: u32 = q
                    .trim()
                    .parse()
                    .map_err(|_| bad("quantity is not a number"))?;
                if q == 0 {
                    return Err(bad("quantity must be at least 1"));
                }
                (rest, q)
            }
            None => (text, 1),
        };
        let (channel, spec) = rest.split_once(':').unwrap_or((rest, ""));
        let channel = channel.trim().to_ascii_lowercase();
        if channel.is_empty() {
            return Err(bad("the channel is empty"));
        }
        Ok(Deliverable {
            channel,
            spec: spec.trim().to_owned(),
            quantity,
        })
    }
}

impl fmt::Display for Deliverable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.channel)?;
        if !self.spec.is_empty() {
            write!(f, ":{}", self.spec)?;
        }
        if self.quantity != 1 {
            write!(f, "*{}", self.quantity)?;
        }
        Ok(())
    }
}

/// A deadline: an instant and the zone it was set in (the assignee's or the
/// requester's), so it reads as "17:00 Lisbon" rather than a bare UTC time.
/// Stored and printed as one ISO 8601 string with a zone annotation, e.g.
/// `2026-12-01T17:00:00+00:00[Europe/Lisbon]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub at: Timestamp,
    pub tz: String,
}

impl Due {
    pub fn from_zoned(z: &ZonedDateTime) -> Due {
        Due {
            at: z.timestamp(),
            tz: z.time_zone().iana_name().unwrap_or("UTC").to_owned(),
        }
    }

    pub fn parse(text: &str, default_zone: &str) -> Result<Due, InputError> {
        Ok(Due::from_zoned(&parse_due(text, default_zone)?))
    }

    /// The deadline in its own zone; falls back to UTC for an unknown zone.
    pub fn zoned(&self) -> ZonedDateTime {
        let tz = jiff::tz::TimeZone::get(&self.tz).unwrap_or(jiff::tz::TimeZone::UTC);
        self.at.to_zoned_datetime(tz)
    }

    /// ISO 8601 with the zone annotation, e.g. `2026-12-01T17:00:00+00:00[Europe/Lisbon]`.
    pub fn to_iso(&self) -> String {
        self.zoned().to_string()
    }
}

impl Serialize for Due {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_iso())
    }
}

impl<'de> Deserialize<'de> for Due {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let zoned: ZonedDateTime = text.parse().map_err(serde::de::Error::custom)?;
        Ok(Due::from_zoned(&zoned))
    }
}

/// The fields a lead edits with `brief set FIELD=VALUE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BriefField {
    Title,
    Requester,
    Objective,
    Audience,
    KeyMessage,
    Deliverables,
    Mandatories,
    Brand,
    Budget,
    Due,
    References,
    SuccessMetric,
    Priority,
    Tags,
    SnoozeUntil,
}

impl BriefField {
    pub const ALL: [BriefField; 15] = [
        BriefField::Title,
        BriefField::Requester,
        BriefField::Objective,
        BriefField::Audience,
        BriefField::KeyMessage,
        BriefField::Deliverables,
        BriefField::Mandatories,
        BriefField::Brand,
        BriefField::Budget,
        BriefField::Due,
        BriefField::References,
        BriefField::SuccessMetric,
        BriefField::Priority,
        BriefField::Tags,
        BriefField::SnoozeUntil,
    ];

    /// The stored field name, also the name people type.
    pub fn name(self) -> &'static str {
        match self {
            BriefField::Title => "title",
            BriefField::Requester => "requester",
            BriefField::Objective => "objective",
            BriefField::Audience => "audience",
            BriefField::KeyMessage => "key_message",
            BriefField::Deliverables => "deliverables",
            BriefField::Mandatories => "mandatories",
            BriefField::Brand => "brand",
            BriefField::Budget => "budget",
            BriefField::Due => "due",
            BriefField::References => "references",
            BriefField::SuccessMetric => "success_metric",
            BriefField::Priority => "priority",
            BriefField::Tags => "tags",
            BriefField::SnoozeUntil => "snooze_until",
        }
    }

    pub fn parse(text: &str) -> Result<BriefField, InputError> {
        let norm = text.trim().to_ascii_lowercase().replace('-', "_");
        BriefField::ALL
            .into_iter()
            .find(|f| f.name() == norm)
            .ok_or_else(|| {
                let all: Vec<_> = BriefField::ALL.iter().map(|f| f.name()).collect();
                InputError::new(format!(
                    "unknown brief field `{text}`: use one of {} (status and assignees have their own commands)",
                    all.join(", ")
                ))
            })
    }
}

/// Builds the register writes for setting one field from typed text.
/// `zone` is the writer's time zone, used for dates without one.
/// Tags take `+tag`/`-tag` items or a comma list that replaces the set;
/// list fields take comma-separated values; an empty value clears a field.
pub fn field_writes(
    current: Option<&Brief>,
    field: BriefField,
    text: &str,
    zone: &str,
) -> Result<Vec<(String, Value)>, InputError> {
    let name = field.name().to_owned();
    let text = text.trim();
    let list = |t: &str| -> Vec<String> {
        t.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    if text.is_empty() && field != BriefField::Tags {
        if field == BriefField::Title {
            return Err(InputError::new("a brief's title cannot be empty"));
        }
        return Ok(vec![(name, Value::Null)]);
    }
    Ok(match field {
        BriefField::Title
        | BriefField::Requester
        | BriefField::Objective
        | BriefField::Audience
        | BriefField::KeyMessage
        | BriefField::Mandatories
        | BriefField::Brand
        | BriefField::Budget
        | BriefField::SuccessMetric => vec![(name, json!(text))],
        BriefField::References => vec![(name, json!(list(text)))],
        BriefField::Deliverables => {
            let items = list(text)
                .iter()
                .map(|d| Deliverable::parse(d))
                .collect::<Result<Vec<_>, _>>()?;
            vec![(name, json!(items))]
        }
        BriefField::Due => vec![(name, json!(Due::parse(text, zone)?))],
        BriefField::SnoozeUntil => {
            vec![(name, json!(Due::parse(text, zone)?.at))]
        }
        BriefField::Priority => vec![(name, json!(Priority::parse(text)?))],
        BriefField::Tags => tag_writes(current.map(|b| b.tags.as_slice()).unwrap_or(&[]), text)?,
    })
}

/// `+a -b` adds and removes; a plain list replaces the whole set.
fn tag_writes(current: &[String], text: &str) -> Result<Vec<(String, Value)>, InputError> {
    let items: Vec<&str> = text
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let incremental = !items.is_empty() && items.iter().all(|t| t.starts_with(['+', '-']));
    let mut writes = Vec::new();
    if incremental {
        for item in items {
            let (add, tag) = item.split_at(1);
            let tag = normalize_tag(tag)?;
            writes.push((format!("tags:{tag}"), json!(add == "+")));
        }
    } else {
        let wanted = items
            .iter()
            .map(|t| normalize_tag(t.trim_start_matches('+')))
            .collect::<Result<Vec<_>, _>>()?;
        for old in current {
            if !wanted.contains(old) {
                writes.push((format!("tags:{old}"), json!(false)));
            }
        }
        for tag in wanted {
            writes.push((format!("tags:{tag}"), json!(true)));
        }
    }
    Ok(writes)
}

pub fn normalize_tag(tag: &str) -> Result<String, InputError> {
    let tag = tag.trim().to_lowercase();
    if tag.is_empty() || tag.contains(':') || tag.chars().any(char::is_whitespace) {
        return Err(InputError::new(format!(
            "bad tag `{tag}`: tags are single words without `:`, e.g. hero or q4-launch"
        )));
    }
    Ok(tag)
}

/// A brief as people see it, read from its merged record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Brief {
    pub id: String,
    pub title: String,
    pub requester: Option<String>,
    pub objective: Option<String>,
    pub audience: Option<String>,
    pub key_message: Option<String>,
    pub deliverables: Vec<Deliverable>,
    pub mandatories: Option<String>,
    pub brand: Option<String>,
    pub budget: Option<String>,
    pub due: Option<Due>,
    pub references: Vec<String>,
    pub success_metric: Option<String>,
    pub status: BriefStatus,
    pub priority: Priority,
    pub assignees: Vec<String>,
    pub tags: Vec<String>,
    pub snooze_until: Option<Timestamp>,
    /// Thread holding the brief's comments.
    pub thread: String,
    pub created_by: Option<String>,
    pub created_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
    pub deleted: bool,
}

impl Brief {
    pub fn from_record(id: &str, rec: &EntityRecord) -> Brief {
        let ts = |ms: u64| Timestamp::from_millisecond(ms as i64).ok();
        Brief {
            id: id.to_owned(),
            title: rec.string("title").unwrap_or_default(),
            requester: rec.string("requester"),
            objective: rec.string("objective"),
            audience: rec.string("audience"),
            key_message: rec.string("key_message"),
            deliverables: rec.get_as("deliverables").unwrap_or_default(),
            mandatories: rec.string("mandatories"),
            brand: rec.string("brand"),
            budget: rec.string("budget"),
            due: rec.get_as("due"),
            references: rec.get_as("references").unwrap_or_default(),
            success_metric: rec.string("success_metric"),
            status: rec.get_as("status").unwrap_or(Draft),
            priority: rec.get_as("priority").unwrap_or_default(),
            assignees: rec.set_members("assignees"),
            tags: rec.set_members("tags"),
            snooze_until: rec.get_as("snooze_until"),
            thread: thread_id_for_brief(id),
            created_by: rec.string("created_by"),
            created_at: rec.first_stamp().and_then(|s| ts(s.hlc.wall_ms)),
            updated_at: rec.last_stamp().and_then(|s| ts(s.hlc.wall_ms)),
            deleted: rec.is_deleted(),
        }
    }

    /// Clarifying questions for each required field that is missing, in the
    /// words a lead would use with the requester.
    pub fn missing_fields(&self) -> Vec<Question> {
        let mut out = Vec::new();
        let blank = |v: &Option<String>| v.as_deref().is_none_or(|s| s.trim().is_empty());
        if blank(&self.objective) {
            out.push(Question::new(
                "objective",
                "What should this work achieve? What changes for the business if it succeeds?",
            ));
        }
        if blank(&self.audience) {
            out.push(Question::new(
                "audience",
                "Who is this for? Describe the audience: who they are, where they will see it, what they care about.",
            ));
        }
        if self.deliverables.is_empty() {
            out.push(Question::new(
                "deliverables",
                "What exactly should we deliver? List each channel with its size or spec and how many (e.g. linkedin:1200x627).",
            ));
        }
        if self.due.is_none() {
            out.push(Question::new(
                "due",
                "When do you need it, and in which time zone is that deadline?",
            ));
        }
        if blank(&self.key_message) {
            out.push(Question::new(
                "key_message",
                "What is the one thing the audience should take away? Give us the key message in a sentence.",
            ));
        }
        out
    }
}

/// The thread id of a brief's comments.
pub fn thread_id_for_brief(brief_id: &str) -> String {
    format!("brief:{brief_id}")
}

/// A missing field and the clarifying question that would fill it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Question {
    pub field: String,
    pub question: String,
}

impl Question {
    fn new(field: &str, question: &str) -> Self {
        Question {
            field: field.to_owned(),
            question: question.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivered_is_reachable_only_from_approved() {
        assert!(Approved.check_transition(Delivered).is_ok());
        let err = Draft.check_transition(Delivered).expect_err("not allowed");
        let msg = err.to_string();
        assert!(msg.contains("from draft to delivered"), "{msg}");
        assert!(msg.contains("reached only from approved"), "{msg}");
        assert_eq!(Delivered.previous_states(), vec![Approved]);
    }

    #[test]
    fn every_status_can_eventually_reach_delivered_or_is_cancelled() {
        // The lifecycle has no dead ends: from any state some path leads to delivered.
        for start in BriefStatus::ALL {
            let mut seen = vec![start];
            let mut frontier = vec![start];
            while let Some(s) = frontier.pop() {
                for &n in s.next_states() {
                    if !seen.contains(&n) {
                        seen.push(n);
                        frontier.push(n);
                    }
                }
            }
            assert!(seen.contains(&Delivered), "{start} cannot reach delivered");
        }
    }

    #[test]
    fn statuses_and_priorities_parse_leniently_and_fail_clearly() {
        assert_eq!(BriefStatus::parse("In-Progress"), Ok(InProgress));
        assert_eq!(BriefStatus::parse("onhold"), Ok(OnHold));
        let err = BriefStatus::parse("done").expect_err("bad");
        assert!(err.0.contains("done") && err.0.contains("in_review"));
        assert_eq!(Priority::parse("P1"), Ok(Priority::P1));
        assert_eq!(Priority::parse("0"), Ok(Priority::P0));
        assert!(Priority::parse("urgent").expect_err("bad").0.contains("p0"));
    }

    #[test]
    fn deliverables_parse_channel_spec_and_quantity() {
        let d = Deliverable::parse("LinkedIn:1200x627*3").expect("parse");
        assert_eq!(
            (d.channel.as_str(), d.spec.as_str(), d.quantity),
            ("linkedin", "1200x627", 3)
        );
        assert_eq!(d.to_string(), "linkedin:1200x627*3");
        assert_eq!(Deliverable::parse("ooh").expect("parse").quantity, 1);
        assert!(Deliverable::parse(":1x1").is_err());
        assert!(Deliverable::parse("email:600x200*none").is_err());
    }

    #[test]
    fn tags_add_remove_or_replace() {
        let current = vec!["hero".to_owned(), "q4".to_owned()];
        let inc = tag_writes(&current, "+launch -q4").expect("ok");
        assert_eq!(
            inc,
            vec![
                ("tags:launch".to_owned(), json!(true)),
                ("tags:q4".to_owned(), json!(false))
            ]
        );
        let replace = tag_writes(&current, "hero,social").expect("ok");
        assert!(replace.contains(&("tags:q4".to_owned(), json!(false))));
        assert!(replace.contains(&("tags:social".to_owned(), json!(true))));
        assert!(!replace.contains(&("tags:hero".to_owned(), json!(false))));
    }

    #[test]
    fn a_complete_brief_has_no_questions_and_an_empty_one_has_five() {
        let mut brief = Brief::from_record("b-1", &EntityRecord::default());
        let fields: Vec<_> = brief
            .missing_fields()
            .into_iter()
            .map(|q| q.field)
            .collect();
        assert_eq!(
            fields,
            [
                "objective",
                "audience",
                "deliverables",
                "due",
                "key_message"
            ]
        );
        brief.objective = Some("Grow trials".into());
        brief.audience = Some("Designers in EMEA".into());
        brief.key_message = Some("Ship faster".into());
        brief.deliverables = vec![Deliverable::parse("linkedin:1200x627").expect("parse")];
        brief.due = Some(Due::parse("2026-12-01", "UTC").expect("parse"));
        assert!(brief.missing_fields().is_empty());
    }
}

#[cfg(test)]
mod due_tests {
    use super::*;

    #[test]
    fn due_serializes_as_one_zoned_string_and_reads_back() {
        let due = Due::parse("2026-12-01T17:00", "America/New_York").expect("parse");
        let json = serde_json::to_value(&due).expect("ser");
        assert_eq!(json, json!("2026-12-01T17:00:00-05:00[America/New_York]"));
        let back: Due = serde_json::from_value(json).expect("de");
        assert_eq!(back, due);
        assert!(serde_json::from_value::<Due>(json!("not a date")).is_err());
    }
}
