//! Progress reporting: an indicatif bar on a terminal, tracing events elsewhere (Lambda, Batch).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How a [`Progress`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// A bar on standard error (only when it is a terminal).
    Bar,
    /// A `tracing` info event every few seconds ([`LOG_INTERVAL`]) and at the end.
    Log,
    /// Nothing.
    Silent,
}

impl ProgressMode {
    /// A bar on a terminal, log events otherwise.
    pub fn detect() -> Self {
        if std::io::stderr().is_terminal() {
            ProgressMode::Bar
        } else {
            ProgressMode::Log
        }
    }
}

/// Time between two progress lines when standard error is not a terminal.
pub const LOG_INTERVAL: Duration = Duration::from_secs(5);

/// A counter of work done out of a known total.
pub struct Progress {
    what: String,
    total: u64,
    done: AtomicU64,
    started: Instant,
    /// Milliseconds after `started` of the last progress line.
    last_log_ms: AtomicU64,
    bar: Option<ProgressBar>,
    log: bool,
}

impl Progress {
    /// Starts reporting `total` units of `what`.
    pub fn new(mode: ProgressMode, what: &str, total: u64) -> Self {
        let bar = (mode == ProgressMode::Bar).then(|| {
            let bar = ProgressBar::new(total);
            let style = ProgressStyle::with_template(
                "{msg:>12} [{elapsed_precise}] {wide_bar} {pos}/{len} ({eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_message(what.to_string());
            bar
        });
        Progress {
            what: what.to_string(),
            total,
            done: AtomicU64::new(0),
            started: Instant::now(),
            last_log_ms: AtomicU64::new(0),
            bar,
            log: mode == ProgressMode::Log,
        }
    }

    /// Records `n` more units done.
    pub fn inc(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
        if self.log && self.total > 0 {
            let now_ms = self.started.elapsed().as_millis() as u64;
            let last = self.last_log_ms.load(Ordering::Relaxed);
            let due = now_ms.saturating_sub(last) >= LOG_INTERVAL.as_millis() as u64;
            let last_unit = done >= self.total && done - n < self.total;
            if (due || last_unit)
                && self
                    .last_log_ms
                    .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                tracing::info!(
                    what = %self.what,
                    done,
                    total = self.total,
                    elapsed_s = now_ms / 1000,
                    "progress"
                );
            }
        }
    }

    /// Units done so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Ends the bar (leaving it on screen).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar
            && !bar.is_finished()
        {
            bar.abandon();
        }
    }
}
