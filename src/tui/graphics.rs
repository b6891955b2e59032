//! Which graphics the terminal draws images with, and its cell size in
//! pixels: asked of the terminal once, before the event loop reads keys,
//! with `--graphics` as the override. The answer and the reason for it are
//! kept so the help screen can say what was chosen and why.

use ratatui_image::FontSize;
use ratatui_image::picker::{Picker, ProtocolType};
use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::Duration;

/// Kitty draws Unicode-placeholder images (the mode previews use) from this
/// version on; older kittys show empty boxes.
const KITTY_PLACEHOLDERS_SINCE: (u32, u32) = (0, 28);

/// How long a terminal gets to answer the version query.
const QUERY_TIMEOUT: Duration = Duration::from_millis(500);

/// What was chosen, and why, in a sentence.
#[derive(Clone)]
pub struct Chosen {
    pub picker: Option<Picker>,
    pub why: String,
}

pub fn protocol_name(p: ProtocolType) -> &'static str {
    match p {
        ProtocolType::Halfblocks => "half-blocks",
        ProtocolType::Sixel => "sixel",
        ProtocolType::Kitty => "kitty graphics",
        ProtocolType::Iterm2 => "iTerm2 images",
    }
}

/// The cell size the kernel reports for the terminal (pixels over cells),
/// when the terminal fills it in.
pub fn cell_size_from_window() -> Option<(u16, u16)> {
    let w = crossterm::terminal::window_size().ok()?;
    if w.width == 0 || w.height == 0 || w.columns == 0 || w.rows == 0 {
        return None;
    }
    Some((w.width / w.columns, w.height / w.rows))
}

/// A picker for `protocol` at a cell size.
pub fn picker_for(protocol: ProtocolType, cell: (u16, u16)) -> Picker {
    #[allow(deprecated)]
    let mut picker = Picker::from_fontsize(FontSize::new(cell.0.max(1), cell.1.max(1)));
    picker.set_protocol_type(protocol);
    picker
}

/// Asks the terminal. Call with raw mode on and before anything else reads
/// the terminal's input. `forced` is `--graphics` when it names a protocol.
pub fn choose(forced: Option<ProtocolType>) -> Chosen {
    // Inside tmux the query only reaches the outer terminal through
    // passthrough; without it nothing answers, and the query's reader would
    // be left waiting on input and take the first key typed.
    let tmux_blocks = std::env::var_os("TMUX").is_some() && !tmux_passthrough();
    let queried = if tmux_blocks {
        None
    } else {
        Picker::from_query_stdio().ok()
    };
    let window = cell_size_from_window();
    let cell = |picker: &Option<Picker>| -> (u16, u16) {
        match (picker, window) {
            (Some(p), _) => (p.font_size().width, p.font_size().height),
            (None, Some(c)) => c,
            (None, None) => (10, 20),
        }
    };
    let (w, h) = cell(&queried);
    if let Some(p) = forced {
        return Chosen {
            picker: Some(picker_for(p, (w, h))),
            why: format!(
                "{} because --graphics says so; cells {w}x{h} px",
                protocol_name(p)
            ),
        };
    }
    let Some(found) = queried else {
        let why = if tmux_blocks {
            "half-blocks: inside tmux without passthrough (`set -g allow-passthrough on` lets the outer terminal draw images)"
        } else {
            "half-blocks: the terminal did not answer the graphics query"
        };
        return Chosen {
            picker: Some(picker_for(ProtocolType::Halfblocks, (w, h))),
            why: why.into(),
        };
    };
    let protocol = found.protocol_type();
    if protocol == ProtocolType::Kitty
        && let Some(version) = terminal_version()
        && let Some(kitty) = kitty_version(&version)
        && kitty < KITTY_PLACEHOLDERS_SINCE
    {
        return Chosen {
            picker: Some(picker_for(ProtocolType::Halfblocks, (w, h))),
            why: format!(
                "half-blocks: {version} draws no Unicode-placeholder images (kitty {}.{} and later do)",
                KITTY_PLACEHOLDERS_SINCE.0, KITTY_PLACEHOLDERS_SINCE.1
            ),
        };
    }
    let why = match protocol {
        ProtocolType::Halfblocks => {
            "half-blocks: the terminal answered but offers no image protocol".to_owned()
        }
        p => format!(
            "{}: the terminal said it speaks it{}; cells {w}x{h} px",
            protocol_name(p),
            if found.tmux_detected() {
                " (through tmux)"
            } else {
                ""
            }
        ),
    };
    Chosen {
        picker: Some(picker_for(protocol, (w, h))),
        why,
    }
}

/// Whether the tmux this runs in passes escape sequences through to the
/// outer terminal (`allow-passthrough on` or `all`).
fn tmux_passthrough() -> bool {
    std::process::Command::new("tmux")
        .args(["show-options", "-gv", "allow-passthrough"])
        .output()
        .is_ok_and(|o| {
            let value = String::from_utf8_lossy(&o.stdout);
            o.status.success() && matches!(value.trim(), "on" | "all")
        })
}

/// `kitty(0.26.5)` as (0, 26); `None` for any other terminal.
pub fn kitty_version(version: &str) -> Option<(u32, u32)> {
    let rest = version.strip_prefix("kitty(")?;
    let mut parts = rest.trim_end_matches(')').split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The terminal's name and version from XTVERSION (`CSI > q`), e.g.
/// `kitty(0.26.5)`. A status report is asked for after it, which every
/// terminal answers, so the reader always ends.
fn terminal_version() -> Option<String> {
    let mut out = std::io::stdout();
    out.write_all(b"\x1b[>0q\x1b[5n").ok()?;
    out.flush().ok()?;
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("terminal-query".into())
        .spawn(move || {
            let mut seen = Vec::new();
            let mut byte = [0u8; 1];
            let mut stdin = std::io::stdin();
            while stdin.read_exact(&mut byte).is_ok() {
                seen.push(byte[0]);
                if seen.ends_with(b"\x1b[0n") || seen.len() > 4096 {
                    break;
                }
            }
            let _ = tx.send(seen);
        })
        .ok()?;
    let answer = rx.recv_timeout(QUERY_TIMEOUT).ok()?;
    parse_xtversion(&answer)
}

/// The text of a `DCS > | text ST` reply within `bytes`.
pub fn parse_xtversion(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let start = text.find("\x1bP>|")? + 4;
    let end = text[start..].find("\x1b\\")? + start;
    Some(text[start..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_reply_is_read_from_among_other_replies() {
        let reply = b"\x1bP>|kitty(0.26.5)\x1b\\\x1b[0n";
        assert_eq!(parse_xtversion(reply).as_deref(), Some("kitty(0.26.5)"));
        assert_eq!(parse_xtversion(b"\x1b[0n"), None);
        assert_eq!(kitty_version("kitty(0.26.5)"), Some((0, 26)));
        assert!(kitty_version("kitty(0.26.5)") < Some(KITTY_PLACEHOLDERS_SINCE));
        assert!(kitty_version("kitty(0.32.2)") >= Some(KITTY_PLACEHOLDERS_SINCE));
        assert_eq!(kitty_version("XTerm(379)"), None);
    }
}
