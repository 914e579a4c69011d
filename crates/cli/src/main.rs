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
mod bench_glm;
mod inspect;
mod logprobs;
mod prompt;

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
    /// GLM-5.x decode and prefill on a glm-dsa GGUF: ratio to the memory-bandwidth bound and
    /// (with --llama-bench) to llama.cpp on the same file in the same run.
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
    },
}

#[derive(Args)]
struct ChatArgs {
    /// GGUF file to load (default: the installed default model).
    #[arg(long)]
    model: Option<PathBuf>,
    /// System prompt.
    #[arg(long)]
    system: Option<String>,
    #[arg(long, default_value_t = 1.0)]
    temperature: f64,
    #[arg(long = "top-p", default_value_t = 0.95)]
    top_p: f64,
    #[arg(long = "top-k")]
    top_k: Option<u32>,
    #[arg(long = "max-tokens", default_value_t = 1024)]
    max_tokens: u32,
    /// Ask thinking models not to think (template switch `enable_thinking=false`).
    #[arg(long = "no-think")]
    no_think: bool,
    /// Reasoning effort for templates that read `reasoning_effort` (GLM-5.2: high or max).
    #[arg(long)]
    effort: Option<String>,
    /// Context length to allocate (tokens; default: the model's).
    #[arg(long)]
    context: Option<u32>,
    /// KV-cache type for GLM-5.x models: f16 (default), bf16 or f32.
    #[arg(long = "kv-type")]
    kv_type: Option<localglm_glm::KvType>,
    /// Sampling seed (reproducible replies).
    #[arg(long)]
    seed: Option<u32>,
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
                },
        } => bench::quants(mib, reps, &types, shape.as_deref()),
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
                },
        } => bench_glm::run(&bench_glm::GlmBenchArgs {
            model,
            prompt,
            gen,
            reps,
            llama_bench,
            threads,
            kv_type,
        }),
        Command::Inspect { file, json } => inspect::inspect(&file, json),
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

async fn chat(args: ChatArgs) -> Result<()> {
    let path = match &args.model {
        Some(p) => p.clone(),
        None => {
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
    let engine = AutoEngine::new();
    eprintln!("loading {} ...", path.display());
    let info = engine
        .load(LoadSpec {
            context_length: args.context,
            kv_cache: args.kv_type,
            ..LoadSpec::cpu(&path)
        })
        .await
        .with_context(|| format!("loading {}", path.display()))?;
    eprintln!("loaded {} ({})", info.name, info.backend);

    let sampling = SamplingParams {
        temperature: args.temperature,
        top_p: args.top_p,
        top_k: args.top_k,
        max_tokens: args.max_tokens,
        seed: args.seed,
    };
    let mut history = Vec::new();
    if let Some(sys) = args.system.as_deref().filter(|s| !s.is_empty()) {
        history.push(ChatTurn::new(Role::System, sys));
    }
    let opts = TurnOptions {
        sampling,
        enable_thinking: args.no_think.then_some(false),
        effort: args.effort.clone(),
        quiet: args.quiet,
    };

    if !args.prompt.is_empty() {
        history.push(ChatTurn::new(Role::User, args.prompt.join(" ")));
        turn(&engine, &history, &opts).await?;
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
        let answer = turn(&engine, &history, &opts).await?;
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
}

async fn turn(engine: &AutoEngine, history: &[ChatTurn], opts: &TurnOptions) -> Result<String> {
    let quiet = opts.quiet;
    let request = GenerateRequest {
        messages: history.to_vec(),
        sampling: opts.sampling.clone(),
        enable_thinking: opts.enable_thinking,
        reasoning_effort: opts.effort.clone(),
        clear_thinking: None,
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
                    eprintln!("{}", stats_line(&stats, reason));
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
    };
    format!(
        "[{} prompt tokens, {:.1} tok/s prefill | TTFT {:.0} ms | {} tokens, {:.1} tok/s decode{why}]",
        s.prompt_tokens, s.prefill_tokens_per_s, s.ttft_ms, s.generated_tokens, s.decode_tokens_per_s
    )
}
