//! The state machine a capture actually walked (`closewait graph`): nodes are TCP states,
//! edges the transitions seen, with how many sockets took each, per side.
//!
//! The observed graph is a petgraph `DiGraphMap<TcpState, u64>` per side, built from the
//! timelines of the report model (consecutive states of one side of one connection). Two
//! transitions are implied rather than recorded: a client's first state SYN_SENT comes from
//! CLOSED (RFC 9293: "active OPEN / create TCB / snd SYN"), a server's first SYN_RECEIVED
//! from LISTEN ("rcv SYN / snd SYN,ACK"; the listening socket itself is not the
//! connection's, so only the transition is drawn). A side first seen in another state (a
//! capture that started mid-connection) has no incoming edge; it is counted apart.
//!
//! Two outputs:
//! - DOT, written by `petgraph::dot` with closewait's own attribute getters, for Graphviz.
//! - SVG (and PNG through the ladder's resvg path) without Graphviz: the states at fixed
//!   places copied from RFC 9293's Figure 5 (with its two CLOSED boxes, the start at the
//!   top and the end at the bottom right), every edge of the figure drawn faint, the edges
//!   this capture took drawn dark with their counts, and transitions the figure does not
//!   draw (resets, mostly) as dashed curves.
//!
//! Which path through the figure did the sockets take? The seed's leak reads as client
//! ESTABLISHED → CLOSE_WAIT and no further, server ESTABLISHED → FIN_WAIT_1 → FIN_WAIT_2.

use crate::render::diagram::svg::text_width;
use crate::render::palette::{state_color, xml_escape};
use closewait_core::model::{ConnectionReport, PerSide, Side};
use closewait_core::state::TcpState;
use petgraph::dot::{Config, Dot};
use petgraph::graph::Graph;
use petgraph::graphmap::DiGraphMap;
use std::collections::BTreeMap;
use std::fmt::Write;

pub use closewait_core::state::{rfc_event, RFC_EDGES};

/// RFC 9293 Figure 5 as a graph: edge weights are the event / action text.
pub fn rfc_graph() -> DiGraphMap<TcpState, &'static str> {
    let mut g = DiGraphMap::new();
    for (a, b, ev) in RFC_EDGES {
        g.add_edge(*a, *b, *ev);
    }
    g
}

/// What a capture's sockets did, per side.
#[derive(Clone, Debug, Default)]
pub struct ObservedGraph {
    /// Transitions taken, weighted by how many times (sockets × times).
    pub graphs: PerSide<DiGraphMap<TcpState, u64>>,
    /// Sockets first seen in a state with no recorded way in (capture started mid-way).
    pub first_seen: PerSide<BTreeMap<TcpState, u64>>,
    /// Sockets per side that appear at all (a non-empty timeline).
    pub sockets: PerSide<u64>,
}

impl ObservedGraph {
    /// Builds the graph from the connections' timelines.
    pub fn from_reports(reports: &[ConnectionReport]) -> ObservedGraph {
        let mut g = ObservedGraph::default();
        for r in reports {
            g.add(r);
        }
        g
    }

    /// Counts one connection's transitions. The graph is a small fixed table (states ×
    /// states per side), so `closewait graph` adds each connection as it finishes and keeps
    /// nothing else: memory does not grow with the capture.
    pub fn add(&mut self, r: &ConnectionReport) {
        for side in [Side::Client, Side::Server] {
            let tl = r.timeline.get(side);
            let Some(first) = tl.first() else { continue };
            if first.state == TcpState::Closed && tl.len() == 1 {
                // A refused connection's server: no socket ever existed.
                continue;
            }
            *self.sockets.get_mut(side) += 1;
            let graph = self.graphs.get_mut(side);
            let mut bump = |a: TcpState, b: TcpState| {
                if let Some(w) = graph.edge_weight_mut(a, b) {
                    *w += 1;
                } else {
                    graph.add_edge(a, b, 1);
                }
            };
            match (side, first.state) {
                (Side::Client, TcpState::SynSent) => bump(TcpState::Closed, TcpState::SynSent),
                (Side::Server, TcpState::SynReceived) => {
                    bump(TcpState::Listen, TcpState::SynReceived)
                }
                (_, s) => *self.first_seen.get_mut(side).entry(s).or_default() += 1,
            }
            for w in tl.windows(2) {
                if w[0].state != w[1].state {
                    bump(w[0].state, w[1].state);
                }
            }
        }
    }

    /// Times sockets of `side` took `from → to`.
    pub fn count(&self, side: Side, from: TcpState, to: TcpState) -> u64 {
        self.graphs
            .get(side)
            .edge_weight(from, to)
            .copied()
            .unwrap_or(0)
    }

    /// Whether any socket of `side` was ever in `s`.
    pub fn visited(&self, side: Side, s: TcpState) -> bool {
        let g = self.graphs.get(side);
        g.contains_node(s) || self.first_seen.get(side).contains_key(&s)
    }
}

/// Which sides to draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Sides {
    #[default]
    Both,
    Client,
    Server,
}

impl Sides {
    pub fn list(self) -> Vec<Side> {
        match self {
            Sides::Both => vec![Side::Client, Side::Server],
            Sides::Client => vec![Side::Client],
            Sides::Server => vec![Side::Server],
        }
    }
}

/// Side colours in the DOT output, where both sides share one picture.
fn side_color(side: Side) -> &'static str {
    match side {
        Side::Client => "#0969da",
        Side::Server => "#bc4c00",
    }
}

/// A DOT double-quoted string: backslashes and quotes escaped, newlines as `\n`.
pub fn dot_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An edge of the DOT picture.
#[derive(Clone, Debug)]
struct DotEdge {
    /// `None`: an edge of Figure 5 that no drawn side took.
    side: Option<Side>,
    count: u64,
    event: Option<&'static str>,
}

/// The observed graph as Graphviz DOT: every state a node (states no socket visited are
/// faint), each side's transitions as coloured edges labelled with their counts and the
/// figure's event, Figure 5's untaken edges dotted.
pub fn render_dot(g: &ObservedGraph, sides: Sides, title: &str) -> String {
    let sides = sides.list();
    let mut graph: Graph<TcpState, DotEdge> = Graph::new();
    let idx: BTreeMap<TcpState, _> = TcpState::ALL
        .iter()
        .map(|s| (*s, graph.add_node(*s)))
        .collect();
    // Observed edges in (side, RFC order of from, to) order; then the untaken RFC edges.
    for side in &sides {
        let mut edges: Vec<(TcpState, TcpState, u64)> = g
            .graphs
            .get(*side)
            .all_edges()
            .map(|(a, b, w)| (a, b, *w))
            .collect();
        edges.sort();
        for (a, b, count) in edges {
            graph.add_edge(
                idx[&a],
                idx[&b],
                DotEdge {
                    side: Some(*side),
                    count,
                    event: rfc_event(a, b),
                },
            );
        }
    }
    for (a, b, ev) in RFC_EDGES {
        if sides.iter().all(|s| g.count(*s, *a, *b) == 0) {
            graph.add_edge(
                idx[a],
                idx[b],
                DotEdge {
                    side: None,
                    count: 0,
                    event: Some(ev),
                },
            );
        }
    }
    let edge_attrs = |_: &Graph<TcpState, DotEdge>, e: petgraph::graph::EdgeReference<DotEdge>| {
        let w = e.weight();
        match w.side {
            Some(side) => {
                let label = match w.event {
                    Some(ev) => format!("{side} ×{}\n{ev}", w.count),
                    None => format!("{side} ×{}\n(not in Figure 5)", w.count),
                };
                format!(
                    "label = {} color = {} fontcolor = {} penwidth = {:.1}{}",
                    dot_quote(&label),
                    dot_quote(side_color(side)),
                    dot_quote(side_color(side)),
                    pen(w.count),
                    if w.event.is_none() {
                        " style = dashed"
                    } else {
                        ""
                    }
                )
            }
            None => format!(
                "tooltip = {} color = \"#d0d7de\" style = dotted",
                dot_quote(w.event.unwrap_or(""))
            ),
        }
    };
    let node_attrs = |_: &Graph<TcpState, DotEdge>,
                      (_, s): (petgraph::graph::NodeIndex, &TcpState)| {
        let visited = sides.iter().any(|side| g.visited(*side, *s));
        let mut label = s.as_str().to_string();
        for side in &sides {
            if let Some(n) = g.first_seen.get(*side).get(s) {
                let _ = write!(label, "\n{side}: {n} first seen here");
            }
        }
        if visited {
            format!(
                "label = {} fillcolor = {} fontcolor = \"#ffffff\" color = {}",
                dot_quote(&label),
                dot_quote(state_color(*s)),
                dot_quote(state_color(*s))
            )
        } else {
            format!(
                "label = {} fillcolor = \"#ffffff\" fontcolor = \"#8c959f\" color = \"#d0d7de\"",
                dot_quote(&label)
            )
        }
    };
    let dot = Dot::with_attr_getters(
        &graph,
        &[
            Config::NodeNoLabel,
            Config::EdgeNoLabel,
            Config::GraphContentOnly,
        ],
        &edge_attrs,
        &node_attrs,
    );
    let names: Vec<String> = sides
        .iter()
        .map(|s| format!("{s} ({} sockets)", g.sockets.get(*s)))
        .collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "// closewait graph: TCP state transitions seen; edges of RFC 9293"
    );
    let _ = writeln!(
        out,
        "// Figure 5 not taken are dotted. Render: dot -Tsvg FILE.dot"
    );
    let _ = writeln!(out, "digraph closewait {{");
    let _ = writeln!(
        out,
        "    graph [label = {} labelloc = t fontname = \"DejaVu Sans\" rankdir = TB]",
        dot_quote(&format!("TCP states seen — {title} — {}", names.join(", ")))
    );
    let _ = writeln!(
        out,
        "    node [shape = box style = \"rounded,filled\" fontname = \"DejaVu Sans\"]"
    );
    let _ = writeln!(out, "    edge [fontname = \"DejaVu Sans\" fontsize = 10]");
    let _ = write!(out, "{dot:?}");
    let _ = writeln!(out, "}}");
    out
}

/// Line width for a count: thicker for more, gently (logarithmic).
fn pen(count: u64) -> f64 {
    1.5 + (count.max(1) as f64).log2().min(8.0) * 0.4
}

// ---- the SVG of Figure 5 ------------------------------------------------------------------

const PANEL_W: f64 = 820.0;
const PANEL_H: f64 = 800.0;
const BOX_W: f64 = 140.0;
const BOX_H: f64 = 36.0;
const HEADER: f64 = 56.0;
const FOOTER: f64 = 96.0;
const FONT: &str = "DejaVu Sans, Verdana, Geneva, Helvetica, Arial, sans-serif";
const FG: &str = "#1f2328";
const MUTED: &str = "#59636e";
const FAINT: &str = "#d0d7de";

/// Where a node sits: Figure 5's layout. CLOSED appears twice, as in the figure.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Place {
    State(TcpState),
    /// The CLOSED at the bottom right, where connections end.
    ClosedEnd,
}

fn center(p: Place) -> (f64, f64) {
    const A: f64 = 130.0;
    const B: f64 = 410.0;
    const C: f64 = 690.0;
    use TcpState::*;
    match p {
        Place::ClosedEnd => (C, 720.0),
        Place::State(s) => match s {
            Closed => (B, 60.0),
            Listen => (B, 170.0),
            SynReceived => (A, 280.0),
            SynSent => (C, 280.0),
            Established => (B, 390.0),
            FinWait1 => (A, 500.0),
            CloseWait => (C, 500.0),
            FinWait2 => (A, 610.0),
            Closing => (B, 610.0),
            LastAck => (C, 610.0),
            TimeWait => (B, 720.0),
        },
    }
}

/// The boxes an edge goes between: CLOSED as a target is the bottom box, except for
/// Figure 5's two CLOSE edges back to the top one.
fn ends(a: TcpState, b: TcpState) -> (Place, Place) {
    let to = if b == TcpState::Closed && !matches!(a, TcpState::Listen | TcpState::SynSent) {
        Place::ClosedEnd
    } else {
        Place::State(b)
    };
    (Place::State(a), to)
}

const PLACES: [Place; 12] = [
    Place::State(TcpState::Closed),
    Place::State(TcpState::Listen),
    Place::State(TcpState::SynReceived),
    Place::State(TcpState::SynSent),
    Place::State(TcpState::Established),
    Place::State(TcpState::FinWait1),
    Place::State(TcpState::CloseWait),
    Place::State(TcpState::FinWait2),
    Place::State(TcpState::Closing),
    Place::State(TcpState::LastAck),
    Place::State(TcpState::TimeWait),
    Place::ClosedEnd,
];

type Pt = (f64, f64);

/// Where the segment from the centre of a box towards `toward` leaves the box.
fn border(c: Pt, toward: Pt) -> Pt {
    let (dx, dy) = (toward.0 - c.0, toward.1 - c.1);
    let sx = if dx.abs() > 1e-9 {
        (BOX_W / 2.0 + 3.0) / dx.abs()
    } else {
        f64::INFINITY
    };
    let sy = if dy.abs() > 1e-9 {
        (BOX_H / 2.0 + 3.0) / dy.abs()
    } else {
        f64::INFINITY
    };
    let s = sx.min(sy);
    (c.0 + dx * s, c.1 + dy * s)
}

fn quad(p0: Pt, c: Pt, p1: Pt, t: f64) -> Pt {
    let u = 1.0 - t;
    (
        u * u * p0.0 + 2.0 * u * t * c.0 + t * t * p1.0,
        u * u * p0.1 + 2.0 * u * t * c.1 + t * t * p1.1,
    )
}

fn inside_box(p: Pt, c: Pt, pad: f64) -> bool {
    (p.0 - c.0).abs() <= BOX_W / 2.0 + pad && (p.1 - c.1).abs() <= BOX_H / 2.0 + pad
}

/// One edge's path: start, control point, end (a straight edge has its control point in
/// the middle).
#[derive(Clone, Copy, Debug)]
struct Path {
    p0: Pt,
    c: Pt,
    p1: Pt,
}

impl Path {
    fn at(&self, t: f64) -> Pt {
        quad(self.p0, self.c, self.p1, t)
    }
    fn hits_boxes(&self, skip: [Place; 2]) -> bool {
        PLACES
            .iter()
            .filter(|p| !skip.contains(p))
            .any(|p| (1..50).any(|i| inside_box(self.at(i as f64 / 50.0), center(*p), 6.0)))
    }
}

/// The route of `from → to`: straight when nothing is in the way (offset sideways when the
/// reverse edge exists too), else the first curve, bending left or right ever more, that
/// passes no other box.
fn route(from: Place, to: Place, reverse_exists: bool) -> Path {
    let (a, b) = (center(from), center(to));
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len = (dx * dx + dy * dy).sqrt().max(1e-9);
    let (nx, ny) = (-dy / len, dx / len);
    let shift = if reverse_exists { 7.0 } else { 0.0 };
    let (a2, b2) = (
        (a.0 + nx * shift, a.1 + ny * shift),
        (b.0 + nx * shift, b.1 + ny * shift),
    );
    let mut first = None;
    for bend in [
        0.0, 60.0, -60.0, 110.0, -110.0, 160.0, -160.0, 220.0, -220.0,
    ] {
        let mid = (
            (a2.0 + b2.0) / 2.0 + nx * bend,
            (a2.1 + b2.1) / 2.0 + ny * bend,
        );
        let p0 = border(a2, mid);
        let p1 = border(b2, mid);
        let path = Path { p0, c: mid, p1 };
        let path = if bend == 0.0 {
            Path {
                p0: border(a2, b2),
                c: ((a2.0 + b2.0) / 2.0, (a2.1 + b2.1) / 2.0),
                p1: border(b2, a2),
            }
        } else {
            path
        };
        first.get_or_insert(path);
        if !path.hits_boxes([from, to]) {
            return path;
        }
    }
    first.unwrap_or(Path { p0: a, c: a, p1: b })
}

/// The SVG of the observed graph on Figure 5's layout, one panel per side.
pub fn render_svg(g: &ObservedGraph, sides: Sides, title: &str) -> String {
    let sides = sides.list();
    let w = PANEL_W * sides.len() as f64;
    let h = HEADER + PANEL_H + FOOTER;
    let full_title = format!("TCP states seen — {title}");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" \
         viewBox=\"0 0 {w:.0} {h:.0}\" role=\"img\" aria-labelledby=\"cw-title cw-desc\" \
         font-family=\"{FONT}\">"
    );
    let desc: Vec<String> = sides
        .iter()
        .map(|s| {
            let mut edges: Vec<(TcpState, TcpState, u64)> = g
                .graphs
                .get(*s)
                .all_edges()
                .map(|(a, b, w)| (a, b, *w))
                .collect();
            edges.sort();
            let list: Vec<String> = edges
                .iter()
                .map(|(a, b, n)| format!("{a}→{b} ×{n}"))
                .collect();
            format!(
                "{s}: {}",
                if list.is_empty() {
                    "none".into()
                } else {
                    list.join(", ")
                }
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "<title id=\"cw-title\">{}</title><desc id=\"cw-desc\">{}</desc>",
        xml_escape(&full_title),
        xml_escape(&desc.join("; "))
    );
    let _ = writeln!(
        out,
        "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>"
    );
    let _ = writeln!(
        out,
        "<defs><marker id=\"ah\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerUnits=\"userSpaceOnUse\" markerWidth=\"11\" \
         markerHeight=\"11\" orient=\"auto-start-reverse\"><path d=\"M0 0 L10 5 L0 10 z\" \
         fill=\"{FG}\"/></marker><marker id=\"af\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" \
         markerUnits=\"userSpaceOnUse\" markerWidth=\"9\" markerHeight=\"9\" orient=\"auto-start-reverse\"><path d=\"M0 0 L10 5 \
         L0 10 z\" fill=\"{FAINT}\"/></marker></defs>"
    );
    let _ = writeln!(
        out,
        "<text x=\"16\" y=\"32\" font-size=\"18\" font-weight=\"bold\" fill=\"{FG}\">{}</text>",
        xml_escape(&full_title)
    );
    for (k, side) in sides.iter().enumerate() {
        let ox = PANEL_W * k as f64;
        panel(&mut out, g, *side, ox, HEADER);
    }
    // Key, under the panels.
    let y = HEADER + PANEL_H + 24.0;
    let key = [
        (
            FG,
            "",
            "a transition the sockets took, with how many times (thicker: more)",
        ),
        (
            FAINT,
            "",
            "a transition of RFC 9293 Figure 5 that no socket took",
        ),
        (
            FG,
            "6 4",
            "taken, but not drawn in Figure 5 (a reset, mostly)",
        ),
    ];
    for (i, (col, dash, text)) in key.iter().enumerate() {
        let yy = y + 22.0 * i as f64;
        let _ = writeln!(
            out,
            "<line x1=\"20\" y1=\"{yy:.1}\" x2=\"60\" y2=\"{yy:.1}\" stroke=\"{col}\" \
             stroke-width=\"2\"{}/><text x=\"70\" y=\"{:.1}\" font-size=\"13\" fill=\"{FG}\">{}</text>",
            if dash.is_empty() { String::new() } else { format!(" stroke-dasharray=\"{dash}\"") },
            yy + 4.5,
            xml_escape(text)
        );
    }
    out.push_str("</svg>\n");
    out
}

fn panel(out: &mut String, g: &ObservedGraph, side: Side, ox: f64, oy: f64) {
    let at = |p: Pt| (p.0 + ox, p.1 + oy);
    let n = *g.sockets.get(side);
    let mut caption = format!("{side} side: {n} socket{}", if n == 1 { "" } else { "s" });
    let first: Vec<String> = g
        .first_seen
        .get(side)
        .iter()
        .map(|(s, n)| format!("{n} first seen in {s}"))
        .collect();
    if !first.is_empty() {
        let _ = write!(caption, " ({})", first.join(", "));
    }
    let (cx, cy) = at((20.0, 14.0));
    let _ = writeln!(
        out,
        "<text x=\"{cx:.1}\" y=\"{cy:.1}\" font-size=\"15\" font-weight=\"bold\" fill=\"{FG}\">{}</text>",
        xml_escape(&caption)
    );
    let graph = g.graphs.get(side);
    // Every edge to draw: the figure's (taken or not) and the taken ones it lacks.
    let mut edges: Vec<(TcpState, TcpState, u64, Option<&'static str>)> = RFC_EDGES
        .iter()
        .map(|(a, b, ev)| (*a, *b, g.count(side, *a, *b), Some(*ev)))
        .collect();
    let mut extra: Vec<(TcpState, TcpState, u64)> = graph
        .all_edges()
        .filter(|(a, b, _)| rfc_event(*a, *b).is_none())
        .map(|(a, b, w)| (a, b, *w))
        .collect();
    extra.sort();
    edges.extend(extra.into_iter().map(|(a, b, n)| (a, b, n, None)));
    // Faint edges first, so taken ones are drawn over them.
    edges.sort_by_key(|e| e.2 > 0);
    // Edges first, then their count labels over them (placed clear of boxes, other
    // labels and the other taken edges).
    let mut taken_paths: Vec<(Path, u64)> = Vec::new();
    for (a, b, count, event) in &edges {
        let (from, to) = ends(*a, *b);
        let reverse = edges.iter().any(|(x, y, _, _)| ends(*x, *y) == (to, from));
        let path = route(from, to, reverse);
        let (p0, c, p1) = (at(path.p0), at(path.c), at(path.p1));
        let taken = *count > 0;
        if taken {
            taken_paths.push((path, *count));
        }
        let (stroke, marker, width) = if taken {
            (FG, "ah", pen(*count))
        } else {
            (FAINT, "af", 1.2)
        };
        let dash = if event.is_none() {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        let tip = format!(
            "{a} → {b}: {}; {}",
            event.unwrap_or("not drawn in RFC 9293 Figure 5"),
            if taken {
                format!("taken {count} times")
            } else {
                "not taken".to_string()
            }
        );
        let _ = writeln!(
            out,
            "<path d=\"M{:.1} {:.1} Q{:.1} {:.1} {:.1} {:.1}\" fill=\"none\" stroke=\"{stroke}\" \
             stroke-width=\"{width:.1}\"{dash} marker-end=\"url(#{marker})\"><title>{}</title></path>",
            p0.0,
            p0.1,
            c.0,
            c.1,
            p1.0,
            p1.1,
            xml_escape(&tip)
        );
    }
    let mut labels: Vec<(Pt, f64)> = Vec::new();
    for (k, (path, count)) in taken_paths.iter().enumerate() {
        {
            let text = format!("×{count}");
            let tw = text_width(&text, 12.0, true) + 10.0;
            let clear = |p: &Pt, mind_lines: bool| {
                let boxes = PLACES.iter().any(|pl| {
                    let c = center(*pl);
                    (p.0 - c.0).abs() < BOX_W / 2.0 + tw / 2.0 + 2.0
                        && (p.1 - c.1).abs() < BOX_H / 2.0 + 11.0
                });
                let others = labels.iter().any(|(q, qw)| {
                    (p.0 - q.0).abs() < (tw + qw) / 2.0 + 8.0 && (p.1 - q.1).abs() < 22.0
                });
                let lines = taken_paths.iter().enumerate().any(|(j, (o, _))| {
                    j != k
                        && (1..60).any(|i| {
                            let q = o.at(i as f64 / 60.0);
                            (p.0 - q.0).abs() < tw / 2.0 + 1.0 && (p.1 - q.1).abs() < 10.0
                        })
                });
                !(boxes || others || (mind_lines && lines))
            };
            // Slide the label along its edge until it sits clear of everything, else at
            // least of boxes and other labels.
            let spots: Vec<Pt> = [0.5, 0.4, 0.6, 0.3, 0.7, 0.25, 0.75, 0.2, 0.8]
                .iter()
                .map(|t| path.at(*t))
                .collect();
            let spot = spots
                .iter()
                .find(|p| clear(p, true))
                .or_else(|| spots.iter().find(|p| clear(p, false)))
                .copied()
                .unwrap_or_else(|| path.at(0.5));
            labels.push((spot, tw));
            let (lx, ly) = at(spot);
            let _ = writeln!(
                out,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{tw:.1}\" height=\"18\" rx=\"9\" fill=\"#ffffff\" \
                 stroke=\"{FG}\" stroke-width=\"1\"/><text x=\"{lx:.1}\" y=\"{:.1}\" font-size=\"12\" \
                 font-weight=\"bold\" text-anchor=\"middle\" fill=\"{FG}\">{}</text>",
                lx - tw / 2.0,
                ly - 9.0,
                ly + 4.2,
                xml_escape(&text)
            );
        }
    }
    for p in PLACES {
        let s = match p {
            Place::State(s) => s,
            Place::ClosedEnd => TcpState::Closed,
        };
        // The start CLOSED counts as visited when a client left it; the end one when a
        // socket reached it.
        let visited = match p {
            Place::State(TcpState::Closed) => graph
                .edges_directed(TcpState::Closed, petgraph::Direction::Outgoing)
                .next()
                .is_some(),
            Place::ClosedEnd => graph
                .edges_directed(TcpState::Closed, petgraph::Direction::Incoming)
                .any(|(a, _, _)| ends(a, TcpState::Closed).1 == Place::ClosedEnd),
            Place::State(s) => g.visited(side, s),
        };
        let (x, y) = at(center(p));
        let (fill, stroke, text) = if visited {
            (state_color(s), state_color(s), "#ffffff")
        } else {
            ("#ffffff", FAINT, MUTED)
        };
        let _ = writeln!(
            out,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{BOX_W:.0}\" height=\"{BOX_H:.0}\" rx=\"6\" \
             fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"1.5\"/><text x=\"{x:.1}\" \
             y=\"{:.1}\" font-size=\"13\" font-weight=\"bold\" text-anchor=\"middle\" \
             fill=\"{text}\">{}</text>",
            x - BOX_W / 2.0,
            y - BOX_H / 2.0,
            y + 4.6,
            s.as_str()
        );
    }
}

/// The SVG rasterized with the embedded fonts, at twice its size.
pub fn render_png(g: &ObservedGraph, sides: Sides, title: &str) -> Result<Vec<u8>, String> {
    crate::render::diagram::png::rasterize(&render_svg(g, sides, title), 2.0)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use closewait_core::testkit::*;

    fn leak() -> ConnectionReport {
        let mut w = Wire::new();
        w.exchange()
            .wait(15.0)
            .send(S, FIN | ACK, 5201, 1101, 0)
            .send(C, ACK, 1101, 5202, 0);
        w.analyze_with_tail(100.0).remove(0)
    }

    #[test]
    fn leak_walks_close_wait_on_the_client_and_fin_wait_2_on_the_server() {
        let g = ObservedGraph::from_reports(&[leak(), leak()]);
        use TcpState::*;
        assert_eq!(g.count(Side::Client, Closed, SynSent), 2);
        assert_eq!(g.count(Side::Client, Established, CloseWait), 2);
        assert_eq!(g.count(Side::Client, CloseWait, LastAck), 0);
        assert_eq!(g.count(Side::Server, Listen, SynReceived), 2);
        assert_eq!(g.count(Side::Server, FinWait1, FinWait2), 2);
        assert_eq!(
            g.sockets,
            PerSide {
                client: 2,
                server: 2
            }
        );
        assert!(g.first_seen.client.is_empty());
    }

    #[test]
    fn every_rfc_edge_is_a_figure_edge() {
        let rfc = rfc_graph();
        assert_eq!(rfc.edge_count(), RFC_EDGES.len());
        assert!(rfc.contains_edge(TcpState::Established, TcpState::CloseWait));
        assert!(!rfc.contains_edge(TcpState::Established, TcpState::Closed));
        // Every state can be left for CLOSED through the figure, except from CLOSED itself.
        for s in TcpState::ALL {
            if s != TcpState::Closed {
                assert!(
                    petgraph::algo::has_path_connecting(&rfc, s, TcpState::Closed, None),
                    "{s}"
                );
            }
        }
    }

    #[test]
    fn dot_quotes_escape_quotes_backslashes_and_newlines() {
        assert_eq!(dot_quote("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
    }

    #[test]
    fn dot_has_counts_and_dotted_untaken_edges() {
        let g = ObservedGraph::from_reports(&[leak()]);
        let dot = render_dot(&g, Sides::Both, "t\"q");
        assert!(
            dot.contains("label = \"client ×1\\nrcv FIN / snd ACK\""),
            "{dot}"
        );
        assert!(dot.contains("style = dotted"), "{dot}");
        assert!(dot.contains("t\\\"q"), "{dot}");
        assert!(dot.trim_end().ends_with('}'));
    }

    #[test]
    fn routes_avoid_other_boxes() {
        for (a, b, _) in RFC_EDGES {
            let (from, to) = ends(*a, *b);
            let path = route(from, to, false);
            assert!(!path.hits_boxes([from, to]), "{a} → {b}");
        }
        use TcpState::*;
        for a in [
            Established,
            FinWait1,
            FinWait2,
            CloseWait,
            SynReceived,
            Closing,
            SynSent,
        ] {
            let (from, to) = ends(a, Closed);
            assert!(
                !route(from, to, false).hits_boxes([from, to]),
                "{a} → CLOSED"
            );
        }
    }
}
