//! A list to choose one value from, generic over the value picked.

use crate::model::brief::{BriefStatus, Priority};
use crate::model::thread::Citation;

/// One choice: the value it stands for, and how it is shown.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice<T> {
    pub value: T,
    pub label: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Picker<T> {
    pub title: String,
    pub choices: Vec<Choice<T>>,
    pub selected: usize,
}

impl<T: Clone> Picker<T> {
    pub fn new(title: &str, choices: Vec<Choice<T>>, selected: usize) -> Picker<T> {
        let selected = selected.min(choices.len().saturating_sub(1));
        Picker {
            title: title.to_owned(),
            choices,
            selected,
        }
    }

    pub fn move_by(&mut self, delta: isize) {
        let last = self.choices.len().saturating_sub(1);
        self.selected = self.selected.saturating_add_signed(delta).min(last);
    }

    pub fn value(&self) -> Option<T> {
        self.choices.get(self.selected).map(|c| c.value.clone())
    }
}

/// The pickers the panes open, each over its own kind of value.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyPicker {
    Status(Picker<BriefStatus>),
    Priority(Picker<Priority>),
    Member(Picker<String>),
    Citation(Picker<Citation>),
    /// A generation template, by name.
    Template(Picker<String>),
}

/// The value a picker gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Picked {
    Status(BriefStatus),
    Priority(Priority),
    Member(String),
    Citation(Citation),
    Template(String),
}

impl AnyPicker {
    pub fn move_by(&mut self, delta: isize) {
        match self {
            AnyPicker::Status(p) => p.move_by(delta),
            AnyPicker::Priority(p) => p.move_by(delta),
            AnyPicker::Member(p) => p.move_by(delta),
            AnyPicker::Citation(p) => p.move_by(delta),
            AnyPicker::Template(p) => p.move_by(delta),
        }
    }

    pub fn picked(&self) -> Option<Picked> {
        match self {
            AnyPicker::Status(p) => p.value().map(Picked::Status),
            AnyPicker::Priority(p) => p.value().map(Picked::Priority),
            AnyPicker::Member(p) => p.value().map(Picked::Member),
            AnyPicker::Citation(p) => p.value().map(Picked::Citation),
            AnyPicker::Template(p) => p.value().map(Picked::Template),
        }
    }

    /// Title, rows (label, detail) and the selected row, for drawing.
    pub fn view(&self) -> (&str, Vec<(&str, &str)>, usize) {
        fn rows<T>(p: &Picker<T>) -> Vec<(&str, &str)> {
            p.choices
                .iter()
                .map(|c| (c.label.as_str(), c.detail.as_str()))
                .collect()
        }
        match self {
            AnyPicker::Status(p) => (&p.title, rows(p), p.selected),
            AnyPicker::Priority(p) => (&p.title, rows(p), p.selected),
            AnyPicker::Member(p) => (&p.title, rows(p), p.selected),
            AnyPicker::Citation(p) => (&p.title, rows(p), p.selected),
            AnyPicker::Template(p) => (&p.title, rows(p), p.selected),
        }
    }
}
