//! Downloads the app runs in the background: start, pause, resume, cancel, progress reports,
//! and a record of unfinished downloads (`models/downloads.json`) so that a download paused or
//! interrupted by quitting shows up again, paused, after a restart.

use crate::download::{self, PullError, Stop};
use localglm_protocol::DownloadState;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Receives every state change.
pub type OnChange = Box<dyn Fn(&DownloadState) + Send + Sync>;

struct Entry {
    state: DownloadState,
    stop: Option<Arc<Stop>>,
}

/// The app's downloads.
pub struct Manager {
    models_dir: PathBuf,
    entries: Mutex<BTreeMap<String, Entry>>,
    on_change: OnChange,
}

fn record_path(models_dir: &Path) -> PathBuf {
    models_dir.join("downloads.json")
}

/// `REPO[:QUANT]` as an id usable in file names and events.
fn id_of(spec: &str) -> String {
    spec.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Manager {
    /// The manager of `models_dir`; unfinished downloads recorded there come back paused.
    pub fn new(models_dir: PathBuf, on_change: OnChange) -> Arc<Self> {
        let mut entries = BTreeMap::new();
        let recorded: Vec<DownloadState> = std::fs::read_to_string(record_path(&models_dir))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        for mut s in recorded {
            s.status = "paused".into();
            s.bytes_per_s = 0.0;
            entries.insert(
                s.id.clone(),
                Entry {
                    state: s,
                    stop: None,
                },
            );
        }
        Arc::new(Self {
            models_dir,
            entries: Mutex::new(entries),
            on_change,
        })
    }

    /// Every download this session knows (running, paused, failed, finished).
    pub fn list(&self) -> Vec<DownloadState> {
        self.entries
            .lock()
            .expect("lock")
            .values()
            .map(|e| e.state.clone())
            .collect()
    }

    /// Keeps the record of unfinished downloads on disk (atomically).
    fn persist(&self, entries: &BTreeMap<String, Entry>) {
        let unfinished: Vec<&DownloadState> = entries
            .values()
            .map(|e| &e.state)
            .filter(|s| s.status == "running" || s.status == "paused" || s.status == "failed")
            .collect();
        let path = record_path(&self.models_dir);
        let tmp = path.with_extension("json.tmp");
        if std::fs::create_dir_all(&self.models_dir).is_ok()
            && std::fs::write(
                &tmp,
                serde_json::to_vec_pretty(&unfinished).unwrap_or_default(),
            )
            .is_ok()
        {
            let _ = std::fs::rename(&tmp, &path);
        }
    }

    fn update(&self, id: &str, change: impl FnOnce(&mut DownloadState), persist: bool) {
        let snapshot = {
            let mut entries = self.entries.lock().expect("lock");
            let Some(e) = entries.get_mut(id) else { return };
            change(&mut e.state);
            let s = e.state.clone();
            if persist {
                self.persist(&entries);
            }
            s
        };
        (self.on_change)(&snapshot);
    }

    /// Starts (or resumes) downloading `spec` = `REPO[:QUANT]`. Resolving asks the hub, so call
    /// this off the UI thread.
    pub fn start(self: &Arc<Self>, spec: &str) -> Result<DownloadState, PullError> {
        let id = id_of(spec);
        if let Some(e) = self.entries.lock().expect("lock").get(&id) {
            if e.state.status == "running" {
                return Ok(e.state.clone());
            }
        }
        let plan = download::resolve(spec)?;
        let stop = Arc::new(Stop::default());
        let state = DownloadState {
            id: id.clone(),
            spec: spec.to_string(),
            name: plan.files[0]
                .path
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .trim_end_matches(".gguf")
                .to_string(),
            files: plan.files.len() as u32,
            total_bytes: plan.total_bytes() as f64,
            done_bytes: 0.0,
            bytes_per_s: 0.0,
            status: "running".into(),
            error: None,
            path: None,
        };
        {
            let mut entries = self.entries.lock().expect("lock");
            entries.insert(
                id.clone(),
                Entry {
                    state: state.clone(),
                    stop: Some(stop.clone()),
                },
            );
            self.persist(&entries);
        }
        (self.on_change)(&state);
        let this = Arc::clone(self);
        std::thread::Builder::new()
            .name(format!("download {id}"))
            .spawn(move || {
                let result = download::pull(&plan, &this.models_dir, &stop, |p| {
                    this.update(
                        &id,
                        |s| {
                            s.done_bytes = p.done_bytes as f64;
                            s.bytes_per_s = p.bytes_per_s;
                        },
                        false,
                    )
                });
                match result {
                    Ok(path) => this.update(
                        &id,
                        |s| {
                            s.status = "done".into();
                            s.done_bytes = s.total_bytes;
                            s.path = Some(path.to_string_lossy().into_owned());
                        },
                        true,
                    ),
                    Err(PullError::Paused) => this.update(
                        &id,
                        |s| {
                            s.status = "paused".into();
                            s.bytes_per_s = 0.0;
                        },
                        true,
                    ),
                    Err(PullError::Cancelled) => {
                        this.update(&id, |s| s.status = "cancelled".into(), false);
                        let mut entries = this.entries.lock().expect("lock");
                        entries.remove(&id);
                        this.persist(&entries);
                    }
                    Err(e) => this.update(
                        &id,
                        |s| {
                            s.status = "failed".into();
                            s.error = Some(e.to_string());
                        },
                        true,
                    ),
                }
            })
            .map_err(|e| PullError::Resolve(e.to_string()))?;
        Ok(state)
    }

    /// Pauses a running download (its bytes are kept); `false` if it is not running.
    pub fn pause(&self, id: &str) -> bool {
        match self.entries.lock().expect("lock").get(id) {
            Some(Entry {
                stop: Some(stop),
                state,
            }) if state.status == "running" => {
                stop.pause();
                true
            }
            _ => false,
        }
    }

    /// Cancels a download and deletes its partial files (also a paused one).
    pub fn cancel(&self, id: &str) -> bool {
        let mut entries = self.entries.lock().expect("lock");
        let Some(e) = entries.get(id) else {
            return false;
        };
        if e.state.status == "running" {
            if let Some(stop) = &e.stop {
                stop.cancel();
            }
            return true;
        }
        // Not running: delete its partial files here.
        let (repo, quant) = e.state.spec.split_once(':').unwrap_or((&e.state.spec, ""));
        let repo_dir = self.models_dir.join(repo.replace('/', "__"));
        remove_parts(&repo_dir, &quant.to_ascii_lowercase());
        let mut s = e.state.clone();
        s.status = "cancelled".into();
        entries.remove(id);
        self.persist(&entries);
        drop(entries);
        (self.on_change)(&s);
        true
    }
}

/// Deletes the `*.part` files under `dir` whose path contains `quant` (lower case).
fn remove_parts(dir: &Path, quant: &str) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            let name = p.to_string_lossy().to_ascii_lowercase();
            if p.is_dir() {
                remove_parts(&p, quant);
            } else if name.ends_with(".part") && name.contains(quant) {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}
