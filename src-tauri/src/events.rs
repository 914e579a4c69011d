//! Names of the app-wide events (rare notices). Per-generation streams use their own channel.

/// Payload: `ModelStatus`. Sent whenever the engine starts loading, is ready, or fails.
pub const MODEL_STATUS: &str = "model-status";

/// Payload: `DownloadState`. Sent on every change of a download (progress a few times a second).
pub const DOWNLOAD: &str = "download";

/// Payload: `ApiLogEntry`. One per request the local API served.
pub const API_LOG: &str = "api-log";
