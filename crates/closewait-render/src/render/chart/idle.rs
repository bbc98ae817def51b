//! `--type idle`: how long connections sat idle before someone closed them, per server
//! endpoint, and how long sockets stayed in CLOSE_WAIT.
//!
//! The first histograms use `close.idle_before_close` (seconds from the last data segment
//! to the first FIN or RST), with bars stacked by what happened: the client closed, the
//! server closed and the client answered with its FIN, the server closed and the client
//! never did (a CLOSE_WAIT leak), or a reset. A keep-alive timeout shows as a spike; the
//! value `closewait diagnose` infers for it (the median of the server's idle closes, when
//! they agree) is drawn as a vertical line, and so is a client pool's idle timeout.
//!
//! The last histogram is the time each socket (either side) spent in CLOSE_WAIT, from its
//! timeline; a socket still in CLOSE_WAIT at the end of the capture counts until then (at
//! least that long), stacked apart.
//!
//! State stays bounded however long the capture: each histogram keeps its values while it
//! has at most [`EXACT_SAMPLES`] (every shipped capture), then counts them in fine bins a
//! power of ten wide and at least ten times narrower than the bins drawn ([`Binned`]), which
//! add up into the drawn ones exactly. Only sockets still in CLOSE_WAIT at the end keep a
//! number each (when they entered it): they are open connections, which the analysis holds
//! until the end anyway.

use super::*;
use crate::diagnose::plural;
use crate::diagnose::{Details, Diagnosis};
use crate::render::palette::state_color;
use closewait_core::model::{CloseSignal, Side};
use closewait_core::state::TcpState;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Server endpoints drawn, most connections first; the others are named in a note.
pub const MAX_ENDPOINTS: usize = 4;
/// Bins aimed for per histogram.
const BINS: f64 = 30.0;

const WIDTH: u32 = 1100;
const HEADER_H: u32 = 44;
const PANEL_H: u32 = 300;

/// What ended an idle connection: the stack a sample goes into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum IdleOutcome {
    ClientClosed,
    ServerClosedAnswered,
    ServerClosedUnanswered,
    Reset,
}

impl IdleOutcome {
    pub const ALL: [IdleOutcome; 4] = [
        IdleOutcome::ClientClosed,
        IdleOutcome::ServerClosedAnswered,
        IdleOutcome::ServerClosedUnanswered,
        IdleOutcome::Reset,
    ];

    /// Its place in [`Self::ALL`]: its stack in the histogram.
    fn index(self) -> usize {
        self as usize
    }

    fn label(self) -> &'static str {
        match self {
            IdleOutcome::ClientClosed => "client closed (FIN)",
            IdleOutcome::ServerClosedAnswered => "server closed, client answered",
            IdleOutcome::ServerClosedUnanswered => "server closed, client never did",
            IdleOutcome::Reset => "reset (RST first)",
        }
    }

    fn color(self) -> RGBColor {
        match self {
            IdleOutcome::ClientClosed => color("#0969da"),
            IdleOutcome::ServerClosedAnswered => color("#8c959f"),
            IdleOutcome::ServerClosedUnanswered => color(state_color(TcpState::CloseWait)),
            IdleOutcome::Reset => color("#8250df"),
        }
    }
}

/// One connection's idle time before the close and how the close went.
pub fn idle_sample(r: &ConnectionReport) -> Option<(f64, IdleOutcome)> {
    let idle = r
        .close
        .idle_before_close
        .filter(|v| v.is_finite() && *v >= 0.0)?;
    let outcome = match (r.close.first, r.close.first_by?) {
        (Some(CloseSignal::Rst), _) => IdleOutcome::Reset,
        (Some(CloseSignal::Fin), Side::Client) => IdleOutcome::ClientClosed,
        (Some(CloseSignal::Fin), Side::Server) => {
            if r.close.who_failed_to_respond == Some(Side::Client) {
                IdleOutcome::ServerClosedUnanswered
            } else {
                IdleOutcome::ServerClosedAnswered
            }
        }
        (None, _) => return None,
    };
    Some((idle, outcome))
}

/// Values kept one by one per histogram; past that, fine bins.
pub const EXACT_SAMPLES: usize = 4096;
/// Fine bins are at least this many times narrower than the largest value.
const FINE_BINS: f64 = 300.0;
/// The narrowest fine bin: 10^-6 s (the captures' microseconds).
const FINEST_SCALE: i32 = -6;

/// The values of one stacked histogram (value, category): kept while there are at most
/// [`EXACT_SAMPLES`], counted in fine bins past that.
///
/// Fine bins are 10^`scale` wide, `scale` chosen so that the largest value spans at most
/// [`FINE_BINS`] of them (coarsened tenfold as it grows). A drawn bin ([`bin_width`]: 1, 2 or
/// 5 × 10^k, at least a thirtieth of the largest value) is then a whole number of fine bins,
/// so the drawn counts are those of the values themselves (up to where floating point puts
/// a value lying exactly on a bin edge).
#[derive(Clone, Debug, Default)]
pub struct Binned {
    exact: Vec<(f64, usize)>,
    /// Fine bin → counts per category.
    fine: BTreeMap<u64, Vec<u64>>,
    scale: i32,
    /// 10^`scale`, the fine bins' width (kept: [`decimal`] formats and parses).
    fine_width: f64,
    n: u64,
    max: f64,
}

impl Binned {
    pub fn add(&mut self, v: f64, category: usize) {
        self.n += 1;
        self.max = self.max.max(v);
        if self.fine.is_empty() && self.exact.len() < EXACT_SAMPLES {
            self.exact.push((v, category));
            return;
        }
        if self.fine.is_empty() {
            self.set_scale(FINEST_SCALE);
        }
        self.coarsen();
        for (v, k) in std::mem::take(&mut self.exact)
            .into_iter()
            .chain(std::iter::once((v, category)))
        {
            let i = (v / self.fine_width).floor() as u64;
            let bin = self.fine.entry(i).or_default();
            if bin.len() <= k {
                bin.resize(k + 1, 0);
            }
            bin[k] += 1;
        }
    }

    /// Widens the fine bins tenfold while the largest value spans more than
    /// [`FINE_BINS`] of them.
    fn coarsen(&mut self) {
        while self.max / self.fine_width > FINE_BINS {
            self.set_scale(self.scale + 1);
            let mut wider: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
            for (i, counts) in std::mem::take(&mut self.fine) {
                let bin = wider.entry(i / 10).or_default();
                if bin.len() < counts.len() {
                    bin.resize(counts.len(), 0);
                }
                bin.iter_mut().zip(&counts).for_each(|(a, b)| *a += b);
            }
            self.fine = wider;
        }
    }

    fn set_scale(&mut self, scale: i32) {
        self.scale = scale;
        self.fine_width = decimal(1, scale);
    }

    /// Values added.
    pub fn len(&self) -> u64 {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Whether a value of `category` was added.
    fn has(&self, category: usize) -> bool {
        self.exact.iter().any(|x| x.1 == category)
            || self
                .fine
                .values()
                .any(|c| c.get(category).is_some_and(|&n| n > 0))
    }

    /// Stacked counts per drawn bin: `bins[i][k]` values of category `k` in
    /// `[i·w, (i+1)·w)`, the largest value in the last bin.
    fn histogram(&self, categories: usize) -> (f64, Vec<Vec<u64>>) {
        if self.fine.is_empty() {
            return histogram(&self.exact, categories);
        }
        let w = bin_width(self.max);
        let n = ((self.max / w).floor() as usize + 1).max(1);
        let per = (w / self.fine_width).round().max(1.0) as u64;
        let mut bins = vec![vec![0u64; categories]; n];
        for (i, counts) in &self.fine {
            let bin = &mut bins[((i / per) as usize).min(n - 1)];
            bin.iter_mut().zip(counts).for_each(|(a, b)| *a += b);
        }
        (w, bins)
    }
}

/// `m`·10^`e` as the nearest double to the decimal (`1e-2` parsed, not `10f64.powi(-2)`
/// multiplied), so widths are round numbers and bins fall where a reader expects.
fn decimal(m: u32, e: i32) -> f64 {
    format!("{m}e{e}").parse::<f64>().unwrap_or(f64::NAN)
}

/// What the chart needs, gathered as connections finish (any order): the idle times per
/// server endpoint, each CLOSE_WAIT stay (or the time it began, when it lasted to the end
/// of the capture, whose end is known only after the last packet). The inferred timeouts
/// come from the caller's diagnosis of the same connections (a renderer never diagnoses).
/// Bounded per server endpoint ([`Binned`]), not one entry per connection.
#[derive(Default)]
pub struct IdleSamples {
    /// Idle before the close per server, by [`IdleOutcome`] (its index in `ALL`).
    by_server: BTreeMap<SocketAddr, Binned>,
    /// Seconds in CLOSE_WAIT of the sockets that left it.
    left: Binned,
    /// When the sockets still in CLOSE_WAIT at the end entered it.
    stayed: Vec<f64>,
}

impl IdleSamples {
    pub fn add(&mut self, r: &ConnectionReport) {
        if let Some((v, o)) = idle_sample(r) {
            self.by_server
                .entry(r.server)
                .or_default()
                .add(v, o.index());
        }
        self.add_close_wait(r);
    }

    fn add_close_wait(&mut self, r: &ConnectionReport) {
        for side in [Side::Client, Side::Server] {
            let tl = r.timeline.get(side);
            for (i, c) in tl.iter().enumerate() {
                if c.state != TcpState::CloseWait {
                    continue;
                }
                match tl.get(i + 1) {
                    Some(next) => self.left.add((next.at - c.at).max(0.0), 0),
                    None => self.stayed.push(c.at),
                }
            }
        }
    }

    /// Time in CLOSE_WAIT: category 0 left it, 1 still there at `end`.
    fn close_wait(&self, end: f64) -> Binned {
        let mut all = self.left.clone();
        for at in &self.stayed {
            all.add((end - at).max(0.0), 1);
        }
        all
    }
}

/// A "nice" bin width (1, 2 or 5 × 10^k) giving about [`BINS`] bins up to `max`.
pub fn bin_width(max: f64) -> f64 {
    if !(max.is_finite() && max > 0.0) {
        return 0.1;
    }
    let raw = max / BINS;
    let exp = raw.log10().floor() as i32;
    [(1, exp), (2, exp), (5, exp), (1, exp + 1), (2, exp + 1)]
        .into_iter()
        .map(|(m, e)| decimal(m, e))
        .find(|w| *w >= raw)
        .unwrap_or(raw)
}

/// Stacked counts per bin: `bins[i][k]` samples of category `k` in `[i·w, (i+1)·w)`.
fn histogram(samples: &[(f64, usize)], categories: usize) -> (f64, Vec<Vec<u64>>) {
    let max = samples.iter().map(|s| s.0).fold(0.0, f64::max);
    let w = bin_width(max);
    let n = ((max / w).floor() as usize + 1).max(1);
    let mut bins = vec![vec![0u64; categories]; n];
    for (v, k) in samples {
        let i = ((v / w).floor() as usize).min(n - 1);
        bins[i][*k] += 1;
    }
    (w, bins)
}

/// A vertical marker on a histogram.
struct Marker {
    at: f64,
    text: String,
    color: RGBColor,
}

/// Draws one stacked histogram panel.
#[allow(clippy::too_many_arguments)]
fn panel(
    area: &DrawingArea<SVGBackend, Shift>,
    caption: &str,
    x_desc: &str,
    y_desc: &str,
    samples: &Binned,
    colors: &[RGBColor],
    markers: &[Marker],
    empty: &str,
) -> Result<(), ChartError> {
    let (w, bins) = samples.histogram(colors.len());
    let x_max = (w * bins.len() as f64).max(markers.iter().map(|m| m.at * 1.1).fold(0.0, f64::max));
    let y_max = bins
        .iter()
        .map(|b| b.iter().sum::<u64>())
        .max()
        .unwrap_or(0);
    // Head room above the bars for the marker labels: each label row takes about a tenth
    // of the plot's height.
    let room = 1.0 - 0.1 - 0.11 * markers.len() as f64;
    let y_top = ((y_max as f64 / room.max(0.3)).ceil() as u64 + 1).max(2);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FAMILY, CAPTION_SIZE).into_font().color(&FG))
        .margin_left(10)
        .margin_right(24)
        .margin_top(6)
        .margin_bottom(6)
        .x_label_area_size(46)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..x_max, 0u64..y_top)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(GRID.mix(0.25))
        .bold_line_style(GRID)
        .axis_style(MUTED)
        .x_labels(12)
        .y_labels(6)
        .x_label_formatter(&|v| tick(*v))
        .label_style((FAMILY, LABEL_SIZE).into_font().color(&FG))
        .axis_desc_style((FAMILY, DESC_SIZE).into_font().color(&FG))
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()
        .map_err(draw_err)?;
    if samples.is_empty() {
        return draw_empty(area, empty);
    }
    for (i, bin) in bins.iter().enumerate() {
        let x0 = w * i as f64;
        let mut y = 0u64;
        for (k, count) in bin.iter().enumerate() {
            if *count == 0 {
                continue;
            }
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x0, y), (x0 + w, y + count)],
                    colors[k].filled(),
                )))
                .map_err(draw_err)?;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x0, y), (x0 + w, y + count)],
                    WHITE.stroke_width(1),
                )))
                .map_err(draw_err)?;
            y += count;
        }
    }
    // Markers: a vertical line, its label at the top beside it (left of it when the line
    // is in the right half), one label row per marker so two never overlap.
    let (px, _) = chart.plotting_area().get_pixel_range();
    for (j, m) in markers.iter().enumerate() {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(m.at, 0), (m.at, y_top)],
                m.color.stroke_width(2),
            )))
            .map_err(draw_err)?;
        let (x, _) = chart.backend_coord(&(m.at, 0));
        let right_half = (x - px.start) * 2 > (px.end - px.start);
        let pos = if right_half {
            plotters::style::text_anchor::HPos::Right
        } else {
            plotters::style::text_anchor::HPos::Left
        };
        let style = TextStyle::from((FAMILY, LEGEND_SIZE).into_font())
            .color(&m.color)
            .pos(plotters::style::text_anchor::Pos::new(
                pos,
                plotters::style::text_anchor::VPos::Top,
            ));
        let dx = if right_half { -6 } else { 6 };
        // Anchored at the top of the line, offset in pixels: one row per marker.
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((m.at, y_top))
                    + Text::new(m.text.clone(), (dx, 4 + 20 * j as i32), style),
            ))
            .map_err(draw_err)?;
    }
    Ok(())
}

/// The timeouts `closewait diagnose` inferred for `server`: (side, seconds, samples).
fn inferred(details: &[&Details], server: SocketAddr) -> Vec<(Side, f64, u64)> {
    let mut out: Vec<(Side, f64, u64)> = details
        .iter()
        .filter_map(|d| match d {
            Details::IdleTimeout(i) if i.server == server && i.fixed => {
                Some((i.side, i.seconds, i.samples))
            }
            _ => None,
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    out.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    out
}

/// Draws the chart.
pub fn render(
    samples: &IdleSamples,
    diagnosis: Option<&Diagnosis>,
    span: &Span,
    title: &str,
) -> Result<String, ChartError> {
    let full_title = format!("Idle time before the close, and time in CLOSE_WAIT — {title}");
    let mut servers: Vec<(SocketAddr, &Binned)> =
        samples.by_server.iter().map(|(a, v)| (*a, v)).collect();
    servers.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
    let hidden = servers.len().saturating_sub(MAX_ENDPOINTS);
    servers.truncate(MAX_ENDPOINTS);

    let details: Vec<&Details> = diagnosis
        .iter()
        .flat_map(|d| d.findings.iter().map(|f| &f.details))
        .collect();

    let cw = samples.close_wait(span.end);
    let cw_colors = [color("#ff8182"), color(state_color(TcpState::CloseWait))];

    // Legends: the idle outcomes that occur, and the two CLOSE_WAIT stacks.
    let used: Vec<IdleOutcome> = IdleOutcome::ALL
        .into_iter()
        .filter(|o| servers.iter().any(|(_, s)| s.has(o.index())))
        .collect();
    let idle_entries: Vec<LegendEntry> = used
        .iter()
        .map(|o| LegendEntry {
            color: o.color(),
            text: o.label().to_string(),
            line: false,
        })
        .collect();
    let mut idle_notes = Vec::new();
    if hidden > 0 {
        idle_notes.push(format!("{hidden} more server endpoint(s) not shown"));
    }
    let cw_entries = vec![
        LegendEntry {
            color: cw_colors[0],
            text: "left CLOSE_WAIT (sent FIN or reset)".to_string(),
            line: false,
        },
        LegendEntry {
            color: cw_colors[1],
            text: "still in CLOSE_WAIT at the end".to_string(),
            line: false,
        },
    ];
    let cw_notes = vec!["(at least this long)".to_string()];
    let legend_w = legend_width(&idle_entries, &idle_notes)
        .max(legend_width(&cw_entries, &cw_notes))
        .max(200);

    let panels = servers.len().max(1) + 1;
    let height = HEADER_H + PANEL_H * panels as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let (header, body) = root.split_vertically(HEADER_H);
        header
            .draw(&Text::new(
                full_title.clone(),
                (14, 12),
                (FAMILY, TITLE_SIZE).into_font().color(&FG),
            ))
            .map_err(draw_err)?;
        let areas = body.split_evenly((panels, 1));
        let idle_colors: Vec<RGBColor> = IdleOutcome::ALL.iter().map(|o| o.color()).collect();
        if servers.is_empty() {
            let (plot, legend) = areas[0].split_horizontally(WIDTH - legend_w);
            panel(
                &plot,
                "idle time before the first FIN or RST",
                "idle before the close (s)",
                "connections",
                &Binned::default(),
                &idle_colors,
                &[],
                "no connection was closed after an idle period",
            )?;
            draw_legend(&legend, &[], &idle_notes, 40)?;
        }
        for (k, (server, samples)) in servers.iter().enumerate() {
            let (plot, legend) = areas[k].split_horizontally(WIDTH - legend_w);
            let markers: Vec<Marker> = inferred(&details, *server)
                .into_iter()
                .map(|(side, secs, n)| Marker {
                    at: secs,
                    text: match side {
                        Side::Server => {
                            format!(
                                "server keep-alive timeout ≈ {} (median of {n})",
                                human(secs)
                            )
                        }
                        Side::Client => {
                            format!("client idle timeout ≈ {} (median of {n})", human(secs))
                        }
                    },
                    color: match side {
                        Side::Server => FG,
                        Side::Client => color("#0969da"),
                    },
                })
                .collect();
            let caption = format!(
                "idle before the first FIN or RST — server {server} ({})",
                plural(samples.len(), "connection", "connections")
            );
            panel(
                &plot,
                &caption,
                "idle before the close (s)",
                "connections",
                samples,
                &idle_colors,
                &markers,
                "",
            )?;
            let notes = if k == 0 {
                idle_notes.clone()
            } else {
                Vec::new()
            };
            draw_legend(&legend, &idle_entries, &notes, 40)?;
        }
        let (plot, legend) = areas[panels - 1].split_horizontally(WIDTH - legend_w);
        panel(
            &plot,
            &format!(
                "time in CLOSE_WAIT, client and server sockets ({} sockets)",
                cw.len()
            ),
            "time in CLOSE_WAIT (s)",
            "sockets",
            &cw,
            &cw_colors,
            &[],
            "no socket entered CLOSE_WAIT",
        )?;
        draw_legend(&legend, &cw_entries, &cw_notes, 40)?;
        root.present().map_err(draw_err)?;
    }
    Ok(finish_svg(svg, &full_title))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bin_widths_are_round() {
        assert_eq!(bin_width(1.0), 0.05);
        assert_eq!(bin_width(15.0), 0.5);
        assert_eq!(bin_width(3.0), 0.1);
        assert_eq!(bin_width(0.0), 0.1);
    }

    #[test]
    fn many_values_bin_as_the_values_themselves_would() {
        // 50 000 idle times (0.001 s to about 90 s, off the bin edges), four outcomes.
        let values: Vec<(f64, usize)> = (0..50_000)
            .map(|i| {
                let v = 0.001 + (i as f64 * 0.618_033_988_7).fract() * 90.0;
                ((v * 1e6).round() / 1e6 + 3e-7, i % 4)
            })
            .collect();
        let mut b = Binned::default();
        values.iter().for_each(|&(v, k)| b.add(v, k));
        assert!(b.exact.is_empty() && b.fine.len() <= FINE_BINS as usize + 1);
        assert_eq!(b.len(), 50_000);
        assert_eq!(b.histogram(4), histogram(&values, 4));
    }

    #[test]
    fn few_values_are_kept_as_they_are() {
        let mut b = Binned::default();
        [(0.0, 0), (1.0, 1), (1.0, 1)]
            .iter()
            .for_each(|&(v, k)| b.add(v, k));
        assert_eq!(
            b.histogram(2),
            histogram(&[(0.0, 0), (1.0, 1), (1.0, 1)], 2)
        );
        assert!(b.has(1) && !b.has(2));
    }

    #[test]
    fn histogram_puts_the_maximum_in_the_last_bin() {
        let (w, bins) = histogram(&[(0.0, 0), (1.0, 1), (1.0, 1)], 2);
        assert_eq!(w, 0.05);
        assert_eq!(bins.len(), 21);
        assert_eq!(bins[0], vec![1, 0]);
        assert_eq!(bins[20], vec![0, 2]);
    }
}
