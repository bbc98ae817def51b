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

use super::*;
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

/// Time each socket spent in CLOSE_WAIT, and whether it was still there at `end`.
pub fn close_wait_durations(reports: &[ConnectionReport], end: f64) -> Vec<(f64, bool)> {
    let mut samples = IdleSamples::default();
    reports.iter().for_each(|r| samples.add_close_wait(r));
    samples.close_wait(end)
}

/// What the chart needs, gathered as connections finish (any order): the idle samples per
/// server endpoint, each CLOSE_WAIT stay (or the time it began, when it lasted to the end
/// of the capture, whose end is known only after the last packet). The inferred timeouts
/// come from the caller's diagnosis of the same connections (a renderer never diagnoses).
/// Two numbers per connection are kept (a few MB per 100 000 connections), not the
/// connections.
#[derive(Default)]
pub struct IdleSamples {
    by_server: BTreeMap<SocketAddr, Vec<(f64, IdleOutcome)>>,
    /// Seconds in CLOSE_WAIT of the sockets that left it.
    left: Vec<f64>,
    /// When the sockets still in CLOSE_WAIT at the end entered it.
    stayed: Vec<f64>,
}

impl IdleSamples {
    pub fn add(&mut self, r: &ConnectionReport) {
        if let Some(s) = idle_sample(r) {
            self.by_server.entry(r.server).or_default().push(s);
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
                    Some(next) => self.left.push((next.at - c.at).max(0.0)),
                    None => self.stayed.push(c.at),
                }
            }
        }
    }

    fn close_wait(&self, end: f64) -> Vec<(f64, bool)> {
        self.left
            .iter()
            .map(|v| (*v, false))
            .chain(self.stayed.iter().map(|at| ((end - at).max(0.0), true)))
            .collect()
    }
}

/// A "nice" bin width (1, 2 or 5 × 10^k) giving about [`BINS`] bins up to `max`.
pub fn bin_width(max: f64) -> f64 {
    if !(max.is_finite() && max > 0.0) {
        return 0.1;
    }
    let raw = max / BINS;
    let exp = raw.log10().floor() as i32;
    // `1e-2` parsed rather than `10f64.powi(-2)` multiplied: the exact decimal, so widths
    // are round numbers and bins fall where a reader expects.
    let nice = |m: u32, e: i32| format!("{m}e{e}").parse::<f64>().unwrap_or(raw);
    [(1, exp), (2, exp), (5, exp), (1, exp + 1), (2, exp + 1)]
        .into_iter()
        .map(|(m, e)| nice(m, e))
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
    samples: &[(f64, usize)],
    colors: &[RGBColor],
    markers: &[Marker],
    empty: &str,
) -> Result<(), ChartError> {
    let (w, bins) = histogram(samples, colors.len());
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
    let mut servers: Vec<(SocketAddr, &Vec<(f64, IdleOutcome)>)> =
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
        .filter(|o| servers.iter().any(|(_, s)| s.iter().any(|x| x.1 == *o)))
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
                &[],
                &idle_colors,
                &[],
                "no connection was closed after an idle period",
            )?;
            draw_legend(&legend, &[], &idle_notes, 40)?;
        }
        for (k, (server, samples)) in servers.iter().enumerate() {
            let (plot, legend) = areas[k].split_horizontally(WIDTH - legend_w);
            let xs: Vec<(f64, usize)> = samples
                .iter()
                .map(|(v, o)| {
                    (
                        *v,
                        IdleOutcome::ALL.iter().position(|x| x == o).unwrap_or(0),
                    )
                })
                .collect();
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
                "idle before the first FIN or RST — server {server} ({} connections)",
                samples.len()
            );
            panel(
                &plot,
                &caption,
                "idle before the close (s)",
                "connections",
                &xs,
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
        let xs: Vec<(f64, usize)> = cw
            .iter()
            .map(|(v, open)| (*v, usize::from(*open)))
            .collect();
        panel(
            &plot,
            &format!(
                "time in CLOSE_WAIT, client and server sockets ({} sockets)",
                cw.len()
            ),
            "time in CLOSE_WAIT (s)",
            "sockets",
            &xs,
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
    fn histogram_puts_the_maximum_in_the_last_bin() {
        let (w, bins) = histogram(&[(0.0, 0), (1.0, 1), (1.0, 1)], 2);
        assert_eq!(w, 0.05);
        assert_eq!(bins.len(), 21);
        assert_eq!(bins[0], vec![1, 0]);
        assert_eq!(bins[20], vec![0, 2]);
    }
}
