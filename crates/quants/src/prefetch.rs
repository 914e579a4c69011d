//! Software prefetch for the mat-vec row loop.
//!
//! A decoded token streams every weight once, and one core's hardware prefetchers keep too
//! few cache-line misses in flight to reach the memory's bandwidth (measured on this Xeon:
//! ~6 GB/s per thread on SmolLM2's weights against a 12 GB/s single-thread read). Asking for
//! the lines [`AHEAD`] bytes past the rows being multiplied, a group of rows at a time, took
//! SmolLM2 Q4_1's decode from ~62 to ~80 tok/s on one thread and from ~104 to ~130 tok/s on
//! two (`localglm bench glm`). A hint only: no load, no fault, nothing past the slice.

/// How far ahead of the rows being multiplied the lines are asked for (measured on two
/// threads: 4 KiB best; 8 KiB and 16 KiB less, 2 KiB a little less).
pub(crate) const AHEAD: usize = 4096;

/// Rows are taken in groups of about this many bytes (at least one row), each group's
/// lines `AHEAD` bytes on asked for before it runs (one row per group measured ~5 % slower:
/// a kernel call per row).
pub(crate) const GROUP: usize = 1024;

const LINE: usize = 64;

/// Asks the cache for the lines of `bytes[from .. from + len]` that lie inside `bytes`.
#[inline]
pub(crate) fn lines(bytes: &[u8], from: usize, len: usize) {
    let end = bytes.len().min(from.saturating_add(len));
    let mut at = from;
    while at < end {
        line(bytes, at);
        at += LINE;
    }
}

/// Asks the cache for the line holding `bytes[at]` (`at` inside `bytes`).
#[inline(always)]
fn line(bytes: &[u8], at: usize) {
    let p = bytes[at..].as_ptr();
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // WORKAROUND: `_mm_prefetch` takes a raw pointer; `p` points inside `bytes` (indexed
        // above), and a prefetch neither reads into the program nor faults.
        #[allow(unsafe_code)]
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(p.cast())
        };
    }
    #[cfg(target_arch = "aarch64")]
    {
        // WORKAROUND: no stable prefetch intrinsic on aarch64; `prfm` is a hint on a pointer
        // inside `bytes` (indexed above) that neither reads into the program nor faults.
        #[allow(unsafe_code)]
        unsafe {
            std::arch::asm!(
                "prfm pldl1keep, [{0}]",
                in(reg) p,
                options(nostack, readonly, preserves_flags)
            )
        };
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = p;
}

/// Runs `rows(w_group, y_group)` over `w` (rows of `row_bytes`) and `y` in groups of about
/// [`GROUP`] bytes, asking for each group's lines [`AHEAD`] bytes on first.
pub(crate) fn by_groups(
    w: &[u8],
    row_bytes: usize,
    y: &mut [f32],
    mut rows: impl FnMut(&[u8], &mut [f32]),
) {
    let per = (GROUP / row_bytes.max(1)).max(1);
    let group_bytes = per * row_bytes;
    for (g, (wc, yc)) in w.chunks(group_bytes).zip(y.chunks_mut(per)).enumerate() {
        lines(w, g * group_bytes + AHEAD, wc.len());
        rows(wc, yc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row reaches the callback once, in order, whatever the group and slice sizes
    /// (prefetches past the end are skipped, not faulted).
    #[test]
    fn groups_cover_every_row_once() {
        for (rows, row_bytes) in [(1usize, 10usize), (7, 200), (64, 360), (3, 5000), (0, 8)] {
            let w: Vec<u8> = (0..rows * row_bytes).map(|i| i as u8).collect();
            let mut y = vec![0f32; rows];
            let mut seen = Vec::new();
            by_groups(&w, row_bytes, &mut y, |wc, yc| {
                assert_eq!(wc.len(), yc.len() * row_bytes);
                seen.extend_from_slice(wc);
                yc.iter_mut().for_each(|v| *v += 1.0);
            });
            assert_eq!(seen, w);
            assert!(y.iter().all(|&v| v == 1.0));
        }
        lines(&[1, 2, 3], 2, usize::MAX);
        lines(&[], 0, 64);
    }
}
