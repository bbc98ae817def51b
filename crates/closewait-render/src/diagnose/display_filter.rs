//! A finding's connections as a Wireshark display filter: `tcp.stream in {1..9, 11, 13..45}`.
//!
//! Made here, once for every kind of finding, from its `evidence` (so a new finding gets
//! one without asking): the text renderer prints it and the JSON document carries it as
//! `display_filter`. A connection's id is Wireshark's `tcp.stream` index when closewait
//! reads one whole file (see `ConnectionReport::id`; docs/diagnose.md says when the two
//! can differ).
//!
//! Syntax: Wireshark's set membership with ranges (`a..b`), elements separated by commas
//! (whitespace alone was deprecated in Wireshark 3.6 and is a syntax error from 4.0).
//! Consecutive ids become one range, so a finding about most connections of a capture
//! stays short.

use super::Finding;
use serde::{Serialize, Serializer};

/// The filter for `ids` (ascending), with at most `max_terms` elements (single ids or
/// ranges; 0 means no limit), and how many of the ids it covers. `None` for no ids.
pub fn stream_filter(ids: &[u64], max_terms: usize) -> Option<(String, usize)> {
    let mut terms: Vec<String> = Vec::new();
    let mut covered = 0;
    for (first, last, len) in runs(ids) {
        if max_terms > 0 && terms.len() == max_terms {
            break;
        }
        terms.push(match last - first {
            0 => first.to_string(),
            // Two ids read better as two elements than as a range.
            1 => format!("{first}, {last}"),
            _ => format!("{first}..{last}"),
        });
        covered += len;
    }
    if terms.is_empty() {
        return None;
    }
    Some((format!("tcp.stream in {{{}}}", terms.join(", ")), covered))
}

/// Runs of consecutive ids: (first, last, how many ids), ascending; repeated ids count once.
fn runs(ids: &[u64]) -> impl Iterator<Item = (u64, u64, usize)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let first = *ids.get(i)?;
        let (mut last, mut len) = (first, 0);
        while let Some(&id) = ids.get(i) {
            if id == last || id == last + 1 {
                if id != last || len == 0 {
                    len += 1;
                }
                last = id;
                i += 1;
            } else {
                break;
            }
        }
        Some((first, last, len))
    })
}

impl Finding {
    /// The Wireshark display filter that shows every connection of `evidence`; `None`
    /// when the finding lists none (`all_clear`).
    pub fn display_filter(&self) -> Option<String> {
        stream_filter(&self.evidence, 0).map(|(filter, _)| filter)
    }
}

/// Serialises the findings each with its `display_filter` (after its own fields), so
/// that every finding kind has it in JSON without carrying it.
pub(crate) fn with_filters<S: Serializer>(findings: &[Finding], s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct WithFilter<'a> {
        #[serde(flatten)]
        finding: &'a Finding,
        display_filter: Option<String>,
    }
    s.collect_seq(findings.iter().map(|finding| WithFilter {
        finding,
        display_filter: finding.display_filter(),
    }))
}

#[cfg(test)]
mod tests {
    use super::stream_filter;

    #[test]
    fn consecutive_ids_become_ranges_and_pairs_stay_apart() {
        let (f, n) = stream_filter(&[1, 2, 3, 4, 6, 7, 9, 11, 12, 13], 0).unwrap();
        assert_eq!(f, "tcp.stream in {1..4, 6, 7, 9, 11..13}");
        assert_eq!(n, 10);
    }

    #[test]
    fn a_single_connection_is_a_set_of_one() {
        assert_eq!(
            stream_filter(&[5], 0),
            Some(("tcp.stream in {5}".to_string(), 1))
        );
        assert_eq!(stream_filter(&[], 0), None);
    }

    #[test]
    fn repeated_ids_count_once() {
        let (f, n) = stream_filter(&[3, 3, 4, 4, 8], 0).unwrap();
        assert_eq!(f, "tcp.stream in {3, 4, 8}");
        assert_eq!(n, 3);
    }

    #[test]
    fn capped_filter_says_how_many_ids_it_covers() {
        let ids: Vec<u64> = (0..100).map(|i| i * 2).collect();
        let (f, n) = stream_filter(&ids, 50).unwrap();
        assert_eq!(n, 50);
        assert!(f.ends_with(", 98}"), "{f}");
    }
}
