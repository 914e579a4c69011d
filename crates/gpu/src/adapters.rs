//! Which GPUs this machine offers (`localglm gpu`), and the choice of one.
//!
//! Invariant: the choice is explained. A refused adapter (software while software is not
//! allowed and the adapter was not asked for by name, a name that does not match) appears in
//! the error with the reason.

use crate::{GpuError, GpuOptions};

/// One adapter as wgpu reports it, with what the kernels care about.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AdapterReport {
    /// Driver-reported name ("Apple M3 Ultra", "NVIDIA GeForce RTX 4090", "llvmpipe (…)").
    pub name: String,
    /// "Metal", "Vulkan", "Dx12", …
    pub backend: String,
    /// "DiscreteGpu", "IntegratedGpu", "VirtualGpu", "Cpu" (software) or "Other".
    pub device_type: String,
    /// Driver name and version, where the API reports them.
    pub driver: String,
    /// PCI vendor id (0x10de NVIDIA, 0x1002 AMD, 0x8086 Intel, 0x106b Apple, 0x10005 Mesa).
    pub vendor: u32,
    /// Whether this is a software implementation (lavapipe, WARP, SwiftShader).
    pub software: bool,
    /// Memory the device can hold, bytes: its largest device-local heap (Vulkan) or its
    /// working-set limit (Metal); `None` where the API does not say (DX12).
    pub memory_bytes: Option<u64>,
    /// Largest storage buffer one kernel can bind, in bytes.
    pub max_storage_binding_bytes: u64,
    /// Largest buffer, in bytes.
    pub max_buffer_bytes: u64,
    /// Subgroup operations (`subgroupAdd`, …) available.
    pub subgroups: bool,
    /// Smallest and largest subgroup size (0 when unknown).
    pub subgroup_sizes: (u32, u32),
    /// 16-bit floats in shaders.
    pub shader_f16: bool,
    /// 64-bit integers in shaders.
    pub shader_int64: bool,
    /// The cooperative-matrix shapes the adapter multiplies (Vulkan `KHR_cooperative_matrix`,
    /// Metal `simdgroup_matrix`), as "MxNxK A/B type -> C type" (e.g. "8x8x8 f32->f32"); empty
    /// where wgpu offers none (its experimental feature off, or no such hardware).
    pub cooperative_matrix: Vec<String>,
}

impl AdapterReport {
    fn of(adapter: &wgpu::Adapter) -> Self {
        let info = adapter.get_info();
        let limits = adapter.limits();
        let features = adapter.features();
        Self {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: [info.driver.as_str(), info.driver_info.as_str()]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" "),
            vendor: info.vendor,
            software: info.device_type == wgpu::DeviceType::Cpu,
            memory_bytes: crate::native::memory_bytes(adapter),
            max_storage_binding_bytes: limits.max_storage_buffer_binding_size,
            max_buffer_bytes: limits.max_buffer_size,
            subgroups: features.contains(wgpu::Features::SUBGROUP),
            subgroup_sizes: (info.subgroup_min_size, info.subgroup_max_size),
            shader_f16: features.contains(wgpu::Features::SHADER_F16),
            shader_int64: features.contains(wgpu::Features::SHADER_INT64),
            cooperative_matrix: if features
                .contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX)
            {
                adapter
                    .cooperative_matrix_properties()
                    .iter()
                    .map(coop_shape)
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    /// Preference order: discrete, integrated, virtual, other, software.
    fn rank(&self) -> u8 {
        match self.device_type.as_str() {
            "DiscreteGpu" => 0,
            "IntegratedGpu" => 1,
            "VirtualGpu" => 2,
            "Other" => 3,
            _ => 4,
        }
    }
}

fn coop_shape(p: &wgpu::CooperativeMatrixProperties) -> String {
    let ty = |t: wgpu::CooperativeScalarType| format!("{t:?}").to_lowercase();
    format!(
        "{}x{}x{} {}->{}",
        p.m_size,
        p.n_size,
        p.k_size,
        ty(p.ab_type),
        ty(p.cr_type)
    )
}

fn instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    // Compute needs Vulkan, Metal or DX12; GL cannot run the kernels.
    desc.backends = wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12;
    wgpu::Instance::new(desc)
}

fn all() -> Vec<(wgpu::Adapter, AdapterReport)> {
    let instance = instance();
    let mut found: Vec<(wgpu::Adapter, AdapterReport)> =
        pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
            .into_iter()
            .map(|a| {
                let r = AdapterReport::of(&a);
                (a, r)
            })
            .collect();
    found.sort_by_key(|(_, r)| r.rank());
    found
}

/// Every adapter the kernels could run on, best first.
pub fn adapters() -> Vec<AdapterReport> {
    all().into_iter().map(|(_, r)| r).collect()
}

/// The adapter [`crate::Gpu::new`] opens for `opts`, or why there is none.
pub(crate) fn choose(opts: &GpuOptions) -> Result<(wgpu::Adapter, AdapterReport), GpuError> {
    let found = all();
    if found.is_empty() {
        return Err(GpuError::NoAdapter(
            "no Vulkan, Metal or DX12 adapter was found (on Linux install the GPU's Vulkan \
             driver, e.g. NVIDIA's driver or Mesa's mesa-vulkan-drivers)"
                .into(),
        ));
    }
    let mut refused = Vec::new();
    for (adapter, report) in found {
        if let Some(want) = &opts.adapter {
            if !report.name.to_lowercase().contains(&want.to_lowercase()) {
                refused.push(format!("{} (name does not match `{want}`)", report.name));
                continue;
            }
        }
        // An adapter asked for by name is used even when it is a software one.
        if report.software && !opts.allow_software && opts.adapter.is_none() {
            refused.push(format!(
                "{} (a software rasterizer, slower than the CPU kernels)",
                report.name
            ));
            continue;
        }
        return Ok((adapter, report));
    }
    Err(GpuError::NoAdapter(format!(
        "found only {}",
        refused.join(", ")
    )))
}

/// The adapter [`crate::Gpu::new`] would open for `opts`, without opening it: a cheap check
/// before letting go of a loaded model.
pub fn find_adapter(opts: &GpuOptions) -> Result<AdapterReport, GpuError> {
    choose(opts).map(|(_, report)| report)
}
