//! Handing the terminal to someone else and taking it back: `$VISUAL` /
//! `$EDITOR` for long text, ctrl-z to the shell, and the clipboard (OSC 52)
//! written between frames. The input thread is parked first so it never
//! reads keys meant for the editor or the shell; afterwards every terminal
//! mode the TUI set is set again and the screen is drawn in full.

use super::app::App;
use super::msg::{Level, Msg};
use super::osc;
use super::widgets::text_input::TextInput;
use crossterm::event::{DisableBracketedPaste, EnableBracketedPaste};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::Backend;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Work on the terminal itself, done by the render loop between frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TermWork {
    /// Put `text` on the clipboard; `what` names it in the status line.
    Copy { what: String, text: String },
    /// Edit `text` in `$VISUAL`/`$EDITOR`; the result replaces the text of
    /// the input that has focus.
    Edit { text: String, multi_line: bool },
    /// Give the terminal to the shell until the user resumes Spoke.
    Suspend,
    /// Something new waits on the user: the bell and a desktop
    /// notification, as the config says.
    Notify { title: String, body: String },
}

/// Lets the render loop stop the input thread from reading the terminal
/// while another program owns it.
#[derive(Clone, Default)]
pub struct InputGate {
    inner: Arc<(Mutex<GateState>, Condvar)>,
}

#[derive(Default)]
struct GateState {
    paused: bool,
    /// The input thread is waiting at the gate, reading nothing.
    parked: bool,
}

/// How long the input thread waits for a key before checking the gate.
pub const INPUT_POLL: Duration = Duration::from_millis(100);

impl InputGate {
    /// For the input thread, before each poll: waits here while paused.
    pub fn wait_open(&self) {
        let (lock, cvar) = &*self.inner;
        let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
        if !state.paused {
            return;
        }
        state.parked = true;
        cvar.notify_all();
        while state.paused {
            state = cvar.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.parked = false;
    }

    /// Stops the input thread and waits (a little) until it is parked.
    pub fn pause(&self) {
        let (lock, cvar) = &*self.inner;
        let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
        state.paused = true;
        // A thread that has ended never parks: give up after a while.
        for _ in 0..20 {
            if state.parked {
                return;
            }
            state = cvar
                .wait_timeout(state, INPUT_POLL)
                .map(|(s, _)| s)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    pub fn resume(&self) {
        let (lock, cvar) = &*self.inner;
        let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
        state.paused = false;
        cvar.notify_all();
    }
}

/// Leaves the TUI's terminal modes as `run` set them: bracketed paste off,
/// the main screen back, the cursor shown, raw mode off.
pub fn leave_terminal(out: &mut impl Write) -> std::io::Result<()> {
    let shown = execute!(
        out,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    let cooked = disable_raw_mode();
    shown.and(cooked)
}

/// Sets the TUI's terminal modes again: raw mode, the alternate screen,
/// bracketed paste.
pub fn enter_terminal(out: &mut impl Write) -> std::io::Result<()> {
    enable_raw_mode()?;
    execute!(out, EnterAlternateScreen, EnableBracketedPaste)
}

/// Does one piece of terminal work for the run loop, writing through the
/// writer the TUI draws with. Afterwards the next draw repaints every cell.
pub fn run_work<B>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    gate: &InputGate,
    notifier: &super::notify::Notifier,
    work: TermWork,
) where
    B: Backend + Write,
{
    match work {
        TermWork::Copy { what, text } => {
            let bytes = osc::clipboard_for_terminal(&text, osc::in_tmux());
            let written = terminal
                .backend_mut()
                .write_all(&bytes)
                .and_then(|()| Write::flush(terminal.backend_mut()));
            app.message = Some(match written {
                Err(e) => (
                    Level::Error,
                    format!("could not write {what} to the terminal: {e}"),
                ),
                Ok(()) => copied_message(&what, &text),
            });
        }
        TermWork::Edit { text, multi_line } => {
            let command = editor_command(
                std::env::var("VISUAL").ok().as_deref(),
                std::env::var("EDITOR").ok().as_deref(),
            );
            let outcome = handed_over(terminal, gate, || match &command {
                Ok(words) => edit_in(words, &text),
                Err(e) => Err(e.clone()),
            });
            match outcome {
                Ok(Ok(edited)) => {
                    let edited = edited_text(&edited, multi_line);
                    app.message = Some(match app.focused_input_mut() {
                        Some(input) => {
                            input.set_text(&edited);
                            (Level::Info, "text from the editor".to_owned())
                        }
                        None => (
                            Level::Error,
                            "the text field closed while the editor was open; the edit was not used"
                                .to_owned(),
                        ),
                    });
                }
                Ok(Err(why)) | Err(why) => app.message = Some((Level::Error, why)),
            }
            resized(terminal, app);
        }
        TermWork::Notify { title, body } => {
            let bytes = notifier.bytes(&title, &body);
            if !bytes.is_empty() {
                // A notification that cannot be written is not worth an
                // error over the toast that already says the same.
                let _ = terminal
                    .backend_mut()
                    .write_all(&bytes)
                    .and_then(|()| Write::flush(terminal.backend_mut()));
            }
        }
        TermWork::Suspend => {
            if let Err(why) = handed_over(terminal, gate, || {
                stop_self();
                Ok::<(), String>(())
            }) {
                app.message = Some((Level::Error, why));
            }
            resized(terminal, app);
        }
    }
}

/// The status line after a copy: what went, and a warning when the payload
/// is more than some terminals take.
pub fn copied_message(what: &str, text: &str) -> (Level, String) {
    let size = osc::clipboard_payload_len(text);
    if size > osc::LARGE_CLIPBOARD_BASE64 {
        (
            Level::Error,
            format!(
                "Copied {what} to the clipboard, but it is {} KB as base64: some terminals refuse more than {} KB",
                size / 1000,
                osc::LARGE_CLIPBOARD_BASE64 / 1000
            ),
        )
    } else {
        (Level::Info, format!("Copied {what} to the clipboard"))
    }
}

/// Runs `f` with the terminal handed over (input parked, modes left), then
/// takes it back and forgets the last frame so all of it is drawn again.
/// `Err` when the terminal could not be left or taken back.
fn handed_over<B, T>(
    terminal: &mut Terminal<B>,
    gate: &InputGate,
    f: impl FnOnce() -> T,
) -> Result<T, String>
where
    B: Backend + Write,
{
    gate.pause();
    let left = leave_terminal(terminal.backend_mut());
    let result = match left {
        Ok(()) => Ok(f()),
        Err(e) => Err(format!("could not hand the terminal over: {e}")),
    };
    let back = enter_terminal(terminal.backend_mut());
    let _ = terminal.hide_cursor();
    // Forget the last frame so the next draw writes every cell.
    let _ = terminal
        .backend_mut()
        .clear_region(ratatui::backend::ClearType::All);
    terminal.swap_buffers();
    gate.resume();
    back.map_err(|e| format!("could not take the terminal back: {e}"))?;
    result
}

/// Tells the app the terminal's size, which may have changed meanwhile.
fn resized<B: Backend>(terminal: &mut Terminal<B>, app: &mut App) {
    if let Ok(size) = terminal.size() {
        app.update(Msg::Resize {
            width: size.width,
            height: size.height,
        });
    }
}

/// Stops this process as the shell's ctrl-z would; returns once resumed.
#[cfg(unix)]
fn stop_self() {
    // SAFETY: raise only sends a signal to this process; SIGTSTP's default
    // action stops it until SIGCONT (`fg`).
    unsafe {
        libc::raise(libc::SIGTSTP);
    }
}

#[cfg(not(unix))]
fn stop_self() {}

impl App {
    /// The text input keys go to now: the top popup's, or the focused
    /// pane's while it is being typed in.
    pub fn focused_input_mut(&mut self) -> Option<&mut TextInput> {
        if let Some((_, popup)) = self.popups.last_mut() {
            return popup.input_mut();
        }
        match self.pane {
            super::Pane::Chat if self.panes.chat.composing => Some(&mut self.panes.chat.input),
            _ => None,
        }
    }
}

/// The editor to run: `$VISUAL`, else `$EDITOR`, else `vi`, split into
/// words the way a shell would split a simple command (quotes and
/// backslashes work; no variables or globs).
pub fn editor_command(visual: Option<&str>, editor: Option<&str>) -> Result<Vec<String>, String> {
    let (name, line) = [("VISUAL", visual), ("EDITOR", editor)]
        .into_iter()
        .find_map(|(name, v)| v.filter(|v| !v.trim().is_empty()).map(|v| (name, v)))
        .unwrap_or(("the default", "vi"));
    crate::service::assets::split_command(line).map_err(|e| format!("${name}: {e}"))
}

/// Writes `text` to a new `.md` file, runs `command FILE` on this terminal
/// and reads the file back. A failing editor or an unreadable file is an
/// error saying why; the file is removed either way.
pub fn edit_in(command: &[String], text: &str) -> Result<String, String> {
    let Some((program, args)) = command.split_first() else {
        return Err("no editor to run".into());
    };
    let path = temp_file_path();
    std::fs::write(&path, text).map_err(|e| {
        format!(
            "cannot write {} for the editor: {e}; the text is unchanged",
            path.display()
        )
    })?;
    let status = Command::new(program).args(args).arg(&path).status();
    let result = match status {
        Err(e) => Err(format!(
            "cannot run the editor `{program}` (set $VISUAL or $EDITOR): {e}; the text is unchanged"
        )),
        Ok(s) if !s.success() => Err(format!(
            "the editor `{program}` exited with {s}; the text is unchanged"
        )),
        Ok(_) => std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "cannot read {} back from the editor: {e}; the text is unchanged",
                path.display()
            )
        }),
    };
    let _ = std::fs::remove_file(&path);
    result
}

/// A fresh file name in the temporary folder (created by `edit_in`).
fn temp_file_path() -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!(
        "spoke-edit-{}-{n}-{nanos:x}.md",
        std::process::id()
    ))
}

/// The editor's text as the input takes it: the newlines editors add at
/// the end go; a single-line input joins the lines with spaces.
pub fn edited_text(raw: &str, multi_line: bool) -> String {
    let trimmed = raw.trim_end_matches(['\n', '\r']);
    if multi_line {
        trimmed.replace("\r\n", "\n")
    } else {
        trimmed
            .lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Whether `path` looks like one of ours (for tests and cleanup checks).
pub fn is_edit_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("spoke-edit-") && n.ends_with(".md"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_editor_comes_from_visual_then_editor_then_vi() {
        assert_eq!(
            editor_command(Some("code --wait"), Some("nano")).unwrap(),
            ["code", "--wait"]
        );
        assert_eq!(editor_command(Some(" "), Some("nano")).unwrap(), ["nano"]);
        assert_eq!(editor_command(None, None).unwrap(), ["vi"]);
        assert_eq!(
            editor_command(None, Some("'/opt/my editor/bin/ed' -n \"a b\"")).unwrap(),
            ["/opt/my editor/bin/ed", "-n", "a b"]
        );
        let err = editor_command(None, Some("vim 'unclosed")).unwrap_err();
        assert!(err.contains("$EDITOR"), "{err}");
    }

    #[test]
    fn edited_text_drops_the_final_newline_and_joins_single_lines() {
        assert_eq!(edited_text("hello\n", false), "hello");
        assert_eq!(edited_text("two\nlines\n\n", false), "two lines");
        assert_eq!(edited_text("two\r\nlines\r\n", true), "two\nlines");
        assert_eq!(
            edited_text("keep\n\nparagraphs\n", true),
            "keep\n\nparagraphs"
        );
    }

    #[cfg(unix)]
    #[test]
    fn an_editor_round_trips_the_file_and_failures_keep_the_text() {
        let sh = |script: &str| {
            vec![
                "sh".to_owned(),
                "-c".to_owned(),
                script.to_owned(),
                "ed".to_owned(),
            ]
        };
        // The editor sees the text, in a .md file, and writes new text.
        let out = edit_in(
            &sh(r#"case "$1" in *.md) ;; *) exit 9;; esac; grep -q '^old$' "$1" && printf 'new text\n' > "$1""#),
            "old\n",
        )
        .unwrap();
        assert_eq!(out, "new text\n");
        let err = edit_in(&sh("exit 3"), "old").unwrap_err();
        assert!(
            err.contains("exit status: 3") && err.contains("unchanged"),
            "{err}"
        );
        let err = edit_in(&sh(r#"rm "$1""#), "old").unwrap_err();
        assert!(err.contains("cannot read"), "{err}");
        let err = edit_in(&["/nonexistent/editor".to_owned()], "old").unwrap_err();
        assert!(err.contains("/nonexistent/editor"), "{err}");
        // No edit file is left behind.
        let left = std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                is_edit_file(&e.path())
                    && e.file_name()
                        .to_string_lossy()
                        .starts_with(&format!("spoke-edit-{}-", std::process::id()))
            })
            .count();
        assert_eq!(left, 0);
    }

    #[test]
    fn a_large_copy_warns() {
        assert_eq!(
            copied_message("b-7k2m", "b-7k2m"),
            (Level::Info, "Copied b-7k2m to the clipboard".to_owned())
        );
        let (level, text) = copied_message("the brief", &"x".repeat(60_000));
        assert_eq!(level, Level::Error);
        assert!(text.contains("80 KB") && text.contains("74 KB"), "{text}");
    }
}
