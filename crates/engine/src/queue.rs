//! One queue in front of an engine, shared by everyone who generates with it (the app's chats
//! and the local API): generations run one at a time, first come first served.
//!
//! `generate` never blocks its caller on the queue: when the engine is free the generation
//! starts at once (and a bad request fails at once, as without the queue); otherwise it returns
//! a generation whose stream waits for its turn. Cancelling a waiting generation ends it with
//! `Finished { Cancelled }` without ever starting it; dropping its stream leaves the queue.

use crate::{validate, Engine, EngineError, EngineEvent, GenerateRequest, Generation, LoadSpec};
use async_trait::async_trait;
use futures::StreamExt;
use localglm_protocol::{FinishReason, GenerationStats, ModelInfo};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Who has the engine, and who waits, in the order `generate` was called.
#[derive(Default)]
struct Turns {
    busy: bool,
    waiting: VecDeque<oneshot::Sender<Turn>>,
}

/// The right to generate; handing it on (or freeing the engine) when dropped.
struct Turn(Arc<Mutex<Turns>>);

impl Drop for Turn {
    fn drop(&mut self) {
        let mut turns = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // The next caller still waiting gets the turn; cancelled ones are skipped.
        while let Some(next) = turns.waiting.pop_front() {
            let turn = Turn(self.0.clone());
            match next.send(turn) {
                Ok(()) => return,
                // Not dropped: that would re-enter this lock. (Leaks one count of an Arc
                // that lives as long as the engine.)
                Err(turn) => std::mem::forget(turn),
            }
        }
        turns.busy = false;
    }
}

/// An engine whose generations take turns.
pub struct Queued {
    inner: Arc<dyn Engine>,
    turns: Arc<Mutex<Turns>>,
}

impl Queued {
    pub fn new(inner: Arc<dyn Engine>) -> Self {
        Self {
            inner,
            turns: Arc::default(),
        }
    }

    /// The turn at once if the engine is free, else a place in the line.
    fn take_turn(&self) -> Result<Turn, oneshot::Receiver<Turn>> {
        let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
        if !turns.busy {
            turns.busy = true;
            return Ok(Turn(self.turns.clone()));
        }
        let (tx, rx) = oneshot::channel();
        turns.waiting.push_back(tx);
        Err(rx)
    }
}

/// A running generation's events with its turn held until the stream ends or is dropped.
fn holding(generation: Generation, turn: Turn) -> Generation {
    let cancel = generation.canceller();
    let events = futures::stream::unfold(
        (generation.events, Some(turn)),
        |(mut events, mut turn)| async move {
            let event = events.next().await?;
            if matches!(event, EngineEvent::Finished { .. }) {
                turn.take();
            }
            Some((event, (events, turn)))
        },
    );
    Generation::new(events.boxed(), cancel)
}

fn finished(reason: FinishReason, error: Option<EngineError>) -> EngineEvent {
    EngineEvent::Finished {
        reason,
        stats: GenerationStats::default(),
        error,
    }
}

/// Waits for the turn, then runs the generation, forwarding its events; gives up as soon as
/// the generation is cancelled or nobody listens any more.
async fn wait_then_run(
    inner: Arc<dyn Engine>,
    line: oneshot::Receiver<Turn>,
    request: GenerateRequest,
    cancel: CancellationToken,
    tx: mpsc::UnboundedSender<EngineEvent>,
) {
    let turn = tokio::select! {
        t = line => match t {
            Ok(t) => t,
            Err(_) => return,
        },
        _ = cancel.cancelled() => {
            let _ = tx.send(finished(FinishReason::Cancelled, None));
            return;
        }
        _ = tx.closed() => return,
    };
    let mut generation = match inner.generate(request).await {
        Ok(g) => g,
        Err(e) => {
            let _ = tx.send(finished(FinishReason::Error, Some(e)));
            return;
        }
    };
    let mut stopping = false;
    loop {
        let event = if stopping {
            generation.events.next().await
        } else {
            tokio::select! {
                e = generation.events.next() => e,
                _ = cancel.cancelled() => {
                    generation.cancel();
                    stopping = true;
                    continue;
                }
            }
        };
        let Some(event) = event else { break };
        let done = matches!(event, EngineEvent::Finished { .. });
        if tx.send(event).is_err() {
            generation.cancel();
            break;
        }
        if done {
            break;
        }
    }
    drop(turn);
}

#[async_trait]
impl Engine for Queued {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn load(&self, spec: LoadSpec) -> Result<ModelInfo, EngineError> {
        self.inner.load(spec).await
    }

    fn loaded(&self) -> Option<ModelInfo> {
        self.inner.loaded()
    }

    async fn generate(&self, request: GenerateRequest) -> Result<Generation, EngineError> {
        validate(&request)?;
        if self.inner.loaded().is_none() {
            return Err(EngineError::NoModel);
        }
        // The place in line is taken here, synchronously, so turns follow the call order.
        let line = match self.take_turn() {
            Ok(turn) => {
                let generation = self.inner.generate(request).await?;
                return Ok(holding(generation, turn));
            }
            Err(line) => line,
        };
        let cancel = CancellationToken::new();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(wait_then_run(
            self.inner.clone(),
            line,
            request,
            cancel.clone(),
            tx,
        ));
        Ok(Generation::new(crate::event_stream(rx), cancel))
    }

    async fn unload(&self) {
        self.inner.unload().await;
    }

    async fn count_tokens(&self, request: &GenerateRequest) -> Result<u32, EngineError> {
        self.inner.count_tokens(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scripted::{Script, ScriptedEngine};
    use crate::{ChatTurn, Role};
    use std::time::{Duration, Instant};

    async fn engine() -> Queued {
        let inner = Arc::new(ScriptedEngine::new(|r: &GenerateRequest| Script {
            reasoning: Vec::new(),
            content: Script::tokens(&r.messages[0].content),
            token_delay: Duration::from_millis(20),
            burst: 1,
            fail_with: None,
        }));
        inner.load(LoadSpec::new("/m/q.gguf")).await.unwrap();
        Queued::new(inner)
    }

    fn req(text: &str) -> GenerateRequest {
        GenerateRequest {
            messages: vec![ChatTurn::new(Role::User, text)],
            ..Default::default()
        }
    }

    /// The text of a generation and when its first and last events came.
    async fn run(g: Generation) -> (String, Instant, Instant, FinishReason) {
        let mut events = g.events;
        let mut text = String::new();
        let mut first = None;
        loop {
            let e = events.next().await.expect("ends with Finished");
            first.get_or_insert_with(Instant::now);
            match e {
                EngineEvent::Content(t) => text.push_str(&t),
                EngineEvent::Finished { reason, .. } => {
                    return (text, first.unwrap(), Instant::now(), reason)
                }
                EngineEvent::Reasoning(_) => {}
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn generations_take_turns_in_arrival_order() {
        let q = engine().await;
        let a = q.generate(req("one two three four five")).await.unwrap();
        let b = q.generate(req("six seven")).await.unwrap();
        let c = q.generate(req("eight")).await.unwrap();
        let (ra, rb, rc) = tokio::join!(run(a), run(b), run(c));
        assert_eq!(
            (ra.0.as_str(), rb.0.as_str(), rc.0.as_str()),
            ("one two three four five", "six seven", "eight")
        );
        // Each starts only after the one before it has finished.
        assert!(rb.1 >= ra.2 && rc.1 >= rb.2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiting_generation_cancels_at_once_and_a_dropped_one_frees_the_turn() {
        let q = engine().await;
        let a = q.generate(req("a b c d e f g h i j")).await.unwrap();
        let waiting = q.generate(req("never")).await.unwrap();
        waiting.cancel();
        let started = Instant::now();
        let (text, _, _, reason) = run(waiting).await;
        assert_eq!((text.as_str(), reason), ("", FinishReason::Cancelled));
        assert!(started.elapsed() < Duration::from_millis(100));
        // Dropping the running generation's stream (a client gone) lets the next one start.
        drop(a);
        let next = q.generate(req("next")).await.unwrap();
        let t = Instant::now();
        let (text, first, _, reason) = run(next).await;
        assert_eq!((text.as_str(), reason), ("next", FinishReason::Stop));
        assert!(first - t < Duration::from_millis(150));
        // A bad request still fails at once when the engine is free.
        assert!(matches!(
            q.generate(GenerateRequest::default()).await,
            Err(EngineError::InvalidRequest(_))
        ));
    }
}
