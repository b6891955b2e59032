//! Brief edits the TUI asks for, named by intent, and how the replica worker
//! carries them out through the same brief services as the CLI: the service
//! applies its rules and returns the undo ops and any refusals.

use super::status::Level;
use crate::model::brief::{BriefStatus, Priority};
use crate::model::{Change, EntityRef};
use crate::service::{Hub, NewBrief};
use jiff::Timestamp;

/// A change to briefs as the user meant it.
#[derive(Debug, Clone, PartialEq)]
pub enum BriefEdit {
    /// `force` moves briefs with open questions on to ready (a lead's call).
    SetStatus {
        ids: Vec<String>,
        to: BriefStatus,
        force: bool,
    },
    SetPriority {
        ids: Vec<String>,
        to: Priority,
    },
    Assign {
        ids: Vec<String>,
        handle: String,
        remove: bool,
    },
    Tags {
        ids: Vec<String>,
        add: Vec<String>,
        remove: Vec<String>,
    },
    /// `None` wakes the briefs.
    Snooze {
        ids: Vec<String>,
        until: Option<Timestamp>,
    },
    Comment {
        id: String,
        text: String,
    },
    Create(Box<NewBrief>),
    /// Puts back what an earlier edit changed, with the ops the service
    /// returned for it.
    Undo {
        label: String,
        changes: Vec<(EntityRef, Change)>,
    },
}

/// What came of an edit: the status line, and what goes on the undo stack.
#[derive(Debug, Clone, PartialEq)]
pub struct Edited {
    /// Names the edit on the undo stack, e.g. `2 briefs → ready`.
    pub label: String,
    /// The service's inverse ops; empty when nothing changed or nothing can
    /// be undone (a comment).
    pub undo: Vec<(EntityRef, Change)>,
    pub level: Level,
    pub message: String,
}

impl Edited {
    fn info(message: String) -> Edited {
        Edited {
            label: message.clone(),
            undo: Vec::new(),
            level: Level::Info,
            message,
        }
    }

    fn error(message: String) -> Edited {
        Edited {
            label: String::new(),
            undo: Vec::new(),
            level: Level::Error,
            message,
        }
    }
}

/// Carries out an edit through the brief services (on the replica worker).
pub fn apply(hub: &mut Hub, edit: &BriefEdit) -> Edited {
    let outcome = match edit {
        BriefEdit::SetStatus { ids, to, force } => hub.move_briefs(ids, *to, *force),
        BriefEdit::SetPriority { ids, to } => hub.set_briefs_priority(ids, *to),
        BriefEdit::Assign {
            ids,
            handle,
            remove,
        } => hub.assign_briefs(ids, handle, *remove),
        BriefEdit::Tags { ids, add, remove } => hub.tag_briefs(ids, add, remove),
        BriefEdit::Snooze { ids, until } => hub.snooze_briefs(ids, *until),
        BriefEdit::Comment { id, text } => {
            return match hub.comment_on_brief(id, text) {
                Ok(()) => Edited::info(format!("commented on {id}")),
                Err(e) => Edited::error(format!("{e:#}")),
            };
        }
        BriefEdit::Create(new) => {
            return match hub.add_brief_with_undo(NewBrief::clone(new)) {
                Ok((brief, undo)) => {
                    let open: Vec<String> = brief
                        .missing_fields()
                        .into_iter()
                        .map(|q| q.field)
                        .collect();
                    let message = if open.is_empty() {
                        format!("added {}, complete", brief.id)
                    } else {
                        format!("added {}; still to clarify: {}", brief.id, open.join(", "))
                    };
                    Edited {
                        label: format!("added {}", brief.id),
                        undo,
                        level: Level::Info,
                        message,
                    }
                }
                Err(e) => Edited::error(format!("{e:#}")),
            };
        }
        BriefEdit::Undo { label, changes } => {
            return match hub.apply_undo(changes.clone()) {
                Ok(()) => Edited::info(format!("undid: {label}")),
                Err(e) => Edited::error(format!("could not undo {label}: {e:#}")),
            };
        }
    };
    match outcome {
        Ok(outcome) => batch_report(
            label(edit, outcome.done.len()),
            outcome.undo,
            outcome.refused.into_iter().map(|(_, why)| why).collect(),
        ),
        Err(e) => Edited::error(format!("{e:#}")),
    }
}

/// The status line for a batch: what moved, then each refusal in the
/// service's words (one refusal alone reads exactly as the CLI prints it).
fn batch_report(label: String, undo: Vec<(EntityRef, Change)>, refused: Vec<String>) -> Edited {
    let refusals = match refused.as_slice() {
        [] => None,
        [one] => Some(one.clone()),
        many => Some(format!("{} refused: {}", many.len(), many.join("; "))),
    };
    let (level, message) = match (undo.is_empty(), refusals) {
        (true, None) => (Level::Info, "nothing to change".to_owned()),
        (false, None) => (Level::Info, label.clone()),
        (true, Some(r)) => (Level::Error, r),
        (false, Some(r)) => (Level::Error, format!("{label}; {r}")),
    };
    Edited {
        label,
        undo,
        level,
        message,
    }
}

fn label(edit: &BriefEdit, done: usize) -> String {
    let n = count_label(done);
    match edit {
        BriefEdit::SetStatus { to, .. } => format!("{n} → {to}"),
        BriefEdit::SetPriority { to, .. } => format!("{n} → {to}"),
        BriefEdit::Assign {
            handle,
            remove: false,
            ..
        } => format!("{n} assigned to @{handle}"),
        BriefEdit::Assign { handle, .. } => format!("@{handle} taken off {n}"),
        BriefEdit::Tags { .. } => format!("tagged {n}"),
        BriefEdit::Snooze { until: Some(_), .. } => format!("snoozed {n}"),
        BriefEdit::Snooze { until: None, .. } => format!("woke {n}"),
        BriefEdit::Comment { id, .. } => format!("commented on {id}"),
        BriefEdit::Create(_) => "added a brief".to_owned(),
        BriefEdit::Undo { label, .. } => format!("undid: {label}"),
    }
}

fn count_label(n: usize) -> String {
    if n == 1 {
        "1 brief".into()
    } else {
        format!("{n} briefs")
    }
}
