//! What every pane speaks. A pane owns its state, answers an action with
//! [`Handled::Consumed`] and the commands that follow, or
//! [`Handled::Ignored`] so the app's global table can try it, and draws
//! itself from `&self`.

use super::action::{Action, Pane};
use super::keymap::Keymap;
use super::msg::{Effect, Level, Snapshot};
use super::popup::{Answer, Popup};
use super::preview::Previews;
use super::theme::Theme;
use crate::search::index::Hit;
use crossterm::event::KeyEvent;
use jiff::Timestamp;
use ratatui::Frame;
use ratatui::layout::{Rect, Size};
use std::collections::BTreeMap;

/// What a pane did with an event.
#[derive(Debug, PartialEq)]
pub enum Handled {
    Consumed(Vec<Cmd>),
    Ignored,
}

impl Handled {
    pub fn done() -> Handled {
        Handled::Consumed(Vec::new())
    }

    pub fn one(cmd: Cmd) -> Handled {
        Handled::Consumed(vec![cmd])
    }

    pub fn work(effect: Effect) -> Handled {
        Handled::one(Cmd::Work(effect))
    }

    pub fn say(level: Level, text: impl Into<String>) -> Handled {
        Handled::one(Cmd::Say(level, text.into()))
    }
}

/// What a pane asks of the app.
#[derive(Debug, PartialEq)]
pub enum Cmd {
    /// Work for the workers.
    Work(Effect),
    /// Open a popup over this pane.
    Open(Popup),
    /// Say this in the status line.
    Say(Level, String),
    /// Go to a search result or a cited source, in whatever pane shows it.
    Goto(Hit),
}

/// What panes read from around them.
pub struct Ctx<'a> {
    pub data: &'a Snapshot,
    pub now: Timestamp,
    pub keymap: &'a Keymap,
    /// Members the hub says are online: when we last heard, and what they
    /// have open.
    pub online: &'a BTreeMap<String, Seen>,
    pub previews: &'a Previews,
}

/// A member the hub says is online.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub at: Timestamp,
    /// What they are looking at, e.g. `brief/b-7k2m9q3x`.
    pub viewing: Option<String>,
}

pub trait Component {
    fn pane(&self) -> Pane;

    /// A key already resolved through the keymap into an action.
    fn on_action(&mut self, action: Action, ctx: &Ctx) -> Handled;

    /// Whether the pane's own text input has focus: then keys go to
    /// [`Component::on_input_key`], looked up in `[input]`.
    fn input_focused(&self) -> bool {
        false
    }

    fn on_input_key(&mut self, key: &KeyEvent, bound: Option<Action>, ctx: &Ctx) -> Handled {
        let _ = (key, bound, ctx);
        Handled::Ignored
    }

    /// Pasted text goes only to a focused input; a pane without one ignores it.
    fn on_paste(&mut self, text: &str) -> Handled {
        let _ = text;
        Handled::Ignored
    }

    /// What a popup this pane opened gave back.
    fn on_answer(&mut self, answer: Answer, ctx: &Ctx) -> Handled {
        let _ = (answer, ctx);
        Handled::Ignored
    }

    /// The replica's data changed.
    fn on_data(&mut self, ctx: &Ctx) -> Vec<Cmd> {
        let _ = ctx;
        Vec::new()
    }

    /// The area the pane is drawn in changed (page sizes, image sizes).
    fn on_resize(&mut self, area: Rect);

    /// Images the pane shows now: blob and cell size.
    fn images(&self, ctx: &Ctx) -> Vec<(String, Size)> {
        let _ = ctx;
        Vec::new()
    }

    fn draw(&self, frame: &mut Frame, area: Rect, ctx: &Ctx, theme: &Theme);

    /// The actions this pane answers to, most useful first, for the hint
    /// line and for saying where an action works.
    fn commands(&self) -> &'static [Action];
}
