//! Progress reporting: an indicatif bar on a terminal, tracing events elsewhere (Lambda, Batch).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressStyle};

/// How a [`Progress`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// A bar on standard error (only when it is a terminal).
    Bar,
    /// `tracing` info events at every tenth of the work.
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

/// A counter of work done out of a known total.
pub struct Progress {
    what: String,
    total: u64,
    done: AtomicU64,
    last_decile: AtomicU64,
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
            last_decile: AtomicU64::new(0),
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
            let decile = (done * 10 / self.total).min(10);
            if self.last_decile.fetch_max(decile, Ordering::Relaxed) < decile {
                tracing::info!(what = %self.what, done, total = self.total, "progress");
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
