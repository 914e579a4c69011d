//! A GGUF v3 writer for tests, fixtures and tiny synthetic models.
//!
//! Invariant: what it writes parses back with `parse_header` to the same metadata and tensors
//! (round-trip tested); tensor data is checked against its type and shape when added.

use crate::value::Value;
use crate::{GgufError, DEFAULT_ALIGNMENT};
use localglm_quants::GgmlType;
use std::io::Write;
use std::path::Path;

struct PendingTensor {
    name: String,
    dims: Vec<u64>,
    ty: GgmlType,
    /// `None`: all zeros, left as a hole by [`GgufWriter::write`] (sparse files for models
    /// described by their headers, e.g. a full-size GLM-5.2 layout for planner tests).
    data: Option<Vec<u8>>,
    size: u64,
}

/// Collects metadata and tensors, then writes a GGUF v3 file.
#[derive(Default)]
pub struct GgufWriter {
    metadata: Vec<(String, Value)>,
    tensors: Vec<PendingTensor>,
}

impl GgufWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a metadata entry (replacing one with the same key).
    pub fn kv(&mut self, key: &str, value: Value) -> &mut Self {
        self.metadata.retain(|(k, _)| k != key);
        self.metadata.push((key.to_string(), value));
        self
    }

    /// Adds a tensor; `data` must be exactly the bytes its type and shape need.
    pub fn tensor(
        &mut self,
        name: &str,
        dims: &[u64],
        ty: GgmlType,
        data: Vec<u8>,
    ) -> Result<&mut Self, GgufError> {
        let n: u64 = dims.iter().product();
        let need = ty.row_bytes(n as usize).map_err(|e| GgufError::Corrupt {
            offset: 0,
            reason: format!("{name}: {e}"),
        })? as u64;
        if dims.is_empty() || dims.len() > 4 || need != data.len() as u64 {
            return Err(GgufError::Corrupt {
                offset: 0,
                reason: format!(
                    "{name}: {} bytes given, {need} needed for {dims:?} {}",
                    data.len(),
                    ty.name()
                ),
            });
        }
        self.tensors.push(PendingTensor {
            name: name.to_string(),
            dims: dims.to_vec(),
            ty,
            size: need,
            data: Some(data),
        });
        Ok(self)
    }

    /// Adds a tensor whose data is all zeros, without holding it in memory: [`Self::write`]
    /// leaves it as a hole in a sparse file.
    pub fn tensor_zeros(
        &mut self,
        name: &str,
        dims: &[u64],
        ty: GgmlType,
    ) -> Result<&mut Self, GgufError> {
        let n = dims
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .unwrap_or(u64::MAX);
        let need = usize::try_from(n)
            .ok()
            .and_then(|n| ty.row_bytes(n).ok())
            .filter(|_| !dims.is_empty() && dims.len() <= 4)
            .ok_or_else(|| GgufError::Corrupt {
                offset: 0,
                reason: format!("{name}: {dims:?} is not a valid {} shape", ty.name()),
            })? as u64;
        self.tensors.push(PendingTensor {
            name: name.to_string(),
            dims: dims.to_vec(),
            ty,
            size: need,
            data: None,
        });
        Ok(self)
    }

    fn alignment(&self) -> u64 {
        self.metadata
            .iter()
            .find(|(k, _)| k == "general.alignment")
            .and_then(|(_, v)| v.as_u64())
            .unwrap_or(DEFAULT_ALIGNMENT)
    }

    /// The header padded to the data section, each tensor's offset in it, and the file length.
    fn header(&self) -> (Vec<u8>, Vec<u64>, u64) {
        let align = self.alignment();
        let mut out = Vec::new();
        out.extend_from_slice(b"GGUF");
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (k, v) in &self.metadata {
            put_str(&mut out, k);
            out.extend_from_slice(&v.value_type().id().to_le_bytes());
            put_value(&mut out, v);
        }
        let mut offset = 0u64;
        let mut offsets = Vec::new();
        for t in &self.tensors {
            put_str(&mut out, &t.name);
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.ty.id().to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            offsets.push(offset);
            offset = (offset + t.size).div_ceil(align) * align;
        }
        // The file ends right after the last tensor's data (no trailing padding).
        let end = match (self.tensors.last(), offsets.last()) {
            (Some(t), Some(&off)) => off + t.size,
            _ => 0,
        };
        let data_start = (out.len() as u64).div_ceil(align) * align;
        out.resize(data_start as usize, 0);
        (out, offsets, data_start + end)
    }

    /// The whole file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let (mut out, offsets, len) = self.header();
        let data_start = out.len() as u64;
        for (t, off) in self.tensors.iter().zip(offsets) {
            out.resize((data_start + off) as usize, 0);
            match &t.data {
                Some(d) => out.extend_from_slice(d),
                None => out.resize((data_start + off + t.size) as usize, 0),
            }
        }
        out.resize(len as usize, 0);
        out
    }

    /// Writes the file atomically (temporary file, then rename); zero tensors added with
    /// [`Self::tensor_zeros`] stay holes, so the file takes only its header's space on disk.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        use std::io::{Seek, SeekFrom};
        let tmp = path.with_extension("gguf.tmp");
        {
            let (header, offsets, len) = self.header();
            let data_start = header.len() as u64;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&header)?;
            for (t, off) in self.tensors.iter().zip(offsets) {
                if let Some(d) = &t.data {
                    f.seek(SeekFrom::Start(data_start + off))?;
                    f.write_all(d)?;
                }
            }
            f.set_len(len)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.push(*x as u8),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(*x as u8),
        Value::String(s) => put_str(out, s),
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Array(a) => {
            out.extend_from_slice(&a.elem_type.id().to_le_bytes());
            out.extend_from_slice(&(a.items.len() as u64).to_le_bytes());
            // Nested arrays carry their own element type and count (put_value writes them).
            for item in &a.items {
                put_value(out, item);
            }
        }
    }
}
