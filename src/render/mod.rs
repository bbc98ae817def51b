//! Renderers. (stub)
