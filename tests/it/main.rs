//! closewait's integration tests, one binary: each module was once its own test binary
//! (`tests/X.rs`), and each link of the whole library and its dev-dependencies took longer
//! than the tests it ran. One binary links once; `cargo test --test it MODULE::` runs one
//! module (e.g. `cargo test --test it zeek_corpus::`).
//!
//! Helpers more than one module needs live in `support/`: the binary runner, the paths of
//! shipped captures and scratch directories, the hand-built `Segment`, the Zeek corpus.

mod support;

mod capture_end;
mod chart;
mod cli;
mod columnar;
mod corruption;
mod diagnose_captures;
mod diagnose_docs;
mod diagnose_server_side;
mod diagram;
mod docs;
mod flood;
mod hostile;
mod http_captures;
mod http_closes;
mod netstat;
mod report;
mod report_browser;
mod report_docs;
mod shared_args;
mod truth;
mod wireshark;
mod zeek_corpus;
mod zeek_kinds;
mod zeek_log;
