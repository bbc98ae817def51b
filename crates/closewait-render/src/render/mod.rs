//! Renderers: the report model in, bytes out, one module per format.
//!
//! Every format implements [`Renderer`] and is chosen by [`Format`]; adding a format means
//! one new module and one enum variant. Renderers take finished [`ConnectionReport`]s, the
//! [`CaptureStats`] and the [`Summary`] and nothing else: they never re-run analysis and
//! never decide which connections to show (the caller filters and sorts).
//!
//! Two calls make a rendering: [`Renderer::connection`] once per connection as it finishes
//! (streaming formats such as JSON Lines write there, so output appears while a long
//! capture is still being read), then [`Renderer::finish`] once with everything.
//! [`render`] does both for callers that already hold all connections.

/// `schema_version`, the first member of every JSON *document* closewait writes
/// (`analyze --json`, `diagnose --json`, `netstat --json`; not the `--jsonl` lines): raised
/// when a field is removed, renamed or changes meaning, never for an added field (consumers
/// ignore keys they do not know). See docs/json.md.
pub const SCHEMA_VERSION: u32 = 1;

pub mod chart;
pub mod columnar;
pub mod diagnosis;
pub mod diagram;
pub mod graph;
pub mod json;
mod json_line;
pub mod markup;
pub mod palette;
mod pretty;
pub mod text;
pub mod utc;
pub mod zeek_log;

use closewait_core::capture::CaptureStats;
use closewait_core::filter::Filter;
use closewait_core::model::ConnectionReport;
use closewait_core::summary::Summary;
use std::io::{self, Write};
use std::path::Path;

/// The output formats of `closewait analyze`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns and a summary, for people.
    Text,
    /// One JSON document: `{ "capture", "filter", "connections", "summary" }`.
    Json,
    /// JSON Lines: one connection per line as it finishes, then one summary line.
    Jsonl,
    /// Zeek's conn.log, tab-separated with Zeek's header (`zeek-cut` reads it).
    Zeek,
    /// Zeek's conn.log in Zeek's JSON log style, one object per line.
    ZeekJson,
    /// Apache Parquet: one flat table of connections (docs/parquet.md).
    Parquet,
    /// The Arrow IPC file format (Feather v2): the same table as Parquet.
    Arrow,
}

impl Format {
    /// The format a file name asks for: `.json`, `.jsonl`/`.ndjson`; `None` otherwise.
    pub fn from_extension(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "json" => Some(Format::Json),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            "txt" | "text" => Some(Format::Text),
            "parquet" => Some(Format::Parquet),
            "arrow" | "feather" => Some(Format::Arrow),
            _ => None,
        }
    }

    /// True for formats that take what they need of each connection in
    /// [`Renderer::connection`] (JSON Lines writes it; text keeps a compact row) and need
    /// nothing but the summary at the end, so the caller need not keep the reports.
    pub fn streams(self) -> bool {
        matches!(
            self,
            Format::Jsonl | Format::Text | Format::Parquet | Format::Arrow
        )
    }

    /// True for the binary formats, which are not written to a terminal.
    pub fn is_binary(self) -> bool {
        matches!(self, Format::Parquet | Format::Arrow)
    }

    /// The renderer of this format. `capture` names the input (the paths as given, `-`
    /// for standard input) for the formats that keep it in every row.
    pub fn renderer(self, capture: &str) -> io::Result<Box<dyn Renderer>> {
        use columnar::{ColumnarRenderer, FileKind};
        Ok(match self {
            Format::Text => Box::new(text::TextRenderer::new()),
            Format::Json => Box::new(json::JsonRenderer),
            Format::Jsonl => Box::new(json::JsonlRenderer::new()),
            Format::Zeek => Box::new(zeek_log::ZeekTsvRenderer),
            Format::ZeekJson => Box::new(zeek_log::ZeekJsonRenderer),
            Format::Parquet => Box::new(ColumnarRenderer::new(FileKind::Parquet, capture)?),
            Format::Arrow => Box::new(ColumnarRenderer::new(FileKind::ArrowIpc, capture)?),
        })
    }
}

/// Everything an `analyze` rendering shows.
#[derive(Clone, Copy, Debug)]
pub struct AnalyzeOutput<'a> {
    pub capture: &'a CaptureStats,
    /// The filter the connections were selected with (empty: all connections).
    pub filter: &'a Filter,
    /// How many connections the capture held before filtering.
    pub connections_total: u64,
    /// The connections shown, sorted by id. Empty for a [streaming](Format::streams)
    /// format (text, JSON Lines), which received them through [`Renderer::connection`]
    /// instead.
    pub connections: &'a [ConnectionReport],
    /// The summary of the connections shown (`summary.connections` of them).
    pub summary: &'a Summary,
}

impl<'a> AnalyzeOutput<'a> {
    /// Every connection of a capture, unfiltered, as a non-streaming format gets them.
    pub fn unfiltered(
        capture: &'a CaptureStats,
        filter: &'a Filter,
        connections: &'a [ConnectionReport],
        summary: &'a Summary,
    ) -> Self {
        AnalyzeOutput {
            capture,
            filter,
            connections_total: connections.len() as u64,
            connections,
            summary,
        }
    }
}

/// One output format.
pub trait Renderer {
    /// Called once per shown connection, in finish order, as soon as it is known.
    /// Formats that need the whole set first write nothing here.
    fn connection(&mut self, _w: &mut dyn Write, _report: &ConnectionReport) -> io::Result<()> {
        Ok(())
    }

    /// Called once after the last connection, with everything.
    fn finish(&mut self, w: &mut dyn Write, out: &AnalyzeOutput<'_>) -> io::Result<()>;
}

/// Renders a complete output in one go: each connection of `out` in order, then the end.
pub fn render(format: Format, out: &AnalyzeOutput<'_>, w: &mut dyn Write) -> io::Result<()> {
    let paths: Vec<String> = out.capture.files.iter().map(|f| f.path.clone()).collect();
    let mut renderer = format.renderer(&columnar::capture_label(&paths))?;
    for report in out.connections {
        renderer.connection(w, report)?;
    }
    renderer.finish(w, out)
}

/// Seconds with three decimals, the fixed float format of the text output.
pub fn fmt_secs(secs: f64) -> String {
    let mut text = closewait_core::seconds::three_decimals_string(secs);
    text.push('s');
    text
}

/// Puts connections (reports, rows) in `id` order, keeping the order of equal ids.
///
/// They arrive in the order they finished, which is nearly but not quite id order.
/// Sorting them in place moves each big report many times; sorting (id, index) pairs
/// and then moving the items along the cycles of that permutation moves each about
/// twice, with no second copy of the list (on 100 k reports, a quarter of `--json`'s
/// instructions went to the sort).
pub fn sort_by_id<T>(items: &mut [T], id: impl Fn(&T) -> u64) {
    if items.windows(2).all(|w| id(&w[0]) <= id(&w[1])) {
        return;
    }
    let mut order: Vec<(u64, usize)> = items.iter().map(&id).zip(0..).collect();
    order.sort_unstable();
    // Position k is to hold the item now at `from[k]`; done positions point to themselves.
    let mut from: Vec<usize> = order.into_iter().map(|(_, index)| index).collect();
    for start in 0..from.len() {
        let mut k = start;
        // The item first at `start` moves along the cycle, one swap at a time, to the
        // position that wants it.
        while from[k] != start {
            let next = from[k];
            items.swap(k, next);
            from[k] = k;
            k = next;
        }
        from[k] = k;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sort_by_id_orders_by_id_and_keeps_equal_ids_in_arrival_order() {
        let mut items = vec![(3, 'a'), (1, 'b'), (2, 'c'), (1, 'd'), (5, 'e')];
        super::sort_by_id(&mut items, |item| item.0);
        assert_eq!(items, [(1, 'b'), (1, 'd'), (2, 'c'), (3, 'a'), (5, 'e')]);

        let mut reversed: Vec<u64> = (0..1000).rev().collect();
        super::sort_by_id(&mut reversed, |&n| n);
        assert!(reversed.iter().copied().eq(0..1000));

        // Cycles of every length: a shuffle by a multiplier coprime to the length.
        let mut shuffled: Vec<u64> = (0..997u64).map(|n| n * 389 % 997).collect();
        super::sort_by_id(&mut shuffled, |&n| n);
        assert!(shuffled.iter().copied().eq(0..997));

        let mut sorted = vec![(1, 'x'), (2, 'y')];
        super::sort_by_id(&mut sorted, |item| item.0);
        assert_eq!(sorted, [(1, 'x'), (2, 'y')]);
    }

    use super::*;

    #[test]
    fn format_from_output_file_extension() {
        assert_eq!(
            Format::from_extension(Path::new("out/report.JSON")),
            Some(Format::Json)
        );
        assert_eq!(
            Format::from_extension(Path::new("a.jsonl")),
            Some(Format::Jsonl)
        );
        assert_eq!(
            Format::from_extension(Path::new("a.ndjson")),
            Some(Format::Jsonl)
        );
        assert_eq!(
            Format::from_extension(Path::new("a.txt")),
            Some(Format::Text)
        );
        assert_eq!(Format::from_extension(Path::new("report")), None);
    }

    #[test]
    fn seconds_have_three_decimals() {
        assert_eq!(fmt_secs(65.0), "65.000s");
        assert_eq!(fmt_secs(0.0004), "0.000s");
        assert_eq!(fmt_secs(1.23456), "1.235s");
    }
}
