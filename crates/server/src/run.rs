//! One running generation as the APIs see it, whatever their wire format: reasoning and text
//! deltas, tool calls read out of the text, stop strings, and one end with its usage. Each
//! protocol module turns these steps into its own events.

use crate::openai::StopFilter;
use crate::tools::{Piece, ToolCall, ToolCallParser};
use crate::LogNote;
use futures::StreamExt;
use localglm_engine::{EngineError, EngineEvent, FinishReason, GenerationStats};
use serde_json::Value;
use std::collections::VecDeque;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::DropGuard;

/// Why a reply ended, in terms every protocol can name.
#[derive(Debug, Clone, PartialEq)]
pub enum End {
    /// The model stopped by itself (or was cancelled).
    Stop,
    /// The token limit (or the context) was reached.
    Length,
    /// One of the request's stop strings was reached.
    StopSequence(String),
    /// The model stopped after calling tools.
    ToolCalls,
}

/// One step of a run.
pub enum Step {
    Reasoning(String),
    Content(String),
    ToolCall {
        index: usize,
        id: String,
        call: ToolCall,
    },
    Done {
        end: End,
        /// The generation's numbers (absent when the engine's stream ended without them).
        stats: Option<GenerationStats>,
        error: Option<EngineError>,
    },
}

/// A running generation: its events, the guard that cancels it when the response is dropped
/// (a client that hangs up), and its place in the queue.
pub struct Run {
    events: futures::stream::BoxStream<'static, EngineEvent>,
    _guard: DropGuard,
    _permit: OwnedSemaphorePermit,
    stop: StopFilter,
    /// Reads tool calls out of the content when the request gave tools.
    tools: Option<ToolCallParser>,
    /// Tool calls let out so far.
    calls: usize,
    /// Steps ready to go out, in order.
    queue: VecDeque<Step>,
    ended: bool,
    /// Where the request log learns the usage.
    note: LogNote,
    cancel: tokio_util::sync::CancellationToken,
    /// The stop string reached: the generation was cancelled and its end is awaited for the
    /// usage, its further text dropped.
    stopped: Option<String>,
}

impl Run {
    /// `tools`: the request's tool definitions when calls are to be read from the reply.
    pub fn new(
        generation: localglm_engine::Generation,
        permit: OwnedSemaphorePermit,
        stop: Vec<String>,
        tools: Option<&Value>,
        note: LogNote,
    ) -> Self {
        let cancel = generation.canceller();
        Self {
            _guard: cancel.clone().drop_guard(),
            events: generation.events,
            _permit: permit,
            stop: StopFilter::new(stop),
            tools: tools.map(ToolCallParser::new),
            calls: 0,
            queue: VecDeque::new(),
            ended: false,
            note,
            cancel,
            stopped: None,
        }
    }

    /// The next step; `None` after `Done`.
    pub async fn next(&mut self) -> Option<Step> {
        loop {
            if let Some(step) = self.queue.pop_front() {
                return Some(step);
            }
            if self.ended {
                return None;
            }
            match self.events.next().await {
                None => {
                    // The engine's stream ended without its `Finished` (a backend that died):
                    // an error end, so every protocol closes its reply.
                    let e = EngineError::Generation("the generation ended unexpectedly".into());
                    self.end(End::Stop, None, Some(e));
                }
                Some(EngineEvent::Reasoning(_) | EngineEvent::Content(_))
                    if self.stopped.is_some() => {}
                Some(EngineEvent::Reasoning(t)) => return Some(Step::Reasoning(t)),
                Some(EngineEvent::Content(t)) => {
                    let (out, hit) = self.stop.push(&t);
                    self.content(&out);
                    if hit {
                        // A stop string: the text ends here; the generation is cancelled and
                        // its end (within a token) awaited for the usage.
                        self.stopped = Some(self.stop.matched().unwrap_or_default().to_owned());
                        self.cancel.cancel();
                    }
                }
                Some(EngineEvent::Finished { stats, .. }) if self.stopped.is_some() => {
                    self.note.usage(&stats);
                    let which = self.stopped.take().unwrap_or_default();
                    self.end(End::StopSequence(which), Some(stats), None);
                }
                Some(EngineEvent::Finished {
                    reason,
                    stats,
                    error,
                }) => {
                    self.note.usage(&stats);
                    let rest = self.stop.finish();
                    self.content(&rest);
                    let error = error.filter(|_| reason == FinishReason::Error);
                    let end = match reason {
                        FinishReason::Length => End::Length,
                        _ => End::Stop,
                    };
                    self.end(end, Some(stats), error);
                }
            }
        }
    }

    /// Content after the stop filter: as text, or through the tool-call parser.
    fn content(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        let pieces = match &mut self.tools {
            Some(p) => p.push(text),
            None => vec![Piece::Text(text.to_owned())],
        };
        self.pieces(pieces);
    }

    fn pieces(&mut self, pieces: Vec<Piece>) {
        for piece in pieces {
            match piece {
                Piece::Text(t) if t.is_empty() => {}
                Piece::Text(t) => self.queue.push_back(Step::Content(t)),
                Piece::Call(call) => {
                    self.queue.push_back(Step::ToolCall {
                        index: self.calls,
                        id: crate::uuid_like(),
                        call,
                    });
                    self.calls += 1;
                }
            }
        }
    }

    /// Queues the end: what the tool parser still holds, then `Done` (`ToolCalls` when the
    /// reply called tools and ended normally).
    fn end(&mut self, end: End, stats: Option<GenerationStats>, error: Option<EngineError>) {
        // A call left open is only a call when the model stopped by itself (at
        // `<|observation|>`), not when it was cut off by the token limit or a Stop.
        let complete = end == End::Stop && error.is_none();
        if let Some(rest) = self.tools.as_mut().map(|p| p.finish(complete)) {
            self.pieces(rest);
        }
        let end = if end == End::Stop && self.calls > 0 {
            End::ToolCalls
        } else {
            end
        };
        self.queue.push_back(Step::Done { end, stats, error });
        self.ended = true;
    }
}

/// A whole reply, collected (the non-streaming responses).
#[derive(Debug, Default)]
pub struct Collected {
    pub reasoning: String,
    pub content: String,
    /// (id, call) in order.
    pub calls: Vec<(String, ToolCall)>,
    pub end: Option<End>,
    pub stats: Option<GenerationStats>,
}

impl Run {
    /// Runs to the end; an engine error is returned as such.
    pub async fn collect(mut self) -> Result<Collected, EngineError> {
        let mut out = Collected::default();
        while let Some(step) = self.next().await {
            match step {
                Step::Reasoning(t) => out.reasoning.push_str(&t),
                Step::Content(t) => out.content.push_str(&t),
                Step::ToolCall { id, call, .. } => out.calls.push((id, call)),
                Step::Done { error: Some(e), .. } => return Err(e),
                Step::Done { end, stats, .. } => {
                    out.end = Some(end);
                    out.stats = stats;
                }
            }
        }
        Ok(out)
    }
}
