//! TUI benchmarks: time to the first complete frame with 10k briefs in the
//! replica, one frame of a 100k-row queue, and the bytes a cursor move
//! writes to the terminal. Run with `cargo bench --bench tui`.

use jiff::Timestamp;
use ratatui::Terminal;
use ratatui::backend::{CrosstermBackend, TestBackend};
use serde_json::json;
use spoke::model::brief::{Brief, BriefStatus, Priority};
use spoke::model::{Change, EntityKind, EntityRecord, EntityRef};
use spoke::service::{Hub, NewHub};
use spoke::tui::Action;
use spoke::tui::app::{App, Msg, Snapshot};
use spoke::tui::draw as ui;
use spoke::tui::keymap::Keymap;
use spoke::tui::theme::{ColorDepth, Theme};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// A writer that counts what the terminal would receive.
#[derive(Clone, Default)]
struct Counting(Arc<Mutex<usize>>);

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut n) = self.0.lock() {
            *n += buf.len();
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn main() -> anyhow::Result<()> {
    let theme = Theme::load("default-dark", None, ColorDepth::TrueColor)?;

    // A replica with 10k briefs.
    let dir = tempfile::tempdir()?;
    let home = dir.path().join("home");
    {
        let mut hub = Hub::init(
            &home,
            NewHub {
                name: "Bench",
                handle: "ana",
                tz: "Europe/Lisbon",
                display_name: None,
            },
        )?;
        let changes = (0..10_000)
            .map(|i| {
                (
                    EntityRef::new(EntityKind::Brief, format!("b-{i:08}")),
                    Change::Set(BTreeMap::from([
                        ("title".to_owned(), json!(format!("Brief number {i}"))),
                        ("status".to_owned(), json!("ready")),
                        (
                            "priority".to_owned(),
                            json!(["p0", "p1", "p2", "p3"][i % 4]),
                        ),
                        ("assignees:kenji".to_owned(), json!(true)),
                    ])),
                )
            })
            .collect();
        hub.commit(changes)?;
    }

    // First frame: open the replica, load, build the app, draw 160x48.
    let mut first = Vec::new();
    for _ in 0..7 {
        let start = Instant::now();
        let hub = Hub::open(&home, None)?;
        let snapshot = spoke::tui::run::snapshot(&hub)?;
        let mut app = App::new(Keymap::load("default", None)?, Timestamp::now());
        app.update(Msg::Resize {
            width: 160,
            height: 48,
        });
        app.update(Msg::Data(Box::new(snapshot)));
        let mut terminal = Terminal::new(TestBackend::new(160, 48))?;
        terminal.draw(|f| ui::draw(&app, &theme, f))?;
        first.push(start.elapsed());
    }

    // One frame of a 100k-row queue.
    let briefs: Vec<Brief> = (0..100_000)
        .map(|i| {
            let mut b = Brief::from_record(&format!("b-{i:08}"), &EntityRecord::default());
            b.title = format!("Brief number {i}");
            b.status = BriefStatus::Ready;
            b.priority = Priority::ALL[i % 4];
            b
        })
        .collect();
    let mut app = App::new(Keymap::load("default", None)?, Timestamp::now());
    app.update(Msg::Resize {
        width: 160,
        height: 48,
    });
    app.update(Msg::Data(Box::new(Snapshot {
        briefs,
        zone: "Europe/Lisbon".into(),
        ..Snapshot::default()
    })));
    let mut terminal = Terminal::new(TestBackend::new(160, 48))?;
    let mut frames = Vec::new();
    for i in 0..200 {
        app.update(Msg::Action(if i % 2 == 0 {
            Action::MoveDown
        } else {
            Action::PageDown
        }));
        let start = Instant::now();
        terminal.draw(|f| ui::draw(&app, &theme, f))?;
        frames.push(start.elapsed());
    }

    // Bytes written for one cursor move, after a first full frame.
    let counter = Counting::default();
    let mut real = Terminal::new(CrosstermBackend::new(counter.clone()))?;
    real.resize(ratatui::layout::Rect::new(0, 0, 160, 48))?;
    real.draw(|f| ui::draw(&app, &theme, f))?;
    let full = counter.0.lock().map(|n| *n).unwrap_or(0);
    app.update(Msg::Action(Action::MoveDown));
    real.draw(|f| ui::draw(&app, &theme, f))?;
    let after = counter.0.lock().map(|n| *n).unwrap_or(0);

    println!("| benchmark | result | target |");
    println!("| --- | --- | --- |");
    println!(
        "| first frame, 10k briefs (open replica, load, build state, draw 160x48), median of 7 | {:.1} ms | under 100 ms |",
        median(first).as_secs_f64() * 1000.0
    );
    println!(
        "| one frame of a 100k-row queue at 160x48, median of 200 | {:.3} ms | under 2 ms |",
        median(frames).as_secs_f64() * 1000.0
    );
    println!(
        "| bytes written: first full frame / one cursor move | {full} / {} | a small diff |",
        after - full
    );
    Ok(())
}
