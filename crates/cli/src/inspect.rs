//! `localglm inspect` and `localglm dequant`: look inside GGUF files and sets.

use anyhow::{bail, Context, Result};
use localglm_gguf::{Census, GgufModel, TensorClass, Value};
use serde::Serialize;
use std::io::Write;
use std::path::Path;

/// Metadata keys whose values are too large to print (tokenizer vocabularies, merges).
fn is_bulky(key: &str, v: &Value) -> bool {
    key.starts_with("tokenizer.ggml.") && matches!(v, Value::Array(a) if a.items.len() > 16)
}

#[derive(Serialize)]
struct InspectJson<'a> {
    files: Vec<String>,
    split: Option<SplitJson>,
    architecture: Option<&'a str>,
    name: Option<&'a str>,
    tensor_count: usize,
    total_file_bytes: u64,
    metadata: serde_json::Map<String, serde_json::Value>,
    census: &'a Census,
}

#[derive(Serialize)]
struct SplitJson {
    base: String,
    count: u32,
    complete: bool,
}

fn json_value(v: &Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// Prints a summary of a GGUF file or split set.
pub fn inspect(path: &Path, json: bool) -> Result<()> {
    let model = GgufModel::open(path).with_context(|| format!("opening {}", path.display()))?;
    let census = model.census();
    if json {
        let mut metadata = serde_json::Map::new();
        for (k, v) in model.metadata() {
            let jv = if is_bulky(k, v) {
                serde_json::json!({ "array_len": v.as_array().map(|a| a.items.len()) })
            } else {
                json_value(v)
            };
            metadata.insert(k.clone(), jv);
        }
        let out = InspectJson {
            files: model
                .files()
                .iter()
                .map(|f| f.path().display().to_string())
                .collect(),
            split: model.split().map(|s| SplitJson {
                base: s.base.clone(),
                count: s.count,
                complete: true,
            }),
            architecture: model.architecture(),
            name: model.get_str("general.name"),
            tensor_count: model.tensors().len(),
            total_file_bytes: model.total_file_bytes(),
            metadata,
            census: &census,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }

    println!("file:          {}", path.display());
    match model.split() {
        Some(s) => println!(
            "split set:     {} shards of {} (complete, all checked)",
            s.count, s.base
        ),
        None => println!("split set:     no (single file)"),
    }
    println!("architecture:  {}", model.architecture().unwrap_or("?"));
    if let Some(n) = model.get_str("general.name") {
        println!("name:          {n}");
    }
    println!("GGUF version:  {}", model.files()[0].header().version);
    println!("tensors:       {}", model.tensors().len());
    println!("size on disk:  {}", human_bytes(model.total_file_bytes()));
    println!();
    println!("metadata:");
    for (k, v) in model.metadata() {
        if is_bulky(k, v) {
            let n = v.as_array().map(|a| a.items.len()).unwrap_or(0);
            println!("  {k:<48} [{n} entries]");
        } else {
            println!("  {k:<48} {}", v.summary());
        }
    }
    println!();
    println!(
        "{:<10} {:>8} {:>16} {:>12} {:>8}",
        "type", "tensors", "elements", "bytes", "bits/w"
    );
    for (ty, b) in &census.by_type {
        println!(
            "{:<10} {:>8} {:>16} {:>12} {:>8.3}",
            ty,
            b.tensors,
            b.elements,
            human_bytes(b.bytes),
            b.bits_per_weight()
        );
    }
    println!(
        "{:<10} {:>8} {:>16} {:>12} {:>8.3}",
        "total",
        census.total.tensors,
        census.total.elements,
        human_bytes(census.total.bytes),
        census.total.bits_per_weight()
    );
    println!();
    println!(
        "{:<20} {:>8} {:>12} {:>8}",
        "class", "tensors", "bytes", "bits/w"
    );
    for (class, b) in &census.by_class {
        let name = match class {
            TensorClass::RoutedExperts => "routed experts",
            TensorClass::EmbeddingsAndHead => "embeddings + head",
            TensorClass::Norms => "norms / 1-D",
            TensorClass::OtherWeights => "other weights",
        };
        println!(
            "{name:<20} {:>8} {:>12} {:>8.3}",
            b.tensors,
            human_bytes(b.bytes),
            b.bits_per_weight()
        );
    }
    Ok(())
}

/// Writes one tensor as raw little-endian f32, row-major in GGUF order (ne0 fastest).
pub fn dequant(path: &Path, tensor: &str, out: &Path) -> Result<()> {
    let model = GgufModel::open(path).with_context(|| format!("opening {}", path.display()))?;
    let t = model.tensor(tensor)?;
    if !t.ty.is_supported() {
        bail!(
            "tensor {tensor} has type {}, which LocalGLM cannot dequantize",
            t.ty.name()
        );
    }
    let row_len = t.dims[0] as usize;
    let row_bytes = t.ty.row_bytes(row_len)?;
    let data = model.tensor_bytes(t);
    let tmp = out.with_extension("partial");
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut row = vec![0f32; row_len];
    let mut bytes = Vec::with_capacity(row_len * 4);
    for src in data.chunks_exact(row_bytes) {
        localglm_quants::dequantize_row(t.ty, src, &mut row)?;
        bytes.clear();
        bytes.extend(row.iter().flat_map(|x| x.to_le_bytes()));
        w.write_all(&bytes)?;
    }
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    std::fs::rename(&tmp, out)?;
    eprintln!(
        "wrote {} ({} × {} f32, {})",
        out.display(),
        t.rows(),
        row_len,
        t.ty.name()
    );
    Ok(())
}

pub fn human_bytes(b: u64) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.2} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{b} B")
    }
}
