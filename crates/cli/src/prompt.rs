//! `localglm prompt`: prints exactly the text a chat template renders for a conversation —
//! the template embedded in a GGUF (`--model`) or a Jinja file (`--template`) — and nothing
//! else, for debugging templates against Python `jinja2` / `apply_chat_template`.

use anyhow::{bail, Context, Result};
use clap::Args;
use localglm_glm::template::{ChatTemplate, TemplateOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct PromptArgs {
    /// GGUF whose `tokenizer.chat_template` to render (any shard of a split set).
    #[arg(
        long,
        conflicts_with = "template",
        required_unless_present = "template"
    )]
    model: Option<PathBuf>,
    /// A Jinja chat template file instead of a model.
    #[arg(long)]
    template: Option<PathBuf>,
    /// OpenAI-style messages: a JSON array of {role, content, ...}.
    #[arg(long)]
    messages: PathBuf,
    /// Sets the template's `enable_thinking` (left undefined when absent).
    #[arg(long)]
    enable_thinking: Option<bool>,
    /// Sets the template's `reasoning_effort` (left undefined when absent).
    #[arg(long)]
    reasoning_effort: Option<String>,
    /// Sets the template's `clear_thinking` (left undefined when absent).
    #[arg(long)]
    clear_thinking: Option<bool>,
    /// OpenAI-style tool definitions: a JSON array.
    #[arg(long)]
    tools: Option<PathBuf>,
    /// Leave out the assistant generation prompt.
    #[arg(long)]
    no_generation_prompt: bool,
    /// `bos_token` (default: the model's BOS token text, or empty with --template).
    #[arg(long)]
    bos: Option<String>,
    /// `eos_token` (default: the model's EOS token text, or empty with --template).
    #[arg(long)]
    eos: Option<String>,
}

fn read_json(path: &Path, what: &str) -> Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    if !v.is_array() {
        bail!("{} must hold a JSON array of {what}", path.display());
    }
    Ok(v)
}

/// Template source, display name and default BOS/EOS texts.
fn load_template(args: &PromptArgs) -> Result<(String, String, String, String)> {
    if let Some(path) = &args.template {
        let src =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        return Ok((
            src,
            path.display().to_string(),
            String::new(),
            String::new(),
        ));
    }
    let Some(path) = &args.model else {
        bail!("give --model or --template");
    };
    let g = localglm_gguf::GgufModel::open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let name = path.display().to_string();
    let Some(src) = g.get_str("tokenizer.chat_template") else {
        bail!("{name} has no chat template (tokenizer.chat_template)");
    };
    let token_text = |key: &str| -> String {
        let tokens = match g.get("tokenizer.ggml.tokens") {
            Some(localglm_gguf::Value::Array(a)) => &a.items[..],
            _ => &[],
        };
        g.get_u64(key)
            .and_then(|id| tokens.get(id as usize))
            .and_then(|t| t.as_str())
            .unwrap_or_default()
            .to_string()
    };
    Ok((
        src.to_string(),
        name,
        token_text("tokenizer.ggml.bos_token_id"),
        token_text("tokenizer.ggml.eos_token_id"),
    ))
}

pub fn run(args: &PromptArgs) -> Result<()> {
    let (src, name, bos, eos) = load_template(args)?;
    let template = ChatTemplate::new(&src, &name)?;
    let messages = read_json(&args.messages, "messages")?;
    let tools = match &args.tools {
        Some(p) => Some(read_json(p, "tools")?),
        None => None,
    };
    let opts = TemplateOptions {
        add_generation_prompt: !args.no_generation_prompt,
        enable_thinking: args.enable_thinking,
        reasoning_effort: args.reasoning_effort.clone(),
        clear_thinking: args.clear_thinking,
        tools,
        bos_token: args.bos.clone().unwrap_or(bos),
        eos_token: args.eos.clone().unwrap_or(eos),
        now: None,
    };
    let text = template.render_json(messages, &opts)?;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}
