//! Header-only sizing of remote split GGUFs through a real local HTTP server (hub URL layout,
//! `Range` requests) that counts the bytes it serves: the plan is exact, and only a sliver of
//! the files crosses the wire.

use localglm_gguf::writer::GgufWriter;
use localglm_gguf::Value;
use localglm_hardware::Hardware;
use localglm_planner::{plan, remote, KvType, ModelSpec, Placement, Verdict};
use localglm_quants::GgmlType;
use localglm_testkit::{glm52, FileServer};
use std::path::{Path, PathBuf};

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("localglm-remote-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn glm52_sized_from_its_headers_matches_the_full_layout() {
    // 252.8 GB of (sparse) shards in the hub's layout.
    let dir = tempdir("glm52");
    let repo = dir.join("unsloth/GLM-5.2-GGUF/resolve/main/UD-Q2_K_XL");
    std::fs::create_dir_all(&repo).unwrap();
    let files = glm52::write_sparse_split(&repo, "GLM-5.2-UD-Q2_K_XL", glm52::UD_Q2_K_XL, 6);
    let file_bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    assert!(file_bytes > 250_000_000_000);
    let server = FileServer::start(dir.clone());
    let url = format!(
        "{}/unsloth/GLM-5.2-GGUF/resolve/main/UD-Q2_K_XL/GLM-5.2-UD-Q2_K_XL-00003-of-00006.gguf",
        server.url
    );
    let m = remote::fetch(&url).unwrap();
    assert_eq!(m.files.len(), 6);
    assert_eq!(m.files.iter().map(|f| f.1).sum::<u64>(), file_bytes);
    // The server counts a chunk just after sending it: give its thread a moment.
    for _ in 0..200 {
        if server.bytes_served() >= m.bytes_fetched {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(m.bytes_fetched, server.bytes_served());
    assert!(
        m.bytes_fetched < 2 << 20,
        "{} header bytes for a {file_bytes}-byte model",
        m.bytes_fetched
    );
    // The same plan as from the full tensor list.
    let full = ModelSpec::from_header(
        "x",
        &glm52::metadata(),
        &glm52::tensor_infos(glm52::UD_Q2_K_XL),
    )
    .unwrap();
    assert_eq!(m.spec.loaded_bytes(), full.loaded_bytes());
    let mac = Hardware::simulated(256.0, None, Some(None));
    let a = plan(&mac, &m.spec, 32_768, KvType::F16, Placement::Auto);
    let b = plan(&mac, &full, 32_768, KvType::F16, Placement::Auto);
    assert_eq!(
        (a.verdict, a.cpu_moe_layers, a.bytes),
        (b.verdict, b.cpu_moe_layers, b.bytes)
    );
    assert_eq!((a.verdict, a.cpu_moe_layers), (Verdict::GpuCpuExperts, 16));
    // And from the local files (memory-mapped headers; the holes are never read).
    let local = localglm_planner::local_spec(&files[0]).unwrap();
    assert_eq!(local.loaded_bytes(), full.loaded_bytes());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A 3-shard llama-architecture model with real (zero) data, 16 MiB per shard.
fn write_split_model(dir: &Path) -> u64 {
    let mut total = 0;
    for shard in 0..3u16 {
        let mut w = GgufWriter::new();
        if shard == 0 {
            w.kv("general.architecture", Value::String("llama".into()))
                .kv("llama.block_count", Value::U32(3))
                .kv("llama.embedding_length", Value::U32(512))
                .kv("llama.attention.head_count", Value::U32(8))
                .kv("llama.attention.head_count_kv", Value::U32(2))
                .kv("llama.context_length", Value::U32(8192));
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
fn a_small_split_model_errors_and_kv_of_grouped_query_attention() {
    let dir = tempdir("small");
    let file_bytes = write_split_model(&dir);
    let server = FileServer::start(dir.clone());
    let base = &server.url;
    let m = remote::fetch(&format!("{base}/repo/resolve/main/M-00002-of-00003.gguf")).unwrap();
    assert_eq!(m.spec.tensors.len(), 3);
    assert_eq!(m.spec.loaded_bytes(), 3 * 512 * 8192 * 4);
    // K and V: 3 layers × 2 KV heads × (64 + 64).
    assert_eq!(m.spec.kv.attn, 3 * 2 * 128);
    assert!(server.bytes_served() * 20 < file_bytes);
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
    // Nobody listening.
    let e = remote::fetch("http://127.0.0.1:9/m.gguf")
        .unwrap_err()
        .to_string();
    assert!(e.contains("127.0.0.1:9"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
