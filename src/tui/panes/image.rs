//! Images in panes: an encoded preview where it fits, or why there is
//! none; palette colours.

use crate::tui::component::Ctx;
use crate::tui::theme::Theme;

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
    ctx: &Ctx,
    theme: &Theme,
) {
    use crate::tui::preview::Shown;
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
