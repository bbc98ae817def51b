//! Per-direction tracking and the RFC 9293 endpoint state machine. (stub)
