//! Colour themes for the TUI: TOML files that map dotted style keys to ratatui [`Style`]s.
//!
//! A theme is looked up by name: a user file `NAME.toml` in the user theme
//! folder (e.g. `~/.config/spoke/themes/`) wins over a shipped theme of the
//! same name; the shipped themes (`default-dark`, `default-light`, `ansi16`)
//! are compiled in from `themes/`.
//!
//! # Format
//!
//! ```toml
//! inherits = "default-dark"          # optional: start from another theme
//!
//! [palette]                          # optional: named colours
//! blue = "#0a84ff"
//! warn = "yellow"
//!
//! "ui.text" = "white"                # shorthand: foreground only
//! "queue.priority.p0" = { fg = "red", bg = "reset", modifiers = ["bold"] }
//!
//! [queue.status]                     # nested tables flatten to dotted keys
//! fg = "gray"                        # fields of `queue.status` itself
//! draft = { fg = "blue", modifiers = ["italic"] }   # `queue.status.draft`
//! ```
//!
//! * A style is either a colour (shorthand for `{ fg = ... }`) or a table with
//!   any of `fg`, `bg` and `modifiers`; every other key of a table is a child
//!   style key, so `fg`, `bg` and `modifiers` cannot be key segments, and
//!   `inherits` and `palette` are reserved at the top level.
//! * An omitted `fg`/`bg` leaves whatever is underneath untouched; `reset`
//!   forces the terminal's own foreground/background.
//! * Colours: a palette name, `#rrggbb` (or `#rgb`), one of the 16 ANSI names
//!   (`black red green yellow blue magenta cyan gray darkgray lightred
//!   lightgreen lightyellow lightblue lightmagenta lightcyan white`; case,
//!   `_`/`-` and `grey` are tolerated), an xterm index `"idx:208"` or integer
//!   `0`-`255`, or `reset`. Palette names shadow ANSI names; palette values
//!   must be literal colours (not other palette names).
//! * Modifiers: `bold dim italic underlined reversed crossed_out`.
//! * `inherits` merges the parent's entries and palette, the child overriding
//!   per key and per palette name. Palette names are resolved after merging,
//!   so re-defining a palette colour in a child re-colours every inherited
//!   entry that uses it. A theme inheriting its own name (a user
//!   `default-dark.toml` with `inherits = "default-dark"`) gets the shipped
//!   theme of that name. Cycles are an error naming the chain.
//!
//! # Lookup
//!
//! [`Theme::style`]`("queue.priority.p0")` returns the entry for that key,
//! else `queue.priority`, else `queue`, else [`Style::default`]. The most
//! specific existing entry wins *entirely*: there is no field-by-field merge
//! with less specific entries.
//!
//! # Colour depth
//!
//! RGB and indexed colours are converted for the terminal's [`ColorDepth`]:
//! to the nearest xterm-256 colour (6x6x6 cube or gray ramp) or the nearest
//! of the 16 ANSI colours. A theme is never refused because of the depth.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, anyhow, bail};
use ratatui::style::{Color, Modifier, Style};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Shipped themes, in the order [`Theme::shipped_names`] lists them.
const SHIPPED: &[(&str, &str)] = &[
    (
        "default-dark",
        include_str!("../../themes/default-dark.toml"),
    ),
    (
        "default-light",
        include_str!("../../themes/default-light.toml"),
    ),
    ("ansi16", include_str!("../../themes/ansi16.toml")),
];

const SHIPPED_NAMES: &[&str] = &["default-dark", "default-light", "ansi16"];

/// Every style key the UI asks for. Each shipped theme defines all of them.
pub const STYLE_KEYS: &[&str] = &[
    "ui.text",
    "ui.text.dim",
    "ui.border",
    "ui.border.focus",
    "ui.title",
    "ui.tab",
    "ui.tab.active",
    "ui.tab.badge",
    "ui.statusbar",
    "ui.statusbar.online",
    "ui.statusbar.offline",
    "ui.statusbar.pending",
    "ui.selection",
    "ui.marked",
    "ui.popup",
    "ui.popup.title",
    "ui.help.key",
    "ui.help.desc",
    "ui.help.section",
    "ui.input",
    "ui.match",
    "queue.header",
    "queue.priority.p0",
    "queue.priority.p1",
    "queue.priority.p2",
    "queue.priority.p3",
    "queue.status",
    "queue.status.draft",
    "queue.status.intake",
    "queue.status.ready",
    "queue.status.in_progress",
    "queue.status.in_review",
    "queue.status.approved",
    "queue.status.delivered",
    "queue.status.on_hold",
    "queue.status.cancelled",
    "queue.due",
    "queue.due.overdue",
    "queue.due.soon",
    "queue.tag",
    "queue.ai_draft",
    "team.working",
    "team.off",
    "team.now",
    "team.online",
    "message.error",
    "message.info",
];

/// What the colour forms are, for error messages.
const COLOR_FORMS: &str = "a palette name, #rrggbb, an ANSI colour name, idx:N or 0-255, or reset";

const MODIFIER_FORMS: &str = "bold, dim, italic, underlined, reversed, crossed_out";

// ---------------------------------------------------------------------------
// Colour depth

/// How many colours the terminal can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColorDepth {
    /// 24-bit RGB.
    TrueColor,
    /// The xterm 256-colour palette.
    Ansi256,
    /// The 16 ANSI colours.
    Ansi16,
    /// No colour at all (`NO_COLOR`): only bold, reversed, underlined and
    /// the like tell things apart.
    Mono,
}

/// An unrecognised `--color` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid colour depth `{0}`: expected `truecolor` (or `24bit`), `256`, `16` or `mono`")]
pub struct ParseColorDepthError(String);

impl ColorDepth {
    /// Guesses the depth from the environment: `NO_COLOR` -> no colour,
    /// `COLORTERM=truecolor|24bit` -> true colour, `TERM` containing
    /// `256color` -> 256 colours, otherwise 16 colours.
    pub fn detect() -> Self {
        Self::detect_with(|name| std::env::var(name).ok())
    }

    fn detect_with(var: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| {
            var(name)
                .map(|v| v.trim().to_ascii_lowercase())
                .filter(|v| !v.is_empty())
        };
        if var("NO_COLOR").is_some() {
            return Self::Mono;
        }
        if let Some(colorterm) = var("COLORTERM")
            && (colorterm == "truecolor" || colorterm == "24bit")
        {
            return Self::TrueColor;
        }
        match var("TERM") {
            Some(term) if term.contains("direct") || term.contains("truecolor") => Self::TrueColor,
            Some(term) if term.contains("256color") => Self::Ansi256,
            Some(_) => Self::Ansi16,
            // Windows Terminal sets no TERM but renders true colour.
            None if var("WT_SESSION").is_some() => Self::TrueColor,
            None => Self::Ansi16,
        }
    }

    /// Parses a `--color` value: `truecolor` (`24bit`), `256` or `16`.
    pub fn parse(text: &str) -> Result<Self, ParseColorDepthError> {
        let norm: String = text
            .trim()
            .to_ascii_lowercase()
            .chars()
            .filter(|c| !matches!(c, '-' | '_' | ' '))
            .collect();
        match norm.as_str() {
            "truecolor" | "truecolour" | "24bit" | "rgb" => Ok(Self::TrueColor),
            "256" | "256color" | "256colour" | "256colors" | "256colours" | "ansi256" | "8bit" => {
                Ok(Self::Ansi256)
            }
            "16" | "16color" | "16colour" | "16colors" | "16colours" | "ansi16" | "ansi"
            | "4bit" => Ok(Self::Ansi16),
            "mono" | "monochrome" | "none" | "nocolor" | "nocolour" | "0" => Ok(Self::Mono),
            _ => Err(ParseColorDepthError(text.to_owned())),
        }
    }

    /// Converts a colour to one this depth can show.
    pub fn convert(self, color: Color) -> Color {
        match (self, color) {
            (Self::TrueColor, c) => c,
            (Self::Ansi256, Color::Rgb(r, g, b)) => Color::Indexed(nearest_256([r, g, b])),
            (Self::Ansi256, c) => c,
            (Self::Ansi16, Color::Rgb(r, g, b)) => nearest_16([r, g, b]),
            (Self::Ansi16, Color::Indexed(i)) => match ANSI16.get(usize::from(i)) {
                Some(&(c, _, _)) => c,
                None => nearest_16(index_rgb(i)),
            },
            (Self::Ansi16, c) => c,
            (Self::Mono, _) => Color::Reset,
        }
    }
}

impl FromStr for ColorDepth {
    type Err = ParseColorDepthError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for ColorDepth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TrueColor => "truecolor",
            Self::Ansi256 => "256",
            Self::Ansi16 => "16",
            Self::Mono => "mono",
        })
    }
}

/// The 16 ANSI colours in index order, with their names and their (xterm)
/// RGB values.
const ANSI16: [(Color, &str, [u8; 3]); 16] = [
    (Color::Black, "black", [0, 0, 0]),
    (Color::Red, "red", [205, 0, 0]),
    (Color::Green, "green", [0, 205, 0]),
    (Color::Yellow, "yellow", [205, 205, 0]),
    (Color::Blue, "blue", [0, 0, 238]),
    (Color::Magenta, "magenta", [205, 0, 205]),
    (Color::Cyan, "cyan", [0, 205, 205]),
    (Color::Gray, "gray", [229, 229, 229]),
    (Color::DarkGray, "darkgray", [127, 127, 127]),
    (Color::LightRed, "lightred", [255, 0, 0]),
    (Color::LightGreen, "lightgreen", [0, 255, 0]),
    (Color::LightYellow, "lightyellow", [255, 255, 0]),
    (Color::LightBlue, "lightblue", [92, 92, 255]),
    (Color::LightMagenta, "lightmagenta", [255, 0, 255]),
    (Color::LightCyan, "lightcyan", [0, 255, 255]),
    (Color::White, "white", [255, 255, 255]),
];

/// Levels of the xterm 6x6x6 colour cube.
const CUBE: [u8; 6] = [0, 95, 135, 175, 215, 255];

/// The RGB value of an xterm-256 index.
fn index_rgb(index: u8) -> [u8; 3] {
    match index {
        0..=15 => ANSI16[usize::from(index)].2,
        16..=231 => {
            let i = usize::from(index - 16);
            [CUBE[i / 36], CUBE[(i / 6) % 6], CUBE[i % 6]]
        }
        232..=255 => {
            let v = 8 + 10 * (index - 232);
            [v, v, v]
        }
    }
}

/// Perceptually weighted ("redmean") squared distance between two colours,
/// used to pick the nearest xterm-256 colour.
fn distance(a: [u8; 3], b: [u8; 3]) -> u32 {
    let [ar, ag, ab] = a.map(i32::from);
    let [br, bg, bb] = b.map(i32::from);
    let rmean = (ar + br) / 2;
    let (dr, dg, db) = (ar - br, ag - bg, ab - bb);
    let d = (((512 + rmean) * dr * dr) >> 8) + 4 * dg * dg + (((767 - rmean) * db * db) >> 8);
    d.unsigned_abs()
}

/// The nearest xterm-256 colour, from the cube and the gray ramp (16-255;
/// the first 16 depend on the terminal's palette, so they are not used).
fn nearest_256(rgb: [u8; 3]) -> u8 {
    (16..=255u8)
        .min_by_key(|&i| distance(rgb, index_rgb(i)))
        .unwrap_or(16)
}

/// The closest of the 16 ANSI colours. Plain RGB distance sends most muted
/// theme colours to the grays, so this matches by hue instead: colours with
/// little chroma become black/darkgray/gray/white by luma; others take the
/// ANSI hue sector they fall in, the light variant when they are light.
fn nearest_16(rgb: [u8; 3]) -> Color {
    let [r, g, b] = rgb.map(u32::from);
    let (max, min) = (r.max(g).max(b), r.min(g).min(b));
    let chroma = max - min;
    if chroma < 36 {
        let luma = (299 * r + 587 * g + 114 * b) / 1000;
        return match luma {
            0..64 => Color::Black,
            64..178 => Color::DarkGray,
            178..242 => Color::Gray,
            _ => Color::White,
        };
    }
    let (rf, gf, bf, cf) = (r as f32, g as f32, b as f32, chroma as f32);
    let hue = if max == r {
        60.0 * ((gf - bf) / cf).rem_euclid(6.0)
    } else if max == g {
        60.0 * ((bf - rf) / cf + 2.0)
    } else {
        60.0 * ((rf - gf) / cf + 4.0)
    };
    // Sectors are skewed from the pure 60-degree split: orange reads as
    // yellow (ANSI 3 is brown/orange on many palettes), and the usual UI
    // "blue" (hue 205-230) would otherwise be split with cyan.
    let (normal, light) = match hue {
        h if !(20.0..330.0).contains(&h) => (Color::Red, Color::LightRed),
        h if h < 70.0 => (Color::Yellow, Color::LightYellow),
        h if h < 160.0 => (Color::Green, Color::LightGreen),
        h if h < 195.0 => (Color::Cyan, Color::LightCyan),
        h if h < 255.0 => (Color::Blue, Color::LightBlue),
        _ => (Color::Magenta, Color::LightMagenta),
    };
    if max + min >= 300 || max >= 240 {
        light
    } else {
        normal
    }
}

/// One of the 16 ANSI colours by name (lenient about case, `_`, `-`, `grey`).
fn ansi_named(name: &str) -> Option<Color> {
    let norm: String = name
        .to_ascii_lowercase()
        .replace("grey", "gray")
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .collect();
    let norm = match norm.as_str() {
        "lightgray" | "silver" => "gray",
        "brightblack" => "darkgray",
        "brightwhite" => "white",
        other => other.strip_prefix("bright").map_or(other, |rest| {
            // `brightred` -> `lightred`; `light` + rest is checked below.
            match rest {
                "red" => "lightred",
                "green" => "lightgreen",
                "yellow" => "lightyellow",
                "blue" => "lightblue",
                "magenta" => "lightmagenta",
                "cyan" => "lightcyan",
                _ => other,
            }
        }),
    };
    ANSI16
        .iter()
        .find(|(_, n, _)| *n == norm)
        .map(|&(c, _, _)| c)
}

// ---------------------------------------------------------------------------
// Theme

/// A resolved theme: dotted style keys mapped to styles for one colour depth.
#[derive(Debug, Clone)]
pub struct Theme {
    name: String,
    depth: ColorDepth,
    styles: HashMap<String, Style>,
}

impl Theme {
    /// Loads a shipped or user theme by name. User themes in `user_dir`
    /// (e.g. `~/.config/spoke/themes/NAME.toml`) override shipped ones of the
    /// same name.
    pub fn load(name: &str, user_dir: Option<&Path>, depth: ColorDepth) -> anyhow::Result<Theme> {
        check_theme_name(name).map_err(|msg| anyhow!("theme `{name}`: {msg}"))?;
        let source = find_source(name, user_dir, None)?
            .ok_or_else(|| anyhow!("{}", unknown_theme(name, user_dir)))?;
        build(name, source, user_dir, depth)
    }

    /// Builds a theme from TOML text. `inherits` may only name shipped themes.
    pub fn from_toml(name: &str, text: &str, depth: ColorDepth) -> anyhow::Result<Theme> {
        let source = Source {
            id: SourceId::Inline(name.to_owned()),
            text: Cow::Owned(text.to_owned()),
        };
        build(name, source, None, depth)
    }

    /// The style for `key`, falling back to ever shorter dotted prefixes
    /// (`a.b.c`, `a.b`, `a`) and finally [`Style::default`]. The most specific
    /// existing entry is returned as is, not merged with its parents.
    pub fn style(&self, key: &str) -> Style {
        self.resolved_key(key)
            .and_then(|k| self.styles.get(k))
            .copied()
            .unwrap_or_default()
    }

    /// The theme's name, as it was asked for.
    /// A content colour (e.g. an image's palette) as this terminal can show it.
    pub fn color(&self, color: Color) -> Color {
        self.depth().convert(color)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The colour depth the styles were converted for.
    pub fn depth(&self) -> ColorDepth {
        self.depth
    }

    /// Names of the themes compiled into the binary.
    pub fn shipped_names() -> &'static [&'static str] {
        SHIPPED_NAMES
    }

    /// The entry key that [`Theme::style`] would use for `key`.
    fn resolved_key<'k>(&self, key: &'k str) -> Option<&'k str> {
        let mut k = key;
        loop {
            if self.styles.contains_key(k) {
                return Some(k);
            }
            k = &k[..k.rfind('.')?];
        }
    }
}

fn shipped_text(name: &str) -> Option<&'static str> {
    SHIPPED.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Theme names double as file names: letters, digits, `-` and `_` only.
fn check_theme_name(name: &str) -> Result<(), String> {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Ok(())
    } else {
        Err(format!(
            "invalid theme name `{name}`: use letters, digits, `-` and `_`"
        ))
    }
}

fn unknown_theme(name: &str, user_dir: Option<&Path>) -> String {
    let mut msg = format!(
        "unknown theme `{name}`; shipped themes: {}",
        SHIPPED_NAMES.join(", ")
    );
    if let Some(dir) = user_dir {
        let mut user: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                if path.extension()? != "toml" {
                    return None;
                }
                Some(path.file_stem()?.to_str()?.to_owned())
            })
            .collect();
        user.sort();
        if user.is_empty() {
            msg.push_str(&format!("; no user themes in {}", dir.display()));
        } else {
            msg.push_str(&format!(
                "; user themes in {}: {}",
                dir.display(),
                user.join(", ")
            ));
        }
    }
    msg
}

/// Where a theme's text came from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SourceId {
    Shipped(String),
    User(PathBuf, String),
    Inline(String),
}

impl SourceId {
    fn name(&self) -> &str {
        match self {
            Self::Shipped(n) | Self::User(_, n) | Self::Inline(n) => n,
        }
    }

    /// A location for error messages.
    fn at(&self, line: usize) -> String {
        match self {
            Self::Shipped(n) => format!("shipped theme `{n}` (themes/{n}.toml:{line})"),
            Self::User(path, _) => format!("{}:{line}", path.display()),
            Self::Inline(n) => format!("theme `{n}`, line {line}"),
        }
    }

    fn label(&self) -> String {
        match self {
            Self::Shipped(n) => format!("shipped theme `{n}`"),
            Self::User(path, _) => path.display().to_string(),
            Self::Inline(n) => format!("theme `{n}`"),
        }
    }
}

struct Source {
    id: SourceId,
    text: Cow<'static, str>,
}

/// Finds theme `name`: the user's file unless the request comes from a theme
/// of the same name (which then means the shipped one), else the shipped one.
fn find_source(
    name: &str,
    user_dir: Option<&Path>,
    from: Option<&SourceId>,
) -> anyhow::Result<Option<Source>> {
    let self_reference = matches!(
        from,
        Some(SourceId::User(_, n) | SourceId::Inline(n)) if n == name
    );
    if let Some(dir) = user_dir
        && !self_reference
    {
        let path = dir.join(format!("{name}.toml"));
        if path.is_file() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading theme {}", path.display()))?;
            return Ok(Some(Source {
                id: SourceId::User(path, name.to_owned()),
                text: Cow::Owned(text),
            }));
        }
    }
    Ok(shipped_text(name).map(|text| Source {
        id: SourceId::Shipped(name.to_owned()),
        text: Cow::Borrowed(text),
    }))
}

/// Parses `root` and its `inherits` chain, merges, resolves and converts.
fn build(
    name: &str,
    root: Source,
    user_dir: Option<&Path>,
    depth: ColorDepth,
) -> anyhow::Result<Theme> {
    let mut layers: Vec<Layer> = Vec::new();
    let mut seen: Vec<SourceId> = Vec::new();
    let mut next = Some(root);
    while let Some(source) = next.take() {
        let layer = parse_layer(&source)?;
        seen.push(source.id.clone());
        if let Some((parent, line)) = &layer.inherits {
            let at = source.id.at(*line);
            check_theme_name(parent).map_err(|msg| anyhow!("{at}: `inherits`: {msg}"))?;
            let parent_source = find_source(parent, user_dir, Some(&source.id))?
                .ok_or_else(|| anyhow!("{at}: `inherits`: {}", unknown_theme(parent, user_dir)))?;
            if let Some(start) = seen.iter().position(|id| *id == parent_source.id) {
                let chain: Vec<&str> = seen[start..].iter().map(SourceId::name).collect();
                bail!(
                    "theme inheritance cycle: {} -> {parent} (at {at})",
                    chain.join(" -> ")
                );
            }
            next = Some(parent_source);
        }
        layers.push(layer);
    }

    let mut palette: HashMap<String, Color> = HashMap::new();
    let mut entries: BTreeMap<String, RawStyle> = BTreeMap::new();
    for layer in layers.into_iter().rev() {
        palette.extend(layer.palette);
        entries.extend(layer.entries);
    }

    let mut styles = HashMap::with_capacity(entries.len());
    for (key, raw) in entries {
        let mut style = Style::default();
        if let Some(fg) = &raw.fg {
            style = style.fg(depth.convert(fg.resolve(&key, "fg", &palette)?));
        }
        if let Some(bg) = &raw.bg {
            let bg = bg.resolve(&key, "bg", &palette)?;
            if depth == ColorDepth::Mono {
                // A coloured background marks something (the selection, the
                // status bar, a badge): in monochrome it is reversed video.
                if bg != Color::Reset {
                    style = style.add_modifier(Modifier::REVERSED);
                }
            } else {
                style = style.bg(depth.convert(bg));
            }
        }
        if depth == ColorDepth::Mono {
            style.fg = None;
        }
        style = style.add_modifier(raw.modifiers);
        styles.insert(key, style);
    }
    Ok(Theme {
        name: name.to_owned(),
        depth,
        styles,
    })
}

// ---------------------------------------------------------------------------
// Parsing one file

/// A colour as written, before palette resolution.
#[derive(Debug, Clone)]
enum ColorSpec {
    Fixed(Color),
    Name(String),
}

#[derive(Debug, Clone)]
struct ColorValue {
    spec: ColorSpec,
    /// Where it was written, for errors found after merging.
    at: String,
}

impl ColorValue {
    fn resolve(
        &self,
        key: &str,
        field: &str,
        palette: &HashMap<String, Color>,
    ) -> anyhow::Result<Color> {
        match &self.spec {
            ColorSpec::Fixed(c) => Ok(*c),
            ColorSpec::Name(n) => palette
                .get(n)
                .copied()
                .or_else(|| ansi_named(n))
                .ok_or_else(|| {
                    let mut names: Vec<&str> = palette.keys().map(String::as_str).collect();
                    names.sort_unstable();
                    let known = if names.is_empty() {
                        String::from("the theme has no palette")
                    } else {
                        format!("palette: {}", names.join(", "))
                    };
                    anyhow!(
                        "{}: key `{key}`: `{field}`: unknown colour `{n}`; expected {COLOR_FORMS} ({known})",
                        self.at
                    )
                }),
        }
    }
}

#[derive(Debug, Clone)]
struct RawStyle {
    fg: Option<ColorValue>,
    bg: Option<ColorValue>,
    modifiers: Modifier,
    line: usize,
}

struct Layer {
    inherits: Option<(String, usize)>,
    palette: HashMap<String, Color>,
    entries: BTreeMap<String, RawStyle>,
}

struct Parser<'s> {
    id: &'s SourceId,
    text: &'s str,
    entries: BTreeMap<String, RawStyle>,
}

fn parse_layer(source: &Source) -> anyhow::Result<Layer> {
    let text: &str = &source.text;
    let doc = DeTable::parse(text).map_err(|e| anyhow!("{}: {e}", source.id.label()))?;
    let mut parser = Parser {
        id: &source.id,
        text,
        entries: BTreeMap::new(),
    };
    let mut inherits = None;
    let mut palette = HashMap::new();
    for (key, value) in doc.get_ref().iter() {
        let name: &str = key.get_ref();
        let line = parser.line(key.span());
        match name {
            "inherits" => match value.get_ref() {
                DeValue::String(parent) => inherits = Some((parent.to_string(), line)),
                other => {
                    return Err(parser.error(
                        line,
                        "inherits",
                        format!("expected a theme name, found {}", other.type_str()),
                    ));
                }
            },
            "palette" => palette = parser.palette(value, line)?,
            "fg" | "bg" | "modifiers" => {
                return Err(parser.error(
                    line,
                    name,
                    "style fields belong to a style key, e.g. `\"ui.text\" = { fg = ... }`",
                ));
            }
            _ => {
                parser.check_key(name, line)?;
                parser.style_item(name.to_owned(), value, line)?;
            }
        }
    }
    Ok(Layer {
        inherits,
        palette,
        entries: parser.entries,
    })
}

impl Parser<'_> {
    fn line(&self, span: Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        1 + self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
    }

    fn error(&self, line: usize, key: &str, msg: impl fmt::Display) -> anyhow::Error {
        anyhow!("{}: key `{key}`: {msg}", self.id.at(line))
    }

    fn check_key(&self, key: &str, line: usize) -> anyhow::Result<()> {
        if key.split('.').any(|segment| segment.trim().is_empty()) {
            return Err(self.error(line, key, "invalid style key (empty segment)"));
        }
        Ok(())
    }

    fn palette(
        &self,
        value: &Spanned<DeValue<'_>>,
        line: usize,
    ) -> anyhow::Result<HashMap<String, Color>> {
        let DeValue::Table(table) = value.get_ref() else {
            return Err(self.error(
                line,
                "palette",
                format!("expected a table, found {}", value.get_ref().type_str()),
            ));
        };
        let mut palette = HashMap::new();
        for (key, value) in table.iter() {
            let name: &str = key.get_ref();
            let key_name = format!("palette.{name}");
            let line = self.line(value.span());
            let lower = name.to_ascii_lowercase();
            if lower == "reset" || name.starts_with('#') || lower.starts_with("idx:") {
                return Err(self.error(line, &key_name, "reserved palette name"));
            }
            let spec =
                parse_color(value.get_ref()).map_err(|msg| self.error(line, &key_name, msg))?;
            let color = match spec {
                ColorSpec::Fixed(c) => c,
                ColorSpec::Name(n) => ansi_named(&n).ok_or_else(|| {
                    self.error(
                        line,
                        &key_name,
                        format!(
                            "unknown colour `{n}`; palette colours must be #rrggbb, an ANSI colour name, idx:N or 0-255, or reset"
                        ),
                    )
                })?,
            };
            palette.insert(name.to_owned(), color);
        }
        Ok(palette)
    }

    fn color(
        &self,
        key: &str,
        field: &str,
        value: &Spanned<DeValue<'_>>,
    ) -> anyhow::Result<ColorValue> {
        let line = self.line(value.span());
        let spec = parse_color(value.get_ref())
            .map_err(|msg| self.error(line, key, format!("`{field}`: {msg}")))?;
        Ok(ColorValue {
            spec,
            at: self.id.at(line),
        })
    }

    fn modifiers(&self, key: &str, value: &Spanned<DeValue<'_>>) -> anyhow::Result<Modifier> {
        let items: &[Spanned<DeValue<'_>>] = match value.get_ref() {
            DeValue::Array(items) => items,
            DeValue::String(_) => std::slice::from_ref(value),
            other => {
                return Err(self.error(
                    self.line(value.span()),
                    key,
                    format!(
                        "`modifiers`: expected a list like [\"bold\"], found {}",
                        other.type_str()
                    ),
                ));
            }
        };
        let mut modifiers = Modifier::empty();
        for item in items {
            let line = self.line(item.span());
            let DeValue::String(name) = item.get_ref() else {
                return Err(self.error(
                    line,
                    key,
                    format!(
                        "`modifiers`: expected a modifier name, found {}",
                        item.get_ref().type_str()
                    ),
                ));
            };
            modifiers |= parse_modifier(name).ok_or_else(|| {
                self.error(
                    line,
                    key,
                    format!(
                        "`modifiers`: unknown modifier `{name}`; expected one of {MODIFIER_FORMS}"
                    ),
                )
            })?;
        }
        Ok(modifiers)
    }

    /// Adds the style(s) under `key`: a colour, a style table, or a table of
    /// child keys (or both: `fg`/`bg`/`modifiers` plus children).
    fn style_item(
        &mut self,
        key: String,
        value: &Spanned<DeValue<'_>>,
        key_line: usize,
    ) -> anyhow::Result<()> {
        match value.get_ref() {
            DeValue::String(_) | DeValue::Integer(_) => {
                let fg = self.color(&key, "fg", value)?;
                self.insert(
                    key,
                    RawStyle {
                        fg: Some(fg),
                        bg: None,
                        modifiers: Modifier::empty(),
                        line: key_line,
                    },
                )
            }
            DeValue::Table(table) => {
                let mut raw = RawStyle {
                    fg: None,
                    bg: None,
                    modifiers: Modifier::empty(),
                    line: key_line,
                };
                let mut has_fields = false;
                for (child, child_value) in table.iter() {
                    let child_name: &str = child.get_ref();
                    let child_line = self.line(child.span());
                    match child_name {
                        "fg" => raw.fg = Some(self.color(&key, "fg", child_value)?),
                        "bg" => raw.bg = Some(self.color(&key, "bg", child_value)?),
                        "modifiers" => raw.modifiers = self.modifiers(&key, child_value)?,
                        _ => {
                            let child_key = format!("{key}.{child_name}");
                            self.check_key(&child_key, child_line)?;
                            self.style_item(child_key, child_value, child_line)?;
                            continue;
                        }
                    }
                    has_fields = true;
                }
                if has_fields {
                    self.insert(key, raw)?;
                }
                Ok(())
            }
            other => Err(self.error(
                self.line(value.span()),
                &key,
                format!(
                    "expected a colour or a table like {{ fg = \"red\" }}, found {}",
                    other.type_str()
                ),
            )),
        }
    }

    fn insert(&mut self, key: String, raw: RawStyle) -> anyhow::Result<()> {
        if let Some(previous) = self.entries.get(&key) {
            return Err(self.error(
                raw.line,
                &key,
                format!("defined twice (also on line {})", previous.line),
            ));
        }
        self.entries.insert(key, raw);
        Ok(())
    }
}

/// Parses a colour value; bare names stay unresolved for the palette.
fn parse_color(value: &DeValue<'_>) -> Result<ColorSpec, String> {
    match value {
        DeValue::String(text) => parse_color_str(text),
        DeValue::Integer(int) => i64::from_str_radix(int.as_str(), int.radix())
            .ok()
            .and_then(|i| u8::try_from(i).ok())
            .map(|i| ColorSpec::Fixed(Color::Indexed(i)))
            .ok_or_else(|| format!("colour index {int} is out of range 0-255")),
        other => Err(format!(
            "expected a colour ({COLOR_FORMS}), found {}",
            other.type_str()
        )),
    }
}

fn parse_color_str(text: &str) -> Result<ColorSpec, String> {
    let trimmed = text.trim();
    let lower = trimmed.to_ascii_lowercase();
    if lower == "reset" {
        return Ok(ColorSpec::Fixed(Color::Reset));
    }
    if let Some(hex) = trimmed.strip_prefix('#') {
        return parse_hex(hex)
            .map(|[r, g, b]| ColorSpec::Fixed(Color::Rgb(r, g, b)))
            .ok_or_else(|| format!("invalid hex colour `{text}`; expected #rrggbb"));
    }
    let index = lower.strip_prefix("idx:").map(str::trim).or_else(|| {
        (!lower.is_empty() && lower.bytes().all(|b| b.is_ascii_digit())).then_some(lower.as_str())
    });
    if let Some(index) = index {
        return index
            .parse::<u8>()
            .map(|i| ColorSpec::Fixed(Color::Indexed(i)))
            .map_err(|_| format!("invalid colour index `{text}`; expected idx:0 to idx:255"));
    }
    if trimmed.is_empty() {
        return Err(format!("empty colour; expected {COLOR_FORMS}"));
    }
    Ok(ColorSpec::Name(trimmed.to_owned()))
}

fn parse_hex(hex: &str) -> Option<[u8; 3]> {
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    match hex.len() {
        6 => {
            let channel = |i: usize| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok();
            Some([channel(0)?, channel(2)?, channel(4)?])
        }
        3 => {
            let channel = |i: usize| u8::from_str_radix(hex.get(i..=i)?, 16).ok().map(|v| v * 17);
            Some([channel(0)?, channel(1)?, channel(2)?])
        }
        _ => None,
    }
}

fn parse_modifier(name: &str) -> Option<Modifier> {
    let norm: String = name
        .trim()
        .to_ascii_lowercase()
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .collect();
    Some(match norm.as_str() {
        "bold" => Modifier::BOLD,
        "dim" => Modifier::DIM,
        "italic" => Modifier::ITALIC,
        "underlined" | "underline" => Modifier::UNDERLINED,
        "reversed" | "reverse" => Modifier::REVERSED,
        "crossedout" | "strikethrough" => Modifier::CROSSED_OUT,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPTHS: [ColorDepth; 3] = [
        ColorDepth::TrueColor,
        ColorDepth::Ansi256,
        ColorDepth::Ansi16,
    ];

    fn colors(style: Style) -> [Option<Color>; 2] {
        [style.fg, style.bg]
    }

    fn theme(text: &str, depth: ColorDepth) -> Theme {
        match Theme::from_toml("test", text, depth) {
            Ok(theme) => theme,
            Err(e) => panic!("theme failed to load: {e:#}"),
        }
    }

    fn error(text: &str) -> String {
        match Theme::from_toml("test", text, ColorDepth::TrueColor) {
            Ok(_) => panic!("expected an error for:\n{text}"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn every_shipped_theme_parses_at_every_depth_and_defines_every_key() {
        assert_eq!(Theme::shipped_names().len(), SHIPPED.len());
        for &name in Theme::shipped_names() {
            assert!(shipped_text(name).is_some(), "{name} is not embedded");
            for depth in DEPTHS {
                let theme = Theme::load(name, None, depth).unwrap();
                assert_eq!(theme.name(), name);
                assert_eq!(theme.depth(), depth);
                for key in STYLE_KEYS {
                    assert!(
                        theme.styles.contains_key(*key),
                        "{name} does not define `{key}`"
                    );
                }
                for key in theme.styles.keys() {
                    assert!(
                        STYLE_KEYS.contains(&key.as_str()),
                        "{name} defines `{key}`, which the UI does not use (typo?)"
                    );
                }
                for (key, style) in &theme.styles {
                    for color in colors(*style).into_iter().flatten() {
                        match depth {
                            ColorDepth::TrueColor => {}
                            ColorDepth::Ansi256 => {
                                assert!(!matches!(color, Color::Rgb(..)), "{name} {key}: {color:?}")
                            }
                            ColorDepth::Ansi16 => assert!(
                                !matches!(color, Color::Rgb(..) | Color::Indexed(_)),
                                "{name} {key}: {color:?}"
                            ),
                            ColorDepth::Mono => panic!("{name} {key}: {color:?} in monochrome"),
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn shipped_themes_are_readable_at_16_colours() {
        // The foreground of plain text must differ from the selection
        // background, and selection must be visible somehow.
        for &name in Theme::shipped_names() {
            let theme = Theme::load(name, None, ColorDepth::Ansi16).unwrap();
            let selection = theme.style("ui.selection");
            assert!(
                selection
                    .bg
                    .is_some_and(|bg| bg != Color::Reset && bg != Color::Black)
                    || selection.add_modifier.contains(Modifier::REVERSED),
                "{name}: selection invisible at 16 colours: {selection:?}"
            );
            assert_ne!(theme.style("ui.text").fg, selection.bg, "{name}");
        }
    }

    #[test]
    fn ansi16_uses_only_ansi_colours() {
        let theme = Theme::load("ansi16", None, ColorDepth::TrueColor).unwrap();
        for (key, style) in &theme.styles {
            for color in colors(*style).into_iter().flatten() {
                assert!(
                    !matches!(color, Color::Rgb(..) | Color::Indexed(_)),
                    "ansi16 `{key}` uses {color:?}"
                );
            }
        }
        let text = shipped_text("ansi16").unwrap();
        assert!(!text.contains("idx:"));
    }

    #[test]
    fn default_dark_uses_rgb_at_truecolor() {
        let theme = Theme::load("default-dark", None, ColorDepth::TrueColor).unwrap();
        assert!(matches!(
            theme.style("queue.priority.p0").fg,
            Some(Color::Rgb(..))
        ));
        assert_eq!(theme.style("ui.text").bg, Some(Color::Reset));
    }

    #[test]
    fn default_light_differs_from_default_dark() {
        let dark = Theme::load("default-dark", None, ColorDepth::TrueColor).unwrap();
        let light = Theme::load("default-light", None, ColorDepth::TrueColor).unwrap();
        assert_ne!(dark.style("ui.text").fg, light.style("ui.text").fg);
        assert_ne!(
            dark.style("ui.selection").bg,
            light.style("ui.selection").bg
        );
    }

    #[test]
    fn rgb_is_converted_down() {
        let text = r##"
            red = "#ff0000"
            gray = "#808080"
            dark = "#1c1c1c"
            orange = "idx:208"
            low = 9
        "##;
        let true_color = theme(text, ColorDepth::TrueColor);
        assert_eq!(true_color.style("red").fg, Some(Color::Rgb(255, 0, 0)));
        assert_eq!(true_color.style("orange").fg, Some(Color::Indexed(208)));
        assert_eq!(true_color.style("low").fg, Some(Color::Indexed(9)));

        let t256 = theme(text, ColorDepth::Ansi256);
        assert_eq!(t256.style("red").fg, Some(Color::Indexed(196)));
        assert_eq!(t256.style("gray").fg, Some(Color::Indexed(244)));
        assert!(matches!(
            t256.style("dark").fg,
            Some(Color::Indexed(232..=255))
        ));
        assert_eq!(t256.style("orange").fg, Some(Color::Indexed(208)));

        let t16 = theme(text, ColorDepth::Ansi16);
        assert!(matches!(
            t16.style("red").fg,
            Some(Color::Red | Color::LightRed)
        ));
        assert!(matches!(
            t16.style("gray").fg,
            Some(Color::Gray | Color::DarkGray)
        ));
        assert_eq!(t16.style("dark").fg, Some(Color::Black));
        assert_eq!(t16.style("low").fg, Some(Color::LightRed));
        assert!(matches!(
            t16.style("orange").fg,
            Some(Color::Red | Color::LightRed | Color::Yellow | Color::LightYellow)
        ));
    }

    #[test]
    fn nearest_16_keeps_hues_of_muted_colours() {
        let cases: [(&str, Color); 14] = [
            ("#e06c75", Color::LightRed),
            ("#cf222e", Color::Red),
            ("#d19a66", Color::LightYellow),
            ("#bc4c00", Color::Yellow),
            ("#98c379", Color::LightGreen),
            ("#1a7f37", Color::Green),
            ("#56b6c2", Color::Cyan),
            ("#61afef", Color::LightBlue),
            ("#0969da", Color::Blue),
            ("#c678dd", Color::LightMagenta),
            ("#3e4451", Color::DarkGray),
            ("#d7dae0", Color::Gray),
            ("#24292f", Color::Black),
            ("#ffffff", Color::White),
        ];
        for (hex, want) in cases {
            let rgb = parse_hex(&hex[1..]).unwrap();
            assert_eq!(nearest_16(rgb), want, "{hex}");
        }
    }

    #[test]
    fn nearest_256_matches_xterm_cube_and_ramp() {
        assert_eq!(nearest_256([0, 0, 0]), 16);
        assert_eq!(nearest_256([255, 255, 255]), 231);
        assert_eq!(nearest_256([0x5f, 0x87, 0xaf]), 67);
        assert_eq!(nearest_256([0x80, 0x80, 0x80]), 244);
        assert_eq!(nearest_256([0x30, 0x30, 0x30]), 236);
        for i in 16..=255u8 {
            assert_eq!(nearest_256(index_rgb(i)), i, "index {i} round trip");
        }
    }

    #[test]
    fn reset_maps_to_reset_at_every_depth() {
        for depth in DEPTHS {
            let t = theme(r#""ui.text" = { fg = "reset", bg = "RESET" }"#, depth);
            assert_eq!(t.style("ui.text").fg, Some(Color::Reset));
            assert_eq!(t.style("ui.text").bg, Some(Color::Reset));
        }
    }

    #[test]
    fn ansi_names_and_modifiers_parse() {
        let t = theme(
            r#"
            a = { fg = "darkgray", bg = "light_blue", modifiers = ["bold", "dim", "italic", "underlined", "reversed", "crossed_out"] }
            b = "Grey"
            c = { modifiers = "bold" }
            "#,
            ColorDepth::TrueColor,
        );
        let a = t.style("a");
        assert_eq!(a.fg, Some(Color::DarkGray));
        assert_eq!(a.bg, Some(Color::LightBlue));
        assert_eq!(
            a.add_modifier,
            Modifier::BOLD
                | Modifier::DIM
                | Modifier::ITALIC
                | Modifier::UNDERLINED
                | Modifier::REVERSED
                | Modifier::CROSSED_OUT
        );
        assert_eq!(t.style("b").fg, Some(Color::Gray));
        assert_eq!(t.style("c"), Style::default().add_modifier(Modifier::BOLD));
        for (color, name, _) in ANSI16 {
            assert_eq!(ansi_named(name), Some(color));
        }
    }

    #[test]
    fn dotted_fallback_most_specific_wins_entirely() {
        let t = theme(
            r#"
            queue = { fg = "white", bg = "blue", modifiers = ["bold"] }
            "queue.priority.p0" = "red"
            "#,
            ColorDepth::TrueColor,
        );
        let queue = Style::default()
            .fg(Color::White)
            .bg(Color::Blue)
            .add_modifier(Modifier::BOLD);
        assert_eq!(t.style("queue"), queue);
        assert_eq!(t.style("queue.priority"), queue);
        assert_eq!(t.style("queue.priority.p1"), queue);
        assert_eq!(
            t.style("queue.priority.p0"),
            Style::default().fg(Color::Red)
        );
        assert_eq!(
            t.style("queue.priority.p0.extra"),
            Style::default().fg(Color::Red)
        );
        assert_eq!(t.style("team.now"), Style::default());
        assert_eq!(t.style(""), Style::default());
    }

    #[test]
    fn nested_tables_flatten_to_dotted_keys() {
        let t = theme(
            r##"
            [palette]
            blue = "#0a84ff"

            [ui]
            text = "white"
            "text.dim" = "gray"
            border.focus = "blue"

            [queue.priority]
            p0 = { fg = "red", bg = "reset", modifiers = ["bold"] }

            [queue.status]
            fg = "gray"
            draft = { fg = "blue", modifiers = ["italic"] }
            "##,
            ColorDepth::TrueColor,
        );
        assert_eq!(t.style("ui.text").fg, Some(Color::White));
        assert_eq!(t.style("ui.text.dim").fg, Some(Color::Gray));
        // Palette names shadow ANSI names.
        assert_eq!(
            t.style("ui.border.focus").fg,
            Some(Color::Rgb(10, 132, 255))
        );
        assert_eq!(t.style("ui.border"), Style::default());
        assert_eq!(
            t.style("queue.priority.p0"),
            Style::default()
                .fg(Color::Red)
                .bg(Color::Reset)
                .add_modifier(Modifier::BOLD)
        );
        assert_eq!(t.style("queue.status"), Style::default().fg(Color::Gray));
        assert_eq!(
            t.style("queue.status.ready"),
            Style::default().fg(Color::Gray)
        );
        assert_eq!(
            t.style("queue.status.draft"),
            Style::default()
                .fg(Color::Rgb(10, 132, 255))
                .add_modifier(Modifier::ITALIC)
        );
        assert!(!t.styles.contains_key("queue.priority"));
        assert!(!t.styles.contains_key("queue"));
    }

    #[test]
    fn duplicate_keys_are_an_error() {
        let e = error(
            r#"
            "ui.text" = "red"
            [ui]
            text = "blue"
            "#,
        );
        assert!(e.contains("ui.text") && e.contains("twice"), "{e}");
    }

    #[test]
    fn inherits_overrides_per_key_and_palette() {
        let base = Theme::load("default-dark", None, ColorDepth::TrueColor).unwrap();
        let t = theme(
            r##"
            inherits = "default-dark"
            "ui.text" = "#123456"
            "##,
            ColorDepth::TrueColor,
        );
        assert_eq!(
            t.style("ui.text"),
            Style::default().fg(Color::Rgb(0x12, 0x34, 0x56))
        );
        for key in STYLE_KEYS.iter().filter(|k| **k != "ui.text") {
            assert_eq!(t.style(key), base.style(key), "{key}");
        }

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("base.toml"),
            "[palette]\naccent = \"red\"\n[ui]\ntitle = \"accent\"\ntext = \"green\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("child.toml"),
            "inherits = \"base\"\n[palette]\naccent = \"#00ff00\"\n[ui]\ntext = \"accent\"\n",
        )
        .unwrap();
        let base = Theme::load("base", Some(dir.path()), ColorDepth::TrueColor).unwrap();
        assert_eq!(base.style("ui.title").fg, Some(Color::Red));
        let child = Theme::load("child", Some(dir.path()), ColorDepth::TrueColor).unwrap();
        assert_eq!(child.name(), "child");
        assert_eq!(child.style("ui.title").fg, Some(Color::Rgb(0, 255, 0)));
        assert_eq!(child.style("ui.text").fg, Some(Color::Rgb(0, 255, 0)));
    }

    #[test]
    fn inheritance_cycles_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.toml"), "inherits = \"b\"\n").unwrap();
        std::fs::write(dir.path().join("b.toml"), "inherits = \"c\"\n").unwrap();
        std::fs::write(dir.path().join("c.toml"), "inherits = \"a\"\n").unwrap();
        let e = format!(
            "{:#}",
            Theme::load("a", Some(dir.path()), ColorDepth::TrueColor).unwrap_err()
        );
        assert!(e.contains("cycle") && e.contains("a -> b -> c -> a"), "{e}");

        std::fs::write(dir.path().join("self.toml"), "inherits = \"self\"\n").unwrap();
        // A user theme inheriting its own name means the shipped one; there is none.
        let e = format!(
            "{:#}",
            Theme::load("self", Some(dir.path()), ColorDepth::TrueColor).unwrap_err()
        );
        assert!(e.contains("unknown theme `self`"), "{e}");
    }

    #[test]
    fn user_theme_overrides_shipped_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("default-dark.toml"),
            "inherits = \"default-dark\"\n\"ui.text\" = \"#123456\"\n",
        )
        .unwrap();
        let shipped = Theme::load("default-dark", None, ColorDepth::TrueColor).unwrap();
        let user = Theme::load("default-dark", Some(dir.path()), ColorDepth::TrueColor).unwrap();
        assert_eq!(user.style("ui.text").fg, Some(Color::Rgb(0x12, 0x34, 0x56)));
        assert_ne!(user.style("ui.text"), shipped.style("ui.text"));
        assert_eq!(
            user.style("queue.priority.p0"),
            shipped.style("queue.priority.p0")
        );

        // Without the user file the shipped theme is used.
        let other = tempfile::tempdir().unwrap();
        let fallback =
            Theme::load("default-dark", Some(other.path()), ColorDepth::TrueColor).unwrap();
        assert_eq!(fallback.style("ui.text"), shipped.style("ui.text"));
    }

    #[test]
    fn bad_values_name_the_key_and_line() {
        let e = error("\n\n\"ui.text\" = \"redd\"\n");
        assert!(
            e.contains("`ui.text`") && e.contains("line 3") && e.contains("redd"),
            "{e}"
        );
        assert!(e.contains("palette name"), "{e}");

        let e =
            error("[queue.priority]\np0 = { fg = \"red\", modifiers = [\"bold\", \"blink\"] }\n");
        assert!(
            e.contains("`queue.priority.p0`") && e.contains("line 2"),
            "{e}"
        );
        assert!(e.contains("blink") && e.contains("crossed_out"), "{e}");

        let e = error("[ui]\ntitle = { bg = \"#12345\" }\n");
        assert!(
            e.contains("`ui.title`") && e.contains("#12345") && e.contains("bg"),
            "{e}"
        );

        let e = error("x = 300\n");
        assert!(e.contains("`x`") && e.contains("300"), "{e}");

        let e = error("x = \"idx:256\"\n");
        assert!(e.contains("`x`") && e.contains("idx:256"), "{e}");

        let e = error("x = true\n");
        assert!(e.contains("`x`") && e.contains("boolean"), "{e}");

        let e = error("[palette]\naccent = \"nope\"\n");
        assert!(e.contains("palette.accent") && e.contains("line 2"), "{e}");

        let e = error("inherits = \"no-such-theme\"\n");
        assert!(
            e.contains("no-such-theme") && e.contains("default-dark"),
            "{e}"
        );

        let e = error("x = \"red\"\ny = [\n");
        assert!(e.contains("theme `test`") && e.contains("line 2"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.toml");
        std::fs::write(&path, "\"ui.text\" = { fg = \"purple\" }\n").unwrap();
        let e = format!(
            "{:#}",
            Theme::load("broken", Some(dir.path()), ColorDepth::TrueColor).unwrap_err()
        );
        assert!(
            e.contains("broken.toml:1") && e.contains("ui.text") && e.contains("purple"),
            "{e}"
        );
    }

    #[test]
    fn unknown_and_invalid_theme_names() {
        let e = format!(
            "{:#}",
            Theme::load("nope", None, ColorDepth::TrueColor).unwrap_err()
        );
        assert!(
            e.contains("nope") && e.contains("default-light") && e.contains("ansi16"),
            "{e}"
        );
        let e = format!(
            "{:#}",
            Theme::load("../etc/x", None, ColorDepth::TrueColor).unwrap_err()
        );
        assert!(e.contains("invalid theme name"), "{e}");
    }

    #[test]
    fn color_depth_parse_and_detect() {
        assert_eq!(ColorDepth::parse("truecolor"), Ok(ColorDepth::TrueColor));
        assert_eq!(ColorDepth::parse("24bit"), Ok(ColorDepth::TrueColor));
        assert_eq!(ColorDepth::parse("256"), Ok(ColorDepth::Ansi256));
        assert_eq!(ColorDepth::parse("16"), Ok(ColorDepth::Ansi16));
        assert_eq!("TrueColor".parse::<ColorDepth>(), Ok(ColorDepth::TrueColor));
        let e = ColorDepth::parse("8").unwrap_err().to_string();
        assert!(
            e.contains("`8`") && e.contains("truecolor") && e.contains("256") && e.contains("16"),
            "{e}"
        );
        for depth in DEPTHS {
            assert_eq!(ColorDepth::parse(&depth.to_string()), Ok(depth));
        }

        let env = |vars: &'static [(&'static str, &'static str)]| {
            ColorDepth::detect_with(|name| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            })
        };
        assert_eq!(
            env(&[("COLORTERM", "truecolor"), ("TERM", "xterm")]),
            ColorDepth::TrueColor
        );
        assert_eq!(env(&[("COLORTERM", "24bit")]), ColorDepth::TrueColor);
        assert_eq!(env(&[("TERM", "xterm-256color")]), ColorDepth::Ansi256);
        assert_eq!(env(&[("TERM", "xterm")]), ColorDepth::Ansi16);
        assert_eq!(env(&[]), ColorDepth::Ansi16);
        assert_eq!(
            env(&[("NO_COLOR", "1"), ("COLORTERM", "truecolor")]),
            ColorDepth::Mono
        );
        assert_eq!(
            env(&[("NO_COLOR", ""), ("TERM", "screen-256color")]),
            ColorDepth::Ansi256
        );
    }

    #[test]
    fn monochrome_keeps_no_colour_and_shows_marked_things_reversed() {
        for name in Theme::shipped_names() {
            let theme = Theme::load(name, None, ColorDepth::Mono).expect("theme");
            for key in STYLE_KEYS {
                let style = theme.style(key);
                assert!(
                    style.fg.is_none() && style.bg.is_none(),
                    "{name}: {key} keeps a colour: {style:?}"
                );
            }
            for key in ["ui.selection", "ui.tab.badge"] {
                assert!(
                    theme.style(key).add_modifier.contains(Modifier::REVERSED),
                    "{name}: {key} must stand out without colour"
                );
            }
            assert!(
                theme
                    .style("ui.tab.active")
                    .add_modifier
                    .contains(Modifier::BOLD)
            );
        }
        assert_eq!(ColorDepth::parse("mono"), Ok(ColorDepth::Mono));
        assert_eq!(ColorDepth::Mono.convert(Color::Rgb(1, 2, 3)), Color::Reset);
    }
}
