//! Regenerates the TypeScript bindings and fails when `ui/src/lib/bindings` differs.
//! Run with `UPDATE_BINDINGS=1` to rewrite the committed files.

use localglm_protocol::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use ts_rs::{Config, TS};

fn export_into(dir: &Path) {
    let cfg = Config::new().with_out_dir(dir).with_large_int("number");
    macro_rules! export {
        ($($t:ty),* $(,)?) => { $( <$t as TS>::export_all(&cfg).expect(stringify!($t)); )* };
    }
    export!(
        Role,
        SamplingParams,
        SamplingPreset,
        FinishReason,
        GenerationStats,
        Message,
        Conversation,
        ConversationSummary,
        MessageView,
        ConversationView,
        SendAction,
        SendRequest,
        GenerationHandle,
        GenerationEvent,
        ErrorKind,
        AppError,
        ModelInfo,
        ModelStatus,
        Settings,
        AppInfo,
        FitPlan,
        FitRequest,
        MachineSpec,
        QuantRow,
        QuantCatalog,
        DownloadState,
        ApiSettings,
        ApiStatus,
        ApiLogEntry,
        RemoteServer,
        SearchHit,
        ExportFormat,
        ExportedConversation,
        MeasureRequest,
        MessageMeasure,
    );
}

fn read_dir(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".ts") {
                out.insert(name, std::fs::read_to_string(e.path()).unwrap());
            }
        }
    }
    out
}

#[test]
fn bindings_are_current() {
    let committed: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "..",
        "ui",
        "src",
        "lib",
        "bindings",
    ]
    .iter()
    .collect();
    let fresh = std::env::temp_dir().join(format!("localglm-bindings-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&fresh);
    export_into(&fresh);
    let generated = read_dir(&fresh);
    assert!(generated.len() >= 19, "expected every type exported");

    if std::env::var_os("UPDATE_BINDINGS").is_some() {
        let _ = std::fs::remove_dir_all(&committed);
        std::fs::create_dir_all(&committed).unwrap();
        for (name, text) in &generated {
            std::fs::write(committed.join(name), text).unwrap();
        }
    }
    let on_disk = read_dir(&committed);
    let _ = std::fs::remove_dir_all(&fresh);
    assert_eq!(
        on_disk.keys().collect::<Vec<_>>(),
        generated.keys().collect::<Vec<_>>(),
        "binding files differ; run `UPDATE_BINDINGS=1 cargo test -p localglm-protocol`"
    );
    for (name, text) in &generated {
        assert_eq!(
            &on_disk[name], text,
            "{name} is stale; run `UPDATE_BINDINGS=1 cargo test -p localglm-protocol`"
        );
    }
}
