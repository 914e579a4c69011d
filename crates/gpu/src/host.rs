//! Weights read in place from host memory. On Apple's unified memory the GPU reads the same
//! RAM as the CPU, so a memory-mapped GGUF needs no device copy: each weight chunk becomes a
//! Metal buffer made with `newBufferWithBytesNoCopy` over the whole pages holding its rows,
//! handed to wgpu through its HAL interop — how a 239 GB model fits a 256 GB Mac at all.
//!
//! Invariants:
//! * A chunk's buffer covers the page-aligned range around its rows; the kernels read the rows
//!   `skew` bytes into it (`Params::w_skew`). [`HostWrap::Emulate`] lays copies out the same
//!   way on any adapter, so the tests run the in-place layout on lavapipe; only the Metal call
//!   itself is macOS-only (type-checked for `aarch64-apple-darwin` in CI).
//! * Where wrapping fails (a range the driver refuses), that chunk is copied instead: never an
//!   error, never a wrong answer.

// WORKAROUND: wrapping host pages as a device buffer is `unsafe` by nature — the GPU reads
// memory Rust does not track — so this module (and only it, with the caller's promise through
// `Gpu::upload_weight_in_place`) allows unsafe code.
#![allow(unsafe_code)]

/// How weight bytes reach the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostWrap {
    /// In place where the device shares host memory and the API allows it (Metal on unified
    /// memory, for callers that promise the bytes outlive the weight); copied elsewhere.
    #[default]
    Auto,
    /// Always copied.
    Off,
    /// Copied, but laid out as in-place buffers would be: each chunk a buffer over the whole
    /// `page`-sized pages around its rows, the rows at their offset in it (tests).
    Emulate {
        /// Page size in bytes (a power of two).
        page: usize,
    },
}

/// How this device takes host pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HostPages {
    pub(crate) page: usize,
    /// Wrapped in place (Metal); else copied in the same layout.
    pub(crate) in_place: bool,
}

impl HostPages {
    pub(crate) fn for_device(wrap: HostWrap, device: &wgpu::Device) -> Option<Self> {
        match wrap {
            HostWrap::Off => None,
            HostWrap::Emulate { page } => {
                assert!(page.is_power_of_two(), "page size {page}");
                Some(Self {
                    page,
                    in_place: false,
                })
            }
            HostWrap::Auto => metal::unified_page(device).map(|page| Self {
                page,
                in_place: true,
            }),
        }
    }
}

/// The whole pages around some bytes: from address `start`, `len` bytes, the bytes `skew` in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageRange {
    pub(crate) start: usize,
    pub(crate) len: usize,
    pub(crate) skew: usize,
}

pub(crate) fn page_range(bytes: &[u8], page: usize) -> PageRange {
    let at = bytes.as_ptr() as usize;
    let start = at & !(page - 1);
    let end = (at + bytes.len()).next_multiple_of(page);
    PageRange {
        start,
        len: (end - start).max(page),
        skew: at - start,
    }
}

impl crate::Gpu {
    pub(crate) fn host_pages(&self) -> Option<HostPages> {
        self.host
    }

    /// A storage buffer over the host pages `r`, without a copy; `None` where this device
    /// cannot (then the caller copies).
    ///
    /// # Safety
    /// The pages must stay mapped and unchanged while the buffer (or work using it) lives.
    pub(crate) unsafe fn wrap_host_pages(&self, what: &str, r: &PageRange) -> Option<wgpu::Buffer> {
        let buf = unsafe { metal::wrap(&self.device, what, r) }?;
        self.counters
            .allocations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(buf)
    }
}

#[cfg(target_os = "macos")]
mod metal {
    use super::PageRange;
    use objc2_metal::{MTLDevice, MTLResourceOptions};
    use std::ptr::NonNull;
    use wgpu::hal::api::Metal;

    /// The VM page size Metal's no-copy buffers align to.
    const PAGE: usize = if cfg!(target_arch = "aarch64") {
        16 << 10
    } else {
        4 << 10
    };

    /// The page size, where `device` is a Metal device on unified memory.
    pub(super) fn unified_page(device: &wgpu::Device) -> Option<usize> {
        // SAFETY: the raw device is only queried.
        let hal = unsafe { device.as_hal::<Metal>() }?;
        hal.raw_device().hasUnifiedMemory().then_some(PAGE)
    }

    /// # Safety
    /// As `Gpu::wrap_host_pages`.
    pub(super) unsafe fn wrap(
        device: &wgpu::Device,
        what: &str,
        r: &PageRange,
    ) -> Option<wgpu::Buffer> {
        if r.start % PAGE != 0 || r.len % PAGE != 0 {
            return None;
        }
        let raw = {
            // SAFETY: only the raw device is used, to make a buffer.
            let hal = unsafe { device.as_hal::<Metal>() }?;
            let ptr = NonNull::new(r.start as *mut std::ffi::c_void)?;
            // SAFETY: page-aligned host memory the caller keeps alive; no deallocator, so
            // Metal never frees it. Shared storage: the GPU reads the pages themselves.
            unsafe {
                hal.raw_device()
                    .newBufferWithBytesNoCopy_length_options_deallocator(
                        ptr,
                        r.len,
                        MTLResourceOptions::StorageModeShared,
                        None,
                    )
            }?
        };
        // SAFETY: `raw` is a buffer of `r.len` bytes made on this device.
        let hal_buffer = unsafe { wgpu::hal::metal::Device::buffer_from_raw(raw, r.len as u64) };
        // SAFETY: as above; the descriptor matches the buffer (storage, not mapped).
        Some(unsafe {
            device.create_buffer_from_hal::<Metal>(
                hal_buffer,
                &wgpu::BufferDescriptor {
                    label: Some(what),
                    size: r.len as u64,
                    usage: wgpu::BufferUsages::STORAGE,
                    mapped_at_creation: false,
                },
            )
        })
    }
}

#[cfg(not(target_os = "macos"))]
mod metal {
    use super::PageRange;

    /// No unified-memory Metal device off macOS.
    pub(super) fn unified_page(_: &wgpu::Device) -> Option<usize> {
        None
    }

    /// # Safety
    /// Nothing is wrapped here.
    pub(super) unsafe fn wrap(_: &wgpu::Device, _: &str, _: &PageRange) -> Option<wgpu::Buffer> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_ranges_cover_whole_pages_around_the_bytes() {
        let data = vec![0u8; 3 * 4096];
        let page = 1024;
        let base = data.as_ptr() as usize;
        let r = page_range(&data[100..2100], page);
        assert_eq!(r.start % page, 0);
        assert_eq!(r.len % page, 0);
        assert_eq!(r.start + r.skew, base + 100);
        assert!(r.start + r.len >= base + 2100);
        assert!(r.skew < page);
        // Already aligned and whole: exactly the bytes.
        let aligned = data.as_ptr().align_offset(page);
        let r = page_range(&data[aligned..aligned + 2 * page], page);
        assert_eq!((r.skew, r.len), (0, 2 * page));
    }
}
