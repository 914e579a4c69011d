//! Tauri commands: convert, delegate to a crate, convert back. No logic lives here.

use localglm_chat::settings::SettingsState;
use localglm_chat::{presets, remotes, ChatService};
use localglm_models::Library;
use localglm_protocol::{
    ApiLogEntry, ApiSettings, ApiStatus, AppError, AppInfo, ConversationSummary, ConversationView,
    DownloadState, ErrorKind, FitPlan, FitRequest, GenerationEvent, GenerationHandle, MachineSpec,
    ModelInfo, ModelStatus, QuantCatalog, RemoteServer, SamplingPreset, SendRequest, Settings,
};
use std::sync::Arc;
use tauri::ipc::Channel;
use tauri::State;

type Service<'a> = State<'a, Arc<ChatService>>;

#[tauri::command]
pub fn app_info(library: State<'_, Library>) -> AppInfo {
    AppInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        data_dir: library.root().display().to_string(),
        default_model_path: library.default_model_path().display().to_string(),
    }
}

#[tauri::command]
pub fn get_settings(settings: State<'_, SettingsState>) -> Settings {
    settings.get()
}

#[tauri::command]
pub fn save_settings(
    state: State<'_, SettingsState>,
    settings: Settings,
) -> Result<Settings, AppError> {
    state.set(settings)
}

/// Built-in presets first, then the user's.
#[tauri::command]
pub fn list_presets(settings: State<'_, SettingsState>) -> Vec<SamplingPreset> {
    presets::all(&settings.get())
}

/// Creates or updates a user preset (a built-in's values are saved as a new preset).
#[tauri::command]
pub fn save_preset(
    settings: State<'_, SettingsState>,
    preset: SamplingPreset,
) -> Result<SamplingPreset, AppError> {
    settings.update(|s| presets::save(s, preset))
}

#[tauri::command]
pub fn duplicate_preset(
    settings: State<'_, SettingsState>,
    id: String,
) -> Result<SamplingPreset, AppError> {
    settings.update(|s| presets::duplicate(s, &id))
}

#[tauri::command]
pub fn delete_preset(settings: State<'_, SettingsState>, id: String) -> Result<(), AppError> {
    settings.update(|s| presets::delete(s, &id))
}

/// The user's presets as the JSON text of a presets file.
#[tauri::command]
pub fn export_presets(settings: State<'_, SettingsState>) -> String {
    presets::export(&settings.get())
}

/// Adds the presets of a presets file's JSON text; returns those added.
#[tauri::command]
pub fn import_presets(
    settings: State<'_, SettingsState>,
    json: String,
) -> Result<Vec<SamplingPreset>, AppError> {
    settings.update(|s| presets::import(s, &json))
}

#[tauri::command]
pub fn model_status(service: Service<'_>) -> ModelStatus {
    service.model_status()
}

/// Loads a model. Unless `force`, a model that does not fit this machine (planned from its
/// headers at a 32 K context) is refused with the numbers and the fixes, as `wont_fit`.
#[tauri::command]
pub async fn load_model(
    service: Service<'_>,
    library: State<'_, Library>,
    settings: State<'_, SettingsState>,
    path: Option<String>,
    force: Option<bool>,
) -> Result<ModelInfo, AppError> {
    let chosen = path.clone();
    let path = path
        .or_else(|| settings.get().model_path)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| library.default_model_path());
    let spec = load_spec(&settings.get(), path.clone());
    if !force.unwrap_or(false) {
        check_fit(&settings.get(), &path).await?;
    }
    let info = service.load_model_with(spec).await?;
    // The model loaded at the next start: this one (a server no longer).
    settings.update(|s| {
        s.active_remote = None;
        if chosen.is_some() {
            s.model_path = chosen;
        }
        Ok(())
    })?;
    Ok(info)
}

/// Checks a server (reachable, key accepted, model listed), switches to it and saves it with
/// the models; a server that cannot be used is not saved and the loaded model stays.
#[tauri::command]
pub async fn add_remote(
    service: Service<'_>,
    settings: State<'_, SettingsState>,
    server: RemoteServer,
) -> Result<ModelInfo, AppError> {
    let server = remotes::normalize(&settings.get(), server)?;
    switch_to(&service, &settings, server, true).await
}

/// Switches to a server and remembers it as the model in use (and saves it when `save`).
async fn switch_to(
    service: &ChatService,
    settings: &SettingsState,
    server: RemoteServer,
    save: bool,
) -> Result<ModelInfo, AppError> {
    let info = service.load_remote(&server).await?;
    settings.update(|s| {
        s.active_remote = Some(server.id.clone());
        if save {
            remotes::upsert(s, server);
        }
        Ok(())
    })?;
    Ok(info)
}

/// Switches to a saved server.
#[tauri::command]
pub async fn load_remote(
    service: Service<'_>,
    settings: State<'_, SettingsState>,
    id: String,
) -> Result<ModelInfo, AppError> {
    let server = remotes::find(&settings.get(), &id)?;
    switch_to(&service, &settings, server, false).await
}

/// Forgets a saved server (a conversation in progress on it goes on until the next load).
#[tauri::command]
pub fn remove_remote(settings: State<'_, SettingsState>, id: String) -> Result<(), AppError> {
    settings.update(|s| remotes::remove(s, &id))
}

/// Refuses, as `wont_fit` with the numbers and the fixes, a model that does not fit this machine
/// (planned from its headers at the settings' context and KV-cache type, 32 K by default).
/// Files the planner cannot read pass: the load then says what is wrong with them.
pub async fn check_fit(settings: &Settings, path: &std::path::Path) -> Result<(), AppError> {
    let request = FitRequest {
        kv_type: settings.kv_cache.clone().unwrap_or_else(|| "f16".into()),
        // The runtime loads the MTP block unless drafting is off: the plan counts it then.
        mtp: Some(
            load_spec(settings, path.to_path_buf()).mtp != localglm_engine::Drafting::Fixed(0),
        ),
        ..this_machine(settings.context_length.unwrap_or(32_768))
    };
    let p = path.to_path_buf();
    let plan = tauri::async_runtime::spawn_blocking(move || {
        localglm_planner::local_spec(&p)
            .ok()
            .map(|spec| localglm_planner::view::plan_spec(&spec, &request, false))
    })
    .await
    .ok()
    .flatten();
    match plan.filter(|p| p.verdict == "no_fit") {
        Some(plan) => {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let fixes: Vec<String> = plan.fixes.iter().map(|f| f.text.clone()).collect();
            Err(AppError::new(
                ErrorKind::WontFit,
                format!("{name} does not fit this machine. {}", plan.summary),
            )
            .with_detail(fixes.join(" ")))
        }
        None => Ok(()),
    }
}

/// How a model file loads: with the settings' context length and KV-cache type.
pub fn load_spec(settings: &Settings, path: std::path::PathBuf) -> localglm_engine::LoadSpec {
    localglm_engine::LoadSpec {
        context_length: settings.context_length,
        kv_cache: settings
            .kv_cache
            .as_deref()
            .and_then(localglm_engine::KvType::parse),
        device: settings
            .device
            .as_deref()
            .and_then(|d| d.parse().ok())
            .unwrap_or_default(),
        cpu_moe: settings.cpu_moe,
        prompt_cache: settings.prompt_cache_mb.map(|m| u64::from(m) << 20),
        mtp: settings
            .mtp
            .as_deref()
            .and_then(|m| m.parse().ok())
            .unwrap_or_default(),
        mistralrs: localglm_chat::settings::runtime_for(settings, &path)
            == Some(localglm_protocol::runtime::MISTRALRS),
        ..localglm_engine::LoadSpec::new(path)
    }
}

fn this_machine(context: u32) -> FitRequest {
    FitRequest {
        machine: MachineSpec {
            id: "this".into(),
            ram_gib: 0.0,
            vram_gib: None,
            unified: false,
            gpu_limit_gib: None,
        },
        context,
        kv_type: "f16".into(),
        cpu_moe: None,
        mtp: None,
        family: None,
    }
}

/// Whether the local API runs, and where.
#[tauri::command]
pub fn api_status(server: State<'_, crate::api::ApiServer>) -> ApiStatus {
    server.status()
}

/// Saves the local API settings and (re)starts or stops the server accordingly.
#[tauri::command]
pub async fn set_api<R: tauri::Runtime>(
    app: tauri::AppHandle<R>,
    server: State<'_, crate::api::ApiServer>,
    settings: State<'_, SettingsState>,
    service: Service<'_>,
    api: ApiSettings,
) -> Result<ApiStatus, AppError> {
    if api.host.trim().is_empty() {
        return Err(AppError::new(
            ErrorKind::InvalidRequest,
            "The API needs a host to listen on.",
        ));
    }
    let api = ApiSettings {
        api_key: api.api_key.filter(|k| !k.trim().is_empty()),
        ..api
    };
    let saved = api.clone();
    settings.update(move |s| {
        s.api = saved;
        Ok(())
    })?;
    Ok(server.apply(&app, service.engine().clone(), &api).await)
}

/// The requests the local API served most recently (oldest first).
#[tauri::command]
pub fn api_log(server: State<'_, crate::api::ApiServer>) -> Vec<ApiLogEntry> {
    server.log()
}

type Downloads<'a> = State<'a, Arc<localglm_models::manager::Manager>>;

/// Downloads of this session and unfinished ones of earlier sessions (paused).
#[tauri::command]
pub fn list_downloads(downloads: Downloads<'_>) -> Vec<DownloadState> {
    downloads.list()
}

/// Starts or resumes downloading `spec` (`OWNER/REPO[:QUANT]`); progress arrives as `download`
/// events.
#[tauri::command]
pub async fn start_download(
    downloads: Downloads<'_>,
    spec: String,
) -> Result<DownloadState, AppError> {
    let manager = downloads.inner().clone();
    tauri::async_runtime::spawn_blocking(move || manager.start(&spec))
        .await
        .map_err(|e| {
            AppError::new(ErrorKind::Internal, "The download failed to start.")
                .with_detail(e.to_string())
        })?
        .map_err(|e| {
            AppError::new(ErrorKind::Io, "The download could not start.").with_detail(e.to_string())
        })
}

#[tauri::command]
pub fn pause_download(downloads: Downloads<'_>, id: String) -> bool {
    downloads.pause(&id)
}

/// Stops a download and deletes its partial files.
#[tauri::command]
pub fn cancel_download(downloads: Downloads<'_>, id: String) -> bool {
    downloads.cancel(&id)
}

/// Adds a GGUF already on disk (any shard of a split set) to the library.
#[tauri::command]
pub async fn import_model(
    library: State<'_, Library>,
    path: String,
) -> Result<ModelInfo, AppError> {
    let library = library.inner().clone();
    tauri::async_runtime::spawn_blocking(move || library.import(std::path::Path::new(&path)))
        .await
        .map_err(|e| {
            AppError::new(ErrorKind::Internal, "Import failed.").with_detail(e.to_string())
        })?
        .map_err(|e| {
            AppError::new(
                ErrorKind::InvalidRequest,
                "The model could not be imported.",
            )
            .with_detail(e.to_string())
        })
}

/// Deletes a model of the library (every shard of a split set). Only files inside the models
/// folder can be deleted.
#[tauri::command]
pub fn delete_model(library: State<'_, Library>, path: String) -> Result<(), AppError> {
    library.delete(std::path::Path::new(&path)).map_err(|e| {
        AppError::new(ErrorKind::InvalidRequest, "The model could not be deleted.")
            .with_detail(e.to_string())
    })
}

/// The requested GLM-5.x release's quants with a fit badge each for the requested machine
/// (sizes from the catalog); an unknown release is `not_found`.
#[tauri::command]
pub async fn quant_catalog(request: FitRequest) -> Result<QuantCatalog, AppError> {
    tauri::async_runtime::spawn_blocking(move || localglm_planner::view::quant_catalog(&request))
        .await
        .expect("planner does not panic")
        .map_err(|e| AppError::new(ErrorKind::NotFound, e.to_string()))
}

/// One catalog quant's plan (e.g. with the expert-offload slider's placement).
#[tauri::command]
pub fn plan_quant(label: String, request: FitRequest) -> Result<FitPlan, AppError> {
    localglm_planner::view::plan_quant(&label, &request).ok_or_else(|| {
        let family = request.family.as_deref().unwrap_or("GLM-5.2");
        AppError::new(
            ErrorKind::NotFound,
            format!("No {family} quant named {label}."),
        )
    })
}

/// The exact plan of `OWNER/REPO:QUANT` on the hub (`HF_ENDPOINT`), from the headers of its
/// files fetched by range requests (a few MB of a multi-GB model).
#[tauri::command]
pub async fn plan_remote(spec: String, request: FitRequest) -> Result<FitPlan, AppError> {
    tauri::async_runtime::spawn_blocking(move || {
        let fail = |e: String| {
            AppError::new(
                ErrorKind::Io,
                "Could not read the model's headers from the hub.",
            )
            .with_detail(e)
        };
        let plan = localglm_models::download::resolve(&spec).map_err(|e| fail(e.to_string()))?;
        let url = format!(
            "{}/{}/resolve/main/{}",
            plan.endpoint, plan.repo, plan.files[0].path
        );
        let m = localglm_planner::remote::fetch(&url).map_err(|e| fail(e.to_string()))?;
        Ok(localglm_planner::view::plan_spec(&m.spec, &request, false))
    })
    .await
    .map_err(|e| {
        AppError::new(ErrorKind::Internal, "The planner failed.").with_detail(e.to_string())
    })?
}

/// The plan of a model file (any shard of a split set) from its headers.
#[tauri::command]
pub async fn plan_model(path: String, request: FitRequest) -> Result<FitPlan, AppError> {
    tauri::async_runtime::spawn_blocking(move || {
        let spec = localglm_planner::local_spec(std::path::Path::new(&path)).map_err(|e| {
            AppError::new(ErrorKind::LoadFailed, "Could not read the model's headers.")
                .with_detail(e.to_string())
        })?;
        Ok(localglm_planner::view::plan_spec(&spec, &request, false))
    })
    .await
    .map_err(|e| {
        AppError::new(ErrorKind::Internal, "The planner failed.").with_detail(e.to_string())
    })?
}

#[tauri::command]
pub async fn list_models(library: State<'_, Library>) -> Result<Vec<ModelInfo>, AppError> {
    let library = library.inner().clone();
    tokio::task::spawn_blocking(move || {
        let mut models = library.installed().map_err(|e| {
            AppError::new(ErrorKind::Io, "Could not list the models folder.")
                .with_detail(e.to_string())
        })?;
        for m in &mut models {
            m.runtimes = localglm_engine::auto::runtimes(std::path::Path::new(&m.path));
        }
        Ok(models)
    })
    .await
    .map_err(|e| {
        AppError::new(ErrorKind::Internal, "Listing the models failed.").with_detail(e.to_string())
    })?
}

#[tauri::command]
pub fn list_conversations(service: Service<'_>) -> Result<Vec<ConversationSummary>, AppError> {
    service.list()
}

#[tauri::command]
pub fn create_conversation(
    service: Service<'_>,
    title: Option<String>,
) -> Result<ConversationSummary, AppError> {
    service.create(title)
}

#[tauri::command]
pub fn get_conversation(service: Service<'_>, id: String) -> Result<ConversationView, AppError> {
    service.get(&id)
}

/// Writes a conversation to a file in the data directory's `exports/`.
#[tauri::command]
pub fn export_conversation(
    service: Service<'_>,
    library: State<'_, Library>,
    id: String,
    format: localglm_protocol::ExportFormat,
) -> Result<localglm_protocol::ExportedConversation, AppError> {
    service.export(&id, format, &library.exports_dir())
}

/// Adds the conversation of a LocalGLM JSON export; refuses a malformed one whole.
#[tauri::command]
pub fn import_conversation(
    service: Service<'_>,
    json: String,
) -> Result<ConversationSummary, AppError> {
    service.import(&json)
}

/// Every conversation's title and messages matching `query` (reasoning too when asked).
#[tauri::command]
pub fn search_conversations(
    service: Service<'_>,
    query: String,
    reasoning: bool,
) -> Result<Vec<localglm_protocol::SearchHit>, AppError> {
    service.search(&query, reasoning)
}

/// Shows another version of a message (a regenerated reply, an edited message) and the branch
/// below it.
#[tauri::command]
pub fn select_branch(
    service: Service<'_>,
    conversation_id: String,
    message_id: String,
) -> Result<ConversationView, AppError> {
    service.select_branch(&conversation_id, &message_id)
}

#[tauri::command]
pub fn rename_conversation(
    service: Service<'_>,
    id: String,
    title: String,
) -> Result<ConversationSummary, AppError> {
    service.rename(&id, &title)
}

#[tauri::command]
pub fn delete_conversation(service: Service<'_>, id: String) -> Result<(), AppError> {
    service.delete(&id)
}

#[tauri::command]
pub async fn send_message(
    service: Service<'_>,
    settings: State<'_, SettingsState>,
    request: SendRequest,
    on_event: Channel<GenerationEvent>,
) -> Result<GenerationHandle, AppError> {
    let service = service.inner().clone();
    let sink = Arc::new(move |ev: GenerationEvent| {
        // A closed window just stops listening; the reply is still saved.
        let _ = on_event.send(ev);
    });
    service.send(request, &settings.get(), sink).await
}

/// The tokens a message would take (alone and in its whole prompt) and the model's context.
#[tauri::command]
pub async fn measure_message(
    service: Service<'_>,
    settings: State<'_, SettingsState>,
    request: localglm_protocol::MeasureRequest,
) -> Result<localglm_protocol::MessageMeasure, AppError> {
    let service = service.inner().clone();
    service.measure(&request, &settings.get()).await
}

#[tauri::command]
pub fn stop_generation(service: Service<'_>, generation_id: String) -> bool {
    service.stop(&generation_id)
}

#[tauri::command]
pub fn render_markdown(text: String) -> String {
    localglm_markdown::render(&text)
}

#[cfg(test)]
mod tests {
    use localglm_chat::settings::SettingsState;
    use localglm_protocol::Settings;

    #[test]
    fn mtp_drafts_are_checked_and_reach_the_load() {
        let dir = tempfile::tempdir().unwrap();
        let state = SettingsState::load(dir.path().join("settings.json"));
        for bad in ["9", "many", ""] {
            let new = Settings {
                mtp: Some(bad.into()),
                ..Default::default()
            };
            assert!(state.set(new).is_err(), "{bad}");
        }
        for (good, want) in [
            ("auto", localglm_engine::Drafting::Auto),
            ("off", localglm_engine::Drafting::Fixed(0)),
            ("2", localglm_engine::Drafting::Fixed(2)),
        ] {
            let s = state
                .set(Settings {
                    mtp: Some(good.into()),
                    ..Default::default()
                })
                .unwrap();
            assert_eq!(super::load_spec(&s, "m.gguf".into()).mtp, want);
        }
        let none = super::load_spec(&Settings::default(), "m.gguf".into());
        assert_eq!(none.mtp, localglm_engine::Drafting::Auto);
    }

    #[test]
    fn the_dense_runtime_is_checked_and_reaches_the_load() {
        let dir = tempfile::tempdir().unwrap();
        let state = SettingsState::load(dir.path().join("settings.json"));
        let with = |r: &str| Settings {
            dense_runtime: Some(r.into()),
            ..Default::default()
        };
        assert!(state.set(with("llama.cpp")).is_err());
        let s = state.set(with("mistralrs")).unwrap();
        assert!(super::load_spec(&s, "m.gguf".into()).mistralrs);
        let s = state.set(with("localglm")).unwrap();
        assert!(!super::load_spec(&s, "m.gguf".into()).mistralrs);
        assert!(!super::load_spec(&Settings::default(), "m.gguf".into()).mistralrs);
        // A model's own choice in the library wins over the dense-model setting, for that
        // file only (by name, wherever it lies); an unknown runtime is refused.
        let mut per_model = with("localglm");
        per_model
            .model_runtimes
            .insert("m.gguf".into(), "mistralrs".into());
        let s = state.set(per_model.clone()).unwrap();
        assert!(super::load_spec(&s, "/lib/sub/m.gguf".into()).mistralrs);
        assert!(!super::load_spec(&s, "/lib/other.gguf".into()).mistralrs);
        per_model
            .model_runtimes
            .insert("m.gguf".into(), "llama.cpp".into());
        let e = state.set(per_model).unwrap_err();
        assert!(e.message.contains("llama.cpp"), "{e:?}");
    }
}
