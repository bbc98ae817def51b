//! Charts over all connections of a capture (`closewait chart`), drawn with plotters.
//!
//! Three kinds, one module each, one entry point each:
//! - [`timeline`]: one row per connection, coloured segments for the time each side spent
//!   in each state; CLOSE_WAIT leaks are the long red bars.
//! - [`states`]: how many client-side and server-side sockets were in each state over
//!   time, the seed's `netstat | grep CLOSE_WAIT | wc -l` as a curve.
//! - [`idle`]: histograms of the idle time before the close per server endpoint, with the
//!   inferred keep-alive timeout marked, and of the time sockets spent in CLOSE_WAIT.
//!
//! Charts read the report model only (timelines, close verdicts) and the capture's first
//! and last timestamps; they never re-run the analysis. plotters writes SVG with no font
//! stack (its text layout is an estimate, so every label area has an explicit size); PNG is
//! that SVG rasterized by the ladder's resvg path with the embedded DejaVu fonts, so the
//! picture is the same on every machine.

pub mod idle;
pub mod states;
pub mod timeline;

use crate::render::diagram::svg::text_width;
use crate::render::palette::rgb;
use closewait_core::capture::CaptureStats;
use closewait_core::model::ConnectionReport;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// One kind of chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChartKind {
    Timeline,
    States,
    Idle,
}

impl ChartKind {
    pub const ALL: [ChartKind; 3] = [ChartKind::Timeline, ChartKind::States, ChartKind::Idle];

    pub fn as_str(self) -> &'static str {
        match self {
            ChartKind::Timeline => "timeline",
            ChartKind::States => "states",
            ChartKind::Idle => "idle",
        }
    }
}

impl std::str::FromStr for ChartKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase();
        ChartKind::ALL
            .into_iter()
            .find(|k| k.as_str() == norm)
            .ok_or_else(|| format!("unknown chart type '{s}' (one of: timeline, states, idle)"))
    }
}

/// Output formats of a chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ChartFormat {
    #[default]
    Svg,
    Png,
}

impl ChartFormat {
    /// The format a file name asks for by its extension (`.svg`, `.png`).
    pub fn from_path(path: &Path) -> Option<ChartFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "svg" => Some(ChartFormat::Svg),
            "png" => Some(ChartFormat::Png),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("drawing the chart failed: {0}")]
    Draw(String),
    #[error("PNG rendering failed: {0}")]
    Png(String),
}

/// Pixels per SVG unit in the PNG.
pub const PNG_SCALE: f32 = 2.0;

/// What the charts need of a capture's connections, gathered as each finishes (any
/// order) in memory that does not grow with the capture: the timeline's rows
/// ([`timeline::TimelineRows`]), the state counts ([`states::StateCounter`]) and the idle
/// samples ([`idle::IdleSamples`]), only for the kinds asked for.
pub struct ChartData {
    timeline: Option<timeline::TimelineRows>,
    states: Option<states::StateCounter>,
    idle: Option<idle::IdleSamples>,
    first_start: f64,
    last_end: f64,
}

impl ChartData {
    /// Gathers for `kinds`; the idle chart's timeouts come from a diagnosis the caller
    /// makes of the same connections (passed to [`Self::render_svg`]).
    pub fn new(kinds: &[ChartKind]) -> ChartData {
        ChartData {
            timeline: kinds
                .contains(&ChartKind::Timeline)
                .then(timeline::TimelineRows::default),
            states: kinds
                .contains(&ChartKind::States)
                .then(states::StateCounter::new),
            idle: kinds
                .contains(&ChartKind::Idle)
                .then(idle::IdleSamples::default),
            first_start: f64::INFINITY,
            last_end: f64::NEG_INFINITY,
        }
    }

    pub fn add(&mut self, r: &ConnectionReport) {
        self.first_start = self.first_start.min(r.start);
        self.last_end = self.last_end.max(r.end);
        if let Some(t) = &mut self.timeline {
            t.add(r);
        }
        if let Some(s) = &mut self.states {
            s.add(r);
        }
        if let Some(i) = &mut self.idle {
            i.add(r);
        }
    }

    /// Draws one chart (of a kind gathered for) as a self-contained SVG document. `capture`
    /// gives the time span; `title` names the capture; `diagnosis` is the caller's, of the
    /// same connections: the idle chart marks the timeouts it inferred (none without one).
    pub fn render_svg(
        &mut self,
        kind: ChartKind,
        capture: &CaptureStats,
        diagnosis: Option<&crate::diagnose::Diagnosis>,
        title: &str,
    ) -> Result<String, ChartError> {
        let span = Span::from_parts(self.first_start, self.last_end, capture);
        let missing =
            || ChartError::Draw(format!("no data gathered for the {} chart", kind.as_str()));
        match kind {
            ChartKind::Timeline => {
                timeline::render(self.timeline.as_ref().ok_or_else(missing)?, &span, title)
            }
            ChartKind::States => {
                states::render(self.states.as_ref().ok_or_else(missing)?, &span, title)
            }
            ChartKind::Idle => {
                let samples = self.idle.as_ref().ok_or_else(missing)?;
                idle::render(samples, diagnosis, &span, title)
            }
        }
    }
}

/// Draws one chart of `reports` as a self-contained SVG document. `capture` gives the time
/// span (its first and last packet); `title` names the capture (usually its file name).
/// Without a diagnosis, the idle chart marks no inferred timeout ([`ChartData::render_svg`]
/// takes one).
pub fn render_chart_svg(
    kind: ChartKind,
    reports: &[ConnectionReport],
    capture: &CaptureStats,
    title: &str,
) -> Result<String, ChartError> {
    let mut data = ChartData::new(&[kind]);
    reports.iter().for_each(|r| data.add(r));
    data.render_svg(kind, capture, None, title)
}

/// [`ChartData::render_svg`] in one format: SVG, or PNG rasterized at [`PNG_SCALE`] pixels
/// per SVG unit.
pub fn render_gathered(
    data: &mut ChartData,
    kind: ChartKind,
    format: ChartFormat,
    capture: &CaptureStats,
    diagnosis: Option<&crate::diagnose::Diagnosis>,
    title: &str,
) -> Result<Vec<u8>, ChartError> {
    let svg = data.render_svg(kind, capture, diagnosis, title)?;
    match format {
        ChartFormat::Svg => Ok(svg.into_bytes()),
        ChartFormat::Png => crate::render::diagram::png::rasterize(&svg, PNG_SCALE)
            .map_err(|e| ChartError::Png(e.to_string())),
    }
}

/// [`render_chart_svg`] rasterized to PNG at [`PNG_SCALE`] pixels per SVG unit.
pub fn render_chart_png(
    kind: ChartKind,
    reports: &[ConnectionReport],
    capture: &CaptureStats,
    title: &str,
) -> Result<Vec<u8>, ChartError> {
    let svg = render_chart_svg(kind, reports, capture, title)?;
    crate::render::diagram::png::rasterize(&svg, PNG_SCALE)
        .map_err(|e| ChartError::Png(e.to_string()))
}

/// One chart in one format.
pub fn render_chart(
    kind: ChartKind,
    format: ChartFormat,
    reports: &[ConnectionReport],
    capture: &CaptureStats,
    title: &str,
) -> Result<Vec<u8>, ChartError> {
    match format {
        ChartFormat::Svg => render_chart_svg(kind, reports, capture, title).map(String::into_bytes),
        ChartFormat::Png => render_chart_png(kind, reports, capture, title),
    }
}

/// The time span a chart covers: the capture's first packet to its best-known end
/// ([`CaptureStats::end_ts`]: `--capture-end`, a pcapng's `isb_endtime`, else the last
/// packet), as analyze and diagnose measure still-open connections to it (epoch seconds);
/// or the connections' own span when the capture statistics do not say.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Span {
    pub start: f64,
    pub end: f64,
}

impl Span {
    pub fn of(reports: &[ConnectionReport], capture: &CaptureStats) -> Span {
        let first = reports
            .iter()
            .map(|r| r.start)
            .fold(f64::INFINITY, f64::min);
        let last = reports
            .iter()
            .map(|r| r.end)
            .fold(f64::NEG_INFINITY, f64::max);
        Span::from_parts(first, last, capture)
    }

    /// The span from the connections' first start and last end, unless `capture` says.
    pub fn from_parts(first: f64, last: f64, capture: &CaptureStats) -> Span {
        let start = capture.first_ts.filter(|t| t.is_finite()).unwrap_or(first);
        let end = capture.end_ts().filter(|t| t.is_finite()).unwrap_or(last);
        let start = if start.is_finite() { start } else { 0.0 };
        let end = if end.is_finite() {
            end.max(start)
        } else {
            start
        };
        Span { start, end }
    }

    /// Seconds covered, never zero (a chart needs a non-empty axis).
    pub fn secs(&self) -> f64 {
        (self.end - self.start).max(1e-3)
    }

    /// Seconds since the start, clamped into the span.
    pub fn rel(&self, t: f64) -> f64 {
        (t - self.start).clamp(0.0, self.secs())
    }
}

// ---- shared drawing helpers -------------------------------------------------------------

/// The font family of every chart: resolved to the embedded DejaVu Sans when rasterized.
pub(crate) const FAMILY: &str = "sans-serif";
/// plotters writes `font-size = size / 1.24` into the SVG; these are plotters sizes.
pub(crate) const TITLE_SIZE: f64 = 22.0;
pub(crate) const CAPTION_SIZE: f64 = 17.0;
pub(crate) const LABEL_SIZE: f64 = 15.0;
pub(crate) const DESC_SIZE: f64 = 15.0;
pub(crate) const LEGEND_SIZE: f64 = 14.5;

pub(crate) const FG: RGBColor = RGBColor(0x1f, 0x23, 0x28);
pub(crate) const MUTED: RGBColor = RGBColor(0x59, 0x63, 0x6e);
pub(crate) const GRID: RGBColor = RGBColor(0xd0, 0xd7, 0xde);

pub(crate) fn color(hex: &str) -> RGBColor {
    let (r, g, b) = rgb(hex);
    RGBColor(r, g, b)
}

/// Width in pixels of `s` drawn at plotters size `size` (the SVG font size is size/1.24),
/// from DejaVu Sans' advance widths, with a little slack for wider fonts.
pub(crate) fn label_width(s: &str, size: f64) -> u32 {
    (text_width(s, size / 1.24, false) * 1.08).ceil() as u32
}

pub(crate) fn draw_err<E: std::fmt::Display>(e: E) -> ChartError {
    ChartError::Draw(e.to_string())
}

/// A tick value in seconds: as few decimals as it needs, at most three.
pub(crate) fn tick(v: f64) -> String {
    let s = format!("{:.3}", v);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// A duration for labels: `1.003 s`, `45 ms`, `2 min 5 s`.
pub(crate) fn human(secs: f64) -> String {
    crate::render::diagram::layout::human_secs(secs)
}

/// One entry of a legend: a colour swatch and its text.
pub(crate) struct LegendEntry {
    pub color: RGBColor,
    pub text: String,
    /// Drawn as a line (curves) rather than a filled box (bars).
    pub line: bool,
}

/// Row height of a legend entry.
pub(crate) const LEGEND_ROW: i32 = 22;

/// The width a legend column needs for `entries` (and the `notes` under it).
pub(crate) fn legend_width(entries: &[LegendEntry], notes: &[String]) -> u32 {
    let w = entries
        .iter()
        .map(|e| label_width(&e.text, LEGEND_SIZE) + 30)
        .chain(notes.iter().map(|n| label_width(n, LEGEND_SIZE)))
        .max()
        .unwrap_or(0);
    w + 16
}

/// Draws a legend (swatches and texts, then plain note lines) into `area` from its top-left
/// corner, padded by 8 px.
pub(crate) fn draw_legend(
    area: &DrawingArea<SVGBackend, Shift>,
    entries: &[LegendEntry],
    notes: &[String],
    top: i32,
) -> Result<(), ChartError> {
    let style = TextStyle::from((FAMILY, LEGEND_SIZE).into_font())
        .color(&FG)
        .pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Left,
            plotters::style::text_anchor::VPos::Center,
        ));
    let x = 8;
    let mut y = top + LEGEND_ROW / 2;
    for e in entries {
        if e.line {
            area.draw(&PathElement::new(
                vec![(x, y), (x + 20, y)],
                e.color.stroke_width(3),
            ))
            .map_err(draw_err)?;
        } else {
            area.draw(&Rectangle::new(
                [(x, y - 6), (x + 20, y + 6)],
                e.color.filled(),
            ))
            .map_err(draw_err)?;
        }
        area.draw(&Text::new(e.text.clone(), (x + 28, y), style.clone()))
            .map_err(draw_err)?;
        y += LEGEND_ROW;
    }
    let note_style = style.color(&MUTED);
    for n in notes {
        area.draw(&Text::new(n.clone(), (x, y), note_style.clone()))
            .map_err(draw_err)?;
        y += LEGEND_ROW - 2;
    }
    Ok(())
}

/// A "nothing to draw" message in the middle of `area`.
pub(crate) fn draw_empty(
    area: &DrawingArea<SVGBackend, Shift>,
    msg: &str,
) -> Result<(), ChartError> {
    let (w, h) = area.dim_in_pixel();
    let style = TextStyle::from((FAMILY, CAPTION_SIZE).into_font())
        .color(&MUTED)
        .pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Center,
        ));
    area.draw(&Text::new(
        msg.to_string(),
        (w as i32 / 2, h as i32 / 2),
        style,
    ))
    .map_err(draw_err)
}

/// Finishes an SVG written by plotters: plotters' own output with an accessible title.
pub(crate) fn finish_svg(svg: String, title: &str) -> String {
    // plotters writes `<svg width=".." height=".." viewBox=".." xmlns="..">`; add a role and a
    // <title> so screen readers and hovering name the chart.
    match svg.find('>') {
        Some(end) if svg.starts_with("<svg") => format!(
            "{} role=\"img\" aria-label=\"{}\">\n<title>{}</title>{}",
            &svg[..end],
            crate::render::palette::xml_escape(title),
            crate::render::palette::xml_escape(title),
            &svg[end + 1..]
        ),
        _ => svg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_and_format_from_names() {
        assert_eq!("Timeline".parse::<ChartKind>(), Ok(ChartKind::Timeline));
        assert!("pie".parse::<ChartKind>().is_err());
        assert_eq!(
            ChartFormat::from_path(Path::new("a/b.PNG")),
            Some(ChartFormat::Png)
        );
        assert_eq!(ChartFormat::from_path(Path::new("a.txt")), None);
    }

    #[test]
    fn ticks_use_few_decimals() {
        assert_eq!(tick(1.0), "1");
        assert_eq!(tick(0.25), "0.25");
        assert_eq!(tick(1.0000001), "1");
        assert_eq!(tick(-0.0), "0");
    }

    #[test]
    fn span_falls_back_to_the_connections() {
        let s = Span::of(&[], &CaptureStats::default());
        assert_eq!(s.start, 0.0);
        assert!(s.secs() > 0.0);
    }
}
