//! A pixmap with the drawing helpers the layouts use: shapes, gradients,
//! soft glows and shadows, bitmap text, buttons and the studio logo. Every
//! pixel is touched by tiny-skia, never by a loop here.

use super::font;
use resvg::tiny_skia::{
    Color, FillRule, GradientStop, LinearGradient, Paint, Path, PathBuilder, Pixmap, Point,
    RadialGradient, Rect, Shader, SpreadMode, Stroke, Transform,
};

/// An opaque colour from `0xrrggbb`.
pub fn rgb(hex: u32) -> Color {
    Color::from_rgba8((hex >> 16) as u8, (hex >> 8) as u8, hex as u8, 255)
}

/// A colour from `0xrrggbb` with `alpha` (0-1).
pub fn rgba(hex: u32, alpha: f32) -> Color {
    let mut c = rgb(hex);
    c.set_alpha(alpha.clamp(0.0, 1.0));
    c
}

/// `a` moved towards `b` by `t` (0-1), per channel.
pub fn mix(a: u32, b: u32, t: f32) -> u32 {
    let ch = |shift: u32| {
        let (x, y) = (((a >> shift) & 0xff) as f32, ((b >> shift) & 0xff) as f32);
        ((x + (y - x) * t).round().clamp(0.0, 255.0) as u32) << shift
    };
    ch(16) | ch(8) | ch(0)
}

fn solid(color: Color) -> Paint<'static> {
    let mut p = Paint::default();
    p.set_color(color);
    p.anti_alias = true;
    p
}

fn shaded(shader: Shader<'static>) -> Paint<'static> {
    Paint {
        shader,
        anti_alias: true,
        ..Paint::default()
    }
}

fn stops(list: &[(f32, Color)]) -> Vec<GradientStop> {
    list.iter().map(|&(p, c)| GradientStop::new(p, c)).collect()
}

/// A linear gradient from (`x0`, `y0`) to (`x1`, `y1`).
pub fn linear(
    x0: f32,
    y0: f32,
    x1: f32,
    y1: f32,
    list: &[(f32, Color)],
) -> Option<Shader<'static>> {
    LinearGradient::new(
        Point::from_xy(x0, y0),
        Point::from_xy(x1, y1),
        stops(list),
        SpreadMode::Pad,
        Transform::identity(),
    )
}

/// An elliptical radial gradient centred on (`cx`, `cy`) with radii `rx`, `ry`.
pub fn radial(
    cx: f32,
    cy: f32,
    rx: f32,
    ry: f32,
    list: &[(f32, Color)],
) -> Option<Shader<'static>> {
    RadialGradient::new(
        Point::from_xy(0.0, 0.0),
        0.0,
        Point::from_xy(0.0, 0.0),
        1.0,
        stops(list),
        SpreadMode::Pad,
        Transform::from_row(rx.max(0.01), 0.0, 0.0, ry.max(0.01), cx, cy),
    )
}

/// A rounded rectangle path.
pub fn rounded(x: f32, y: f32, w: f32, h: f32, r: f32) -> Option<Path> {
    let r = r.min(w / 2.0).min(h / 2.0).max(0.0);
    let k = r * 0.447_715; // 1 - 0.552285: cubic circle approximation
    let mut pb = PathBuilder::new();
    pb.move_to(x + r, y);
    pb.line_to(x + w - r, y);
    pb.cubic_to(x + w - k, y, x + w, y + k, x + w, y + r);
    pb.line_to(x + w, y + h - r);
    pb.cubic_to(x + w, y + h - k, x + w - k, y + h, x + w - r, y + h);
    pb.line_to(x + r, y + h);
    pb.cubic_to(x + k, y + h, x, y + h - k, x, y + h - r);
    pb.line_to(x, y + r);
    pb.cubic_to(x, y + k, x + k, y, x + r, y);
    pb.close();
    pb.finish()
}

fn oval(cx: f32, cy: f32, rx: f32, ry: f32) -> Option<Path> {
    let mut pb = PathBuilder::new();
    pb.push_oval(Rect::from_xywh(cx - rx, cy - ry, rx * 2.0, ry * 2.0)?);
    pb.finish()
}

/// Where shapes are painted; `t` places the whole composition (a re-crop
/// is a small translate and scale).
pub struct Canvas {
    pub pix: Pixmap,
    pub w: f32,
    pub h: f32,
    pub t: Transform,
}

impl Canvas {
    /// A canvas of `w` x `h` pixels filled with `background`.
    pub fn new(w: u32, h: u32, background: u32) -> Result<Self, String> {
        let mut pix = Pixmap::new(w, h).ok_or_else(|| format!("no {w}x{h} canvas"))?;
        pix.fill(rgb(background));
        Ok(Canvas {
            pix,
            w: w as f32,
            h: h as f32,
            t: Transform::identity(),
        })
    }

    fn fill(&mut self, path: Option<Path>, paint: &Paint, rule: FillRule) {
        if let Some(path) = path {
            self.pix.fill_path(&path, paint, rule, self.t, None);
        }
    }

    /// A rectangle in one colour.
    pub fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, color: Color) {
        if let Some(r) = Rect::from_xywh(x, y, w, h) {
            self.pix.fill_rect(r, &solid(color), self.t, None);
        }
    }

    /// A rectangle painted with a shader (a gradient).
    pub fn rect_shaded(&mut self, x: f32, y: f32, w: f32, h: f32, shader: Option<Shader<'static>>) {
        if let (Some(r), Some(s)) = (Rect::from_xywh(x, y, w, h), shader) {
            self.pix.fill_rect(r, &shaded(s), self.t, None);
        }
    }

    /// The whole canvas painted with a shader.
    pub fn backdrop(&mut self, shader: Option<Shader<'static>>) {
        let (w, h) = (self.w, self.h);
        self.rect_shaded(-40.0, -40.0, w + 80.0, h + 80.0, shader);
    }

    /// A rounded rectangle in one colour.
    pub fn rrect(&mut self, x: f32, y: f32, w: f32, h: f32, r: f32, color: Color) {
        self.fill(rounded(x, y, w, h, r), &solid(color), FillRule::Winding);
    }

    /// A rounded rectangle painted with a shader.
    pub fn rrect_shaded(
        &mut self,
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        r: f32,
        shader: Option<Shader<'static>>,
    ) {
        if let Some(s) = shader {
            self.fill(rounded(x, y, w, h, r), &shaded(s), FillRule::Winding);
        }
    }

    /// A filled circle.
    pub fn circle(&mut self, cx: f32, cy: f32, r: f32, color: Color) {
        self.fill(oval(cx, cy, r, r), &solid(color), FillRule::Winding);
    }

    /// A filled ellipse.
    pub fn ellipse(&mut self, cx: f32, cy: f32, rx: f32, ry: f32, color: Color) {
        self.fill(oval(cx, cy, rx, ry), &solid(color), FillRule::Winding);
    }

    /// An ellipse painted with a shader.
    pub fn ellipse_shaded(
        &mut self,
        cx: f32,
        cy: f32,
        rx: f32,
        ry: f32,
        shader: Option<Shader<'static>>,
    ) {
        if let Some(s) = shader {
            self.fill(oval(cx, cy, rx, ry), &shaded(s), FillRule::Winding);
        }
    }

    /// A ring between radii `inner` and `outer`.
    pub fn ring(&mut self, cx: f32, cy: f32, outer: f32, inner: f32, color: Color) {
        let mut pb = PathBuilder::new();
        pb.push_circle(cx, cy, outer);
        pb.push_circle(cx, cy, inner);
        self.fill(pb.finish(), &solid(color), FillRule::EvenOdd);
    }

    /// A quarter disc with its centre at (`cx`, `cy`) reaching `dx` across
    /// and `dy` down (negative for left or up).
    pub fn quarter(&mut self, cx: f32, cy: f32, dx: f32, dy: f32, color: Color) {
        let k = 0.552_285;
        let mut pb = PathBuilder::new();
        pb.move_to(cx, cy);
        pb.line_to(cx + dx, cy);
        pb.cubic_to(cx + dx, cy + dy * k, cx + dx * k, cy + dy, cx, cy + dy);
        pb.close();
        self.fill(pb.finish(), &solid(color), FillRule::Winding);
    }

    /// A filled polygon.
    pub fn poly(&mut self, points: &[(f32, f32)], color: Color) {
        self.fill(polygon(points), &solid(color), FillRule::Winding);
    }

    /// A polygon painted with a shader.
    pub fn poly_shaded(&mut self, points: &[(f32, f32)], shader: Option<Shader<'static>>) {
        if let Some(s) = shader {
            self.fill(polygon(points), &shaded(s), FillRule::Winding);
        }
    }

    /// A polyline of `width` with round joins and caps.
    pub fn line(&mut self, points: &[(f32, f32)], width: f32, color: Color) {
        let mut pb = PathBuilder::new();
        for (i, &(x, y)) in points.iter().enumerate() {
            if i == 0 {
                pb.move_to(x, y);
            } else {
                pb.line_to(x, y);
            }
        }
        if let Some(path) = pb.finish() {
            let stroke = Stroke {
                width,
                line_cap: resvg::tiny_skia::LineCap::Round,
                line_join: resvg::tiny_skia::LineJoin::Round,
                ..Stroke::default()
            };
            self.pix
                .stroke_path(&path, &solid(color), &stroke, self.t, None);
        }
    }

    /// A soft light or shadow: `color` at `alpha` in the middle fading out
    /// to nothing at radii `rx`, `ry`.
    pub fn glow(&mut self, cx: f32, cy: f32, rx: f32, ry: f32, color: u32, alpha: f32) {
        let shader = radial(
            cx,
            cy,
            rx,
            ry,
            &[
                (0.0, rgba(color, alpha)),
                (0.45, rgba(color, alpha * 0.55)),
                (1.0, rgba(color, 0.0)),
            ],
        );
        self.rect_shaded(cx - rx, cy - ry, rx * 2.0, ry * 2.0, shader);
    }

    /// One line of text with its top-left corner at (`x`, `y`); returns its width.
    pub fn text(&mut self, text: &str, x: f32, y: f32, cell: f32, color: Color) -> f32 {
        let (x, y, cell) = (x.round(), y.round(), cell.round().max(1.0));
        let mut pb = PathBuilder::new();
        font::push_line(&mut pb, text, x, y, cell);
        self.fill(pb.finish(), &solid(color), FillRule::Winding);
        font::line_width(text, cell)
    }

    /// One line of text centred on `cx`.
    pub fn text_centred(&mut self, text: &str, cx: f32, y: f32, cell: f32, color: Color) {
        let cell = cell.round().max(1.0);
        let x = cx - font::line_width(text, cell) / 2.0;
        self.text(text, x, y, cell, color);
    }

    /// Lines of text stacked with `leading` cells between them, left
    /// aligned at `x` (or centred on it); returns the y under the last line.
    pub fn lines(
        &mut self,
        lines: &[&str],
        x: f32,
        y: f32,
        cell: f32,
        color: Color,
        centred: bool,
    ) -> f32 {
        let cell = cell.round().max(1.0);
        let mut top = y;
        for line in lines {
            if centred {
                self.text_centred(line, x, top, cell, color);
            } else {
                self.text(line, x, top, cell, color);
            }
            top += font::line_height(cell) + 2.0 * cell;
        }
        top - 2.0 * cell
    }

    /// A pill-shaped button with `label`; returns its width and height.
    pub fn button(
        &mut self,
        label: &str,
        x: f32,
        y: f32,
        cell: f32,
        background: Color,
        foreground: Color,
    ) -> (f32, f32) {
        let cell = cell.round().max(1.0);
        let (pad_x, pad_y) = (4.0 * cell, 3.0 * cell);
        let w = font::line_width(label, cell) + 2.0 * pad_x;
        let h = font::line_height(cell) + 2.0 * pad_y;
        self.rrect(x, y, w, h, h / 2.0, background);
        self.text(label, x + pad_x, y + pad_y, cell, foreground);
        (w, h)
    }

    /// The studio mark (a compass needle in a disc) and the word NORTHWIND;
    /// returns its width.
    pub fn logo(
        &mut self,
        x: f32,
        y: f32,
        cell: f32,
        disc: Color,
        needle: Color,
        word: Color,
    ) -> f32 {
        let cell = cell.round().max(1.0);
        let d = 9.0 * cell;
        let (cx, cy) = (x + d / 2.0, y + d / 2.0 - cell);
        self.circle(cx, cy, d / 2.0, disc);
        self.poly(
            &[
                (cx, cy - d * 0.36),
                (cx + d * 0.16, cy + d * 0.22),
                (cx, cy + d * 0.12),
                (cx - d * 0.16, cy + d * 0.22),
            ],
            needle,
        );
        let tw = self.text("NORTHWIND", x + d + 2.0 * cell, y + cell * 0.5, cell, word);
        d + 2.0 * cell + tw
    }

    /// The finished picture.
    pub fn finish(self) -> Pixmap {
        self.pix
    }
}

fn polygon(points: &[(f32, f32)]) -> Option<Path> {
    let mut pb = PathBuilder::new();
    for (i, &(x, y)) in points.iter().enumerate() {
        if i == 0 {
            pb.move_to(x, y);
        } else {
            pb.line_to(x, y);
        }
    }
    pb.close();
    pb.finish()
}
