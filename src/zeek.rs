//! Zeek-compatible conn_state and history. (stub)
