//! Aggregates across connections. (stub)
