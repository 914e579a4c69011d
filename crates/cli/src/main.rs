//! `localglm`: the headless CLI on the same crates as the desktop app.
//!
//! Output contract: the answer goes to stdout and nothing else does; reasoning (prefixed
//! `thinking> `), progress and the stats line go to stderr, so `localglm chat ... > answer.txt`
//! captures exactly the answer.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use futures::StreamExt;
use localglm_engine::auto::AutoEngine;
use localglm_engine::{
    ChatTurn, Engine, EngineEvent, GenerateRequest, LoadSpec, Role, SamplingParams,
};
use localglm_protocol::{FinishReason, GenerationStats};
use std::io::{BufRead, Write};
use std::path::PathBuf;

mod bench;
mod fit;
mod gpu;
mod inspect;
mod logprobs;
mod prompt;
mod pull;

#[derive(Parser)]
#[command(
    name = "localglm",
    version,
    about = "LocalGLM headless: chat with local GGUF models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Chat with a model: one PROMPT, or an interactive loop without it.
    Chat(ChatArgs),
    /// Print where LocalGLM keeps its data.
    Paths,
    /// List the GPU adapters the GLM runtime can run on (name, backend, limits, features).
    Gpu {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Check every weight kernel of the adapter the GPU backend would use (or the one
        /// `LOCALGLM_GPU_ADAPTER` names) against the CPU, for every type, on random blocks;
        /// exits non-zero if one is wrong.
        #[arg(long)]
        check: bool,
    },
    /// Will a model fit this machine (or a described one), and how is it placed: from GGUF
    /// headers alone, for a local file or a remote URL.
    Fit(fit::FitArgs),
    /// Download a model from Hugging Face (`HF_ENDPOINT` to use a mirror): every shard of
    /// REPO[:QUANT], verified before use. Ctrl-C pauses; the same command resumes.
    Pull {
        /// e.g. `unsloth/GLM-5.2-GGUF:UD-IQ2_M`
        model: String,
    },
    /// Serve the model over an OpenAI-compatible HTTP API (`/v1/models`,
    /// `/v1/chat/completions`, streaming included) on loopback unless told otherwise.
    Serve {
        /// GGUF file to load (default: the installed default model).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Address to bind; anything but loopback exposes the model to the network.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Require `Authorization: Bearer KEY` (default: `LOCALGLM_API_KEY`, else none).
        #[arg(long = "api-key", env = "LOCALGLM_API_KEY")]
        api_key: Option<String>,
        /// Context length to allocate (default: the backend's).
        #[arg(long)]
        context: Option<u32>,
        /// KV-cache type for GLM-5.x models: f16 (default), bf16, q8_0 or f32.
        #[arg(long = "kv-type")]
        kv_type: Option<localglm_glm::KvType>,
        #[command(flatten)]
        device: DeviceArgs,
        /// MiB of KV caches kept to reuse prompt prefixes across requests (GLM-5.x runtime;
        /// default: one cache of the planned context; 0 keeps only the last conversation's).
        #[arg(long = "prompt-cache-mb")]
        prompt_cache_mb: Option<u64>,
        /// Refuse model names other than the loaded model's (by default an agent's own model
        /// names, e.g. a Claude model id, run on the loaded model).
        #[arg(long = "strict-model-names")]
        strict_model_names: bool,
        /// Speculative decoding with the model's MTP block (GLM-5.x, CPU or GPU): N draft
        /// tokens per step, 0 (or off) not to load the block, or auto (as many as pay,
        /// measured while generating).
        #[arg(long, default_value = "auto")]
        mtp: localglm_glm::spec::Drafting,
    },
    /// List the models in the library; `--import PATH` adds a GGUF already on disk (any shard
    /// of a split set) without copying it.
    Models {
        #[arg(long = "import")]
        import: Option<std::path::PathBuf>,
    },
    /// Summarise a GGUF file or split set: metadata, tensors, type census, split status.
    Inspect {
        /// Any file of the model (for a split set: any shard).
        file: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Benchmarks (ratios to this machine's measured limits, measured in the same run).
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// Top-K next-token log-probabilities at every position of a token sequence (to compare
    /// runtimes with a reference).
    Logprobs(logprobs::LogprobsArgs),
    /// Print exactly the prompt text a chat template renders for a conversation (the model's
    /// embedded template or a Jinja file), nothing else.
    Prompt(prompt::PromptArgs),
    /// Write one tensor as raw little-endian f32 (row-major, ne0 fastest, no header).
    Dequant {
        file: PathBuf,
        tensor: String,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum BenchWhat {
    /// Decode and prefill of LocalGLM's runtime on a GLM-5.x (glm-dsa) or dense LLaMA-family
    /// GGUF: ratio to the memory-bandwidth bound and (with --llama-bench) to llama.cpp on the
    /// same file in the same run.
    Glm {
        #[arg(long)]
        model: PathBuf,
        /// Prompt tokens for the prefill measurement.
        #[arg(long, default_value_t = 128)]
        prompt: usize,
        /// Generated tokens for the decode measurement.
        #[arg(long, default_value_t = 32)]
        gen: usize,
        #[arg(long, default_value_t = 3)]
        reps: usize,
        /// Path of llama.cpp's `llama-bench`, to measure the peer in the same run.
        #[arg(long = "llama-bench")]
        llama_bench: Option<PathBuf>,
        /// Threads for llama.cpp (LocalGLM uses rayon's default: all cores).
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// KV-cache type (llama-bench's default is f16).
        #[arg(long = "kv-type", default_value = "f16")]
        kv_type: localglm_glm::KvType,
        #[command(flatten)]
        device: DeviceArgs,
        /// Speculative decoding figures with the model's MTP block: the cost of verifying
        /// k+1 tokens against decoding one, for k = 1..N (auto: 3; 0: none), the acceptance on
        /// this model and the resulting speed-up.
        #[arg(long, default_value = "auto")]
        mtp: localglm_glm::spec::Drafting,
    },
    /// Mat-vec of every quant type over a large matrix, as GB/s and as a ratio to memory bandwidth.
    Quants {
        /// Weight bytes per matrix, in MiB.
        #[arg(long, default_value_t = 512)]
        mib: usize,
        /// Repetitions (best is reported).
        #[arg(long, default_value_t = 5)]
        reps: usize,
        /// Only these types (comma-separated ggml names, e.g. Q4_K,IQ2_XS).
        #[arg(long, value_delimiter = ',')]
        types: Vec<String>,
        /// Exact matrix shape ROWSxCOLS instead of --mib (e.g. 4096x14336, llama.cpp's
        /// test-backend-ops MUL_MAT perf shape).
        #[arg(long)]
        shape: Option<String>,
        /// Activation vectors per product (1: mat-vec, the decode path; more: the batched
        /// prefill path, reported as multiply-adds per second).
        #[arg(long, default_value_t = 1)]
        batch: usize,
    },
}

/// Where the GLM-5.x runtime runs (shared by chat, serve, logprobs and bench glm).
#[derive(Args, Clone, Copy, Default)]
pub struct DeviceArgs {
    /// auto (a GPU when the fit planner places the model there, else the CPU), gpu (any
    /// Vulkan/Metal/DX12 adapter, software ones included; fails rather than fall back to the
    /// CPU) or cpu.
    #[arg(long, default_value = "auto")]
    pub device: localglm_gpu::DeviceChoice,
    /// On a GPU: the routed experts of the first N MoE layers stay in RAM and run on the CPU
    /// (llama.cpp's --n-cpu-moe); default: the fit planner's number.
    #[arg(long = "cpu-moe")]
    pub cpu_moe: Option<u32>,
    /// Run a dense LLaMA-family model (llama, qwen2, qwen3) on mistral.rs instead of
    /// LocalGLM's own runtime (chat, serve).
    #[arg(long)]
    pub mistralrs: bool,
}

impl DeviceArgs {
    /// The runtime's placement for these flags and this model (the engine's rule, so the CLI
    /// runs what the app would); says on stderr why `auto` stayed on the CPU.
    /// `mtp`: the MTP block will be loaded (the plan counts it).
    pub fn placement(
        &self,
        model: &std::path::Path,
        kv: localglm_glm::KvType,
        max_context: usize,
        mtp: bool,
    ) -> Result<Option<localglm_glm::GpuPlacement>> {
        let (gpu, cpu_why) = localglm_engine::glm::place(
            model,
            self.device,
            kv,
            max_context,
            self.cpu_moe.map(|n| n as usize),
            mtp,
        )?;
        if let Some(why) = cpu_why {
            eprintln!("device: CPU (auto: {why})");
        }
        Ok(gpu)
    }
}

#[derive(Args)]
struct ChatArgs {
    /// GGUF file to load (default: the installed default model).
    #[arg(long)]
    model: Option<PathBuf>,
    /// System prompt.
    #[arg(long)]
    system: Option<String>,
    /// Sampling preset: `general` (temperature 1.0, top_p 0.95), `swe-bench-pro`
    /// (temperature 1.0, top_p 1.0), or one of the app's user presets by name or id; flags
    /// given explicitly override its values.
    #[arg(long)]
    preset: Option<String>,
    /// Default 1.0, or the preset's.
    #[arg(long)]
    temperature: Option<f64>,
    /// Default 0.95, or the preset's.
    #[arg(long = "top-p")]
    top_p: Option<f64>,
    #[arg(long = "top-k")]
    top_k: Option<u32>,
    /// Min-p filtering (0..1); off by default.
    #[arg(long = "min-p")]
    min_p: Option<f64>,
    /// Repetition penalty over the last 64 tokens (1.0 = off).
    #[arg(long = "repeat-penalty")]
    repeat_penalty: Option<f64>,
    /// Default 1024, or the preset's (capped to the loaded context).
    #[arg(long = "max-tokens")]
    max_tokens: Option<u32>,
    /// Thinking on or off for templates that read `enable_thinking` (default: the preset's,
    /// else the template's own default).
    #[arg(long, value_parser = ["on", "off"])]
    think: Option<String>,
    /// Same as `--think off`.
    #[arg(long = "no-think", conflicts_with = "think")]
    no_think: bool,
    /// Reasoning effort for templates that read `reasoning_effort` (GLM-5.2: high or max).
    #[arg(long)]
    effort: Option<String>,
    /// Context length to allocate (tokens; default: the model's).
    #[arg(long)]
    context: Option<u32>,
    /// KV-cache type for GLM-5.x models: f16 (default), bf16, q8_0 (about half of f16) or f32.
    #[arg(long = "kv-type")]
    kv_type: Option<localglm_glm::KvType>,
    /// Sampling seed (reproducible replies).
    #[arg(long)]
    seed: Option<u32>,
    #[command(flatten)]
    device: DeviceArgs,
    /// Speculative decoding with the model's MTP block (GLM-5.x, CPU or GPU): N draft
    /// tokens per step, 0 (or off) not to load the block, or auto (as many as pay,
    /// measured while generating).
    #[arg(long, default_value = "auto")]
    mtp: localglm_glm::spec::Drafting,
    /// Chat with a model on an OpenAI-compatible server (vLLM, SGLang, `localglm serve`, ...)
    /// at this base URL (ending in `/v1`) instead of a local file.
    #[arg(long, conflicts_with = "model")]
    remote: Option<String>,
    /// API key for --remote (default: `LOCALGLM_REMOTE_KEY`).
    #[arg(long = "remote-key", env = "LOCALGLM_REMOTE_KEY")]
    remote_key: Option<String>,
    /// Model id on the --remote server (default: its first).
    #[arg(long = "remote-model")]
    remote_model: Option<String>,
    /// Do not print the stats line.
    #[arg(long)]
    quiet: bool,
    /// The message; without it, read messages interactively from stdin.
    prompt: Vec<String>,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Chat(args) => chat(args).await,
        Command::Bench {
            what:
                BenchWhat::Quants {
                    mib,
                    reps,
                    types,
                    shape,
                    batch,
                },
        } => bench::quants(mib, reps, &types, shape.as_deref(), batch),
        Command::Bench {
            what:
                BenchWhat::Glm {
                    model,
                    prompt,
                    gen,
                    reps,
                    llama_bench,
                    threads,
                    kv_type,
                    device,
                    mtp,
                },
        } => {
            let drafts = mtp != localglm_glm::spec::Drafting::Fixed(0);
            let gpu = device.placement(&model, kv_type, 0, drafts)?;
            localglm_glm::bench::run(
                &localglm_glm::bench::GlmBench {
                    model,
                    prompt,
                    gen,
                    reps,
                    llama_bench,
                    threads,
                    kv_type,
                    mtp,
                },
                gpu,
            )
        }
        Command::Gpu { json, check } if check => gpu::check(json),
        Command::Gpu { json, .. } => gpu::run(json),
        Command::Inspect { file, json } => inspect::inspect(&file, json),
        Command::Fit(args) => fit::run(&args),
        Command::Pull { model } => pull::pull(&model).await,
        Command::Serve {
            model,
            host,
            port,
            api_key,
            context,
            kv_type,
            device,
            prompt_cache_mb,
            strict_model_names,
            mtp,
        } => {
            let spec =
                LoadSpec {
                    context_length: context,
                    kv_cache: kv_type,
                    device: device.device,
                    cpu_moe: device.cpu_moe,
                    mistralrs: device.mistralrs,
                    prompt_cache: prompt_cache_mb.map(|m| m << 20),
                    mtp,
                    ..LoadSpec::new(model.unwrap_or_else(|| {
                        localglm_models::Library::from_env().default_model_path()
                    }))
                };
            serve(spec, &host, port, api_key, strict_model_names).await
        }
        Command::Models { import } => pull::models(import.as_deref()),
        Command::Logprobs(args) => logprobs::run(&args),
        Command::Prompt(args) => prompt::run(&args),
        Command::Dequant { file, tensor, out } => inspect::dequant(&file, &tensor, &out),
        Command::Paths => {
            let lib = localglm_models::Library::from_env();
            println!("data dir:       {}", lib.root().display());
            println!("models:         {}", lib.models_dir().display());
            println!("default model:  {}", lib.default_model_path().display());
            println!("conversations:  {}", lib.conversations_dir().display());
            Ok(())
        }
    }
}

/// `localglm serve`: load the model, then answer OpenAI-style requests until killed.
async fn serve(
    spec: LoadSpec,
    host: &str,
    port: u16,
    api_key: Option<String>,
    strict_model_names: bool,
) -> Result<()> {
    let path = spec.path.clone();
    // The real engine; `LOCALGLM_ENGINE=scripted` swaps in the fake for API-shape tests.
    let engine = localglm_engine::engine_from_env();
    let info = engine
        .load(spec)
        .await
        .with_context(|| format!("loading {}", path.display()))?;
    let listener = tokio::net::TcpListener::bind((host, port))
        .await
        .with_context(|| format!("binding {host}:{port}"))?;
    let addr = listener.local_addr()?;
    eprintln!(
        "serving {} ({}{}) on http://{addr}/v1{}",
        info.name,
        info.backend,
        info.placement
            .as_deref()
            .map(|p| format!(", {p}"))
            .unwrap_or_default(),
        if api_key.is_some() {
            " (API key required)"
        } else {
            ""
        }
    );
    if let Some(b) = info.prompt_cache_bytes {
        eprintln!(
            "prompt cache: up to {:.0} MiB of KV caches kept for reuse across requests",
            b / f64::from(1 << 20)
        );
    }
    let state = localglm_server::ApiState::new(engine, api_key)
        .strict_models(strict_model_names)
        .with_log(std::sync::Arc::new(|e| eprintln!("{}", log_line(&e))));
    localglm_server::serve(listener, state).await?;
    Ok(())
}

/// One request as the log shows it: `POST /v1/messages 200 1234 ms · claude-x → GLM · prompt
/// 5210 tokens, 5120 cached`.
fn log_line(e: &localglm_protocol::ApiLogEntry) -> String {
    let mut line = format!(
        "{} {} {} {:.0} ms",
        e.method, e.path, e.status, e.duration_ms
    );
    if let Some(m) = &e.model {
        line.push_str(&format!(" · {m}"));
    }
    if let Some(p) = e.prompt_tokens {
        let cached = e.cached_tokens.unwrap_or(0);
        line.push_str(&format!(" · prompt {p} tokens, {cached} cached"));
    }
    line
}

/// A built-in preset, or one of the user presets the app keeps in its settings file.
fn find_preset(name: &str) -> Result<localglm_protocol::SamplingPreset> {
    if let Some(p) = localglm_protocol::builtin_preset(name) {
        return Ok(p);
    }
    let path = localglm_models::Library::from_env().settings_path();
    let user = localglm_chat::settings::peek(&path).presets;
    if let Some(p) = user
        .iter()
        .find(|p| p.id.eq_ignore_ascii_case(name) || p.name.eq_ignore_ascii_case(name))
    {
        return Ok(p.clone());
    }
    let known: Vec<String> = localglm_protocol::builtin_presets()
        .into_iter()
        .chain(user)
        .map(|p| format!("`{}`", p.id))
        .collect();
    bail!("unknown preset `{name}` (known: {})", known.join(", "))
}

async fn chat(args: ChatArgs) -> Result<()> {
    let preset = match args.preset.as_deref() {
        Some(name) => Some(find_preset(name)?),
        None => None,
    };
    let path = match (&args.model, &args.remote) {
        (Some(p), _) => p.clone(),
        (None, Some(url)) => PathBuf::from(url),
        (None, None) => {
            let p = localglm_models::Library::from_env().default_model_path();
            if !p.exists() {
                bail!(
                    "the default model is not installed ({}).\nRun `python3 scripts/install_default_model.py` or pass --model PATH.",
                    p.display()
                );
            }
            p
        }
    };
    let engine: Box<dyn Engine> = match &args.remote {
        Some(url) => Box::new(localglm_engine::remote::RemoteEngine::new(
            localglm_engine::remote::RemoteSpec {
                base_url: url.clone(),
                api_key: args.remote_key.clone(),
                model: args.remote_model.clone(),
            },
        )),
        None => Box::new(AutoEngine::new()),
    };
    eprintln!("loading {} ...", path.display());
    let info = engine
        .load(LoadSpec {
            context_length: args.context,
            kv_cache: args.kv_type,
            device: args.device.device,
            cpu_moe: args.device.cpu_moe,
            mistralrs: args.device.mistralrs,
            mtp: args.mtp,
            ..LoadSpec::new(&path)
        })
        .await
        .with_context(|| format!("loading {}", path.display()))?;
    match &info.placement {
        Some(p) => eprintln!("loaded {} ({}, {p})", info.name, info.backend),
        None => eprintln!("loaded {} ({})", info.name, info.backend),
    }

    let base = preset.as_ref().map(|p| p.sampling.clone());
    let sampling = SamplingParams {
        temperature: args
            .temperature
            .or(base.as_ref().map(|b| b.temperature))
            .unwrap_or(1.0),
        top_p: args
            .top_p
            .or(base.as_ref().map(|b| b.top_p))
            .unwrap_or(0.95),
        top_k: args.top_k.or(base.as_ref().and_then(|b| b.top_k)),
        max_tokens: args.max_tokens.unwrap_or_else(|| match &base {
            Some(b) => b
                .max_tokens
                .min(info.context_length.unwrap_or(b.max_tokens)),
            None => 1024,
        }),
        seed: args.seed,
        min_p: args.min_p.or(base.as_ref().and_then(|b| b.min_p)),
        repetition_penalty: args
            .repeat_penalty
            .or(base.as_ref().and_then(|b| b.repetition_penalty)),
    };
    let enable_thinking = match (args.think.as_deref(), args.no_think) {
        (Some("on"), _) => Some(true),
        (Some(_), _) | (None, true) => Some(false),
        (None, false) => preset.as_ref().map(|p| p.enable_thinking),
    };
    let effort = args
        .effort
        .clone()
        .or_else(|| preset.as_ref().and_then(|p| p.reasoning_effort.clone()));
    let mut history = Vec::new();
    let system = args
        .system
        .clone()
        .or_else(|| preset.as_ref().and_then(|p| p.system_prompt.clone()));
    if let Some(sys) = system.as_deref().filter(|s| !s.is_empty()) {
        history.push(ChatTurn::new(Role::System, sys));
    }
    let opts = TurnOptions {
        sampling,
        enable_thinking,
        effort,
        quiet: args.quiet,
        preset: preset.as_ref().map(|p| p.name.clone()),
    };

    if !args.prompt.is_empty() {
        history.push(ChatTurn::new(Role::User, args.prompt.join(" ")));
        turn(engine.as_ref(), &history, &opts).await?;
        return Ok(());
    }

    eprintln!("interactive chat: empty line or /exit to quit, /reset to clear history, Ctrl-C stops a reply");
    let stdin = std::io::stdin();
    let base = history.clone();
    loop {
        eprint!("> ");
        std::io::stderr().flush().ok();
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end_matches(['\r', '\n']);
        match line.trim() {
            "" | "/exit" | "/quit" => break,
            "/reset" => {
                history = base.clone();
                continue;
            }
            _ => {}
        }
        history.push(ChatTurn::new(Role::User, line));
        let answer = turn(engine.as_ref(), &history, &opts).await?;
        history.push(ChatTurn::new(Role::Assistant, answer));
    }
    Ok(())
}

/// Runs one reply, streaming it; returns the answer text.
/// What stays the same for every turn of one `chat` run.
struct TurnOptions {
    sampling: SamplingParams,
    enable_thinking: Option<bool>,
    effort: Option<String>,
    quiet: bool,
    /// The preset's display name, when one was chosen (shown in the stats line).
    preset: Option<String>,
}

impl TurnOptions {
    /// What this turn was sent with, for the stats line.
    fn describe(&self) -> String {
        let s = &self.sampling;
        let think = match self.enable_thinking {
            Some(true) => "on",
            Some(false) => "off",
            None => "template default",
        };
        let mut d = String::new();
        if let Some(p) = &self.preset {
            d.push_str(&format!("preset {p}, "));
        }
        d.push_str(&format!(
            "temperature {}, top_p {}, thinking {think}",
            s.temperature, s.top_p
        ));
        if let Some(e) = &self.effort {
            d.push_str(&format!(", effort {e}"));
        }
        d
    }
}

async fn turn(engine: &dyn Engine, history: &[ChatTurn], opts: &TurnOptions) -> Result<String> {
    let quiet = opts.quiet;
    let request = GenerateRequest {
        messages: history.to_vec(),
        sampling: opts.sampling.clone(),
        enable_thinking: opts.enable_thinking,
        reasoning_effort: opts.effort.clone(),
        clear_thinking: None,
        tools: None,
    };
    let mut generation = engine.generate(request).await?;
    let cancel = generation.canceller();
    let ctrl_c = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.cancel();
        }
    });
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let mut answer = String::new();
    let mut at_line_start = true;
    let mut result = Ok(());
    while let Some(ev) = generation.events.next().await {
        match ev {
            EngineEvent::Reasoning(t) => {
                for piece in t.split_inclusive('\n') {
                    if at_line_start {
                        write!(err, "thinking> ")?;
                    }
                    write!(err, "{piece}")?;
                    at_line_start = piece.ends_with('\n');
                }
                err.flush()?;
            }
            EngineEvent::Content(t) => {
                if !at_line_start {
                    writeln!(err)?;
                    at_line_start = true;
                }
                answer.push_str(&t);
                write!(out, "{t}")?;
                out.flush()?;
            }
            EngineEvent::Finished {
                reason,
                stats,
                error,
            } => {
                writeln!(out)?;
                if !quiet {
                    eprintln!("{} [{}]", stats_line(&stats, reason), opts.describe());
                }
                if let Some(e) = error {
                    result = Err(anyhow::Error::new(e));
                }
            }
        }
    }
    ctrl_c.abort();
    result.map(|_| answer)
}

fn stats_line(s: &GenerationStats, reason: FinishReason) -> String {
    let why = match reason {
        FinishReason::Stop => "",
        FinishReason::Length => " | stopped: max tokens",
        FinishReason::Cancelled => " | stopped by user",
        FinishReason::Error => " | failed",
        FinishReason::Interrupted => " | interrupted",
    };
    let drafts = match (s.drafted_tokens, s.accepted_tokens) {
        (Some(d), Some(a)) if d > 0 => format!(
            " | MTP {a}/{d} drafts accepted ({:.0} %)",
            100.0 * a as f64 / d as f64
        ),
        _ => String::new(),
    };
    format!(
        "[{} prompt tokens, {:.1} tok/s prefill | TTFT {:.0} ms | {} tokens, {:.1} tok/s decode{drafts}{why}]",
        s.prompt_tokens, s.prefill_tokens_per_s, s.ttft_ms, s.generated_tokens, s.decode_tokens_per_s
    )
}
