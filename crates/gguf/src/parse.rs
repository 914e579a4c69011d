//! The GGUF v2/v3 header parser over a byte slice (usually a memory map).
//!
//! Invariant: every length, count, dimension and offset read from the file is checked against
//! the bytes actually present before it is used (no allocation sized by an unchecked count, no
//! slice past the end, no arithmetic overflow), so a truncated, corrupt or hostile file yields a
//! `GgufError`, never a panic or an out-of-bounds read.

use crate::value::{Array, Value, ValueType};
use crate::{GgufError, TensorInfo};
use localglm_quants::GgmlType;

pub(crate) const MAGIC: &[u8; 4] = b"GGUF";
/// Deepest nesting of arrays accepted (real files use 1).
const MAX_ARRAY_DEPTH: usize = 8;
/// ggml tensors have at most 4 dimensions.
pub const MAX_DIMS: u32 = 4;
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// The parsed header of one GGUF file.
#[derive(Debug, Clone)]
pub struct Header {
    pub version: u32,
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    /// Absolute file offset of the tensor data section.
    pub data_offset: u64,
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }

    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8], GgufError> {
        if n > self.remaining() {
            return Err(GgufError::Truncated {
                what: what.to_string(),
                offset: self.pos as u64,
                needed: n,
                available: self.remaining(),
            });
        }
        let n = n as usize;
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], GgufError> {
        let s = self.take(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: &str) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn string(&mut self, what: &str) -> Result<String, GgufError> {
        let len = self.u64(what)?;
        let at = self.pos as u64;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| GgufError::Corrupt {
            offset: at,
            reason: format!("{what} is not valid UTF-8"),
        })
    }

    fn value(&mut self, ty: ValueType, depth: usize, what: &str) -> Result<Value, GgufError> {
        Ok(match ty {
            ValueType::U8 => Value::U8(self.array::<1>(what)?[0]),
            ValueType::I8 => Value::I8(self.array::<1>(what)?[0] as i8),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array(what)?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array(what)?)),
            ValueType::U32 => Value::U32(self.u32(what)?),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array(what)?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array(what)?)),
            ValueType::U64 => Value::U64(self.u64(what)?),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.array(what)?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array(what)?)),
            ValueType::Bool => {
                let at = self.pos as u64;
                match self.array::<1>(what)?[0] {
                    0 => Value::Bool(false),
                    1 => Value::Bool(true),
                    b => {
                        return Err(GgufError::Corrupt {
                            offset: at,
                            reason: format!("{what}: bool byte {b} is neither 0 nor 1"),
                        })
                    }
                }
            }
            ValueType::String => Value::String(self.string(what)?),
            ValueType::Array => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(GgufError::Corrupt {
                        offset: self.pos as u64,
                        reason: format!("{what}: arrays nested deeper than {MAX_ARRAY_DEPTH}"),
                    });
                }
                let at = self.pos as u64;
                let elem_id = self.u32(what)?;
                let elem_type = ValueType::from_id(elem_id).ok_or_else(|| GgufError::Corrupt {
                    offset: at,
                    reason: format!("{what}: unknown array element type {elem_id}"),
                })?;
                let count = self.u64(what)?;
                // Each element needs at least min_size bytes: refuse counts the file cannot hold.
                if count
                    .checked_mul(elem_type.min_size())
                    .is_none_or(|n| n > self.remaining())
                {
                    return Err(GgufError::Truncated {
                        what: format!("{what} ({count} array elements)"),
                        offset: self.pos as u64,
                        needed: count.saturating_mul(elem_type.min_size()),
                        available: self.remaining(),
                    });
                }
                let mut items = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    items.push(self.value(elem_type, depth + 1, what)?);
                }
                Value::Array(Array { elem_type, items })
            }
        })
    }
}

/// Parses the header (metadata and tensor infos) of a GGUF file held in `buf`.
pub fn parse_header(buf: &[u8]) -> Result<Header, GgufError> {
    parse_header_prefix(buf, buf.len() as u64)
}

/// Parses the header from `buf`, the first bytes of a file of `file_len` bytes (e.g. fetched by
/// an HTTP range request): tensor data must fit the declared length, not the buffer. A buffer
/// that ends inside the header is [`GgufError::Truncated`].
pub fn parse_header_prefix(buf: &[u8], file_len: u64) -> Result<Header, GgufError> {
    let mut c = Cursor { buf, pos: 0 };
    let magic = c
        .take(4, "magic")
        .map_err(|_| GgufError::NotGguf("file is shorter than the 4-byte magic".into()))?;
    if magic != MAGIC {
        return Err(GgufError::NotGguf(format!(
            "bad magic {:02x?} (expected \"GGUF\")",
            magic
        )));
    }
    let version = c.u32("version")?;
    if version.swap_bytes() == 2 || version.swap_bytes() == 3 {
        return Err(GgufError::Unsupported(
            "big-endian GGUF files are not supported".into(),
        ));
    }
    if !(2..=3).contains(&version) {
        return Err(GgufError::Unsupported(format!(
            "GGUF version {version} (supported: 2, 3)"
        )));
    }
    let tensor_count = c.u64("tensor count")?;
    let kv_count = c.u64("metadata count")?;
    // Minimal sizes: a KV is ≥ 8 (key len) + 4 (type) + 1 bytes; a tensor info ≥ 8 + 4 + 8 + 4 + 8.
    if kv_count.checked_mul(13).is_none_or(|n| n > c.remaining()) {
        return Err(GgufError::Truncated {
            what: format!("{kv_count} metadata entries"),
            offset: c.pos as u64,
            needed: kv_count.saturating_mul(13),
            available: c.remaining(),
        });
    }
    let mut metadata: Vec<(String, Value)> = Vec::with_capacity(kv_count as usize);
    let mut seen = std::collections::HashSet::new();
    for i in 0..kv_count {
        let key = c.string(&format!("metadata key #{i}"))?;
        let at = c.pos as u64;
        let ty_id = c.u32(&format!("type of {key}"))?;
        let ty = ValueType::from_id(ty_id).ok_or_else(|| GgufError::Corrupt {
            offset: at,
            reason: format!("metadata {key}: unknown value type {ty_id}"),
        })?;
        let value = c.value(ty, 0, &format!("metadata {key}"))?;
        if !seen.insert(key.clone()) {
            return Err(GgufError::Corrupt {
                offset: at,
                reason: format!("duplicate metadata key {key}"),
            });
        }
        metadata.push((key, value));
    }

    let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some((_, v)) => match v.as_u64() {
            Some(a) if a.is_power_of_two() && a <= 1 << 20 => a,
            _ => {
                return Err(GgufError::Corrupt {
                    offset: 0,
                    reason: format!("general.alignment {v:?} is not a power of two ≤ 1 MiB"),
                })
            }
        },
    };

    if tensor_count
        .checked_mul(32)
        .is_none_or(|n| n > c.remaining())
    {
        return Err(GgufError::Truncated {
            what: format!("{tensor_count} tensor infos"),
            offset: c.pos as u64,
            needed: tensor_count.saturating_mul(32),
            available: c.remaining(),
        });
    }
    let mut tensors = Vec::with_capacity(tensor_count as usize);
    let mut names = std::collections::HashSet::new();
    for i in 0..tensor_count {
        let name = c.string(&format!("tensor #{i} name"))?;
        let at = c.pos as u64;
        let n_dims = c.u32(&format!("tensor {name} rank"))?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(GgufError::Corrupt {
                offset: at,
                reason: format!("tensor {name}: rank {n_dims} (must be 1..={MAX_DIMS})"),
            });
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(c.u64(&format!("tensor {name} shape"))?);
        }
        let ty_at = c.pos as u64;
        let ty_id = c.u32(&format!("tensor {name} type"))?;
        let offset = c.u64(&format!("tensor {name} offset"))?;
        let ty = GgmlType::from_id(ty_id).ok_or_else(|| GgufError::Corrupt {
            offset: ty_at,
            reason: format!("tensor {name}: unknown ggml type id {ty_id}"),
        })?;
        let n_elems = dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| GgufError::Corrupt {
                offset: at,
                reason: format!("tensor {name}: element count overflows"),
            })?;
        if dims[0] % ty.block_elems() as u64 != 0 {
            return Err(GgufError::Corrupt {
                offset: at,
                reason: format!(
                    "tensor {name}: row length {} is not a multiple of the {} block size {}",
                    dims[0],
                    ty.name(),
                    ty.block_elems()
                ),
            });
        }
        let size_bytes = (n_elems / ty.block_elems() as u64)
            .checked_mul(ty.block_bytes() as u64)
            .ok_or_else(|| GgufError::Corrupt {
                offset: at,
                reason: format!("tensor {name}: byte size overflows"),
            })?;
        if offset % alignment != 0 {
            return Err(GgufError::Corrupt {
                offset: at,
                reason: format!(
                    "tensor {name}: data offset {offset} is not aligned to {alignment}"
                ),
            });
        }
        if !names.insert(name.clone()) {
            return Err(GgufError::Corrupt {
                offset: at,
                reason: format!("duplicate tensor name {name}"),
            });
        }
        tensors.push(TensorInfo {
            name,
            dims,
            ty,
            offset,
            size_bytes,
            n_elems,
            shard: 0,
        });
    }

    let data_offset = (c.pos as u64).div_ceil(alignment) * alignment;
    for t in &tensors {
        let end = data_offset
            .checked_add(t.offset)
            .and_then(|s| s.checked_add(t.size_bytes));
        match end {
            Some(end) if end <= file_len => {}
            _ => {
                return Err(GgufError::Truncated {
                    what: format!("data of tensor {}", t.name),
                    offset: data_offset.saturating_add(t.offset),
                    needed: t.size_bytes,
                    available: file_len.saturating_sub(data_offset.saturating_add(t.offset)),
                })
            }
        }
    }
    Ok(Header {
        version,
        metadata,
        tensors,
        alignment,
        data_offset,
    })
}
