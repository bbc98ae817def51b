//! JSON: the [`Diagnosis`] as documented in docs/json.md.

use crate::diagnose::Diagnosis;
use closewait_core::capture::CaptureStats;
use serde::Serialize;

/// The document: its `schema_version`, what was read (as `analyze --json` has it), then the diagnosis.
#[derive(Serialize)]
struct Document<'a> {
    schema_version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    capture: Option<&'a CaptureStats>,
    #[serde(flatten)]
    diagnosis: &'a Diagnosis,
}

/// Pretty-printed JSON with a trailing newline; `capture` becomes the `capture` block.
pub fn render(d: &Diagnosis, capture: Option<&CaptureStats>) -> String {
    let doc = Document {
        schema_version: crate::render::SCHEMA_VERSION,
        capture,
        diagnosis: d,
    };
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_else(|e| {
        // The model holds only strings, numbers and maps with string keys.
        format!("{{\"error\": \"{e}\"}}")
    });
    s.push('\n');
    s
}
