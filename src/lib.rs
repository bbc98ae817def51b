//! closewait: reads tcpdump captures and tells how every TCP connection in them ended.
//!
//! The work is done by two library crates, one per layer; this crate is the command line
//! on top of them (see ARCHITECTURE.md). Each layer depends only on the ones below it, so
//! a back-edge does not compile:
//!
//! ```text
//! closewait-core    capture   bytes → packets (pcap, pcapng, gzip, stdin, several files merged)
//!                   decode    packet → Segment (link layer, IPv4/IPv6, TCP header)
//!                   flow      Segment → connection (4-tuple lifetimes, roles)
//!                   tcp       per-direction sequence tracking + the RFC 9293 state machine
//!                   classify  connection → Close verdict (kind, initiator, who failed to respond)
//!                   zeek      an independent Zeek-compatible conn_state/history
//!                   analyze   the pipeline glue: capture → ConnectionReport stream
//!                   model     the report model every renderer reads
//!                   filter    which connections to show (--host, --port, --kind, --state)
//!                   summary   aggregates over all connections (counts per kind, netstat-like tables)
//! closewait-render  diagnose  connections → findings with advice (`closewait diagnose`)
//!                   netstat   saved netstat/ss output → which side this host is, per service
//!                   render    every format: text, JSON, JSONL, Zeek log, ladder diagrams,
//!                             charts, graph, a diagnosis as text, JSON or Markdown
//!                   report    one self-contained HTML page (`closewait report`)
//! closewait         cli       one file per command, the shared arguments, the output files,
//!                             the progress bar; src/main.rs only calls `cli::main`
//! ```
//!
//! The layers' modules are re-exported here under their old paths (`closewait::analyze`,
//! `closewait::render`…), so code written against the single crate keeps compiling.

pub use closewait_core::{
    analyze, capture, classify, decode, explain, filter, flow, http, model, reassembly,
    second_pass, seconds, segment, state, summary, tcp, worst, zeek,
};
pub use closewait_render::{netstat, render, report};

/// Diagnosis, with its renderers under their old path (`closewait::diagnose::render`);
/// they live in `closewait_render::render::diagnosis` with the other output formats.
pub mod diagnose {
    pub use closewait_render::diagnose::*;
    pub use closewait_render::render::diagnosis as render;
}

pub mod cli;

/// The commands under their old module names (`closewait::chart_cmd`…).
pub use cli::{
    chart as chart_cmd, diagram as diagram_cmd, graph as graph_cmd, netstat as netstat_cmd,
    report as report_cmd,
};

/// `closewait diagnose` under its old module name, with the capture readers it held (now
/// shared by every command in `cli::read`).
pub mod diagnose_cmd {
    pub use crate::cli::diagnose::*;
    pub use crate::cli::read::{
        example_ids, inputs, read, read_diagnosis, read_examples, SegmentKeeper, BUDGET_SEGMENTS,
    };
    pub use crate::cli::FailOn;
}
/// The output files and the progress bar under their old paths.
pub use cli::{output, progress};
