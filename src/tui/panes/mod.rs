//! The five panes, each a [`Component`](super::component::Component) that
//! owns its state: the brief queue, the asset browser, the agent chat, the
//! approvals and the team across time zones.

pub mod approvals;
pub mod assets;
pub mod briefs;
pub mod chat;
pub mod team;

use jiff::{SignedDuration, Timestamp};

/// "in 3h", "2d ago", "now".
pub fn relative(at: Timestamp, now: Timestamp) -> String {
    let d: SignedDuration = at.duration_since(now);
    let secs = d.as_secs();
    let abs = secs.unsigned_abs();
    let text = if abs < 60 {
        return "now".into();
    } else if abs < 3600 {
        format!("{}m", abs / 60)
    } else if abs < 86_400 {
        format!("{}h", abs / 3600)
    } else if abs < 86_400 * 60 {
        format!("{}d", abs / 86_400)
    } else {
        format!("{}mo", abs / (86_400 * 30))
    };
    if secs >= 0 {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// How old something is: "3d", or "-" when unknown.
pub fn age(at: Option<Timestamp>, now: Timestamp) -> String {
    match at {
        Some(t) => relative(t, now)
            .trim_end_matches(" ago")
            .trim_start_matches("in ")
            .to_owned(),
        None => "-".into(),
    }
}

/// `#rrggbb` as a colour.
pub fn hex_color(text: &str) -> Option<ratatui::style::Color> {
    let t = text.trim_start_matches('#');
    let v = u32::from_str_radix(t, 16).ok().filter(|_| t.len() == 6)?;
    Some(ratatui::style::Color::Rgb(
        (v >> 16) as u8,
        (v >> 8) as u8,
        v as u8,
    ))
}

/// Puts a preview where an image goes: the encoded image, or why there is none.
pub fn draw_image(
    frame: &mut ratatui::Frame,
    area: ratatui::layout::Rect,
    sha: &str,
    ctx: &super::component::Ctx,
    theme: &super::theme::Theme,
) {
    use super::preview::Shown;
    let note = match ctx.previews.shown(sha, area.as_size()) {
        Shown::Image(protocol) => {
            frame.render_widget(ratatui_image::Image::new(protocol), area);
            return;
        }
        Shown::Loading => "loading…".to_owned(),
        Shown::Failed(why) => why.to_string(),
        Shown::Off => "previews are off (--graphics none)".to_owned(),
    };
    frame.render_widget(
        ratatui::widgets::Paragraph::new(note)
            .style(theme.style("ui.text.dim"))
            .wrap(ratatui::widgets::Wrap { trim: true }),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_naturally() {
        let now: Timestamp = "2026-11-24T10:00:00Z".parse().expect("ts");
        let at = |s: &str| -> Timestamp { s.parse().expect("ts") };
        assert_eq!(relative(at("2026-11-24T13:00:00Z"), now), "in 3h");
        assert_eq!(relative(at("2026-11-22T10:00:00Z"), now), "2d ago");
        assert_eq!(relative(at("2026-11-24T10:00:30Z"), now), "now");
    }
}
