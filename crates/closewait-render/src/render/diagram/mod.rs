//! Ladder (sequence) diagrams of one connection: the two figures of the seed article drawn
//! from a real capture. Client and server are vertical lifelines, each segment an arrow
//! between them, and each endpoint's RFC 9293 state is written beside its lifeline as it
//! changes.
//!
//! [`layout`] decides what is shown and where (one source for every format); each other
//! module turns that [`layout::Ladder`] into one format, with one entry point, chosen by
//! [`Format`]. Renderers read the report model only: the states are the ones the state
//! machine recorded for each segment, never recomputed here.

pub mod layout;
pub mod mermaid;
pub mod plantuml;
pub mod png;
pub mod svg;
pub mod text;

use closewait_core::model::ConnectionReport;
pub use layout::{Ladder, LadderError, LadderOptions, TimeAxis};
use std::path::Path;

/// An output format of `closewait diagram`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Svg,
    Png,
    Text,
    Mermaid,
    Plantuml,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::Svg,
        Format::Png,
        Format::Text,
        Format::Mermaid,
        Format::Plantuml,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Svg => "svg",
            Format::Png => "png",
            Format::Text => "text",
            Format::Mermaid => "mermaid",
            Format::Plantuml => "plantuml",
        }
    }

    /// The format a file name asks for by its extension (`.svg`, `.png`, `.txt`, `.mmd`,
    /// `.mermaid`, `.puml`, `.plantuml`, `.md`→mermaid).
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "svg" => Format::Svg,
            "png" => Format::Png,
            "txt" | "text" => Format::Text,
            "mmd" | "mermaid" => Format::Mermaid,
            "puml" | "plantuml" | "pu" => Format::Plantuml,
            _ => return None,
        })
    }

    /// Whether the output is binary (cannot go to a terminal).
    pub fn is_binary(self) -> bool {
        self == Format::Png
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase();
        Format::ALL
            .into_iter()
            .find(|f| f.as_str() == norm || (norm == "txt" && *f == Format::Text))
            .ok_or_else(|| {
                format!("unknown diagram format '{s}' (one of: svg, png, text, mermaid, plantuml)")
            })
    }
}

/// Options of the drawing itself, beyond what [`LadderOptions`] decides.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RenderOptions {
    pub ladder: LadderOptions,
    /// Text format: plain ASCII instead of Unicode box drawing.
    pub ascii: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DiagramError {
    #[error(transparent)]
    Ladder(#[from] LadderError),
    #[error("PNG rendering failed: {0}")]
    Png(String),
}

/// Draws one connection in one format.
pub fn render(
    report: &ConnectionReport,
    format: Format,
    opts: &RenderOptions,
) -> Result<Vec<u8>, DiagramError> {
    let ladder = layout::build(report, &opts.ladder)?;
    Ok(match format {
        Format::Svg => svg::render(&ladder, svg::Theme::Adaptive).into_bytes(),
        Format::Png => png::render(&ladder)?,
        Format::Text => text::render(&ladder, opts.ascii).into_bytes(),
        Format::Mermaid => mermaid::render(&ladder).into_bytes(),
        Format::Plantuml => plantuml::render(&ladder).into_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use closewait_core::testkit::*;

    /// The seed's first figure: the client closes first, the server answers with its FIN.
    fn client_closes_first() -> ConnectionReport {
        let mut w = Wire::new();
        w.exchange()
            .wait(0.02)
            .send(C, FIN | ACK, 1101, 5201, 0)
            .wait(0.04)
            .send(S, ACK, 5201, 1102, 0)
            .wait(0.17)
            .send(S, FIN | ACK, 5201, 1102, 0)
            .send(C, ACK, 1102, 5202, 0);
        w.analyze_with_tail(1.0).remove(0)
    }

    /// The seed's second figure: the server closes an idle keep-alive connection after 15 s,
    /// the client ACKs the FIN and never closes: CLOSE_WAIT until the capture ends 105 s on.
    fn server_idle_close_client_leak() -> ConnectionReport {
        let mut w = Wire::new();
        w.exchange()
            .wait(15.0)
            .send(S, FIN | ACK, 5201, 1101, 0)
            .wait(0.04)
            .send(C, ACK, 1101, 5202, 0);
        w.analyze_with_tail(105.0).remove(0)
    }

    fn all_formats(name: &str, r: &ConnectionReport) {
        let opts = RenderOptions::default();
        let text = String::from_utf8(render(r, Format::Text, &opts).unwrap()).unwrap();
        let mermaid = String::from_utf8(render(r, Format::Mermaid, &opts).unwrap()).unwrap();
        let puml = String::from_utf8(render(r, Format::Plantuml, &opts).unwrap()).unwrap();
        let svg = String::from_utf8(render(r, Format::Svg, &opts).unwrap()).unwrap();
        if let Some(dir) = std::env::var_os("CLOSEWAIT_DIAGRAM_DUMP") {
            let dir = std::path::PathBuf::from(dir);
            std::fs::write(dir.join(format!("{name}.txt")), &text).unwrap();
            std::fs::write(dir.join(format!("{name}.svg")), &svg).unwrap();
            let png = render(r, Format::Png, &opts).unwrap();
            std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
        }
        insta::assert_snapshot!(format!("{name}_text"), text);
        insta::assert_snapshot!(format!("{name}_mermaid"), mermaid);
        insta::assert_snapshot!(format!("{name}_plantuml"), puml);
        insta::assert_snapshot!(format!("{name}_svg"), svg);
    }

    #[test]
    fn seed_figure_1_client_closes_first() {
        all_formats("testkit_client_closes_first", &client_closes_first());
    }

    #[test]
    fn seed_figure_2_server_idle_close_client_leak() {
        let r = server_idle_close_client_leak();
        all_formats("testkit_server_idle_close_client_leak", &r);
        let text = String::from_utf8(render(&r, Format::Text, &RenderOptions::default()).unwrap())
            .unwrap();
        assert!(text.contains("… 15.0 s idle …"), "{text}");
        assert!(text.contains("… 105 s idle …"), "{text}");
        assert!(
            text.contains("client never sent its FIN: CLOSE_WAIT for 105 s"),
            "{text}"
        );
    }

    #[test]
    fn format_from_extension_and_name() {
        assert_eq!(Format::from_path(Path::new("a/b.SVG")), Some(Format::Svg));
        assert_eq!(
            Format::from_path(Path::new("x.puml")),
            Some(Format::Plantuml)
        );
        assert_eq!(Format::from_path(Path::new("x.mmd")), Some(Format::Mermaid));
        assert_eq!(Format::from_path(Path::new("x.txt")), Some(Format::Text));
        assert_eq!(Format::from_path(Path::new("x")), None);
        assert_eq!("PNG".parse::<Format>(), Ok(Format::Png));
        assert!("gif".parse::<Format>().is_err());
    }
}
