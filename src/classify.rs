//! Close classification. (stub)
