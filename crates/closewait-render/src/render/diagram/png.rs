//! The ladder as PNG: closewait's own SVG rasterized by resvg, at twice its size.
//!
//! Text is shaped with DejaVu Sans, embedded in the binary (assets/fonts, Bitstream Vera
//! licence, see assets/fonts/LICENSE-DejaVu.txt) and loaded into resvg's font database from
//! memory: no system font is ever looked up, so the picture is the same on every machine,
//! including CI without fonts or fontconfig.

use super::layout::Ladder;
use super::svg::{self, Theme};
use super::DiagramError;
use resvg::{tiny_skia, usvg};
use std::sync::Arc;

/// Pixels per SVG unit.
pub const SCALE: f32 = 2.0;

static REGULAR: &[u8] = include_bytes!("../../../../../assets/fonts/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../../../../../assets/fonts/DejaVuSans-Bold.ttf");

/// The font database: the embedded DejaVu Sans faces only.
fn fonts() -> usvg::fontdb::Database {
    let mut db = usvg::fontdb::Database::new();
    db.load_font_data(REGULAR.to_vec());
    db.load_font_data(BOLD.to_vec());
    db.set_sans_serif_family("DejaVu Sans");
    db
}

/// Rasterizes any SVG text with the embedded fonts at `scale`.
pub fn rasterize(svg_text: &str, scale: f32) -> Result<Vec<u8>, DiagramError> {
    let opt = usvg::Options {
        font_family: "DejaVu Sans".to_string(),
        fontdb: Arc::new(fonts()),
        ..usvg::Options::default()
    };
    let tree =
        usvg::Tree::from_str(svg_text, &opt).map_err(|e| DiagramError::Png(e.to_string()))?;
    let size = tree.size();
    let w = (size.width() * scale).ceil() as u32;
    let h = (size.height() * scale).ceil() as u32;
    let mut pixmap = tiny_skia::Pixmap::new(w, h)
        .ok_or_else(|| DiagramError::Png(format!("cannot allocate a {w}×{h} image")))?;
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .map_err(|e| DiagramError::Png(e.to_string()))
}

/// Renders the ladder as PNG bytes.
pub fn render(l: &Ladder) -> Result<Vec<u8>, DiagramError> {
    rasterize(&svg::render(l, Theme::Light), SCALE)
}
