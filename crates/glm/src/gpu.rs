//! The device seam of the GLM runtime: which weights live on the GPU, and the weight products
//! that run there.
//!
//! Invariants:
//! * With a [`GpuPlacement`], every weight the forward pass multiplies by — attention, the
//!   indexer, dense FFNs, shared experts, routers, the head, and the routed experts of every
//!   MoE layer but the first `cpu_moe` — is uploaded once at load in its GGUF block type; the
//!   routed experts of the first `cpu_moe` MoE layers stay in the memory map and run on the
//!   CPU kernels (llama.cpp's `--n-cpu-moe`).
//! * Weights multiplied by the same activations become one device weight where they share a
//!   type and width — a FFN's gate and up projections (dense, shared expert, routed experts;
//!   per expert gate's rows then up's), and MLA's q_a, kv_a and (on a full indexer layer) the
//!   indexer's key projection — so one product computes them all, unless the device reads the
//!   file's pages in place (stacking would copy them) or the placement asks for them apart; the
//!   pass then runs a product each.
//! * A product on the GPU computes in f32 from the block-decoded weights; the CPU path's int8
//!   activations are not used there. Where the device has matrix units (cooperative matrices)
//!   a product of many tokens runs on them with f16 copies of the weights and activations and
//!   f32 sums — the fast default's counterpart of the CPU's int8 activations, closer to the
//!   reference than those; a model opened with exact products (`Activations::F32`) keeps every
//!   product in f32 (`QWeight::set_matrices`).
//! * The forward pass (`pass`) then runs over the device's ops (`gpu_ops`); the CPU's ops
//!   (`cpu_ops`) never touch the GPU — a MoE layer whose routed experts are in RAM hands the
//!   CPU kernels only those (`Model::moe_routed`).
//! * With the MTP block loaded, its weights are placed like a trunk layer's, but its routed
//!   experts go to the device only when no trunk layer's stay in RAM (the fit planner counts
//!   the block the same way unless drafting is off).

use crate::weights::{DenseFfn, Ffn, GateUp, LayerWeights, MtpWeights, QTensor, Weights};
use crate::GlmError;
use localglm_gguf::GgufModel;
use localglm_gpu::{Gpu, QWeight};
use std::collections::HashMap;
use std::sync::Arc;

/// Told `(bytes uploaded, bytes in all)` while the weights go to the GPU.
pub type UploadProgress = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// Where the model runs on a GPU.
#[derive(Clone)]
pub struct GpuPlacement {
    /// The device.
    pub gpu: Arc<Gpu>,
    /// The routed experts of the first this-many MoE layers stay in RAM and run on the CPU.
    pub cpu_moe: usize,
    /// Told how the upload goes, after each tensor.
    pub progress: Option<UploadProgress>,
    /// Keep every weight its own device weight (a product each) even where the device copies
    /// the weights; by default a copying device stacks a FFN's gate and up, and MLA's q_a, kv_a
    /// and indexer key, into one weight, one product (a device that reads the file's pages in
    /// place always keeps them apart).
    pub separate_weights: bool,
}

impl std::fmt::Debug for GpuPlacement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuPlacement")
            .field("gpu", &self.gpu)
            .field("cpu_moe", &self.cpu_moe)
            .field("progress", &self.progress.is_some())
            .field("separate_weights", &self.separate_weights)
            .finish()
    }
}

/// The weights uploaded to the device, by tensor name.
pub(crate) struct GpuWeights {
    pub(crate) gpu: Arc<Gpu>,
    by_name: HashMap<String, QWeight>,
    /// MoE layers whose routed experts stayed on the CPU.
    pub(crate) cpu_moe: usize,
    /// Bytes uploaded.
    pub(crate) bytes: u64,
    /// Norm vectors and biases for the device-resident pass.
    pub(crate) device: Option<crate::gpu_ops::DeviceModel>,
    /// Scratch buffers of the device-resident pass, reused from token to token.
    pub(crate) scratch: std::sync::Mutex<localglm_gpu::Pool>,
    /// Weights the device reads in place from the file's memory map (Apple unified memory).
    pub(crate) in_place_bytes: u64,
    /// Exact f32 products only: no f16 matrix units (`Activations::F32`).
    exact: bool,
    /// The memory map those weights live in, kept until they are gone (dropped last).
    map: Arc<GgufModel>,
}

impl GpuWeights {
    pub(crate) fn upload(
        g: &Arc<GgufModel>,
        w: &Weights,
        mtp: Option<&MtpWeights>,
        placement: &GpuPlacement,
        exact: bool,
    ) -> Result<Self, GlmError> {
        let mut out = Self {
            exact,
            in_place_bytes: 0,
            map: g.clone(),
            gpu: placement.gpu.clone(),
            by_name: HashMap::new(),
            cpu_moe: 0,
            bytes: 0,
            device: None,
            scratch: Default::default(),
        };
        let mut tensors = vec![Upload::One(&w.output)];
        let mut moe_seen = 0;
        for l in &w.layers {
            let experts = match l.ffn {
                Ffn::Moe(_) => {
                    moe_seen += 1;
                    let on_cpu = moe_seen <= placement.cpu_moe;
                    out.cpu_moe += usize::from(on_cpu);
                    !on_cpu
                }
                Ffn::Dense(_) => true,
            };
            layer_tensors(l, experts, &mut tensors);
        }
        if let Some(m) = mtp {
            // The MTP block's routed experts go to the device only when every trunk layer's
            // did (the fit planner counts them the same way: with the trunk's, or in RAM).
            layer_tensors(&m.layer, placement.cpu_moe == 0, &mut tensors);
            tensors.push(Upload::One(&m.eh_proj));
            tensors.extend(m.head.iter().map(Upload::One));
        }
        // Stacks only where the device copies anyway, and the parts match in type and width.
        let stack = !placement.separate_weights && !out.gpu.reads_weights_in_place();
        let tensors: Vec<Upload> = tensors
            .into_iter()
            .flat_map(|u| match u {
                Upload::Stack(parts) if !(stack && stacks_with(&parts)) => {
                    parts.into_iter().map(Upload::One).collect()
                }
                u => vec![u],
            })
            .collect();
        let mut seen = std::collections::HashSet::new();
        let tensors: Vec<Upload> = tensors
            .into_iter()
            .filter(|u| seen.insert(u.key()))
            .collect();
        let total: u64 = tensors.iter().map(|u| u.bytes(g)).sum();
        let mut done = 0;
        for u in tensors {
            match u {
                Upload::One(t) => out.put(g, t)?,
                Upload::Stack(ref parts) => out.put_stack(g, parts)?,
            }
            done += u.bytes(g);
            if let Some(report) = &placement.progress {
                report(done, total);
            }
        }
        out.device = Some(crate::gpu_ops::DeviceModel::upload(g, &out.gpu, w, mtp)?);
        Ok(out)
    }

    fn put(&mut self, g: &GgufModel, t: &QTensor) -> Result<(), GlmError> {
        debug_assert!(std::ptr::eq(g, &*self.map));
        // SAFETY: the bytes are in the read-only memory map of `self.map`, which this struct
        // keeps (and drops after the weights).
        #[allow(unsafe_code)]
        let mut q = unsafe {
            self.gpu.upload_weight_in_place(
                &t.info.name,
                t.ty(),
                t.bytes(g),
                t.dim(2),
                t.rows(),
                t.cols(),
            )
        }?;
        // MLA's per-head products (q̃ = K_b·q_nope, V_b) stay f32 in the fast mode too: they feed
        // the attention scores directly and are ~3 % of a prompt's multiply-adds; with f16 inputs
        // the fixtures' long prompts flipped the indexer's top-k (a logit moved by 1.9).
        let per_head = ["attn_k_b.weight", "attn_v_b.weight"].map(|s| t.info.name.ends_with(s));
        q.set_matrices(!self.exact && !per_head.contains(&true));
        self.bytes += q.bytes();
        if q.in_place() {
            self.in_place_bytes += q.bytes();
        }
        self.by_name.insert(t.info.name.clone(), q);
        Ok(())
    }

    /// `parts` as one weight on the device (per expert, each part's rows after the last's).
    fn put_stack(&mut self, g: &GgufModel, parts: &[&QTensor]) -> Result<(), GlmError> {
        let first = parts[0];
        let bytes: Vec<(&[u8], usize)> = parts.iter().map(|t| (t.bytes(g), t.rows())).collect();
        let mut q = self.gpu.upload_weight_stack(
            &first.info.name,
            first.ty(),
            &bytes,
            first.dim(2),
            first.cols(),
        )?;
        q.set_matrices(!self.exact);
        self.bytes += q.bytes();
        self.by_name.insert(stack_key(parts), q);
        Ok(())
    }

    /// The device copy of `t`, when it has one.
    pub(crate) fn get(&self, t: &QTensor) -> Option<&QWeight> {
        self.by_name.get(&t.info.name)
    }

    /// `parts` stacked into one device weight, when they were (see
    /// [`GpuPlacement::separate_weights`]): per expert, each part's rows after the last's.
    pub(crate) fn stack(&self, parts: &[&QTensor]) -> Option<&QWeight> {
        self.by_name.get(&stack_key(parts))
    }
}

/// A weight to upload: one tensor, or tensors multiplied by the same activations (stacked
/// into one device weight where [`stacks_with`] and the device allow, else one by one).
#[derive(Clone)]
enum Upload<'a> {
    One(&'a QTensor),
    Stack(Vec<&'a QTensor>),
}

impl Upload<'_> {
    fn key(&self) -> String {
        match self {
            Upload::One(t) => t.info.name.clone(),
            Upload::Stack(parts) => stack_key(parts),
        }
    }

    fn bytes(&self, g: &GgufModel) -> u64 {
        match self {
            Upload::One(t) => t.bytes(g).len() as u64,
            Upload::Stack(parts) => parts.iter().map(|t| t.bytes(g).len() as u64).sum(),
        }
    }
}

fn stack_key(parts: &[&QTensor]) -> String {
    let names: Vec<&str> = parts.iter().map(|t| t.info.name.as_str()).collect();
    names.join("+")
}

/// Whether `parts` can be one device weight: the same type, experts and width.
fn stacks_with(parts: &[&QTensor]) -> bool {
    let key = |t: &QTensor| (t.ty(), t.dim(2), t.cols());
    parts.iter().all(|t| key(t) == key(parts[0]))
}

/// The weights of layer `l` the device pass multiplies by (its routed experts only with
/// `experts`).
fn layer_tensors<'a>(l: &'a LayerWeights, experts: bool, out: &mut Vec<Upload<'a>>) {
    match l.attn.mla() {
        // The products of the attention's input: the pass asks for them together.
        Some(a) => {
            out.push(Upload::Stack(a.input_products(l.indexer.as_ref())));
            out.extend([&a.q_b, &a.k_b, &a.v_b].map(Upload::One));
        }
        None => out.extend(l.attn.products().into_iter().map(Upload::One)),
    }
    out.push(Upload::One(&l.out));
    if let Some(ix) = &l.indexer {
        out.extend([&ix.q_b, &ix.proj].map(Upload::One));
    }
    let dense = |f: &'a DenseFfn| [Upload::Stack(vec![&f.gate, &f.up]), Upload::One(&f.down)];
    match &l.ffn {
        Ffn::Dense(f) => out.extend(dense(f)),
        Ffn::Moe(m) => {
            out.push(Upload::One(&m.router));
            if let Some(f) = &m.shared {
                out.extend(dense(f));
            }
            if experts {
                out.push(match &m.gate_up {
                    GateUp::Separate { gate, up } => Upload::Stack(vec![gate, up]),
                    GateUp::Fused(t) => Upload::One(t),
                });
                out.push(Upload::One(&m.down));
            }
        }
    }
}

pub use localglm_gpu::DeviceChoice;

/// Turns the user's device choice into a placement, without the fit planner (which lives
/// above this crate: `localglm_engine::glm::place` decides `Auto` and the number of expert
/// layers in RAM, then calls this with `Gpu`).
///
/// * `Cpu` and `Auto` → `None` (the CPU kernels).
/// * `Gpu` → the best adapter, software ones (lavapipe) included, or [`GlmError::Gpu`] saying
///   why there is none — never the CPU in its place.
///
/// `cpu_moe`: MoE layers whose routed experts stay in RAM (0 when not given).
pub fn resolve_device(
    choice: DeviceChoice,
    cpu_moe: Option<usize>,
) -> Result<Option<GpuPlacement>, GlmError> {
    if choice != DeviceChoice::Gpu {
        return Ok(None);
    }
    let opts = localglm_gpu::GpuOptions {
        allow_software: true,
        ..Default::default()
    };
    let gpu = Gpu::new(&opts)?;
    if let Some(why) = gpu.matrix_fallback() {
        tracing::warn!("{}: {why}", gpu.adapter().name);
    }
    Ok(Some(GpuPlacement {
        gpu: Arc::new(gpu),
        cpu_moe: cpu_moe.unwrap_or(0),
        progress: None,
        separate_weights: false,
    }))
}

/// Whether `choice` can be honoured on this machine, checked without opening a device (so a
/// caller can refuse a load before letting go of the model it has).
pub fn check_device(choice: DeviceChoice) -> Result<(), GlmError> {
    if choice != DeviceChoice::Gpu {
        return Ok(());
    }
    localglm_gpu::find_adapter(&localglm_gpu::GpuOptions {
        allow_software: true,
        ..Default::default()
    })?;
    Ok(())
}
