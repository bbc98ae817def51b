//! Connection table. (stub)
