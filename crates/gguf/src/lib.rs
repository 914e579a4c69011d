//! The GGUF container, read without copying: header, metadata, tensor infos, split sets
//! (`name-00001-of-00009.gguf`), memory-mapped tensor data, a type census, and a writer for
//! tests and fixtures.
//!
//! Invariant: opening a file maps it (no read of the tensor data), validates every size and
//! offset of the header against the file's length, and hands out tensor bytes only as slices
//! that were checked at open time. Any bad input is a [`GgufError`], never a panic.

use localglm_quants::GgmlType;
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

mod census;
pub mod glm_dsa;
mod map;
mod parse;
mod split;
mod value;
pub mod writer;

pub use census::{Census, TensorClass, TypeBytes};
pub use parse::{parse_header, parse_header_prefix, Header, DEFAULT_ALIGNMENT, MAX_DIMS};
pub use split::{split_parts, SplitName};
pub use value::{Array, Value, ValueType};

/// Everything that can be wrong with a GGUF file or set.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("not a GGUF file: {0}")]
    NotGguf(String),
    #[error("unsupported GGUF: {0}")]
    Unsupported(String),
    #[error(
        "truncated GGUF: {what} needs {needed} bytes at offset {offset}, only {available} present"
    )]
    Truncated {
        what: String,
        offset: u64,
        needed: u64,
        available: u64,
    },
    #[error("corrupt GGUF at offset {offset}: {reason}")]
    Corrupt { offset: u64, reason: String },
    #[error("split GGUF set: {0}")]
    Split(String),
    #[error("no tensor named {0}")]
    NoSuchTensor(String),
    /// A metadata value that cannot mean what its key says (e.g. `indexer.types`).
    #[error("{0}")]
    Metadata(String),
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", .path.display())]
    InFile {
        path: PathBuf,
        #[source]
        source: Box<GgufError>,
    },
}

/// One tensor as described by its header entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorInfo {
    pub name: String,
    /// Shape in ggml order: `dims[0]` is the contiguous (row) dimension.
    pub dims: Vec<u64>,
    #[serde(serialize_with = "ser_type")]
    pub ty: GgmlType,
    /// Offset relative to its file's data section.
    pub offset: u64,
    pub size_bytes: u64,
    pub n_elems: u64,
    /// Index of the shard (file) holding the data, 0-based.
    pub shard: usize,
}

fn ser_type<S: serde::Serializer>(t: &GgmlType, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(t.name())
}

impl TensorInfo {
    /// Number of rows (product of all dims but the first).
    pub fn rows(&self) -> u64 {
        self.dims[1..].iter().product()
    }
}

/// One memory-mapped GGUF file with its parsed header.
pub struct GgufFile {
    path: PathBuf,
    map: map::Mapped,
    header: Header,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.header.version)
            .field("tensors", &self.header.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Maps and parses one file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, GgufError> {
        let path = path.as_ref().to_path_buf();
        let map = map::Mapped::open(&path)?;
        let header = parse_header(map.bytes()).map_err(|e| GgufError::InFile {
            path: path.clone(),
            source: Box::new(e),
        })?;
        Ok(Self { path, map, header })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.header
            .metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The bytes of a tensor of this file (checked against the file length at open time).
    pub fn tensor_bytes(&self, t: &TensorInfo) -> &[u8] {
        let start = (self.header.data_offset + t.offset) as usize;
        &self.map.bytes()[start..start + t.size_bytes as usize]
    }

    pub fn len_bytes(&self) -> u64 {
        self.map.bytes().len() as u64
    }
}

/// A model: one GGUF file or a complete split set, opened together.
#[derive(Debug)]
pub struct GgufModel {
    files: Vec<GgufFile>,
    tensors: Vec<TensorInfo>,
    by_name: HashMap<String, usize>,
    split: Option<SplitName>,
}

impl GgufModel {
    /// Opens a model from any of its files: a single GGUF, or any shard of a split set
    /// (all siblings are found, opened and checked).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, GgufError> {
        let path = path.as_ref();
        match split::SplitName::parse(path) {
            Some(name) => split::open_set(name),
            None => {
                let file = GgufFile::open(path)?;
                if let Some(count) = file.get("split.count").and_then(Value::as_u64) {
                    if count > 1 {
                        return Err(GgufError::Split(format!(
                            "{} says it is one of {count} shards, but its name lacks the -NNNNN-of-NNNNN.gguf pattern needed to find the others",
                            path.display()
                        )));
                    }
                }
                Ok(Self::from_files(vec![file], None))
            }
        }
    }

    pub(crate) fn from_files(files: Vec<GgufFile>, split: Option<SplitName>) -> Self {
        let mut tensors = Vec::new();
        for (i, f) in files.iter().enumerate() {
            for t in &f.header.tensors {
                let mut t = t.clone();
                t.shard = i;
                tensors.push(t);
            }
        }
        let by_name = tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        Self {
            files,
            tensors,
            by_name,
            split,
        }
    }

    /// The files, shard order.
    pub fn files(&self) -> &[GgufFile] {
        &self.files
    }

    /// Split-set naming, if this model is a split set.
    pub fn split(&self) -> Option<&SplitName> {
        self.split.as_ref()
    }

    /// Metadata: first shard (which carries the model metadata).
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.files[0].header.metadata
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.files[0].get(key)
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(Value::as_u64)
    }

    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(Value::as_f64)
    }

    /// `general.architecture`.
    pub fn architecture(&self) -> Option<&str> {
        self.get_str("general.architecture")
    }

    /// All tensors, in shard then file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    pub fn tensor(&self, name: &str) -> Result<&TensorInfo, GgufError> {
        self.by_name
            .get(name)
            .map(|&i| &self.tensors[i])
            .ok_or_else(|| GgufError::NoSuchTensor(name.to_string()))
    }

    /// The raw (still quantized) bytes of a tensor, straight from the memory map.
    pub fn tensor_bytes(&self, t: &TensorInfo) -> &[u8] {
        self.files[t.shard].tensor_bytes(t)
    }

    /// Total size of all files.
    pub fn total_file_bytes(&self) -> u64 {
        self.files.iter().map(GgufFile::len_bytes).sum()
    }

    /// Bytes per type and per tensor class.
    pub fn census(&self) -> Census {
        Census::of(&self.tensors)
    }
}
