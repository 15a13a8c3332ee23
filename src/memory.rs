//! Allocator settings for the training loop.
//!
//! Every training step allocates and frees the same few hundred activation
//! and gradient buffers (dfdx 0.13 allocates a fresh gradient buffer per
//! tensor per step). With glibc's defaults, buffers over 128 KiB come from
//! `mmap` and freed heap tops are trimmed, so each step pays page faults and
//! the kernel's page zeroing again: about 15 % of a step on the baby config.
//! Keeping freed memory in the process (it is reused by the next step, so
//! the peak resident size does not grow) removes that.

/// Applies the settings above (glibc on Linux; elsewhere nothing to do).
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before
    // any other thread exists.
    unsafe {
        // Serve buffers up to 32 MiB (glibc's maximum) from the heap, and
        // keep up to 256 MiB of freed heap top instead of returning it.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TOP_PAD, 16 << 20);
    }
}
