//! closewait-render: the middle layer of closewait (see ARCHITECTURE.md). It reads what
//! `closewait-core` produced (the [`closewait_core::model`] report of each connection and
//! the capture's statistics) and turns it into findings and output. It never reads a
//! capture packet by packet nor re-runs the state machine, and it knows nothing of the
//! command line: files, exit statuses and argument parsing are the binary's.
//!
//! ```text
//! diagnose  [ConnectionReport] → Diagnosis (findings with evidence and advice) → text, JSON, Markdown
//! netstat   saved netstat/ss output → which side this host is, per service
//! render    one report model → text, JSON, JSONL, Zeek conn.log, ladder diagrams (text,
//!           Mermaid, PlantUML, SVG, PNG), charts, the state-machine graph
//! report    one self-contained HTML page: findings, tables, charts, ladders
//! ```

pub mod diagnose;
pub mod netstat;
pub mod render;
pub mod report;
