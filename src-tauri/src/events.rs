//! Names of the app-wide events (rare notices). Per-generation streams use their own channel.

/// Payload: `ModelStatus`. Sent whenever the engine starts loading, is ready, or fails.
pub const MODEL_STATUS: &str = "model-status";
