//! NVIDIA GPUs through NVML, opened at run time: no NVIDIA library is needed to build, and a
//! machine without one simply has no GPUs.

#![allow(unsafe_code)]

use crate::Gpu;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr};

#[repr(C)]
struct Memory {
    total: u64,
    free: u64,
    used: u64,
}

type Init = unsafe extern "C" fn() -> c_int;
type Count = unsafe extern "C" fn(*mut c_uint) -> c_int;
type Handle = unsafe extern "C" fn(c_uint, *mut *mut c_void) -> c_int;
type MemoryInfo = unsafe extern "C" fn(*mut c_void, *mut Memory) -> c_int;
type Name = unsafe extern "C" fn(*mut c_void, *mut c_char, c_uint) -> c_int;

const LIBRARIES: &[&str] = &["libnvidia-ml.so.1", "libnvidia-ml.so", "nvml.dll"];

/// The GPUs NVML reports; empty when NVML is absent or fails.
pub fn gpus() -> Vec<Gpu> {
    for name in LIBRARIES {
        // SAFETY: loading NVML runs only its own initialisers; the symbols below are looked up
        // with the signatures of NVML's public C API (nvml.h, v2 entry points), and every out
        // pointer passed points to a live, correctly sized local.
        unsafe {
            let Ok(lib) = libloading::Library::new(name) else {
                continue;
            };
            return read(&lib).unwrap_or_default();
        }
    }
    Vec::new()
}

unsafe fn read(lib: &libloading::Library) -> Option<Vec<Gpu>> {
    let init: libloading::Symbol<Init> = lib.get(b"nvmlInit_v2\0").ok()?;
    let shutdown: libloading::Symbol<Init> = lib.get(b"nvmlShutdown\0").ok()?;
    let count: libloading::Symbol<Count> = lib.get(b"nvmlDeviceGetCount_v2\0").ok()?;
    let handle: libloading::Symbol<Handle> = lib.get(b"nvmlDeviceGetHandleByIndex_v2\0").ok()?;
    let memory: libloading::Symbol<MemoryInfo> = lib.get(b"nvmlDeviceGetMemoryInfo\0").ok()?;
    let name: libloading::Symbol<Name> = lib.get(b"nvmlDeviceGetName\0").ok()?;
    if init() != 0 {
        return None;
    }
    let mut n: c_uint = 0;
    let mut out = Vec::new();
    if count(&mut n) == 0 {
        for i in 0..n {
            let mut h: *mut c_void = std::ptr::null_mut();
            if handle(i, &mut h) != 0 {
                continue;
            }
            let mut m = Memory {
                total: 0,
                free: 0,
                used: 0,
            };
            if memory(h, &mut m) != 0 {
                continue;
            }
            let mut buf = [0 as c_char; 96];
            let label = if name(h, buf.as_mut_ptr(), buf.len() as c_uint) == 0 {
                CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned()
            } else {
                format!("NVIDIA GPU {i}")
            };
            out.push(Gpu {
                name: label,
                vram_total: m.total,
                vram_free: m.free,
            });
        }
    }
    shutdown();
    Some(out)
}
