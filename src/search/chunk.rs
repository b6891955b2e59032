//! Chunking for the knowledge base: splits Markdown or plain-text documents
//! (brand guidelines, case studies) into retrieval-sized chunks that carry
//! their heading path and the source line span they came from.
//!
//! Rules, in short:
//! - A document is parsed into sections (one per heading; plain text is a
//!   single section with no headings) made of blocks: paragraphs, lists,
//!   fenced code and tables. Sections never share a chunk and overlap never
//!   crosses a section boundary.
//! - Whole blocks are packed into a chunk up to `target_tokens`. A block
//!   that is larger than `max_tokens` is split: paragraphs at sentence ends,
//!   lists between items and then at sentence ends or line breaks, code and
//!   tables between lines (each piece is re-wrapped in its opening and
//!   closing fence, or under the table's header rows, so it stays valid
//!   Markdown). A sentence (or line) that alone exceeds `max_tokens` is
//!   hard-split on word boundaries.
//! - With `max_tokens >= 2` no chunk ever exceeds `max_tokens` as measured by
//!   [`estimate_tokens`]. The one documented exception: when `max_tokens`
//!   is below 2 a chunk still holds one word, which estimates to 2 tokens.
//! - After a split, each later chunk of the section opens with the last
//!   complete sentences of the chunk before it (up to `overlap_tokens`),
//!   but only when that chunk ended on a complete sentence of a paragraph or
//!   list; code and tables are never used as overlap.
//! - Thematic breaks are separators and are dropped from the text; YAML
//!   front matter at the top of a Markdown file is skipped.

use std::ops::Range;
use std::path::Path;

use super::terms::{Script, script};

use serde::{Deserialize, Serialize};

/// The markup a knowledge-base document is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocFormat {
    Markdown,
    PlainText,
}

impl DocFormat {
    /// From a file name's extension: .md/.markdown/.mdown -> Markdown;
    /// .txt/.text or none -> PlainText; anything else -> None.
    /// The comparison ignores ASCII case (`README.MD` is Markdown).
    pub fn from_path(path: &Path) -> Option<DocFormat> {
        let Some(ext) = path.extension() else {
            return Some(DocFormat::PlainText);
        };
        let ext = ext.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "md" | "markdown" | "mdown" => Some(DocFormat::Markdown),
            "txt" | "text" | "" => Some(DocFormat::PlainText),
            _ => None,
        }
    }
}

/// One retrievable piece of a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// Headings above this chunk, outermost first (e.g. ["Brand voice",
    /// "Tone of voice"]). Empty for text before any heading or in plain text.
    pub headings: Vec<String>,
    /// The chunk's text (Markdown kept as written, headings NOT repeated
    /// inside unless they are within the chunk's own span), trimmed.
    pub text: String,
    /// 1-based line numbers of the source span this chunk covers
    /// (first..=last), for citations. The span includes any overlap text;
    /// the fence or table header repeated on each piece of a split block
    /// counts only for the piece that starts the block.
    pub first_line: usize,
    pub last_line: usize,
}

/// Chunk size budgets, in [`estimate_tokens`] units.
#[derive(Debug, Clone, Copy)]
pub struct ChunkOptions {
    /// Pack blocks into a chunk up to this size.
    pub target_tokens: usize,
    /// Hard ceiling for a chunk (see the module docs for the one exception).
    pub max_tokens: usize,
    /// How much trailing text of a chunk is repeated at the start of the
    /// next chunk of the same section.
    pub overlap_tokens: usize,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        Self {
            target_tokens: 450,
            max_tokens: 600,
            overlap_tokens: 60,
        }
    }
}

/// Rough token count: words * 4 / 3, rounded up, calibrated per script.
/// Words are separated by Unicode whitespace; in scripts written without
/// spaces, every two Chinese, Japanese or Korean characters and every three
/// Thai, Lao, Khmer or Burmese characters count as a word, about what a
/// translation of the same English says (a 450-token chunk of Japanese
/// holds about 340 characters).
pub fn estimate_tokens(text: &str) -> usize {
    tokens_for_words(count_words(text))
}

/// Splits `text` into chunks; see the module docs for the rules.
/// Empty or whitespace-only input gives no chunks.
pub fn chunk_document(text: &str, format: DocFormat, opts: ChunkOptions) -> Vec<Chunk> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Vec::new();
    }
    let lines: Vec<&str> = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .collect();
    let sections = match format {
        DocFormat::Markdown => MarkdownParser::default().run(&lines),
        DocFormat::PlainText => parse_plain(&lines),
    };
    let budget = Budget::new(opts);
    sections
        .iter()
        .flat_map(|section| chunk_section(section, budget))
        .collect()
}

// ---------------------------------------------------------------------------
// Token arithmetic. Everything internal counts words, which add up exactly
// when texts are joined with whitespace; tokens are derived at the edges.

fn count_words(text: &str) -> usize {
    text.split_whitespace().map(|w| atoms(w).count()).sum()
}

/// Characters of a script without spaces that count as one word.
fn chars_per_word(script: Script) -> usize {
    match script {
        Script::Cjk => 2,
        Script::Dense => 3,
        Script::Other => usize::MAX,
    }
}

/// The word-sized pieces of one whitespace-free `word` (byte ranges in it):
/// the word itself in scripts with spaces; pairs of CJK characters and
/// triples of Thai-like characters otherwise. Punctuation rides along with
/// the piece before it.
fn atoms(word: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    let simple = !word.chars().any(|c| script(c) != Script::Other);
    let mut out: Vec<Range<usize>> = Vec::new();
    if simple {
        if !word.is_empty() {
            out.push(0..word.len());
        }
        return out.into_iter();
    }
    // (script of the open piece, chars in it, its range)
    let mut open: Option<(Script, usize, Range<usize>)> = None;
    for (i, c) in word.char_indices() {
        let end = i + c.len_utf8();
        let class = script(c);
        let is_mark = class == Script::Other && !c.is_alphanumeric();
        match &mut open {
            Some((_, _, range)) if is_mark => range.end = end,
            Some((open_class, n, range))
                if *open_class == class
                    && (class == Script::Other || *n < chars_per_word(class)) =>
            {
                *n += 1;
                range.end = end;
            }
            _ => {
                let start = match open.take() {
                    // Leading punctuation (`「`) joins the first real piece.
                    Some((Script::Other, _, range))
                        if !word[range.clone()].chars().any(char::is_alphanumeric) =>
                    {
                        range.start
                    }
                    Some((_, _, range)) => {
                        out.push(range);
                        i
                    }
                    None => i,
                };
                open = Some((class, 1, start..end));
            }
        }
    }
    if let Some((_, _, range)) = open {
        out.push(range);
    }
    out.into_iter()
}

fn tokens_for_words(words: usize) -> usize {
    words.saturating_mul(4).div_ceil(3)
}

/// The largest word count whose token estimate is at most `tokens`.
fn words_within(tokens: usize) -> usize {
    tokens / 4 * 3 + tokens % 4 * 3 / 4
}

/// [`ChunkOptions`] converted to word counts.
#[derive(Debug, Clone, Copy)]
struct Budget {
    target: usize,
    max: usize,
    overlap: usize,
}

impl Budget {
    fn new(opts: ChunkOptions) -> Self {
        // A chunk holds at least one word, whatever the options say.
        let max = words_within(opts.max_tokens).max(1);
        Self {
            target: words_within(opts.target_tokens).min(max),
            max,
            overlap: words_within(opts.overlap_tokens),
        }
    }
}

// ---------------------------------------------------------------------------
// Blocks and sections.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Prose,
    List,
    Code,
    Table,
}

/// A run of consecutive source lines forming one Markdown block.
#[derive(Debug)]
struct Block {
    kind: Kind,
    /// The lines as written (line endings removed), joined with `\n`.
    text: String,
    /// 1-based source line of the block's first line.
    first_line: usize,
    /// Byte offset in `text` where each line starts.
    line_starts: Vec<usize>,
    /// Leading lines repeated on every piece when the block is split: the
    /// opening fence of code, the header and delimiter rows of a table.
    head_lines: usize,
    /// Trailing source lines that close the block (a closing fence).
    tail_lines: usize,
    /// The closing fence appended to every piece of a split code block.
    closer: Option<String>,
}

impl Block {
    fn last_line(&self) -> usize {
        self.first_line + self.line_starts.len().saturating_sub(1)
    }

    /// Source line holding byte `offset` of `text`.
    fn line_at(&self, offset: usize) -> usize {
        let index = self.line_starts.partition_point(|&start| start <= offset);
        self.first_line + index.saturating_sub(1)
    }

    /// The byte range between the head and tail lines, if any.
    fn body(&self) -> Option<Range<usize>> {
        let lines = self.line_starts.len();
        let body_lines = lines.checked_sub(self.head_lines + self.tail_lines)?;
        if body_lines == 0 {
            return None;
        }
        let start = *self.line_starts.get(self.head_lines)?;
        let end = if self.tail_lines == 0 {
            self.text.len()
        } else {
            self.line_starts
                .get(lines - self.tail_lines)?
                .checked_sub(1)?
        };
        (start <= end).then_some(start..end)
    }
}

#[derive(Debug)]
struct Section {
    headings: Vec<String>,
    blocks: Vec<Block>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RawKind {
    Para,
    List,
    Table,
    Code {
        fence: char,
        len: usize,
        closed: bool,
    },
}

/// A block still being read.
#[derive(Debug)]
struct RawBlock<'a> {
    kind: RawKind,
    first_line: usize,
    lines: Vec<&'a str>,
}

impl<'a> RawBlock<'a> {
    fn new(kind: RawKind, first_line: usize, line: &'a str) -> Self {
        Self {
            kind,
            first_line,
            lines: vec![line],
        }
    }

    fn finish(self) -> Block {
        let text = self.lines.join("\n");
        let mut line_starts = Vec::with_capacity(self.lines.len());
        let mut offset = 0;
        for line in &self.lines {
            line_starts.push(offset);
            offset += line.len() + 1;
        }
        let (kind, head_lines, tail_lines, closer) = match self.kind {
            RawKind::Para => (Kind::Prose, 0, 0, None),
            RawKind::List => (Kind::List, 0, 0, None),
            RawKind::Table => (Kind::Table, 2, 0, None),
            RawKind::Code { fence, len, closed } => {
                let closer = match self.lines.last() {
                    Some(last) if closed => last.trim().to_string(),
                    _ => std::iter::repeat_n(fence, len).collect(),
                };
                (Kind::Code, 1, usize::from(closed), Some(closer))
            }
        };
        Block {
            kind,
            text,
            first_line: self.first_line,
            line_starts,
            head_lines,
            tail_lines,
            closer,
        }
    }
}

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

fn parse_plain(lines: &[&str]) -> Vec<Section> {
    let mut blocks = Vec::new();
    let mut open: Option<RawBlock> = None;
    for (index, &line) in lines.iter().enumerate() {
        if is_blank(line) {
            if let Some(raw) = open.take() {
                blocks.push(raw.finish());
            }
        } else if let Some(raw) = &mut open {
            raw.lines.push(line);
        } else {
            open = Some(RawBlock::new(RawKind::Para, index + 1, line));
        }
    }
    if let Some(raw) = open {
        blocks.push(raw.finish());
    }
    if blocks.is_empty() {
        Vec::new()
    } else {
        vec![Section {
            headings: Vec::new(),
            blocks,
        }]
    }
}

#[derive(Debug, Default)]
struct MarkdownParser<'a> {
    sections: Vec<Section>,
    /// (level, title) of the headings above the current line.
    path: Vec<(usize, String)>,
    /// Finished blocks of the current section.
    blocks: Vec<Block>,
    open: Option<RawBlock<'a>>,
    /// Blank lines inside an open list, kept only if the list goes on.
    pending_blank: Vec<&'a str>,
}

impl<'a> MarkdownParser<'a> {
    fn run(mut self, lines: &[&'a str]) -> Vec<Section> {
        let mut i = front_matter_len(lines);
        while let Some(&line) = lines.get(i) {
            let no = i + 1;
            i += 1;

            // Inside a fenced code block only the closing fence matters.
            if let Some(RawBlock {
                kind: RawKind::Code { fence, len, closed },
                lines: code,
                ..
            }) = &mut self.open
            {
                code.push(line);
                if is_fence_close(line, *fence, *len) {
                    *closed = true;
                    self.close_open();
                }
                continue;
            }

            if is_blank(line) {
                if self.open_kind() == Some(RawKind::List) {
                    self.pending_blank.push(line);
                } else {
                    self.close_open();
                }
                continue;
            }
            if !self.pending_blank.is_empty() && !continues_list(line) {
                self.close_open();
            }

            if let Some((level, title)) = atx_heading(line) {
                self.heading(level, title);
                continue;
            }
            if let Some((fence, len)) = fence_open(line) {
                self.close_open();
                let kind = RawKind::Code {
                    fence,
                    len,
                    closed: false,
                };
                self.open = Some(RawBlock::new(kind, no, line));
                continue;
            }
            if self.open_kind() == Some(RawKind::Para)
                && let Some(level) = setext_level(line)
                && let Some(para) = self.open.take()
            {
                let title: Vec<&str> = para.lines.iter().map(|l| l.trim()).collect();
                self.heading(level, title.join(" "));
                continue;
            }
            if is_thematic_break(line) {
                self.close_open();
                continue;
            }
            if line.contains('|') {
                if self.open_kind() == Some(RawKind::Table) {
                    self.push(line);
                    continue;
                }
                if let Some(&delimiter) = lines.get(i)
                    && is_table_delimiter(delimiter)
                {
                    self.close_open();
                    let mut table = RawBlock::new(RawKind::Table, no, line);
                    table.lines.push(delimiter);
                    self.open = Some(table);
                    i += 1;
                    continue;
                }
            }
            if self.open_kind() == Some(RawKind::Table) {
                self.close_open();
            }
            if let Some(marker) = list_marker(line) {
                match self.open_kind() {
                    Some(RawKind::List) => self.push(line),
                    Some(RawKind::Para) if !marker.interrupts_paragraph => self.push(line),
                    _ => {
                        self.close_open();
                        self.open = Some(RawBlock::new(RawKind::List, no, line));
                    }
                }
                continue;
            }
            match self.open_kind() {
                Some(RawKind::List | RawKind::Para) => self.push(line),
                _ => {
                    self.close_open();
                    self.open = Some(RawBlock::new(RawKind::Para, no, line));
                }
            }
        }
        self.flush_section();
        self.sections
    }

    fn open_kind(&self) -> Option<RawKind> {
        self.open.as_ref().map(|raw| raw.kind)
    }

    fn push(&mut self, line: &'a str) {
        if let Some(open) = &mut self.open {
            open.lines.append(&mut self.pending_blank);
            open.lines.push(line);
        }
    }

    fn close_open(&mut self) {
        self.pending_blank.clear();
        if let Some(raw) = self.open.take() {
            self.blocks.push(raw.finish());
        }
    }

    fn flush_section(&mut self) {
        self.close_open();
        if !self.blocks.is_empty() {
            self.sections.push(Section {
                headings: self.path.iter().map(|(_, title)| title.clone()).collect(),
                blocks: std::mem::take(&mut self.blocks),
            });
        }
    }

    fn heading(&mut self, level: usize, title: String) {
        self.flush_section();
        while self.path.last().is_some_and(|(open, _)| *open >= level) {
            self.path.pop();
        }
        if !title.is_empty() {
            self.path.push((level, title));
        }
    }
}

/// Number of leading lines that are YAML front matter (0 if none). Only a
/// `---` first line closed by `---`/`...` with key-like lines in between
/// counts, so a leading thematic break is not mistaken for it.
fn front_matter_len(lines: &[&str]) -> usize {
    if lines.first().map(|line| line.trim_end()) != Some("---") {
        return 0;
    }
    let mut saw_key = false;
    for (index, line) in lines.iter().enumerate().skip(1) {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed == "..." {
            return if saw_key { index + 1 } else { 0 };
        }
        if is_blank(line) || line.starts_with([' ', '\t', '-', '#']) {
            continue;
        }
        let key = trimmed.split(':').next().unwrap_or("");
        let key_like = trimmed.contains(':')
            && !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
        if !key_like {
            return 0;
        }
        saw_key = true;
    }
    0
}

/// Strips up to `max` leading spaces; `None` if there are more.
fn strip_indent(line: &str, max: usize) -> Option<&str> {
    let spaces = line.bytes().take_while(|&b| b == b' ').count();
    if spaces > max {
        None
    } else {
        line.get(spaces..)
    }
}

/// `# Title` .. `###### Title`, with an optional closing run of `#`s.
fn atx_heading(line: &str) -> Option<(usize, String)> {
    let rest = strip_indent(line, 3)?;
    let level = rest.bytes().take_while(|&b| b == b'#').count();
    if level == 0 || level > 6 {
        return None;
    }
    let after = rest.get(level..)?;
    if !(after.is_empty() || after.starts_with([' ', '\t'])) {
        return None;
    }
    let mut title = after.trim();
    let without_closing = title.trim_end_matches('#');
    if without_closing.is_empty() {
        title = "";
    } else if without_closing.ends_with([' ', '\t']) {
        title = without_closing.trim_end();
    }
    Some((level, title.to_string()))
}

/// A setext underline: level 1 for `===`, level 2 for `---`.
fn setext_level(line: &str) -> Option<usize> {
    let rest = strip_indent(line, 3)?.trim_end();
    if rest.is_empty() {
        None
    } else if rest.bytes().all(|b| b == b'=') {
        Some(1)
    } else if rest.bytes().all(|b| b == b'-') {
        Some(2)
    } else {
        None
    }
}

fn is_thematic_break(line: &str) -> bool {
    let Some(rest) = strip_indent(line, 3) else {
        return false;
    };
    let mut mark = None;
    let mut count = 0;
    for c in rest.chars() {
        match c {
            ' ' | '\t' => {}
            '-' | '*' | '_' => {
                if mark.is_some_and(|m| m != c) {
                    return false;
                }
                mark = Some(c);
                count += 1;
            }
            _ => return false,
        }
    }
    count >= 3
}

/// An opening code fence: its character and length. Indentation is not
/// limited, so fences nested in list items are recognised too.
fn fence_open(line: &str) -> Option<(char, usize)> {
    let rest = line.trim_start_matches([' ', '\t']);
    let fence = rest.chars().next()?;
    if fence != '`' && fence != '~' {
        return None;
    }
    let len = rest.chars().take_while(|&c| c == fence).count();
    if len < 3 {
        return None;
    }
    let info = rest.get(len..).unwrap_or("");
    if fence == '`' && info.contains('`') {
        return None;
    }
    Some((fence, len))
}

fn is_fence_close(line: &str, fence: char, len: usize) -> bool {
    let rest = line.trim_start_matches([' ', '\t']);
    let count = rest.chars().take_while(|&c| c == fence).count();
    count >= len && rest.get(count..).is_some_and(|tail| tail.trim().is_empty())
}

fn is_table_delimiter(line: &str) -> bool {
    let row = line.trim();
    if !row.contains('|') {
        return false;
    }
    let row = row.strip_prefix('|').unwrap_or(row);
    let row = row.strip_suffix('|').unwrap_or(row);
    if row.trim().is_empty() {
        return false;
    }
    row.split('|').all(|cell| {
        let cell = cell.trim();
        let cell = cell.strip_prefix(':').unwrap_or(cell);
        let cell = cell.strip_suffix(':').unwrap_or(cell);
        !cell.is_empty() && cell.bytes().all(|b| b == b'-')
    })
}

struct ListMarker {
    /// Only a non-empty bullet item or an ordered item numbered 1 may start
    /// a list right after a paragraph line (CommonMark).
    interrupts_paragraph: bool,
}

/// `- `, `* `, `+ `, `1. `, `1) ` at any indentation.
fn list_marker(line: &str) -> Option<ListMarker> {
    let rest = line.trim_start_matches([' ', '\t']);
    let (marker_len, may_interrupt) = if rest.starts_with(['-', '*', '+']) {
        (1, true)
    } else {
        let digits = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        if !rest.get(digits..)?.starts_with(['.', ')']) {
            return None;
        }
        (digits + 1, rest.get(..digits) == Some("1"))
    };
    let after = rest.get(marker_len..)?;
    if !(after.is_empty() || after.starts_with([' ', '\t'])) {
        return None;
    }
    Some(ListMarker {
        interrupts_paragraph: may_interrupt && !after.trim().is_empty(),
    })
}

/// After a blank line, a list goes on with another item or indented text.
fn continues_list(line: &str) -> bool {
    list_marker(line).is_some() || line.starts_with("  ") || line.starts_with('\t')
}

// ---------------------------------------------------------------------------
// Splitting a block into units that each fit `max`.

fn slice(text: &str, range: Range<usize>) -> &str {
    text.get(range).unwrap_or("")
}

fn trim_range(text: &str, range: Range<usize>) -> Range<usize> {
    let s = slice(text, range.clone());
    let start = range.start + (s.len() - s.trim_start().len());
    let end = range.start + s.trim_end().len();
    if start >= end {
        start..start
    } else {
        start..end
    }
}

#[derive(Debug, Clone, Copy)]
enum Level {
    /// List items (a line starting with a list marker starts an item).
    Items,
    /// Sentence ends: `.` `!` `?` (optionally closed by quotes, brackets or
    /// emphasis) followed by whitespace.
    Sentences,
    /// Sentence ends and line breaks (for lists).
    SentencesOrLines,
    /// Line breaks.
    Lines,
    /// Greedy runs of at most `budget` words.
    Words,
}

impl Level {
    fn pieces(self, text: &str, range: Range<usize>, budget: usize) -> Vec<Range<usize>> {
        match self {
            Level::Items => item_pieces(text, range),
            Level::Sentences => sentence_pieces(text, range, false),
            Level::SentencesOrLines => sentence_pieces(text, range, true),
            Level::Lines => line_pieces(text, range),
            Level::Words => word_pieces(text, range, budget),
        }
    }
}

fn is_terminator(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…' | '。' | '！' | '？')
}

fn is_closer(c: char) -> bool {
    matches!(c, '"' | '\'' | '”' | '’' | '»' | ')' | ']' | '*' | '_')
}

const ABBREVIATIONS: &[&str] = &[
    "e.g", "i.e", "vs", "cf", "mr", "mrs", "ms", "dr", "prof", "approx", "fig",
];

/// Whether a candidate sentence really ends the sentence: not a bare list
/// number (`1.`) and not a common abbreviation (`e.g.`).
fn ends_sentence(candidate: &str) -> bool {
    let core = candidate
        .trim()
        .trim_end_matches(|c| is_terminator(c) || is_closer(c));
    if core.is_empty() || core.chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let last_word = core
        .rsplit(char::is_whitespace)
        .next()
        .unwrap_or(core)
        .trim_start_matches(['(', '[', '"', '\'', '*', '_'])
        .to_lowercase();
    !ABBREVIATIONS.contains(&last_word.as_str())
}

fn sentence_pieces(text: &str, range: Range<usize>, lines_too: bool) -> Vec<Range<usize>> {
    let s = slice(text, range.clone());
    let base = range.start;
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if lines_too && c == '\n' {
            out.push(base + start..base + i);
            start = i + 1;
            continue;
        }
        if !is_terminator(c) {
            continue;
        }
        let mut end = i + c.len_utf8();
        while let Some(&(j, d)) = chars.peek() {
            if !is_closer(d) {
                break;
            }
            end = j + d.len_utf8();
            chars.next();
        }
        let at_break = s
            .get(end..)
            .is_none_or(|rest| rest.chars().next().is_none_or(char::is_whitespace));
        if at_break && ends_sentence(s.get(start..end).unwrap_or("")) {
            out.push(base + start..base + end);
            start = end;
        }
    }
    if start < s.len() {
        out.push(base + start..base + s.len());
    }
    out
}

fn line_pieces(text: &str, range: Range<usize>) -> Vec<Range<usize>> {
    let s = slice(text, range.clone());
    let base = range.start;
    let mut out = Vec::new();
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        if b == b'\n' {
            out.push(base + start..base + i);
            start = i + 1;
        }
    }
    out.push(base + start..base + s.len());
    out
}

fn item_pieces(text: &str, range: Range<usize>) -> Vec<Range<usize>> {
    let lines = line_pieces(text, range.clone());
    let mut out = Vec::new();
    let mut start = range.start;
    for line in lines.iter().skip(1) {
        if list_marker(slice(text, line.clone())).is_some() {
            out.push(start..line.start.saturating_sub(1).max(start));
            start = line.start;
        }
    }
    out.push(start..range.end);
    out
}

fn word_pieces(text: &str, range: Range<usize>, budget: usize) -> Vec<Range<usize>> {
    let s = slice(text, range.clone());
    let base = range.start;
    let mut words: Vec<Range<usize>> = Vec::new();
    let mut word_start = None;
    for (i, c) in s.char_indices() {
        match (c.is_whitespace(), word_start) {
            (true, Some(start)) => {
                words.push(base + start..base + i);
                word_start = None;
            }
            (false, None) => word_start = Some(i),
            _ => {}
        }
    }
    if let Some(start) = word_start {
        words.push(base + start..base + s.len());
    }
    let words: Vec<Range<usize>> = words
        .into_iter()
        .flat_map(|w| {
            let offset = w.start;
            atoms(slice(text, w)).map(move |a| offset + a.start..offset + a.end)
        })
        .collect();
    words
        .chunks(budget.max(1))
        .enumerate()
        .filter_map(|(index, group)| {
            let first = group.first()?;
            let last = group.last()?;
            let start = if index == 0 { range.start } else { first.start };
            Some(start..last.end)
        })
        .collect()
}

/// Splits `range` with the first level whose pieces are needed, recursing
/// into the next level for pieces still over `budget` words.
fn split_into(
    text: &str,
    range: Range<usize>,
    levels: &[Level],
    budget: usize,
    trim: bool,
    out: &mut Vec<Range<usize>>,
) {
    let words = count_words(slice(text, range.clone()));
    match levels.split_first() {
        Some((&level, rest)) if words > budget => {
            for piece in level.pieces(text, range, budget) {
                let piece = if trim { trim_range(text, piece) } else { piece };
                split_into(text, piece, rest, budget, trim, out);
            }
        }
        _ => out.push(range),
    }
}

/// Word counts for pieces. Word-less pieces are dropped from prose; in
/// verbatim blocks (code, tables) they are folded into a neighbour so the
/// pieces stay contiguous.
fn count_pieces(
    text: &str,
    pieces: Vec<Range<usize>>,
    verbatim: bool,
) -> Vec<(Range<usize>, usize)> {
    let mut out: Vec<(Range<usize>, usize)> = Vec::new();
    let mut pending_start = None;
    for piece in pieces {
        let words = count_words(slice(text, piece.clone()));
        if words == 0 {
            if verbatim {
                match out.last_mut() {
                    Some((last, _)) => last.end = last.end.max(piece.end),
                    None => {
                        pending_start.get_or_insert(piece.start);
                    }
                }
            }
            continue;
        }
        let start = pending_start.take().unwrap_or(piece.start);
        out.push((start..piece.end, words));
    }
    out
}

/// A block ready for packing.
struct Prepared<'b> {
    block: &'b Block,
    /// Split code/table pieces are wrapped in the head (and closer).
    wrap: bool,
    wrapper_words: usize,
    body: Range<usize>,
    /// Pieces of `block.text` to pack, each within the max budget.
    units: Vec<(Range<usize>, usize)>,
    /// The block's sentences (prose and lists only), for overlap.
    sentences: Vec<(Range<usize>, usize)>,
}

impl<'b> Prepared<'b> {
    fn new(block: &'b Block, budget: Budget) -> Self {
        let text = block.text.as_str();
        let whole = trim_range(text, 0..text.len());
        let sentence_level = match block.kind {
            Kind::Prose => Some(Level::Sentences),
            Kind::List => Some(Level::SentencesOrLines),
            Kind::Code | Kind::Table => None,
        };
        let sentences = sentence_level
            .map(|level| {
                let pieces = level
                    .pieces(text, whole.clone(), budget.max)
                    .into_iter()
                    .map(|piece| trim_range(text, piece))
                    .collect();
                count_pieces(text, pieces, false)
            })
            .unwrap_or_default();
        let mut prepared = Prepared {
            block,
            wrap: false,
            wrapper_words: 0,
            body: 0..0,
            units: Vec::new(),
            sentences,
        };

        let total = count_words(text);
        if total <= budget.max {
            prepared.units = vec![(whole, total)];
            return prepared;
        }
        let (range, levels, max, verbatim): (_, &[Level], _, _) = match block.kind {
            Kind::Prose => (
                whole,
                &[Level::Sentences, Level::Lines, Level::Words],
                budget.max,
                false,
            ),
            Kind::List => (
                whole,
                &[Level::Items, Level::SentencesOrLines, Level::Words],
                budget.max,
                false,
            ),
            Kind::Code | Kind::Table => {
                let levels = &[Level::Lines, Level::Words];
                match block.body() {
                    Some(body) => {
                        let head = slice(text, 0..body.start.saturating_sub(1));
                        let wrapper =
                            count_words(head) + block.closer.as_deref().map_or(0, count_words);
                        if wrapper < budget.max {
                            prepared.wrap = true;
                            prepared.wrapper_words = wrapper;
                            prepared.body = body.clone();
                            (body, levels, budget.max - wrapper, true)
                        } else {
                            (0..text.len(), levels, budget.max, true)
                        }
                    }
                    None => (0..text.len(), levels, budget.max, true),
                }
            }
        };
        let mut pieces = Vec::new();
        split_into(text, range, levels, max, !verbatim, &mut pieces);
        prepared.units = count_pieces(text, pieces, verbatim);
        prepared
    }

    /// The text for a range of this block, with its source line span.
    fn render(&self, range: Range<usize>) -> (String, usize, usize) {
        let block = self.block;
        let text = block.text.as_str();
        let mut first = block.line_at(range.start);
        let mut last = block.line_at(range.end.saturating_sub(1).max(range.start));
        let body = slice(text, range.clone());
        if !self.wrap {
            return (body.to_string(), first, last);
        }
        let head = slice(text, 0..self.body.start.saturating_sub(1));
        let mut out = String::with_capacity(head.len() + body.len() + 8);
        out.push_str(head);
        out.push('\n');
        out.push_str(body);
        if let Some(closer) = &block.closer {
            out.push('\n');
            out.push_str(closer);
        }
        if range.start <= self.body.start {
            first = block.first_line;
        }
        if range.end >= self.body.end && block.tail_lines > 0 {
            last = block.last_line();
        }
        (out, first, last)
    }
}

// ---------------------------------------------------------------------------
// Packing units into chunks.

/// A contiguous range of one block's text inside a chunk.
#[derive(Debug, Clone)]
struct Piece {
    block: usize,
    range: Range<usize>,
}

fn chunk_section(section: &Section, budget: Budget) -> Vec<Chunk> {
    let prepared: Vec<Prepared> = section
        .blocks
        .iter()
        .map(|block| Prepared::new(block, budget))
        .collect();
    let mut chunks = Vec::new();
    let mut current: Vec<Piece> = Vec::new();
    let mut words_in_chunk = 0;
    let mut has_content = false;

    for (index, block) in prepared.iter().enumerate() {
        let cost = |continues: bool, words: usize| {
            if block.wrap && !continues {
                words + block.wrapper_words
            } else {
                words
            }
        };
        for (range, words) in &block.units {
            let continues = current.last().is_some_and(|piece| piece.block == index);
            let mut unit_cost = cost(continues, *words);
            if has_content && words_in_chunk + unit_cost > budget.target {
                let overlap = match current.last() {
                    Some(last) => overlap_sentences(&prepared, last, budget.overlap)
                        .map(|sentences| (last.block, sentences)),
                    None => None,
                };
                chunks.push(render_chunk(&section.headings, &prepared, &current));
                current.clear();
                words_in_chunk = 0;
                unit_cost = cost(false, *words);
                if let Some((overlap_block, sentences)) = overlap {
                    let mut overlap_words: usize = sentences.iter().map(|(_, w)| w).sum();
                    let mut skip = 0;
                    while skip < sentences.len() && overlap_words + unit_cost > budget.max {
                        overlap_words -= sentences[skip].1;
                        skip += 1;
                    }
                    if let (Some((first, _)), Some((last, _))) =
                        (sentences.get(skip), sentences.last())
                    {
                        current.push(Piece {
                            block: overlap_block,
                            range: first.start..last.end,
                        });
                        words_in_chunk = overlap_words;
                    }
                }
            }
            match current.last_mut() {
                Some(last) if last.block == index && last.range.end <= range.start => {
                    last.range.end = range.end;
                }
                _ => current.push(Piece {
                    block: index,
                    range: range.clone(),
                }),
            }
            words_in_chunk += unit_cost;
            has_content = true;
        }
    }
    if has_content {
        chunks.push(render_chunk(&section.headings, &prepared, &current));
    }
    chunks
}

/// The complete sentences that end `last` (the final piece of a chunk),
/// latest last, totalling at most `budget` words. `None` when the piece is
/// code or a table, ends mid-sentence, or nothing fits.
fn overlap_sentences(
    prepared: &[Prepared],
    last: &Piece,
    budget: usize,
) -> Option<Vec<(Range<usize>, usize)>> {
    let block = prepared.get(last.block)?;
    // Sentences are in order; skip those ending after the piece.
    let candidates = block
        .sentences
        .partition_point(|(range, _)| range.end <= last.range.end);
    let mut taken = Vec::new();
    let mut total = 0;
    for (range, words) in block.sentences.get(..candidates)?.iter().rev() {
        if range.start < last.range.start
            || (taken.is_empty() && range.end != last.range.end)
            || total + words > budget
        {
            break;
        }
        total += words;
        taken.push((range.clone(), *words));
    }
    taken.reverse();
    (!taken.is_empty()).then_some(taken)
}

fn render_chunk(headings: &[String], prepared: &[Prepared], pieces: &[Piece]) -> Chunk {
    let mut text = String::new();
    let mut first_line = usize::MAX;
    let mut last_line = 0;
    for piece in pieces {
        let Some(block) = prepared.get(piece.block) else {
            continue;
        };
        let (piece_text, first, last) = block.render(piece.range.clone());
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(&piece_text);
        first_line = first_line.min(first);
        last_line = last_line.max(last);
    }
    Chunk {
        headings: headings.to_vec(),
        text: text.trim().to_string(),
        first_line: first_line.min(last_line),
        last_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(target_tokens: usize, max_tokens: usize, overlap_tokens: usize) -> ChunkOptions {
        ChunkOptions {
            target_tokens,
            max_tokens,
            overlap_tokens,
        }
    }

    fn md(text: &str) -> Vec<Chunk> {
        chunk_document(text, DocFormat::Markdown, ChunkOptions::default())
    }

    fn source_span(source: &str, chunk: &Chunk) -> String {
        let lines: Vec<&str> = source.lines().collect();
        lines
            .get(chunk.first_line - 1..chunk.last_line)
            .map(|span| span.join("\n"))
            .unwrap_or_default()
    }

    #[test]
    fn doc_format_comes_from_the_extension() {
        let format = |name: &str| DocFormat::from_path(Path::new(name));
        assert_eq!(format("brand.md"), Some(DocFormat::Markdown));
        assert_eq!(format("Brand.MARKDOWN"), Some(DocFormat::Markdown));
        assert_eq!(format("kb/case.mdown"), Some(DocFormat::Markdown));
        assert_eq!(format("notes.txt"), Some(DocFormat::PlainText));
        assert_eq!(format("notes.text"), Some(DocFormat::PlainText));
        assert_eq!(format("README"), Some(DocFormat::PlainText));
        assert_eq!(format("logo.png"), None);
        assert_eq!(format("deck.pdf"), None);
    }

    #[test]
    fn scripts_without_spaces_count_by_characters() {
        // Two CJK characters, three Thai characters to a word.
        assert_eq!(count_words("東京タワー"), 3);
        assert_eq!(count_words("「ロゴ」の余白"), 3);
        assert_eq!(count_words("ทุกสองสัปดาห์"), 5);
        assert_eq!(count_words("iPhoneの画面"), 3);
        assert_eq!(count_words("plain English words"), 3);
        // Pieces cut at word boundaries add up to the whole.
        let text = "ブランドのパレットは三色です。写真は自然光で撮影します。";
        let pieces = word_pieces(text, 0..text.len(), 4);
        let sum: usize = pieces.iter().map(|r| count_words(&text[r.clone()])).sum();
        assert_eq!(sum, count_words(text));
        assert!(pieces.iter().all(|r| count_words(&text[r.clone()]) <= 4));
    }

    #[test]
    fn a_japanese_section_chunks_like_its_english_counterpart() {
        let english = "Keep clear space around the logo equal to the height of the letter S. \
            Never stretch, rotate or recolour the mark, and never place it on a busy photograph. \
            Use the full-colour logo on white and the single-colour version on brand colours. "
            .repeat(30);
        let japanese = "ロゴの周囲には、Sの文字の高さと同じ余白を必ず確保してください。\
            ロゴを引き伸ばしたり、回転させたり、色を変えたりしないでください。また、情報量の多い写真の上には置かないでください。\
            白地にはフルカラーのロゴを、ブランドカラーの上では単色のロゴを使います。"
            .repeat(30);
        let opts = ChunkOptions::default();
        let en = chunk_document(&format!("## Logo\n\n{english}"), DocFormat::Markdown, opts);
        let ja = chunk_document(&format!("## ロゴ\n\n{japanese}"), DocFormat::Markdown, opts);
        assert!(en.len() >= 3, "{}", en.len());
        assert!(
            ja.len() + 1 >= en.len() && ja.len() <= en.len() * 2,
            "English {} chunks, Japanese {}",
            en.len(),
            ja.len()
        );
        for c in &ja {
            assert!(estimate_tokens(&c.text) <= opts.max_tokens);
            assert!(c.text.chars().count() < 1200, "{}", c.text.chars().count());
        }
    }

    #[test]
    fn estimate_tokens_rounds_words_up() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("one"), 2);
        assert_eq!(estimate_tokens("one two three"), 4);
        assert_eq!(estimate_tokens("a b c d"), 6);
        assert_eq!(estimate_tokens("  spaced\n\tout  words "), 4);
        for tokens in 0..50 {
            let words = words_within(tokens);
            assert!(tokens_for_words(words) <= tokens);
            assert!(tokens_for_words(words + 1) > tokens);
        }
    }

    #[test]
    fn default_options_are_450_600_60() {
        let o = ChunkOptions::default();
        assert_eq!(
            (o.target_tokens, o.max_tokens, o.overlap_tokens),
            (450, 600, 60)
        );
    }

    #[test]
    fn headings_form_the_path_and_pop_by_level() {
        let doc = "Preface before any heading.\n\n\
                   # Brand\nIntro.\n\n\
                   ## Voice\nVoice body. #brandvoice is our tag.\n\n\
                   ### Tone of voice\nTone body.\n\n\
                   ## Colour ##\nColour body.\n\n\
                   # Case studies\nCase body.\n";
        let chunks = md(doc);
        let got: Vec<(Vec<&str>, &str)> = chunks
            .iter()
            .map(|c| {
                (
                    c.headings.iter().map(String::as_str).collect(),
                    c.text.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (vec![], "Preface before any heading."),
                (vec!["Brand"], "Intro."),
                (
                    vec!["Brand", "Voice"],
                    "Voice body. #brandvoice is our tag."
                ),
                (vec!["Brand", "Voice", "Tone of voice"], "Tone body."),
                (vec!["Brand", "Colour"], "Colour body."),
                (vec!["Case studies"], "Case body."),
            ]
        );
    }

    #[test]
    fn code_fence_hash_lines_are_not_headings() {
        let doc = "# Setup\nRun this:\n\n```bash\n# install deps\nnpm install\n## not a heading\n```\n\n\
                   ~~~\n# also code\n~~~~\nAfter code.\n";
        let chunks = md(doc);
        assert_eq!(chunks.len(), 1, "{chunks:#?}");
        let chunk = &chunks[0];
        assert_eq!(chunk.headings, vec!["Setup"]);
        for expected in [
            "Run this:",
            "```bash\n# install deps\nnpm install\n## not a heading\n```",
            "~~~\n# also code\n~~~~",
            "After code.",
        ] {
            assert!(chunk.text.contains(expected), "missing {expected:?}");
        }
        // An unclosed fence swallows the rest: nothing after it is a heading.
        let chunks = md("# A\n```\n# B\ntext\n");
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].headings, vec!["A"]);
        assert_eq!(chunks[0].text, "```\n# B\ntext");
    }

    #[test]
    fn long_section_splits_within_max_with_overlap() {
        let sentences: Vec<String> = (1..=40)
            .map(|i| format!("Sentence number {i} talks about teal."))
            .collect();
        let doc = format!("# Guide\n\n{}\n", sentences.join(" "));
        // 6 words = 8 tokens per sentence; the overlap budget fits one.
        let o = opts(60, 80, 10);
        let chunks = chunk_document(&doc, DocFormat::Markdown, o);
        assert!(chunks.len() >= 3, "{chunks:#?}");
        for chunk in &chunks {
            assert_eq!(chunk.headings, vec!["Guide"]);
            assert!(estimate_tokens(&chunk.text) <= o.max_tokens, "{chunk:#?}");
        }
        for pair in chunks.windows(2) {
            let last_sentence = pair[0]
                .text
                .rfind("Sentence number")
                .and_then(|at| pair[0].text.get(at..))
                .unwrap_or_default();
            assert!(last_sentence.ends_with("teal."));
            assert!(
                pair[1].text.starts_with(last_sentence),
                "{:?} should start with {last_sentence:?}",
                pair[1].text
            );
            assert_ne!(pair[0].text, pair[1].text);
        }
        for sentence in &sentences {
            assert!(chunks.iter().any(|c| c.text.contains(sentence.as_str())));
        }
    }

    #[test]
    fn sections_never_share_a_chunk() {
        let doc = "# A\nTiny.\n\n# B\nAlso tiny.\n\n## B1\n\n# C\n\nOne sentence here.\n";
        let chunks = md(doc);
        let got: Vec<(Vec<String>, &str)> = chunks
            .iter()
            .map(|c| (c.headings.clone(), c.text.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (vec!["A".to_string()], "Tiny."),
                (vec!["B".to_string()], "Also tiny."),
                (vec!["C".to_string()], "One sentence here."),
            ]
        );

        // A heading with no body gives no chunk at all.
        assert!(md("# Only\n## Headings\n\n### Here\n").is_empty());

        // Overlap does not carry across a heading.
        let long: Vec<String> = (1..=20).map(|i| format!("Point {i} is made.")).collect();
        let doc = format!("# A\n{}\n# B\nFresh start.\n", long.join(" "));
        let chunks = chunk_document(&doc, DocFormat::Markdown, opts(20, 30, 10));
        assert!(chunks.len() > 2);
        let last = chunks.last().map(|c| c.text.as_str());
        assert_eq!(last, Some("Fresh start."));
    }

    #[test]
    fn setext_headings_and_thematic_breaks() {
        let doc = "Brand book\n==========\n\nIntro text.\n\nVoice\n-----\n\nBe warm.\n\n---\n\n\
                   Still voice after a break.\n***\nAnd after another.\n";
        let chunks = md(doc);
        assert_eq!(chunks.len(), 2, "{chunks:#?}");
        assert_eq!(chunks[0].headings, vec!["Brand book"]);
        assert_eq!(chunks[0].text, "Intro text.");
        assert_eq!(chunks[1].headings, vec!["Brand book", "Voice"]);
        assert_eq!(
            chunks[1].text,
            "Be warm.\n\nStill voice after a break.\n\nAnd after another."
        );
        assert!(!chunks.iter().any(|c| c.text.contains("---")));

        // A leading `---` is a break, and a `- ` list is not an underline.
        let chunks = md("---\nFirst.\n- item\n");
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].headings, Vec::<String>::new());
        assert_eq!(chunks[0].text, "First.\n\n- item");
    }

    #[test]
    fn front_matter_is_skipped_not_a_heading() {
        let doc = "---\ntitle: Brand book\ntags:\n  - brand\n---\n# Voice\nBe warm.\n";
        let chunks = md(doc);
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].headings, vec!["Voice"]);
        assert_eq!(chunks[0].text, "Be warm.");
        assert_eq!((chunks[0].first_line, chunks[0].last_line), (7, 7));
    }

    #[test]
    fn plain_text_paragraphs_pack_to_target() {
        let paragraphs: Vec<String> = (1..=10)
            .map(|i| format!("Paragraph {i} has exactly ten words in it for testing."))
            .collect();
        let doc = paragraphs.join("\n\n");
        // Ten words are 14 tokens; a 40-token target holds three paragraphs.
        let chunks = chunk_document(&doc, DocFormat::PlainText, opts(40, 60, 0));
        assert_eq!(chunks.len(), 4, "{chunks:#?}");
        for (index, chunk) in chunks.iter().enumerate() {
            assert!(chunk.headings.is_empty());
            assert!(estimate_tokens(&chunk.text) <= 40);
            let expected = paragraphs
                .iter()
                .skip(index * 3)
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n\n");
            assert_eq!(chunk.text, expected);
        }

        // Plain text has no headings: `#` lines are just text.
        let chunks = chunk_document(
            "# Not a heading\nbody\n",
            DocFormat::PlainText,
            opts(40, 60, 0),
        );
        assert_eq!(chunks.len(), 1);
        assert!(chunks[0].headings.is_empty());
        assert_eq!(chunks[0].text, "# Not a heading\nbody");
    }

    #[test]
    fn lists_stay_whole_and_split_between_items() {
        let intro = "Our colour rules are short and strict for every channel.";
        let items: Vec<String> = (1..=6)
            .map(|i| format!("- Rule {i} keeps the palette calm."))
            .collect();
        let doc = format!("# Colour\n{intro}\n\n{}\n", items.join("\n"));
        // The list (36 words) fits max but not after the intro: it moves whole.
        let chunks = chunk_document(&doc, DocFormat::Markdown, opts(40, 60, 0));
        assert_eq!(chunks.len(), 2, "{chunks:#?}");
        assert_eq!(chunks[0].text, intro);
        assert_eq!(chunks[1].text, items.join("\n"));

        // A list over max splits between items, never inside one.
        let o = opts(20, 30, 8);
        let chunks = chunk_document(&doc, DocFormat::Markdown, o);
        assert!(chunks.len() > 2);
        for chunk in chunks.iter().skip(1) {
            assert!(estimate_tokens(&chunk.text) <= o.max_tokens);
            for line in chunk.text.lines() {
                assert!(
                    items.iter().any(|item| item == line),
                    "split item: {line:?}"
                );
            }
        }
    }

    #[test]
    fn oversized_code_fence_is_split_between_lines_and_refenced() {
        let code: Vec<String> = (1..=60).map(|i| format!("let x{i} = {i};")).collect();
        let doc = format!("# Snippets\n\n```rust\n{}\n```\n", code.join("\n"));
        let o = opts(40, 60, 10);
        let chunks = chunk_document(&doc, DocFormat::Markdown, o);
        assert!(chunks.len() > 2, "{chunks:#?}");
        let mut seen = Vec::new();
        for chunk in &chunks {
            assert!(estimate_tokens(&chunk.text) <= o.max_tokens);
            assert!(chunk.text.starts_with("```rust\n"), "{:?}", chunk.text);
            assert!(chunk.text.ends_with("\n```"));
            let lines: Vec<&str> = chunk.text.lines().collect();
            for line in &lines[1..lines.len() - 1] {
                assert!(code.iter().any(|c| c == line), "broken line {line:?}");
                seen.push(line.to_string());
            }
        }
        assert_eq!(seen, code, "every line once, in order, with no overlap");
        assert_eq!(chunks[0].first_line, 3);
        assert_eq!(chunks.last().map(|c| c.last_line), Some(64));
    }

    #[test]
    fn oversized_table_repeats_its_header() {
        let rows: Vec<String> = (1..=30)
            .map(|i| format!("| Colour {i} | #00{i:02} | use it |"))
            .collect();
        let doc = format!(
            "# Palette\n| Name | Hex | Note |\n|---|:---:|---|\n{}\n",
            rows.join("\n")
        );
        let o = opts(40, 60, 10);
        let chunks = chunk_document(&doc, DocFormat::Markdown, o);
        assert!(chunks.len() > 1);
        for chunk in &chunks {
            assert!(estimate_tokens(&chunk.text) <= o.max_tokens);
            assert!(
                chunk
                    .text
                    .starts_with("| Name | Hex | Note |\n|---|:---:|---|\n| Colour")
            );
        }
    }

    #[test]
    fn crlf_and_unicode_do_not_panic() {
        let doc = "# Café ☕\r\n\r\nDéjà vu. 漢字のテキスト。絵文字 😀 ok! Ünïcödé?\r\n\r\n## 見出し\r\nテキスト\r\n";
        let chunks = md(doc);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].headings, vec!["Café ☕"]);
        assert_eq!(
            chunks[0].text,
            "Déjà vu. 漢字のテキスト。絵文字 😀 ok! Ünïcödé?"
        );
        assert_eq!(chunks[1].headings, vec!["Café ☕", "見出し"]);
        assert_eq!(chunks[1].text, "テキスト");
        assert!(chunks.iter().all(|c| !c.text.contains('\r')));

        let noisy = "é漢字😀. ".repeat(50) + "\r\n\r\n" + &"ñ ".repeat(80) + "\u{3000}😀";
        for format in [DocFormat::Markdown, DocFormat::PlainText] {
            for o in [opts(2, 3, 1), opts(0, 0, 0), opts(10, 12, 5)] {
                let chunks = chunk_document(&noisy, format, o);
                assert!(!chunks.is_empty());
                assert!(chunks.iter().all(|c| !c.text.is_empty()));
            }
        }
        // A byte-order mark is not part of the first heading.
        let chunks = md("\u{feff}# Título\nCuerpo.");
        assert_eq!(chunks[0].headings, vec!["Título"]);
    }

    #[test]
    fn empty_input_gives_no_chunks() {
        for format in [DocFormat::Markdown, DocFormat::PlainText] {
            for text in ["", "   ", "\n\n\t\r\n  \r\n"] {
                assert!(chunk_document(text, format, ChunkOptions::default()).is_empty());
            }
        }
        assert!(md("# Heading only\n\n---\n").is_empty());
    }

    #[test]
    fn line_spans_point_at_the_source() {
        let doc = "# Guide\n\
                   \n\
                   Intro paragraph one. It has two sentences.\n\
                   \n\
                   ## Colours\n\
                   \n\
                   Primary is teal. Secondary is coral. Accent is sand.\n\
                   Wrapped line continues the paragraph.\n\
                   \n\
                   - Use teal for calls to action.\n\
                   - Use coral sparingly.\n\
                   \n\
                   ```css\n\
                   .btn { color: teal; }\n\
                   ```\n\
                   \n\
                   Closing words for the colours section live here.\n";
        for o in [ChunkOptions::default(), opts(12, 16, 6), opts(8, 10, 4)] {
            let chunks = chunk_document(doc, DocFormat::Markdown, o);
            assert!(!chunks.is_empty());
            for chunk in &chunks {
                assert!(chunk.first_line >= 1 && chunk.first_line <= chunk.last_line);
                let span = source_span(doc, chunk);
                assert!(
                    span.contains(&chunk.text),
                    "{o:?}: {:?} not within lines {}..={}: {span:?}",
                    chunk.text,
                    chunk.first_line,
                    chunk.last_line
                );
            }
        }
        let chunks = md(doc);
        assert_eq!((chunks[0].first_line, chunks[0].last_line), (3, 3));
        assert_eq!((chunks[1].first_line, chunks[1].last_line), (7, 17));
        let crlf = doc.replace('\n', "\r\n");
        assert_eq!(md(&crlf), chunks);
    }

    #[test]
    fn a_giant_single_sentence_is_hard_split() {
        let words: Vec<String> = (0..500).map(|i| format!("w{i}")).collect();
        let doc = format!("# Long\n{}\n", words.join(" "));
        let o = opts(60, 80, 10);
        let chunks = chunk_document(&doc, DocFormat::Markdown, o);
        // 80 tokens hold 60 words: 500 words need 9 pieces, no overlap
        // because no piece ends on a complete sentence.
        assert_eq!(chunks.len(), 9);
        for chunk in &chunks {
            assert!(estimate_tokens(&chunk.text) <= o.max_tokens);
        }
        let rejoined: Vec<&str> = chunks
            .iter()
            .flat_map(|c| c.text.split_whitespace())
            .collect();
        assert_eq!(rejoined, words);
    }

    #[test]
    fn sentence_ends_skip_list_numbers_and_abbreviations() {
        let text = "1. Use teal. Avoid red! Really? Pick e.g. sand or (**bold.**) Then stop";
        let pieces: Vec<&str> = sentence_pieces(text, 0..text.len(), false)
            .into_iter()
            .map(|r| slice(text, trim_range(text, r)))
            .collect();
        assert_eq!(
            pieces,
            vec![
                "1. Use teal.",
                "Avoid red!",
                "Really?",
                "Pick e.g. sand or (**bold.**)",
                "Then stop"
            ]
        );
    }

    /// Deterministic pseudo-random documents from a fixed LCG seed.
    #[test]
    fn fuzzed_documents_never_panic_and_respect_max() {
        const POOL: &[&str] = &[
            "# ",
            "## ",
            "### ",
            "```",
            "~~~",
            "\n",
            "\n",
            "\r\n",
            "word ",
            "word ",
            "brand ",
            "é",
            "漢字",
            "😀",
            ". ",
            "! ",
            "? ",
            "- item\n",
            "1. step\n",
            "---\n",
            "===\n",
            "***\n",
            "| a | b |\n",
            "|---|---|\n",
            "  ",
            "\t",
            "#",
            "e.g. ",
            "\u{3000}",
            "\"",
            "**",
            "\n\n",
        ];
        let mut state: u64 = 0x5EED_CAFE_F00D_1234;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize
        };
        let option_sets = [
            opts(40, 60, 10),
            opts(10, 14, 4),
            opts(3, 4, 2),
            opts(2, 2, 2),
            opts(1, 1, 1),
            opts(100, 50, 200),
            ChunkOptions::default(),
        ];
        for _ in 0..200 {
            let len = next() % 160;
            let doc: String = (0..len).map(|_| POOL[next() % POOL.len()]).collect();
            let source_lines: Vec<&str> = doc.lines().collect();
            for format in [DocFormat::Markdown, DocFormat::PlainText] {
                for o in option_sets {
                    let chunks = chunk_document(&doc, format, o);
                    assert_eq!(chunks, chunk_document(&doc, format, o), "deterministic");
                    for chunk in &chunks {
                        assert!(!chunk.text.is_empty(), "{doc:?}");
                        assert_eq!(chunk.text, chunk.text.trim());
                        assert!(chunk.first_line >= 1);
                        assert!(chunk.first_line <= chunk.last_line);
                        assert!(chunk.last_line <= source_lines.len().max(1));
                        let tokens = estimate_tokens(&chunk.text);
                        // The documented exception: below 2 tokens a chunk
                        // still holds a single word.
                        let single_word = count_words(&chunk.text) == 1 && o.max_tokens < 2;
                        assert!(
                            tokens <= o.max_tokens || single_word,
                            "{o:?} {tokens} tokens in {:?} from {doc:?}",
                            chunk.text
                        );
                        for line in chunk.text.lines() {
                            let synthetic_fence = line.chars().all(|c| c == '`' || c == '~');
                            assert!(
                                synthetic_fence || source_lines.iter().any(|s| s.contains(line)),
                                "{line:?} not from the source {doc:?}"
                            );
                        }
                    }
                }
            }
        }
    }
}
