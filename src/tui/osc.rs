//! Escape sequences the TUI writes to the terminal besides drawing: OSC 52
//! (set the clipboard), OSC 9 and OSC 777 (desktop notifications), the bell,
//! and tmux's passthrough wrapper. Everything here is pure: it builds bytes,
//! and the run loop writes them through the writer it draws with, between
//! frames.

/// The bell (BEL).
pub(crate) const BELL: &[u8] = b"\x07";

/// Some terminals refuse OSC 52 payloads past this many base64 bytes
/// (hterm's limit, also kept by several tmux and mosh setups).
pub(crate) const LARGE_CLIPBOARD_BASE64: usize = 74_994;

/// Standard base64 (RFC 4648, with `=` padding), as OSC 52 wants it.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextet = |shift: u32| char::from(ALPHABET[((n >> shift) & 63) as usize]);
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if chunk.len() > 1 { sextet(6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(0) } else { '=' });
    }
    out
}

/// How many base64 bytes OSC 52 carries for `text`.
pub(crate) fn clipboard_payload_len(text: &str) -> usize {
    text.len().div_ceil(3) * 4
}

/// OSC 52: put `text` on the system clipboard (`ESC ] 52 ; c ; BASE64 BEL`).
/// The text is base64-encoded, so it may hold anything.
pub(crate) fn clipboard(text: &str) -> Vec<u8> {
    let mut out = b"\x1b]52;c;".to_vec();
    out.extend_from_slice(base64(text.as_bytes()).as_bytes());
    out.extend_from_slice(BELL);
    out
}

/// OSC 9: a desktop notification (`ESC ] 9 ; TEXT BEL`; iTerm2, kitty,
/// WezTerm, foot, Windows Terminal). Control characters are dropped and
/// line breaks become spaces, since the text runs up to the BEL.
pub(crate) fn notify(text: &str) -> Vec<u8> {
    let mut out = b"\x1b]9;".to_vec();
    out.extend_from_slice(field(text, false).as_bytes());
    out.extend_from_slice(BELL);
    out
}

/// OSC 777: a desktop notification with a title
/// (`ESC ] 777 ; notify ; TITLE ; BODY BEL`; urxvt, foot, Ghostty, VTE).
/// The title is a `;`-separated field, so `;` is dropped from it; the body
/// is the last field and keeps its `;`. Control characters go from both.
pub(crate) fn notify_777(title: &str, body: &str) -> Vec<u8> {
    let mut out = b"\x1b]777;notify;".to_vec();
    out.extend_from_slice(field(title, true).as_bytes());
    out.push(b';');
    out.extend_from_slice(field(body, false).as_bytes());
    out.extend_from_slice(BELL);
    out
}

/// Text fit for one field of an OSC sequence: no control characters (C0,
/// DEL, C1: any of them could end or corrupt the sequence), line breaks and
/// tabs as spaces, and no `;` when the field is followed by another.
fn field(text: &str, no_separator: bool) -> String {
    text.chars()
        .filter_map(|c| match c {
            '\n' | '\r' | '\t' => Some(' '),
            ';' if no_separator => None,
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}

/// tmux's passthrough (`ESC P tmux; … ESC \`, each ESC inside doubled):
/// tmux hands the sequence to the outer terminal as it is, when its
/// `allow-passthrough` option is on.
pub(crate) fn tmux_wrap(sequence: &[u8]) -> Vec<u8> {
    let mut out = b"\x1bPtmux;".to_vec();
    for &byte in sequence {
        if byte == 0x1b {
            out.push(0x1b);
        }
        out.push(byte);
    }
    out.extend_from_slice(b"\x1b\\");
    out
}

/// `sequence` as it must be written: wrapped for tmux when inside tmux.
pub(crate) fn for_terminal(sequence: &[u8], in_tmux: bool) -> Vec<u8> {
    if in_tmux {
        tmux_wrap(sequence)
    } else {
        sequence.to_vec()
    }
}

/// OSC 52 as it must be written. Inside tmux it goes twice: plain, which
/// tmux itself takes into a paste buffer and forwards to the outer
/// terminal when `set-clipboard` is on, and wrapped, which reaches the
/// outer terminal when `allow-passthrough` is on instead. Setting the
/// clipboard twice to the same text is harmless.
pub(crate) fn clipboard_for_terminal(text: &str, in_tmux: bool) -> Vec<u8> {
    let plain = clipboard(text);
    if in_tmux {
        let mut out = plain.clone();
        out.extend(tmux_wrap(&plain));
        out
    } else {
        plain
    }
}

/// Whether this process runs inside tmux (`$TMUX` is set).
pub(crate) fn in_tmux() -> bool {
    std::env::var_os("TMUX").is_some_and(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
            assert_eq!(clipboard_payload_len(plain), encoded.len(), "{plain:?}");
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }

    #[test]
    fn osc52_sets_the_clipboard_byte_for_byte() {
        assert_eq!(clipboard("b-7k2m"), b"\x1b]52;c;Yi03azJt\x07".to_vec());
        // Control characters and `;` travel inside the base64, untouched.
        assert_eq!(clipboard("a;\x07\n"), b"\x1b]52;c;YTsHCg==\x07".to_vec());
        assert_eq!(clipboard(""), b"\x1b]52;c;\x07".to_vec());
    }

    #[test]
    fn osc9_notifies_with_control_characters_removed() {
        assert_eq!(
            notify("Brief b-1 is due"),
            b"\x1b]9;Brief b-1 is due\x07".to_vec()
        );
        assert_eq!(
            notify("two\nlines\x1b]0;evil\x07 end;ok\u{9c}"),
            b"\x1b]9;two lines]0;evil end;ok\x07".to_vec()
        );
    }

    #[test]
    fn osc777_notifies_with_a_title_free_of_separators() {
        assert_eq!(
            notify_777("Spoke", "b-7k2m is ready"),
            b"\x1b]777;notify;Spoke;b-7k2m is ready\x07".to_vec()
        );
        assert_eq!(
            notify_777("a;b\x07", "c;d\x1b\n"),
            b"\x1b]777;notify;ab;c;d \x07".to_vec()
        );
    }

    #[test]
    fn the_bell_is_bel() {
        assert_eq!(BELL, [0x07]);
        assert_eq!(for_terminal(BELL, false), vec![0x07]);
    }

    #[test]
    fn tmux_passthrough_doubles_every_escape() {
        assert_eq!(
            tmux_wrap(b"\x1b]9;hi\x07"),
            b"\x1bPtmux;\x1b\x1b]9;hi\x07\x1b\\".to_vec()
        );
        assert_eq!(
            for_terminal(&notify_777("T", "B"), true),
            b"\x1bPtmux;\x1b\x1b]777;notify;T;B\x07\x1b\\".to_vec()
        );
        assert_eq!(for_terminal(&notify("x"), false), b"\x1b]9;x\x07".to_vec());
        assert_eq!(
            tmux_wrap(b"\x1b\x1b"),
            b"\x1bPtmux;\x1b\x1b\x1b\x1b\x1b\\".to_vec()
        );
    }

    #[test]
    fn clipboard_inside_tmux_goes_plain_then_wrapped() {
        assert_eq!(
            clipboard_for_terminal("hi", false),
            b"\x1b]52;c;aGk=\x07".to_vec()
        );
        assert_eq!(
            clipboard_for_terminal("hi", true),
            b"\x1b]52;c;aGk=\x07\x1bPtmux;\x1b\x1b]52;c;aGk=\x07\x1b\\".to_vec()
        );
    }
}
