//! Recurring illustration motifs: the parcel, the product can, the phone
//! with the app on it, the tracker device and people avatars.

use super::canvas::{Canvas, linear, mix, rgb, rgba};
use super::{CORAL, INK, SAND, SUN, TEAL, WHITE};

/// An isometric parcel whose bottom corner is at (`cx`, `bottom`), `s` wide
/// from the centre to a side corner.
pub fn parcel(c: &mut Canvas, cx: f32, bottom: f32, s: f32, tape: u32) {
    let depth = s * 0.9;
    let top = bottom - depth - s;
    c.glow(cx, bottom - s * 0.1, s * 1.5, s * 0.35, INK, 0.35);
    let left = [
        (cx - s, top + s / 2.0),
        (cx, top + s),
        (cx, bottom),
        (cx - s, bottom - s / 2.0),
    ];
    let right = [
        (cx, top + s),
        (cx + s, top + s / 2.0),
        (cx + s, bottom - s / 2.0),
        (cx, bottom),
    ];
    let lid = [
        (cx, top),
        (cx + s, top + s / 2.0),
        (cx, top + s),
        (cx - s, top + s / 2.0),
    ];
    c.poly(&left, rgb(mix(SAND, 0xc89b66, 0.45)));
    c.poly(&right, rgb(mix(SAND, 0xa87c4f, 0.5)));
    c.poly(&lid, rgb(mix(SAND, WHITE, 0.35)));
    // Tape across the lid and down the front faces.
    let t = s * 0.09;
    c.poly(
        &[
            (cx - s / 2.0 - t, top + s * 0.75 - t / 2.0),
            (cx + s / 2.0 - t, top + s * 0.25 - t / 2.0),
            (cx + s / 2.0 + t, top + s * 0.25 + t / 2.0),
            (cx - s / 2.0 + t, top + s * 0.75 + t / 2.0),
        ],
        rgb(tape),
    );
    c.poly(
        &[
            (cx - s / 2.0 - t, top + s * 0.75 - t / 2.0),
            (cx - s / 2.0 + t, top + s * 0.75 + t / 2.0),
            (cx - s / 2.0 + t, top + s * 0.75 + depth * 0.45 + t / 2.0),
            (cx - s / 2.0 - t, top + s * 0.75 + depth * 0.45 - t / 2.0),
        ],
        rgb(mix(tape, INK, 0.15)),
    );
    // A label on the right face.
    let (lx, ly) = (cx + s * 0.3, top + s + depth * 0.25);
    c.poly(
        &[
            (lx, ly),
            (lx + s * 0.45, ly - s * 0.225),
            (lx + s * 0.45, ly + s * 0.1),
            (lx, ly + s * 0.325),
        ],
        rgb(WHITE),
    );
}

/// A can standing on `bottom`, centred on `cx`, `w` wide and `h` tall,
/// with a label band in `band`.
pub fn can(c: &mut Canvas, cx: f32, bottom: f32, w: f32, h: f32, body: u32, band: u32) {
    let (x, top) = (cx - w / 2.0, bottom - h);
    let e = w * 0.16;
    c.glow(cx + w * 0.25, bottom, w * 1.1, e * 1.8, INK, 0.45);
    let shade = |base: u32| {
        linear(
            x,
            0.0,
            x + w,
            0.0,
            &[
                (0.0, rgb(mix(base, INK, 0.45))),
                (0.3, rgb(mix(base, WHITE, 0.25))),
                (0.55, rgb(base)),
                (1.0, rgb(mix(base, INK, 0.55))),
            ],
        )
    };
    c.ellipse_shaded(cx, bottom, w / 2.0, e, shade(body));
    c.rect_shaded(x, top, w, h, shade(body));
    let band_top = top + h * 0.3;
    c.rect_shaded(x, band_top, w, h * 0.38, shade(band));
    c.ellipse(cx, top, w / 2.0, e, rgb(mix(body, WHITE, 0.55)));
    c.ellipse(cx, top, w * 0.4, e * 0.75, rgb(mix(body, WHITE, 0.3)));
    // A highlight down the can.
    c.rect(
        x + w * 0.22,
        top + e,
        w * 0.05,
        h - e * 1.5,
        rgba(WHITE, 0.35),
    );
    let cell = (w / 64.0).max(1.0);
    c.text_centred(
        "NORTHWIND",
        cx,
        band_top + h * 0.19 - 3.5 * cell,
        cell,
        rgb(WHITE),
    );
}

/// A phone at (`x`, `y`), `w` wide and `h` tall, showing the tracking app:
/// a map with a route, and delivery cards.
pub fn phone(c: &mut Canvas, x: f32, y: f32, w: f32, h: f32, accent: u32) {
    let r = w * 0.13;
    c.glow(x + w / 2.0, y + h * 0.55, w * 0.85, h * 0.6, INK, 0.35);
    c.rrect(x, y, w, h, r, rgb(INK));
    let b = w * 0.035;
    let (sx, sy, sw, sh) = (x + b, y + b, w - 2.0 * b, h - 2.0 * b);
    c.rrect(sx, sy, sw, sh, r - b, rgb(mix(SAND, WHITE, 0.5)));
    // Notch.
    c.rrect(
        x + w * 0.36,
        y + b * 1.6,
        w * 0.28,
        w * 0.05,
        w * 0.025,
        rgb(INK),
    );
    // Map: blocks, a river, the route and the pin.
    let (mx, my, mw, mh) = (sx, sy + sw * 0.16, sw, sw * 0.95);
    c.rect(mx, my, mw, mh, rgb(SAND));
    for i in 0..4 {
        let fy = my + mh * (0.08 + 0.24 * i as f32);
        for j in 0..3 {
            let fx = mx + mw * (0.06 + 0.32 * j as f32);
            c.rrect(
                fx,
                fy,
                mw * 0.26,
                mh * 0.17,
                w * 0.02,
                rgb(mix(SAND, WHITE, 0.6)),
            );
        }
    }
    c.line(
        &[
            (mx + mw * 0.15, my + mh * 0.9),
            (mx + mw * 0.15, my + mh * 0.55),
            (mx + mw * 0.5, my + mh * 0.55),
            (mx + mw * 0.5, my + mh * 0.3),
            (mx + mw * 0.82, my + mh * 0.3),
        ],
        w * 0.03,
        rgb(accent),
    );
    c.circle(mx + mw * 0.15, my + mh * 0.9, w * 0.035, rgb(INK));
    let (px, py) = (mx + mw * 0.82, my + mh * 0.3);
    c.circle(px, py - w * 0.06, w * 0.06, rgb(CORAL));
    c.poly(
        &[
            (px - w * 0.05, py - w * 0.04),
            (px + w * 0.05, py - w * 0.04),
            (px, py + w * 0.02),
        ],
        rgb(CORAL),
    );
    c.circle(px, py - w * 0.06, w * 0.025, rgb(WHITE));
    // Header.
    let cell = (w / 150.0).max(1.0);
    c.text("TRACKING", sx + sw * 0.08, sy + sw * 0.09, cell, rgb(INK));
    // Delivery cards.
    let mut cy = my + mh + sw * 0.05;
    for (i, dot) in [accent, SUN, CORAL, TEAL].iter().enumerate() {
        if cy + sw * 0.24 > sy + sh {
            break;
        }
        c.rrect(
            sx + sw * 0.05,
            cy,
            sw * 0.9,
            sw * 0.22,
            w * 0.04,
            rgb(WHITE),
        );
        c.circle(sx + sw * 0.17, cy + sw * 0.11, sw * 0.06, rgb(*dot));
        c.rrect(
            sx + sw * 0.3,
            cy + sw * 0.06,
            sw * (0.45 - 0.05 * i as f32),
            sw * 0.04,
            sw * 0.02,
            rgb(INK),
        );
        c.rrect(
            sx + sw * 0.3,
            cy + sw * 0.13,
            sw * 0.3,
            sw * 0.03,
            sw * 0.015,
            rgb(mix(INK, WHITE, 0.6)),
        );
        cy += sw * 0.27;
    }
}

/// A person: head and shoulders in a disc.
pub fn avatar(c: &mut Canvas, cx: f32, cy: f32, r: f32, disc: u32, person: u32) {
    c.circle(cx, cy, r, rgb(disc));
    c.circle(cx, cy - r * 0.22, r * 0.32, rgb(person));
    c.ellipse(cx, cy + r * 0.6, r * 0.55, r * 0.36, rgb(person));
}

/// The tracker device of the case study: a rounded column with cylinder
/// shading, a status light and the name.
pub fn tracker(c: &mut Canvas, cx: f32, bottom: f32, w: f32, h: f32) {
    let (x, top) = (cx - w / 2.0, bottom - h);
    c.glow(cx + w * 0.3, bottom, w * 1.2, w * 0.16, INK, 0.55);
    c.glow(cx + w * 0.6, bottom - w * 0.02, w * 1.8, w * 0.35, INK, 0.2);
    let shade = linear(
        x,
        0.0,
        x + w,
        0.0,
        &[
            (0.0, rgb(mix(INK, 0x000000, 0.3))),
            (0.22, rgb(mix(INK, WHITE, 0.22))),
            (0.4, rgb(mix(INK, WHITE, 0.08))),
            (0.85, rgb(INK)),
            (1.0, rgb(mix(INK, 0x000000, 0.4))),
        ],
    );
    c.rrect_shaded(x, top, w, h, w * 0.22, shade);
    // Specular strip and the status light.
    c.rrect(
        x + w * 0.17,
        top + w * 0.25,
        w * 0.045,
        h - w * 0.5,
        w * 0.02,
        rgba(WHITE, 0.28),
    );
    c.glow(cx, top + h * 0.16, w * 0.5, w * 0.12, TEAL, 0.6);
    c.rrect(
        x + w * 0.25,
        top + h * 0.16 - w * 0.025,
        w * 0.5,
        w * 0.05,
        w * 0.025,
        rgb(mix(TEAL, WHITE, 0.4)),
    );
    let cell = (w / 60.0).round().max(1.0);
    c.text_centred("NORTHWIND", cx, top + h * 0.8, cell, rgba(WHITE, 0.8));
}
