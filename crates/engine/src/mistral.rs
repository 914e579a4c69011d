//! Backend on the published `mistralrs` crate: GGUF files of the architectures it supports.
//!
//! Invariants: nothing here reaches the network — a model is loaded only from an existing local
//! file (mistralrs falls back to the Hugging Face hub for paths that do not exist, so the path
//! is checked first) with the tokenizer and chat template read from the GGUF itself. A panic
//! inside the loader becomes a `LoadFailed` error. A generation's mistralrs stream is always
//! either drained or dropped (an unread stream would stall the mistralrs engine thread).

use crate::reasoning::{Segment, ThinkParser};
use crate::{
    validate, ChatTurn, Engine, EngineError, EngineEvent, GenerateRequest, Generation, LoadSpec,
    StatsClock,
};
use async_trait::async_trait;
use localglm_protocol::{FinishReason, ModelInfo, Role};
use mistralrs::{
    GgufModelBuilder, Model, RequestBuilder, Response, TextMessageRole, TextMessages, TokenSource,
};
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, RwLock};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

struct Loaded {
    model: Arc<Model>,
    info: ModelInfo,
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

    fn model(&self) -> Option<Arc<Model>> {
        self.loaded
            .read()
            .expect("engine lock")
            .as_ref()
            .map(|l| l.model.clone())
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

fn role(r: Role) -> TextMessageRole {
    match r {
        Role::System => TextMessageRole::System,
        Role::User => TextMessageRole::User,
        Role::Assistant => TextMessageRole::Assistant,
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
        if spec.force_cpu {
            builder = builder.with_force_cpu();
        }
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
        };
        *self.loaded.write().expect("engine lock") = Some(Loaded {
            model: Arc::new(model),
            info: info.clone(),
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
        let model = self.model().ok_or(EngineError::NoModel)?;
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
        let mut builder = RequestBuilder::new().set_sampling(sampling);
        let mut counted = TextMessages::new();
        for ChatTurn {
            role: r, content, ..
        } in &request.messages
        {
            builder = builder.add_message(role(*r), content);
            counted = counted.add_message(role(*r), content);
        }
        if let Some(on) = request.enable_thinking {
            builder = builder.enable_thinking(on);
        }
        let prompt_tokens = model
            .tokenize(
                either::Either::Left(counted),
                None,
                true,
                true,
                request.enable_thinking,
            )
            .await
            .map(|t| t.len() as u32)
            .unwrap_or(0);

        let cancel = CancellationToken::new();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(
            model,
            builder,
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
}

/// Drives one mistralrs stream, translating chunks into engine events.
async fn run(
    model: Arc<Model>,
    request: RequestBuilder,
    prompt_tokens: u32,
    context_length: Option<u32>,
    cancel: CancellationToken,
    tx: mpsc::UnboundedSender<EngineEvent>,
) {
    let mut clock = StatsClock::start(prompt_tokens);
    clock.track_reasoning();
    let mut parser = ThinkParser::default();
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

    let (reason, error, exact) = match model.stream_chat_request(request).await {
        Err(e) => fail(e.to_string()),
        Ok(mut stream) => loop {
            let next = tokio::select! {
                biased;
                _ = cancel.cancelled() => None,
                r = stream.next() => Some(r),
            };
            // On cancel the stream is dropped here; mistralrs then cancels the sequence at its
            // next token.
            let Some(resp) = next else {
                break (FinishReason::Cancelled, None, None);
            };
            match resp {
                None => break (FinishReason::Stop, None, None),
                Some(Response::Chunk(chunk)) => {
                    let mut ended = None;
                    for choice in &chunk.choices {
                        let (mut had_text, mut thought) = (false, false);
                        if let Some(r) = choice
                            .delta
                            .reasoning_content
                            .as_deref()
                            .filter(|r| !r.is_empty())
                        {
                            (had_text, thought) = (true, true);
                            if !send(vec![Segment::Reasoning(r.to_string())]) {
                                return;
                            }
                        }
                        if let Some(c) = choice.delta.content.as_deref().filter(|c| !c.is_empty()) {
                            had_text = true;
                            let segs = parser.push(c);
                            thought |= segs.iter().any(|s| matches!(s, Segment::Reasoning(_)))
                                || parser.in_reasoning();
                            if !send(segs) {
                                return;
                            }
                        }
                        if had_text {
                            clock.tokens(1);
                            if thought {
                                clock.reasoning_tokens(1);
                            }
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
                Some(Response::ModelError(msg, _partial)) => break fail(msg),
                Some(Response::InternalError(e)) | Some(Response::ValidationError(e)) => {
                    break fail(e.to_string())
                }
                Some(_) => {}
            }
            if tx.is_closed() {
                // Nobody listens any more: stop generating (dropping the stream cancels).
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
