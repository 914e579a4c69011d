//! What the native API knows that wgpu does not report: the device's memory.

// WORKAROUND: wgpu has no memory query; the raw Vulkan / Metal objects behind its adapter do,
// and reaching them (`Adapter::as_hal`) is `unsafe`. Only queries are made here.
#![allow(unsafe_code)]

/// The device's memory in bytes, where its API says: the largest device-local heap on
/// Vulkan, `recommendedMaxWorkingSetSize` on Metal.
pub(crate) fn memory_bytes(adapter: &wgpu::Adapter) -> Option<u64> {
    match adapter.get_info().backend {
        wgpu::Backend::Vulkan => vulkan(adapter),
        wgpu::Backend::Metal => metal(adapter),
        _ => None,
    }
}

#[cfg(not(target_vendor = "apple"))]
fn vulkan(adapter: &wgpu::Adapter) -> Option<u64> {
    use wgpu::hal::api::Vulkan;
    // SAFETY: the raw adapter is only queried, while `adapter` is alive.
    let hal = unsafe { adapter.as_hal::<Vulkan>() }?;
    let instance = hal.shared_instance().raw_instance();
    // SAFETY: a physical device of this instance; a query with no side effects.
    let props =
        unsafe { instance.get_physical_device_memory_properties(hal.raw_physical_device()) };
    props
        .memory_heaps_as_slice()
        .iter()
        .filter(|h| h.flags.contains(ash::vk::MemoryHeapFlags::DEVICE_LOCAL))
        .map(|h| h.size)
        .max()
}

#[cfg(target_vendor = "apple")]
fn vulkan(_: &wgpu::Adapter) -> Option<u64> {
    None
}

#[cfg(target_os = "macos")]
fn metal(adapter: &wgpu::Adapter) -> Option<u64> {
    use objc2_metal::MTLDevice;
    use wgpu::hal::api::Metal;
    // SAFETY: the raw device is only queried, while `adapter` is alive.
    let hal = unsafe { adapter.as_hal::<Metal>() }?;
    let limit = hal.raw_device().recommendedMaxWorkingSetSize();
    (limit > 0).then_some(limit)
}

#[cfg(not(target_os = "macos"))]
fn metal(_: &wgpu::Adapter) -> Option<u64> {
    None
}
