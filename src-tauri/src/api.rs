//! The local OpenAI-compatible API inside the app: started and stopped from settings, sharing
//! the app's engine, with a live request log (the last 200 requests, also sent as `api-log`
//! events).

use localglm_engine::Engine;
use localglm_protocol::{ApiLogEntry, ApiSettings, ApiStatus};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tauri::{AppHandle, Emitter, Runtime};

const LOG_LEN: usize = 200;

/// Managed state: the running server, if any, and its log.
#[derive(Default)]
pub struct ApiServer {
    task: Mutex<Option<tauri::async_runtime::JoinHandle<()>>>,
    status: Mutex<Option<ApiStatus>>,
    log: Arc<Mutex<VecDeque<ApiLogEntry>>>,
}

fn stopped(error: Option<String>) -> ApiStatus {
    ApiStatus {
        running: false,
        url: None,
        error,
    }
}

impl ApiServer {
    pub fn status(&self) -> ApiStatus {
        self.status
            .lock()
            .expect("lock")
            .clone()
            .unwrap_or_else(|| stopped(None))
    }

    pub fn log(&self) -> Vec<ApiLogEntry> {
        self.log.lock().expect("lock").iter().cloned().collect()
    }

    /// Stops the running server and starts one for `settings` if enabled.
    pub async fn apply<R: Runtime>(
        &self,
        app: &AppHandle<R>,
        engine: Arc<dyn Engine>,
        settings: &ApiSettings,
    ) -> ApiStatus {
        if let Some(task) = self.task.lock().expect("lock").take() {
            task.abort();
        }
        let status = if !settings.enabled {
            stopped(None)
        } else {
            match tokio::net::TcpListener::bind((settings.host.as_str(), settings.port)).await {
                Err(e) => stopped(Some(format!(
                    "cannot listen on {}:{}: {e}",
                    settings.host, settings.port
                ))),
                Ok(listener) => {
                    let addr = listener.local_addr().ok();
                    let (log, emitter) = (self.log.clone(), app.clone());
                    let state = localglm_server::ApiState::new(engine, settings.api_key.clone())
                        .with_log(Arc::new(move |entry: ApiLogEntry| {
                            let _ = emitter.emit(crate::events::API_LOG, &entry);
                            let mut log = log.lock().expect("lock");
                            if log.len() == LOG_LEN {
                                log.pop_front();
                            }
                            log.push_back(entry);
                        }));
                    let task = tauri::async_runtime::spawn(async move {
                        if let Err(e) = localglm_server::serve(listener, state).await {
                            tracing::warn!("local API stopped: {e}");
                        }
                    });
                    *self.task.lock().expect("lock") = Some(task);
                    ApiStatus {
                        running: true,
                        url: addr.map(|a| format!("http://{a}/v1")),
                        error: None,
                    }
                }
            }
        };
        *self.status.lock().expect("lock") = Some(status.clone());
        status
    }
}
