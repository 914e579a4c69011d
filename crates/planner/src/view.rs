//! Plans as the app shows them (the IPC types of `localglm-protocol`).

use crate::{catalog, plan, KvType, ModelSpec, Placement, Plan, SpecError};
use localglm_hardware::Hardware;
use localglm_protocol::{
    FitBytes, FitFix, FitPlan, FitRequest, MachineSpec, QuantCatalog, QuantRow,
};

/// The hardware a request names: this machine, or a described one.
///
/// `LOCALGLM_MACHINE` (a `MachineSpec` as JSON) stands in for "this" machine, for tests and
/// demos. This machine as probed also counts a discrete GPU that NVML does not see (AMD, Intel,
/// or NVIDIA without NVML) with the memory its Vulkan driver reports — the same view the
/// runtime's `auto` placement plans with.
pub fn hardware(m: &MachineSpec) -> Hardware {
    if m.id == "this" {
        let stand_in = std::env::var("LOCALGLM_MACHINE")
            .ok()
            .and_then(|j| serde_json::from_str::<MachineSpec>(&j).ok())
            .filter(|s| s.id != "this");
        return match stand_in {
            Some(s) => hardware(&s),
            None => probe_this(),
        };
    }
    if m.unified {
        Hardware::simulated(m.ram_gib, None, Some(m.gpu_limit_gib))
    } else {
        Hardware::simulated(m.ram_gib, m.vram_gib, None)
    }
}

fn probe_this() -> Hardware {
    let mut hw = Hardware::probe();
    if hw.gpus.is_empty() && hw.unified.is_none() {
        hw.gpus.extend(discrete_gpus().iter().cloned());
    }
    hw
}

/// Discrete GPUs with the memory their API reports (found once: adapters do not come and go
/// while the app runs). Free memory is not known this way: the total is used.
fn discrete_gpus() -> &'static [localglm_hardware::Gpu] {
    static FOUND: std::sync::OnceLock<Vec<localglm_hardware::Gpu>> = std::sync::OnceLock::new();
    FOUND.get_or_init(|| {
        localglm_gpu::adapters()
            .into_iter()
            .filter(|a| a.device_type == "DiscreteGpu")
            .filter_map(|a| {
                let bytes = a.memory_bytes?;
                Some(localglm_hardware::Gpu {
                    name: a.name,
                    vram_total: bytes,
                    vram_free: bytes,
                })
            })
            .collect()
    })
}

fn to_view(p: &Plan, estimated: bool) -> FitPlan {
    let b = &p.bytes;
    let f = |x: u64| x as f64;
    FitPlan {
        verdict: serde_plain(p.verdict),
        cpu_moe_layers: p.cpu_moe_layers,
        moe_layers: p.moe_layers,
        context: p.context.min(u32::MAX as u64) as u32,
        max_context: p.max_context.min(u32::MAX as u64) as u32,
        kv_type: serde_plain(p.kv_type),
        bytes: FitBytes {
            weights_gpu: f(b.weights_gpu),
            weights_cpu: f(b.weights_cpu),
            experts_gpu: f(b.experts_gpu),
            experts_cpu: f(b.experts_cpu),
            kv: f(b.kv),
            scratch: f(b.scratch),
            os_reserve: f(b.os_reserve),
            gpu_budget: f(b.gpu_budget),
            ram_budget: f(b.ram_budget),
            gpu_used: f(b.gpu_used),
            ram_used: f(b.ram_used),
        },
        model_bytes: f(p.model_bytes),
        fixes: p
            .fixes
            .iter()
            .map(|x| FitFix {
                kind: x.kind.clone(),
                text: x.text.clone(),
            })
            .collect(),
        summary: p.summary.clone(),
        estimated,
    }
}

/// A unit enum's serde name.
fn serde_plain<T: serde::Serialize>(v: T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn settings(r: &FitRequest) -> (u64, KvType, Placement) {
    let kv = KvType::parse(&r.kv_type).unwrap_or(KvType::F16);
    let placement = match r.cpu_moe {
        Some(k) => Placement::CpuMoe(k),
        None => Placement::Auto,
    };
    (u64::from(r.context.max(1)), kv, placement)
}

/// A model's plan for the request.
pub fn plan_spec(spec: &ModelSpec, r: &FitRequest, estimated: bool) -> FitPlan {
    let (ctx, kv, placement) = settings(r);
    let ctx = ctx.min(spec.context_max);
    let spec = &with_mtp(spec.clone(), r);
    to_view(
        &plan(&hardware(&r.machine), spec, ctx, kv, placement),
        estimated,
    )
}

/// `spec` with its MTP block counted as the request says (by default it is).
fn with_mtp(mut spec: ModelSpec, r: &FitRequest) -> ModelSpec {
    spec.mtp &= r.mtp.unwrap_or(true);
    spec
}

/// Every quant of the requested GLM-5.x family (`FitRequest::family`, GLM-5.2 by default)
/// with its (estimated) plan; an unknown family is an error naming the ones there are.
pub fn quant_catalog(r: &FitRequest) -> Result<QuantCatalog, SpecError> {
    let f = requested_family(r)?;
    let hw = hardware(&r.machine);
    let (ctx, kv, _) = settings(r);
    let rows = f
        .rows()
        .map(|q| {
            let spec = with_mtp(catalog::estimated_spec(f, &q), r);
            let p = plan(&hw, &spec, ctx.min(spec.context_max), kv, Placement::Auto);
            QuantRow {
                label: q.label.into(),
                bits: q.bits.into(),
                size_bytes: q.size_bytes as f64,
                size_confidence: serde_plain(q.size_confidence),
                shards: q.shards,
                memory_guidance: q.memory_guidance as f64,
                quality: q.quality.map(str::to_owned),
                plan: to_view(&p, true),
            }
        })
        .collect();
    Ok(QuantCatalog {
        family: f.name.into(),
        families: catalog::FAMILIES.iter().map(|f| f.name.into()).collect(),
        repo: f.repo.into(),
        context_max: f.context as u32,
        sizes_note: f.sizes_from.map(|from| {
            format!(
                "{} sizes are estimated from {from}'s files (same architecture and shapes); \
                 the exact plan reads the real headers.",
                f.name
            )
        }),
        machine: hw.describe(),
        rows,
    })
}

fn requested_family(r: &FitRequest) -> Result<&'static catalog::Family, SpecError> {
    catalog::family(r.family.as_deref()).ok_or_else(|| {
        let names: Vec<&str> = catalog::FAMILIES.iter().map(|f| f.name).collect();
        SpecError::UnknownFamily {
            name: r.family.clone().unwrap_or_default(),
            known: names.join(", "),
        }
    })
}

/// The plan of one catalog quant of the requested family, e.g. with a forced expert placement.
pub fn plan_quant(label: &str, r: &FitRequest) -> Option<FitPlan> {
    let f = requested_family(r).ok()?;
    let q = f.quant(label)?;
    Some(plan_spec(&catalog::estimated_spec(f, &q), r, true))
}
