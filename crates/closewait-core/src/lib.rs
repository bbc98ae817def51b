//! closewait-core: reads tcpdump captures and works out how every TCP connection in them
//! ended. The bottom layer of closewait (see ARCHITECTURE.md): it knows packets, TCP and
//! the report model, and nothing of output formats, findings or the command line: those
//! live in `closewait-render` and the `closewait` binary, which depend on this crate and
//! never the other way round.
//!
//! Data flows one way, one module per stage:
//!
//! ```text
//! capture   bytes → packets (pcap, pcapng, gzip, stdin, several files merged)
//! decode    packet → Segment (link layer, IPv4/IPv6, TCP header)
//! flow      Segment → connection (4-tuple lifetimes, roles)
//! http      reassembled bytes → HTTP/1.x conversation (requests, statuses, keep-alive)
//! tcp       per-direction sequence tracking + the RFC 9293 endpoint state machine
//! classify  connection → Close verdict (kind, initiator, who failed to respond)
//! http_close  Close verdict + HTTP conversation → why, in HTTP's terms (announced, idle timeout, …)
//! zeek      an independent Zeek-compatible conn_state/history
//! reassembly  one direction's segments → its byte stream in order, gaps said (not yet used)
//! analyze   the pipeline glue: capture → ConnectionReport stream
//! model     the report model every renderer reads
//! filter    which connections to show (--host, --port, --kind, --state)
//! summary   aggregates over all connections (counts per kind, netstat-like tables)
//! worst     which connection is the worst one of a kind (diagram --worst)
//! second_pass  re-reads only the drawn connections' packets (diagram --worst, report)
//! export    copies chosen connections' packets into a new pcap/pcapng (--write-pcap)
//! ```

pub mod analyze;
pub mod capture;
pub mod classify;
pub mod decode;
pub mod explain;
pub mod export;
pub mod filter;
pub mod flow;
pub mod http;
pub mod http_close;
pub mod model;
pub mod reassembly;
pub mod second_pass;
pub mod seconds;
pub mod segment;
pub mod state;
pub mod summary;
pub mod tcp;
pub mod worst;
pub mod zeek;

/// Hand-built segments run through the real pipeline, for unit tests here and in the
/// crates above (feature `testkit`).
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
/// Hand-built [`model::ConnectionReport`]s, for unit tests here and in the crates above
/// (feature `testkit`).
#[cfg(any(test, feature = "testkit"))]
pub mod testutil;
