//! Markdown as terminal lines, from a real CommonMark parser: headings,
//! emphasis that leaves `snake_case` alone, code spans and fenced blocks,
//! bullet and numbered lists, quotes, links and tables. Line breaks inside
//! a paragraph are kept, as chat writers mean them.

use crate::tui::theme::Theme;
use pulldown_cmark::{Alignment, CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use unicode_width::UnicodeWidthStr;

/// Renders `text` in `base` style. Lines are not wrapped: a `Paragraph`
/// with wrapping does that, and its line count is what scrolling uses.
pub fn render(text: &str, base: Style, theme: &Theme) -> Vec<Line<'static>> {
    let mut r = Renderer::new(base, theme);
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    for event in Parser::new_ext(text, options) {
        r.event(event);
    }
    r.flush();
    while r.lines.last().is_some_and(|l| l.spans.is_empty()) {
        r.lines.pop();
    }
    r.lines
}

/// A list being rendered: the next number for an ordered one.
struct List {
    next: Option<u64>,
}

/// A table being collected: cells are laid out when it ends.
#[derive(Default)]
struct Table {
    alignments: Vec<Alignment>,
    rows: Vec<Vec<Vec<Span<'static>>>>,
    header_rows: usize,
    in_header: bool,
}

struct Renderer<'t> {
    theme: &'t Theme,
    base: Style,
    lines: Vec<Line<'static>>,
    spans: Vec<Span<'static>>,
    /// Inline styles in force (emphasis, strong, links).
    styles: Vec<Style>,
    /// What starts each line at the current nesting: list indents, quote bars.
    prefixes: Vec<Span<'static>>,
    /// A list item's marker, used once on the item's first line.
    marker: Option<Span<'static>>,
    lists: Vec<List>,
    code_block: bool,
    table: Option<Table>,
    cell: Vec<Span<'static>>,
    links: Vec<String>,
    heading: bool,
}

impl<'t> Renderer<'t> {
    fn new(base: Style, theme: &'t Theme) -> Renderer<'t> {
        Renderer {
            theme,
            base,
            lines: Vec::new(),
            spans: Vec::new(),
            styles: vec![base],
            prefixes: Vec::new(),
            marker: None,
            lists: Vec::new(),
            code_block: false,
            table: None,
            cell: Vec::new(),
            links: Vec::new(),
            heading: false,
        }
    }

    fn style(&self) -> Style {
        self.styles.last().copied().unwrap_or(self.base)
    }

    fn push_style(&mut self, f: impl FnOnce(Style) -> Style) {
        let next = f(self.style());
        self.styles.push(next);
    }

    fn text(&mut self, text: &str, style: Style) {
        if text.is_empty() {
            return;
        }
        let span = Span::styled(text.to_owned(), style);
        if self.table.is_some() {
            self.cell.push(span);
        } else {
            self.spans.push(span);
        }
    }

    /// Ends the current line, with the nesting prefix (or the item marker).
    fn flush(&mut self) {
        if self.spans.is_empty() && self.marker.is_none() {
            return;
        }
        let mut spans = self.line_prefix();
        spans.append(&mut self.spans);
        self.lines.push(Line::from(spans));
    }

    fn line_prefix(&mut self) -> Vec<Span<'static>> {
        let mut spans: Vec<Span<'static>> = self.prefixes.clone();
        if let Some(marker) = self.marker.take() {
            // The marker stands in for the item's own indent on its first line.
            spans.pop();
            spans.push(marker);
        }
        spans
    }

    fn blank(&mut self) {
        if self.lines.last().is_some_and(|l| !l.spans.is_empty()) {
            self.lines.push(Line::default());
        }
    }

    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(text) => {
                if self.code_block {
                    let style = self.theme.style("ui.help.key");
                    for (i, line) in text.split('\n').enumerate() {
                        if i > 0 {
                            self.flush_code_line();
                        }
                        self.text(line, style);
                    }
                } else {
                    let style = self.style();
                    self.text(&text, style);
                }
            }
            Event::Code(code) => {
                let style = self.theme.style("ui.help.key");
                self.text(&code, style);
            }
            Event::SoftBreak | Event::HardBreak => {
                if self.table.is_some() {
                    let style = self.style();
                    self.text(" ", style);
                } else {
                    self.flush();
                }
            }
            Event::Rule => {
                self.flush();
                self.lines.push(Line::from(Span::styled(
                    "─".repeat(24),
                    self.theme.style("ui.text.dim"),
                )));
            }
            Event::Html(html) | Event::InlineHtml(html) => {
                let style = self.style();
                self.text(html.trim_end_matches('\n'), style);
            }
            Event::TaskListMarker(done) => {
                let style = self.style();
                self.text(if done { "[x] " } else { "[ ] " }, style);
            }
            Event::FootnoteReference(name) => {
                let style = self.theme.style("ui.text.dim");
                self.text(&format!("[^{name}]"), style);
            }
            Event::InlineMath(m) | Event::DisplayMath(m) => {
                let style = self.theme.style("ui.help.key");
                self.text(&m, style);
            }
        }
    }

    fn flush_code_line(&mut self) {
        if self.spans.is_empty() {
            // Keep blank lines inside a code block.
            let prefix = self.line_prefix();
            self.lines.push(Line::from(prefix));
        } else {
            self.flush();
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Paragraph => {}
            Tag::Heading { level, .. } => {
                self.flush();
                self.blank();
                self.heading = true;
                let style = self.theme.style("ui.title");
                let marks = match level {
                    HeadingLevel::H1 | HeadingLevel::H2 => "",
                    HeadingLevel::H3 => "▸ ",
                    _ => "· ",
                };
                self.styles.push(style);
                self.text(marks, style);
            }
            Tag::BlockQuote(_) => {
                self.flush();
                self.prefixes
                    .push(Span::styled("│ ", self.theme.style("ui.text.dim")));
            }
            Tag::CodeBlock(kind) => {
                self.flush();
                self.code_block = true;
                if let CodeBlockKind::Fenced(lang) = &kind
                    && !lang.is_empty()
                {
                    let dim = self.theme.style("ui.text.dim");
                    self.text(&format!("┌ {lang}"), dim);
                    self.flush();
                }
                self.prefixes
                    .push(Span::styled("  ", self.theme.style("ui.help.key")));
            }
            Tag::List(start) => {
                self.flush();
                self.lists.push(List { next: start });
            }
            Tag::Item => {
                self.flush();
                let depth = self.lists.len().saturating_sub(1);
                let marker = match self.lists.last_mut().and_then(|l| l.next.as_mut()) {
                    Some(n) => {
                        let text = format!("{n}. ");
                        *n += 1;
                        text
                    }
                    None => if depth.is_multiple_of(2) {
                        "• "
                    } else {
                        "◦ "
                    }
                    .to_owned(),
                };
                let width = marker.width();
                self.prefixes.push(Span::raw(" ".repeat(width)));
                self.marker = Some(Span::styled(marker, self.theme.style("ui.help.key")));
            }
            Tag::Emphasis => self.push_style(|s| s.add_modifier(Modifier::ITALIC)),
            Tag::Strong => self.push_style(|s| s.add_modifier(Modifier::BOLD)),
            Tag::Strikethrough => self.push_style(|s| s.add_modifier(Modifier::CROSSED_OUT)),
            Tag::Link { dest_url, .. } => {
                self.links.push(dest_url.to_string());
                let link = self
                    .theme
                    .style("ui.help.key")
                    .add_modifier(Modifier::UNDERLINED);
                self.styles.push(link);
            }
            Tag::Image { dest_url, .. } => {
                self.links.push(dest_url.to_string());
                self.push_style(|s| s);
                let style = self.style();
                self.text("[image: ", style);
            }
            Tag::Table(alignments) => {
                self.flush();
                self.table = Some(Table {
                    alignments,
                    ..Table::default()
                });
            }
            Tag::TableHead => {
                if let Some(t) = &mut self.table {
                    t.in_header = true;
                    t.rows.push(Vec::new());
                }
            }
            Tag::TableRow => {
                if let Some(t) = &mut self.table {
                    t.rows.push(Vec::new());
                }
            }
            Tag::TableCell => self.cell.clear(),
            Tag::FootnoteDefinition(_)
            | Tag::HtmlBlock
            | Tag::DefinitionList
            | Tag::DefinitionListTitle
            | Tag::DefinitionListDefinition
            | Tag::MetadataBlock(_)
            | Tag::Superscript
            | Tag::Subscript => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph => {
                self.flush();
                if self.lists.is_empty() {
                    self.blank();
                }
            }
            TagEnd::Heading(_) => {
                self.styles.pop();
                self.heading = false;
                self.flush();
            }
            TagEnd::BlockQuote(_) => {
                self.flush();
                self.prefixes.pop();
            }
            TagEnd::CodeBlock => {
                if !self.spans.is_empty() {
                    self.flush();
                }
                self.code_block = false;
                self.prefixes.pop();
                self.blank();
            }
            TagEnd::List(_) => {
                self.flush();
                self.lists.pop();
                if self.lists.is_empty() {
                    self.blank();
                }
            }
            TagEnd::Item => {
                self.flush();
                self.prefixes.pop();
                self.marker = None;
            }
            TagEnd::Emphasis | TagEnd::Strong | TagEnd::Strikethrough => {
                self.styles.pop();
            }
            TagEnd::Link => {
                self.styles.pop();
                let url = self.links.pop().unwrap_or_default();
                let shown: String = self
                    .spans
                    .iter()
                    .chain(self.cell.iter())
                    .map(|s| s.content.as_ref())
                    .collect();
                if !url.is_empty() && !shown.ends_with(url.as_str()) {
                    let dim = self.theme.style("ui.text.dim");
                    self.text(&format!(" ({url})"), dim);
                }
            }
            TagEnd::Image => {
                self.styles.pop();
                let url = self.links.pop().unwrap_or_default();
                let style = self.style();
                self.text(&format!("] ({url})"), style);
            }
            TagEnd::TableCell => {
                let cell = std::mem::take(&mut self.cell);
                if let Some(row) = self.table.as_mut().and_then(|t| t.rows.last_mut()) {
                    row.push(cell);
                }
            }
            TagEnd::TableHead => {
                if let Some(t) = &mut self.table {
                    t.in_header = false;
                    t.header_rows = t.rows.len();
                }
            }
            TagEnd::TableRow => {}
            TagEnd::Table => {
                if let Some(table) = self.table.take() {
                    self.lay_out(table);
                }
                self.blank();
            }
            TagEnd::FootnoteDefinition
            | TagEnd::HtmlBlock
            | TagEnd::DefinitionList
            | TagEnd::DefinitionListTitle
            | TagEnd::DefinitionListDefinition
            | TagEnd::MetadataBlock(_)
            | TagEnd::Superscript
            | TagEnd::Subscript => {}
        }
    }

    /// Columns as wide as their widest cell, separated by `│`, the header
    /// bold and underlined by a rule.
    fn lay_out(&mut self, table: Table) {
        let columns = table.rows.iter().map(Vec::len).max().unwrap_or(0);
        let width =
            |cell: &[Span<'static>]| -> usize { cell.iter().map(|s| s.content.width()).sum() };
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                table
                    .rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|cell| width(cell))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let dim = self.theme.style("ui.text.dim");
        for (i, row) in table.rows.into_iter().enumerate() {
            let header = i < table.header_rows;
            let mut spans = self.prefixes.clone();
            for (c, cell) in row.into_iter().enumerate() {
                if c > 0 {
                    spans.push(Span::styled(" │ ", dim));
                }
                let pad = widths
                    .get(c)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(width(&cell));
                let (left, right) = match table.alignments.get(c) {
                    Some(Alignment::Right) => (pad, 0),
                    Some(Alignment::Center) => (pad / 2, pad - pad / 2),
                    _ => (0, pad),
                };
                spans.push(Span::raw(" ".repeat(left)));
                for span in cell {
                    spans.push(if header {
                        span.patch_style(Style::default().add_modifier(Modifier::BOLD))
                    } else {
                        span
                    });
                }
                spans.push(Span::raw(" ".repeat(right)));
            }
            self.lines.push(Line::from(spans));
            if header && i + 1 == table.header_rows {
                let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
                let mut spans = self.prefixes.clone();
                spans.push(Span::styled(rule.join("─┼─"), dim));
                self.lines.push(Line::from(spans));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::theme::ColorDepth;

    fn theme() -> Theme {
        Theme::load("default-dark", None, ColorDepth::TrueColor).expect("theme")
    }

    fn plain(lines: &[Line<'_>]) -> Vec<String> {
        lines
            .iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect()
    }

    #[test]
    fn snake_case_keeps_its_underscores_and_stays_upright() {
        let theme = theme();
        let lines = render(
            "Move it to in_progress, then *review*.",
            theme.style("ui.text"),
            &theme,
        );
        assert_eq!(plain(&lines), ["Move it to in_progress, then review."]);
        let spans = &lines[0].spans;
        let upright = spans
            .iter()
            .find(|s| s.content.contains("in_progress"))
            .expect("span");
        assert!(!upright.style.add_modifier.contains(Modifier::ITALIC));
        let review = spans.iter().find(|s| s.content == "review").expect("span");
        assert!(review.style.add_modifier.contains(Modifier::ITALIC));
    }

    #[test]
    fn an_answer_with_a_fence_a_table_a_numbered_list_and_a_heading() {
        let theme = theme();
        let answer = "### Plan\n\n1. Draft the header\n2. Ask **ana**\n\n```toml\nstatus = \"in_progress\"\n```\n\n| brief | due |\n|:--|--:|\n| Spring | 3d |\n| Holiday header | 12d |\n\nSee [the guide](https://example.com/guide).";
        let lines = render(answer, theme.style("ui.text"), &theme);
        assert_eq!(
            plain(&lines),
            [
                "▸ Plan",
                "1. Draft the header",
                "2. Ask ana",
                "",
                "┌ toml",
                "  status = \"in_progress\"",
                "",
                "brief          │ due",
                "───────────────┼────",
                "Spring         │  3d",
                "Holiday header │ 12d",
                "",
                "See the guide (https://example.com/guide).",
            ]
        );
        assert_eq!(lines[0].spans[1].style, theme.style("ui.title"));
        let ana = lines[2]
            .spans
            .iter()
            .find(|s| s.content == "ana")
            .expect("ana");
        assert!(ana.style.add_modifier.contains(Modifier::BOLD));
    }

    #[test]
    fn nested_bullets_indent_and_line_breaks_are_kept() {
        let theme = theme();
        let lines = render(
            "- one\n  - two\n- three\n\nfirst line\nsecond line",
            theme.style("ui.text"),
            &theme,
        );
        assert_eq!(
            plain(&lines),
            [
                "• one",
                "  ◦ two",
                "• three",
                "",
                "first line",
                "second line"
            ]
        );
    }
}
