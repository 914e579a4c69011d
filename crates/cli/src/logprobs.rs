//! `localglm logprobs`: for every position of a token sequence, the top-K candidates for the
//! next token with their log-probabilities (log-softmax over the whole vocabulary), so any
//! runtime can be compared with a reference implementation on the same file.

use anyhow::{bail, Context, Result};
use clap::Args;
use localglm_glm::tokenizer::GlmTokenizer;
use localglm_glm::{log_softmax, Logits, Model, RuntimeOptions};
use localglm_quants::Activations;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Args)]
pub struct LogprobsArgs {
    /// GGUF model (any shard of a split set).
    #[arg(long)]
    model: PathBuf,
    /// Comma-separated token ids.
    #[arg(long, value_delimiter = ',', conflicts_with = "text")]
    tokens: Vec<u32>,
    /// Text to tokenize (special-token strings in it are matched, as in a rendered prompt).
    #[arg(long)]
    text: Option<String>,
    /// Candidates per position.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// One JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Exact f32 activations instead of the int8 fast path.
    #[arg(long)]
    exact: bool,
    #[command(flatten)]
    device: crate::DeviceArgs,
}

#[derive(Serialize)]
struct Candidate {
    id: u32,
    logprob: f32,
}

#[derive(Serialize)]
struct Position {
    position: usize,
    argmax: u32,
    top: Vec<Candidate>,
}

#[derive(Serialize)]
struct Output {
    tokens: Vec<u32>,
    positions: Vec<Position>,
}

pub fn run(args: &LogprobsArgs) -> Result<()> {
    let arch = localglm_engine::auto::gguf_architecture(&args.model);
    if !arch
        .as_deref()
        .is_some_and(localglm_glm::config::runs_architecture)
    {
        bail!(
            "{}: architecture {:?} — logprobs runs on LocalGLM's own runtime, which covers `glm-dsa` (GLM-5.x) and the dense llama, qwen2 and qwen3; mistralrs-backed architectures do not expose prompt logprobs yet",
            args.model.display(),
            arch.unwrap_or_else(|| "unknown".into())
        );
    }
    let opts = RuntimeOptions {
        activations: if args.exact {
            Activations::F32
        } else {
            Activations::Int8
        },
        kv_type: localglm_glm::KvType::F32,
        gpu: args
            .device
            .placement(&args.model, localglm_glm::KvType::F32, 0, false)?,
        ..Default::default()
    };
    let model = Model::open(&args.model, opts)
        .with_context(|| format!("loading {}", args.model.display()))?;
    let tokens = match &args.text {
        Some(t) => {
            let tok = GlmTokenizer::from_gguf(model.gguf())?;
            tok.with_bos(tok.encode_with_specials(t)?)
        }
        None => args.tokens.clone(),
    };
    if tokens.is_empty() {
        bail!("no tokens: pass --tokens 1,2,3 or --text TEXT");
    }
    let mut cache = model.new_cache();
    let logits = model.forward(&tokens, &mut cache, Logits::All)?;
    let positions: Vec<Position> = logits
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let lp = log_softmax(row);
            let mut order: Vec<u32> = (0..lp.len() as u32).collect();
            order.sort_by(|&a, &b| lp[b as usize].total_cmp(&lp[a as usize]).then(a.cmp(&b)));
            Position {
                position: i,
                argmax: order[0],
                top: order
                    .iter()
                    .take(args.top.max(1))
                    .map(|&id| Candidate {
                        id,
                        logprob: lp[id as usize],
                    })
                    .collect(),
            }
        })
        .collect();
    let out = Output { tokens, positions };
    if args.json {
        println!("{}", serde_json::to_string(&out)?);
    } else {
        for p in &out.positions {
            let top: Vec<String> = p
                .top
                .iter()
                .map(|c| format!("{}:{:.4}", c.id, c.logprob))
                .collect();
            println!(
                "{:>5} tok {:>7} -> {}",
                p.position,
                out.tokens[p.position],
                top.join("  ")
            );
        }
    }
    Ok(())
}
