//! Sampling presets: the built-in GLM-5.x ones plus the user's own (stored in [`Settings`]),
//! edited here so the desktop shell, the CLI and the API share one set of rules.
//!
//! Invariants: built-in presets cannot be changed, renamed or deleted (edits are saved as a new
//! user preset); every stored preset has a unique id and a valid name and sampling values;
//! import never replaces a preset, it adds (renaming on a name clash).

use localglm_protocol::{builtin_presets, AppError, ErrorKind, SamplingPreset, SentWith, Settings};
use serde::{Deserialize, Serialize};

/// The `format` tag of an exported presets file.
pub const EXPORT_FORMAT: &str = "localglm-presets";

/// An exported presets file.
#[derive(Debug, Serialize, Deserialize)]
struct ExportFile {
    format: String,
    version: u32,
    presets: Vec<SamplingPreset>,
}

fn invalid(message: &str) -> AppError {
    AppError::new(ErrorKind::InvalidRequest, message)
}

/// Built-in presets first, then the user's, in their stored order.
pub fn all(settings: &Settings) -> Vec<SamplingPreset> {
    let mut out = builtin_presets();
    out.extend(settings.presets.iter().cloned());
    out
}

/// A preset by id (built-in or user).
pub fn find(settings: &Settings, id: &str) -> Option<SamplingPreset> {
    all(settings).into_iter().find(|p| p.id == id)
}

/// Checks a preset's name and values.
pub fn validate(p: &SamplingPreset) -> Result<(), AppError> {
    let name = p.name.trim();
    if name.is_empty() {
        return Err(invalid("A preset needs a name."));
    }
    if name.chars().count() > 80 {
        return Err(invalid("Preset names are at most 80 characters."));
    }
    localglm_engine::validate_sampling(&p.sampling).map_err(|e| {
        invalid(&format!("Preset \"{name}\" has values out of range.")).with_detail(e.to_string())
    })
}

/// A fresh id derived from `name`, unique among `settings`' presets.
fn new_id(settings: &Settings, name: &str) -> String {
    let slug: String = name
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let base = format!("user-{}", if slug.is_empty() { "preset" } else { &slug });
    let taken = |id: &str| all(settings).iter().any(|p| p.id == id);
    if !taken(&base) {
        return base;
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|id| !taken(id))
        .expect("unbounded")
}

/// `name`, or `name (2)`, `name (3)`, … — the first no other preset (but `except`) has.
fn unique_name(settings: &Settings, name: &str, except: Option<&str>) -> String {
    let taken = |n: &str| {
        all(settings)
            .iter()
            .any(|p| Some(p.id.as_str()) != except && p.name.eq_ignore_ascii_case(n))
    };
    let name = name.trim();
    if !taken(name) {
        return name.to_string();
    }
    (2..)
        .map(|n| format!("{name} ({n})"))
        .find(|n| !taken(n))
        .expect("unbounded")
}

/// Creates (empty or unknown id, or a built-in's id) or updates a user preset; returns the
/// stored preset. Names stay unique.
pub fn save(
    settings: &mut Settings,
    mut preset: SamplingPreset,
) -> Result<SamplingPreset, AppError> {
    validate(&preset)?;
    let existing = settings.presets.iter().position(|p| p.id == preset.id);
    match existing {
        Some(i) => {
            preset.name = unique_name(settings, &preset.name, Some(&preset.id));
            settings.presets[i] = preset.clone();
        }
        None => {
            preset.name = unique_name(settings, &preset.name, None);
            preset.id = new_id(settings, &preset.name);
            settings.presets.push(preset.clone());
        }
    }
    Ok(preset)
}

/// Copies any preset (built-in or user) as a new user preset named "… copy".
pub fn duplicate(settings: &mut Settings, id: &str) -> Result<SamplingPreset, AppError> {
    let mut copy = find(settings, id)
        .ok_or_else(|| AppError::new(ErrorKind::NotFound, "That preset no longer exists."))?;
    copy.name = format!("{} copy", copy.name);
    copy.id = String::new();
    save(settings, copy)
}

/// Deletes a user preset; the default preset falls back to General when it was this one.
pub fn delete(settings: &mut Settings, id: &str) -> Result<(), AppError> {
    if builtin_presets().iter().any(|p| p.id == id) {
        return Err(invalid("Built-in presets cannot be deleted."));
    }
    let before = settings.presets.len();
    settings.presets.retain(|p| p.id != id);
    if settings.presets.len() == before {
        return Err(AppError::new(
            ErrorKind::NotFound,
            "That preset no longer exists.",
        ));
    }
    if settings.default_preset == id {
        settings.default_preset = "general".into();
    }
    Ok(())
}

/// The user's presets as a JSON file (pretty-printed).
pub fn export(settings: &Settings) -> String {
    serde_json::to_string_pretty(&ExportFile {
        format: EXPORT_FORMAT.into(),
        version: 1,
        presets: settings.presets.clone(),
    })
    .expect("presets serialize")
}

/// Adds the presets of an exported file (or a bare array of presets, or one preset). Nothing is
/// added unless every preset in the file is valid. Returns the presets as stored.
pub fn import(settings: &mut Settings, json: &str) -> Result<Vec<SamplingPreset>, AppError> {
    let bad = |detail: String| invalid("That is not a LocalGLM presets file.").with_detail(detail);
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| bad(format!("not JSON: {e}")))?;
    let list = match &value {
        serde_json::Value::Object(o) if o.contains_key("presets") => {
            if o.get("format").and_then(|f| f.as_str()) != Some(EXPORT_FORMAT) {
                return Err(bad(format!("\"format\" is not \"{EXPORT_FORMAT}\"")));
            }
            o["presets"].clone()
        }
        serde_json::Value::Object(_) => serde_json::Value::Array(vec![value.clone()]),
        other => other.clone(),
    };
    let presets: Vec<SamplingPreset> =
        serde_json::from_value(list).map_err(|e| bad(e.to_string()))?;
    if presets.is_empty() {
        return Err(invalid("The file holds no presets."));
    }
    for p in &presets {
        validate(p)?;
    }
    let mut next = settings.clone();
    let mut added = Vec::new();
    for mut p in presets {
        p.id = String::new();
        added.push(save(&mut next, p)?);
    }
    *settings = next;
    Ok(added)
}

/// What a message is sent with: the chosen preset (or the saved settings), per-message overrides
/// on top, thinking switches only where the model's template reads them, and the maximum
/// output capped to the model's context.
pub fn resolve(
    settings: &Settings,
    request: &localglm_protocol::SendRequest,
    model: &localglm_protocol::ModelInfo,
) -> Result<(SentWith, String), AppError> {
    let preset = match &request.preset_id {
        Some(id) => Some(find(settings, id).ok_or_else(|| {
            AppError::new(
                ErrorKind::NotFound,
                format!("The preset \"{id}\" no longer exists."),
            )
        })?),
        None => None,
    };
    let mut sampling = request
        .sampling
        .clone()
        .or_else(|| preset.as_ref().map(|p| p.sampling.clone()))
        .unwrap_or_else(|| settings.sampling.clone());
    if let Some(ctx) = model.context_length.filter(|&c| c > 0) {
        sampling.max_tokens = sampling.max_tokens.min(ctx);
    }
    let enable_thinking = model
        .supports_thinking
        .then(|| {
            request
                .enable_thinking
                .or(preset.as_ref().map(|p| p.enable_thinking))
        })
        .flatten();
    let reasoning_effort = if enable_thinking == Some(false) {
        None
    } else {
        request
            .reasoning_effort
            .clone()
            .or_else(|| preset.as_ref().and_then(|p| p.reasoning_effort.clone()))
            .filter(|e| {
                model
                    .effort_levels
                    .iter()
                    .any(|l| l.eq_ignore_ascii_case(e))
            })
    };
    let system_prompt = preset
        .as_ref()
        .and_then(|p| p.system_prompt.clone())
        .unwrap_or_else(|| settings.system_prompt.clone());
    Ok((
        SentWith {
            preset_id: preset.as_ref().map(|p| p.id.clone()),
            preset_name: preset.map(|p| p.name),
            sampling,
            enable_thinking,
            reasoning_effort,
        },
        system_prompt,
    ))
}
