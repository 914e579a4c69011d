//! Typed, versioned settings in one JSON file, with explicit migration: the app keeps them
//! (`SettingsState`), the CLI reads them (`peek`: the user's presets).
//!
//! Invariants: the app always has a valid `Settings`. A missing file gives defaults; a file that
//! cannot be parsed is moved aside (`settings.json.corrupt`), never silently overwritten in
//! place, and defaults are used. Every write is atomic (temp file, fsync, rename), so a process
//! killed mid-write leaves the previous settings — presets, servers, keys — intact.

use localglm_protocol::{AppError, ErrorKind, SamplingParams, Settings};
use serde_json::Value;
use std::path::Path;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

const KEY: &str = "settings";

/// Brings a stored settings value of any known version to the current one.
pub fn migrate(value: Option<Value>) -> Settings {
    let Some(Value::Object(mut obj)) = value else {
        return Settings::default();
    };
    let version = obj.get("version").and_then(Value::as_u64).unwrap_or(0);
    if version > Settings::CURRENT_VERSION as u64 {
        // Written by a newer app: use what we understand, default the rest.
        return serde_json::from_value(Value::Object(obj)).unwrap_or_default();
    }
    if version == 0 {
        // Version 0 (pre-release) kept sampling fields at the top level.
        let defaults = SamplingParams::default();
        let f = |k: &str, d: f64| obj.get(k).and_then(Value::as_f64).unwrap_or(d);
        let sampling = SamplingParams {
            temperature: f("temperature", defaults.temperature),
            top_p: f("top_p", defaults.top_p),
            top_k: None,
            max_tokens: f("max_tokens", defaults.max_tokens as f64) as u32,
            seed: None,
            ..Default::default()
        };
        obj.insert(
            "sampling".into(),
            serde_json::to_value(sampling).expect("serializes"),
        );
        obj.insert("version".into(), Value::from(Settings::CURRENT_VERSION));
    }
    let defaults = serde_json::to_value(Settings::default()).expect("serializes");
    if let Value::Object(d) = defaults {
        for (k, v) in d {
            obj.entry(k).or_insert(v);
        }
    }
    serde_json::from_value(Value::Object(obj)).unwrap_or_default()
}

/// The settings in the file at `path`, migrated, without touching the file (a missing or
/// unreadable one gives defaults): for readers such as the CLI.
pub fn peek(path: &Path) -> Settings {
    let stored = std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|mut v| v.get_mut(KEY).map(Value::take));
    // The presets on their own, should another field not be understood (a newer app's).
    let presets = stored
        .as_ref()
        .and_then(|v| v.get("presets"))
        .and_then(|p| serde_json::from_value(p.clone()).ok());
    let mut settings = migrate(stored);
    if let Some(presets) = presets.filter(|_| settings.presets.is_empty()) {
        settings.presets = presets;
    }
    settings
}

/// The runtime chosen for the model file at `path`: the library's choice for that file (by
/// name), else the one for dense models; `None` leaves the engine's default.
pub fn runtime_for<'a>(settings: &'a Settings, path: &Path) -> Option<&'a str> {
    path.file_name()
        .and_then(|name| settings.model_runtimes.get(name.to_string_lossy().as_ref()))
        .or(settings.dense_runtime.as_ref())
        .map(String::as_str)
}

/// The stored settings value, if the file holds one; a file that is not JSON is moved aside.
fn read_settings(path: &Path) -> Option<Value> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!("settings file {} unreadable ({e})", path.display());
            return None;
        }
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(mut v) => v.get_mut(KEY).map(Value::take),
        Err(e) => {
            tracing::warn!(
                "settings file {} is not JSON ({e}); moved aside",
                path.display()
            );
            let _ = std::fs::rename(path, path.with_extension("json.corrupt"));
            None
        }
    }
}

/// Writes settings to their file.
type Persist = Arc<dyn Fn(&Settings) -> Result<(), AppError> + Send + Sync>;

fn save_error(detail: String) -> AppError {
    AppError::new(ErrorKind::Io, "Could not save settings.").with_detail(detail)
}

/// Managed state: the current settings and where they persist.
pub struct SettingsState {
    current: Mutex<Settings>,
    persist: Persist,
    /// Held across a read-change-write, so concurrent changes never overwrite each other and
    /// the file and memory agree.
    writing: Mutex<()>,
}

impl SettingsState {
    /// Loads settings from the file at `path` (`{"settings": {...}}`, the layout earlier
    /// versions wrote through tauri-plugin-store); every change is written atomically.
    pub fn load(path: PathBuf) -> Self {
        let current = migrate(read_settings(&path));
        let persist: Persist = Arc::new(move |s: &Settings| {
            let body = serde_json::to_vec_pretty(&serde_json::json!({ KEY: s }))
                .map_err(|e| save_error(e.to_string()))?;
            localglm_conversations::write_atomic(&path, &body)
                .map_err(|e| save_error(format!("{}: {e}", path.display())))
        });
        Self {
            current: Mutex::new(current),
            persist,
            writing: Mutex::new(()),
        }
    }

    pub fn get(&self) -> Settings {
        self.current.lock().expect("settings lock").clone()
    }

    /// Applies `change` to a copy of the settings and stores the result if it succeeds (so a
    /// failed change leaves the settings as they were).
    pub fn update<T>(
        &self,
        change: impl FnOnce(&mut Settings) -> Result<T, AppError>,
    ) -> Result<T, AppError> {
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = self.get();
        let out = change(&mut next)?;
        self.store(next)?;
        Ok(out)
    }

    /// Validates, stores and returns the new settings.
    pub fn set(&self, new: Settings) -> Result<Settings, AppError> {
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        self.store(new)
    }

    fn store(&self, mut new: Settings) -> Result<Settings, AppError> {
        new.version = Settings::CURRENT_VERSION;
        localglm_engine::validate_sampling(&new.sampling).map_err(|e| {
            AppError::new(ErrorKind::InvalidRequest, "Sampling values out of range.")
                .with_detail(e.to_string())
        })?;
        if let Some(kv) = new.kv_cache.as_deref() {
            if localglm_engine::KvType::parse(kv).is_none() {
                return Err(AppError::new(
                    ErrorKind::InvalidRequest,
                    format!("Unknown KV-cache type `{kv}` (f16, q8_0, bf16 or f32)."),
                ));
            }
        }
        if let Some(d) = new.device.as_deref() {
            if d.parse::<localglm_engine::DeviceChoice>().is_err() {
                return Err(AppError::new(
                    ErrorKind::InvalidRequest,
                    format!("Unknown device `{d}` (auto, gpu or cpu)."),
                ));
            }
        }
        if let Some(m) = new.mtp.as_deref() {
            if let Err(e) = m.parse::<localglm_engine::Drafting>() {
                return Err(AppError::new(ErrorKind::InvalidRequest, format!("{e}.")));
            }
        }
        let chosen = new.model_runtimes.values().map(String::as_str);
        if let Some(r) = new
            .dense_runtime
            .as_deref()
            .into_iter()
            .chain(chosen)
            .find(|r| !localglm_protocol::runtime::known(r))
        {
            return Err(AppError::new(
                ErrorKind::InvalidRequest,
                format!("Unknown runtime `{r}` (localglm or mistralrs)."),
            ));
        }
        if new.prompt_cache_mb.is_some_and(|m| m > 1 << 20) {
            return Err(AppError::new(
                ErrorKind::InvalidRequest,
                "The prompt cache must be at most 1,048,576 MiB.",
            ));
        }
        if new.cpu_moe.is_some_and(|n| n > 1024) {
            return Err(AppError::new(
                ErrorKind::InvalidRequest,
                "The number of MoE layers with experts in RAM must be at most 1024.",
            ));
        }
        if new
            .context_length
            .is_some_and(|c| !(256..=1 << 20).contains(&c))
        {
            return Err(AppError::new(
                ErrorKind::InvalidRequest,
                "The context length must be between 256 and 1,048,576 tokens.",
            ));
        }
        (self.persist)(&new)?;
        *self.current.lock().expect("settings lock") = new.clone();
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn peeking_reads_without_touching_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        assert_eq!(peek(&path), Settings::default());
        let state = SettingsState::load(path.clone());
        state
            .update(|s| {
                s.system_prompt = "be brief".into();
                Ok(())
            })
            .unwrap();
        assert_eq!(peek(&path).system_prompt, "be brief");
        std::fs::write(&path, b"{ torn").unwrap();
        assert_eq!(peek(&path), Settings::default());
        assert_eq!(std::fs::read(&path).unwrap(), b"{ torn", "left as it was");
        // A field this version does not understand costs the presets nothing.
        let preset = localglm_protocol::builtin_preset("general").unwrap();
        std::fs::write(
            &path,
            serde_json::to_vec(&json!({ "settings": {
                "version": 1, "device": 42, "presets": [preset.clone()]
            } }))
            .unwrap(),
        )
        .unwrap();
        assert_eq!(peek(&path).presets, vec![preset]);
    }

    #[test]
    fn saved_atomically_and_a_torn_or_foreign_file_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        let state = SettingsState::load(path.clone());
        assert_eq!(state.get(), Settings::default());
        state
            .update(|s| {
                s.system_prompt = "be brief".into();
                Ok(())
            })
            .unwrap();
        let saved = state.get();
        // Read back by a new process; no temp file left behind.
        assert_eq!(SettingsState::load(path.clone()).get(), saved);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["settings.json"]);
        // Keys live here: the owner alone may read the file.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A write killed half-way leaves only a temp file: the settings are as they were.
        std::fs::write(
            dir.path().join(".settings.json.1.x.tmp"),
            b"{\"settings\": {\"sys",
        )
        .unwrap();
        assert_eq!(SettingsState::load(path.clone()).get(), saved);
        // A torn settings file (written by something else) is moved aside, not overwritten.
        std::fs::write(&path, b"{\"settings\": {\"version\": 1, \"sam").unwrap();
        assert_eq!(SettingsState::load(path.clone()).get(), Settings::default());
        assert!(path.with_extension("json.corrupt").exists());
    }

    #[test]
    fn missing_or_garbage_gives_defaults() {
        assert_eq!(migrate(None), Settings::default());
        assert_eq!(migrate(Some(json!("nonsense"))), Settings::default());
    }

    #[test]
    fn version_0_is_migrated() {
        let s = migrate(Some(
            json!({"temperature": 0.3, "top_p": 0.5, "system_prompt": "be brief"}),
        ));
        assert_eq!(s.version, Settings::CURRENT_VERSION);
        assert_eq!(s.sampling.temperature, 0.3);
        assert_eq!(s.sampling.top_p, 0.5);
        assert_eq!(s.system_prompt, "be brief");
    }

    #[test]
    fn current_version_round_trips_and_fills_new_fields() {
        let s = Settings {
            system_prompt: "x".into(),
            ..Default::default()
        };
        let mut v = serde_json::to_value(&s).unwrap();
        v.as_object_mut().unwrap().remove("model_path");
        assert_eq!(migrate(Some(v)), s);
    }
}
