//! A deterministic fake engine for UI and IPC tests. It streams a scripted reply (reasoning then
//! content) token by token with a fixed delay and honours cancellation like a real backend.
//! It exists in addition to real-model tests, never instead of them.

use crate::{
    validate, Engine, EngineError, EngineEvent, GenerateRequest, Generation, LoadSpec, StatsClock,
};
use async_trait::async_trait;
use localglm_protocol::{FinishReason, ModelInfo, Role};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What the fake answers to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    pub reasoning: Vec<String>,
    pub content: Vec<String>,
    pub token_delay: Duration,
    /// Tokens sent per `token_delay` (1: one token per delay; more: bursts, for rates past the
    /// timer's resolution).
    pub burst: usize,
    /// End with an error after the scripted tokens instead of a normal stop.
    pub fail_with: Option<String>,
}

impl Script {
    /// Splits text into word-sized tokens (whitespace kept with the following word).
    pub fn tokens(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = String::new();
        for ch in text.chars() {
            if ch.is_whitespace() && !cur.trim().is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            cur.push(ch);
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        out
    }

    /// A title request: "Title: " and the first line of the exchange, in quotes with a full
    /// stop — what a model might write, for the caller to clean.
    pub fn title(request: &GenerateRequest) -> Script {
        let exchange = request
            .messages
            .last()
            .map(|m| m.content.as_str())
            .unwrap_or("");
        let first = exchange
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        Script {
            reasoning: Vec::new(),
            content: Script::tokens(&format!("Title: \"{}.\"", first.trim())),
            token_delay: Duration::from_millis(1),
            burst: 1,
            fail_with: None,
        }
    }

    /// The default script: thinks briefly, then echoes the last user message as Markdown.
    /// A message containing "long" gets a 400-token answer (for Stop tests). Thinking follows
    /// the request: none when it is off, the effort named when one is set.
    pub fn echo(request: &GenerateRequest) -> Script {
        if request
            .messages
            .first()
            .is_some_and(|m| m.role == Role::System && m.content == crate::TITLE_INSTRUCTION)
        {
            return Script::title(request);
        }
        let last = request
            .messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map(|m| m.content.clone())
            .unwrap_or_default();
        let mut content = format!(
            "You said: **{}**\n\n```text\n{}\n```\n",
            last.trim(),
            last.trim()
        );
        if last.contains("long") {
            for i in 0..400 {
                content.push_str(&format!("word{i} "));
            }
        }
        // Behaves like a thinking model whose template reads `enable_thinking` and
        // `reasoning_effort`: no reasoning when thinking is off, the effort named when set.
        // A message containing "ponder" reasons for 60 more tokens (to watch the pane stream).
        let mut reasoning = match (request.enable_thinking, &request.reasoning_effort) {
            (Some(false), _) => String::new(),
            (_, Some(effort)) => format!(
                "The user wrote {} characters. Effort: {effort}.",
                last.chars().count()
            ),
            _ => format!("The user wrote {} characters.", last.chars().count()),
        };
        if !reasoning.is_empty() && last.contains("ponder") {
            for i in 0..60 {
                reasoning.push_str(&format!(" step{i}"));
            }
        }
        if let Some(tokens) = render_bench_size(&last) {
            return Self::render_bench(tokens);
        }
        let content = match Self::tool_turn(request) {
            Some(tokens) => tokens,
            None => Self::tokens(&content),
        };
        Script {
            reasoning: Self::tokens(&reasoning),
            content,
            token_delay: Duration::from_millis(15),
            burst: 1,
            fail_with: None,
        }
    }

    /// The render benchmark's reply: about `tokens` answer tokens of Markdown (headings,
    /// paragraphs with inline markup, lists, code blocks, tables) after a reasoning trace of a
    /// tenth of that, streamed at ~8 tokens per millisecond (faster than any local model).
    pub fn render_bench(tokens: usize) -> Script {
        let mut reasoning = String::new();
        let mut step = 0;
        while Self::tokens(&reasoning).len() < tokens / 10 {
            step += 1;
            reasoning.push_str(&format!(
                "Step {step}: weigh the next part of the answer, check it against the question \
                 and note what is still missing.\n"
            ));
        }
        let mut content = String::new();
        let mut i = 0;
        while Self::tokens(&content).len() < tokens {
            i += 1;
            content.push_str(&format!(
                "## Part {i}\n\nThis part explains **item {i}** with `inline_code({i})`, a \
                 [link](https://example.com/{i}) and *some emphasis*, then lists, code and a \
                 table, as a long answer from a model would.\n\n\
                 - first point of part {i}\n- second point, with **bold** text\n  - a nested \
                 point\n- third point\n\n\
                 1. step one\n2. step two\n\n\
                 ```rust\nfn part_{i}(x: u64) -> u64 {{\n    let y = x * {i};\n    \
                 if y > 100 {{ y - 1 }} else {{ y + 1 }}\n}}\n```\n\n\
                 | name | value | note |\n|---|---:|---|\n| a{i} | {i} | first |\n\
                 | b{i} | {} | second |\n\n> A quote to close part {i}.\n\n",
                i * 2
            ));
        }
        Script {
            reasoning: Self::tokens(&reasoning),
            content: Self::tokens(&content),
            token_delay: Duration::from_millis(1),
            burst: 8,
            fail_with: None,
        }
    }
}

/// The fake's context length: 8192, or `LOCALGLM_SCRIPTED_CONTEXT` (the render benchmark's
/// 30k-token answer needs more).
fn scripted_context() -> u32 {
    std::env::var("LOCALGLM_SCRIPTED_CONTEXT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8192)
}

/// `render-bench N` in a message asks for the render benchmark's reply of N tokens.
fn render_bench_size(message: &str) -> Option<usize> {
    let rest = message.split("render-bench").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

impl Script {
    /// With tools in the request, acts like an agent in GLM's XML call format: after a user
    /// message it calls the first tool, passing the message as the tool's first parameter; after
    /// a tool result it answers with the result. Tokens split before each tag, as a real
    /// model emits them.
    fn tool_turn(request: &GenerateRequest) -> Option<Vec<String>> {
        let tool = request.tools.as_ref()?.get(0)?;
        let f = tool.get("function").unwrap_or(tool);
        let name = f["name"].as_str()?;
        let last = request.messages.last()?;
        let text = match last.role {
            Role::Tool => format!("The tool said: {}", last.content),
            Role::User => {
                let key = f["parameters"]["properties"]
                    .as_object()
                    .and_then(|p| p.keys().next().cloned())
                    .unwrap_or_else(|| "input".into());
                format!(
                    "Calling {name}.<tool_call>{name}<arg_key>{key}</arg_key><arg_value>{}\
                     </arg_value></tool_call>",
                    last.content.trim()
                )
            }
            _ => return None,
        };
        let mut tokens = Vec::new();
        for (i, part) in text.split('<').enumerate() {
            if i == 0 {
                tokens.extend(Self::tokens(part));
            } else {
                tokens.push(format!("<{part}"));
            }
        }
        Some(tokens)
    }
}

type ScriptFn = dyn Fn(&GenerateRequest) -> Script + Send + Sync;

/// The fake engine.
pub struct ScriptedEngine {
    script: Arc<ScriptFn>,
    loaded: Mutex<Option<ModelInfo>>,
    /// Error returned by `load`, to test failure paths.
    pub fail_load: Mutex<Option<EngineError>>,
}

impl Default for ScriptedEngine {
    fn default() -> Self {
        Self::new(Script::echo)
    }
}

impl ScriptedEngine {
    pub fn new(script: impl Fn(&GenerateRequest) -> Script + Send + Sync + 'static) -> Self {
        Self {
            script: Arc::new(script),
            loaded: Mutex::new(None),
            fail_load: Mutex::new(None),
        }
    }
}

#[async_trait]
impl Engine for ScriptedEngine {
    fn backend(&self) -> &'static str {
        "scripted"
    }

    async fn load(&self, spec: LoadSpec) -> Result<ModelInfo, EngineError> {
        if let Some(e) = self.fail_load.lock().expect("lock").clone() {
            return Err(e);
        }
        let name = spec
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scripted".into());
        let info = ModelInfo {
            name,
            path: spec.path.to_string_lossy().into_owned(),
            size_bytes: 0.0,
            backend: self.backend().into(),
            architecture: Some("scripted".into()),
            context_length: Some(scripted_context()),
            quant: None,
            supports_thinking: true,
            effort_levels: vec!["high".into(), "max".into()],
            supports_tools: true,
            placement: None,
            prompt_cache_bytes: None,
            runtimes: Vec::new(),
        };
        *self.loaded.lock().expect("lock") = Some(info.clone());
        Ok(info)
    }

    fn loaded(&self) -> Option<ModelInfo> {
        self.loaded.lock().expect("lock").clone()
    }

    async fn generate(&self, request: GenerateRequest) -> Result<Generation, EngineError> {
        validate(&request)?;
        let info = self.loaded().ok_or(EngineError::NoModel)?;
        let script = (self.script)(&request);
        let max = request.sampling.max_tokens as usize;
        let prompt_tokens = prompt_tokens(&request);
        let cancel = CancellationToken::new();
        let (tx, rx) = mpsc::unbounded_channel();
        let token = cancel.clone();
        tokio::spawn(async move {
            let mut clock = StatsClock::start(prompt_tokens);
            clock.track_reasoning();
            let steps = script
                .reasoning
                .iter()
                .map(|t| EngineEvent::Reasoning(t.clone()))
                .chain(
                    script
                        .content
                        .iter()
                        .map(|t| EngineEvent::Content(t.clone())),
                );
            let mut reason = FinishReason::Stop;
            for (i, ev) in steps.enumerate() {
                if i >= max {
                    reason = FinishReason::Length;
                    break;
                }
                if i % script.burst.max(1) == 0 {
                    tokio::select! {
                        _ = token.cancelled() => { reason = FinishReason::Cancelled; break; }
                        _ = tokio::time::sleep(script.token_delay) => {}
                    }
                } else if token.is_cancelled() {
                    reason = FinishReason::Cancelled;
                    break;
                }
                clock.tokens(1);
                if matches!(ev, EngineEvent::Reasoning(_)) {
                    clock.reasoning_tokens(1);
                }
                if tx.send(ev).is_err() {
                    return;
                }
            }
            let error = match (&script.fail_with, reason) {
                (Some(msg), FinishReason::Stop) => {
                    reason = FinishReason::Error;
                    Some(EngineError::Generation(msg.clone()))
                }
                _ => None,
            };
            let _ = tx.send(EngineEvent::Finished {
                reason,
                stats: clock.finish(None, info.context_length),
                error,
            });
        });
        Ok(Generation::new(crate::event_stream(rx), cancel))
    }

    async fn unload(&self) {
        *self.loaded.lock().expect("lock") = None;
    }

    async fn count_tokens(&self, request: &GenerateRequest) -> Result<u32, EngineError> {
        validate(request)?;
        self.loaded().ok_or(EngineError::NoModel)?;
        Ok(prompt_tokens(request))
    }
}

/// The fake's prompt length: the messages' words.
fn prompt_tokens(request: &GenerateRequest) -> u32 {
    request
        .messages
        .iter()
        .map(|m| Script::tokens(&m.content).len() as u32)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChatTurn;
    use futures::StreamExt;
    use localglm_protocol::SamplingParams;

    fn req(text: &str, max_tokens: u32) -> GenerateRequest {
        GenerateRequest {
            messages: vec![ChatTurn::new(Role::User, text)],
            sampling: SamplingParams {
                max_tokens,
                ..Default::default()
            },
            enable_thinking: None,
            reasoning_effort: None,
            clear_thinking: None,
            tools: None,
        }
    }

    async fn collect(g: Generation) -> (String, String, FinishReason) {
        let mut events = g.events;
        let (mut r, mut c, mut fin) = (String::new(), String::new(), None);
        while let Some(ev) = events.next().await {
            match ev {
                EngineEvent::Reasoning(t) => r.push_str(&t),
                EngineEvent::Content(t) => c.push_str(&t),
                EngineEvent::Finished { reason, .. } => fin = Some(reason),
            }
        }
        (r, c, fin.expect("finished"))
    }

    #[tokio::test]
    async fn streams_reasoning_then_content() {
        let e = ScriptedEngine::new(|r| Script {
            token_delay: Duration::from_millis(1),
            ..Script::echo(r)
        });
        assert!(matches!(
            e.generate(req("x", 10)).await,
            Err(EngineError::NoModel)
        ));
        e.load(LoadSpec::new("/m/fake.gguf")).await.unwrap();
        let (r, c, fin) = collect(e.generate(req("hello", 1000)).await.unwrap()).await;
        assert_eq!(r, "The user wrote 5 characters.");
        assert!(c.starts_with("You said: **hello**"));
        assert_eq!(fin, FinishReason::Stop);
        let (_, _, fin) = collect(e.generate(req("hello", 3)).await.unwrap()).await;
        assert_eq!(fin, FinishReason::Length);
    }

    #[tokio::test]
    async fn cancel_ends_with_cancelled() {
        let e = ScriptedEngine::default();
        e.load(LoadSpec::new("/m/fake.gguf")).await.unwrap();
        let g = e.generate(req("a long one", 10_000)).await.unwrap();
        let c = g.canceller();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(60)).await;
            c.cancel();
        });
        let (_, content, fin) = collect(g).await;
        assert_eq!(fin, FinishReason::Cancelled);
        assert!(content.len() < 200);
    }

    #[test]
    fn the_render_bench_reply_is_long_markdown() {
        let r = req("render-bench 3000", 10);
        let s = Script::echo(&r);
        assert!(
            (3000..3300).contains(&s.content.len()),
            "{}",
            s.content.len()
        );
        assert!(s.reasoning.len() >= 300);
        let text = s.content.concat();
        for part in [
            "## Part 1\n",
            "```rust\n",
            "|---|---:|---|",
            "- first point",
            "> A quote",
        ] {
            assert!(text.contains(part), "{part}");
        }
        assert_eq!(render_bench_size("please render-bench x"), None);
    }

    #[test]
    fn tokens_keep_whitespace() {
        assert_eq!(Script::tokens("a bc  d"), ["a", " bc", "  d"]);
        assert_eq!(Script::tokens("a bc  d").concat(), "a bc  d");
    }
}
