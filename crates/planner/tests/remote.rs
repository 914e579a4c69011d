//! Header-only sizing of a remote split GGUF through a real local HTTP server (hub URL layout,
//! `Range` requests) that counts the bytes it serves: the plan is exact, and only a sliver of
//! the files crosses the wire.

use localglm_gguf::writer::GgufWriter;
use localglm_gguf::{Array, Value, ValueType};
use localglm_hardware::Hardware;
use localglm_planner::{plan, remote, KvType, Placement, Verdict};
use localglm_quants::GgmlType;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Serves files under `root` at `/{path}`, honouring `Range: bytes=a-b`; counts body bytes.
fn serve(root: PathBuf) -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let served = Arc::new(AtomicU64::new(0));
    let counter = served.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let root = root.clone();
            let counter = counter.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                let mut range = None;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
                        let (a, b) = v.trim().split_once('-').unwrap();
                        range = Some((a.parse::<u64>().unwrap(), b.parse::<u64>().ok()));
                    }
                }
                let Ok(data) = std::fs::read(root.join(path.trim_start_matches('/'))) else {
                    let _ =
                        stream.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
                    return;
                };
                let total = data.len() as u64;
                let (a, b) = match range {
                    Some((a, b)) => (a, b.unwrap_or(total - 1).min(total - 1)),
                    None => (0, total - 1),
                };
                let body = &data[a as usize..=b as usize];
                let head = format!(
                    "HTTP/1.1 206 Partial Content\r\ncontent-length: {}\r\ncontent-range: bytes {a}-{b}/{total}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                // Count what actually leaves (a client may hang up early).
                for chunk in body.chunks(64 << 10) {
                    if stream.write_all(chunk).is_err() {
                        break;
                    }
                    counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                }
                let _ = reader.read(&mut [0u8; 1]);
            });
        }
    });
    (url, served)
}

/// A 3-shard llama-architecture model, 16 MiB of F32 weights per shard.
fn write_split_model(dir: &Path) -> u64 {
    let mut total = 0;
    for shard in 0..3u16 {
        let mut w = GgufWriter::new();
        if shard == 0 {
            let tokens: Vec<Value> = (0..1000)
                .map(|i| Value::String(format!("tok{i}")))
                .collect();
            w.kv("general.architecture", Value::String("llama".into()))
                .kv("llama.block_count", Value::U32(3))
                .kv("llama.embedding_length", Value::U32(512))
                .kv("llama.attention.head_count", Value::U32(8))
                .kv("llama.attention.head_count_kv", Value::U32(2))
                .kv("llama.context_length", Value::U32(8192))
                .kv(
                    "tokenizer.ggml.tokens",
                    Value::Array(Array {
                        elem_type: ValueType::String,
                        items: tokens,
                    }),
                );
        }
        w.kv("split.no", Value::U16(shard))
            .kv("split.count", Value::U16(3))
            .kv("split.tensors.count", Value::I32(3));
        w.tensor(
            &format!("blk.{shard}.ffn_up.weight"),
            &[512, 8192],
            GgmlType::F32,
            vec![0u8; 512 * 8192 * 4],
        )
        .unwrap();
        let path = dir.join(format!(
            "repo/resolve/main/M-{:05}-of-00003.gguf",
            shard + 1
        ));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        w.write(&path).unwrap();
        total += std::fs::metadata(&path).unwrap().len();
    }
    total
}

#[test]
fn a_remote_split_model_is_planned_from_its_headers_alone() {
    let dir = tempfile_dir();
    let file_bytes = write_split_model(&dir);
    let (base, served) = serve(dir.clone());
    // Any shard names the set.
    let m = remote::fetch(&format!("{base}/repo/resolve/main/M-00002-of-00003.gguf")).unwrap();
    assert_eq!(m.files.len(), 3);
    assert!(
        m.files.iter().all(|(_, size)| *size > 16 << 20),
        "{:?}",
        m.files
    );
    assert_eq!(m.spec.tensors.len(), 3);
    assert_eq!(m.spec.loaded_bytes(), 3 * 512 * 8192 * 4);
    // K and V: 3 layers × 2 KV heads × (64 + 64).
    assert_eq!(m.spec.kv.attn, 3 * 2 * 128);
    let fetched = served.load(Ordering::Relaxed);
    assert_eq!(m.bytes_fetched, fetched);
    assert!(
        fetched * 20 < file_bytes,
        "{fetched} bytes served for {file_bytes} bytes of files"
    );
    let p = plan(
        &Hardware::simulated(16.0, None, None),
        &m.spec,
        4096,
        KvType::F16,
        Placement::Auto,
    );
    assert_eq!(p.verdict, Verdict::Cpu);
    assert_eq!(p.bytes.kv, 4096 * 768 * 2);

    // A shard missing on the server is a clear error naming it.
    std::fs::remove_file(dir.join("repo/resolve/main/M-00003-of-00003.gguf")).unwrap();
    let e = remote::fetch(&format!("{base}/repo/resolve/main/M-00001-of-00003.gguf"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("M-00003-of-00003.gguf") && e.contains("404"),
        "{e}"
    );
    // Something that is not a GGUF.
    std::fs::write(dir.join("notes.gguf"), b"hello, not a model").unwrap();
    let e = remote::fetch(&format!("{base}/notes.gguf"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a usable GGUF header"), "{e}");
}

fn tempfile_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("localglm-remote-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
