//! Backend on LocalGLM's own GLM-5.x runtime (`localglm-glm`): GGUF architecture `glm-dsa`,
//! which the published `mistralrs` cannot load.
//!
//! The prompt is the GGUF's own chat template rendered with the request's thinking switch;
//! message texts are tokenized as plain text (special-token strings typed by the user stay
//! text). Reasoning is split by token id (`<think>` / `</think>` are single special tokens),
//! so a literal "</think>" in the model's prose never ends a reasoning segment. The KV caches of
//! the last few conversations are kept ([`crate::prompt_cache`]) and each request starts from
//! the one sharing the longest prefix with its prompt.

use crate::mistral::check_gguf_file;
use crate::prompt_cache::{PromptCache, Taken};
use crate::StatsClock;
use crate::{validate, Engine, EngineError, EngineEvent, GenerateRequest, Generation, LoadSpec};
use async_trait::async_trait;
use localglm_glm::sampler::{Sampler, SamplerConfig};
use localglm_glm::spec::{Decoder, Drafting, Tuning};
use localglm_glm::template::{ChatTemplate, TemplateSource};
use localglm_glm::tokenizer::{GlmTokenizer, StreamDecoder};
use localglm_glm::{GlmError, KvCache, Model, RuntimeOptions};
use localglm_protocol::{FinishReason, ModelInfo};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Everything a loaded GLM model needs to chat.
pub struct GlmChat {
    pub model: Model,
    pub tokenizer: GlmTokenizer,
    pub template: ChatTemplate,
    pub think_open: Option<u32>,
    pub think_close: Option<u32>,
    /// Speculative decoding with the MTP block (when the model has it loaded).
    pub drafting: Drafting,
    /// What `Drafting::Auto` measured in earlier generations.
    tuning: Mutex<Tuning>,
}

impl GlmChat {
    /// Loads model, tokenizer and template from one GGUF (or split set).
    pub fn open(path: &Path, opts: RuntimeOptions) -> Result<Self, GlmError> {
        let model = Model::open(path, opts)?;
        let tokenizer = GlmTokenizer::from_gguf(model.gguf())?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let template = TemplateSource::of(model.gguf())
            .ok_or_else(|| {
                GlmError::Template(format!(
                    "{name} has no chat template (tokenizer.chat_template)"
                ))
            })?
            .compile(&name)?;
        Ok(Self {
            think_open: tokenizer.special_id("<think>"),
            think_close: tokenizer.special_id("</think>"),
            model,
            tokenizer,
            template,
            drafting: Drafting::Auto,
            tuning: Mutex::default(),
        })
    }

    /// Renders and tokenizes a conversation for generation.
    pub fn prompt(&self, request: &GenerateRequest) -> Result<Vec<u32>, GlmError> {
        let messages = &request.messages;
        let msgs = crate::prompt::template_messages(messages);
        let tok = &self.tokenizer;
        let name = |id: Option<u32>| {
            id.and_then(|i| tok.token(i))
                .unwrap_or_default()
                .to_string()
        };
        let opts = crate::prompt::template_options(request, name(tok.bos_id), name(tok.eos_id));
        let text = self.template.render(&msgs, &opts)?;
        // Message texts, kept reasoning, tool definitions and tool-call arguments are
        // user-controlled: never matched as specials. Spans in rendering order (the tools'
        // system block comes first).
        let mut owned: Vec<String> = Vec::new();
        if let Some(tools) = &request.tools {
            special_looking(tools, &mut owned);
        }
        let mut spans: Vec<&str> = owned.iter().map(String::as_str).collect();
        let mut call_strings: Vec<Vec<String>> = Vec::new();
        for t in messages {
            let mut found = Vec::new();
            if let Some(calls) = &t.tool_calls {
                special_looking(calls, &mut found);
            }
            call_strings.push(found);
        }
        for (t, calls) in messages.iter().zip(&call_strings) {
            spans.extend(t.reasoning.as_deref());
            spans.push(t.content.as_str());
            spans.extend(calls.iter().map(String::as_str));
        }
        Ok(tok.with_bos(tok.encode_prompt(&text, &spans)?))
    }
}

/// String values inside `v` that could hold a special-token string (`<…>` or `[…]`), as the
/// template writes them: raw (tool-call arguments) and JSON-escaped (tool definitions go
/// through `tojson`).
fn special_looking(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) if s.contains(['<', '[']) => {
            out.push(s.clone());
            let escaped = serde_json::to_string(s).unwrap_or_default();
            let inner = &escaped[1..escaped.len().saturating_sub(1).max(1)];
            if inner != s {
                out.push(inner.to_string());
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| special_looking(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| special_looking(x, out)),
        _ => {}
    }
}

/// The kept conversations' tokens and caches, for prefix reuse (one sequence runs at a time:
/// the lock is held for the whole generation).
type Session = Arc<Mutex<PromptCache<KvCache>>>;

struct Loaded {
    chat: Arc<GlmChat>,
    info: ModelInfo,
    /// The kept caches, for prefix reuse.
    session: Session,
}

/// The GLM-5.x backend. Holds at most one model.
#[derive(Default)]
pub struct GlmEngine {
    loaded: RwLock<Option<Loaded>>,
    options: RuntimeOptions,
}

impl GlmEngine {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_options(options: RuntimeOptions) -> Self {
        Self {
            loaded: RwLock::new(None),
            options,
        }
    }
}

#[async_trait]
impl Engine for GlmEngine {
    fn backend(&self) -> &'static str {
        "localglm-glm"
    }

    async fn load(&self, spec: LoadSpec) -> Result<ModelInfo, EngineError> {
        check_gguf_file(&spec.path)?;
        self.unload().await;
        let path = spec.path.clone();
        let mut opts = self.options.clone();
        if let Some(n) = spec.context_length {
            opts.max_context = n as usize;
        }
        if let Some(kv) = spec.kv_cache {
            opts.kv_type = kv;
        }
        opts.mtp = spec.mtp != Drafting::Fixed(0);
        let drafting = spec.mtp;
        let (device, cpu_moe) = (spec.device, spec.cpu_moe.map(|n| n as usize));
        let progress = spec.progress.clone();
        let restart = spec.progress.clone();
        let (chat, cpu_why) = tokio::task::spawn_blocking(move || {
            let mut why = None;
            let on_cpu = opts.clone();
            if opts.gpu.is_none() {
                (opts.gpu, why) = place(
                    &path,
                    device,
                    opts.kv_type,
                    opts.max_context,
                    cpu_moe,
                    opts.mtp,
                )?;
                if let (Some(p), true) = (&mut opts.gpu, progress.is_set()) {
                    p.progress = Some(Arc::new(move |done, total| {
                        progress.report("uploading weights to the GPU", done, total)
                    }));
                }
            }
            let on_gpu = opts.gpu.is_some();
            let with_drafting = |mut chat: GlmChat| {
                chat.drafting = drafting;
                chat
            };
            match GlmChat::open(&path, opts).map(with_drafting) {
                Ok(chat) => Ok((chat, why)),
                // `auto` chose the GPU and it failed there (out of memory after all): the CPU,
                // saying why. `gpu` never falls back.
                Err(e) if on_gpu && device == localglm_glm::gpu::DeviceChoice::Auto => {
                    tracing::warn!("GPU load failed, loading on the CPU: {e}");
                    restart.report("loading on the CPU", 0, 0);
                    let chat = with_drafting(GlmChat::open(&path, on_cpu)?);
                    Ok((chat, Some(format!("the GPU load failed: {e}"))))
                }
                Err(e) => Err(e),
            }
        })
        .await
        .map_err(crate::load_failed(&spec.path))?
        .map_err(crate::load_failed(&spec.path))?;
        let budget = match spec.prompt_cache {
            Some(b) => b,
            None => default_prompt_cache(&spec.path, &chat.model),
        };
        let g = chat.model.gguf();
        let info = ModelInfo {
            name: spec
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: spec.path.to_string_lossy().into_owned(),
            size_bytes: g.total_file_bytes() as f64,
            backend: self.backend().into(),
            architecture: g.architecture().map(str::to_owned),
            context_length: Some(chat.model.max_context().min(u32::MAX as usize) as u32),
            quant: None,
            supports_thinking: false,
            effort_levels: Vec::new(),
            supports_tools: false,
            placement: Some(placement_text(&chat.model, cpu_why.as_deref())),
            prompt_cache_bytes: Some(budget as f64),
            runtimes: Vec::new(),
        };
        *self.loaded.write().expect("engine lock") = Some(Loaded {
            chat: Arc::new(chat),
            info: info.clone(),
            session: Arc::new(Mutex::new(PromptCache::new(
                usize::try_from(budget).unwrap_or(usize::MAX),
            ))),
        });
        Ok(info)
    }

    fn loaded(&self) -> Option<ModelInfo> {
        self.loaded
            .read()
            .expect("engine lock")
            .as_ref()
            .map(|l| l.info.clone())
    }

    async fn generate(&self, request: GenerateRequest) -> Result<Generation, EngineError> {
        validate(&request)?;
        let (chat, session, context_length) = {
            let guard = self.loaded.read().expect("engine lock");
            let l = guard.as_ref().ok_or(EngineError::NoModel)?;
            (l.chat.clone(), l.session.clone(), l.info.context_length)
        };
        let prompt = chat
            .prompt(&request)
            .map_err(|e| EngineError::InvalidRequest(e.to_string()))?;
        if prompt.len() >= chat.model.max_context() {
            return Err(EngineError::InvalidRequest(format!(
                "the prompt has {} tokens, the context holds {}",
                prompt.len(),
                chat.model.max_context()
            )));
        }
        let cancel = CancellationToken::new();
        let (tx, rx) = mpsc::unbounded_channel();
        let job = Job {
            chat,
            session,
            prompt,
            sampling: request.sampling.clone(),
            context_length,
            cancel: cancel.clone(),
            tx,
        };
        std::thread::Builder::new()
            .name("glm-generate".into())
            .spawn(move || job.run())
            .map_err(|e| EngineError::Generation(e.to_string()))?;
        Ok(Generation::new(crate::event_stream(rx), cancel))
    }

    async fn unload(&self) {
        let old = self.loaded.write().expect("engine lock").take();
        drop(old);
    }

    async fn count_tokens(&self, request: &GenerateRequest) -> Result<u32, EngineError> {
        validate(request)?;
        let chat = {
            let guard = self.loaded.read().expect("engine lock");
            guard.as_ref().ok_or(EngineError::NoModel)?.chat.clone()
        };
        let prompt = chat
            .prompt(request)
            .map_err(|e| EngineError::InvalidRequest(e.to_string()))?;
        Ok(prompt.len() as u32)
    }
}

/// One generation, run on its own thread (the forward pass is blocking, parallel inside).
struct Job {
    chat: Arc<GlmChat>,
    session: Session,
    prompt: Vec<u32>,
    sampling: crate::SamplingParams,
    context_length: Option<u32>,
    cancel: CancellationToken,
    tx: mpsc::UnboundedSender<EngineEvent>,
}

impl Job {
    fn run(self) {
        let mut clock = StatsClock::start(self.prompt.len() as u32);
        clock.track_reasoning();
        // One sequence at a time: a second generation waits for the first to give the cache
        // back.
        let mut store = self.session.lock().unwrap_or_else(|p| p.into_inner());
        // Start from the kept cache sharing the longest prefix (at least one prompt token is
        // always computed).
        let Taken {
            mut tokens,
            mut cache,
            reused,
        } = store.take(&self.prompt, || self.chat.model.new_cache());
        clock.cached_tokens(reused as u32);

        let (reason, error) = self.generate(&mut tokens, &mut cache, &mut clock);
        // Tokens and cache agree again: sampled tokens never fed are dropped, and so are
        // accepted drafts past a stop (a cut with the MTP block may keep one token fewer).
        cache.truncate(tokens.len());
        tokens.truncate(cache.len());
        let stats = clock.finish(None, self.context_length);
        store.put(tokens, cache);
        drop(store);
        let _ = self.tx.send(EngineEvent::Finished {
            reason,
            stats,
            error,
        });
    }

    fn generate(
        &self,
        tokens: &mut Vec<u32>,
        cache: &mut KvCache,
        clock: &mut StatsClock,
    ) -> (FinishReason, Option<EngineError>) {
        let chat = &self.chat;
        let s = &self.sampling;
        let sampler = Sampler::new(SamplerConfig {
            temperature: s.temperature as f32,
            top_p: s.top_p as f32,
            top_k: s.top_k.map(|k| k as usize),
            min_p: s.min_p.unwrap_or(0.0) as f32,
            repetition_penalty: s.repetition_penalty.unwrap_or(1.0) as f32,
            seed: s.seed.map(u64::from).unwrap_or_else(rand_seed),
        });
        // Auto's choice of drafts follows measured timings, and each choice draws differently
        // from the seeded stream (and a pass over several tokens may round differently from
        // one over one): a request that names a seed decodes without drafting under Auto, so
        // that its seed reproduces its text.
        let drafting = match chat.drafting {
            Drafting::Auto if s.seed.is_some() => Drafting::Fixed(0),
            d => d,
        };
        let tuning = chat
            .tuning
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut decoder = Decoder::new(&chat.model, sampler, drafting).with_tuning(tuning);
        let result = self.decode(&mut decoder, tokens, cache, clock);
        *chat.tuning.lock().unwrap_or_else(|p| p.into_inner()) = decoder.tuning().clone();
        if decoder.drafts() {
            let d = decoder.stats;
            clock.drafts(d.drafted as u32, d.accepted as u32);
        }
        result
    }

    fn decode(
        &self,
        decoder: &mut Decoder,
        tokens: &mut Vec<u32>,
        cache: &mut KvCache,
        clock: &mut StatsClock,
    ) -> (FinishReason, Option<EngineError>) {
        let chat = &self.chat;
        let fail = |e: String| (FinishReason::Error, Some(EngineError::Generation(e)));
        let max_tokens = self.sampling.max_tokens;
        let mut in_reasoning =
            self.prompt.last().copied() == chat.think_open && chat.think_open.is_some();
        let mut text_decoder = StreamDecoder::default();
        let mut pending: Vec<u32> = self.prompt[tokens.len()..].to_vec();
        tokens.extend_from_slice(&pending);
        let mut produced = 0;
        while produced < max_tokens {
            if self.cancel.is_cancelled() || self.tx.is_closed() {
                return (FinishReason::Cancelled, None);
            }
            let next = match decoder.step(cache, tokens, &pending) {
                Ok(t) => t,
                Err(localglm_glm::GlmError::ContextFull { .. }) => {
                    return (FinishReason::Length, None);
                }
                Err(e) => return fail(e.to_string()),
            };
            // One token, or with drafting the accepted drafts and the token after them.
            for &next in &next {
                if produced == max_tokens {
                    break;
                }
                produced += 1;
                clock.tokens(1);
                if in_reasoning {
                    clock.reasoning_tokens(1);
                }
                if chat.tokenizer.stop_ids.contains(&next) {
                    return (FinishReason::Stop, None);
                }
                tokens.push(next);
                if Some(next) == chat.think_open || Some(next) == chat.think_close {
                    in_reasoning = Some(next) == chat.think_open;
                    continue;
                }
                let text = match text_decoder.push(&chat.tokenizer, next) {
                    Ok(t) => t,
                    Err(e) => return fail(e.to_string()),
                };
                if !text.is_empty() {
                    let ev = if in_reasoning {
                        EngineEvent::Reasoning(text)
                    } else {
                        EngineEvent::Content(text)
                    };
                    if self.tx.send(ev).is_err() {
                        return (FinishReason::Cancelled, None);
                    }
                }
            }
            pending = vec![*tokens.last().expect("a token was pushed")];
        }
        (FinishReason::Length, None)
    }
}

fn rand_seed() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(42)
}

/// "CPU" (with why `Auto` chose it), or "GPU · Vulkan · <adapter>" with ", experts of N
/// layers in RAM" when some stay.
pub fn placement_text(model: &Model, cpu_why: Option<&str>) -> String {
    match (model.gpu_placement(), cpu_why) {
        (None, None) => "CPU".into(),
        (None, Some(why)) => format!("CPU (Auto: {why})"),
        (Some((adapter, _, 0)), _) => format!("GPU · {} · {}", adapter.backend, adapter.name),
        (Some((adapter, _, n)), _) => format!(
            "GPU · {} · {}, experts of {n} layer{} in RAM",
            adapter.backend,
            adapter.name,
            if n == 1 { "" } else { "s" }
        ),
    }
}

/// Where a GLM load runs, decided before anything is allocated: the user's device choice
/// resolved against this machine's adapters and the fit planner — the plan the app shows is
/// the one run. Returns the placement (`None`: the CPU kernels) and, when `Auto` chose the
/// CPU, why.
///
/// * `Cpu` → the CPU.
/// * `Gpu` → the best adapter (software ones included) with the planner's number of MoE
///   layers whose experts stay in RAM (`cpu_moe` when given); no adapter, or a placement that
///   cannot fit, is an error — never the CPU in its place.
/// * `Auto` → the GPU when there is a hardware adapter (or one named by
///   `LOCALGLM_GPU_ADAPTER`), the planner knows its memory (NVML's free VRAM, the Metal
///   working set, `LOCALGLM_MACHINE`, or a discrete GPU's own heap size from Vulkan) and
///   places the model there (all of it, or with the
///   experts of `cpu_moe` / the planner's number of layers in RAM); else the CPU, saying why.
///
/// `mtp`: the MTP block is loaded (drafting not off), so the plan counts it.
pub fn place(
    path: &Path,
    device: localglm_glm::gpu::DeviceChoice,
    kv: localglm_glm::KvType,
    max_context: usize,
    cpu_moe: Option<usize>,
    mtp: bool,
) -> Result<(Option<localglm_glm::GpuPlacement>, Option<String>), GlmError> {
    use localglm_glm::gpu::{resolve_device, DeviceChoice};
    let cpu_moe = match device {
        DeviceChoice::Cpu => return Ok((None, None)),
        DeviceChoice::Gpu => {
            localglm_glm::gpu::check_device(DeviceChoice::Gpu)?;
            plan_gpu_load(path, kv, max_context, cpu_moe, mtp)?
        }
        DeviceChoice::Auto => {
            // Whatever stops the GPU here (no plan, a device that will not open) means the
            // CPU, with the reason shown.
            let n = match auto_plan(path, kv, max_context, cpu_moe, mtp) {
                AutoPlan::Gpu { cpu_moe } => cpu_moe,
                AutoPlan::Cpu { why } => return Ok((None, Some(why))),
            };
            return Ok(match resolve_device(DeviceChoice::Gpu, Some(n)) {
                Ok(gpu) => (gpu, None),
                Err(e) => (None, Some(format!("the GPU did not open: {e}"))),
            });
        }
    };
    Ok((resolve_device(DeviceChoice::Gpu, cpu_moe)?, None))
}

/// `Auto`'s verdict.
enum AutoPlan {
    /// The GPU, the routed experts of `cpu_moe` MoE layers in RAM.
    Gpu { cpu_moe: usize },
    /// The CPU, and why (shown in the placement).
    Cpu { why: String },
}

fn auto_plan(
    path: &Path,
    kv: localglm_glm::KvType,
    max_context: usize,
    cpu_moe: Option<usize>,
    mtp: bool,
) -> AutoPlan {
    use localglm_planner::{plan, Verdict};
    let cpu = |why: String| AutoPlan::Cpu { why };
    let Ok(adapter) = localglm_gpu::find_adapter(&Default::default()) else {
        return cpu("no hardware GPU adapter".into());
    };
    // (The planner's view of this machine includes a discrete GPU's Vulkan memory where NVML
    // is absent; an integrated GPU without unified-memory accounting shares the CPU's memory
    // and bandwidth: nothing to plan for.)
    let hw = this_hardware();
    if localglm_planner::gpu_budget(&hw).is_none() {
        return cpu(format!(
            "the memory of {} is unknown; choose GPU to use it",
            adapter.name
        ));
    }
    let spec = match planned_spec(path, mtp) {
        Ok(spec) => spec,
        Err(e) => return cpu(format!("no GPU plan: {e}")),
    };
    let p = plan(
        &hw,
        &spec,
        context_of(max_context),
        kv,
        placement_of(cpu_moe),
    );
    match p.verdict {
        Verdict::Gpu | Verdict::GpuCpuExperts => AutoPlan::Gpu {
            cpu_moe: p.cpu_moe_layers as usize,
        },
        Verdict::Cpu | Verdict::NoFit => cpu(format!("the model does not fit {}", adapter.name)),
    }
}

/// The planner's view of the file at `path`, counting its MTP block only when `mtp` (the
/// runtime loads it unless drafting is off).
pub fn planned_spec(
    path: &Path,
    mtp: bool,
) -> Result<localglm_planner::ModelSpec, localglm_planner::SpecError> {
    let mut spec = localglm_planner::local_spec(path)?;
    spec.mtp &= mtp;
    Ok(spec)
}

/// The default prompt-cache budget: one KV cache of the context the fit planner planned for
/// (which the plan already counts), so keeping several shorter conversations never takes more
/// memory than one full one.
fn default_prompt_cache(path: &Path, model: &Model) -> u64 {
    let ctx = context_of(model.options().max_context);
    match planned_spec(path, model.options().mtp) {
        Ok(spec) => localglm_planner::kv_bytes(&spec, ctx, model.options().kv_type),
        // A file the planner cannot read: one cache of the model's context.
        Err(_) => model.kv_bytes(model.max_context()),
    }
}

/// The planner's view of this machine (`LOCALGLM_MACHINE` stands in for it, as in the app's
/// fit check).
fn this_hardware() -> localglm_hardware::Hardware {
    localglm_planner::view::hardware(&localglm_protocol::MachineSpec {
        id: "this".into(),
        ram_gib: 0.0,
        vram_gib: None,
        unified: false,
        gpu_limit_gib: None,
    })
}

/// The context the plan is made for (the runtime's default when 0).
fn context_of(max_context: usize) -> u64 {
    match max_context {
        0 => 32_768,
        n => n as u64,
    }
}

fn placement_of(cpu_moe: Option<usize>) -> localglm_planner::Placement {
    match cpu_moe {
        Some(n) => localglm_planner::Placement::CpuMoe(n as u32),
        None => localglm_planner::Placement::Auto,
    }
}

/// The fit planner's verdict on a GPU load, before anything is allocated: the planned number of
/// MoE layers whose experts stay in RAM — `cpu_moe` when given (checked to fit), else the
/// fewest that make the model, its KV cache and scratch fit the GPU this machine reports
/// (NVML's free VRAM or the Metal working-set limit; `LOCALGLM_MACHINE` stands in for this
/// machine as in the app's fit check, so the plan the app shows is the one run). A placement
/// that cannot fit is an error naming the numbers. Where the GPU's memory is unknown (no NVML,
/// a software adapter) `cpu_moe` is returned as given and an allocation that fails says so.
pub fn plan_gpu_load(
    path: &Path,
    kv: localglm_glm::KvType,
    max_context: usize,
    cpu_moe: Option<usize>,
    mtp: bool,
) -> Result<Option<usize>, GlmError> {
    use localglm_planner::{plan, Placement, Verdict};
    let hw = this_hardware();
    if localglm_planner::gpu_budget(&hw).is_none() {
        return Ok(cpu_moe);
    }
    let spec = planned_spec(path, mtp).map_err(|e| GlmError::Load(e.to_string()))?;
    let context = context_of(max_context);
    let placement = placement_of(cpu_moe);
    let p = plan(&hw, &spec, context, kv, placement);
    match p.verdict {
        Verdict::Gpu | Verdict::GpuCpuExperts => Ok(Some(p.cpu_moe_layers as usize)),
        Verdict::Cpu | Verdict::NoFit => {
            // What the GPU would have to hold with the experts of `k` (or all) MoE layers in
            // RAM: the non-expert weights, the rest of the experts, the KV cache and scratch.
            let k = cpu_moe.map_or(p.moe_layers, |n| n as u32);
            let q = plan(&hw, &spec, context, kv, Placement::CpuMoe(k)).bytes;
            let gb = |b: u64| b as f64 / 1e9;
            let placed = match cpu_moe {
                Some(n) => format!("with the experts of {n} MoE layers in RAM"),
                None => "even with every MoE layer's experts in RAM".into(),
            };
            Err(GlmError::Load(format!(
                "the model does not fit this GPU {placed}: it needs {:.2} GB there (weights \
                 {:.2} GB, KV cache {:.2} GB, scratch {:.2} GB) and the GPU offers {:.2} GB; keep \
                 more MoE layers' experts in RAM, shorten the context, use a q8_0 KV cache, or \
                 run on the CPU",
                gb(q.weights_gpu + q.kv + q.scratch),
                gb(q.weights_gpu),
                gb(q.kv),
                gb(q.scratch),
                gb(q.gpu_budget)
            )))
        }
    }
}
