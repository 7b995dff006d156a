//! The allocator's start-up setting: keep freed memory committed for reuse.
//!
//! The binary allocates through mimalloc (candle allocates a buffer per op; glibc's malloc
//! page-faults on large ones, `../shared/PERFORMANCE_NOTES.md`). By default mimalloc (v3) returns
//! freed memory to the OS a second after it was freed ("purging"), and the kernel zeroes it again
//! on the next touch. Second-order meta-gradients allocate and free gigabytes per MB-MPO meta
//! step: with purging, 37% of a profile was the kernel clearing pages, and two half-cheetah meta
//! steps took 40 s of system time; without it, 13 s (docs/performance.md). Peak memory is the
//! same either way (mimalloc still reuses freed memory; it just does not hand it back).
//!
//! `MIMALLOC_PURGE_DELAY` in the environment (milliseconds, `-1` never) still wins.

/// mimalloc v3's `mi_option_purge_delay` (`mimalloc.h`, `mi_option_e`); `libmimalloc-sys`
/// exports no constant for it. The unit test below checks the index against its default.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Turns purging off unless `MIMALLOC_PURGE_DELAY` is set. Call at the start of `main`.
#[allow(unsafe_code)]
pub fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: `mi_option_set` stores one integer in mimalloc's option table (its documented
        // run-time API); any value is valid for this option.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(unsafe_code)]
    fn purge_delay() -> std::os::raw::c_long {
        // SAFETY: reads one integer from mimalloc's option table.
        unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }
    }

    /// The option index is the purge delay: its default in mimalloc v3 is 1000 ms, and the
    /// setter turns it off; a user's `MIMALLOC_PURGE_DELAY` (read by mimalloc at start-up) is
    /// left as mimalloc read it.
    #[test]
    fn the_index_is_the_purge_delay_and_the_setter_disables_purging_unless_the_user_set_it() {
        let before = purge_delay();
        keep_freed_memory();
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(before, 1000);
            assert_eq!(purge_delay(), -1);
        } else {
            assert_eq!(
                purge_delay(),
                before,
                "the user's MIMALLOC_PURGE_DELAY must win"
            );
        }
    }
}
