//! Typed, versioned settings over tauri-plugin-store, with explicit migration.
//!
//! Invariant: the app always has a valid `Settings`. A missing file gives defaults; a file the
//! store cannot parse is moved aside (`settings.json.corrupt`), never silently overwritten in
//! place, and defaults are used. WORKAROUND: tauri-plugin-store writes with a plain
//! `fs::write`; settings are a few hundred bytes, and a torn file is recovered as above.

use localglm_protocol::{AppError, ErrorKind, SamplingParams, Settings};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tauri::{AppHandle, Runtime};
use tauri_plugin_store::StoreExt;

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

/// Writes settings to their store.
type Persist = Arc<dyn Fn(&Settings) -> Result<(), AppError> + Send + Sync>;

fn save_error(detail: String) -> AppError {
    AppError::new(ErrorKind::Io, "Could not save settings.").with_detail(detail)
}

/// Managed state: the current settings and where they persist.
pub struct SettingsState {
    current: Mutex<Settings>,
    persist: Persist,
}

impl SettingsState {
    /// Loads settings from the store file at `path` (absolute).
    pub fn load<R: Runtime>(app: &AppHandle<R>, path: PathBuf) -> Self {
        let store = match app.store(&path) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(
                    "settings file {} unreadable ({e}); moved aside",
                    path.display()
                );
                let _ = std::fs::rename(&path, path.with_extension("json.corrupt"));
                app.store(&path).ok()
            }
        };
        let current = migrate(store.as_ref().and_then(|s| s.get(KEY)));
        let persist: Persist = match store {
            Some(store) => Arc::new(move |s: &Settings| {
                store.set(KEY, serde_json::to_value(s).expect("settings serialize"));
                store.save().map_err(|e| save_error(e.to_string()))
            }),
            None => Arc::new(|_| Err(save_error("the settings file cannot be opened".into()))),
        };
        Self {
            current: Mutex::new(current),
            persist,
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
        let mut next = self.get();
        let out = change(&mut next)?;
        self.set(next)?;
        Ok(out)
    }

    /// Validates, stores and returns the new settings.
    pub fn set(&self, mut new: Settings) -> Result<Settings, AppError> {
        new.version = Settings::CURRENT_VERSION;
        localglm_engine::validate_sampling(&new.sampling).map_err(|e| {
            AppError::new(ErrorKind::InvalidRequest, "Sampling values out of range.")
                .with_detail(e.to_string())
        })?;
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
