//! GGUF container: writer→reader round trips, split sets, truncation at every byte, bad files.

use localglm_gguf::writer::GgufWriter;
use localglm_gguf::{parse_header, Array, GgufError, GgufModel, Value, ValueType};
use localglm_quants::GgmlType;
use std::path::Path;

fn all_values() -> Vec<(&'static str, Value)> {
    vec![
        ("t.u8", Value::U8(200)),
        ("t.i8", Value::I8(-100)),
        ("t.u16", Value::U16(60000)),
        ("t.i16", Value::I16(-30000)),
        ("t.u32", Value::U32(4_000_000_000)),
        ("t.i32", Value::I32(-2_000_000_000)),
        ("t.f32", Value::F32(1.5e-3)),
        ("t.bool", Value::Bool(true)),
        ("t.string", Value::String("héllo ⏎ wörld".into())),
        ("t.u64", Value::U64(u64::MAX)),
        ("t.i64", Value::I64(i64::MIN)),
        ("t.f64", Value::F64(-2.25e300)),
        (
            "t.array",
            Value::Array(Array {
                elem_type: ValueType::String,
                items: vec![Value::String("a".into()), Value::String("".into())],
            }),
        ),
        (
            "t.nested",
            Value::Array(Array {
                elem_type: ValueType::Array,
                items: vec![
                    Value::Array(Array {
                        elem_type: ValueType::I32,
                        items: vec![Value::I32(1), Value::I32(-2)],
                    }),
                    Value::Array(Array {
                        elem_type: ValueType::Bool,
                        items: vec![],
                    }),
                ],
            }),
        ),
    ]
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn small_model(extra: &[(&str, Value)], tensors: &[(&str, Vec<f32>)]) -> GgufWriter {
    let mut w = GgufWriter::new();
    w.kv("general.architecture", Value::String("llama".into()));
    for (k, v) in extra {
        w.kv(k, v.clone());
    }
    for (name, data) in tensors {
        w.tensor(name, &[data.len() as u64], GgmlType::F32, f32_bytes(data))
            .unwrap();
    }
    w
}

#[test]
fn round_trip_every_value_type_and_tensor() {
    let mut w = GgufWriter::new();
    for (k, v) in all_values() {
        w.kv(k, v);
    }
    w.kv("general.alignment", Value::U32(64));
    w.tensor(
        "a",
        &[4, 2],
        GgmlType::F32,
        f32_bytes(&[1., 2., 3., 4., 5., 6., 7., 8.]),
    )
    .unwrap();
    let q8: Vec<u8> = (0..34u8).collect();
    w.tensor("b", &[32], GgmlType::Q8_0, q8.clone()).unwrap();
    let bytes = w.to_bytes();
    let h = parse_header(&bytes).unwrap();
    assert_eq!(h.version, 3);
    assert_eq!(h.alignment, 64);
    assert_eq!(h.data_offset % 64, 0);
    for (k, v) in all_values() {
        let got = &h.metadata.iter().find(|(key, _)| key == k).unwrap().1;
        assert_eq!(got, &v, "{k}");
    }
    assert_eq!(h.tensors.len(), 2);
    assert_eq!(h.tensors[0].dims, vec![4, 2]);
    assert_eq!(h.tensors[0].size_bytes, 32);
    assert_eq!(h.tensors[1].ty, GgmlType::Q8_0);
    assert_eq!(h.tensors[1].offset % 64, 0);
    // The header alone (as a range request fetches it) parses against the declared file size;
    // a declared size too short for the tensors is a truncation; a cut inside the header too.
    let head = &bytes[..h.data_offset as usize];
    let from_prefix = localglm_gguf::parse_header_prefix(head, bytes.len() as u64).unwrap();
    assert_eq!(from_prefix.tensors, h.tensors);
    assert!(matches!(
        localglm_gguf::parse_header_prefix(head, bytes.len() as u64 - 1),
        Err(GgufError::Truncated { .. })
    ));
    assert!(matches!(
        localglm_gguf::parse_header_prefix(&bytes[..40], bytes.len() as u64),
        Err(GgufError::Truncated { .. })
    ));

    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.gguf");
    w.write(&p).unwrap();
    let m = GgufModel::open(&p).unwrap();
    let b = m.tensor("b").unwrap();
    assert_eq!(m.tensor_bytes(b), &q8[..]);
    let a = m.tensor("a").unwrap();
    assert_eq!(
        m.tensor_bytes(a),
        &f32_bytes(&[1., 2., 3., 4., 5., 6., 7., 8.])[..]
    );
    assert_eq!(a.rows(), 2);
    assert!(matches!(m.tensor("nope"), Err(GgufError::NoSuchTensor(_))));
    let census = m.census();
    assert_eq!(census.total.tensors, 2);
    assert_eq!(census.bytes_of(GgmlType::Q8_0), 34);
    assert!((census.by_type["Q8_0"].bits_per_weight() - 8.5).abs() < 1e-9);
}

#[test]
fn every_truncation_is_an_error_never_a_panic() {
    let w = small_model(
        &[("x.tokens", all_values()[12].1.clone())],
        &[("w", vec![1.0; 64]), ("v", vec![2.0; 8])],
    );
    let bytes = w.to_bytes();
    assert!(parse_header(&bytes).is_ok());
    for cut in 0..bytes.len() {
        let r = parse_header(&bytes[..cut]);
        assert!(
            r.is_err(),
            "a file cut at {cut} of {} bytes parsed",
            bytes.len()
        );
    }
}

#[test]
fn corrupt_headers_are_errors() {
    let good = small_model(&[], &[("w", vec![1.0; 8])]).to_bytes();
    // Flip every byte of the header, one at a time: error or a valid parse, never a panic.
    let header_len = parse_header(&good).unwrap().data_offset as usize;
    for i in 0..header_len {
        for v in [0x00u8, 0xff, 0x7f, 0x80] {
            let mut b = good.clone();
            b[i] = v;
            let _ = parse_header(&b);
        }
    }
    // Huge counts must not allocate.
    let mut b = good.clone();
    b[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(parse_header(&b), Err(GgufError::Truncated { .. })));
}

#[test]
fn foreign_and_unsupported_files() {
    assert!(matches!(
        parse_header(b"PK\x03\x04zipzipzipzipzipzip"),
        Err(GgufError::NotGguf(_))
    ));
    assert!(matches!(parse_header(b""), Err(GgufError::NotGguf(_))));
    let mut v1 = b"GGUF".to_vec();
    v1.extend_from_slice(&1u32.to_le_bytes());
    v1.extend_from_slice(&[0; 16]);
    assert!(matches!(parse_header(&v1), Err(GgufError::Unsupported(_))));
    let mut be = b"GGUF".to_vec();
    be.extend_from_slice(&3u32.to_be_bytes());
    be.extend_from_slice(&[0; 16]);
    assert!(matches!(parse_header(&be), Err(GgufError::Unsupported(_))));

    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.gguf");
    std::fs::write(&empty, b"").unwrap();
    let err = GgufModel::open(&empty).unwrap_err().to_string();
    assert!(
        err.contains("not a GGUF") && err.contains("empty.gguf"),
        "{err}"
    );
    assert!(matches!(
        GgufModel::open(dir.path().join("missing.gguf")),
        Err(GgufError::Io { .. })
    ));
}

fn write_set(dir: &Path, base: &str, shards: &[Vec<(&str, Vec<f32>)>], total: u64) {
    let n = shards.len();
    for (i, tensors) in shards.iter().enumerate() {
        let meta = [
            ("split.no", Value::U16(i as u16)),
            ("split.count", Value::U16(n as u16)),
            ("split.tensors.count", Value::I32(total as i32)),
        ];
        small_model(&meta, tensors)
            .write(&dir.join(format!("{base}-{:05}-of-{:05}.gguf", i + 1, n)))
            .unwrap();
    }
}

#[test]
fn split_sets() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let shards = vec![
        vec![],
        vec![("a", vec![1.0; 4]), ("b", vec![2.0; 4])],
        vec![("c", vec![3.0; 4])],
    ];
    write_set(d, "M-Q2", &shards, 3);
    // Open from any shard.
    for i in 1..=3 {
        let m = GgufModel::open(d.join(format!("M-Q2-{i:05}-of-00003.gguf"))).unwrap();
        assert_eq!(m.files().len(), 3);
        assert_eq!(m.tensors().len(), 3);
        let c = m.tensor("c").unwrap();
        assert_eq!(c.shard, 2);
        assert_eq!(m.tensor_bytes(c), &f32_bytes(&[3.0; 4])[..]);
        assert_eq!(m.architecture(), Some("llama"));
    }

    // Missing shard.
    std::fs::remove_file(d.join("M-Q2-00002-of-00003.gguf")).unwrap();
    let err = GgufModel::open(d.join("M-Q2-00001-of-00003.gguf"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("missing") && err.contains("M-Q2-00002-of-00003.gguf"),
        "{err}"
    );

    // Mixed sets: a shard from another set (wrong split.no).
    write_set(d, "M-Q2", &shards, 3);
    let other = d.join("other");
    std::fs::create_dir(&other).unwrap();
    write_set(
        &other,
        "M-Q2",
        &[vec![("x", vec![0.0; 4])], vec![("y", vec![0.0; 4])]],
        2,
    );
    std::fs::copy(
        other.join("M-Q2-00002-of-00002.gguf"),
        d.join("M-Q2-00003-of-00003.gguf"),
    )
    .unwrap();
    let err = GgufModel::open(d.join("M-Q2-00001-of-00003.gguf"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("split.count") || err.contains("split.no"),
        "{err}"
    );

    // Duplicate tensor across shards.
    let dup = d.join("dup");
    std::fs::create_dir(&dup).unwrap();
    write_set(
        &dup,
        "D",
        &[vec![("a", vec![0.0; 4])], vec![("a", vec![0.0; 4])]],
        2,
    );
    let err = GgufModel::open(dup.join("D-00002-of-00002.gguf"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than one shard"), "{err}");

    // Tensor count mismatch.
    let cnt = d.join("cnt");
    std::fs::create_dir(&cnt).unwrap();
    write_set(
        &cnt,
        "C",
        &[vec![("a", vec![0.0; 4])], vec![("b", vec![0.0; 4])]],
        5,
    );
    let err = GgufModel::open(cnt.join("C-00001-of-00002.gguf"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("split.tensors.count"), "{err}");

    // A shard renamed to look like a single file is refused, not half-loaded.
    std::fs::copy(d.join("M-Q2-00001-of-00003.gguf"), d.join("renamed.gguf")).unwrap();
    let err = GgufModel::open(d.join("renamed.gguf"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("one of 3 shards"), "{err}");
}

#[test]
fn real_default_model_opens_without_copying() {
    let p = localglm_models::Library::from_env().default_model_path();
    assert!(
        p.exists(),
        "default model missing at {}: run scripts/install_default_model.py",
        p.display()
    );
    let t = std::time::Instant::now();
    let m = GgufModel::open(&p).unwrap();
    assert_eq!(m.architecture(), Some("llama"));
    assert_eq!(m.tensors().len(), 272);
    assert!(m.census().bytes_of(GgmlType::Q4_1) > 50_000_000);
    assert!(t.elapsed().as_secs_f64() < 2.0);
}
