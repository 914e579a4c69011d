//! Downloading a model from Hugging Face (or any server with the hub's URL layout, chosen by
//! `HF_ENDPOINT`): every shard of a quant, with progress, resume (HTTP `Range` from the bytes
//! already in `*.part`, also after a restart), cancel, and verification (size, SHA-256 where
//! the hub publishes it, GGUF header and split-set completeness) before the model is usable.
//!
//! Invariants: a file gets its final `.gguf` name only after its size and checksum are right,
//! so a partial or corrupt download is never listed as a model (the library also ignores split
//! sets with a missing shard); space is checked before the first byte is fetched.

use localglm_gguf::SplitName;
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The hub's default endpoint.
pub const HUB: &str = "https://huggingface.co";

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("{0}")]
    Resolve(String),
    #[error("{url}: {reason}")]
    Http { url: String, reason: String },
    #[error("not enough disk space in {dir}: {needed} more bytes needed, {available} available")]
    NoSpace {
        dir: PathBuf,
        needed: u64,
        available: u64,
    },
    #[error("{file} is corrupt ({reason}); it was deleted — run the download again")]
    Corrupt { file: String, reason: String },
    #[error("the download was stopped; the bytes so far are kept, run it again to resume")]
    Paused,
    #[error("the download was cancelled and its partial files deleted")]
    Cancelled,
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PullError + '_ {
    move |source| PullError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One file of a repository.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteFile {
    /// Path in the repository, e.g. `UD-Q2_K_XL/GLM-5.2-UD-Q2_K_XL-00001-of-00006.gguf`.
    pub path: String,
    pub size: u64,
    /// SHA-256 of the content (the hub's LFS oid), when published.
    pub sha256: Option<String>,
}

/// `REPO[:QUANT]` resolved to the files of one model.
#[derive(Debug, Clone, PartialEq)]
pub struct PullPlan {
    pub endpoint: String,
    pub repo: String,
    pub files: Vec<RemoteFile>,
}

impl PullPlan {
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Where the files go: `models/{owner}__{repo}/{path}`.
    pub fn local_path(&self, models_dir: &Path, file: &RemoteFile) -> PathBuf {
        models_dir
            .join(self.repo.replace('/', "__"))
            .join(&file.path)
    }

    fn url(&self, file: &RemoteFile) -> String {
        format!("{}/{}/resolve/main/{}", self.endpoint, self.repo, file.path)
    }
}

/// Progress of a pull.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// 0-based index of the file being fetched, of `files`.
    pub file: usize,
    pub files: usize,
    pub done_bytes: u64,
    pub total_bytes: u64,
    /// Over the last few seconds.
    pub bytes_per_s: f64,
}

impl Progress {
    /// Seconds left at the current speed.
    pub fn eta_s(&self) -> Option<f64> {
        (self.bytes_per_s > 0.0)
            .then(|| self.total_bytes.saturating_sub(self.done_bytes) as f64 / self.bytes_per_s)
    }
}

/// The endpoint in use: `HF_ENDPOINT` or the hub.
pub fn endpoint() -> String {
    std::env::var("HF_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| HUB.to_string())
        .trim_end_matches('/')
        .to_string()
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(15))
        .timeout_read(Duration::from_secs(60))
        .build()
}

fn get(agent: &ureq::Agent, url: &str, range_from: u64) -> Result<ureq::Response, PullError> {
    let mut req = agent.get(url);
    if range_from > 0 {
        req = req.set("Range", &format!("bytes={range_from}-"));
    }
    if let Ok(token) = std::env::var("HF_TOKEN") {
        req = req.set("Authorization", &format!("Bearer {token}"));
    }
    req.call().map_err(|e| PullError::Http {
        url: url.to_string(),
        reason: match e {
            ureq::Error::Status(401 | 403, _) => {
                "access denied (a gated repository needs HF_TOKEN with access)".into()
            }
            ureq::Error::Status(404, _) => "not found (404)".into(),
            other => other.to_string(),
        },
    })
}

/// Resolves `REPO[:QUANT]` through the hub's tree API: the `.gguf` files whose path contains
/// `QUANT` (case-insensitive; the folder or the file name), forming exactly one model (one file
/// or one complete split set).
pub fn resolve(spec: &str) -> Result<PullPlan, PullError> {
    let (repo, quant) = match spec.split_once(':') {
        Some((r, q)) => (r.to_string(), Some(q.to_string())),
        None => (spec.to_string(), None),
    };
    if repo.split('/').count() != 2 || repo.split('/').any(str::is_empty) {
        return Err(PullError::Resolve(format!(
            "`{spec}`: expected OWNER/REPO[:QUANT], e.g. unsloth/GLM-5.2-GGUF:UD-IQ2_M"
        )));
    }
    let endpoint = endpoint();
    let url = format!("{endpoint}/api/models/{repo}/tree/main?recursive=true");
    let body = get(&agent(), &url, 0)?
        .into_string()
        .map_err(|e| PullError::Http {
            url: url.clone(),
            reason: e.to_string(),
        })?;
    let entries: serde_json::Value = serde_json::from_str(&body).map_err(|e| PullError::Http {
        url: url.clone(),
        reason: format!("not a file listing: {e}"),
    })?;
    let all: Vec<RemoteFile> = entries
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["type"] == "file")
        .filter_map(|e| {
            let path = e["path"].as_str()?.to_string();
            let lower = path.to_ascii_lowercase();
            (lower.ends_with(".gguf") && !lower.contains("mmproj")).then(|| RemoteFile {
                size: e["lfs"]["size"]
                    .as_u64()
                    .or(e["size"].as_u64())
                    .unwrap_or(0),
                sha256: e["lfs"]["oid"].as_str().map(str::to_owned),
                path,
            })
        })
        .collect();
    let chosen: Vec<RemoteFile> = match &quant {
        Some(q) => {
            let q = q.to_ascii_lowercase();
            all.into_iter()
                .filter(|f| f.path.to_ascii_lowercase().contains(&q))
                .collect()
        }
        None => all,
    };
    // Group into models: a split set by its base name, else one file each.
    let mut models: Vec<(String, Vec<RemoteFile>)> = Vec::new();
    for f in chosen {
        let key = SplitName::parse(Path::new(&f.path))
            .map(|n| n.dir.join(n.base).to_string_lossy().into_owned())
            .unwrap_or_else(|| f.path.clone());
        match models.iter_mut().find(|(k, _)| *k == key) {
            Some((_, files)) => files.push(f),
            None => models.push((key, vec![f])),
        }
    }
    let names = |m: &[(String, Vec<RemoteFile>)]| {
        m.iter()
            .map(|(k, _)| k.rsplit('/').next().unwrap_or(k).to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (_, mut files) = match models.len() {
        1 => models.pop().expect("one"),
        0 => {
            return Err(PullError::Resolve(format!(
                "no GGUF model matches `{spec}` in {repo}"
            )))
        }
        _ => {
            return Err(PullError::Resolve(format!(
                "`{spec}` matches several models in {repo}: {}; name one with :QUANT",
                names(&models)
            )))
        }
    };
    files.sort_by(|a, b| a.path.cmp(&b.path));
    if let Some(n) = SplitName::parse(Path::new(&files[0].path)).map(|s| s.count) {
        if files.len() != n as usize {
            return Err(PullError::Resolve(format!(
                "{} lists {} of the {n} shards of {}",
                repo,
                files.len(),
                files[0].path
            )));
        }
    }
    Ok(PullPlan {
        endpoint,
        repo,
        files,
    })
}

/// Free bytes on the disk holding `dir` (the longest matching mount point).
pub fn available_space(dir: &Path) -> Option<u64> {
    let dir = dir.canonicalize().ok()?;
    let disks = sysinfo::Disks::new_with_refreshed_list();
    disks
        .list()
        .iter()
        .filter(|d| dir.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len())
        .map(|d| d.available_space())
}

fn part_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

fn len_of(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// How a running pull is stopped: `pause` keeps the partial files, `cancel` deletes them.
#[derive(Debug, Default)]
pub struct Stop {
    pause: AtomicBool,
    cancel: AtomicBool,
}

impl Stop {
    pub fn pause(&self) {
        self.pause.store(true, Ordering::SeqCst);
    }
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }
    fn check(&self) -> Result<(), PullError> {
        if self.cancel.load(Ordering::SeqCst) {
            Err(PullError::Cancelled)
        } else if self.pause.load(Ordering::SeqCst) {
            Err(PullError::Paused)
        } else {
            Ok(())
        }
    }
}

/// Downloads every file of `plan` into `models_dir`, resuming partial files; returns the path
/// of the model (its first file). `on_progress` is called a few times a second.
pub fn pull(
    plan: &PullPlan,
    models_dir: &Path,
    stop: &Stop,
    mut on_progress: impl FnMut(Progress),
) -> Result<PathBuf, PullError> {
    let agent = agent();
    let paths: Vec<PathBuf> = plan
        .files
        .iter()
        .map(|f| plan.local_path(models_dir, f))
        .collect();
    let have = |i: usize| {
        let p = &paths[i];
        if len_of(p) == plan.files[i].size && p.exists() {
            plan.files[i].size
        } else {
            len_of(&part_path(p)).min(plan.files[i].size)
        }
    };
    let done_before: u64 = (0..paths.len()).map(have).sum();
    let dir = paths[0].parent().expect("a file in a folder").to_path_buf();
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let needed = plan.total_bytes() - done_before;
    if let Some(available) = available_space(&dir) {
        // Keep 1 GiB for everything else.
        if needed + (1 << 30) > available {
            return Err(PullError::NoSpace {
                dir,
                needed,
                available,
            });
        }
    }
    let total = plan.total_bytes();
    let mut done = done_before;
    let mut window = (Instant::now(), done);
    let mut speed = 0.0;
    let mut last_report = Instant::now() - Duration::from_secs(1);
    let result = (|| {
        for (i, f) in plan.files.iter().enumerate() {
            let path = &paths[i];
            if len_of(path) == f.size && path.exists() {
                continue;
            }
            let part = part_path(path);
            // A few retries per file: a dropped connection resumes where it stopped.
            let mut attempts = 0;
            loop {
                stop.check()?;
                let from = len_of(&part).min(f.size);
                let r = fetch_into(&agent, &plan.url(f), &part, from, f.size, stop, |n| {
                    done += n;
                    let now = Instant::now();
                    let dt = now.duration_since(window.0).as_secs_f64();
                    if dt >= 1.0 {
                        speed = (done - window.1) as f64 / dt;
                        window = (now, done);
                    }
                    if now.duration_since(last_report) >= Duration::from_millis(200) {
                        last_report = now;
                        on_progress(Progress {
                            file: i,
                            files: plan.files.len(),
                            done_bytes: done,
                            total_bytes: total,
                            bytes_per_s: speed,
                        });
                    }
                });
                match r {
                    Ok(()) => break,
                    Err(e @ (PullError::Paused | PullError::Cancelled)) => return Err(e),
                    // A dropped connection: resume from the bytes on disk (they stay counted).
                    Err(PullError::Http { .. }) if attempts < 5 => {
                        attempts += 1;
                        backoff(attempts);
                    }
                    Err(e) => return Err(e),
                }
            }
            verify(&part, f)?;
            std::fs::rename(&part, path).map_err(io(path))?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => {}
        Err(PullError::Cancelled) => {
            for p in &paths {
                let _ = std::fs::remove_file(part_path(p));
            }
            return Err(PullError::Cancelled);
        }
        Err(e) => return Err(e),
    }
    on_progress(Progress {
        file: plan.files.len().saturating_sub(1),
        files: plan.files.len(),
        done_bytes: total,
        total_bytes: total,
        bytes_per_s: speed,
    });
    // The model must open: header valid, every shard present and consistent.
    localglm_gguf::GgufModel::open(&paths[0]).map_err(|e| PullError::Corrupt {
        file: paths[0].display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(paths[0].clone())
}

/// Back-off between retries: 0.2 s, 0.4 s, … .
fn backoff(attempt: u32) {
    std::thread::sleep(Duration::from_millis(200 * u64::from(attempt)));
}

/// Appends `url`'s bytes from `from` to `part` until it holds `size` bytes.
fn fetch_into(
    agent: &ureq::Agent,
    url: &str,
    part: &Path,
    from: u64,
    size: u64,
    stop: &Stop,
    mut on_bytes: impl FnMut(u64),
) -> Result<(), PullError> {
    if from >= size {
        return Ok(());
    }
    let resp = get(agent, url, from)?;
    // A server that ignores the range sends everything: start the file over.
    let restart = from > 0 && resp.status() != 206;
    let mut file = if restart {
        File::create(part).map_err(io(part))?
    } else {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(part)
            .map_err(io(part))?
    };
    if restart {
        on_bytes(0);
    }
    let mut reader = resp.into_reader();
    let mut buf = vec![0u8; 256 << 10];
    let mut have = if restart { 0 } else { from };
    while have < size {
        stop.check()?;
        let n = reader.read(&mut buf).map_err(|e| PullError::Http {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        if n == 0 {
            return Err(PullError::Http {
                url: url.to_string(),
                reason: format!("connection closed at byte {have} of {size}"),
            });
        }
        let n = n.min((size - have) as usize);
        file.write_all(&buf[..n]).map_err(io(part))?;
        have += n as u64;
        on_bytes(n as u64);
    }
    file.sync_all().map_err(io(part))
}

/// Size and (when published) SHA-256 of a finished part file; a bad file is deleted.
fn verify(part: &Path, f: &RemoteFile) -> Result<(), PullError> {
    let bad = |reason: String| {
        let _ = std::fs::remove_file(part);
        PullError::Corrupt {
            file: f.path.clone(),
            reason,
        }
    };
    let len = len_of(part);
    if len != f.size {
        return Err(bad(format!("{len} bytes, expected {}", f.size)));
    }
    if let Some(want) = &f.sha256 {
        let mut h = Sha256::new();
        let mut file = File::open(part).map_err(io(part))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).map_err(io(part))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        let got: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        if !got.eq_ignore_ascii_case(want) {
            return Err(bad(format!("SHA-256 {got}, the hub says {want}")));
        }
    }
    Ok(())
}
