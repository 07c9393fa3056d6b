//! How the process's allocator hands large buffers back.
//!
//! A scan holds a few large buffers (the head of a file, a decompressed part) and frees them when it ends. glibc's
//! malloc serves buffers of 128 KiB and more with their own mappings, given back at `free`, but after the first such
//! free it raises that threshold to the freed size, so later large buffers come from heaps it keeps: measured on the
//! upload benchmark (`docs/uploads-benchmarks.md`), 14 to 22 MiB per scan stayed resident after it ended, and peaks
//! went past `max_concurrent_scans x max_scan_memory_bytes`. Fixing the threshold keeps large buffers in mappings
//! of their own, so a scan's memory is gone when the scan is.

/// Large buffers get mappings of their own, returned at once (glibc on Linux; elsewhere nothing to do).
pub fn return_large_buffers_at_once() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(
        unsafe_code,
        reason = "mallopt is glibc's documented knob; called once at start-up, before any thread is spawned"
    )]
    // SAFETY: mallopt only sets an allocator parameter; no pointer is involved.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}
