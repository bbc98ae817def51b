//! The ladder as a self-contained SVG, written by hand.
//!
//! A hand-written writer keeps the output byte-stable for snapshot tests and small
//! (plotters has no arrows and estimates text anyway). The figure carries its own opaque
//! background, so it reads on light and dark pages alike; with [`Theme::Adaptive`] a
//! `prefers-color-scheme: dark` rule swaps that background and the text colours. The
//! state colours are mid-tone fills with white text, legible on either background.
//! Accessibility: `role="img"`, a `<title>` and `<desc>` naming the finding, and every
//! label is real `<text>`.
//!
//! Text widths are estimated from DejaVu Sans' advance widths (the font the PNG embeds);
//! the layout leaves slack so wider system fonts still fit.

use super::layout::{human_secs, rel_time, Ladder, RowKind};
use crate::render::markup::xml as esc;
use closewait_core::model::Side;
use closewait_core::state::TcpState;
use std::fmt::Write;

/// Colour handling of the SVG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Theme {
    /// Light, switching to dark with the viewer's `prefers-color-scheme`.
    Adaptive,
    /// Light only (for rasterizing: no media queries).
    Light,
}

const FONT: &str = "DejaVu Sans, Verdana, Geneva, Helvetica, Arial, sans-serif";
const PAD: f64 = 20.0;
/// Vertical pixels per layout unit.
const UNIT: f64 = 40.0;
const TIME_COL: f64 = 76.0;
const PILL_H: f64 = 18.0;
const PILL_FONT: f64 = 10.5;
const LABEL_FONT: f64 = 12.0;
const DETAIL_FONT: f64 = 10.5;
const MIN_SPAN: f64 = 420.0;

/// Light-theme colours by role (fg text, muted text, lifeline, tear, finding box).
const FG: &str = "#1f2328";
const MUTED: &str = "#59636e";
const LINE: &str = "#8c959f";
const BG: &str = "#ffffff";
const TEAR: &str = "#eef1f4";
const BOX: &str = "#f6f8fa";
const FIND: &str = "#fff8c5";
const FIND_STROKE: &str = "#d4a72c";

const DARK_STYLE: &str = "@media (prefers-color-scheme: dark){\
.bg{fill:#0d1117}.fg{fill:#e6edf3}.mu{fill:#9198a1}\
.ln{stroke:#e6edf3}.hd{fill:#e6edf3}.ll{stroke:#6e7681}\
.tear{fill:#161b22}.box{fill:#161b22;stroke:#6e7681}\
.find{fill:#2d2a14;stroke:#9e6a03}}";

pub use crate::render::palette::state_color;

/// Estimated width of `s` at `size` px in DejaVu Sans (bold a little wider).
pub fn text_width(s: &str, size: f64, bold: bool) -> f64 {
    let em: f64 = s
        .chars()
        .map(|c| match c {
            'M' | 'W' => 0.90,
            'A'..='Z' => 0.70,
            '0'..='9' => 0.64,
            'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' => 0.30,
            'f' | 't' | 'r' | '(' | ')' | '[' | ']' | '-' | ' ' => 0.40,
            'm' | 'w' => 0.90,
            'a'..='z' => 0.61,
            '_' => 0.50,
            '…' | '→' | '#' | '=' | '<' | '>' => 0.84,
            _ => 0.70,
        })
        .sum();
    em * size * if bold { 1.1 } else { 1.0 }
}

/// Words of `s` on lines at most `room` px wide at the label size.
fn wrap_px(s: &str, room: f64, bold: bool) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in s.split_whitespace() {
        let candidate = if cur.is_empty() {
            word.to_string()
        } else {
            format!("{cur} {word}")
        };
        if !cur.is_empty() && text_width(&candidate, LABEL_FONT, bold) > room {
            lines.push(std::mem::replace(&mut cur, word.to_string()));
        } else {
            cur = candidate;
        }
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

/// The SVG under construction.
struct Svg {
    out: String,
}

impl Svg {
    /// `<text>` with class `cls` (`fg`, `mu`) and its light colour as fallback.
    #[allow(clippy::too_many_arguments)]
    fn text(&mut self, x: f64, y: f64, size: f64, anchor: &str, cls: &str, extra: &str, s: &str) {
        let fill = match cls {
            "mu" => MUTED,
            "wh" => "#ffffff",
            _ => FG,
        };
        let class = if cls == "wh" {
            String::new()
        } else {
            format!(" class=\"{cls}\"")
        };
        let _ = writeln!(
            self.out,
            "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"{size}\" text-anchor=\"{anchor}\" \
             fill=\"{fill}\"{class}{extra}>{}</text>",
            esc(s)
        );
    }

    /// A state name in a rounded pill; `right_edge` anchors it to the left of a lifeline,
    /// otherwise `x` is its left edge.
    fn pill(&mut self, x: f64, y: f64, state: TcpState, right_edge: bool) {
        let name = state.as_str();
        let w = text_width(name, PILL_FONT, true) + 12.0;
        let x0 = if right_edge { x - w } else { x };
        let _ = writeln!(
            self.out,
            "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{PILL_H}\" rx=\"9\" \
             fill=\"{}\"/>",
            y - PILL_H / 2.0,
            state_color(state)
        );
        self.text(
            x0 + w / 2.0,
            y + 3.8,
            PILL_FONT,
            "middle",
            "wh",
            " font-weight=\"bold\"",
            name,
        );
    }

    fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, cls: &str, extra: &str) {
        let stroke = if cls == "ln" { FG } else { LINE };
        let _ = writeln!(
            self.out,
            "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"{stroke}\" \
             class=\"{cls}\"{extra}/>"
        );
    }
}

/// Renders the ladder as an SVG document.
pub fn render(l: &Ladder, theme: Theme) -> String {
    // Horizontal geometry.
    let pill_max = TcpState::ALL
        .iter()
        .map(|s| text_width(s.as_str(), PILL_FONT, true) + 12.0)
        .fold(0.0, f64::max);
    let box_w = |side: Side| {
        let addr = match side {
            Side::Client => &l.client,
            Side::Server => &l.server,
        };
        (text_width(addr, 12.0, false) + 24.0).max(120.0)
    };
    let outer = |side: Side| (pill_max + 14.0).max(box_w(side) / 2.0 + 6.0);
    let mut span = MIN_SPAN;
    for row in &l.rows {
        let need = match &row.kind {
            RowKind::Arrow(a) => text_width(&a.label(), LABEL_FONT, false).max(text_width(
                &a.detail(),
                DETAIL_FONT,
                false,
            )),
            RowKind::Folded(f) => text_width(&format!("… {} …", f.label()), LABEL_FONT, false),
            RowKind::Timer { .. } => 220.0,
            _ => 0.0,
        };
        span = span.max(need + 60.0);
    }
    let cx = PAD + TIME_COL + outer(Side::Client);
    let sx = cx + span;
    let width = (sx + outer(Side::Server) + PAD).ceil();
    let x_of = |side: Side| if side == Side::Client { cx } else { sx };

    // Vertical geometry.
    let title_y = PAD + 14.0;
    let box_top = PAD + 30.0;
    let box_h = 38.0;
    let top0 = box_top + box_h + 26.0;
    let ypx = |u: f64| top0 + u * UNIT;
    let end_y = ypx(l.height);
    let find_top = end_y + 40.0;
    let room = width - 2.0 * PAD - 30.0;
    let mut finding: Vec<(String, bool)> = wrap_px(&l.headline, room, true)
        .into_iter()
        .map(|s| (s, true))
        .collect();
    finding.extend(
        wrap_px(&l.explanation, room, false)
            .into_iter()
            .map(|s| (s, false)),
    );
    let note = l.rows.iter().find_map(|r| match &r.kind {
        RowKind::End { note, .. } => note.clone(),
        _ => None,
    });
    if let Some(n) = &note {
        finding.extend(wrap_px(n, room, true).into_iter().map(|s| (s, true)));
    }
    let find_h = finding.len() as f64 * 18.0 + 16.0;
    let height = (find_top + find_h + PAD).ceil();

    let mut s = Svg { out: String::new() };
    let _ = writeln!(
        s.out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" role=\"img\" aria-labelledby=\"cw-title cw-desc\" \
         font-family=\"{FONT}\">"
    );
    let _ = writeln!(
        s.out,
        "<title id=\"cw-title\">{}: {}</title>",
        esc(&l.title()),
        esc(&l.headline)
    );
    let _ = writeln!(
        s.out,
        "<desc id=\"cw-desc\">TCP ladder diagram drawn by closewait from a capture. {}{}</desc>",
        esc(&l.explanation),
        note.as_ref()
            .map(|n| format!(" {}.", esc(n)))
            .unwrap_or_default()
    );
    if theme == Theme::Adaptive {
        let _ = writeln!(s.out, "<style>{DARK_STYLE}</style>");
    }
    let _ = writeln!(
        s.out,
        "<rect class=\"bg\" x=\"0\" y=\"0\" width=\"{width}\" height=\"{height}\" rx=\"8\" \
         fill=\"{BG}\"/>"
    );
    s.text(
        PAD,
        title_y,
        15.0,
        "start",
        "fg",
        " font-weight=\"bold\"",
        &l.title(),
    );
    let axis = match l.time {
        super::TimeAxis::Proportional => "time proportional, idle gaps folded",
        super::TimeAxis::Linear => "time linear",
    };
    s.text(
        width - PAD,
        title_y,
        10.5,
        "end",
        "mu",
        "",
        &format!("closewait · {axis}"),
    );

    // Participants and lifelines.
    for side in [Side::Client, Side::Server] {
        let x = x_of(side);
        let w = box_w(side);
        let _ = writeln!(
            s.out,
            "<rect class=\"box\" x=\"{:.1}\" y=\"{box_top:.1}\" width=\"{w:.1}\" height=\"{box_h}\" \
             rx=\"6\" fill=\"{BOX}\" stroke=\"{LINE}\"/>",
            x - w / 2.0
        );
        s.text(
            x,
            box_top + 15.0,
            13.0,
            "middle",
            "fg",
            " font-weight=\"bold\"",
            side.as_str(),
        );
        let addr = match side {
            Side::Client => &l.client,
            Side::Server => &l.server,
        };
        s.text(x, box_top + 31.0, 12.0, "middle", "fg", "", addr);
        s.line(x, box_top + box_h, x, end_y, "ll", " stroke-width=\"1.5\"");
    }
    s.text(
        PAD + TIME_COL - 10.0,
        box_top + 31.0,
        10.5,
        "end",
        "mu",
        "",
        "time (s)",
    );

    // Breaks across the whole figure, under the lifelines' bands.
    for row in &l.rows {
        let y = ypx(row.y);
        if let RowKind::Idle { .. } | RowKind::Folded(_) = row.kind {
            let _ = writeln!(
                s.out,
                "<rect class=\"tear\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"24\" \
                 fill=\"{TEAR}\"/>",
                cx - 40.0,
                y - 12.0,
                sx - cx + 80.0
            );
        }
    }

    // State bands on the lifelines.
    for b in &l.bands {
        let x = x_of(b.side);
        let _ = writeln!(
            s.out,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"8\" height=\"{:.1}\" fill=\"{}\" \
             fill-opacity=\"0.55\"><title>{} {}: {}</title></rect>",
            x - 4.0,
            ypx(b.y0),
            ypx(b.y1) - ypx(b.y0),
            state_color(b.state),
            b.side,
            b.state,
            human_secs(b.secs)
        );
    }

    // Cut marks where idle time was folded out.
    for row in &l.rows {
        if let RowKind::Idle { .. } = row.kind {
            let y = ypx(row.y);
            for x in [cx, sx] {
                for dy in [-4.0, 4.0] {
                    let _ = writeln!(
                        s.out,
                        "<path d=\"M{:.1} {:.1} l16 -6\" stroke=\"{LINE}\" class=\"ll\" \
                         stroke-width=\"2\" fill=\"none\"/>",
                        x - 8.0,
                        y + dy + 3.0
                    );
                }
            }
        }
    }

    let mid = (cx + sx) / 2.0;
    if let Some(init) = &l.initial {
        let y = ypx(0.0);
        s.pill(cx - 10.0, y, init.client, true);
        s.pill(sx + 10.0, y, init.server, false);
    }
    for row in &l.rows {
        let y = ypx(row.y);
        let time = rel_time(row.t);
        match &row.kind {
            RowKind::Arrow(a) => {
                let (x1, x2) = match a.from {
                    Side::Client => (cx + 5.0, sx - 5.0),
                    Side::Server => (sx - 5.0, cx + 5.0),
                };
                let dir = if x2 > x1 { 1.0 } else { -1.0 };
                let tip = x2;
                let base = tip - dir * 11.0;
                let dash = if a.is_rst() {
                    " stroke-dasharray=\"6 3\""
                } else {
                    ""
                };
                let _ = writeln!(
                    s.out,
                    "<g><title>frame {}: {} {}</title>",
                    a.frame,
                    esc(&a.label()),
                    esc(&a.detail())
                );
                s.line(
                    x1,
                    y,
                    base,
                    y,
                    "ln",
                    &format!(" stroke-width=\"1.6\"{dash}"),
                );
                let _ = writeln!(
                    s.out,
                    "<path class=\"hd\" d=\"M{tip:.1} {y:.1} L{base:.1} {:.1} L{base:.1} {:.1} Z\" \
                     fill=\"{FG}\"/>",
                    y - 4.5,
                    y + 4.5
                );
                if a.is_rst() {
                    // A cross at the tip: the connection is torn down here.
                    let _ = writeln!(
                        s.out,
                        "<path d=\"M{:.1} {:.1} l10 10 M{:.1} {:.1} l10 -10\" stroke=\"#cf222e\" \
                         stroke-width=\"2\"/>",
                        tip - dir * 18.0 - 5.0,
                        y - 5.0,
                        tip - dir * 18.0 - 5.0,
                        y + 5.0
                    );
                }
                s.text(mid, y - 6.0, LABEL_FONT, "middle", "fg", "", &a.label());
                s.text(mid, y + 14.0, DETAIL_FONT, "middle", "mu", "", &a.detail());
                s.out.push_str("</g>\n");
                s.text(PAD + TIME_COL - 10.0, y - 1.0, 10.5, "end", "fg", "", &time);
                s.text(
                    PAD + TIME_COL - 10.0,
                    y + 11.0,
                    9.5,
                    "end",
                    "mu",
                    "",
                    &format!("#{}", a.frame),
                );
                if let Some(st) = a.changed(Side::Client) {
                    s.pill(cx - 10.0, y, st, true);
                }
                if let Some(st) = a.changed(Side::Server) {
                    s.pill(sx + 10.0, y, st, false);
                }
            }
            RowKind::Idle { secs } => {
                s.text(
                    mid,
                    y + 4.5,
                    12.0,
                    "middle",
                    "mu",
                    " font-style=\"italic\"",
                    &format!("… {} idle …", human_secs(*secs)),
                );
            }
            RowKind::Folded(f) => {
                s.text(
                    mid,
                    y + 4.5,
                    LABEL_FONT,
                    "middle",
                    "mu",
                    " font-style=\"italic\"",
                    &format!("… {} …", f.label()),
                );
                s.text(PAD + TIME_COL - 10.0, y - 1.0, 10.5, "end", "fg", "", &time);
                s.text(
                    PAD + TIME_COL - 10.0,
                    y + 11.0,
                    9.5,
                    "end",
                    "mu",
                    "",
                    &format!("#{}–{}", f.first_frame, f.last_frame),
                );
            }
            RowKind::Timer { side, state } => {
                let x = x_of(*side);
                let text_x = if *side == Side::Client {
                    x + 14.0
                } else {
                    x - 14.0
                };
                let anchor = if *side == Side::Client {
                    "start"
                } else {
                    "end"
                };
                s.text(
                    text_x,
                    y + 4.0,
                    10.5,
                    anchor,
                    "mu",
                    " font-style=\"italic\"",
                    "timer expired",
                );
                s.text(PAD + TIME_COL - 10.0, y + 4.0, 10.5, "end", "fg", "", &time);
                if *side == Side::Client {
                    s.pill(x - 10.0, y, *state, true);
                } else {
                    s.pill(x + 10.0, y, *state, false);
                }
            }
            RowKind::End { states, .. } => {
                s.line(
                    cx - 30.0,
                    y,
                    sx + 30.0,
                    y,
                    "ll",
                    " stroke-width=\"1.5\" stroke-dasharray=\"5 4\"",
                );
                s.text(mid, y + 16.0, 11.0, "middle", "mu", "", "end of capture");
                s.text(PAD + TIME_COL - 10.0, y + 4.0, 10.5, "end", "fg", "", &time);
                s.pill(cx - 10.0, y, states.client, true);
                s.pill(sx + 10.0, y, states.server, false);
            }
        }
    }

    // The finding.
    let _ = writeln!(
        s.out,
        "<rect class=\"find\" x=\"{PAD}\" y=\"{find_top:.1}\" width=\"{:.1}\" height=\"{find_h:.1}\" \
         rx=\"6\" fill=\"{FIND}\" stroke=\"{FIND_STROKE}\"/>",
        width - 2.0 * PAD
    );
    for (i, (line, bold)) in finding.iter().enumerate() {
        let extra = if *bold { " font-weight=\"bold\"" } else { "" };
        s.text(
            PAD + 12.0,
            find_top + 21.0 + i as f64 * 18.0,
            LABEL_FONT,
            "start",
            "fg",
            extra,
            line,
        );
    }
    s.out.push_str("</svg>\n");
    s.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_xml() {
        assert_eq!(esc("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }

    #[test]
    fn width_estimate_is_monotonic() {
        assert!(text_width("CLOSE_WAIT", 10.0, true) > text_width("CLOSED", 10.0, true));
    }
}
