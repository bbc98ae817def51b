//! JSON: the [`Diagnosis`] as documented in docs/json.md.

use crate::diagnose::Diagnosis;

/// Pretty-printed JSON with a trailing newline.
pub fn render(d: &Diagnosis) -> String {
    let mut s = serde_json::to_string_pretty(d).unwrap_or_else(|e| {
        // The model holds only strings, numbers and maps with string keys.
        format!("{{\"error\": \"{e}\"}}")
    });
    s.push('\n');
    s
}
