//! The GPU backend of LocalGLM's own runtime: one wgpu device (Metal on macOS, Vulkan on
//! NVIDIA/AMD/Intel, DX12 on Windows, Mesa's lavapipe in CI) and WGSL kernels that multiply by
//! weights kept in their GGUF block types.
//!
//! Invariants:
//! * Nothing here falls back to the CPU. Asked for a device and none is usable, [`Gpu::new`]
//!   fails with [`GpuError::NoAdapter`] naming what was found and why it was refused.
//! * Work is recorded into one pending command encoder (`submit`) and submitted only when a result is read
//!   back ([`Gpu::read_f32`]) or [`Gpu::flush`] is called, so a whole forward pass can be one
//!   submission. [`Counters`] count dispatches, submissions and the bytes the kernels read.
//! * A weight larger than the adapter's storage-binding limit is split into chunks of whole rows
//!   (see [`QWeight`]); every kernel result is the same whatever the split.
//! * GPU allocation failures are errors ([`GpuError::OutOfMemory`]), never panics; so is work
//!   wgpu rejects outside an error scope, or a lost device ([`GpuError::Lost`] at the next
//!   read-back; wgpu's default would panic).
//! * A kernel the backend or driver fails to build is an error ([`GpuError::Shader`]), never a
//!   panic; the matrix units run only where they passed a check on the device (`matrices`).

mod adapters;
mod host;
mod kernels;
mod matrices;
mod native;
mod ops;
mod submit;
mod tables;
pub mod verify;

pub use adapters::{adapters, find_adapter, AdapterReport};
pub use host::HostWrap;
pub use kernels::{all_shader_sources, Kernel, QWeight, GPU_TYPES};
pub use matrices::{Matrices, MatrixFault};
pub use ops::{
    attention_scratch_words, cache_words, AttentionArgs, CacheRows, GqaAttentionArgs, RowNorm,
    RowRope, ROW_STORE_MAX,
};
use submit::{BindCache, Pending, PARAM_SLOTS};
pub use verify::Verified;
// `Pool` is defined below.

use localglm_quants::GgmlType;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What can go wrong on the GPU.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GpuError {
    /// No adapter at all, or none of the kind asked for.
    #[error("no usable GPU adapter: {0}")]
    NoAdapter(String),
    /// The adapter refused to open a device.
    #[error("could not open a device on {adapter}: {reason}")]
    Device {
        /// The adapter's name.
        adapter: String,
        /// The driver's words.
        reason: String,
    },
    /// A buffer did not fit in GPU memory.
    #[error(
        "out of GPU memory on {adapter} allocating {mib:.1} MiB for {what}: keep the experts of \
         more layers in RAM (--cpu-moe), use a shorter context or a q8_0 KV cache, or run on the CPU"
    )]
    OutOfMemory {
        /// The adapter's name.
        adapter: String,
        /// What was being allocated.
        what: String,
        /// Its size.
        mib: f64,
    },
    /// A weight type without a GPU kernel.
    #[error("the GPU kernels do not handle {0}")]
    Unsupported(GgmlType),
    /// A kernel that did not compile (a bug: every shader is compiled in the tests).
    #[error("GPU shader for {what} failed: {message}")]
    Shader {
        /// Which kernel.
        what: String,
        /// The compiler's message.
        message: String,
    },
    /// An argument of the wrong size.
    #[error("{what}: expected {expected}, got {actual}")]
    Shape {
        /// Which argument.
        what: &'static str,
        /// The size required.
        expected: usize,
        /// The size given.
        actual: usize,
    },
    /// The device failed while running or reading back.
    #[error("the GPU failed: {0}")]
    Lost(String),
    /// A product the device ran gave another result than the host's (the matrix units' check).
    #[error("the GPU computed a wrong result: {0}")]
    WrongResult(String),
    /// A device choice that is not `auto`, `gpu` or `cpu`.
    #[error("device `{0}`: expected auto, gpu or cpu")]
    UnknownDevice(String),
}

/// How to pick and set up the device.
#[derive(Debug, Clone)]
pub struct GpuOptions {
    /// Only adapters whose name contains this (case-insensitive); `LOCALGLM_GPU_ADAPTER` too.
    pub adapter: Option<String>,
    /// Accept software adapters (lavapipe, WARP). They are real Vulkan/DX12 implementations but
    /// slower than the CPU kernels, so only tests and an explicit request use them (`adapter`
    /// naming one is such a request).
    pub allow_software: bool,
    /// Use subgroup operations where the adapter has them.
    pub subgroups: bool,
    /// Split weights into bindings of at most this many bytes (below the adapter's limit; tests
    /// use it to exercise the split on small tensors).
    pub max_binding_bytes: Option<u64>,
    /// Whether weights may be read in place from host memory.
    pub host_wrap: HostWrap,
    /// Whether products of many tokens use the adapter's matrix units.
    pub matrices: Matrices,
    /// Tests: a fault put into the matrix-unit kernels.
    #[doc(hidden)]
    pub matrix_fault: Option<MatrixFault>,
}

impl Default for GpuOptions {
    fn default() -> Self {
        Self {
            adapter: std::env::var("LOCALGLM_GPU_ADAPTER").ok(),
            allow_software: false,
            subgroups: true,
            max_binding_bytes: None,
            host_wrap: HostWrap::Auto,
            matrices: Matrices::from_env(),
            matrix_fault: None,
        }
    }
}

/// Running totals of GPU work, for the benchmark's per-token ratios.
#[derive(Debug, Default)]
pub struct Counters {
    dispatches: AtomicU64,
    submissions: AtomicU64,
    weight_bytes: AtomicU64,
    pub(crate) kv_bytes: AtomicU64,
    upload_bytes: AtomicU64,
    readback_bytes: AtomicU64,
    allocations: AtomicU64,
    passes: AtomicU64,
    bind_groups: AtomicU64,
    matrix_products: AtomicU64,
}

impl Counters {
    /// Every count back to zero.
    fn reset(&self) {
        for c in [
            &self.dispatches,
            &self.submissions,
            &self.weight_bytes,
            &self.kv_bytes,
            &self.upload_bytes,
            &self.readback_bytes,
            &self.allocations,
            &self.passes,
            &self.bind_groups,
            &self.matrix_products,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// A snapshot of [`Counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CounterSnapshot {
    /// Compute dispatches recorded.
    pub dispatches: u64,
    /// Command buffers submitted.
    pub submissions: u64,
    /// Bytes of weights the dispatched kernels read (each tile of tokens counted).
    pub weight_bytes: u64,
    /// Bytes of KV cache and indexer keys the attention and indexer kernels load (each
    /// workgroup's loads counted: one key read by two workgroups counts twice).
    pub kv_bytes: u64,
    /// Bytes written from the host.
    pub upload_bytes: u64,
    /// Bytes read back to the host.
    pub readback_bytes: u64,
    /// Device buffers created.
    pub allocations: u64,
    /// Compute passes begun (each a command encoder on Metal): dispatches share one pass until
    /// a copy or a submission ends it.
    pub passes: u64,
    /// Bind groups created (the rest came from the cache).
    pub bind_groups: u64,
    /// Weight products run on the matrix units (cooperative matrices), dispatches counted.
    pub matrix_products: u64,
}

impl CounterSnapshot {
    /// `self − earlier`, field by field.
    pub fn since(&self, earlier: &CounterSnapshot) -> CounterSnapshot {
        CounterSnapshot {
            dispatches: self.dispatches - earlier.dispatches,
            submissions: self.submissions - earlier.submissions,
            weight_bytes: self.weight_bytes - earlier.weight_bytes,
            kv_bytes: self.kv_bytes - earlier.kv_bytes,
            upload_bytes: self.upload_bytes - earlier.upload_bytes,
            readback_bytes: self.readback_bytes - earlier.readback_bytes,
            allocations: self.allocations - earlier.allocations,
            passes: self.passes - earlier.passes,
            bind_groups: self.bind_groups - earlier.bind_groups,
            matrix_products: self.matrix_products - earlier.matrix_products,
        }
    }
}

/// A buffer of f32 (or u32) values on the device (a clone refers to the same buffer).
#[derive(Debug, Clone)]
pub struct Buffer {
    pub(crate) buf: wgpu::Buffer,
    len: usize,
}

impl Buffer {
    /// Elements (4 bytes each).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// An open GPU device with the kernels' shared state.
pub struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: AdapterReport,
    subgroups: bool,
    /// The matrix units' shape S (S×S×S, f16 inputs, f32 sums) and when to use them.
    coop: Option<(u32, Matrices)>,
    /// Why the matrix units are off although the adapter has them (their check failed).
    matrix_fallback: Option<String>,
    /// Types whose matrix-unit kernel the driver refused, and its words.
    coop_refused: Mutex<HashMap<GgmlType, String>>,
    matrix_fault: Option<MatrixFault>,
    /// Errors wgpu reported outside an error scope (a rejected command buffer, a lost
    /// device), each on one line: the next read-back returns them ([`GpuError::Lost`]).
    faults: Arc<Mutex<Vec<String>>>,
    timestamps: bool,
    max_binding: u64,
    max_wg_dim: u32,
    param_align: u64,
    params: wgpu::Buffer,
    tables: wgpu::Buffer,
    dummy_ids: wgpu::Buffer,
    dummy_rw: wgpu::Buffer,
    dummy_out: Buffer,
    layout: wgpu::BindGroupLayout,
    pipeline_layout: wgpu::PipelineLayout,
    pipelines: Mutex<HashMap<(GgmlType, Kernel), Arc<wgpu::ComputePipeline>>>,
    op_layout: wgpu::BindGroupLayout,
    op_pipeline_layout: wgpu::PipelineLayout,
    op_pipelines: Mutex<HashMap<ops::Op, Arc<wgpu::ComputePipeline>>>,
    pending: Mutex<Pending>,
    binds: Mutex<BindCache>,
    staging: Mutex<Option<wgpu::Buffer>>,
    counters: Counters,
    host: Option<host::HostPages>,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu").field("adapter", &self.info).finish()
    }
}

impl Gpu {
    /// Opens the best adapter the options allow: a discrete GPU before an integrated one before
    /// a virtual one, software only when allowed.
    pub fn new(opts: &GpuOptions) -> Result<Self, GpuError> {
        let (adapter, info) = adapters::choose(opts)?;
        let features = adapter.features();
        let mut required = wgpu::Features::empty();
        let subgroups = opts.subgroups && features.contains(wgpu::Features::SUBGROUP);
        if subgroups {
            required |= wgpu::Features::SUBGROUP;
        }
        let coop = matrices::coop_shape(&adapter, opts, subgroups);
        if coop.is_some() {
            required |=
                wgpu::Features::SHADER_F16 | wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
        }
        // GPU timestamps around a compute pass, for the benchmarks (`Gpu::gpu_time`).
        let timestamps = features.contains(wgpu::Features::TIMESTAMP_QUERY);
        if timestamps {
            required |= wgpu::Features::TIMESTAMP_QUERY;
        }
        let alimits = adapter.limits();
        // Ask for the adapter's own storage and buffer sizes, not WebGPU's defaults (128 MiB /
        // 256 MiB): models need every byte the device allows.
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: alimits.max_storage_buffer_binding_size,
            max_buffer_size: alimits.max_buffer_size,
            max_storage_buffers_per_shader_stage: alimits
                .max_storage_buffers_per_shader_stage
                .max(8),
            ..wgpu::Limits::default()
        };
        // SAFETY: the one experimental feature asked for is cooperative matrices, and only where
        // the adapter lists the shape the kernel uses; that kernel is checked against the CPU on
        // an adapter that has them (`tests/kernels.rs`; Mesa 26's lavapipe in CI).
        #[allow(unsafe_code)]
        let experimental = if coop.is_some() {
            unsafe { wgpu::ExperimentalFeatures::enabled() }
        } else {
            wgpu::ExperimentalFeatures::disabled()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("localglm"),
            required_features: required,
            required_limits: limits.clone(),
            experimental_features: experimental,
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| GpuError::Device {
            adapter: info.name.clone(),
            reason: e.to_string(),
        })?;
        // wgpu's default for an error outside a scope is a panic; here it is kept for the
        // next read-back to return.
        let faults = Arc::new(Mutex::new(Vec::new()));
        let sink = faults.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.lock().expect("faults").push(one_line(&e.to_string()));
        }));
        let sink = faults.clone();
        device.set_device_lost_callback(move |reason, message| {
            if reason != wgpu::DeviceLostReason::Destroyed {
                let lost = format!("the device was lost: {}", one_line(&message));
                sink.lock().expect("faults").push(lost);
            }
        });
        // The kernels address a binding's bytes with u32 (Metal's limit can exceed 4 GiB).
        let max_binding = opts
            .max_binding_bytes
            .unwrap_or(u64::MAX)
            .min(limits.max_storage_buffer_binding_size)
            .min(limits.max_buffer_size)
            .min(1 << 31);
        let host = host::HostPages::for_device(opts.host_wrap, &device);
        let param_align = limits.min_uniform_buffer_offset_alignment.max(64) as u64;
        let params = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("params"),
            size: PARAM_SLOTS * param_align,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let (table_bytes, _) = tables::table_bytes();
        let tables = init_buffer(
            &device,
            "iq tables",
            &table_bytes,
            wgpu::BufferUsages::STORAGE,
        );
        let dummy_ids = init_buffer(&device, "no ids", &[0; 4], wgpu::BufferUsages::STORAGE);
        let dummy_rw = init_buffer(&device, "no output", &[0; 4], wgpu::BufferUsages::STORAGE);
        let dummy_out = Buffer {
            buf: init_buffer(&device, "no output", &[0; 4], wgpu::BufferUsages::STORAGE),
            len: 1,
        };
        // A (written), B, C, D, U (written), M.
        let op_layout = storage_layout(&device, "op", &[false, true, true, true, false, true]);
        let op_pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("ops"),
            bind_group_layouts: &[Some(&op_layout)],
            immediate_size: 0,
        });
        // W, X, Y (written), tables, ids.
        let layout = storage_layout(&device, "weight product", &[true, true, false, true, true]);
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("weight products"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let mut gpu = Self {
            device,
            queue,
            info,
            subgroups,
            coop: coop.map(|s| (s, opts.matrices)),
            matrix_fallback: None,
            coop_refused: Mutex::new(HashMap::new()),
            matrix_fault: opts.matrix_fault,
            faults,
            timestamps,
            max_binding,
            max_wg_dim: limits.max_compute_workgroups_per_dimension,
            param_align,
            params,
            tables,
            dummy_ids,
            dummy_rw,
            dummy_out,
            layout,
            pipeline_layout,
            pipelines: Mutex::new(HashMap::new()),
            op_layout,
            op_pipeline_layout,
            op_pipelines: Mutex::new(HashMap::new()),
            pending: Mutex::new(Pending::new()),
            binds: Mutex::new(HashMap::new()),
            staging: Mutex::new(None),
            counters: Counters::default(),
            host,
        };
        gpu.check_matrices();
        Ok(gpu)
    }

    /// Whether [`Gpu::gpu_time`] measures with GPU timestamps.
    pub fn has_timestamps(&self) -> bool {
        self.timestamps
    }

    /// The adapter this device runs on.
    pub fn adapter(&self) -> &AdapterReport {
        &self.info
    }

    /// Whether the kernels use subgroup operations.
    pub fn uses_subgroups(&self) -> bool {
        self.subgroups
    }

    /// The matrix units' shape S (S×S×S f16 → f32) the many-token products use, if any.
    pub fn matrix_size(&self) -> Option<u32> {
        self.coop
            .filter(|(_, m)| *m != Matrices::Off)
            .map(|(s, _)| s)
    }

    /// The largest weight chunk bound to one kernel, in bytes.
    pub fn max_binding_bytes(&self) -> u64 {
        self.max_binding
    }

    /// The work counted so far.
    pub fn counters(&self) -> CounterSnapshot {
        let c = &self.counters;
        CounterSnapshot {
            dispatches: c.dispatches.load(Ordering::Relaxed),
            submissions: c.submissions.load(Ordering::Relaxed),
            weight_bytes: c.weight_bytes.load(Ordering::Relaxed),
            kv_bytes: c.kv_bytes.load(Ordering::Relaxed),
            upload_bytes: c.upload_bytes.load(Ordering::Relaxed),
            readback_bytes: c.readback_bytes.load(Ordering::Relaxed),
            allocations: c.allocations.load(Ordering::Relaxed),
            passes: c.passes.load(Ordering::Relaxed),
            bind_groups: c.bind_groups.load(Ordering::Relaxed),
            matrix_products: c.matrix_products.load(Ordering::Relaxed),
        }
    }

    /// A device buffer holding `values`.
    pub fn upload_f32(&self, values: &[f32]) -> Result<Buffer, GpuError> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.upload_bytes("activations", &bytes, values.len())
    }

    /// A device buffer holding `values` (expert ids, token ids).
    pub fn upload_u32(&self, values: &[u32]) -> Result<Buffer, GpuError> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.upload_bytes("indices", &bytes, values.len())
    }

    /// Overwrites the start of `buf` with `values` (ordered before the next submission's work).
    pub fn write_f32(&self, buf: &Buffer, values: &[f32]) -> Result<(), GpuError> {
        fits_in("write_f32 values", buf.len, values.len())?;
        self.write_words(buf, values.iter().flat_map(|v| v.to_le_bytes()).collect());
        Ok(())
    }

    /// Overwrites the start of `buf` with `values`.
    pub fn write_u32(&self, buf: &Buffer, values: &[u32]) -> Result<(), GpuError> {
        fits_in("write_u32 values", buf.len, values.len())?;
        self.write_words(buf, values.iter().flat_map(|v| v.to_le_bytes()).collect());
        Ok(())
    }

    fn write_words(&self, buf: &Buffer, bytes: Vec<u8>) {
        self.queue.write_buffer(&buf.buf, 0, &bytes);
        self.counters
            .upload_bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
    }

    /// Compiles `source` (entry point `main`) against `layout` with `checks`; a compile or
    /// validation error is [`GpuError::Shader`] naming `what`.
    pub(crate) fn compile(
        &self,
        what: &str,
        source: String,
        layout: &wgpu::PipelineLayout,
        checks: wgpu::ShaderRuntimeChecks,
    ) -> Result<Arc<wgpu::ComputePipeline>, GpuError> {
        // Validation: naga's; internal: the backend's translation or the driver's build (a
        // kernel the driver refuses must be an error, not wgpu's default panic).
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let desc = wgpu::ShaderModuleDescriptor {
            label: Some(what),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        };
        // WORKAROUND: naga's runtime checks are set only through this `unsafe` entry point.
        // SAFETY: `checks` drops only what the shader needs no guard for: the weight kernels'
        // loops are bounded by their parameters and their divisors are non-zero constants or
        // parameters the host clamps (see `kernel_checks`); everything else gets all checks.
        #[allow(unsafe_code)]
        let module = unsafe { self.device.create_shader_module_trusted(desc, checks) };
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(what),
                layout: Some(layout),
                module: &module,
                entry_point: Some("main"),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                cache: None,
            });
        let refused = pollster::block_on(internal.pop());
        if let Some(err) = pollster::block_on(scope.pop()).or(refused) {
            return Err(GpuError::Shader {
                what: what.to_string(),
                message: err.to_string(),
            });
        }
        Ok(Arc::new(pipeline))
    }

    /// A zeroed device buffer of `len` f32.
    pub fn zeros(&self, len: usize) -> Result<Buffer, GpuError> {
        let buf = self.create_buffer(
            "activations",
            (len.max(1) * 4) as u64,
            wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            false,
        )?;
        Ok(Buffer { buf, len })
    }

    fn upload_bytes(&self, what: &str, bytes: &[u8], len: usize) -> Result<Buffer, GpuError> {
        let size = (bytes.len().max(4) as u64).next_multiple_of(4);
        let buf = self.create_buffer(
            what,
            size,
            wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            true,
        )?;
        fill_mapped(&buf, bytes, 0)?;
        self.counters
            .upload_bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(Buffer { buf, len })
    }

    /// Creates a buffer, turning an allocation failure into [`GpuError::OutOfMemory`].
    pub(crate) fn create_buffer(
        &self,
        what: &str,
        size: u64,
        usage: wgpu::BufferUsages,
        mapped: bool,
    ) -> Result<wgpu::Buffer, GpuError> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let buf = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(what),
            size,
            usage,
            mapped_at_creation: mapped,
        });
        self.counters.allocations.fetch_add(1, Ordering::Relaxed);
        let invalid = pollster::block_on(validation.pop());
        let oom = pollster::block_on(scope.pop());
        if oom.is_some() || invalid.is_some() {
            return Err(GpuError::OutOfMemory {
                adapter: self.info.name.clone(),
                what: what.to_string(),
                mib: size as f64 / (1 << 20) as f64,
            });
        }
        Ok(buf)
    }

    /// The device's copy bandwidth (bytes read plus written per second, best of `reps`
    /// buffer-to-buffer copies of `bytes`), the physical limit a weight product is compared to.
    pub fn copy_bandwidth(&self, bytes: usize, reps: usize) -> Result<f64, GpuError> {
        let len = (bytes / 4).max(1);
        let a = self.zeros(len)?;
        let b = self.zeros(len)?;
        // Several copies per submission: one submission and read-back cost a fixed time (over
        // a millisecond on a virtualized H200) that is no part of the bandwidth.
        const PER_SUBMISSION: usize = 8;
        let mut best = f64::MAX;
        for _ in 0..reps.max(1) {
            let t = std::time::Instant::now();
            for _ in 0..PER_SUBMISSION {
                self.copy(&a, 0, &b, 0, len)?;
            }
            self.read_f32_range(&b, 0, 1)?;
            best = best.min(t.elapsed().as_secs_f64());
        }
        Ok(2.0 * (len * 4 * PER_SUBMISSION) as f64 / best)
    }
}

/// `text` with its runs of white space (line breaks included) as one space.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn fits_in(what: &'static str, room: usize, len: usize) -> Result<(), GpuError> {
    if len > room {
        return Err(GpuError::Shape {
            what,
            expected: room,
            actual: len,
        });
    }
    Ok(())
}

fn check_len(what: &'static str, expected: usize, actual: usize) -> Result<(), GpuError> {
    if expected != actual {
        return Err(GpuError::Shape {
            what,
            expected,
            actual,
        });
    }
    Ok(())
}

fn init_buffer(
    device: &wgpu::Device,
    label: &str,
    bytes: &[u8],
    usage: wgpu::BufferUsages,
) -> wgpu::Buffer {
    let buf = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: (bytes.len() as u64).next_multiple_of(4).max(4),
        usage,
        mapped_at_creation: true,
    });
    fill_mapped(&buf, bytes, 0).expect("a fresh mapped buffer");
    buf
}

/// Writes `bytes` at byte `at` of a buffer mapped at creation, zeros around them, and unmaps it.
fn fill_mapped(buf: &wgpu::Buffer, bytes: &[u8], at: usize) -> Result<(), GpuError> {
    {
        let mut view = buf
            .get_mapped_range_mut(..)
            .map_err(|e| GpuError::Lost(e.to_string()))?;
        let (mut head, rest) = view.slice(..).split_at(at);
        let (mut body, mut tail) = rest.split_at(bytes.len());
        head.fill(0);
        body.copy_from_slice(bytes);
        tail.fill(0);
    }
    buf.unmap();
    Ok(())
}

/// Where the user wants a model to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// The runtime decides (see `localglm_glm::gpu::resolve_device`).
    #[default]
    Auto,
    /// A GPU, software adapters included; no CPU fallback.
    Gpu,
    /// The CPU kernels only.
    Cpu,
}

impl std::str::FromStr for DeviceChoice {
    type Err = GpuError;

    fn from_str(s: &str) -> Result<Self, GpuError> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "gpu" => Ok(Self::Gpu),
            "cpu" => Ok(Self::Cpu),
            _ => Err(GpuError::UnknownDevice(s.to_string())),
        }
    }
}

/// Named scratch buffers reused from one forward pass to the next, each grown (doubling) when
/// a pass needs more, so a steady decode allocates nothing.
#[derive(Debug, Default)]
pub struct Pool {
    bufs: HashMap<&'static str, Buffer>,
}

impl Pool {
    /// The buffer `name`, at least `len` elements long (its contents are whatever the last
    /// user left: callers write before they read).
    pub fn get(&mut self, gpu: &Gpu, name: &'static str, len: usize) -> Result<Buffer, GpuError> {
        if let Some(b) = self.bufs.get(name) {
            if b.len >= len {
                return Ok(b.clone());
            }
        }
        let grown = self.bufs.get(name).map_or(len, |b| len.max(2 * b.len));
        if self.bufs.contains_key(name) {
            // The old buffer is freed once no cached bind group holds it.
            gpu.release_bindings();
        }
        let b = gpu.zeros(grown)?;
        self.bufs.insert(name, b.clone());
        Ok(b)
    }
}

/// The bind group layout both kernel families use: storage buffers at 0.. (read-only where
/// `read_only[i]`), then the parameters as a uniform at a dynamic offset (what
/// [`Gpu::record`] binds).
pub(crate) fn storage_layout(
    device: &wgpu::Device,
    label: &str,
    read_only: &[bool],
) -> wgpu::BindGroupLayout {
    let buffer = |binding: usize, ty, has_dynamic_offset, min| wgpu::BindGroupLayoutEntry {
        binding: binding as u32,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty,
            has_dynamic_offset,
            min_binding_size: min,
        },
        count: None,
    };
    let mut entries: Vec<wgpu::BindGroupLayoutEntry> = read_only
        .iter()
        .enumerate()
        .map(|(i, &read_only)| {
            buffer(
                i,
                wgpu::BufferBindingType::Storage { read_only },
                false,
                None,
            )
        })
        .collect();
    entries.push(buffer(
        read_only.len(),
        wgpu::BufferBindingType::Uniform,
        true,
        wgpu::BufferSize::new(kernels::PARAMS_BYTES),
    ));
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(label),
        entries: &entries,
    })
}
