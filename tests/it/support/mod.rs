//! What more than one test module needs, written once: the `closewait` binary runner
//! ([`cli`]), shipped captures and scratch directories ([`paths`]), and the Zeek corpus
//! comparison ([`zeek_corpus`], shared with `examples/zeek_compat.rs`). Hand-built segments
//! come from `closewait_core::testkit`, the one builder the unit tests use too.

pub mod cli;
pub mod paths;
pub mod zeek_corpus;
