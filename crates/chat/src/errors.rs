//! Maps each crate's error enum onto the one IPC error shape, `AppError { kind, message, detail }`.

use localglm_conversations::ConversationError;
use localglm_engine::EngineError;
use localglm_protocol::{AppError, ErrorKind};

/// The user-facing form of an engine error.
pub fn engine_error(e: &EngineError) -> AppError {
    match e {
        EngineError::ModelMissing(p) => AppError::new(
            ErrorKind::ModelMissing,
            "The model file is missing. Run the setup command from the README to install the default model, or choose another file.",
        )
        .with_detail(p.display().to_string()),
        EngineError::LoadFailed { path, reason } => AppError::new(
            ErrorKind::LoadFailed,
            format!(
                "Could not load {}.",
                path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
            ),
        )
        .with_detail(format!("{}: {reason}", path.display())),
        EngineError::NoModel => AppError::new(ErrorKind::NoModel, "No model is loaded yet."),
        EngineError::InvalidRequest(m) => AppError::new(ErrorKind::InvalidRequest, m.clone()),
        EngineError::Generation(m) => {
            AppError::new(ErrorKind::Generation, "The model failed while answering.").with_detail(m.clone())
        }
    }
}

/// The user-facing form of a persistence error.
pub fn conversation_error(e: &ConversationError) -> AppError {
    let kind = match e {
        ConversationError::NotFound(_) | ConversationError::MessageNotFound(_) => {
            ErrorKind::NotFound
        }
        ConversationError::InvalidId(_) | ConversationError::NotAnExport(_) => {
            ErrorKind::InvalidRequest
        }
        ConversationError::Corrupt { .. }
        | ConversationError::TooNew { .. }
        | ConversationError::Io { .. } => ErrorKind::Io,
    };
    let message = match e {
        ConversationError::NotFound(_) => "That conversation no longer exists.".to_string(),
        ConversationError::Corrupt { .. } => {
            "This conversation's file is damaged; it was left untouched on disk.".to_string()
        }
        ConversationError::TooNew { .. } => {
            "This conversation was saved by a newer LocalGLM; update the app to open it."
                .to_string()
        }
        ConversationError::NotAnExport(_) => {
            "That is not a LocalGLM conversation file; nothing was imported.".to_string()
        }
        other => other.to_string(),
    };
    AppError::new(kind, message).with_detail(e.to_string())
}
