//! Printing: aligned tables for people, JSON for scripts, times in the
//! reader's zone.

use anyhow::Result;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

/// Like `println!`, but a closed stdout (`spoke ... | head`) is an error the
/// caller returns, not a panic.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}
pub(crate) use outln;

pub fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    outln!("{}", serde_json::to_string_pretty(value)?)?;
    Ok(())
}

/// Prints rows as left-aligned columns under a header; the last column is not padded.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let cols = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(cols) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, cell) in cells.enumerate() {
            if i + 1 < cols {
                out.push_str(cell);
                let pad = widths[i].saturating_sub(cell.chars().count()) + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            } else {
                out.push_str(cell);
            }
        }
        outln!("{}", out.trim_end())
    };
    line(&mut header.iter().copied())?;
    for row in rows {
        line(&mut row.iter().map(String::as_str))?;
    }
    Ok(())
}

/// `Tue 01 Dec 17:00` in `zone`, with the year when it is not this year.
pub fn short_time(at: Timestamp, zone: &str) -> String {
    let tz = TimeZone::get(zone).unwrap_or(TimeZone::UTC);
    let z = at.to_zoned_datetime(tz);
    let now_year = Timestamp::now().to_zoned_datetime(TimeZone::UTC).year();
    if z.year() == now_year {
        z.strftime("%a %d %b %H:%M").to_string()
    } else {
        z.strftime("%a %d %b %Y %H:%M").to_string()
    }
}

/// `Tue 2026-12-01 17:00 Europe/Lisbon (+00:00)`.
pub fn long_time(at: Timestamp, zone: &str) -> String {
    let tz = TimeZone::get(zone).unwrap_or(TimeZone::UTC);
    let z = at.to_zoned_datetime(tz);
    format!("{} {}", z.strftime("%a %Y-%m-%d %H:%M"), zone) + &z.strftime(" (%:z)").to_string()
}

pub fn or_dash(v: Option<&str>) -> String {
    match v {
        Some(s) if !s.trim().is_empty() => s.to_owned(),
        _ => "-".to_owned(),
    }
}
