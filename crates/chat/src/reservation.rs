//! Which conversations a request is writing: a reply being generated, a branch switch. One
//! at a time per conversation; the claim is checked and taken in one step.

use crate::{ChatService, Running};
use localglm_conversations::new_id;
use localglm_protocol::{AppError, ErrorKind};
use std::collections::HashMap;
use std::sync::Mutex;
use tokio_util::sync::CancellationToken;

impl ChatService {
    /// Claims the conversation for one request that writes it (a reply, a branch switch):
    /// refused while another holds it; released when the claim is dropped, unless it became a
    /// running generation. The check and the claim are one step, so two sends at once never
    /// both start.
    pub(crate) fn reserve(&self, conversation_id: &str) -> Result<Reservation<'_>, AppError> {
        let mut running = self.running.lock().expect("lock");
        if running
            .values()
            .any(|r| r.conversation_id == conversation_id)
        {
            return Err(AppError::new(
                ErrorKind::InvalidRequest,
                "A reply is still being generated in this conversation.",
            ));
        }
        let id = new_id();
        running.insert(
            id.clone(),
            Running {
                conversation_id: conversation_id.to_string(),
                cancel: CancellationToken::new(),
            },
        );
        Ok(Reservation {
            running: &self.running,
            id,
            kept: false,
        })
    }
}

/// A conversation claimed by [`ChatService::reserve`].
pub(crate) struct Reservation<'a> {
    running: &'a Mutex<HashMap<String, Running>>,
    id: String,
    kept: bool,
}

impl Reservation<'_> {
    /// The claim becomes the running generation that `cancel` stops; returns its id. A stop
    /// or delete that came while it was starting stops it now.
    pub(crate) fn keep(&mut self, cancel: CancellationToken) -> String {
        let mut running = self.running.lock().expect("lock");
        if let Some(r) = running.get_mut(&self.id) {
            if r.cancel.is_cancelled() {
                cancel.cancel();
            }
            r.cancel = cancel;
        }
        self.kept = true;
        self.id.clone()
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.kept {
            self.running.lock().expect("lock").remove(&self.id);
        }
    }
}
