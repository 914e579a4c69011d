//! The LocalGLM desktop shell: wiring only. Commands live in `commands`, settings in
//! `settings`, app-wide event names in `events`; everything else is in the crates.

use localglm_chat::ChatService;
use localglm_conversations::ConversationStore;
use localglm_engine::Engine;
use localglm_models::Library;
use std::sync::Arc;
use tauri::{Emitter, Manager, Runtime};

pub mod api;
pub mod commands;
pub mod events;
/// Settings live in `localglm-chat`, which the CLI reads them through too.
pub use localglm_chat::settings;

pub use localglm_engine::{engine_from_env, ENGINE_ENV};

/// Adds LocalGLM's plugins, state and commands to a builder (generic so tests can use the
/// mock runtime). On start the configured model (or the default one) loads in the background.
pub fn build<R: Runtime>(
    builder: tauri::Builder<R>,
    library: Library,
    engine: Arc<dyn Engine>,
) -> tauri::Builder<R> {
    builder
        .plugin(state_plugin(library, engine))
        .invoke_handler(tauri::generate_handler![
            commands::app_info,
            commands::get_settings,
            commands::save_settings,
            commands::quant_catalog,
            commands::api_status,
            commands::set_api,
            commands::api_log,
            commands::list_downloads,
            commands::start_download,
            commands::pause_download,
            commands::cancel_download,
            commands::delete_model,
            commands::import_model,
            commands::plan_remote,
            commands::plan_quant,
            commands::plan_model,
            commands::list_presets,
            commands::save_preset,
            commands::duplicate_preset,
            commands::delete_preset,
            commands::export_presets,
            commands::import_presets,
            commands::model_status,
            commands::load_model,
            commands::add_remote,
            commands::load_remote,
            commands::remove_remote,
            commands::list_models,
            commands::list_conversations,
            commands::create_conversation,
            commands::get_conversation,
            commands::select_branch,
            commands::search_conversations,
            commands::export_conversation,
            commands::import_conversation,
            commands::measure_message,
            commands::rename_conversation,
            commands::delete_conversation,
            commands::send_message,
            commands::stop_generation,
            commands::render_markdown,
        ])
}

/// Creates the managed state when the app is built (plugins initialise in `Builder::build`,
/// before the event loop, so the mock runtime of the IPC tests gets the same state).
fn state_plugin<R: Runtime>(
    library: Library,
    engine: Arc<dyn Engine>,
) -> tauri::plugin::TauriPlugin<R> {
    // One queue for the app's chats and the local API: generations take turns.
    let engine: Arc<dyn Engine> = Arc::new(localglm_engine::queue::Queued::new(engine));
    tauri::plugin::Builder::new("localglm")
        .setup(move |app, _api| {
            let store = ConversationStore::open(library.conversations_dir())?;
            let service = Arc::new(ChatService::new(engine.clone(), store));
            let handle = app.clone();
            service.on_status(Arc::new(move |status| {
                let _ = handle.emit(events::MODEL_STATUS, status);
            }));
            let handle = app.clone();
            service.on_conversation(Arc::new(move |summary| {
                let _ = handle.emit(events::CONVERSATION, summary);
            }));
            let settings = settings::SettingsState::load(library.settings_path());
            let model_path = settings
                .get()
                .model_path
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| library.default_model_path());
            let api_settings = settings.get().api;
            let start_settings = settings.get();
            let load_spec = commands::load_spec(&start_settings, model_path);
            let active_remote = settings
                .get()
                .active_remote
                .and_then(|id| localglm_chat::remotes::find(&settings.get(), &id).ok());
            app.manage(settings);
            app.manage(api::ApiServer::default());
            if api_settings.enabled {
                let (handle, engine) = (app.clone(), engine.clone());
                tauri::async_runtime::spawn(async move {
                    let server = handle.state::<api::ApiServer>();
                    server.apply(&handle, engine, &api_settings).await;
                });
            }
            let emitter = app.clone();
            app.manage(localglm_models::manager::Manager::new(
                library.models_dir(),
                Box::new(move |s| {
                    let _ = emitter.emit(events::DOWNLOAD, s);
                }),
            ));
            app.manage(library.clone());
            app.manage(service.clone());
            if std::env::var_os("LOCALGLM_NO_AUTOLOAD").is_none() {
                tauri::async_runtime::spawn(async move {
                    // The outcome is reported through the model-status event.
                    let _ = match active_remote {
                        Some(server) => service.load_remote(&server).await,
                        // The same fit check as a chosen load: a model that no longer fits
                        // (settings or memory changed) is not loaded behind the user's back.
                        None => match commands::check_fit(&start_settings, &load_spec.path).await {
                            Ok(()) => service.load_model_with(load_spec).await,
                            Err(error) => Err(service.refuse(&load_spec.path, error)),
                        },
                    };
                });
            }
            Ok(())
        })
        .build()
}

/// Runs the desktop app.
pub fn run() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,mistralrs_core=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let library = Library::from_env();
    build(tauri::Builder::default(), library, engine_from_env())
        .run(tauri::generate_context!())
        .expect("error while running LocalGLM");
}

/// The chat service managed by the app.
pub fn service<R: Runtime>(app: &tauri::AppHandle<R>) -> Arc<ChatService> {
    app.state::<Arc<ChatService>>().inner().clone()
}
