//! `--from`/`--until`: the part of a capture to analyse, as `editcap -A/-B` would cut it.
//!
//! The window is applied to packets before they are decoded into the flow table, so a
//! narrow window over a huge capture costs the reading and no memory. It is half open:
//! a packet at exactly `until` is outside, so two adjacent windows share no packet.

use serde::Serialize;

/// Packets with `from <= ts < until` are analysed; an unset bound is open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeWindow {
    /// Epoch nanoseconds of the first moment analysed.
    pub from_ns: Option<i64>,
    /// Epoch nanoseconds of the first moment no longer analysed.
    pub until_ns: Option<i64>,
}

/// The window as the JSON `capture.window` shows it: epoch seconds, `null` when open.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct WindowStats {
    pub from: Option<f64>,
    pub until: Option<f64>,
}

impl TimeWindow {
    /// A window, or why it is empty (`from` at or after `until`).
    pub fn new(from_ns: Option<i64>, until_ns: Option<i64>) -> Result<TimeWindow, String> {
        if let (Some(from), Some(until)) = (from_ns, until_ns) {
            if from >= until {
                return Err(format!(
                    "--from ({}) must be before --until ({}): the window would hold no packet",
                    super::ns_to_secs(from),
                    super::ns_to_secs(until)
                ));
            }
        }
        Ok(TimeWindow { from_ns, until_ns })
    }

    pub fn is_set(&self) -> bool {
        self.from_ns.is_some() || self.until_ns.is_some()
    }

    /// True when a packet stamped `ts_ns` is analysed.
    #[inline]
    pub fn contains(&self, ts_ns: i64) -> bool {
        self.from_ns.is_none_or(|from| ts_ns >= from)
            && self.until_ns.is_none_or(|until| ts_ns < until)
    }

    /// The end of the capture seen through the window: `until` when the capture went on
    /// past it (connections still open at `until` are measured to it), else `end_ns`.
    pub fn clip_end(&self, end_ns: i64) -> i64 {
        match self.until_ns {
            Some(until) => end_ns.min(until),
            None => end_ns,
        }
    }

    pub(crate) fn stats(&self) -> WindowStats {
        WindowStats {
            from: self.from_ns.map(super::ns_to_secs),
            until: self.until_ns.map(super::ns_to_secs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_half_open() {
        let w = TimeWindow::new(Some(10), Some(20)).expect("valid");
        assert!(!w.contains(9));
        assert!(w.contains(10));
        assert!(w.contains(19));
        assert!(!w.contains(20), "a packet at exactly --until is outside");
        assert_eq!(w.clip_end(30), 20);
        assert_eq!(w.clip_end(15), 15);
    }

    #[test]
    fn empty_window_is_refused() {
        assert!(TimeWindow::new(Some(20), Some(20)).is_err());
        assert!(TimeWindow::new(Some(21), Some(20)).is_err());
        let open = TimeWindow::new(None, Some(5)).expect("valid");
        assert!(open.contains(i64::MIN) && open.is_set());
        assert!(!TimeWindow::default().is_set());
    }
}
