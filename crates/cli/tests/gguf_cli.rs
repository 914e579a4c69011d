//! `localglm inspect` and `localglm dequant` on a two-shard GGUF holding one tensor of every
//! supported type (the quants reference fixtures, made from PyPI `gguf`): dequant output must
//! equal the reference f32 bytes exactly.

use localglm_gguf::writer::GgufWriter;
use localglm_gguf::Value;
use localglm_quants::GgmlType;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../quants/tests/fixtures")
}

struct Fixture {
    ty: GgmlType,
    rows: u64,
    cols: u64,
}

fn manifest() -> Vec<Fixture> {
    let text = std::fs::read_to_string(fixtures().join("manifest.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| Fixture {
            ty: GgmlType::from_name(t["type"].as_str().unwrap()).unwrap(),
            rows: t["rows"].as_u64().unwrap(),
            cols: t["cols"].as_u64().unwrap(),
        })
        .collect()
}

fn localglm() -> Command {
    Command::new(env!("CARGO_BIN_EXE_localglm"))
}

/// Writes the fixtures as a 2-shard set; returns the shard paths.
fn write_set(dir: &Path) -> Vec<PathBuf> {
    let all = manifest();
    assert_eq!(all.len(), 22);
    let halves = [&all[..11], &all[11..]];
    let mut paths = Vec::new();
    for (i, part) in halves.iter().enumerate() {
        let mut w = GgufWriter::new();
        if i == 0 {
            w.kv("general.architecture", Value::String("test".into()));
            w.kv("general.name", Value::String("every-type".into()));
        }
        w.kv("split.no", Value::U16(i as u16));
        w.kv("split.count", Value::U16(2));
        w.kv("split.tensors.count", Value::I32(23));
        for f in part.iter() {
            let data = std::fs::read(fixtures().join(format!("{}.bin", f.ty.name()))).unwrap();
            w.tensor(f.ty.name(), &[f.cols, f.rows], f.ty, data)
                .unwrap();
        }
        if i == 1 {
            // An activation-only type: listed by inspect, refused by dequant.
            w.tensor("q8k", &[256], GgmlType::Q8_K, vec![0u8; 292])
                .unwrap();
        }
        let p = dir.join(format!("every-type-{:05}-of-00002.gguf", i + 1));
        w.write(&p).unwrap();
        paths.push(p);
    }
    paths
}

#[test]
fn inspect_reads_a_split_set_of_every_type() {
    let dir = tempfile::tempdir().unwrap();
    let shards = write_set(dir.path());
    let out = localglm()
        .arg("inspect")
        .arg(&shards[1])
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tensor_count"], 23);
    assert_eq!(v["split"]["count"], 2);
    assert_eq!(v["architecture"], "test");
    assert_eq!(v["census"]["by_type"].as_object().unwrap().len(), 23);

    let out = localglm().arg("inspect").arg(&shards[0]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("split set:     2 shards"), "{text}");
    assert!(text.contains("IQ1_M") && text.contains("bits/w"), "{text}");

    std::fs::remove_file(&shards[1]).unwrap();
    let out = localglm().arg("inspect").arg(&shards[0]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("missing") && err.contains("00002-of-00002"),
        "{err}"
    );
}

#[test]
fn dequant_matches_the_reference_for_all_22_types() {
    let dir = tempfile::tempdir().unwrap();
    let shards = write_set(dir.path());
    for f in manifest() {
        let out_path = dir.path().join(format!("{}.out", f.ty.name()));
        let out = localglm()
            .arg("dequant")
            .arg(&shards[0])
            .arg(f.ty.name())
            .arg("--out")
            .arg(&out_path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            f.ty,
            String::from_utf8_lossy(&out.stderr)
        );
        let got = std::fs::read(&out_path).unwrap();
        let want = std::fs::read(fixtures().join(format!("{}.f32", f.ty.name()))).unwrap();
        assert_eq!(got.len(), want.len(), "{}", f.ty);
        assert!(
            got == want,
            "{}: dequantized bytes differ from the reference",
            f.ty
        );
    }
}

#[test]
fn dequant_refuses_unknown_tensors_and_unsupported_types() {
    let dir = tempfile::tempdir().unwrap();
    let shards = write_set(dir.path());
    let out_path = dir.path().join("x.f32");
    let out = localglm()
        .arg("dequant")
        .arg(&shards[0])
        .arg("nope")
        .arg("--out")
        .arg(&out_path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tensor named nope"));
    let out = localglm()
        .arg("dequant")
        .arg(&shards[0])
        .arg("q8k")
        .arg("--out")
        .arg(&out_path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot dequantize"));
    assert!(!out_path.exists(), "nothing is written on failure");
}
