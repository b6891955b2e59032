//! The terminal: colour depth and why, `NO_COLOR`, the graphics protocol
//! the UI would draw images with, tmux and its passthrough, copying to the
//! clipboard over OSC 52, and SSH.

use super::{Check, Settings};
use crate::tui::run::Graphics;
use crate::tui::theme::ColorDepth;
use std::io::IsTerminal;

const AREA: &str = "terminal";

pub fn checks(settings: &Settings) -> Vec<Check> {
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let tmux = env("TMUX").is_some();
    vec![
        colours(settings, &env),
        no_color(&env),
        graphics(settings, &env),
        tmux_passthrough(tmux),
        clipboard(tmux, &env),
        ssh(&env),
    ]
}

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

fn colours(settings: &Settings, env: Env) -> Check {
    if let Some(flag) = &settings.color {
        return match ColorDepth::parse(flag) {
            Ok(depth) => Check::ok(AREA, "colours", format!("{depth} because --color says so")),
            Err(e) => Check::fail(
                AREA,
                "colours",
                e.to_string(),
                "pass --color truecolor, 256 or 16",
            ),
        };
    }
    let depth = ColorDepth::detect();
    let (explained, why) = explain_depth(env);
    // The reasons follow the detection's rules; should those change, say less.
    let why = if explained == depth {
        why
    } else {
        "from the environment".to_owned()
    };
    if depth == ColorDepth::Ansi16 && env("NO_COLOR").is_none() {
        Check::warn(
            AREA,
            "colours",
            format!("16 colours: {why}"),
            "if the terminal shows more, set COLORTERM=truecolor (or TERM=xterm-256color), or pass --color",
        )
    } else {
        let name = match depth {
            ColorDepth::TrueColor => "true colour".to_owned(),
            other => format!("{other} colours"),
        };
        Check::ok(AREA, "colours", format!("{name}: {why}"))
    }
}

/// The depth the environment asks for and the variable that decided it,
/// by the same rules as [`ColorDepth::detect`].
fn explain_depth(env: Env) -> (ColorDepth, String) {
    let lower = |name: &str| env(name).map(|v| v.to_ascii_lowercase());
    if env("NO_COLOR").is_some() {
        return (ColorDepth::Ansi16, "NO_COLOR is set".into());
    }
    if let Some(c) = lower("COLORTERM")
        && (c == "truecolor" || c == "24bit")
    {
        return (ColorDepth::TrueColor, format!("COLORTERM={c}"));
    }
    match lower("TERM") {
        Some(t) if t.contains("direct") || t.contains("truecolor") => {
            (ColorDepth::TrueColor, format!("TERM={t}"))
        }
        Some(t) if t.contains("256color") => (ColorDepth::Ansi256, format!("TERM={t}")),
        Some(t) => (
            ColorDepth::Ansi16,
            format!("TERM={t} and COLORTERM names no more"),
        ),
        None if env("WT_SESSION").is_some() => (
            ColorDepth::TrueColor,
            "Windows Terminal (WT_SESSION is set)".into(),
        ),
        None => (
            ColorDepth::Ansi16,
            "neither TERM nor COLORTERM is set".into(),
        ),
    }
}

fn no_color(env: Env) -> Check {
    match env("NO_COLOR") {
        Some(_) => Check::ok(
            AREA,
            "NO_COLOR",
            "set: the UI keeps to the 16 colours the terminal's own theme defines",
        ),
        None => Check::ok(AREA, "NO_COLOR", "not set"),
    }
}

fn graphics(settings: &Settings, env: Env) -> Check {
    let mode = match Graphics::parse(&settings.graphics) {
        Ok(m) => m,
        Err(e) => {
            return Check::fail(
                AREA,
                "graphics",
                e.to_string(),
                "pass --graphics auto, kitty, sixel, iterm2, halfblocks or none",
            );
        }
    };
    let on_terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    if mode != Graphics::Auto || (settings.probe_terminal && on_terminal) {
        // The same question the UI asks when it starts, in raw mode.
        let raw = crossterm::terminal::enable_raw_mode().is_ok();
        let chosen = mode.choose();
        if raw {
            let _ = crossterm::terminal::disable_raw_mode();
        }
        return Check::ok(AREA, "graphics", chosen.why);
    }
    let guess = graphics_from_env(env);
    Check::ok(
        AREA,
        "graphics",
        format!("not asked (stdin or stdout is not a terminal); the environment suggests {guess}"),
    )
}

/// What the terminal's own variables say about its image support.
fn graphics_from_env(env: Env) -> String {
    let term = env("TERM").unwrap_or_default().to_ascii_lowercase();
    let program = env("TERM_PROGRAM").unwrap_or_default();
    let inner = if env("TMUX").is_some() {
        " (inside tmux, which must pass it through)"
    } else {
        ""
    };
    let found = if env("KITTY_WINDOW_ID").is_some() || term.contains("kitty") {
        "kitty graphics: kitty"
    } else if program == "WezTerm" {
        "kitty graphics or iTerm2 images: WezTerm"
    } else if program == "ghostty" || term.contains("ghostty") {
        "kitty graphics: Ghostty"
    } else if program == "iTerm.app" {
        "iTerm2 images: iTerm2"
    } else if env("KONSOLE_VERSION").is_some() {
        "kitty graphics or sixel: Konsole"
    } else if term.starts_with("foot") || term.contains("mlterm") {
        "sixel: foot or mlterm"
    } else if env("VTE_VERSION").is_some() {
        "half-blocks (VTE terminals draw sixel only when built with it)"
    } else {
        return format!(
            "nothing in particular{inner}: the UI asks the terminal when it starts, and uses half-blocks if it does not answer"
        );
    };
    format!("{found}{inner}")
}

/// `tmux show -gv NAME`, trimmed.
fn tmux_option(name: &str) -> Result<String, String> {
    let out = std::process::Command::new("tmux")
        .args(["show", "-gv", name])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run tmux: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

fn tmux_passthrough(inside: bool) -> Check {
    if !inside {
        return Check::ok(AREA, "tmux", "not inside tmux ($TMUX is not set)");
    }
    let fix = "add `set -g allow-passthrough on` to ~/.tmux.conf (now: `tmux set -g allow-passthrough on`)";
    match tmux_option("allow-passthrough") {
        Ok(v) if v == "on" || v == "all" => Check::ok(
            AREA,
            "tmux",
            format!("inside tmux, allow-passthrough {v}: images reach the outer terminal"),
        ),
        Ok(v) => Check::warn(
            AREA,
            "tmux",
            format!("inside tmux, allow-passthrough {v}: images fall back to half-blocks"),
            fix,
        ),
        Err(e) => Check::warn(
            AREA,
            "tmux",
            format!("inside tmux, but allow-passthrough could not be read: {e}"),
            format!("tmux 3.3 or later has the option; then {fix}"),
        ),
    }
}

fn clipboard(inside_tmux: bool, env: Env) -> Check {
    const SUPPORTING: &str = "kitty, WezTerm, foot, Alacritty, Ghostty, Windows Terminal, \
                              iTerm2 (with clipboard access allowed) and xterm (with allowWindowOps)";
    if inside_tmux {
        let fix =
            "add `set -g set-clipboard on` to ~/.tmux.conf (now: `tmux set -g set-clipboard on`)";
        return match tmux_option("set-clipboard") {
            Ok(v) if v == "on" => Check::ok(
                AREA,
                "clipboard",
                format!(
                    "tmux passes OSC 52 copies on (set-clipboard on); the outer terminal must take them: {SUPPORTING} do"
                ),
            ),
            Ok(v) => Check::warn(
                AREA,
                "clipboard",
                format!(
                    "tmux set-clipboard is {v}: copies over OSC 52 from programs inside tmux are dropped"
                ),
                fix,
            ),
            Err(e) => Check::warn(
                AREA,
                "clipboard",
                format!("tmux set-clipboard could not be read: {e}"),
                fix,
            ),
        };
    }
    let program = env("TERM_PROGRAM").unwrap_or_default();
    let term = env("TERM").unwrap_or_default().to_ascii_lowercase();
    let known = if env("KITTY_WINDOW_ID").is_some() || term.contains("kitty") {
        Some("kitty")
    } else if program == "WezTerm" {
        Some("WezTerm")
    } else if env("ALACRITTY_WINDOW_ID").is_some() || term.contains("alacritty") {
        Some("Alacritty")
    } else if term.starts_with("foot") {
        Some("foot")
    } else if program == "ghostty" || term.contains("ghostty") {
        Some("Ghostty")
    } else if env("WT_SESSION").is_some() {
        Some("Windows Terminal")
    } else {
        None
    };
    match known {
        Some(name) => Check::ok(
            AREA,
            "clipboard",
            format!("{name} takes copies over OSC 52"),
        ),
        None if program == "iTerm.app" => Check::ok(
            AREA,
            "clipboard",
            "iTerm2 takes copies over OSC 52 once \"Applications in terminal may access clipboard\" is on",
        ),
        None if env("VTE_VERSION").is_some() => Check::warn(
            AREA,
            "clipboard",
            "a VTE terminal (GNOME Terminal, Tilix...): these may ignore copies over OSC 52",
            format!(
                "for copying from spoke over SSH, use a terminal that takes OSC 52: {SUPPORTING}"
            ),
        ),
        None => Check::ok(
            AREA,
            "clipboard",
            format!("copies over OSC 52 depend on the terminal: {SUPPORTING} take them"),
        ),
    }
}

fn ssh(env: Env) -> Check {
    match env("SSH_CONNECTION") {
        Some(conn) => {
            let from = conn.split_whitespace().next().unwrap_or("?");
            Check::ok(
                AREA,
                "ssh",
                format!(
                    "over SSH from {from}: images and clipboard copies travel as escape sequences to the terminal there"
                ),
            )
        }
        None => Check::ok(
            AREA,
            "ssh",
            "not an SSH session ($SSH_CONNECTION is not set)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name: &str| map.get(name).cloned().filter(|v| !v.is_empty())
    }

    #[test]
    fn the_colour_depth_names_the_variable_that_decided_it() {
        let (d, why) = explain_depth(&with(&[("NO_COLOR", "1"), ("COLORTERM", "truecolor")]));
        assert_eq!((d, why.as_str()), (ColorDepth::Ansi16, "NO_COLOR is set"));
        let (d, why) = explain_depth(&with(&[("COLORTERM", "24bit"), ("TERM", "xterm")]));
        assert_eq!(
            (d, why.as_str()),
            (ColorDepth::TrueColor, "COLORTERM=24bit")
        );
        let (d, why) = explain_depth(&with(&[("TERM", "screen-256color")]));
        assert_eq!(
            (d, why.as_str()),
            (ColorDepth::Ansi256, "TERM=screen-256color")
        );
        let (d, _) = explain_depth(&with(&[]));
        assert_eq!(d, ColorDepth::Ansi16);
    }

    #[test]
    fn the_environment_suggests_a_protocol_without_asking() {
        assert!(graphics_from_env(&with(&[("KITTY_WINDOW_ID", "1")])).starts_with("kitty"));
        assert!(
            graphics_from_env(&with(&[("TERM_PROGRAM", "iTerm.app"), ("TMUX", "/tmp/x")]))
                .contains("inside tmux")
        );
        assert!(graphics_from_env(&with(&[])).contains("half-blocks"));
    }
}
