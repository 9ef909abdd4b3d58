//! Peak resident set size of this process (Linux `/proc`), for task status records.

/// Peak RSS (`VmHWM`) in bytes, or `None` where `/proc` is unavailable.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Resets the peak RSS to the current RSS (Linux ≥ 4.0), so that a long-lived process (a warm
/// Lambda) reports each task's own peak. Best effort: failures are ignored.
pub fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
