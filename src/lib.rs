//! closewait: reads tcpdump captures and tells how every TCP connection in them ended.
//!
//! Data flows one way, one module per stage:
//!
//! ```text
//! capture   bytes → packets (pcap, pcapng, gzip, stdin, several files merged)
//! decode    packet → Segment (link layer, IPv4/IPv6, TCP header)
//! flow      Segment → connection (4-tuple lifetimes, roles)
//! tcp       per-direction sequence tracking + the RFC 9293 endpoint state machine
//! classify  connection → Close verdict (kind, initiator, who failed to respond)
//! zeek      an independent Zeek-compatible conn_state/history
//! analyze   the pipeline glue: capture → ConnectionReport stream
//! model     the report model every renderer reads
//! filter    which connections to show (--host, --port, --kind, --state)
//! summary   aggregates over all connections (counts per kind, netstat-like tables)
//! diagnose  aggregates across connections into findings with advice (`closewait diagnose`)
//! render    text and JSON output
//! report    one self-contained HTML page: findings, tables, charts, ladders (`closewait report`)
//! netstat   saved netstat/ss output → which side this host is, per service (`closewait netstat`)
//! progress  the progress bar on stderr for long runs
//! cli       command-line parsing and wiring
//! ```

pub mod analyze;
pub mod capture;
pub mod chart_cmd;
pub mod classify;
pub mod cli;
pub mod decode;
pub mod diagnose;
pub mod diagnose_cmd;
pub mod diagram_cmd;
pub mod filter;
pub mod flow;
pub mod graph_cmd;
pub mod model;
pub mod netstat;
pub mod netstat_cmd;
pub mod output;
pub mod progress;
pub mod render;
pub mod report;
pub mod report_cmd;
pub mod second_pass;
pub mod segment;
pub mod state;
pub mod summary;
pub mod tcp;
pub mod worst;
pub mod zeek;

#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod testutil;
