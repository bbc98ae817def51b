//! Compact JSON re-indented the way `serde_json::to_writer_pretty` writes it.
//!
//! `--json` is one pretty-printed document of every connection. Serialising it with
//! serde_json's pretty printer costs about 18 instructions a byte (a call per key,
//! colon and indentation); the connections are already written as compact JSON by
//! [`super::json_line`] for `--jsonl`, several times faster, and compact JSON turns into
//! the pretty form by one pass over its bytes. Compact serde_json output has no
//! whitespace outside strings, so the pass only needs to know where strings are.
//!
//! serde_json's pretty form: two spaces per level; a newline and the indentation
//! before every member of an array or object and before its closing bracket; `": "`
//! between a key and its value; empty arrays and objects stay `[]` and `{}`.

use std::io::{self, Write};

/// A writer that takes compact JSON (in pieces of any size) and passes it on pretty.
pub struct Pretty<W: Write> {
    out: W,
    buf: Vec<u8>,
    depth: usize,
    in_string: bool,
    /// The previous byte inside a string was a backslash.
    escaped: bool,
    /// An array or object was just opened: a newline is due before its first member,
    /// unless it closes at once.
    opened: bool,
}

/// Bytes written out at a time.
const CHUNK: usize = 64 * 1024;

impl<W: Write> Pretty<W> {
    pub fn new(out: W) -> Self {
        Pretty {
            out,
            buf: Vec::with_capacity(CHUNK + 4096),
            depth: 0,
            in_string: false,
            escaped: false,
            opened: false,
        }
    }

    /// Writes what is buffered, and hands back the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(self.out)
    }

    /// Re-indents `json`, a piece of compact JSON continuing what came before.
    fn push(&mut self, json: &[u8]) {
        // State in locals while the loop runs (stored back at the end).
        let buf = &mut self.buf;
        let mut depth = self.depth;
        let mut opened = self.opened;
        let mut i = 0;
        if self.in_string {
            match string_end(json, 0, self.escaped) {
                Ok(end) => {
                    buf.extend_from_slice(&json[..end]);
                    i = end;
                    self.in_string = false;
                    self.escaped = false;
                }
                Err(escaped) => {
                    buf.extend_from_slice(json);
                    self.escaped = escaped;
                    return;
                }
            }
        }
        while i < json.len() {
            let b = json[i];
            i += 1;
            if opened && b != b']' && b != b'}' {
                opened = false;
                new_line(buf, depth);
            }
            match b {
                b'"' => match string_end(json, i, false) {
                    Ok(end) => {
                        buf.extend_from_slice(&json[i - 1..end]);
                        i = end;
                    }
                    Err(escaped) => {
                        // The string goes on in the next piece.
                        buf.extend_from_slice(&json[i - 1..]);
                        self.in_string = true;
                        self.escaped = escaped;
                        i = json.len();
                    }
                },
                b'{' | b'[' => {
                    buf.push(b);
                    depth += 1;
                    opened = true;
                }
                b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    if opened {
                        opened = false;
                    } else {
                        new_line(buf, depth);
                    }
                    buf.push(b);
                }
                b',' => {
                    buf.push(b',');
                    new_line(buf, depth);
                }
                b':' => buf.extend_from_slice(b": "),
                _ => {
                    // A number or a literal: copy it whole.
                    let start = i - 1;
                    i = find_any(json, i, [b',', b'}', b']', b':']);
                    buf.extend_from_slice(&json[start..i]);
                }
            }
        }
        self.depth = depth;
        self.opened = opened;
    }
}

/// A newline and `depth` levels of indentation.
#[inline]
fn new_line(buf: &mut Vec<u8>, depth: usize) {
    const SPACES: &[u8; 64] = &[b' '; 64];
    buf.push(b'\n');
    let mut width = 2 * depth;
    while width > SPACES.len() {
        buf.extend_from_slice(SPACES);
        width -= SPACES.len();
    }
    buf.extend_from_slice(&SPACES[..width]);
}

/// Where the string whose contents start at `json[from]` ends (just past its closing
/// quote), or, when it goes on past `json`, whether `json` ends inside an escape.
#[inline]
fn string_end(json: &[u8], from: usize, escaped: bool) -> Result<usize, bool> {
    let mut i = from;
    if escaped {
        if i == json.len() {
            return Err(true);
        }
        i += 1;
    }
    loop {
        i = find_any(json, i, [b'"', b'\\']);
        if i == json.len() {
            return Err(false);
        }
        if json[i] == b'"' {
            return Ok(i + 1);
        }
        if i + 1 == json.len() {
            return Err(true);
        }
        i += 2;
    }
}

/// The index of the first byte of `json` from `from` on that is one of `stops`, or
/// `json.len()`; eight bytes at a time.
#[inline]
fn find_any<const N: usize>(json: &[u8], mut from: usize, stops: [u8; N]) -> usize {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    while let Some(eight) = json.get(from..from + 8) {
        let word = u64::from_le_bytes(eight.try_into().expect("eight bytes"));
        let mut hits = 0;
        for stop in stops {
            // The high bit of each byte equal to `stop` (bytes above the first match may
            // be marked wrongly; the lowest mark is exact).
            let diff = word ^ (ONES * u64::from(stop));
            hits |= diff.wrapping_sub(ONES) & !diff & HIGHS;
        }
        if hits != 0 {
            return from + (hits.trailing_zeros() / 8) as usize;
        }
        from += 8;
    }
    while from < json.len() && !stops.contains(&json[from]) {
        from += 1;
    }
    from
}

impl<W: Write> Write for Pretty<W> {
    fn write(&mut self, json: &[u8]) -> io::Result<usize> {
        self.write_all(json)?;
        Ok(json.len())
    }

    fn write_all(&mut self, json: &[u8]) -> io::Result<()> {
        self.push(json);
        if self.buf.len() >= CHUNK {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pretty_of(compact: &[u8], piece: usize) -> String {
        let mut p = Pretty::new(Vec::new());
        for chunk in compact.chunks(piece) {
            p.write_all(chunk).unwrap();
        }
        String::from_utf8(p.finish().unwrap()).unwrap()
    }

    #[test]
    fn matches_serde_pretty_in_pieces_of_any_size() {
        let value = json!({
            "id": 7,
            "empty_list": [],
            "empty_map": {},
            "nested": [[], [1, 2.5, -3e-7], {"a": null, "b": true, "c": false}],
            "tricky strings": ["", "a,b:c", "{[}]", "quote \" inside", "back\\slash\\", "\\\"", "tab\t nl\n", "ünïcödé ✓", "\u{1}"],
            "deep": {"x": {"y": {"z": [{"w": "end"}]}}},
            "float": 1796157203.7553139,
        });
        let compact = serde_json::to_vec(&value).unwrap();
        let expected = serde_json::to_string_pretty(&value).unwrap();
        for piece in [1, 2, 3, 7, 64, compact.len()] {
            assert_eq!(
                pretty_of(&compact, piece),
                expected,
                "pieces of {piece} bytes"
            );
        }
    }

    #[test]
    fn find_any_finds_the_first_stop_in_words_and_in_the_tail() {
        let text = b"abcdefgh,ijklmnopq:rs}";
        assert_eq!(find_any(text, 0, [b',', b':']), 8);
        assert_eq!(find_any(text, 9, [b',', b':']), 18);
        assert_eq!(find_any(text, 19, [b',', b':']), text.len());
        assert_eq!(find_any(text, 19, [b'}']), 21);
        // A byte that differs from a stop by one bit is not a stop.
        assert_eq!(find_any(b"\x01\x81#\"\xa2\"ab", 0, [b'"']), 3);
    }

    #[test]
    fn deeper_than_the_indentation_buffer() {
        let text = format!("{}1{}", "[".repeat(40), "]".repeat(40));
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            pretty_of(text.as_bytes(), 5),
            serde_json::to_string_pretty(&value).unwrap()
        );
    }

    #[test]
    fn top_level_scalars_and_empty_containers() {
        for value in [json!(null), json!(12), json!("s"), json!([]), json!({})] {
            let compact = serde_json::to_vec(&value).unwrap();
            assert_eq!(
                pretty_of(&compact, 3),
                serde_json::to_string_pretty(&value).unwrap()
            );
        }
    }
}
