//! Backend on the published `mistralrs` crate: GGUF files of the architectures it supports.
//!
//! Invariants: nothing here reaches the network — a model is loaded only from an existing local
//! file (mistralrs falls back to the Hugging Face hub for paths that do not exist, so the path
//! is checked first) with the tokenizer and chat template read from the GGUF itself. A panic
//! inside the loader becomes a `LoadFailed` error. A generation's mistralrs stream is always
//! either drained or dropped (an unread stream would stall the mistralrs engine thread).

use crate::prompt::{opens_reasoning, ModelPrompt};
use crate::reasoning::{Segment, ThinkParser};
use crate::{
    validate, ChatTurn, Engine, EngineError, EngineEvent, GenerateRequest, Generation, LoadSpec,
    StatsClock,
};
use async_trait::async_trait;
use localglm_protocol::{FinishReason, ModelInfo, Role};
use mistralrs::{
    Constraint, GgufModelBuilder, Model, NormalRequest, Request, RequestBuilder, RequestMessage,
    Response, TextMessageRole, TextMessages, TokenSource,
};
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, RwLock};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

struct Loaded {
    model: Arc<Model>,
    info: ModelInfo,
    /// The GGUF's own chat template, rendered by LocalGLM; `None` when the file has none
    /// (mistralrs then applies its own default).
    prompt: Option<Arc<ModelPrompt>>,
}

/// The mistralrs backend. Holds at most one model.
#[derive(Default)]
pub struct MistralRsEngine {
    loaded: RwLock<Option<Loaded>>,
}

impl MistralRsEngine {
    pub fn new() -> Self {
        Self::default()
    }

    fn model(&self) -> Option<(Arc<Model>, Option<Arc<ModelPrompt>>)> {
        self.loaded
            .read()
            .expect("engine lock")
            .as_ref()
            .map(|l| (l.model.clone(), l.prompt.clone()))
    }
}

/// Checks that `path` is an existing file that starts with the GGUF magic.
pub(crate) fn check_gguf_file(path: &Path) -> Result<(), EngineError> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(EngineError::ModelMissing(path.to_path_buf()))
        }
        Err(e) => {
            return Err(EngineError::LoadFailed {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })
        }
    };
    if !f.metadata().map(|m| m.is_file()).unwrap_or(false) {
        return Err(EngineError::ModelMissing(path.to_path_buf()));
    }
    let mut magic = [0u8; 4];
    if f.read_exact(&mut magic).is_err() || &magic != b"GGUF" {
        return Err(EngineError::LoadFailed {
            path: path.to_path_buf(),
            reason: "not a GGUF file (bad magic)".into(),
        });
    }
    Ok(())
}

/// The GPU backend this build of mistral.rs has (`metal` / `cuda` features), if any.
pub(crate) fn gpu_build() -> Option<&'static str> {
    if cfg!(feature = "metal") {
        Some("Metal")
    } else if cfg!(feature = "cuda") {
        Some("CUDA")
    } else {
        None
    }
}

/// Whether a mistral.rs load with this device choice runs on the GPU: `auto` and `gpu` do when
/// the build has a GPU backend (`gpu` without one is refused before the load).
fn on_gpu(device: localglm_glm::gpu::DeviceChoice) -> bool {
    device != localglm_glm::gpu::DeviceChoice::Cpu && gpu_build().is_some()
}

fn role(r: Role) -> TextMessageRole {
    match r {
        Role::System => TextMessageRole::System,
        Role::User => TextMessageRole::User,
        Role::Assistant => TextMessageRole::Assistant,
        Role::Tool => TextMessageRole::Tool,
    }
}

fn finish_reason(s: &str) -> FinishReason {
    match s {
        "length" => FinishReason::Length,
        "canceled" | "cancelled" => FinishReason::Cancelled,
        "error" => FinishReason::Error,
        _ => FinishReason::Stop,
    }
}

fn panic_text(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the loader panicked".into()),
        Err(e) => e.to_string(),
    }
}

/// The request rendered by the GGUF's own template, and its token ids.
async fn templated_ids(
    model: &Model,
    prompt: &ModelPrompt,
    request: &GenerateRequest,
) -> Result<(String, Vec<u32>), EngineError> {
    let text = prompt.render(request)?;
    let ids = model
        .tokenize(
            either::Either::Right(text.clone()),
            None,
            false,
            false,
            None,
        )
        .await
        .map_err(|e| EngineError::Generation(e.to_string()))?;
    Ok((text, ids))
}

/// Prompt tokens of a request mistralrs renders itself (a GGUF without a template).
async fn untemplated_count(model: &Model, request: &GenerateRequest) -> Result<u32, EngineError> {
    let mut counted = TextMessages::new();
    for t in &request.messages {
        counted = counted.add_message(role(t.role), &t.content);
    }
    model
        .tokenize(
            either::Either::Left(counted),
            None,
            true,
            true,
            request.enable_thinking,
        )
        .await
        .map(|t| t.len() as u32)
        .map_err(|e| EngineError::Generation(e.to_string()))
}

#[async_trait]
impl Engine for MistralRsEngine {
    fn backend(&self) -> &'static str {
        "mistralrs"
    }

    async fn load(&self, spec: LoadSpec) -> Result<ModelInfo, EngineError> {
        check_gguf_file(&spec.path)?;
        let path = spec
            .path
            .canonicalize()
            .map_err(|_| EngineError::ModelMissing(spec.path.clone()))?;
        let dir = path
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| ".".into());
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.unload().await;

        let mut builder = GgufModelBuilder::new(dir, vec![file])
            .with_token_source(TokenSource::None)
            .with_max_num_seqs(4);
        if !on_gpu(spec.device) {
            builder = builder.with_force_cpu();
        }
        // The template is LocalGLM's to render (as jinja2 would); one that does not compile
        // fails the load with its reason, naming the model.
        let template_path = path.clone();
        let prompt = tokio::task::spawn_blocking(move || ModelPrompt::from_gguf(&template_path))
            .await
            .map_err(|e| EngineError::LoadFailed {
                path: path.clone(),
                reason: e.to_string(),
            })??;
        let built = tokio::spawn(async move { builder.build().await }).await;
        let model = match built {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => {
                return Err(EngineError::LoadFailed {
                    path,
                    reason: e.to_string(),
                })
            }
            Err(join) => {
                return Err(EngineError::LoadFailed {
                    path,
                    reason: panic_text(join),
                })
            }
        };
        let context_length = model
            .max_sequence_length()
            .ok()
            .flatten()
            .map(|n| n.min(u32::MAX as usize) as u32);
        let size_bytes = std::fs::metadata(&path)
            .map(|m| m.len() as f64)
            .unwrap_or(0.0);
        let info = ModelInfo {
            name: path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: path.to_string_lossy().into_owned(),
            size_bytes,
            backend: self.backend().into(),
            architecture: None,
            context_length,
            quant: None,
            supports_thinking: false,
            effort_levels: Vec::new(),
            supports_tools: false,
            placement: Some(match gpu_build() {
                Some(api) if on_gpu(spec.device) => format!("GPU · {api} (mistral.rs)"),
                _ => "CPU".into(),
            }),
            prompt_cache_bytes: None,
            runtimes: Vec::new(),
        };
        *self.loaded.write().expect("engine lock") = Some(Loaded {
            model: Arc::new(model),
            info: info.clone(),
            prompt: prompt.map(Arc::new),
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
        let (model, prompt) = self.model().ok_or(EngineError::NoModel)?;
        let context_length = self.loaded().and_then(|i| i.context_length);

        let s = &request.sampling;
        let sampling = mistralrs::SamplingParams {
            temperature: Some(s.temperature),
            top_p: Some(s.top_p),
            top_k: s.top_k.map(|k| k as usize),
            min_p: s.min_p,
            repetition_penalty: s.repetition_penalty.map(|r| r as f32),
            max_len: Some(s.max_tokens as usize),
            ..mistralrs::SamplingParams::neutral()
        };
        let (source, prompt_tokens, starts_in_reasoning) = match prompt {
            Some(p) => {
                // The GGUF's own template, rendered as jinja2 would, with every switch
                // (thinking, effort, kept reasoning) and the reasoning of past turns.
                let (text, ids) = templated_ids(&model, &p, &request).await?;
                let n = ids.len() as u32;
                if context_length.is_some_and(|c| n >= c) {
                    return Err(EngineError::InvalidRequest(format!(
                        "the prompt has {n} tokens, the context holds {}",
                        context_length.unwrap_or(0)
                    )));
                }
                (
                    Source::Tokens {
                        ids,
                        sampling: Box::new(sampling),
                    },
                    n,
                    opens_reasoning(&text),
                )
            }
            None => {
                let mut builder = RequestBuilder::new().set_sampling(sampling);
                for ChatTurn {
                    role: r, content, ..
                } in &request.messages
                {
                    builder = builder.add_message(role(*r), content);
                }
                if let Some(on) = request.enable_thinking {
                    builder = builder.enable_thinking(on);
                }
                let n = untemplated_count(&model, &request).await.unwrap_or(0);
                (Source::Chat(Box::new(builder)), n, false)
            }
        };

        let cancel = CancellationToken::new();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(
            model,
            source,
            ThinkParser::new("<think>", "</think>", starts_in_reasoning),
            prompt_tokens,
            context_length,
            cancel.clone(),
            tx,
        ));
        Ok(Generation::new(crate::event_stream(rx), cancel))
    }

    async fn unload(&self) {
        let old = self.loaded.write().expect("engine lock").take();
        drop(old);
    }

    async fn count_tokens(&self, request: &GenerateRequest) -> Result<u32, EngineError> {
        validate(request)?;
        let (model, prompt) = self.model().ok_or(EngineError::NoModel)?;
        match prompt {
            Some(p) => Ok(templated_ids(&model, &p, request).await?.1.len() as u32),
            None => untemplated_count(&model, request).await,
        }
    }
}

/// What one generation asks mistralrs for.
enum Source {
    /// A prompt LocalGLM rendered from the GGUF's template, as token ids (a completion request,
    /// so mistralrs applies no template of its own).
    Tokens {
        ids: Vec<u32>,
        sampling: Box<mistralrs::SamplingParams>,
    },
    /// A chat request mistralrs renders itself (the GGUF has no template).
    Chat(Box<RequestBuilder>),
}

/// Starts the request; its responses arrive on the returned channel, which cancels the
/// sequence when dropped.
async fn start(model: Arc<Model>, source: Source) -> Result<mpsc::Receiver<Response>, EngineError> {
    let failed = |e: String| EngineError::Generation(e);
    let (tx, rx) = mpsc::channel(1);
    match source {
        Source::Tokens { ids, sampling } => {
            let request = Request::Normal(Box::new(NormalRequest {
                messages: RequestMessage::CompletionTokens(ids),
                sampling_params: *sampling,
                response: tx,
                return_logprobs: false,
                is_streaming: true,
                id: model.inner().next_request_id(),
                constraint: Constraint::None,
                suffix: None,
                tools: None,
                tool_choice: None,
                logits_processors: None,
                return_raw_logits: false,
                web_search_options: None,
                model_id: None,
                truncate_sequence: false,
            }));
            let sender = model
                .inner()
                .get_sender(None)
                .map_err(|e| failed(e.to_string()))?;
            sender
                .send(request)
                .await
                .map_err(|e| failed(e.to_string()))?;
        }
        Source::Chat(builder) => {
            tokio::spawn(async move {
                match model.stream_chat_request(*builder).await {
                    Err(e) => {
                        let _ = tx.send(Response::InternalError(e.to_string().into())).await;
                    }
                    Ok(mut stream) => {
                        while let Some(r) = stream.next().await {
                            if tx.send(r).await.is_err() {
                                break; // dropping the stream cancels the sequence
                            }
                        }
                    }
                }
            });
        }
    }
    Ok(rx)
}

/// Drives one mistralrs request, translating chunks into engine events.
async fn run(
    model: Arc<Model>,
    source: Source,
    mut parser: ThinkParser,
    prompt_tokens: u32,
    context_length: Option<u32>,
    cancel: CancellationToken,
    tx: mpsc::UnboundedSender<EngineEvent>,
) {
    let mut clock = StatsClock::start(prompt_tokens);
    clock.track_reasoning();
    let send = |segs: Vec<Segment>| -> bool {
        segs.into_iter().all(|s| {
            tx.send(match s {
                Segment::Reasoning(t) => EngineEvent::Reasoning(t),
                Segment::Content(t) => EngineEvent::Content(t),
            })
            .is_ok()
        })
    };
    let fail = |msg: String| {
        (
            FinishReason::Error,
            Some(EngineError::Generation(msg)),
            None,
        )
    };
    // Text of one generated token: content (split by the think parser) and any reasoning
    // mistralrs already separated. Returns false when nobody listens any more.
    let mut on_token = |reasoning: Option<&str>, content: Option<&str>| -> bool {
        let (mut had_text, mut thought) = (false, false);
        if let Some(r) = reasoning.filter(|r| !r.is_empty()) {
            (had_text, thought) = (true, true);
            if !send(vec![Segment::Reasoning(r.to_string())]) {
                return false;
            }
        }
        if let Some(c) = content.filter(|c| !c.is_empty()) {
            had_text = true;
            let segs = parser.push(c);
            thought |=
                segs.iter().any(|s| matches!(s, Segment::Reasoning(_))) || parser.in_reasoning();
            if !send(segs) {
                return false;
            }
        }
        if had_text {
            clock.tokens(1);
            if thought {
                clock.reasoning_tokens(1);
            }
        }
        true
    };

    let (reason, error, exact) = match start(model, source).await {
        Err(e) => (FinishReason::Error, Some(e), None),
        Ok(mut responses) => loop {
            let next = tokio::select! {
                biased;
                _ = cancel.cancelled() => None,
                r = responses.recv() => Some(r),
            };
            // On cancel the receiver is dropped with this loop; mistralrs then cancels the
            // sequence at its next token.
            let Some(resp) = next else {
                break (FinishReason::Cancelled, None, None);
            };
            match resp {
                None => break (FinishReason::Stop, None, None),
                Some(Response::Chunk(chunk)) => {
                    let mut ended = None;
                    for choice in &chunk.choices {
                        let d = &choice.delta;
                        if !on_token(d.reasoning_content.as_deref(), d.content.as_deref()) {
                            return;
                        }
                        if let Some(fr) = &choice.finish_reason {
                            ended = Some(finish_reason(fr));
                        }
                    }
                    if let Some(reason) = ended {
                        if let Some(u) = &chunk.usage {
                            clock.set_prompt_tokens(u.prompt_tokens as u32);
                        }
                        break (
                            reason,
                            None,
                            chunk.usage.as_ref().map(|u| u.completion_tokens as u32),
                        );
                    }
                }
                Some(Response::CompletionChunk(chunk)) => {
                    let mut ended = None;
                    for choice in &chunk.choices {
                        if !on_token(None, Some(&choice.text)) {
                            return;
                        }
                        if let Some(fr) = &choice.finish_reason {
                            ended = Some(finish_reason(fr));
                        }
                    }
                    if let Some(reason) = ended {
                        break (reason, None, None);
                    }
                }
                Some(Response::CompletionDone(_)) | Some(Response::Done(_)) => {
                    break (FinishReason::Stop, None, None)
                }
                Some(Response::ModelError(msg, _))
                | Some(Response::CompletionModelError(msg, _)) => break fail(msg),
                Some(Response::InternalError(e)) | Some(Response::ValidationError(e)) => {
                    break fail(e.to_string())
                }
                Some(_) => {}
            }
            if tx.is_closed() {
                // Nobody listens any more: stop generating (dropping the receiver cancels).
                return;
            }
        },
    };
    send(parser.finish());
    let _ = tx.send(EngineEvent::Finished {
        reason,
        stats: clock.finish(exact, context_length),
        error,
    });
}
