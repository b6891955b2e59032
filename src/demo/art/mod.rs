//! The demo hub's image assets, drawn by code from a fixed catalogue: the
//! marketing work of "Northwind Studio" in its brand palette (banners,
//! product shots, social tiles, a billboard and its revision, an email
//! header), plus the special cases the demo shows off: a near-duplicate
//! pair, an off-palette reel cover and a 24-megapixel master.
//!
//! Everything is deterministic: a piece always encodes to the same bytes.
//! Drawing goes through tiny-skia and encoding through `image`, so no pixel
//! loop runs in this crate.

mod canvas;
mod font;
mod layouts;
mod motifs;

use image::{ExtendedColorType, ImageEncoder, RgbaImage};
use resvg::tiny_skia::Pixmap;

const INK: u32 = 0x14213d;
const CORAL: u32 = 0xff6b5b;
const SAND: u32 = 0xf4e6cc;
const TEAL: u32 = 0x1a9e92;
const SUN: u32 = 0xffc43d;
const WHITE: u32 = 0xffffff;

/// The demo brand's colours, as `#rrggbb` (the hub's brand palette is set to these).
pub const BRAND_PALETTE: [&str; 6] = [
    "#14213d", "#ff6b5b", "#f4e6cc", "#1a9e92", "#ffc43d", "#ffffff",
];

/// What a piece is for in the demo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Ordinary work.
    Plain,
    /// The first version of a piece that gets revised.
    Version1,
    /// The revision of the [`Role::Version1`] piece.
    Version2,
    /// One of a near-duplicate pair.
    DupeA,
    /// The other of the near-duplicate pair.
    DupeB,
    /// Clearly outside the brand palette.
    OffPalette,
    /// The large master renditions are made from.
    Master,
}

/// Which composition draws a piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Launch hero keyframe.
    Hero,
    /// Webinar title card.
    Webinar,
    /// Black Friday leaderboard banner.
    BlackFriday,
    /// Holiday email header.
    Holiday,
    /// Pricing plans illustration.
    Pricing,
    /// App store screenshot.
    AppStore,
    /// Trade show backwall.
    Booth,
    /// Annual report cover.
    ReportCover,
    /// Podcast cover art.
    Podcast,
    /// Product tour keyframe.
    ProductTour,
    /// Metro billboard; `revision` is the second version.
    Billboard { revision: bool },
    /// Customer story tile; `recut` is the second export.
    Carousel { recut: bool },
    /// Neon launch-week reel cover.
    Reel,
    /// Studio product shot.
    Master,
}

/// One image of the demo.
#[derive(Debug, Clone)]
pub struct Piece {
    /// File name; the asset's title is derived from it.
    pub file_name: &'static str,
    /// Title of the demo brief it belongs to.
    pub brief: &'static str,
    /// Handle of the creative who made it.
    pub by: &'static str,
    /// One sentence describing it, as a caption or alt text.
    pub caption: &'static str,
    /// Manual tags.
    pub tags: &'static [&'static str],
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// What it is for in the demo.
    pub role: Role,
    /// The composition.
    pub layout: Layout,
    /// Headline, one entry per line.
    pub headline: &'static [&'static str],
    /// The smaller line under the headline.
    pub subline: &'static str,
    /// Button label, or the layout's second message.
    pub cta: &'static str,
    /// Seed for scattered details.
    pub seed: u64,
}

#[allow(clippy::too_many_arguments)]
const fn piece(
    file_name: &'static str,
    brief: &'static str,
    by: &'static str,
    caption: &'static str,
    tags: &'static [&'static str],
    (width, height): (u32, u32),
    role: Role,
    layout: Layout,
    headline: &'static [&'static str],
    subline: &'static str,
    cta: &'static str,
    seed: u64,
) -> Piece {
    Piece {
        file_name,
        brief,
        by,
        caption,
        tags,
        width,
        height,
        role,
        layout,
        headline,
        subline,
        cta,
        seed,
    }
}

/// The demo's pieces, in a fixed order.
pub fn catalogue() -> Vec<Piece> {
    use Layout as L;
    use Role as R;
    vec![
        piece(
            "spring-launch-hero-keyframe.png",
            "Spring launch hero film",
            "kenji",
            "Keyframe of the launch film: the Northwind One can in a teal halo on deep navy.",
            &["hero", "keyframe"],
            (1920, 1080),
            R::Plain,
            L::Hero,
            &["SPRING IS", "IN MOTION"],
            "THE NEW NORTHWIND ONE. OUT APRIL 2.",
            "PRE-ORDER",
            11,
        ),
        piece(
            "q1-webinar-title-card.png",
            "Q1 webinar series visuals",
            "tom",
            "Title card for episode three of the webinar series, with the three speakers.",
            &["webinar", "title-card"],
            (1920, 1080),
            R::Plain,
            L::Webinar,
            &["RUNNING A", "REMOTE STUDIO"],
            "EPISODE 03 - MARCH 14, 16:00 UTC",
            "REGISTER AT NORTHWIND.STUDIO/LIVE",
            12,
        ),
        piece(
            "black-friday-leaderboard.png",
            "Black Friday banner set",
            "jordan",
            "Leaderboard banner for the Black Friday sale: yellow type on navy with a 40% badge.",
            &["banner", "sale"],
            (1920, 600),
            R::Plain,
            L::BlackFriday,
            &["BLACK FRIDAY"],
            "UP TO 40% OFF EVERY PLAN. THIS WEEKEND ONLY.",
            "SHOP THE SALE",
            13,
        ),
        piece(
            "holiday-email-header.png",
            "Holiday email header",
            "priya",
            "Email header with snow over coral and gift parcels on sand hills.",
            &["email", "seasonal"],
            (1200, 480),
            R::Plain,
            L::Holiday,
            &["HAPPY HOLIDAYS"],
            "FROM ALL OF US AT NORTHWIND",
            "",
            14,
        ),
        piece(
            "pricing-plans-illustration.png",
            "Pricing page illustrations",
            "jordan",
            "Three plan cards for the pricing page, the Team plan raised in navy.",
            &["web", "illustration"],
            (1600, 1000),
            R::Plain,
            L::Pricing,
            &["SIMPLE PRICING"],
            "PICK A PLAN. CHANGE IT ANY TIME.",
            "",
            15,
        ),
        piece(
            "app-store-screenshot-tracking.png",
            "App store screenshots v5",
            "kenji",
            "Store screenshot of live parcel tracking: the phone rising out of a teal gradient.",
            &["app-store", "mobile"],
            (886, 1920),
            R::Plain,
            L::AppStore,
            &["TRACK EVERY", "PARCEL LIVE"],
            "FROM WAREHOUSE TO DOORSTEP",
            "",
            16,
        ),
        piece(
            "trade-show-backwall.png",
            "Trade show booth graphics",
            "jordan",
            "Booth backwall: the headline on navy beside a teal delivery route.",
            &["print", "event"],
            (1920, 720),
            R::Plain,
            L::Booth,
            &["MOVE FREIGHT AT", "THE SPEED OF", "THOUGHT."],
            "NORTHWIND LOGISTICS PLATFORM",
            "BOOTH B14",
            17,
        ),
        piece(
            "annual-report-cover.png",
            "Annual report cover",
            "jordan",
            "Annual report cover with a grid of geometric tiles over the title.",
            &["print", "cover"],
            (1358, 1920),
            R::Plain,
            L::ReportCover,
            &["ANNUAL REPORT"],
            "NORTHWIND STUDIO - THE YEAR IN REVIEW",
            "2024",
            2024,
        ),
        piece(
            "podcast-cover-the-handoff.png",
            "Podcast cover art",
            "priya",
            "Cover art for The Handoff: a yellow microphone inside sound rings.",
            &["podcast", "cover"],
            (1400, 1400),
            R::Plain,
            L::Podcast,
            &["THE HANDOFF"],
            "A PODCAST BY NORTHWIND STUDIO",
            "SEASON 2",
            19,
        ),
        piece(
            "product-tour-step-2.png",
            "Product tour motion loop",
            "kenji",
            "Step two of the product tour: the dashboard chart with a callout.",
            &["motion", "keyframe"],
            (1600, 1000),
            R::Plain,
            L::ProductTour,
            &["ONE CLICK", "TO SHIP"],
            "PRODUCT TOUR - STEP 2 OF 5",
            "",
            20,
        ),
        piece(
            "lisbon-metro-billboard-v1.png",
            "Out-of-home billboard, Lisbon metro",
            "tom",
            "Metro billboard, first version: white headline on navy over a coral metro line.",
            &["ooh", "billboard"],
            (1920, 960),
            R::Version1,
            L::Billboard { revision: false },
            &["LISBON,", "WE DELIVER."],
            "SAME-DAY SHIPPING ACROSS THE CITY",
            "",
            21,
        ),
        piece(
            "lisbon-metro-billboard-v2.png",
            "Out-of-home billboard, Lisbon metro",
            "tom",
            "Metro billboard, revised: new headline on sand, teal line, parcel moved right.",
            &["ooh", "billboard"],
            (1920, 960),
            R::Version2,
            L::Billboard { revision: true },
            &["NEXT STOP:", "YOUR DOOR."],
            "SAME-DAY SHIPPING ACROSS LISBON",
            "",
            22,
        ),
        piece(
            "customer-story-halden-foods.png",
            "LinkedIn carousel: customer stories",
            "priya",
            "Carousel slide: Halden Foods' three times faster handoffs on a white card.",
            &["social", "carousel"],
            (1200, 1200),
            R::DupeA,
            L::Carousel { recut: false },
            &["FASTER HANDOFFS", "SINCE WE SWITCHED"],
            "HALDEN FOODS - STORY 2 OF 5",
            "3X",
            23,
        ),
        piece(
            "customer-story-halden-foods-export.png",
            "LinkedIn carousel: customer stories",
            "priya",
            "The same carousel slide exported again, a few pixels off and a touch warmer.",
            &["social", "carousel"],
            (1200, 1200),
            R::DupeB,
            L::Carousel { recut: true },
            &["FASTER HANDOFFS", "SINCE WE SWITCHED"],
            "HALDEN FOODS - STORY 2 OF 5",
            "3X",
            23,
        ),
        piece(
            "launch-week-reel-cover.png",
            "Instagram reels: launch week",
            "tom",
            "Reel cover for day one of launch week in neon green and magenta.",
            &["social", "reel"],
            (1080, 1920),
            R::OffPalette,
            L::Reel,
            &["LAUNCH", "WEEK"],
            "DAY 1",
            "SWIPE UP",
            25,
        ),
        piece(
            "northwind-logistics-hero-master.png",
            "Case study: Northwind Logistics",
            "kenji",
            "Studio shot of the Northwind tracker beside a parcel on a warm sand sweep.",
            &["hero", "product", "master"],
            (6000, 4000),
            R::Master,
            L::Master,
            &[],
            "NORTHWIND LOGISTICS - TRACKER T1",
            "",
            26,
        ),
    ]
}

/// Draws one piece.
fn draw(piece: &Piece) -> Result<Pixmap, String> {
    let mut c = canvas::Canvas::new(piece.width, piece.height, WHITE)
        .map_err(|e| format!("{}: {e}", piece.file_name))?;
    match piece.layout {
        Layout::Hero => layouts::hero(&mut c, piece),
        Layout::Webinar => layouts::webinar(&mut c, piece),
        Layout::BlackFriday => layouts::black_friday(&mut c, piece),
        Layout::Holiday => layouts::holiday(&mut c, piece),
        Layout::Pricing => layouts::pricing(&mut c, piece),
        Layout::AppStore => layouts::app_store(&mut c, piece),
        Layout::Booth => layouts::booth(&mut c, piece),
        Layout::ReportCover => layouts::report_cover(&mut c, piece),
        Layout::Podcast => layouts::podcast(&mut c, piece),
        Layout::ProductTour => layouts::product_tour(&mut c, piece),
        Layout::Billboard { revision } => layouts::billboard(&mut c, piece, revision),
        Layout::Carousel { recut } => layouts::carousel(&mut c, piece, recut),
        Layout::Reel => layouts::reel(&mut c, piece),
        Layout::Master => {
            layouts::master(&mut c, piece).map_err(|e| format!("{}: {e}", piece.file_name))?
        }
    }
    Ok(c.finish())
}

/// Encodes a drawn piece by its file name: JPEG for `.jpg`, PNG otherwise.
fn encode(piece: &Piece, pix: Pixmap) -> Result<Vec<u8>, String> {
    let (w, h) = (pix.width(), pix.height());
    let fail = |e: image::ImageError| format!("{}: encoding failed: {e}", piece.file_name);
    // Every canvas starts opaque, so premultiplied and straight alpha agree.
    let rgba = RgbaImage::from_raw(w, h, pix.take())
        .ok_or_else(|| format!("{}: pixel buffer has the wrong size", piece.file_name))?;
    let rgb = image::DynamicImage::ImageRgba8(rgba).into_rgb8();
    let mut out = Vec::new();
    if piece.file_name.ends_with(".jpg") {
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
            .encode(rgb.as_raw(), w, h, ExtendedColorType::Rgb8)
            .map_err(fail)?;
    } else {
        image::codecs::png::PngEncoder::new_with_quality(
            &mut out,
            image::codecs::png::CompressionType::Fast,
            image::codecs::png::FilterType::Adaptive,
        )
        .write_image(rgb.as_raw(), w, h, ExtendedColorType::Rgb8)
        .map_err(fail)?;
    }
    Ok(out)
}

/// Draws and encodes one piece as PNG (JPEG if its name ends in `.jpg`).
/// Deterministic: the same piece always gives the same bytes.
pub fn render(piece: &Piece) -> Result<Vec<u8>, String> {
    encode(piece, draw(piece)?)
}

/// Changes whenever any piece would be drawn differently, so pieces kept
/// by [`render_kept`] are drawn again.
pub const REVISION: u32 = 1;

/// As [`render`], but keeps what it draws in `dir` and reads it back on
/// later runs: drawing the whole catalogue costs about a second of CPU, on
/// the demo's way to its first frame. A kept file that cannot be read is
/// drawn again; a folder that cannot be written only costs the saving.
pub fn render_kept(piece: &Piece, dir: Option<&std::path::Path>) -> Result<Vec<u8>, String> {
    use sha2::Digest;
    let Some(dir) = dir else {
        return render(piece);
    };
    let key = sha2::Sha256::digest(format!("{REVISION} {piece:?}").as_bytes());
    let name = format!("{}.img", crate::model::ids::hex(&key[..16]));
    let path = dir.join(name);
    if let Ok(bytes) = std::fs::read(&path)
        && image::guess_format(&bytes).is_ok()
    {
        return Ok(bytes);
    }
    let bytes = render(piece)?;
    // Written aside and renamed, so a reader never sees half a file.
    let aside = dir.join(format!(".{}.{}", std::process::id(), piece.file_name));
    if std::fs::create_dir_all(dir).is_ok() && std::fs::write(&aside, &bytes).is_ok() {
        let _ = std::fs::rename(&aside, &path);
    }
    let _ = std::fs::remove_file(&aside);
    Ok(bytes)
}

#[cfg(test)]
mod tests;
