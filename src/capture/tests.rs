//! Capture reader tests.
