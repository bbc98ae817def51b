//! `closewait report`: one self-contained HTML file to attach to a ticket.
//!
//! Everything a reader needs is in the file: the findings of `closewait diagnose`, the
//! netstat-like end-state table of `closewait analyze`, the charts, and the ladder diagram
//! of each finding's most representative connection, drawn inline as SVG. The page loads
//! nothing (no stylesheet, font, image or script from anywhere), reads without JavaScript,
//! prints on paper (a print stylesheet), and escapes every string that came from the
//! capture.
//!
//! This module only assembles and renders: the caller (the `report` command) reads the
//! capture, diagnoses, and hands over the reports of the example connections with their
//! segments recorded. Nothing here re-runs the analysis, so the page can never disagree
//! with `closewait diagnose` on the same capture.

pub mod html;

use crate::diagnose::Diagnosis;
use crate::render::diagram::{layout, svg, LadderOptions};
use closewait_core::capture::CaptureStats;
use closewait_core::model::ConnectionReport;
use closewait_core::summary::Summary;
use std::collections::BTreeMap;

/// A chart of `closewait chart` ([`crate::render::chart`]), placed in the page as drawn.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    /// Heading above the chart.
    pub title: String,
    /// One sentence under it: what to look at.
    pub caption: String,
    /// A complete `<svg>` element; empty when the chart could not be drawn (the caption
    /// says why).
    pub svg: String,
}

/// A ladder diagram of one connection, or why there is none.
#[derive(Clone, Debug, PartialEq)]
pub enum Ladder {
    /// A complete `<svg>` element.
    Svg(String),
    /// Why it could not be drawn (no segments recorded, an empty connection…).
    Missing(String),
}

/// Everything the page shows.
#[derive(Clone, Debug)]
pub struct Report<'a> {
    /// What the page is about: the capture file name(s).
    pub title: String,
    pub capture: &'a CaptureStats,
    pub diagnosis: &'a Diagnosis,
    /// Over all connections of the capture.
    pub summary: &'a Summary,
    /// Per example connection id.
    pub ladders: BTreeMap<u64, Ladder>,
    pub charts: Vec<Chart>,
    /// Connection ids listed per finding.
    pub max_ids: usize,
}

/// The ladder of one connection as an inline SVG element for the page: light theme (the
/// page is light and printable; the adaptive theme's `<style>` would leak into the whole
/// page) and element ids made unique per connection, since one page holds several.
pub fn ladder_svg(r: &ConnectionReport, capture_end: Option<f64>) -> Ladder {
    if r.segments.is_none() {
        return Ladder::Missing("its segments were not recorded".to_string());
    }
    let opts = LadderOptions {
        capture_end,
        ..LadderOptions::default()
    };
    match layout::build(r, &opts) {
        Ok(ladder) => {
            let svg = svg::render(&ladder, svg::Theme::Light);
            let id = r.id;
            Ladder::Svg(
                svg.replace(
                    "\"cw-title cw-desc\"",
                    &format!("\"cw-title-{id} cw-desc-{id}\""),
                )
                .replace("id=\"cw-title\"", &format!("id=\"cw-title-{id}\""))
                .replace("id=\"cw-desc\"", &format!("id=\"cw-desc-{id}\"")),
            )
        }
        Err(e) => Ladder::Missing(e.to_string()),
    }
}
