//! Large in-memory tables backed by 2 MiB pages where Linux allows it.
//!
//! A table of hundreds of megabytes read all over (a watershed's pixels) misses the TLB on
//! most reads with 4 KiB pages; transparent huge pages cut those misses by 512×. Debian's
//! default (`enabled = madvise`) gives them only to regions that ask. The price: with
//! `defrag = madvise`, the first touch of such a region may stall on memory compaction
//! (measured up to 0.8 s on a 480 MB table here), so ask only where random access dominates.

/// Asks Linux to back `buf`'s allocation (the whole pages of it not yet written) with 2 MiB
/// pages. A hint: ignored where transparent huge pages are off, and on other systems.
///
/// ```
/// let mut table: Vec<u64> = Vec::with_capacity(1 << 20);
/// cloud::mem::advise_huge_pages(&table);
/// table.resize(1 << 20, 0);
/// assert_eq!(table.len(), 1 << 20);
/// ```
pub fn advise_huge_pages<T>(buf: &Vec<T>) {
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let start = buf.as_ptr() as usize;
        let end = start + buf.capacity() * std::mem::size_of::<T>();
        let first = start.div_ceil(PAGE) * PAGE;
        if end > first + (2 << 20) {
            // SAFETY: madvise only changes how the kernel backs whole pages of this
            // allocation (`first..end` lies inside it); it never unmaps or changes contents.
            unsafe {
                libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buf;
}
