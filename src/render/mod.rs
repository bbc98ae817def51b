//! Renderers. (stub)
pub mod diagram;
