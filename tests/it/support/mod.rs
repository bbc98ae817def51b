//! What more than one test module needs, written once: the `closewait` binary runner
//! ([`cli`]), shipped captures and scratch directories ([`paths`]), a hand-built TCP
//! segment ([`segment`]), and the Zeek corpus comparison ([`zeek_corpus`], shared with
//! `examples/zeek_compat.rs`).

pub mod cli;
pub mod paths;
pub mod segment;
pub mod zeek_corpus;
