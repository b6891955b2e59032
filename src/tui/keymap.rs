//! Keymaps: helix-style TOML files that map key sequences to [`Action`]s.
//!
//! A keymap has a `[global]` section and one section per pane (`[briefs]`,
//! `[assets]`, `[chat]`, `[approvals]`, `[team]`); a pane falls back to
//! `[global]` for keys it does not bind. Bindings are `KEY = "action"` or
//! `KEY = { action = "action", desc = "…" }`; nested tables are key
//! sequences (`[global.g] g = "goto_top"`), with `_desc` describing the
//! prefix in which-key popups. `inherits = "default"` starts from a shipped
//! keymap. See `keymaps/README.md` for the full format.

use std::fmt;
use std::path::Path;

use anyhow::{Context, bail};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use toml::de::{DeTable, DeValue};

use super::action::{Action, Pane};

/// The keymaps compiled into the binary, by name.
const SHIPPED: &[(&str, &str)] = &[
    ("default", include_str!("../../keymaps/default.toml")),
    ("arrows", include_str!("../../keymaps/arrows.toml")),
];

const SHIPPED_NAMES: &[&str] = &["default", "arrows"];

/// The name of the fallback section.
const GLOBAL: &str = "global";

/// The name of the section text inputs read their editing keys from.
const INPUT: &str = "input";

/// Where keys are looked up: a pane's section (falling back to `[global]`),
/// or `[input]`, the editing and list keys of every text input. `[input]`
/// has no fallback: a key it does not bind is typed as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Section {
    Pane(Pane),
    Input,
}

impl Section {
    pub fn name(self) -> &'static str {
        match self {
            Section::Pane(pane) => pane.name(),
            Section::Input => INPUT,
        }
    }

    fn falls_back_to_global(self) -> bool {
        matches!(self, Section::Pane(_))
    }
}

impl From<Pane> for Section {
    fn from(pane: Pane) -> Section {
        Section::Pane(pane)
    }
}

/// How many `inherits` hops are followed before giving up.
const MAX_INHERIT_DEPTH: usize = 8;

/// The reserved key describing a key-sequence prefix.
const PREFIX_DESC: &str = "_desc";

fn shipped_text(name: &str) -> Option<&'static str> {
    SHIPPED
        .iter()
        .find(|(shipped, _)| *shipped == name)
        .map(|(_, text)| *text)
}

/// One key press: a key code plus the Ctrl/Alt/Shift modifiers, normalized
/// so that a keymap entry and a crossterm event for the same key compare
/// equal (`G` is `Char('G')` without SHIFT, `S-tab` is `BackTab`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyChord {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

impl KeyChord {
    /// The chord for a terminal key event.
    pub fn from_event(ev: &KeyEvent) -> KeyChord {
        KeyChord::normalized(ev.code, ev.modifiers)
    }

    /// Parse helix key notation: `j`, `G`, `?`, `space`, `ret`, `C-s`,
    /// `A-x`, `S-tab`, `F5`, `C-A-x`, `minus`.
    pub fn parse(text: &str) -> Result<KeyChord, String> {
        if text.is_empty() {
            return Err("empty key".to_string());
        }
        let mut mods = KeyModifiers::NONE;
        let mut rest = text;
        loop {
            let bytes = rest.as_bytes();
            if bytes.len() <= 2 || bytes[1] != b'-' {
                break;
            }
            let modifier = match bytes[0] {
                b'C' => KeyModifiers::CONTROL,
                b'A' => KeyModifiers::ALT,
                b'S' => KeyModifiers::SHIFT,
                _ => break,
            };
            if mods.contains(modifier) {
                return Err(format!(
                    "key `{text}` repeats the modifier `{}-`",
                    char::from(bytes[0])
                ));
            }
            mods |= modifier;
            rest = &rest[2..];
        }

        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => {
                if c.is_control() {
                    return Err(format!(
                        "key `{}` is a control character; use a name like `ret` or `tab`",
                        text.escape_default()
                    ));
                }
                KeyCode::Char(c)
            }
            _ => named_key(rest).ok_or_else(|| unknown_key_message(text, rest))?,
        };

        if let KeyCode::Char(c) = code
            && mods.contains(KeyModifiers::SHIFT)
            && !c.is_alphabetic()
        {
            return Err(format!(
                "key `{text}`: `S-` only works with letters and named keys; \
                 write the shifted character itself (e.g. `?` rather than `S-/`)"
            ));
        }
        Ok(KeyChord::normalized(code, mods))
    }

    /// Bring a code and modifiers into the canonical form used for matching.
    fn normalized(code: KeyCode, mods: KeyModifiers) -> KeyChord {
        let mut mods = mods & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        let shift = mods.contains(KeyModifiers::SHIFT);
        let code = match code {
            KeyCode::Char(c) => {
                mods.remove(KeyModifiers::SHIFT);
                if shift && c.is_lowercase() {
                    let mut upper = c.to_uppercase();
                    match (upper.next(), upper.next()) {
                        (Some(u), None) => KeyCode::Char(u),
                        _ => KeyCode::Char(c),
                    }
                } else {
                    KeyCode::Char(c)
                }
            }
            KeyCode::BackTab => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            KeyCode::Tab if shift => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            other => other,
        };
        KeyChord { code, mods }
    }

    /// An ordering for listings: plain characters, then named keys, then
    /// function keys; fewer modifiers first.
    fn sort_key(&self) -> (u8, u8, u32) {
        let (class, rank) = match self.code {
            KeyCode::Char(c) => (0, u32::from(c)),
            KeyCode::F(n) => (2, u32::from(n)),
            other => (
                1,
                NAMED_KEYS
                    .iter()
                    .position(|(_, code)| *code == other)
                    .and_then(|i| u32::try_from(i).ok())
                    .unwrap_or(u32::MAX),
            ),
        };
        (self.mods.bits(), class, rank)
    }
}

/// Named keys, in the order listings show them. The first name of a code is
/// the one [`KeyChord`]'s `Display` writes.
const NAMED_KEYS: &[(&str, KeyCode)] = &[
    ("space", KeyCode::Char(' ')),
    ("minus", KeyCode::Char('-')),
    ("lt", KeyCode::Char('<')),
    ("gt", KeyCode::Char('>')),
    ("ret", KeyCode::Enter),
    ("enter", KeyCode::Enter),
    ("esc", KeyCode::Esc),
    ("escape", KeyCode::Esc),
    ("tab", KeyCode::Tab),
    ("backtab", KeyCode::BackTab),
    ("backspace", KeyCode::Backspace),
    ("del", KeyCode::Delete),
    ("delete", KeyCode::Delete),
    ("ins", KeyCode::Insert),
    ("insert", KeyCode::Insert),
    ("up", KeyCode::Up),
    ("down", KeyCode::Down),
    ("left", KeyCode::Left),
    ("right", KeyCode::Right),
    ("home", KeyCode::Home),
    ("end", KeyCode::End),
    ("pageup", KeyCode::PageUp),
    ("pagedown", KeyCode::PageDown),
];

fn named_key(name: &str) -> Option<KeyCode> {
    let lower = name.to_ascii_lowercase();
    if let Some((_, code)) = NAMED_KEYS.iter().find(|(n, _)| *n == lower) {
        return Some(*code);
    }
    let number = lower.strip_prefix('f')?;
    if number.starts_with('0') {
        return None;
    }
    match number.parse::<u8>() {
        Ok(n @ 1..=12) => Some(KeyCode::F(n)),
        _ => None,
    }
}

fn unknown_key_message(text: &str, rest: &str) -> String {
    let hint = if rest.len() > 1 && rest.as_bytes().get(1) == Some(&b'-') {
        " (modifiers are `C-`, `A-` and `S-`, in upper case)"
    } else {
        ""
    };
    format!(
        "unknown key `{text}`{hint}; use a single character or one of space, ret, esc, \
         tab, S-tab, backspace, del, ins, up, down, left, right, home, end, pageup, \
         pagedown, F1..F12, minus"
    )
}

impl fmt::Display for KeyChord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("C-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("A-")?;
        }
        if self.mods.contains(KeyModifiers::SHIFT) && self.code != KeyCode::BackTab {
            f.write_str("S-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char('-') if !self.mods.is_empty() => f.write_str("minus"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::BackTab => f.write_str("S-tab"),
            KeyCode::F(n) => write!(f, "F{n}"),
            other => match NAMED_KEYS.iter().find(|(_, code)| *code == other) {
                Some((name, _)) => f.write_str(name),
                None => write!(f, "{}", format!("{other:?}").to_lowercase()),
            },
        }
    }
}

/// Helix notation for a key sequence: chords separated by spaces (`g g`).
fn keys_text(keys: &[KeyChord]) -> String {
    keys.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

fn keys_sort_key(keys: &[KeyChord]) -> Vec<(u8, u8, u32)> {
    keys.iter().map(KeyChord::sort_key).collect()
}

/// Whether one sequence is a prefix of (or equal to) the other, so the two
/// cannot both be bound in one section.
fn overlaps(a: &[KeyChord], b: &[KeyChord]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// One key sequence bound to an action in one section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub keys: Vec<KeyChord>,
    pub action: Action,
    /// The binding's `desc`, or [`Action::help`].
    pub desc: String,
    /// `"global"` or a pane name.
    pub section: String,
    /// 1-based line in the file that defined the binding (for inherited
    /// bindings, the line in the inherited keymap).
    pub line: usize,
}

impl Binding {
    /// The keys in helix notation, e.g. `g g`.
    pub fn keys_text(&self) -> String {
        keys_text(&self.keys)
    }
}

/// The description of a key-sequence prefix (`_desc`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct PrefixDesc {
    section: String,
    keys: Vec<KeyChord>,
    desc: String,
}

/// What the keys typed so far mean in a pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The sequence is complete.
    Action(Action),
    /// The sequence continues: the possible next keys (helix notation) with
    /// the action's description or the nested prefix's `_desc`.
    Prefix(Vec<(String, String)>),
    /// Nothing is bound to these keys.
    Unbound,
}

/// A loaded keymap.
#[derive(Debug, Clone)]
pub struct Keymap {
    name: String,
    bindings: Vec<Binding>,
    prefixes: Vec<PrefixDesc>,
}

impl Keymap {
    /// Load keymap `name`: `USER_DIR/NAME.toml` if it exists, otherwise the
    /// shipped keymap of that name.
    pub fn load(name: &str, user_dir: Option<&Path>) -> anyhow::Result<Keymap> {
        if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\']) {
            bail!("invalid keymap name `{name}`");
        }
        if let Some(dir) = user_dir {
            let path = dir.join(format!("{name}.toml"));
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    return Keymap::build(name, &text, &path.display().to_string(), 0);
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    return Err(err).with_context(|| format!("reading keymap {}", path.display()));
                }
            }
        }
        match shipped_text(name) {
            Some(text) => Keymap::from_toml(name, text),
            None => {
                let place = match user_dir {
                    Some(dir) => format!(" and no {name}.toml in {}", dir.display()),
                    None => String::new(),
                };
                bail!(
                    "no keymap named `{name}` (shipped: {}){place}",
                    SHIPPED_NAMES.join(", ")
                )
            }
        }
    }

    /// Build a keymap from TOML text. Fails on the first problem
    /// [`check`] would report.
    pub fn from_toml(name: &str, text: &str) -> anyhow::Result<Keymap> {
        Keymap::build(name, text, &format!("keymap `{name}`"), 0)
    }

    fn build(name: &str, text: &str, origin: &str, depth: usize) -> anyhow::Result<Keymap> {
        let (parsed, problems) = parse_text(text);
        if let Some(first) = problems.first() {
            let more = match problems.len() {
                1 => String::new(),
                n => format!(" (and {} more; see `spoke keymap check`)", n - 1),
            };
            bail!("{origin}, line {}: {}{more}", first.line, first.message);
        }
        let mut keymap = Keymap {
            name: name.to_string(),
            bindings: Vec::new(),
            prefixes: Vec::new(),
        };
        if let Some(parent) = &parsed.inherits {
            if depth >= MAX_INHERIT_DEPTH {
                bail!("{origin}: `inherits` nests more than {MAX_INHERIT_DEPTH} deep");
            }
            let Some(parent_text) = shipped_text(parent) else {
                bail!("{origin}: no shipped keymap named `{parent}` to inherit");
            };
            let base = Keymap::build(
                parent,
                parent_text,
                &format!("keymap `{parent}`"),
                depth + 1,
            )
            .with_context(|| format!("{origin} inherits `{parent}`"))?;
            keymap.bindings = base.bindings;
            keymap.prefixes = base.prefixes;
        }
        keymap.merge(parsed);
        Ok(keymap)
    }

    /// Lay `child` over this keymap: a child binding replaces inherited
    /// bindings of its section that it equals or overlaps as a prefix.
    fn merge(&mut self, child: Parsed) {
        self.bindings.retain(|old| {
            !child
                .bindings
                .iter()
                .any(|new| new.section == old.section && overlaps(&new.keys, &old.keys))
        });
        self.bindings.extend(child.bindings);
        self.prefixes.retain(|old| {
            !child
                .prefixes
                .iter()
                .any(|new| new.section == old.section && new.keys == old.keys)
        });
        self.prefixes.extend(child.prefixes);
    }

    /// What `pending` (the keys typed so far, at least one) means in `pane`:
    /// the pane's section first, then `[global]`.
    pub fn lookup(&self, section: impl Into<Section>, pending: &[KeyChord]) -> Lookup {
        let pane = section.into();
        if pending.is_empty() {
            return Lookup::Unbound;
        }
        let effective = self.bindings_for(pane);
        if let Some(binding) = effective.iter().find(|b| b.keys == pending) {
            return Lookup::Action(binding.action);
        }
        let depth = pending.len();
        let mut next: Vec<(KeyChord, String)> = Vec::new();
        for binding in &effective {
            if binding.keys.len() <= depth || !binding.keys.starts_with(pending) {
                continue;
            }
            let key = binding.keys[depth];
            if next.iter().any(|(seen, _)| *seen == key) {
                continue;
            }
            let desc = if binding.keys.len() == depth + 1 {
                binding.desc.clone()
            } else {
                self.prefix_desc(pane, &binding.keys[..=depth], &effective)
            };
            next.push((key, desc));
        }
        if next.is_empty() {
            return Lookup::Unbound;
        }
        next.sort_by_key(|(key, _)| key.sort_key());
        Lookup::Prefix(
            next.into_iter()
                .map(|(key, desc)| (key.to_string(), desc))
                .collect(),
        )
    }

    /// The description of the prefix `keys` in `pane`: its `_desc` (pane
    /// section first), else a summary of the actions under it.
    fn prefix_desc(&self, pane: Section, keys: &[KeyChord], effective: &[&Binding]) -> String {
        for section in [pane.name(), GLOBAL] {
            if let Some(prefix) = self
                .prefixes
                .iter()
                .find(|p| p.section == section && p.keys == keys)
            {
                return prefix.desc.clone();
            }
        }
        let names: Vec<&str> = effective
            .iter()
            .filter(|b| b.keys.len() > keys.len() && b.keys.starts_with(keys))
            .map(|b| b.action.name())
            .collect();
        match names.as_slice() {
            [] => String::from("…"),
            [one] => format!("{one}…"),
            [a, b] => format!("{a}, {b}…"),
            [a, b, c, ..] => format!("{a}, {b}, {c}…"),
        }
    }

    /// The bindings in effect in `pane`: the pane's own section, then the
    /// `[global]` bindings it does not override (a pane binding overrides a
    /// global one with the same keys or one that it is a prefix of or that
    /// is a prefix of it). Sorted by section (pane first), then keys.
    pub fn bindings_for(&self, section: impl Into<Section>) -> Vec<&Binding> {
        let pane = section.into();
        let mut own: Vec<&Binding> = self
            .bindings
            .iter()
            .filter(|b| b.section == pane.name())
            .collect();
        own.sort_by_key(|b| keys_sort_key(&b.keys));
        let mut global: Vec<&Binding> = self
            .bindings
            .iter()
            .filter(|b| {
                pane.falls_back_to_global()
                    && b.section == GLOBAL
                    && !own.iter().any(|o| overlaps(&o.keys, &b.keys))
            })
            .collect();
        global.sort_by_key(|b| keys_sort_key(&b.keys));
        own.extend(global);
        own
    }

    /// Every binding of every section, inherited ones first, in file order.
    pub fn all_bindings(&self) -> &[Binding] {
        &self.bindings
    }

    /// The keys that run `action` in `pane`, e.g. `g g`, for hints: the
    /// shortest sequence, preferring the pane's section, then file order.
    pub fn keys_for(&self, section: impl Into<Section>, action: Action) -> Option<String> {
        let pane = section.into();
        let effective = self.bindings_for(pane);
        self.bindings
            .iter()
            .enumerate()
            .filter(|(_, b)| b.action == action)
            .filter(|(_, b)| effective.iter().any(|e| std::ptr::eq(*e, *b)))
            .min_by_key(|(index, b)| (b.keys.len(), b.section != pane.name(), *index))
            .map(|(_, b)| b.keys_text())
    }

    /// The keymap's name (`default`, `arrows`, or a user file's stem).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The names of the keymaps compiled into Spoke.
    pub fn shipped_names() -> &'static [&'static str] {
        SHIPPED_NAMES
    }
}

/// A problem in a keymap file, for `spoke keymap check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line number.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Every problem in a keymap file, sorted by line: TOML syntax errors,
/// unknown sections and actions, unparsable keys, malformed bindings, and
/// conflicts (the same keys bound twice in a section, or a key bound to an
/// action that also starts a sequence in the same section).
pub fn check(text: &str) -> Vec<Problem> {
    parse_text(text).1
}

/// A keymap file's own content, before inheritance.
#[derive(Debug, Default)]
struct Parsed {
    inherits: Option<String>,
    bindings: Vec<Binding>,
    prefixes: Vec<PrefixDesc>,
}

/// Turns byte offsets into 1-based line numbers.
struct Lines {
    starts: Vec<usize>,
}

impl Lines {
    fn new(text: &str) -> Lines {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        Lines { starts }
    }

    fn line(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(index) => index + 1,
            Err(index) => index,
        }
    }
}

struct Parser {
    lines: Lines,
    parsed: Parsed,
    problems: Vec<Problem>,
}

fn parse_text(text: &str) -> (Parsed, Vec<Problem>) {
    let mut parser = Parser {
        lines: Lines::new(text),
        parsed: Parsed::default(),
        problems: Vec::new(),
    };
    let (document, errors) = DeTable::parse_recoverable(text);
    for error in errors {
        let span = error.span();
        let line = span
            .as_ref()
            .map_or(1, |span| parser.lines.line(span.start));
        let at = span
            .and_then(|span| text.get(span))
            .map(str::trim)
            .filter(|snippet| !snippet.is_empty() && snippet.len() <= 40 && !snippet.contains('\n'))
            .map(|snippet| format!(" at `{snippet}`"))
            .unwrap_or_default();
        parser.problem(
            line,
            format!("invalid TOML: {}{at}", error.message().trim()),
        );
    }
    // Past a syntax error the recovered document is a guess: keep only the
    // syntax error on its line, not the follow-on noise.
    let syntax_lines: Vec<usize> = parser.problems.iter().map(|p| p.line).collect();
    let syntax_count = syntax_lines.len();
    parser.document(document.get_ref());
    parser.conflicts();
    let Parser {
        mut parsed,
        mut problems,
        ..
    } = parser;
    let mut index = 0;
    problems.retain(|p| {
        index += 1;
        index <= syntax_count || !syntax_lines.contains(&p.line)
    });
    problems.sort_by_key(|p| p.line);
    parsed.bindings.sort_by_key(|b| b.line);
    (parsed, problems)
}

impl Parser {
    fn problem(&mut self, line: usize, message: String) {
        self.problems.push(Problem { line, message });
    }

    fn document(&mut self, document: &DeTable<'_>) {
        for (key, value) in document.iter() {
            let name: &str = key.get_ref();
            let line = self.lines.line(key.span().start);
            if name == "inherits" {
                match value.get_ref() {
                    DeValue::String(parent) if shipped_text(parent).is_some() => {
                        self.parsed.inherits = Some(parent.to_string());
                    }
                    DeValue::String(parent) => self.problem(
                        line,
                        format!(
                            "`inherits` names `{parent}`, which is not a shipped keymap ({})",
                            SHIPPED_NAMES.join(", ")
                        ),
                    ),
                    other => self.problem(
                        line,
                        format!(
                            "`inherits` must be a string naming a shipped keymap, not {}",
                            other.type_str()
                        ),
                    ),
                }
                continue;
            }
            if name != GLOBAL && name != INPUT && Pane::parse(name).is_none() {
                let panes: Vec<&str> = Pane::ALL.iter().map(|p| p.name()).collect();
                self.problem(
                    line,
                    format!(
                        "unknown section `{name}` (expected `inherits`, `global`, `input`, {})",
                        panes.join(", ")
                    ),
                );
                continue;
            }
            match value.get_ref() {
                DeValue::Table(table) => self.table(name, &[], table),
                other => self.problem(
                    line,
                    format!(
                        "`{name}` must be a table of key bindings (`[{name}]`), not {}",
                        other.type_str()
                    ),
                ),
            }
        }
    }

    /// The bindings of `section` under the key sequence `prefix`.
    fn table(&mut self, section: &str, prefix: &[KeyChord], table: &DeTable<'_>) {
        for (key, value) in table.iter() {
            let name: &str = key.get_ref();
            let key_line = self.lines.line(key.span().start);
            let value_line = self.lines.line(value.span().start);
            if name == PREFIX_DESC {
                if prefix.is_empty() {
                    self.problem(
                        key_line,
                        format!(
                            "`{PREFIX_DESC}` describes a key sequence table; [{section}] is a section"
                        ),
                    );
                    continue;
                }
                match value.get_ref() {
                    DeValue::String(desc) => self.parsed.prefixes.push(PrefixDesc {
                        section: section.to_string(),
                        keys: prefix.to_vec(),
                        desc: desc.to_string(),
                    }),
                    other => self.problem(
                        value_line,
                        format!("`{PREFIX_DESC}` must be a string, not {}", other.type_str()),
                    ),
                }
                continue;
            }
            let chord = match KeyChord::parse(name) {
                Ok(chord) => chord,
                Err(err) => {
                    let hint = if !prefix.is_empty() && name == "desc" {
                        format!(
                            "; to describe the prefix `{}` use `{PREFIX_DESC}`, or add `action` to make it a binding",
                            keys_text(prefix)
                        )
                    } else {
                        String::new()
                    };
                    self.problem(key_line, format!("[{section}] {err}{hint}"));
                    continue;
                }
            };
            let mut keys = prefix.to_vec();
            keys.push(chord);
            match value.get_ref() {
                DeValue::String(action) => {
                    self.binding(section, keys, action, value_line, None);
                }
                DeValue::Table(inner) if inner.iter().any(|(k, _)| k.get_ref() == "action") => {
                    self.leaf(section, keys, inner);
                }
                DeValue::Table(inner) => {
                    if inner.iter().all(|(k, _)| k.get_ref() == PREFIX_DESC) {
                        self.problem(
                            key_line,
                            format!(
                                "`{}` in [{section}] is an empty key sequence; give it keys or an `action`",
                                keys_text(&keys)
                            ),
                        );
                    }
                    self.table(section, &keys, inner);
                }
                other => self.problem(
                    value_line,
                    format!(
                        "the binding for `{}` in [{section}] must be an action name or a table, not {}",
                        keys_text(&keys),
                        other.type_str()
                    ),
                ),
            }
        }
    }

    /// A `{ action = "…", desc = "…" }` binding.
    fn leaf(&mut self, section: &str, keys: Vec<KeyChord>, table: &DeTable<'_>) {
        let mut action = None;
        let mut desc = None;
        let mut ok = true;
        for (field, value) in table.iter() {
            let name: &str = field.get_ref();
            let line = self.lines.line(value.span().start);
            match (name, value.get_ref()) {
                ("action", DeValue::String(text)) => action = Some((text.to_string(), line)),
                ("desc", DeValue::String(text)) => desc = Some(text.to_string()),
                ("action" | "desc", other) => {
                    ok = false;
                    self.problem(
                        line,
                        format!("`{name}` must be a string, not {}", other.type_str()),
                    );
                }
                _ => {
                    ok = false;
                    self.problem(
                        self.lines.line(field.span().start),
                        format!(
                            "unexpected `{name}` in the binding for `{}` in [{section}] (a binding has `action` and an optional `desc`)",
                            keys_text(&keys)
                        ),
                    );
                }
            }
        }
        if let (true, Some((action, line))) = (ok, action) {
            self.binding(section, keys, &action, line, desc);
        }
    }

    fn binding(
        &mut self,
        section: &str,
        keys: Vec<KeyChord>,
        action: &str,
        line: usize,
        desc: Option<String>,
    ) {
        let Some(found) = Action::from_name(action) else {
            self.problem(
                line,
                format!(
                    "unknown action `{action}` for `{}` in [{section}]",
                    keys_text(&keys)
                ),
            );
            return;
        };
        self.parsed.bindings.push(Binding {
            keys,
            action: found,
            desc: desc.unwrap_or_else(|| found.help().to_string()),
            section: section.to_string(),
            line,
        });
    }

    /// Report keys bound twice in a section, and keys bound to an action
    /// that also start a longer sequence in the same section. Each conflict
    /// is reported on the line of its later definition.
    fn conflicts(&mut self) {
        let mut bindings = self.parsed.bindings.clone();
        bindings.sort_by_key(|b| b.line);
        let mut found = Vec::new();
        for (i, later) in bindings.iter().enumerate() {
            let same = bindings[..i]
                .iter()
                .find(|earlier| earlier.section == later.section && earlier.keys == later.keys);
            if let Some(earlier) = same {
                found.push(Problem {
                    line: later.line,
                    message: format!(
                        "`{}` is bound twice in [{}]: to `{}` on line {} and to `{}` here",
                        later.keys_text(),
                        later.section,
                        earlier.action,
                        earlier.line,
                        later.action
                    ),
                });
            }
        }
        for short in &bindings {
            let longer = bindings.iter().find(|b| {
                b.section == short.section
                    && b.keys.len() > short.keys.len()
                    && b.keys.starts_with(&short.keys)
            });
            if let Some(long) = longer {
                found.push(Problem {
                    line: short.line.max(long.line),
                    message: format!(
                        "`{}` is bound to `{}` on line {} in [{}] but also starts the sequence `{}` on line {}",
                        short.keys_text(),
                        short.action,
                        short.line,
                        short.section,
                        long.keys_text(),
                        long.line
                    ),
                });
            }
        }
        self.problems.extend(found);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyEventKind, KeyEventState};

    fn key(text: &str) -> KeyChord {
        KeyChord::parse(text).unwrap()
    }

    fn keys(text: &str) -> Vec<KeyChord> {
        text.split_whitespace().map(key).collect()
    }

    fn event(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent {
            code,
            modifiers: mods,
            kind: KeyEventKind::Press,
            state: KeyEventState::NONE,
        }
    }

    #[test]
    fn shipped_keymaps_load_and_pass_check() {
        assert_eq!(Keymap::shipped_names(), &["default", "arrows"]);
        for name in Keymap::shipped_names() {
            let text = shipped_text(name).unwrap();
            assert_eq!(check(text), vec![], "problems in shipped keymap {name}");
            let keymap = Keymap::load(name, None).unwrap();
            assert_eq!(keymap.name(), *name);
            assert!(!keymap.all_bindings().is_empty());
        }
    }

    #[test]
    fn every_action_is_reachable_in_every_shipped_keymap() {
        for name in Keymap::shipped_names() {
            let keymap = Keymap::load(name, None).unwrap();
            for action in Action::ALL {
                let reachable = Pane::ALL
                    .iter()
                    .map(|pane| Section::Pane(*pane))
                    .chain([Section::Input])
                    .any(|section| keymap.keys_for(section, *action).is_some());
                assert!(reachable, "`{action}` is not bound in keymap {name}");
            }
        }
    }

    #[test]
    fn shipped_default_has_the_documented_keys() {
        let keymap = Keymap::load("default", None).unwrap();
        let briefs = Pane::Briefs;
        for (k, action) in [
            ("q", Action::Quit),
            ("?", Action::Help),
            (":", Action::Palette),
            ("tab", Action::NextPane),
            ("S-tab", Action::PrevPane),
            ("3", Action::ShowChat),
            ("C-d", Action::PageDown),
            ("G", Action::GotoBottom),
            ("ret", Action::Confirm),
            ("C-r", Action::Refresh),
            ("S", Action::StatusNext),
            ("+", Action::PriorityUp),
            ("-", Action::PriorityDown),
            ("=", Action::ToggleGroup),
            ("i", Action::Generate),
        ] {
            assert_eq!(
                keymap.lookup(briefs, &keys(k)),
                Lookup::Action(action),
                "{k}"
            );
        }
        assert_eq!(
            keymap.keys_for(briefs, Action::GotoTop).as_deref(),
            Some("home")
        );
        assert_eq!(
            keymap.keys_for(briefs, Action::MoveDown).as_deref(),
            Some("j")
        );
        assert_eq!(
            keymap.keys_for(briefs, Action::SetStatus).as_deref(),
            Some("s")
        );
        // Brief-only keys do not leak into other panes.
        assert_eq!(keymap.lookup(Pane::Team, &keys("s")), Lookup::Unbound);
    }

    #[test]
    fn key_notation_round_trips() {
        for text in [
            "C-s",
            "A-x",
            "S-tab",
            "space",
            "ret",
            "G",
            "F5",
            "j",
            "?",
            "/",
            ":",
            "esc",
            "backspace",
            "del",
            "pageup",
            "pagedown",
            "home",
            "end",
            "F12",
            "C-A-x",
            "S-up",
            "C-minus",
            "-",
            "+",
            "A-1",
            "C-G",
        ] {
            let chord = KeyChord::parse(text).unwrap();
            assert_eq!(chord.to_string(), text, "display of {text}");
            assert_eq!(KeyChord::parse(&chord.to_string()), Ok(chord), "{text}");
        }
        assert_eq!(key("backtab"), key("S-tab"));
        assert_eq!(key("enter"), key("ret"));
        assert_eq!(key("minus"), key("-"));
        assert_eq!(key("S-g"), key("G"));
        assert_eq!(key("C-s").code, KeyCode::Char('s'));
        assert_eq!(key("C-s").mods, KeyModifiers::CONTROL);
        assert_eq!(key("space").code, KeyCode::Char(' '));
        assert_eq!(key("F5").code, KeyCode::F(5));
        for bad in [
            "", "C-", "foo", "F13", "F0", "c-x", "C-C-x", "S-1", "ctrl-x",
        ] {
            assert!(KeyChord::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn events_normalize_to_keymap_chords() {
        let shifted_g = event(KeyCode::Char('G'), KeyModifiers::SHIFT);
        assert_eq!(KeyChord::from_event(&shifted_g), key("G"));
        let shifted_q = event(KeyCode::Char('?'), KeyModifiers::SHIFT);
        assert_eq!(KeyChord::from_event(&shifted_q), key("?"));
        let backtab = event(KeyCode::BackTab, KeyModifiers::SHIFT);
        assert_eq!(KeyChord::from_event(&backtab), key("S-tab"));
        let ctrl_s = event(KeyCode::Char('s'), KeyModifiers::CONTROL);
        assert_eq!(KeyChord::from_event(&ctrl_s), key("C-s"));
        let plain = event(KeyCode::Char('g'), KeyModifiers::NONE);
        assert_ne!(KeyChord::from_event(&plain), key("G"));

        let keymap = Keymap::load("default", None).unwrap();
        assert_eq!(
            keymap.lookup(Pane::Briefs, &[KeyChord::from_event(&shifted_g)]),
            Lookup::Action(Action::GotoBottom)
        );
    }

    #[test]
    fn sequences_give_a_prefix_then_the_action() {
        let text = r#"
[global]
j = "move_down"

[global.g]
_desc = "goto…"
g = { action = "goto_top", desc = "Go to top" }
e = "goto_bottom"

[global.z]
z = { x = "refresh" }
"#;
        let keymap = Keymap::from_toml("seq", text).unwrap();
        assert_eq!(
            keymap.lookup(Pane::Chat, &keys("g")),
            Lookup::Prefix(vec![
                ("e".to_string(), Action::GotoBottom.help().to_string()),
                ("g".to_string(), "Go to top".to_string()),
            ])
        );
        assert_eq!(
            keymap.lookup(Pane::Chat, &keys("g g")),
            Lookup::Action(Action::GotoTop)
        );
        assert_eq!(keymap.lookup(Pane::Chat, &keys("g x")), Lookup::Unbound);
        assert_eq!(keymap.lookup(Pane::Chat, &[]), Lookup::Unbound);
        // A nested prefix without `_desc` is summarized.
        assert_eq!(
            keymap.lookup(Pane::Chat, &keys("z")),
            Lookup::Prefix(vec![("z".to_string(), "refresh…".to_string())])
        );
        assert_eq!(
            keymap.keys_for(Pane::Chat, Action::GotoTop).as_deref(),
            Some("g g")
        );
        assert_eq!(
            keymap.keys_for(Pane::Chat, Action::Refresh).as_deref(),
            Some("z z x")
        );

        // The prefix's `_desc` shows one level up.
        let text = "[global.space]\n_desc = \"window\"\nw = { t = \"next_pane\" }\n";
        let keymap = Keymap::from_toml("nested", text).unwrap();
        assert_eq!(
            keymap.lookup(Pane::Team, &keys("space")),
            Lookup::Prefix(vec![("w".to_string(), "next_pane…".to_string())])
        );
        let text = "[global.x]\nspace = { _desc = \"window\", t = \"next_pane\" }\n";
        let keymap = Keymap::from_toml("inline", text).unwrap();
        assert_eq!(
            keymap.lookup(Pane::Team, &keys("x")),
            Lookup::Prefix(vec![("space".to_string(), "window".to_string())])
        );
        assert_eq!(
            keymap.lookup(Pane::Team, &keys("x space t")),
            Lookup::Action(Action::NextPane)
        );
    }

    #[test]
    fn pane_sections_override_and_fall_back_to_global() {
        let text = r#"
[global]
j = "move_down"
d = "page_down"
g = { g = "goto_top", e = "goto_bottom" }

[briefs]
d = "toggle_detail"
g = "comment"

[team.g]
t = "next_pane"
"#;
        let keymap = Keymap::from_toml("panes", text).unwrap();
        // Override.
        assert_eq!(
            keymap.lookup(Pane::Briefs, &keys("d")),
            Lookup::Action(Action::ToggleDetail)
        );
        assert_eq!(
            keymap.lookup(Pane::Assets, &keys("d")),
            Lookup::Action(Action::PageDown)
        );
        // Fallback.
        assert_eq!(
            keymap.lookup(Pane::Briefs, &keys("j")),
            Lookup::Action(Action::MoveDown)
        );
        // A pane key shadows global sequences it prefixes.
        assert_eq!(
            keymap.lookup(Pane::Briefs, &keys("g")),
            Lookup::Action(Action::Comment)
        );
        assert_eq!(keymap.keys_for(Pane::Briefs, Action::GotoTop), None);
        // Pane and global sequences under the same prefix merge.
        let Lookup::Prefix(next) = keymap.lookup(Pane::Team, &keys("g")) else {
            panic!("expected a prefix");
        };
        let next: Vec<&str> = next.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(next, ["e", "g", "t"]);

        let briefs: Vec<(String, &str)> = keymap
            .bindings_for(Pane::Briefs)
            .iter()
            .map(|b| (b.keys_text(), b.section.as_str()))
            .collect();
        assert_eq!(
            briefs,
            [
                ("d".to_string(), "briefs"),
                ("g".to_string(), "briefs"),
                ("j".to_string(), "global"),
            ]
        );
        assert_eq!(keymap.all_bindings().len(), 7);
    }

    #[test]
    fn check_reports_problems_with_their_lines() {
        let text = "\
[global]
j = \"move_down\"
k = \"fly\"
ret = \"confirm\"
enter = \"cancel\"

[briefs]
G = \"goto_bottom\"
S-g = { g = \"goto_top\" }
x = { action = \"clear_marks\", desc = \"Clear\" }
C-Q-x = \"quit\"

[sidebar]
j = \"move_down\"
";
        let problems = check(text);
        let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [3, 5, 9, 11, 13], "{problems:#?}");
        assert!(
            problems[0].message.contains("unknown action `fly`"),
            "{}",
            problems[0].message
        );
        assert!(
            problems[1].message.contains("`ret` is bound twice"),
            "{}",
            problems[1].message
        );
        assert!(
            problems[1].message.contains("line 4"),
            "{}",
            problems[1].message
        );
        assert!(
            problems[2]
                .message
                .contains("also starts the sequence `G g`"),
            "{}",
            problems[2].message
        );
        assert!(
            problems[3].message.contains("C-Q-x"),
            "{}",
            problems[3].message
        );
        assert!(
            problems[4].message.contains("unknown section `sidebar`"),
            "{}",
            problems[4].message
        );

        let err = Keymap::from_toml("bad", text).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("unknown action `fly`"), "{err}");
        assert!(err.contains("4 more"), "{err}");
    }

    #[test]
    fn check_reports_malformed_files() {
        let problems = check("[global]\nj = \"move_down\"\nj = \"move_up\"\n");
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert_eq!(problems[0].line, 3);
        assert!(problems[0].message.starts_with("invalid TOML"));

        let problems = check(
            "inherits = \"emacs\"\nglobal = 3\n[chat]\nq = 5\nw = { action = \"quit\", when = \"x\" }\n",
        );
        let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [1, 2, 4, 5], "{problems:#?}");

        let problems = check("[global.g]\n_desc = \"goto\"\n");
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert_eq!(problems[0].line, 1);

        let problems = check("[global.g]\ndesc = \"goto\"\ng = \"goto_top\"\n");
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert_eq!(problems[0].line, 2);
        assert!(problems[0].message.contains("_desc"));

        // Never panics on odd input.
        for text in [
            "",
            "[",
            "= =",
            "[global]\n\"\" = \"quit\"",
            "[global]\n\"\\u0001\" = \"quit\"",
            "[[global]]\nq = \"quit\"",
        ] {
            let _ = check(text);
            let _ = Keymap::from_toml("odd", text);
        }
        assert!(
            Keymap::from_toml("empty", "")
                .unwrap()
                .all_bindings()
                .is_empty()
        );
    }

    #[test]
    fn user_keymaps_override_shipped_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("default.toml"), "[global]\nq = \"help\"\n").unwrap();
        let keymap = Keymap::load("default", Some(dir.path())).unwrap();
        assert_eq!(keymap.name(), "default");
        assert_eq!(
            keymap.lookup(Pane::Briefs, &keys("q")),
            Lookup::Action(Action::Help)
        );
        assert_eq!(keymap.lookup(Pane::Briefs, &keys("j")), Lookup::Unbound);

        // Names not in the user dir still come from the shipped keymaps.
        let arrows = Keymap::load("arrows", Some(dir.path())).unwrap();
        assert_eq!(
            arrows.lookup(Pane::Briefs, &keys("C-q")),
            Lookup::Action(Action::Quit)
        );

        // A user-only keymap.
        std::fs::write(
            dir.path().join("mine.toml"),
            "inherits = \"arrows\"\n[global]\nF10 = \"quit\"\n",
        )
        .unwrap();
        let mine = Keymap::load("mine", Some(dir.path())).unwrap();
        assert_eq!(
            mine.lookup(Pane::Chat, &keys("F10")),
            Lookup::Action(Action::Quit)
        );
        assert_eq!(
            mine.lookup(Pane::Chat, &keys("C-q")),
            Lookup::Action(Action::Quit)
        );

        // Errors in a user file name the file and line.
        std::fs::write(dir.path().join("broken.toml"), "[global]\n\nq = \"exit\"\n").unwrap();
        let err = Keymap::load("broken", Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("broken.toml, line 3"), "{err}");

        assert!(Keymap::load("nope", Some(dir.path())).is_err());
        assert!(Keymap::load("../default", Some(dir.path())).is_err());
        assert!(Keymap::load("nope", None).is_err());
    }

    #[test]
    fn inherits_starts_from_a_shipped_keymap() {
        let text = r#"
inherits = "default"

[global]
q = "help"
g = "refresh"

[briefs]
w = "snooze"
"#;
        let keymap = Keymap::from_toml("mine", text).unwrap();
        assert_eq!(
            keymap.lookup(Pane::Briefs, &keys("q")),
            Lookup::Action(Action::Help)
        );
        assert_eq!(
            keymap.lookup(Pane::Briefs, &keys("j")),
            Lookup::Action(Action::MoveDown)
        );
        assert_eq!(
            keymap.lookup(Pane::Briefs, &keys("w")),
            Lookup::Action(Action::Snooze)
        );
        // Inherited pane bindings stay.
        assert_eq!(
            keymap.lookup(Pane::Briefs, &keys("z")),
            Lookup::Action(Action::Snooze)
        );
        // `g` replaces the inherited `g …` sequences.
        assert_eq!(
            keymap.lookup(Pane::Assets, &keys("g")),
            Lookup::Action(Action::Refresh)
        );
        assert_eq!(
            keymap
                .all_bindings()
                .iter()
                .filter(|b| b.keys.len() > 1)
                .count(),
            0
        );
        // Still only one binding per key and section.
        for section in ["global", "briefs"] {
            let mut seen = Vec::new();
            for b in keymap
                .all_bindings()
                .iter()
                .filter(|b| b.section == section)
            {
                assert!(!seen.contains(&b.keys), "{} twice", b.keys_text());
                seen.push(b.keys.clone());
            }
        }
        assert!(check("inherits = \"default\"\n").is_empty());
    }
}
