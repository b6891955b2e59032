//! A 5x7 bitmap font drawn as filled cells, scalable to any cell size:
//! capitals, digits, space and common punctuation (lower case is drawn as
//! upper case, anything else as a blank).

use resvg::tiny_skia::{PathBuilder, Rect};

/// Rows of one glyph, top to bottom; `#` is a filled cell. All rows of a
/// glyph have the same width.
type Glyph = [&'static str; 7];

const BLANK: Glyph = ["   ", "   ", "   ", "   ", "   ", "   ", "   "];

fn glyph(ch: char) -> &'static Glyph {
    match ch.to_ascii_uppercase() {
        'A' => &[
            " ### ", "#   #", "#   #", "#####", "#   #", "#   #", "#   #",
        ],
        'B' => &[
            "#### ", "#   #", "#   #", "#### ", "#   #", "#   #", "#### ",
        ],
        'C' => &[
            " ####", "#    ", "#    ", "#    ", "#    ", "#    ", " ####",
        ],
        'D' => &[
            "#### ", "#   #", "#   #", "#   #", "#   #", "#   #", "#### ",
        ],
        'E' => &[
            "#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#####",
        ],
        'F' => &[
            "#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#    ",
        ],
        'G' => &[
            " ####", "#    ", "#    ", "#  ##", "#   #", "#   #", " ####",
        ],
        'H' => &[
            "#   #", "#   #", "#   #", "#####", "#   #", "#   #", "#   #",
        ],
        'I' => &["###", " # ", " # ", " # ", " # ", " # ", "###"],
        'J' => &[
            "  ###", "   # ", "   # ", "   # ", "#  # ", "#  # ", " ##  ",
        ],
        'K' => &[
            "#   #", "#  # ", "# #  ", "##   ", "# #  ", "#  # ", "#   #",
        ],
        'L' => &[
            "#    ", "#    ", "#    ", "#    ", "#    ", "#    ", "#####",
        ],
        'M' => &[
            "#   #", "## ##", "# # #", "# # #", "#   #", "#   #", "#   #",
        ],
        'N' => &[
            "#   #", "##  #", "# # #", "#  ##", "#   #", "#   #", "#   #",
        ],
        'O' => &[
            " ### ", "#   #", "#   #", "#   #", "#   #", "#   #", " ### ",
        ],
        'P' => &[
            "#### ", "#   #", "#   #", "#### ", "#    ", "#    ", "#    ",
        ],
        'Q' => &[
            " ### ", "#   #", "#   #", "#   #", "# # #", "#  # ", " ## #",
        ],
        'R' => &[
            "#### ", "#   #", "#   #", "#### ", "# #  ", "#  # ", "#   #",
        ],
        'S' => &[
            " ####", "#    ", "#    ", " ### ", "    #", "    #", "#### ",
        ],
        'T' => &[
            "#####", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ",
        ],
        'U' => &[
            "#   #", "#   #", "#   #", "#   #", "#   #", "#   #", " ### ",
        ],
        'V' => &[
            "#   #", "#   #", "#   #", "#   #", "#   #", " # # ", "  #  ",
        ],
        'W' => &[
            "#   #", "#   #", "#   #", "# # #", "# # #", "## ##", "#   #",
        ],
        'X' => &[
            "#   #", "#   #", " # # ", "  #  ", " # # ", "#   #", "#   #",
        ],
        'Y' => &[
            "#   #", "#   #", " # # ", "  #  ", "  #  ", "  #  ", "  #  ",
        ],
        'Z' => &[
            "#####", "    #", "   # ", "  #  ", " #   ", "#    ", "#####",
        ],
        '0' => &[
            " ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### ",
        ],
        '1' => &[
            "  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### ",
        ],
        '2' => &[
            " ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####",
        ],
        '3' => &[
            "#### ", "    #", "    #", " ### ", "    #", "    #", "#### ",
        ],
        '4' => &[
            "   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # ",
        ],
        '5' => &[
            "#####", "#    ", "#### ", "    #", "    #", "#   #", " ### ",
        ],
        '6' => &[
            " ### ", "#    ", "#    ", "#### ", "#   #", "#   #", " ### ",
        ],
        '7' => &[
            "#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   ",
        ],
        '8' => &[
            " ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### ",
        ],
        '9' => &[
            " ### ", "#   #", "#   #", " ####", "    #", "    #", " ### ",
        ],
        '.' => &[" ", " ", " ", " ", " ", " ", "#"],
        ',' => &["  ", "  ", "  ", "  ", "  ", " #", "# "],
        '!' => &["#", "#", "#", "#", "#", " ", "#"],
        '?' => &[
            " ### ", "#   #", "    #", "   # ", "  #  ", "     ", "  #  ",
        ],
        '-' => &["    ", "    ", "    ", "####", "    ", "    ", "    "],
        ':' => &[" ", " ", "#", " ", " ", "#", " "],
        '%' => &[
            "##  #", "## # ", "   # ", "  #  ", " #   ", " # ##", "#  ##",
        ],
        '&' => &[
            " ##  ", "#  # ", "# #  ", " #   ", "# # #", "#  # ", " ## #",
        ],
        '\'' => &["#", "#", " ", " ", " ", " ", " "],
        '/' => &[
            "    #", "   # ", "   # ", "  #  ", " #   ", " #   ", "#    ",
        ],
        '+' => &[
            "     ", "  #  ", "  #  ", "#####", "  #  ", "  #  ", "     ",
        ],
        '$' => &[
            " ####", "# #  ", "# #  ", " ### ", "  # #", "  # #", "#### ",
        ],
        '#' => &[
            " # # ", " # # ", "#####", " # # ", "#####", " # # ", " # # ",
        ],
        _ => &BLANK,
    }
}

/// Cells a glyph takes across, the gap after it included.
fn advance(ch: char) -> usize {
    glyph(ch)[0].len() + 1
}

/// Width of a line of text in pixels at `cell` pixels per grid cell.
pub fn line_width(text: &str, cell: f32) -> f32 {
    let cells: usize = text.chars().map(advance).sum();
    cells.saturating_sub(1) as f32 * cell
}

/// Height of a line of text (the glyph grid, no leading).
pub fn line_height(cell: f32) -> f32 {
    7.0 * cell
}

/// The largest whole cell size (at most `max`) at which every line fits in
/// `width` pixels.
pub fn fit_cell(lines: &[&str], width: f32, max: f32) -> f32 {
    let widest = lines
        .iter()
        .map(|l| line_width(l, 1.0))
        .fold(1.0_f32, f32::max);
    (width / widest).min(max).floor().max(1.0)
}

/// Adds the cells of `text` to `pb`, its top-left corner at (`x`, `y`).
/// Runs of filled cells in a row become one rectangle each.
pub fn push_line(pb: &mut PathBuilder, text: &str, x: f32, y: f32, cell: f32) {
    let mut left = x;
    for ch in text.chars() {
        let g = glyph(ch);
        for (row, bits) in g.iter().enumerate() {
            let top = y + row as f32 * cell;
            let mut run_start: Option<usize> = None;
            let bytes = bits.as_bytes();
            for col in 0..=bytes.len() {
                let filled = bytes.get(col) == Some(&b'#');
                match (filled, run_start) {
                    (true, None) => run_start = Some(col),
                    (false, Some(start)) => {
                        if let Some(r) = Rect::from_xywh(
                            left + start as f32 * cell,
                            top,
                            (col - start) as f32 * cell,
                            cell,
                        ) {
                            pb.push_rect(r);
                        }
                        run_start = None;
                    }
                    _ => {}
                }
            }
        }
        left += advance(ch) as f32 * cell;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glyph_rows_are_even_and_widths_add_up() {
        for ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,!?-:%&'/+$#".chars() {
            let g = glyph(ch);
            assert!(g.iter().all(|r| r.len() == g[0].len()), "{ch}");
        }
        assert_eq!(line_width("A", 10.0), 50.0);
        assert_eq!(line_width("AB", 10.0), 110.0);
        assert_eq!(fit_cell(&["AB"], 115.0, 40.0), 10.0);
    }
}
