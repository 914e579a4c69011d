//! Software prefetch for the mat-vec row loop and the decode attention's cache rows.
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

const LINE: usize = 64;

/// Asks the cache for the lines of `v[from .. from + len]` that lie inside `v`.
#[inline]
pub(crate) fn lines<T>(v: &[T], from: usize, len: usize) {
    let end = v.len().min(from.saturating_add(len));
    let step = (LINE / size_of::<T>().max(1)).max(1);
    let mut at = from;
    while at < end {
        line(v, at);
        at += step;
    }
}

/// Asks the cache for the line holding `v[at]` (`at` inside `v`).
#[inline(always)]
fn line<T>(v: &[T], at: usize) {
    let p = v[at..].as_ptr();
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // WORKAROUND: `_mm_prefetch` takes a raw pointer; `p` points inside `v` (indexed
        // above), and a prefetch neither reads into the program nor faults.
        #[allow(unsafe_code)]
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(p.cast())
        };
    }
    #[cfg(target_arch = "aarch64")]
    {
        // WORKAROUND: no stable prefetch intrinsic on aarch64; `prfm` is a hint on a pointer
        // inside `v` (indexed above) that neither reads into the program nor faults.
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

/// The rows of `w` (each `row_bytes`, the last partial one left out as `chunks_exact` does),
/// asking for the lines of one row's bytes [`AHEAD`] past each row's start as the row is
/// taken: one row's worth of lines per row, so the prefetches keep pace with the kernel that
/// reads them and cover every line.
///
/// The row kernels iterate through this rather than being called per group of rows: a call
/// per ~1 KiB group (the first design) cost up to 2x on compute-bound types (IQ1_S, Q2_K:
/// each call re-derives its constants) and broke the float kernels' four-row loop.
///
/// Rows of [`AHEAD`] bytes or more get none: the lines asked for would lie in the row being
/// read, whose stream the hardware prefetchers already follow, and the prefetches only took
/// load slots (session 25, one Zen 4 thread, 4096×14336: Q4_K 29.8 → 35.4, IQ2_XXS 15.0 →
/// 16.3, Q8_0 15.9 → 17.2 G weights/s without them; no type measurably slower). Shorter rows
/// get all their lines: capped at 1 KiB a row (session 23's cure for 8 KiB rows, which now
/// get none), rows of 1–4 KiB had a third of their lines never asked for, a pattern that
/// also threw off the hardware prefetchers — one Zen 3 thread, 32768×2048 from memory: Q6_K
/// 11 → 22, Q8_0 7.4 → 16.9, Q5_K 15 → 20 G weights/s (without any prefetch 19, 15.6, 19.4);
/// Q4_K, Q4_1, IQ1_S and IQ3_XXS rows within the spread. GLM's 2048-wide rows are of that size.
#[inline(always)]
pub(crate) fn rows(w: &[u8], row_bytes: usize) -> impl Iterator<Item = &[u8]> {
    let ahead = row_bytes < AHEAD;
    w.chunks_exact(row_bytes).enumerate().map(move |(r, row)| {
        if ahead {
            lines(w, r * row_bytes + AHEAD, row_bytes);
        }
        row
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every whole row is yielded once, in order, whatever the row and slice sizes
    /// (prefetches past the end are skipped, not faulted).
    #[test]
    fn rows_yields_every_whole_row_once() {
        for (rows_n, row_bytes, extra) in [
            (1usize, 10usize, 0usize),
            (7, 200, 3),
            (64, 360, 0),
            (3, 5000, 1),
            (0, 8, 0),
        ] {
            let w: Vec<u8> = (0..rows_n * row_bytes + extra).map(|i| i as u8).collect();
            let seen: Vec<u8> = rows(&w, row_bytes).flatten().copied().collect();
            assert_eq!(seen, w[..rows_n * row_bytes]);
            assert_eq!(rows(&w, row_bytes).count(), rows_n);
        }
        lines(&[1, 2, 3], 2, usize::MAX);
        lines::<u8>(&[], 0, 64);
        lines(&[0u16; 100], 90, 64);
    }
}
