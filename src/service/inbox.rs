//! The inbox: what waits on the member this replica acts as.
//!
//! Four kinds of item, each read from the replica as it stands:
//! - an approval request whose current stage waits on me (until I decide);
//! - a brief assigned to me that someone else changed or commented on since
//!   I last looked;
//! - a message by someone else that @mentions me, until I answer in that
//!   thread or mark it seen;
//! - clarifying questions asked of me as a brief's requester, until the
//!   fields they ask about are filled in.
//!
//! What "last looked" means is kept on this machine only, beside the
//! replica (`inbox-seen.json`): seeing an item is not news for the team.

use super::Hub;
use crate::agent::intake::INTAKE_MARK;
use crate::model::brief::Brief;
use crate::model::thread::Message;
use crate::model::{EntityKind, EntityRef};
use anyhow::{Context, Result};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What kind of thing waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InboxKind {
    /// An approval request at a stage that waits on me.
    Approval,
    /// Clarifying questions for a brief I requested.
    Question,
    /// A message that mentions me.
    Mention,
    /// A brief assigned to me that changed.
    Assigned,
}

impl InboxKind {
    pub fn label(self) -> &'static str {
        match self {
            InboxKind::Approval => "approval",
            InboxKind::Question => "question",
            InboxKind::Mention => "mention",
            InboxKind::Assigned => "assigned",
        }
    }

    /// Whether marking it seen clears it; the others clear by being done.
    pub fn clears_when_seen(self) -> bool {
        matches!(self, InboxKind::Mention | InboxKind::Assigned)
    }
}

/// One thing that waits on me.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InboxItem {
    /// Stable while the item is the same news: a new stage or a newer
    /// change makes a new key.
    pub key: String,
    pub kind: InboxKind,
    /// The request, brief or thread it is about.
    pub id: String,
    /// The brief's id for briefs, comments and questions on them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brief: Option<String>,
    /// The thread of a mention or question.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
    pub title: String,
    /// One line: what happened.
    pub detail: String,
    /// Who made it wait on me, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<Timestamp>,
}

/// Everything that waits on me, newest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Inbox {
    pub me: Option<String>,
    pub items: Vec<InboxItem>,
}

impl Inbox {
    pub fn count(&self, kind: InboxKind) -> usize {
        self.items.iter().filter(|i| i.kind == kind).count()
    }
}

/// When I last looked at each brief or thread, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeenMarks {
    #[serde(default)]
    pub seen: BTreeMap<String, u64>,
}

impl SeenMarks {
    fn path(home: &Path) -> PathBuf {
        home.join("inbox-seen.json")
    }

    /// Reads the marks; a missing file is no marks, a damaged one is
    /// reported (and treated as none by the TUI, which must keep going).
    pub fn load(home: &Path) -> Result<SeenMarks> {
        let path = Self::path(home);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is damaged; delete it to start over", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SeenMarks::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Writes the marks through a temporary file, so a crash leaves the old ones.
    pub fn save(&self, home: &Path) -> Result<()> {
        let path = Self::path(home);
        let tmp = home.join("inbox-seen.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(self)?)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path)
            .with_context(|| format!("cannot replace {}", path.display()))?;
        Ok(())
    }

    fn get(&self, what: &str) -> u64 {
        self.seen.get(what).copied().unwrap_or(0)
    }

    fn mark(&mut self, what: &str, at_ms: u64) {
        let slot = self.seen.entry(what.to_owned()).or_insert(0);
        *slot = (*slot).max(at_ms);
    }
}

fn ms(t: Option<Timestamp>) -> u64 {
    t.map(|t| t.as_millisecond().max(0) as u64).unwrap_or(0)
}

/// Whether `body` names `@handle` as a whole word.
pub fn mentions(body: &str, handle: &str) -> bool {
    let needle = format!("@{handle}");
    body.match_indices(&needle).any(|(at, _)| {
        let before_ok = body[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '@'));
        let rest = &body[at + needle.len()..];
        let mut after = rest.chars();
        let after_ok = match after.next() {
            None => true,
            // A sentence may end on the handle; a longer handle goes on.
            Some('.') => after.next().is_none_or(|c| !c.is_alphanumeric()),
            Some(c) => !(c.is_alphanumeric() || c == '_' || c == '-'),
        };
        before_ok && after_ok
    })
}

fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let mut out: String = line.trim().chars().take(max).collect();
    if line.trim().chars().count() > max {
        out.push('…');
    }
    out
}

impl Hub {
    /// What waits on the member this replica acts as. A replica with no
    /// member has an empty inbox.
    pub fn inbox(&self) -> Result<Inbox> {
        let marks = SeenMarks::load(&self.home()).unwrap_or_default();
        self.inbox_with(&marks)
    }

    /// The inbox as seen through `marks`.
    pub fn inbox_with(&self, marks: &SeenMarks) -> Result<Inbox> {
        let Some(me) = self.actor().ok().map(str::to_owned) else {
            return Ok(Inbox::default());
        };
        let mut items = Vec::new();
        for view in self.approvals(true)? {
            if view.status.is_closed() {
                continue;
            }
            let at = view
                .decisions
                .iter()
                .filter_map(|d| d.at)
                .max()
                .or_else(|| {
                    self.replica
                        .record(&EntityRef::new(EntityKind::Approval, view.id.clone()))
                        .ok()
                        .flatten()
                        .and_then(|r| r.first_stamp())
                        .and_then(|s| Timestamp::from_millisecond(s.hlc.wall_ms as i64).ok())
                });
            let stage = view.stage + 1;
            let stages = view.stages.len();
            items.push(InboxItem {
                key: format!("approval:{}:{stage}", view.id),
                kind: InboxKind::Approval,
                id: view.id.clone(),
                brief: None,
                thread: None,
                title: view.title.clone(),
                detail: format!("waits on you at stage {stage} of {stages}"),
                by: view.requested_by.clone(),
                at,
            });
        }
        let my_client = self.meta.client_id;
        let mut brief_threads = BTreeMap::new();
        for brief in self.briefs(&Default::default())? {
            if brief.deleted {
                continue;
            }
            brief_threads.insert(brief.thread.clone(), brief.clone());
            let messages = self.thread_messages(&brief.thread)?;
            if brief.assignees.contains(&me) && brief.status.is_open() {
                self.assigned_item(&brief, &messages, &me, my_client, marks, &mut items)?;
            }
            if brief.requester.as_deref() == Some(me.as_str())
                || (brief.requester.is_none() && brief.created_by.as_deref() == Some(&me))
            {
                question_item(&brief, &messages, &me, &mut items);
            }
        }
        for thread in self.replica.item_entity_ids(EntityKind::Thread)? {
            let messages = self.thread_messages(&thread)?;
            let brief = brief_threads.get(&thread);
            mention_items(&thread, brief, &messages, &me, marks, &mut items);
        }
        items.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.key.cmp(&b.key)));
        Ok(Inbox {
            me: Some(me),
            items,
        })
    }

    fn assigned_item(
        &self,
        brief: &Brief,
        messages: &[Message],
        me: &str,
        my_client: spoke_relay::proto::ClientId,
        marks: &SeenMarks,
        items: &mut Vec<InboxItem>,
    ) -> Result<()> {
        let seen = marks.get(&format!("brief:{}", brief.id));
        let record = self
            .replica
            .record(&EntityRef::new(EntityKind::Brief, brief.id.clone()))?
            .unwrap_or_default();
        // The newest change someone else made to the brief's fields.
        let changed = record
            .fields
            .iter()
            .filter(|(_, r)| r.stamp.id.client != my_client)
            .max_by_key(|(_, r)| r.stamp.hlc.wall_ms)
            .map(|(name, r)| (r.stamp.hlc.wall_ms, name.clone()));
        let comment = messages
            .iter()
            .filter(|m| m.author != me)
            .max_by_key(|m| ms(m.at))
            .map(|m| (ms(m.at), m));
        let (at, detail, by) = match (changed, comment) {
            (Some((c_ms, field)), Some((m_ms, _))) if c_ms >= m_ms => {
                (c_ms, field_change(brief, &field), None)
            }
            (_, Some((m_ms, m))) => (
                m_ms,
                format!("@{} commented: {}", m.author, first_line(&m.body, 60)),
                Some(m.author.clone()),
            ),
            (Some((c_ms, field)), None) => (c_ms, field_change(brief, &field), None),
            (None, None) => return Ok(()),
        };
        if at <= seen {
            return Ok(());
        }
        items.push(InboxItem {
            key: format!("brief:{}:{at}", brief.id),
            kind: InboxKind::Assigned,
            id: brief.id.clone(),
            brief: Some(brief.id.clone()),
            thread: None,
            title: brief.title.clone(),
            detail,
            by,
            at: Timestamp::from_millisecond(at as i64).ok(),
        });
        Ok(())
    }

    /// Marks items seen: every brief and thread they are about, up to now.
    /// Approvals and questions are not cleared this way; they wait until
    /// they are decided or answered. Returns how many were cleared.
    pub fn mark_inbox_seen(&self, keys_or_ids: &[String]) -> Result<usize> {
        let home = self.home();
        let mut marks = SeenMarks::load(&home)?;
        let inbox = self.inbox_with(&marks)?;
        let now = crate::model::hlc::wall_now_ms();
        let mut cleared = 0;
        for item in &inbox.items {
            let chosen = keys_or_ids.is_empty()
                || keys_or_ids.iter().any(|k| {
                    *k == item.key
                        || *k == item.id
                        || item.id.strip_prefix("b-").is_some_and(|bare| bare == k)
                        || (k.len() >= 4 && item.id.starts_with(k.as_str()))
                });
            if !chosen || !item.kind.clears_when_seen() {
                continue;
            }
            cleared += 1;
            let at = ms(item.at).max(now);
            match item.kind {
                InboxKind::Assigned => marks.mark(&format!("brief:{}", item.id), at),
                InboxKind::Mention => {
                    if let Some(t) = &item.thread {
                        marks.mark(&format!("thread:{t}"), at);
                    }
                }
                _ => {}
            }
        }
        marks.save(&home)?;
        Ok(cleared)
    }

    /// Marks a brief (its changes and comments) and its thread seen now.
    pub fn mark_brief_seen(&self, brief_id: &str) -> Result<()> {
        let home = self.home();
        let mut marks = SeenMarks::load(&home).unwrap_or_default();
        let now = crate::model::hlc::wall_now_ms();
        marks.mark(&format!("brief:{brief_id}"), now);
        marks.mark(
            &format!(
                "thread:{}",
                crate::model::brief::thread_id_for_brief(brief_id)
            ),
            now,
        );
        marks.save(&home)
    }

    /// Marks a thread's mentions seen now.
    pub fn mark_thread_seen(&self, thread: &str) -> Result<()> {
        let home = self.home();
        let mut marks = SeenMarks::load(&home).unwrap_or_default();
        marks.mark(
            &format!("thread:{thread}"),
            crate::model::hlc::wall_now_ms(),
        );
        marks.save(&home)
    }
}

fn field_change(brief: &Brief, field: &str) -> String {
    match field {
        "status" => format!("status is now {}", brief.status),
        "priority" => format!("priority is now {}", brief.priority),
        "due" => match &brief.due {
            Some(d) => format!("due date is now {}", d.to_iso()),
            None => "due date removed".to_owned(),
        },
        f if f.starts_with("assignees") => "assignees changed".to_owned(),
        f if f.starts_with("tags") => "tags changed".to_owned(),
        f => format!("{} changed", f.replace('_', " ")),
    }
}

/// The latest intake questions of a brief I requested, while any of the
/// fields they ask about is still missing.
fn question_item(brief: &Brief, messages: &[Message], me: &str, items: &mut Vec<InboxItem>) {
    let Some((message, fields)) = messages.iter().rev().find_map(|m| {
        let mark = m.tools.iter().find(|u| u.name == INTAKE_MARK)?;
        let asked: serde_json::Value = serde_json::from_str(&mark.arguments).ok()?;
        let fields: Vec<String> = asked
            .get("fields")?
            .as_array()?
            .iter()
            .filter_map(|f| f.as_str().map(str::to_owned))
            .collect();
        Some((m, fields))
    }) else {
        return;
    };
    if message.author == me {
        return;
    }
    let missing: Vec<String> = brief
        .missing_fields()
        .into_iter()
        .map(|q| q.field)
        .filter(|f| fields.contains(f))
        .collect();
    if missing.is_empty() || !brief.status.is_open() {
        return;
    }
    items.push(InboxItem {
        key: format!("question:{}:{}", brief.id, ms(message.at)),
        kind: InboxKind::Question,
        id: brief.id.clone(),
        brief: Some(brief.id.clone()),
        thread: Some(brief.thread.clone()),
        title: brief.title.clone(),
        detail: format!(
            "{} question(s) to answer: {}",
            missing.len(),
            missing.join(", ")
        ),
        by: Some(message.author.clone()),
        at: message.at,
    });
}

/// Messages by others that mention me, newer than my last word in the
/// thread and than when I last looked at it. Intake questions are items of
/// their own.
fn mention_items(
    thread: &str,
    brief: Option<&Brief>,
    messages: &[Message],
    me: &str,
    marks: &SeenMarks,
    items: &mut Vec<InboxItem>,
) {
    let answered = messages
        .iter()
        .filter(|m| m.author == me)
        .map(|m| ms(m.at))
        .max()
        .unwrap_or(0);
    let seen = marks.get(&format!("thread:{thread}")).max(answered);
    for m in messages {
        let at = ms(m.at);
        if m.author == me || at <= seen || !mentions(&m.body, me) {
            continue;
        }
        if m.tools.iter().any(|u| u.name == INTAKE_MARK) {
            continue;
        }
        let title = brief
            .map(|b| b.title.clone())
            .unwrap_or_else(|| format!("#{thread}"));
        items.push(InboxItem {
            key: format!("mention:{thread}:{at}:{}", m.author),
            kind: InboxKind::Mention,
            id: thread.to_owned(),
            brief: brief.map(|b| b.id.clone()),
            thread: Some(thread.to_owned()),
            title,
            detail: format!("@{}: {}", m.author, first_line(&m.body, 70)),
            by: Some(m.author.clone()),
            at: m.at,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::mentions;

    #[test]
    fn a_mention_is_the_whole_handle() {
        assert!(mentions("@ana please look", "ana"));
        assert!(mentions("thanks, @ana.", "ana"));
        assert!(mentions("(@ana)", "ana"));
        assert!(mentions("@kenji, @ana: ok?", "ana"));
        assert!(!mentions("@anabel please look", "ana"));
        assert!(!mentions("@ana.b please", "ana"));
        assert!(!mentions("mail ana@ana.example", "ana"));
        assert!(!mentions("@ana_2 hi", "ana"));
        assert!(!mentions("@ana-x hi", "ana"));
        assert!(!mentions("no mention", "ana"));
    }
}
