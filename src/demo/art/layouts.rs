//! One composition per kind of piece. Sizes are fractions of the canvas so
//! a layout holds at any resolution; text cells are whole pixels.

use super::canvas::{Canvas, linear, mix, radial, rgb, rgba};
use super::font::{fit_cell, line_width};
use super::motifs::{avatar, can, parcel, phone, tracker};
use super::{CORAL, INK, Piece, SAND, SUN, TEAL, WHITE};
use resvg::tiny_skia::{IntSize, Pixmap, Transform};

/// A small deterministic generator (splitmix64) for scattered details.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next value in 0..1.
    pub fn unit(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Launch hero keyframe: dark studio, product can in a teal halo.
pub fn hero(c: &mut Canvas, p: &Piece) {
    let (w, h) = (c.w, c.h);
    c.backdrop(linear(
        0.0,
        0.0,
        w,
        h,
        &[(0.0, rgb(INK)), (1.0, rgb(mix(INK, TEAL, 0.3)))],
    ));
    c.glow(w * 0.72, h * 0.48, h * 0.7, h * 0.7, TEAL, 0.5);
    c.circle(w * 0.72, h * 0.5, h * 0.34, rgb(TEAL));
    c.ring(w * 0.72, h * 0.5, h * 0.42, h * 0.405, rgba(SAND, 0.6));
    c.circle(w * 0.88, h * 0.2, h * 0.06, rgb(SUN));
    c.circle(w * 0.56, h * 0.78, h * 0.025, rgb(CORAL));
    can(c, w * 0.72, h * 0.8, h * 0.26, h * 0.5, CORAL, SAND);
    let u = h / 100.0;
    c.logo(
        w * 0.06,
        h * 0.08,
        u * 0.55,
        rgb(CORAL),
        rgb(WHITE),
        rgb(WHITE),
    );
    let cell = fit_cell(p.headline, w * 0.46, u * 1.6);
    let below = c.lines(p.headline, w * 0.06, h * 0.3, cell, rgb(WHITE), false);
    let sub = (u * 0.5).round();
    c.text(p.subline, w * 0.06, below + 5.0 * sub, sub, rgb(SAND));
    c.button(
        p.cta,
        w * 0.06,
        below + 16.0 * sub,
        sub,
        rgb(CORAL),
        rgb(INK),
    );
}

/// Webinar title card: sand page, speakers on a coral disc, date bar.
pub fn webinar(c: &mut Canvas, p: &Piece) {
    let (w, h) = (c.w, c.h);
    let u = h / 100.0;
    c.backdrop(linear(
        0.0,
        0.0,
        0.0,
        h,
        &[(0.0, rgb(WHITE)), (1.0, rgb(SAND))],
    ));
    c.circle(w * 0.8, h * 0.5, h * 0.46, rgb(CORAL));
    c.circle(w * 0.8, h * 0.5, h * 0.3, rgb(mix(CORAL, SUN, 0.35)));
    avatar(c, w * 0.72, h * 0.36, h * 0.12, WHITE, INK);
    avatar(c, w * 0.89, h * 0.44, h * 0.1, SUN, INK);
    avatar(c, w * 0.76, h * 0.66, h * 0.11, TEAL, WHITE);
    c.logo(w * 0.06, h * 0.08, u * 0.5, rgb(INK), rgb(SUN), rgb(INK));
    let tag = (u * 0.45).round();
    c.button(
        "Q1 WEBINAR SERIES",
        w * 0.06,
        h * 0.24,
        tag,
        rgb(TEAL),
        rgb(WHITE),
    );
    let cell = fit_cell(p.headline, w * 0.52, u * 1.5);
    let below = c.lines(p.headline, w * 0.06, h * 0.38, cell, rgb(INK), false);
    let sub = (u * 0.55).round();
    c.text(
        p.subline,
        w * 0.06,
        below + 5.0 * sub,
        sub,
        rgb(mix(INK, TEAL, 0.5)),
    );
    c.rect(0.0, h * 0.9, w, h * 0.1, rgb(INK));
    let small = (u * 0.4).round();
    c.text(p.cta, w * 0.06, h * 0.95 - 3.5 * small, small, rgb(WHITE));
}

/// Black Friday leaderboard: yellow type on ink, a slanted sun band with
/// a parcel and a discount badge.
pub fn black_friday(c: &mut Canvas, p: &Piece) {
    let (w, h) = (c.w, c.h);
    let u = h / 100.0;
    c.backdrop(linear(
        0.0,
        0.0,
        w,
        0.0,
        &[(0.0, rgb(mix(INK, 0x000000, 0.3))), (1.0, rgb(INK))],
    ));
    c.poly(&[(w * 0.62, 0.0), (w, 0.0), (w, h), (w * 0.5, h)], rgb(SUN));
    c.poly(
        &[
            (w * 0.58, 0.0),
            (w * 0.61, 0.0),
            (w * 0.49, h),
            (w * 0.46, h),
        ],
        rgb(CORAL),
    );
    parcel(c, w * 0.8, h * 0.88, h * 0.3, CORAL);
    c.circle(w * 0.64, h * 0.3, h * 0.17, rgb(CORAL));
    let badge = (u * 1.3).round();
    c.text_centred("-40%", w * 0.64, h * 0.3 - 3.5 * badge, badge, rgb(WHITE));
    c.logo(w * 0.04, h * 0.12, u * 0.9, rgb(SUN), rgb(INK), rgb(WHITE));
    let cell = fit_cell(p.headline, w * 0.4, u * 2.6);
    let below = c.lines(p.headline, w * 0.04, h * 0.34, cell, rgb(SUN), false);
    let sub = (u * 0.9).round();
    c.text(p.subline, w * 0.04, below + 4.0 * sub, sub, rgb(WHITE));
    c.button(
        p.cta,
        w * 0.04,
        below + 14.0 * sub,
        sub,
        rgb(CORAL),
        rgb(WHITE),
    );
}

/// Holiday email header: coral sky, falling snow, sand hills with gifts.
pub fn holiday(c: &mut Canvas, p: &Piece) {
    let (w, h) = (c.w, c.h);
    let u = h / 100.0;
    c.backdrop(linear(
        0.0,
        0.0,
        0.0,
        h,
        &[(0.0, rgb(mix(CORAL, INK, 0.12))), (1.0, rgb(CORAL))],
    ));
    let mut rng = super::layouts::Rng::new(p.seed);
    for _ in 0..70 {
        let (x, y, r) = (
            rng.unit() * w,
            rng.unit() * h * 0.8,
            (0.3 + rng.unit()) * u * 0.8,
        );
        c.circle(x, y, r, rgba(WHITE, 0.55 + rng.unit() * 0.4));
    }
    for i in 0..6 {
        let (x, y) = (
            w * (0.08 + 0.17 * i as f32 + rng.unit() * 0.05),
            h * (0.12 + rng.unit() * 0.3),
        );
        let s = u * (1.5 + rng.unit() * 1.5);
        c.rect(x - s, y - s * 0.18, s * 2.0, s * 0.36, rgb(SUN));
        c.rect(x - s * 0.18, y - s, s * 0.36, s * 2.0, rgb(SUN));
    }
    c.ellipse(w * 0.2, h * 1.08, w * 0.42, h * 0.3, rgb(SAND));
    c.ellipse(
        w * 0.85,
        h * 1.12,
        w * 0.38,
        h * 0.34,
        rgb(mix(SAND, WHITE, 0.5)),
    );
    parcel(c, w * 0.12, h * 0.86, h * 0.13, TEAL);
    parcel(c, w * 0.2, h * 0.9, h * 0.09, INK);
    parcel(c, w * 0.88, h * 0.86, h * 0.12, SUN);
    let cell = fit_cell(p.headline, w * 0.62, u * 2.2);
    let below = c.lines(p.headline, w * 0.5, h * 0.26, cell, rgb(WHITE), true);
    let sub = (u * 0.9).round();
    c.text_centred(p.subline, w * 0.5, below + 4.0 * sub, sub, rgb(INK));
    c.logo(
        w * 0.5 - 31.0 * sub,
        h * 0.84,
        sub,
        rgb(INK),
        rgb(SUN),
        rgb(INK),
    );
}

/// Pricing illustration: three plan cards, the middle one raised in ink.
pub fn pricing(c: &mut Canvas, p: &Piece) {
    let (w, h) = (c.w, c.h);
    let u = h / 100.0;
    c.backdrop(linear(
        0.0,
        0.0,
        w,
        h,
        &[(0.0, rgb(WHITE)), (1.0, rgb(SAND))],
    ));
    c.circle(w * 0.08, h * 0.9, h * 0.28, rgb(mix(SAND, SUN, 0.35)));
    c.circle(w * 0.95, h * 0.12, h * 0.16, rgb(mix(TEAL, WHITE, 0.2)));
    let cell = fit_cell(p.headline, w * 0.6, u * 1.1);
    c.lines(p.headline, w * 0.5, h * 0.07, cell, rgb(INK), true);
    let sub = (u * 0.45).round();
    c.text_centred(
        p.subline,
        w * 0.5,
        h * 0.07 + 10.0 * cell,
        sub,
        rgb(mix(INK, TEAL, 0.5)),
    );
    let plans = [
        ("STARTER", "$0", false),
        ("TEAM", "$12", true),
        ("STUDIO", "$29", false),
    ];
    let cw = w * 0.25;
    for (i, (name, price, raised)) in plans.iter().enumerate() {
        let x = w * 0.1 + i as f32 * (cw + w * 0.05);
        let (y, ch) = if *raised {
            (h * 0.26, h * 0.68)
        } else {
            (h * 0.31, h * 0.6)
        };
        c.glow(x + cw / 2.0, y + ch * 0.98, cw * 0.7, h * 0.06, INK, 0.25);
        let (bg, fg, muted) = if *raised {
            (INK, WHITE, mix(INK, WHITE, 0.35))
        } else {
            (WHITE, INK, mix(SAND, INK, 0.15))
        };
        c.rrect(x, y, cw, ch, u * 2.5, rgb(bg));
        let t = (u * 0.5).round();
        c.text(
            name,
            x + cw * 0.1,
            y + ch * 0.07,
            t,
            rgb(if *raised { SUN } else { TEAL }),
        );
        let big = (u * 1.1).round();
        c.text(price, x + cw * 0.1, y + ch * 0.16, big, rgb(fg));
        c.text(
            "/MO",
            x + cw * 0.1 + line_width(price, big) + big,
            y + ch * 0.16 + 7.0 * big - 7.0 * t,
            t,
            rgb(muted),
        );
        for row in 0..4 {
            let ry = y + ch * (0.4 + 0.1 * row as f32);
            c.circle(
                x + cw * 0.13,
                ry,
                u * 1.0,
                rgb(if *raised { CORAL } else { TEAL }),
            );
            let len = cw * (0.55 - 0.07 * ((row + i) % 3) as f32);
            c.rrect(x + cw * 0.22, ry - u * 0.5, len, u, u * 0.5, rgb(muted));
        }
        let label = if *raised { "START TRIAL" } else { "CHOOSE" };
        let bw = line_width(label, t) + 8.0 * t;
        c.button(
            label,
            x + (cw - bw) / 2.0,
            y + ch * 0.84,
            t,
            rgb(if *raised { CORAL } else { INK }),
            rgb(WHITE),
        );
        if *raised {
            c.button("POPULAR", x + cw * 0.62, y - 6.5 * t, t, rgb(SUN), rgb(INK));
        }
    }
    let _ = p.cta;
}

/// App store screenshot: teal gradient, headline, the phone rising from
/// the bottom edge.
pub fn app_store(c: &mut Canvas, p: &Piece) {
    let (w, h) = (c.w, c.h);
    let u = w / 100.0;
    c.backdrop(linear(
        0.0,
        0.0,
        0.0,
        h,
        &[(0.0, rgb(TEAL)), (1.0, rgb(mix(TEAL, INK, 0.6)))],
    ));
    c.circle(w * 0.95, h * 0.38, w * 0.3, rgb(SUN));
    c.circle(w * 0.05, h * 0.6, w * 0.22, rgb(CORAL));
    let cell = fit_cell(p.headline, w * 0.84, u * 1.6);
    let below = c.lines(p.headline, w * 0.5, h * 0.07, cell, rgb(WHITE), true);
    let sub = fit_cell(&[p.subline], w * 0.8, u * 0.6);
    c.text_centred(p.subline, w * 0.5, below + 4.0 * sub, sub, rgb(SAND));
    phone(c, w * 0.14, h * 0.3, w * 0.72, h * 0.8, TEAL);
}

/// Trade show backwall: ink and sand split by a diagonal, a route map.
pub fn booth(c: &mut Canvas, p: &Piece) {
    let (w, h) = (c.w, c.h);
    let u = h / 100.0;
    c.backdrop(linear(
        0.0,
        0.0,
        0.0,
        h,
        &[(0.0, rgb(SAND)), (1.0, rgb(mix(SAND, WHITE, 0.4)))],
    ));
    c.poly_shaded(
        &[(0.0, 0.0), (w * 0.6, 0.0), (w * 0.48, h), (0.0, h)],
        linear(
            0.0,
            0.0,
            w * 0.6,
            h,
            &[(0.0, rgb(INK)), (1.0, rgb(mix(INK, TEAL, 0.25)))],
        ),
    );
    let route = [
        (w * 0.6, h * 0.78),
        (w * 0.68, h * 0.5),
        (w * 0.78, h * 0.62),
        (w * 0.86, h * 0.3),
        (w * 0.94, h * 0.42),
    ];
    for &(x, y) in &route {
        c.glow(x, y, u * 9.0, u * 9.0, TEAL, 0.25);
    }
    c.line(&route, u * 1.4, rgb(TEAL));
    for &(x, y) in &route[..4] {
        c.circle(x, y, u * 2.2, rgb(INK));
        c.circle(x, y, u * 1.2, rgb(WHITE));
    }
    let (px, py) = route[4];
    c.circle(px, py - u * 5.0, u * 3.5, rgb(CORAL));
    c.poly(
        &[
            (px - u * 3.0, py - u * 3.5),
            (px + u * 3.0, py - u * 3.5),
            (px, py + u * 0.5),
        ],
        rgb(CORAL),
    );
    c.circle(px, py - u * 5.0, u * 1.3, rgb(WHITE));
    c.logo(
        w * 0.04,
        h * 0.1,
        u * 0.8,
        rgb(CORAL),
        rgb(WHITE),
        rgb(WHITE),
    );
    let cell = fit_cell(p.headline, w * 0.42, u * 2.0);
    let below = c.lines(p.headline, w * 0.04, h * 0.3, cell, rgb(WHITE), false);
    let sub = (u * 0.8).round();
    c.text(p.subline, w * 0.04, below + 4.0 * sub, sub, rgb(SAND));
    c.button(p.cta, w * 0.7, h * 0.82, sub, rgb(SUN), rgb(INK));
}

/// Annual report cover: a grid of geometric tiles over the title.
pub fn report_cover(c: &mut Canvas, p: &Piece) {
    let (w, h) = (c.w, c.h);
    let u = w / 100.0;
    c.backdrop(linear(
        0.0,
        0.0,
        0.0,
        h,
        &[(0.0, rgb(WHITE)), (1.0, rgb(SAND))],
    ));
    let mut rng = Rng::new(p.seed);
    let colours = [INK, CORAL, TEAL, SUN, SAND];
    let (cols, rows) = (4, 4);
    let m = w * 0.08;
    let s = (w - 2.0 * m) / cols as f32;
    for row in 0..rows {
        for col in 0..cols {
            let (x, y) = (m + col as f32 * s, m + row as f32 * s);
            let pick =
                |r: &mut Rng| colours[(r.unit() * colours.len() as f32) as usize % colours.len()];
            let bg = pick(&mut rng);
            let mut fg = pick(&mut rng);
            if fg == bg {
                fg = if bg == INK { SUN } else { INK };
            }
            c.rect(x, y, s + 0.5, s + 0.5, rgb(bg));
            let corner = (rng.unit() * 4.0) as u32;
            match (rng.unit() * 3.0) as u32 {
                0 => c.circle(x + s / 2.0, y + s / 2.0, s * 0.4, rgb(fg)),
                1 => {
                    let (cx, cy, sx, sy) = match corner {
                        0 => (x, y, 1.0, 1.0),
                        1 => (x + s, y, -1.0, 1.0),
                        2 => (x + s, y + s, -1.0, -1.0),
                        _ => (x, y + s, 1.0, -1.0),
                    };
                    c.quarter(cx, cy, sx * s, sy * s, rgb(fg));
                }
                _ => c.poly(&[(x, y + s), (x + s, y + s), (x + s / 2.0, y)], rgb(fg)),
            }
        }
    }
    let gy = m + rows as f32 * s;
    c.rect_shaded(
        0.0,
        gy,
        w,
        h - gy,
        linear(
            0.0,
            gy,
            0.0,
            h,
            &[(0.0, rgb(mix(WHITE, SAND, 0.4))), (1.0, rgb(SAND))],
        ),
    );
    let cell = fit_cell(p.headline, w * 0.84, u * 1.4);
    let below = c.lines(p.headline, m, gy + h * 0.05, cell, rgb(INK), false);
    let big = fit_cell(&[p.cta], w * 0.5, u * 2.6);
    c.text(p.cta, m, below + 4.0 * cell, big, rgb(CORAL));
    let sub = (u * 0.45).round();
    c.text(p.subline, m, h - m - 7.0 * sub, sub, rgb(INK));
    c.logo(m, m * 0.3, sub, rgb(INK), rgb(SUN), rgb(INK));
}

/// Podcast cover: a microphone inside sound rings on ink.
pub fn podcast(c: &mut Canvas, p: &Piece) {
    let (w, h) = (c.w, c.h);
    let u = w / 100.0;
    c.backdrop(radial(
        w * 0.5,
        h * 0.6,
        w * 0.8,
        w * 0.8,
        &[(0.0, rgb(mix(INK, TEAL, 0.3))), (1.0, rgb(INK))],
    ));
    let (cx, cy) = (w * 0.5, h * 0.56);
    for i in (0..6).rev() {
        let r = w * (0.14 + 0.065 * i as f32);
        let col = if i % 2 == 0 { TEAL } else { CORAL };
        c.ring(cx, cy, r, r - u * 1.2, rgba(col, 0.9 - 0.12 * i as f32));
    }
    // Microphone: capsule, grille, yoke and stand.
    let (mw, mh) = (w * 0.16, w * 0.26);
    let yoke: Vec<(f32, f32)> = (0..=16)
        .map(|i| {
            let a = std::f32::consts::PI * i as f32 / 16.0;
            (
                cx + mw * 0.76 * a.cos(),
                cy + mh * 0.05 + mw * 0.76 * a.sin(),
            )
        })
        .collect();
    c.line(&yoke, mw * 0.12, rgb(SAND));
    c.rrect(cx - mw / 2.0, cy - mh * 0.55, mw, mh, mw / 2.0, rgb(SUN));
    for i in 0..5 {
        c.rect(
            cx - mw * 0.35,
            cy - mh * 0.4 + i as f32 * mh * 0.1,
            mw * 0.7,
            mh * 0.03,
            rgb(mix(SUN, INK, 0.35)),
        );
    }
    c.rect(cx - u * 0.8, cy + mh * 0.6, u * 1.6, mh * 0.3, rgb(SAND));
    c.rrect(
        cx - mw * 0.6,
        cy + mh * 0.88,
        mw * 1.2,
        u * 1.8,
        u * 0.9,
        rgb(SAND),
    );
    let cell = fit_cell(p.headline, w * 0.84, u * 1.6);
    c.lines(p.headline, w * 0.5, h * 0.07, cell, rgb(SUN), true);
    let sub = (u * 0.55).round();
    c.text_centred(p.subline, w * 0.5, h * 0.92, sub, rgb(WHITE));
    let tag = (u * 0.5).round();
    let bw = line_width(p.cta, tag) + 8.0 * tag;
    c.button(
        p.cta,
        w * 0.5 - bw / 2.0,
        h * 0.07 + 9.0 * cell + 2.0 * tag,
        tag,
        rgb(CORAL),
        rgb(WHITE),
    );
}

/// Product tour keyframe: the dashboard window with a chart, the cursor
/// and a callout.
pub fn product_tour(c: &mut Canvas, p: &Piece) {
    let (w, h) = (c.w, c.h);
    let u = h / 100.0;
    c.backdrop(linear(
        0.0,
        0.0,
        w,
        h,
        &[(0.0, rgb(SAND)), (1.0, rgb(WHITE))],
    ));
    c.circle(w * 0.1, h * 0.95, h * 0.35, rgb(TEAL));
    c.circle(w * 0.92, h * 0.08, h * 0.2, rgb(SUN));
    let (x, y, ww, wh) = (w * 0.14, h * 0.16, w * 0.66, h * 0.7);
    c.glow(x + ww / 2.0, y + wh, ww * 0.6, h * 0.08, INK, 0.3);
    c.rrect(x, y, ww, wh, u * 1.8, rgb(WHITE));
    c.rect(x, y + wh * 0.08, ww, u * 0.2, rgb(mix(SAND, INK, 0.1)));
    for (i, dot) in [CORAL, SUN, TEAL].iter().enumerate() {
        c.circle(
            x + u * (3.0 + 2.6 * i as f32),
            y + wh * 0.04,
            u * 0.9,
            rgb(*dot),
        );
    }
    c.rect(
        x,
        y + wh * 0.08 + u * 0.2,
        ww * 0.2,
        wh * 0.92 - u * 1.8,
        rgb(INK),
    );
    for i in 0..5 {
        c.rrect(
            x + ww * 0.03,
            y + wh * (0.16 + 0.09 * i as f32),
            ww * 0.14,
            u * 1.4,
            u * 0.7,
            rgb(mix(INK, WHITE, if i == 1 { 0.7 } else { 0.25 })),
        );
    }
    let (cx0, cy0) = (x + ww * 0.25, y + wh * 0.14);
    for (i, col) in [TEAL, CORAL, SUN].iter().enumerate() {
        let kx = cx0 + i as f32 * ww * 0.245;
        c.rrect(kx, cy0, ww * 0.22, wh * 0.18, u, rgb(mix(SAND, WHITE, 0.5)));
        c.rect(
            kx + ww * 0.02,
            cy0 + wh * 0.05,
            ww * 0.08,
            u * 2.4,
            rgb(*col),
        );
        c.rect(
            kx + ww * 0.02,
            cy0 + wh * 0.12,
            ww * 0.14,
            u * 0.8,
            rgb(mix(INK, WHITE, 0.55)),
        );
    }
    let base = y + wh * 0.92;
    let bars = [0.3, 0.42, 0.38, 0.55, 0.5, 0.68, 0.62, 0.8, 0.74, 0.9];
    let bw = ww * 0.06;
    for (i, v) in bars.iter().enumerate() {
        let bx = cx0 + i as f32 * bw * 1.21;
        let bh = wh * 0.5 * v;
        c.rrect(
            bx,
            base - bh,
            bw * 0.8,
            bh,
            u * 0.6,
            rgb(if i == 7 { CORAL } else { TEAL }),
        );
    }
    // The cursor over the highlighted bar, and the callout.
    let (ax, ay) = (cx0 + 7.0 * bw * 1.21 + bw * 0.5, base - wh * 0.3);
    c.poly(
        &[
            (ax, ay),
            (ax, ay + u * 7.0),
            (ax + u * 1.8, ay + u * 5.2),
            (ax + u * 3.6, ay + u * 8.4),
            (ax + u * 4.8, ay + u * 7.8),
            (ax + u * 3.1, ay + u * 4.7),
            (ax + u * 5.4, ay + u * 4.5),
        ],
        rgb(INK),
    );
    let cell = fit_cell(p.headline, w * 0.3, u * 0.9);
    let lw = p
        .headline
        .iter()
        .map(|l| line_width(l, cell))
        .fold(0.0, f32::max);
    let (bx, by) = (w * 0.6, h * 0.06);
    let bh = p.headline.len() as f32 * 9.0 * cell + 4.0 * cell;
    c.rrect(bx, by, lw + 8.0 * cell, bh, 2.0 * cell, rgb(CORAL));
    c.poly(
        &[
            (bx + 6.0 * cell, by + bh - 1.0),
            (bx + 14.0 * cell, by + bh - 1.0),
            (bx + 6.0 * cell, by + bh + 6.0 * cell),
        ],
        rgb(CORAL),
    );
    c.lines(
        p.headline,
        bx + 4.0 * cell,
        by + 3.0 * cell,
        cell,
        rgb(WHITE),
        false,
    );
    let sub = (u * 0.6).round();
    c.text(p.subline, w * 0.14, h * 0.92, sub, rgb(INK));
    c.logo(w * 0.04, h * 0.05, sub, rgb(INK), rgb(SUN), rgb(INK));
}

/// Metro billboard; the revision swaps the ground to sand, the line to
/// teal and the parcel to the other side.
pub fn billboard(c: &mut Canvas, p: &Piece, revision: bool) {
    let (w, h) = (c.w, c.h);
    let u = h / 100.0;
    let (ground, line, ink, sub_ink) = if revision {
        (SAND, TEAL, INK, mix(INK, TEAL, 0.4))
    } else {
        (INK, CORAL, WHITE, SAND)
    };
    c.backdrop(linear(
        0.0,
        0.0,
        w,
        h,
        &[
            (0.0, rgb(ground)),
            (
                1.0,
                rgb(mix(ground, if revision { WHITE } else { TEAL }, 0.25)),
            ),
        ],
    ));
    let ly = if revision { h * 0.7 } else { h * 0.76 };
    if revision {
        c.circle(w * 0.8, h * 0.36, h * 0.3, rgb(SUN));
    } else {
        c.circle(w * 0.82, h * 0.26, h * 0.2, rgb(mix(INK, TEAL, 0.5)));
    }
    c.rect(0.0, ly - u * 1.4, w, u * 2.8, rgb(line));
    let stations = ["BAIXA", "ALAMEDA", "OLAIAS", "ORIENTE"];
    let small = (u * 0.55).round();
    for (i, name) in stations.iter().enumerate() {
        let sx = w * (0.12 + 0.25 * i as f32);
        c.circle(sx, ly, u * 2.6, rgb(ink));
        c.circle(sx, ly, u * 1.4, rgb(ground));
        c.text_centred(name, sx, ly + u * 5.0, small, rgb(ink));
    }
    let px = if revision { w * 0.8 } else { w * 0.7 };
    parcel(
        c,
        px,
        ly - u * 3.5,
        h * 0.16,
        if revision { CORAL } else { SUN },
    );
    let cell = fit_cell(p.headline, w * 0.5, u * 2.0);
    let below = c.lines(p.headline, w * 0.06, h * 0.1, cell, rgb(ink), false);
    let sub = (u * 0.55).round();
    c.text(p.subline, w * 0.06, below + 5.0 * sub, sub, rgb(sub_ink));
    c.logo(w * 0.06, h * 0.9, small, rgb(line), rgb(ground), rgb(ink));
}

/// Customer story tile: a white card on teal with the headline number.
/// The re-export is shifted and scaled a hair, with a warmer accent.
pub fn carousel(c: &mut Canvas, p: &Piece, recut: bool) {
    let (w, h) = (c.w, c.h);
    let u = w / 100.0;
    let accent = if recut { mix(CORAL, SUN, 0.08) } else { CORAL };
    if recut {
        c.t = resvg::tiny_skia::Transform::from_row(1.008, 0.0, 0.0, 1.008, -7.0, -5.0);
    }
    c.backdrop(linear(
        0.0,
        0.0,
        w,
        h,
        &[(0.0, rgb(TEAL)), (1.0, rgb(mix(TEAL, INK, 0.35)))],
    ));
    c.circle(w * 0.9, h * 0.08, w * 0.2, rgb(mix(TEAL, WHITE, 0.15)));
    let (x, y, cw, ch) = (w * 0.08, h * 0.1, w * 0.84, h * 0.7);
    c.glow(w * 0.5, y + ch, cw * 0.55, h * 0.05, INK, 0.4);
    c.rrect(x, y, cw, ch, u * 3.0, rgb(WHITE));
    // Quote marks.
    for i in 0..2 {
        let qx = x + cw * 0.1 + i as f32 * u * 5.0;
        c.circle(qx, y + ch * 0.09, u * 1.8, rgb(accent));
        c.poly(
            &[
                (qx - u * 1.8, y + ch * 0.09),
                (qx + u * 0.2, y + ch * 0.09),
                (qx - u * 0.6, y + ch * 0.15),
            ],
            rgb(accent),
        );
    }
    let big = fit_cell(&[p.cta], cw * 0.7, u * 2.2);
    c.text(p.cta, x + cw * 0.08, y + ch * 0.2, big, rgb(accent));
    let cell = fit_cell(p.headline, cw * 0.84, u * 1.0);
    let below = c.lines(
        p.headline,
        x + cw * 0.08,
        y + ch * 0.2 + 9.5 * big,
        cell,
        rgb(INK),
        false,
    );
    avatar(c, x + cw * 0.14, y + ch * 0.86, u * 4.5, SUN, INK);
    let sub = (u * 0.45).round();
    c.text(
        p.subline,
        x + cw * 0.24,
        y + ch * 0.86 - 3.5 * sub,
        sub,
        rgb(mix(INK, TEAL, 0.4)),
    );
    let _ = below;
    for i in 0..5 {
        let col = if i == 1 { WHITE } else { mix(TEAL, WHITE, 0.4) };
        c.circle(w * (0.42 + 0.04 * i as f32), h * 0.9, u * 0.9, rgb(col));
    }
    c.circle(w * 0.86, h * 0.9, u * 3.2, rgb(WHITE));
    c.poly(
        &[
            (w * 0.85, h * 0.88),
            (w * 0.875, h * 0.9),
            (w * 0.85, h * 0.92),
        ],
        rgb(TEAL),
    );
    c.logo(w * 0.08, h * 0.87, sub, rgb(WHITE), rgb(TEAL), rgb(WHITE));
}

/// Neon reel cover for launch week, outside the brand on purpose.
pub fn reel(c: &mut Canvas, p: &Piece) {
    const VIOLET: u32 = 0x7a00ff;
    const MAGENTA: u32 = 0xe600ff;
    const LIME: u32 = 0x39ff14;
    const PLUM: u32 = 0x3a0078;
    let (w, h) = (c.w, c.h);
    let u = w / 100.0;
    c.backdrop(linear(
        0.0,
        0.0,
        0.0,
        h,
        &[(0.0, rgb(PLUM)), (0.55, rgb(VIOLET)), (1.0, rgb(MAGENTA))],
    ));
    c.glow(w * 0.5, h * 0.55, w * 0.9, w * 0.9, MAGENTA, 0.6);
    c.circle(w * 0.5, h * 0.55, w * 0.34, rgb(MAGENTA));
    c.ring(w * 0.5, h * 0.55, w * 0.44, w * 0.41, rgb(LIME));
    let mut zig = Vec::new();
    for i in 0..9 {
        zig.push((
            w * (i as f32 / 8.0),
            h * 0.82 + if i % 2 == 0 { -u * 4.0 } else { u * 4.0 },
        ));
    }
    c.line(&zig, u * 2.2, rgb(LIME));
    c.rect(w * 0.1, h * 0.3, w * 0.8, u * 1.5, rgb(LIME));
    let cell = fit_cell(p.headline, w * 0.8, u * 2.2);
    c.lines(p.headline, w * 0.5, h * 0.1, cell, rgb(LIME), true);
    let sub = (u * 1.0).round();
    c.text_centred(p.subline, w * 0.5, h * 0.55 - 3.5 * sub, sub, rgb(LIME));
    c.button(
        p.cta,
        w * 0.5 - (line_width(p.cta, sub) + 8.0 * sub) / 2.0,
        h * 0.9,
        sub,
        rgb(LIME),
        rgb(PLUM),
    );
}

/// The case study hero: a studio shot of the tracker and a parcel on a
/// sand sweep, lit from above.
pub fn master(c: &mut Canvas, p: &Piece) -> Result<(), String> {
    let (w, h) = (c.w, c.h);
    // The sweep and its light are smooth: they are painted at a quarter of
    // the size and enlarged, the objects at full size over them.
    let (sw, sh) = (c.pix.width() / 4, c.pix.height() / 4);
    let mut bg = Canvas::new(sw, sh, WHITE)?;
    bg.w = w;
    bg.h = h;
    bg.t = Transform::from_scale(sw as f32 / w, sh as f32 / h);
    bg.backdrop(linear(
        0.0,
        0.0,
        0.0,
        h,
        &[
            (0.0, rgb(mix(SAND, INK, 0.12))),
            (0.55, rgb(mix(SAND, WHITE, 0.3))),
            (0.7, rgb(SAND)),
            (1.0, rgb(mix(SAND, 0xc89b66, 0.3))),
        ],
    ));
    bg.glow(w * 0.47, h * 0.45, w * 0.55, h * 0.55, WHITE, 0.7);
    // Light falloff towards the corners.
    bg.backdrop(radial(
        w * 0.48,
        h * 0.5,
        w * 0.75,
        h * 0.85,
        &[
            (0.0, rgba(INK, 0.0)),
            (0.6, rgba(INK, 0.0)),
            (1.0, rgba(INK, 0.3)),
        ],
    ));
    c.pix = enlarge(bg.finish(), c.pix.width(), c.pix.height())?;
    tracker(c, w * 0.42, h * 0.8, w * 0.13, h * 0.55);
    parcel(c, w * 0.64, h * 0.84, h * 0.14, CORAL);
    c.glow(w * 0.25, h * 0.83, w * 0.06, h * 0.015, INK, 0.5);
    c.ellipse_shaded(
        w * 0.25,
        h * 0.77,
        h * 0.06,
        h * 0.06,
        radial(
            w * 0.25 - h * 0.02,
            h * 0.75,
            h * 0.09,
            h * 0.09,
            &[
                (0.0, rgb(mix(SUN, WHITE, 0.5))),
                (0.5, rgb(SUN)),
                (1.0, rgb(mix(SUN, CORAL, 0.6))),
            ],
        ),
    );
    let cell = (h / 400.0).round();
    c.text(p.subline, w * 0.03, h * 0.96, cell, rgba(INK, 0.5));
    Ok(())
}

/// `small` enlarged to `w` x `h` (bilinear: the content is smooth).
fn enlarge(small: Pixmap, w: u32, h: u32) -> Result<Pixmap, String> {
    use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
    let (sw, sh) = (small.width(), small.height());
    let src = image::RgbaImage::from_raw(sw, sh, small.take())
        .ok_or("the backdrop buffer has the wrong size")?;
    let mut dst = image::RgbaImage::new(w, h);
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
        .use_alpha(false);
    Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e| format!("enlarging the backdrop failed: {e}"))?;
    let size = IntSize::from_wh(w, h).ok_or("empty master")?;
    Pixmap::from_vec(dst.into_raw(), size)
        .ok_or_else(|| "the master buffer has the wrong size".to_owned())
}
