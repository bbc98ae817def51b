//! A progress bar on standard error for long runs.
//!
//! Shown only when standard error is a terminal and the input has taken more than a second
//! (short runs stay quiet, redirected stderr never gets escape codes); it never touches
//! standard output, so JSON and text output are the same with or without it. The bar
//! follows bytes read when the inputs' sizes are known, else counts packets.

use closewait_core::analyze::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How long a run goes before a bar appears.
const SHOW_AFTER: Duration = Duration::from_secs(1);

/// Feeds a bar from [`Progress`] reports; does nothing when stderr is not a terminal.
pub struct StderrProgress {
    enabled: bool,
    started: Instant,
    bar: Option<ProgressBar>,
}

impl StderrProgress {
    /// A bar for standard error, enabled only when it is a terminal.
    pub fn new() -> Self {
        StderrProgress {
            enabled: std::io::stderr().is_terminal(),
            started: Instant::now(),
            bar: None,
        }
    }

    /// One progress report from the analysis.
    pub fn update(&mut self, p: Progress) {
        if !self.enabled {
            return;
        }
        if self.bar.is_none() {
            if self.started.elapsed() < SHOW_AFTER {
                return;
            }
            self.bar = Some(make_bar(p.total_bytes));
        }
        if let Some(bar) = &self.bar {
            match p.total_bytes {
                Some(_) => bar.set_position(p.bytes_read),
                None => bar.set_position(p.packets),
            }
        }
    }

    /// Removes the bar (the output that follows starts on a clean line).
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Default for StderrProgress {
    fn default() -> Self {
        StderrProgress::new()
    }
}

impl Drop for StderrProgress {
    fn drop(&mut self) {
        self.finish();
    }
}

fn make_bar(total: Option<u64>) -> ProgressBar {
    let (bar, template) = match total {
        Some(len) => (
            ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr()),
            "{spinner} reading {bytes}/{total_bytes} [{wide_bar}] {percent}% {bytes_per_sec}, {eta} left",
        ),
        None => (
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
            "{spinner} reading: {pos} packets ({per_sec})",
        ),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_bar_when_stderr_is_not_a_terminal_or_before_a_second() {
        let mut p = StderrProgress {
            enabled: false,
            started: Instant::now() - Duration::from_secs(5),
            bar: None,
        };
        p.update(Progress {
            bytes_read: 10,
            total_bytes: Some(100),
            packets: 1,
        });
        assert!(p.bar.is_none(), "disabled: never a bar");
        let mut p = StderrProgress {
            enabled: true,
            started: Instant::now(),
            bar: None,
        };
        p.update(Progress::default());
        assert!(p.bar.is_none(), "quiet during the first second");
    }

    #[test]
    fn bar_follows_bytes_once_a_second_has_passed() {
        let mut p = StderrProgress {
            enabled: true,
            started: Instant::now() - Duration::from_secs(2),
            bar: None,
        };
        // Draw into a hidden target so the test writes nothing to the terminal.
        p.update(Progress {
            bytes_read: 40,
            total_bytes: Some(100),
            packets: 3,
        });
        let bar = p.bar.as_ref().expect("a bar after a second");
        bar.set_draw_target(ProgressDrawTarget::hidden());
        assert_eq!(bar.position(), 40);
        assert_eq!(bar.length(), Some(100));
        p.finish();
        assert!(p.bar.is_none());
    }
}
