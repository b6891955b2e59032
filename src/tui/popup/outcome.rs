//! What popups give back: the answer for the pane that opened them, and
//! what becomes of the popup itself.

use super::picker::Picked;
use crate::model::approval::Decision;
use crate::search::index::Hit;
use crate::tui::action::Action;
use crate::tui::msg::{Effect, Level};

/// What a one-line prompt asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    Filter,
    Tag,
    Snooze,
    Comment,
    /// The comment that goes with a decision.
    Verdict(Decision),
    /// Where to save an asset's file.
    SavePath,
}

impl Prompt {
    pub fn label(self) -> &'static str {
        match self {
            Prompt::Filter => "filter",
            Prompt::Tag => "tags (+add -remove)",
            Prompt::Snooze => "snooze until (2026-12-01, 2026-12-01T09:00)",
            Prompt::Comment => "comment",
            Prompt::Verdict(Decision::ApprovedWithChanges) => {
                "the changes you approve with (optional)"
            }
            Prompt::Verdict(Decision::ChangesRequested) => "what needs to change (required)",
            Prompt::Verdict(_) => "why (required)",
            Prompt::SavePath => "save the file to (a path or a folder; ~ is your home)",
        }
    }

    /// Comments and reasons can be long; filters and dates cannot.
    pub fn multi_line(self) -> bool {
        matches!(self, Prompt::Comment | Prompt::Verdict(_))
    }
}

/// What a popup gives back to the pane that opened it (or to the app).
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The palette ran an action.
    Action(Action),
    /// Search chose a result.
    Hit(Hit),
    /// A confirmed effect.
    Effect(Effect),
    Picked(Picked),
    Text {
        prompt: Prompt,
        text: String,
    },
    /// The new-brief form's answers, one per field.
    Form(Vec<String>),
}

/// What became of a key or paste in a popup.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Stay,
    Close,
    /// Close, then hand the answer on.
    Answer(Answer),
    /// Stay open and hand the answer on (a filter narrowing as you type).
    Live(Answer),
    /// Stay open and run this (a search query).
    Run(Effect),
    /// Stay open and say this in the status line.
    Say(Level, String),
    /// Close and say this in the status line.
    CloseSaying(Level, String),
}
