//! Downloads against a real local HTTP server in the hub's URL layout (tree API + resolve
//! URLs): complete pull, resume after dropped connections, a corrupted shard, cancel, pause and
//! resume after a "restart", ambiguous names and missing space.

use localglm_gguf::writer::GgufWriter;
use localglm_gguf::Value;
use localglm_models::download::{self, PullError, Stop};
use localglm_models::Library;
use localglm_quants::GgmlType;
use localglm_testkit::{Faults, FileServer};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tempfile::TempDir;

/// `HF_ENDPOINT` is process-wide: tests that set it run one at a time.
static ENV: Mutex<()> = Mutex::new(());

const SHARD_MIB: usize = 4;

struct Hub {
    root: PathBuf,
    server: FileServer,
    total: u64,
    /// Removes `root` when the hub goes (after the server, dropped before it), passed or
    /// failed (every run of these tests left ~100 MB of hub files and libraries behind).
    _files: TempDir,
}

fn sha(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `acme/tiny-GGUF` with a 3-shard `Q8/` model and a single-file `F32/` one.
fn hub(tag: &str, faults: Faults) -> Hub {
    let dir = scratch(tag);
    let root = dir.path().to_path_buf();
    let files = root.join("acme/tiny-GGUF/resolve/main");
    let mut listing = Vec::new();
    let mut total = 0;
    for shard in 0..3u16 {
        let mut w = GgufWriter::new();
        if shard == 0 {
            w.kv("general.architecture", Value::String("llama".into()))
                .kv("llama.block_count", Value::U32(3))
                .kv("llama.context_length", Value::U32(4096));
        }
        w.kv("split.no", Value::U16(shard))
            .kv("split.count", Value::U16(3))
            .kv("split.tensors.count", Value::I32(3));
        let n = SHARD_MIB << 20;
        let data: Vec<u8> = (0..n).map(|i| (i * 7 + shard as usize) as u8).collect();
        w.tensor(
            &format!("blk.{shard}.w.weight"),
            &[256, (n / 1024) as u64],
            GgmlType::F32,
            data,
        )
        .unwrap();
        let rel = format!("Q8/tiny-Q8-{:05}-of-00003.gguf", shard + 1);
        let path = files.join(&rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        w.write(&path).unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        total += size;
        listing.push(serde_json::json!({
            "type": "file", "path": rel, "size": size,
            "lfs": { "oid": sha(&path), "size": size, "pointerSize": 134 }
        }));
    }
    let mut w = GgufWriter::new();
    w.kv("general.architecture", Value::String("llama".into()));
    w.tensor("w.weight", &[32], GgmlType::F32, vec![0; 128])
        .unwrap();
    let single = files.join("F32/tiny-F32.gguf");
    std::fs::create_dir_all(single.parent().unwrap()).unwrap();
    w.write(&single).unwrap();
    listing.push(serde_json::json!({ "type": "directory", "path": "Q8" }));
    listing.push(
        serde_json::json!({ "type": "file", "path": "F32/tiny-F32.gguf",
        "size": std::fs::metadata(&single).unwrap().len() }),
    );
    listing.push(serde_json::json!({ "type": "file", "path": "README.md", "size": 10 }));
    let api = root.join("api/models/acme/tiny-GGUF/tree");
    std::fs::create_dir_all(&api).unwrap();
    std::fs::write(api.join("main"), serde_json::to_string(&listing).unwrap()).unwrap();
    let server = FileServer::start_with(root.clone(), faults);
    Hub {
        root,
        server,
        total,
        _files: dir,
    }
}

/// A fresh directory in the temp directory, removed with the guard.
fn scratch(tag: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("localglm-dl-{tag}-"))
        .tempdir()
        .unwrap()
}

/// A library in a scratch directory, and the guard that removes it.
fn library(tag: &str) -> (Library, TempDir) {
    let dir = scratch(&format!("lib-{tag}"));
    std::fs::create_dir_all(dir.path().join("models")).unwrap();
    (Library::new(dir.path().to_path_buf()), dir)
}

fn parts(lib: &Library) -> Vec<PathBuf> {
    let dir = lib.models_dir().join("acme__tiny-GGUF/Q8");
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with(".part"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn pulls_a_split_model_and_resumes_after_dropped_connections() {
    let _env = ENV.lock().unwrap();
    // The first two responses are cut after 1 MiB.
    let hub = hub(
        "drops",
        Faults {
            drop_after: 1 << 20,
            drops: 2,
            bytes_per_s: None,
        },
    );
    std::env::set_var("HF_ENDPOINT", &hub.server.url);
    let plan = download::resolve("acme/tiny-GGUF:q8").unwrap();
    assert_eq!(plan.files.len(), 3);
    assert_eq!(plan.total_bytes(), hub.total);
    let (lib, _scratch) = library("drops");
    let mut last = None;
    let model = download::pull(&plan, &lib.models_dir(), &Stop::default(), |p| {
        last = Some(p)
    })
    .unwrap();
    assert!(model.ends_with("acme__tiny-GGUF/Q8/tiny-Q8-00001-of-00003.gguf"));
    assert_eq!(hub.server.drops_left(), 0, "both drops happened");
    let last = last.unwrap();
    assert_eq!((last.done_bytes, last.total_bytes), (hub.total, hub.total));
    // Resumed, not restarted: barely more than the files crossed the wire.
    assert!(
        hub.server.bytes_served() < hub.total + (4 << 20),
        "{}",
        hub.server.bytes_served()
    );
    let installed = lib.installed().unwrap();
    assert_eq!(installed.len(), 1, "{installed:?}");
    assert_eq!(installed[0].size_bytes as u64, hub.total);
    assert!(parts(&lib).is_empty());
    // Pulling again is a no-op.
    let before = hub.server.bytes_served();
    download::pull(&plan, &lib.models_dir(), &Stop::default(), |_| {}).unwrap();
    assert_eq!(hub.server.bytes_served(), before);
}

#[test]
fn a_corrupted_shard_is_detected_and_never_listed() {
    let _env = ENV.lock().unwrap();
    let hub = hub("corrupt", Faults::default());
    std::env::set_var("HF_ENDPOINT", &hub.server.url);
    let plan = download::resolve("acme/tiny-GGUF:Q8").unwrap();
    // The server's second shard changes after the hub computed its checksum.
    let shard2 = hub
        .root
        .join("acme/tiny-GGUF/resolve/main/Q8/tiny-Q8-00002-of-00003.gguf");
    let mut bytes = std::fs::read(&shard2).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&shard2, bytes).unwrap();
    let (lib, _scratch) = library("corrupt");
    let e = download::pull(&plan, &lib.models_dir(), &Stop::default(), |_| {}).unwrap_err();
    assert!(matches!(e, PullError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("tiny-Q8-00002-of-00003.gguf"), "{e}");
    assert!(e.to_string().contains("SHA-256"), "{e}");
    assert!(
        lib.installed().unwrap().is_empty(),
        "a set with a bad shard is no model"
    );
    assert!(parts(&lib).is_empty(), "the bad file is deleted");
}

#[test]
fn cancel_deletes_partial_files_and_pause_resumes_after_a_restart() {
    let _env = ENV.lock().unwrap();
    // Slow enough (8 MiB/s) to stop in the middle.
    let hub = hub(
        "stop",
        Faults {
            bytes_per_s: Some(8 << 20),
            ..Faults::default()
        },
    );
    std::env::set_var("HF_ENDPOINT", &hub.server.url);
    let plan = download::resolve("acme/tiny-GGUF:Q8").unwrap();
    let (lib, _scratch) = library("stop");

    let stop = Stop::default();
    let e = download::pull(&plan, &lib.models_dir(), &stop, |p| {
        if p.done_bytes > 2 << 20 {
            stop.cancel();
        }
    })
    .unwrap_err();
    assert!(matches!(e, PullError::Cancelled), "{e}");
    assert!(parts(&lib).is_empty(), "{:?}", parts(&lib));
    assert!(lib.installed().unwrap().is_empty());

    let stop = Stop::default();
    let e = download::pull(&plan, &lib.models_dir(), &stop, |p| {
        if p.done_bytes > 6 << 20 {
            stop.pause();
        }
    })
    .unwrap_err();
    assert!(matches!(e, PullError::Paused), "{e}");
    assert!(
        lib.installed().unwrap().is_empty(),
        "a paused pull is no model yet"
    );
    // "After a restart": a new pull of the same model continues from the bytes on disk.
    let before = hub.server.bytes_served();
    download::pull(&plan, &lib.models_dir(), &Stop::default(), |_| {}).unwrap();
    let second = hub.server.bytes_served() - before;
    assert!(second < hub.total - (5 << 20), "{second} of {}", hub.total);
    assert_eq!(lib.installed().unwrap().len(), 1);
}

#[test]
fn names_must_pick_one_model_and_space_is_checked_first() {
    let _env = ENV.lock().unwrap();
    let hub = hub("names", Faults::default());
    std::env::set_var("HF_ENDPOINT", &hub.server.url);
    let e = download::resolve("acme/tiny-GGUF").unwrap_err().to_string();
    assert!(
        e.contains("several models") && e.contains("tiny-Q8") && e.contains("tiny-F32"),
        "{e}"
    );
    let e = download::resolve("acme/tiny-GGUF:Q2_K")
        .unwrap_err()
        .to_string();
    assert!(e.contains("no GGUF model matches"), "{e}");
    assert!(download::resolve("not-a-repo").is_err());
    let e = download::resolve("acme/missing").unwrap_err().to_string();
    assert!(e.contains("404"), "{e}");
    let single = download::resolve("acme/tiny-GGUF:f32").unwrap();
    assert_eq!(single.files.len(), 1);
    // A model larger than the disk fails before a byte of it is fetched.
    let mut huge = download::resolve("acme/tiny-GGUF:Q8").unwrap();
    huge.files[0].size = 1 << 60;
    let (lib, _scratch) = library("names");
    let before = hub.server.bytes_served();
    let e = download::pull(&huge, &lib.models_dir(), &Stop::default(), |_| {}).unwrap_err();
    assert!(matches!(e, PullError::NoSpace { .. }), "{e}");
    assert_eq!(hub.server.bytes_served(), before);
}

#[test]
fn the_app_manager_pauses_resumes_after_a_restart_and_cancels() {
    use localglm_models::manager::Manager;
    let _env = ENV.lock().unwrap();
    let hub = hub(
        "manager",
        Faults {
            bytes_per_s: Some(8 << 20),
            ..Faults::default()
        },
    );
    std::env::set_var("HF_ENDPOINT", &hub.server.url);
    let (lib, _scratch) = library("manager");
    let wait = |m: &Manager, status: &str| {
        for _ in 0..600 {
            if m.list().iter().any(|d| d.status == status) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("never {status}: {:?}", m.list());
    };
    let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let m = Manager::new(
        lib.models_dir(),
        Box::new(move |s| log.lock().unwrap().push(s.status.clone())),
    );
    let d = m.start("acme/tiny-GGUF:Q8").unwrap();
    assert_eq!(d.status, "running");
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert!(m.pause(&d.id));
    wait(&m, "paused");
    let done_at_pause = m.list()[0].done_bytes;
    assert!(done_at_pause > 0.0 && done_at_pause < hub.total as f64);
    drop(m);

    // "Restart": a new manager finds the unfinished download, paused, and resumes it.
    let m = Manager::new(lib.models_dir(), Box::new(|_| {}));
    let listed = m.list();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, "paused");
    let before = hub.server.bytes_served();
    m.start(&listed[0].spec).unwrap();
    wait(&m, "done");
    assert!(hub.server.bytes_served() - before < hub.total - (2 << 20));
    assert_eq!(lib.installed().unwrap().len(), 1);
    assert!(seen.lock().unwrap().contains(&"paused".to_string()));

    // Cancel a paused download of another quant: its partial file goes.
    let m = Manager::new(lib.models_dir(), Box::new(|_| {}));
    let d = m.start("acme/tiny-GGUF:F32").unwrap();
    wait(&m, "done");
    assert!(!m.cancel("nope"));
    assert_eq!(d.files, 1);
    assert_eq!(lib.installed().unwrap().len(), 2);
    let f32 = lib
        .installed()
        .unwrap()
        .into_iter()
        .find(|x| x.name == "tiny-F32")
        .unwrap();
    lib.delete(Path::new(&f32.path)).unwrap();
    assert_eq!(lib.installed().unwrap().len(), 1);
    assert!(lib.delete(Path::new("/etc/hostname")).is_err());
}
