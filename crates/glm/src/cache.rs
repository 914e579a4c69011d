//! Per-sequence state of the GLM runtime: the latent KV cache of every layer and the indexer
//! keys of full layers, as growable device buffers (capacity doubles, appends in place).

use crate::model::KvType;
use candle_core::{DType, Tensor};

/// A growable `[len, width]` buffer: device rows of a float type (capacity doubles; appends
/// are in place), or q8_0 blocks in memory (each row zero-padded to whole 32-value blocks).
#[derive(Debug)]
pub(crate) struct GrowBuf {
    buf: Option<Tensor>,
    /// The q8_0 rows, when the cache is block-quantized.
    blocks: Option<Vec<u8>>,
    pub(crate) len: usize,
    width: usize,
    dtype: DType,
}

/// Writes row `r`'s columns into `out` (see `GrowBuf::with_row_chunks`).
type RowGetter<'a> = dyn FnMut(usize, std::ops::Range<usize>, &mut [f32]) + 'a;

/// Bytes of one q8_0 block (f16 scale + 32 values).
const Q8_BLOCK: usize = 34;

impl GrowBuf {
    pub(crate) fn new(width: usize, kv: KvType) -> Self {
        Self {
            buf: None,
            blocks: (kv == KvType::Q8_0).then(Vec::new),
            len: 0,
            width,
            dtype: crate::model::kv_dtype(kv).unwrap_or(DType::F16),
        }
    }

    pub(crate) fn append(&mut self, rows: &Tensor) -> candle_core::Result<()> {
        let n = rows.dim(0)?;
        let row_blocks = self.width.div_ceil(32);
        if let Some(blocks) = &mut self.blocks {
            let values = rows.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
            blocks.truncate(self.len * row_blocks * Q8_BLOCK);
            let mut group = [0f32; 32];
            for row in values.chunks_exact(self.width) {
                for part in row.chunks(32) {
                    group.fill(0.0);
                    group[..part.len()].copy_from_slice(part);
                    quantize_q8_0(&group, blocks);
                }
            }
            self.len += n;
            return Ok(());
        }
        let rows = rows.to_dtype(self.dtype)?.contiguous()?;
        let cap = self.buf.as_ref().map_or(0, |b| b.dim(0).unwrap_or(0));
        if self.len + n > cap {
            let new_cap = (self.len + n).max(cap * 2).max(64);
            let fresh = Tensor::zeros((new_cap, self.width), self.dtype, rows.device())?;
            if let Some(old) = &self.buf {
                if self.len > 0 {
                    fresh.slice_set(&old.narrow(0, 0, self.len)?.contiguous()?, 0, 0)?;
                }
            }
            self.buf = Some(fresh);
        }
        let buf = self.buf.as_ref().expect("allocated above");
        buf.slice_set(&rows, 0, self.len)?;
        self.len += n;
        Ok(())
    }

    /// The filled rows as f32 (on `device` for a q8_0 cache, which lives in memory).
    pub(crate) fn view(&self, device: &candle_core::Device) -> candle_core::Result<Tensor> {
        if let Some(blocks) = &self.blocks {
            let row_blocks = self.width.div_ceil(32);
            let mut out = Vec::with_capacity(self.len * self.width);
            let mut group = [0f32; 32];
            for row in blocks.chunks_exact(row_blocks * Q8_BLOCK).take(self.len) {
                for (j, b) in row.chunks_exact(Q8_BLOCK).enumerate() {
                    localglm_quants::dequant::q8_0(b.try_into().expect("one block"), &mut group);
                    let keep = (self.width - j * 32).min(32);
                    out.extend_from_slice(&group[..keep]);
                }
            }
            return Tensor::from_vec(out, (self.len, self.width), device);
        }
        let buf = self.buf.as_ref().expect("view after append");
        if let Some(t) = self.cpu_half_view(buf)? {
            return Ok(t);
        }
        buf.narrow(0, 0, self.len)?.to_dtype(DType::F32)
    }
    /// `f` over the filled rows `rows` as f32, `chunk` rows at a time (the last chunk may be
    /// shorter), each row reduced to the columns `cols` (ranges, concatenated): converted
    /// (f16/bf16), copied (f32) or dequantized (q8_0) chunk by chunk into one small scratch
    /// buffer. Decode attention reads the whole cache every token; converting it whole
    /// allocated and zeroed `len × width` floats per layer per token.
    pub(crate) fn with_row_chunks(
        &self,
        device: &candle_core::Device,
        chunk: usize,
        rows: std::ops::Range<usize>,
        cols: &[std::ops::Range<usize>],
        mut f: impl FnMut(&[f32]),
    ) -> candle_core::Result<()> {
        use candle_core::{CpuStorage, Storage};
        use half::slice::HalfFloatSliceExt;
        let (w, chunk) = (self.width, chunk.max(1));
        let rows = rows.start.min(self.len)..rows.end.min(self.len);
        let out_w: usize = cols.iter().map(|c| c.len()).sum();
        let mut scratch = vec![0f32; chunk * out_w];
        // Row `r` through `get(r, columns, out)`, chunk by chunk.
        let mut run = |get: &mut RowGetter<'_>| {
            for c0 in rows.clone().step_by(chunk) {
                let n = (rows.end - c0).min(chunk);
                for (k, out) in scratch.chunks_exact_mut(out_w).take(n).enumerate() {
                    let mut at = 0;
                    for c in cols {
                        get(c0 + k, c.clone(), &mut out[at..at + c.len()]);
                        at += c.len();
                    }
                }
                f(&scratch[..n * out_w]);
            }
        };
        if let Some(blocks) = &self.blocks {
            let row_bytes = w.div_ceil(32) * Q8_BLOCK;
            let mut full = vec![0f32; row_bytes / Q8_BLOCK * 32];
            let mut last = usize::MAX;
            run(&mut |r, c, out| {
                if r != last {
                    let row = &blocks[r * row_bytes..(r + 1) * row_bytes];
                    for (b, o) in row.chunks_exact(Q8_BLOCK).zip(full.chunks_exact_mut(32)) {
                        let b: &[u8; Q8_BLOCK] = b.try_into().expect("one block");
                        localglm_quants::dequant::q8_0(b, o.try_into().expect("32 values"));
                    }
                    last = r;
                }
                out.copy_from_slice(&full[c]);
            });
            return Ok(());
        }
        let Some(buf) = &self.buf else {
            return Ok(());
        };
        {
            let (storage, layout) = buf.storage_and_layout();
            if let Some((start, _)) = layout.contiguous_offsets() {
                let at = |r: usize, c: &std::ops::Range<usize>| {
                    start + r * w + c.start..start + r * w + c.end
                };
                match &*storage {
                    Storage::Cpu(CpuStorage::F32(v)) => {
                        run(&mut |r, c, out| out.copy_from_slice(&v[at(r, &c)]));
                        return Ok(());
                    }
                    Storage::Cpu(CpuStorage::F16(v)) => {
                        run(&mut |r, c, out| v[at(r, &c)].convert_to_f32_slice(out));
                        return Ok(());
                    }
                    Storage::Cpu(CpuStorage::BF16(v)) => {
                        run(&mut |r, c, out| v[at(r, &c)].convert_to_f32_slice(out));
                        return Ok(());
                    }
                    _ => {}
                }
            }
        }
        let all = self.view(device)?.flatten_all()?.to_vec1::<f32>()?;
        run(&mut |r, c, out| out.copy_from_slice(&all[r * w + c.start..r * w + c.end]));
        Ok(())
    }

    /// Runs `f` on the filled rows of a contiguous f16 CPU cache as raw bits (`len × width`
    /// values, read in place) and the row width; `false` (and `f` not run) for any other cache.
    pub(crate) fn with_f16_bits(&self, f: impl FnOnce(&[u16], usize)) -> bool {
        use candle_core::{CpuStorage, Storage};
        use half::slice::HalfFloatSliceExt;
        let Some(buf) = self.buf.as_ref().filter(|_| self.blocks.is_none()) else {
            return false;
        };
        let (storage, layout) = buf.storage_and_layout();
        let (Some((start, _)), Storage::Cpu(CpuStorage::F16(v))) =
            (layout.contiguous_offsets(), &*storage)
        else {
            return false;
        };
        f(
            v[start..start + self.len * self.width].reinterpret_cast(),
            self.width,
        );
        true
    }

    /// CPU f16/bf16 caches: one vectorized slice conversion (F16C where present) instead of
    /// candle's per-element conversion, which profiling showed at ~15 % of decode on a small
    /// model with a few hundred tokens of context.
    fn cpu_half_view(&self, buf: &Tensor) -> candle_core::Result<Option<Tensor>> {
        self.half_rows(buf)
            .map(|rows| Tensor::from_vec(rows, (self.len, self.width), buf.device()))
            .transpose()
    }

    /// The filled rows of a contiguous f16/bf16 CPU buffer as f32 (`None` for anything else).
    fn half_rows(&self, buf: &Tensor) -> Option<Vec<f32>> {
        use candle_core::{CpuStorage, Storage};
        use half::slice::HalfFloatSliceExt;
        let (storage, layout) = buf.storage_and_layout();
        let (start, _) = layout.contiguous_offsets()?;
        let range = start..start + self.len * self.width;
        let half = |v: &[half::f16]| {
            let mut out = vec![0f32; range.len()];
            v[range.clone()].convert_to_f32_slice(&mut out);
            out
        };
        let brain = |v: &[half::bf16]| {
            let mut out = vec![0f32; range.len()];
            v[range.clone()].convert_to_f32_slice(&mut out);
            out
        };
        match &*storage {
            Storage::Cpu(CpuStorage::F16(v)) => Some(half(v)),
            Storage::Cpu(CpuStorage::BF16(v)) => Some(brain(v)),
            _ => None,
        }
    }

    /// Bytes held (the allocated capacity, not only the filled rows).
    pub(crate) fn bytes(&self) -> usize {
        let rows = self
            .buf
            .as_ref()
            .map_or(0, |b| b.elem_count() * b.dtype().size_in_bytes());
        rows + self.blocks.as_ref().map_or(0, Vec::capacity)
    }

    /// A new buffer holding a copy of the first `len` rows.
    pub(crate) fn fork(&self, len: usize) -> candle_core::Result<Self> {
        let len = len.min(self.len);
        let mut out = Self {
            buf: None,
            blocks: self
                .blocks
                .as_ref()
                .map(|b| b[..len * self.width.div_ceil(32) * Q8_BLOCK].to_vec()),
            len: 0,
            width: self.width,
            dtype: self.dtype,
        };
        if out.blocks.is_some() {
            out.len = len;
        } else if let (Some(buf), true) = (&self.buf, len > 0) {
            out.append(&buf.narrow(0, 0, len)?)?;
        }
        Ok(out)
    }

    pub(crate) fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
        if let Some(blocks) = &mut self.blocks {
            blocks.truncate(self.len * self.width.div_ceil(32) * Q8_BLOCK);
        }
    }
}

/// Appends 32 values as one q8_0 block, rounded as llama.cpp's reference quantizer does
/// (scale = max |x| / 127, values rounded half away from zero).
fn quantize_q8_0(x: &[f32], out: &mut Vec<u8>) {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d > 0.0 { 1.0 / d } else { 0.0 };
    out.extend_from_slice(&half::f16::from_f32(d).to_le_bytes());
    out.extend(x.iter().map(|v| ((v * id).round() as i8) as u8));
}

#[derive(Debug)]
pub(crate) struct LayerCache {
    pub(crate) kv: GrowBuf,
    pub(crate) idx_k: Option<GrowBuf>,
}

/// Per-sequence state: the latent KV cache of every layer and the indexer keys of full layers.
pub struct KvCache {
    pub(crate) layers: Vec<LayerCache>,
    pub(crate) len: usize,
    /// The same caches on the GPU, when the model runs there (then `layers` stay empty).
    pub(crate) device: Option<crate::gpu_ops::DeviceKv>,
    /// The MTP block's cache, when the model drafts with it.
    pub(crate) mtp: Option<crate::mtp::MtpCache>,
}

impl std::fmt::Debug for KvCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvCache")
            .field("len", &self.len)
            .field("on_device", &self.device.is_some())
            .finish()
    }
}

impl KvCache {
    /// Tokens held.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes this cache holds, on the host and on the device (allocated capacity: what keeping
    /// it costs).
    pub fn bytes(&self) -> usize {
        let host: usize = self
            .layers
            .iter()
            .map(|l| l.kv.bytes() + l.idx_k.as_ref().map_or(0, GrowBuf::bytes))
            .sum();
        host + self.device.as_ref().map_or(0, |d| d.bytes())
            + self.mtp.as_ref().map_or(0, |m| m.bytes())
    }

    /// Where a cut to `len` tokens really lands: with an MTP block whose input row at
    /// `len − 1` is not kept, one token earlier (the next pass re-creates that row), so the
    /// tokens kept may be one fewer than asked. Returns (tokens, MTP pairs) to keep.
    fn cut_point(&self, len: usize) -> (usize, usize) {
        let len = len.min(self.len);
        if len == self.len {
            return (len, usize::MAX);
        }
        match &self.mtp {
            Some(m) if len > 0 && !m.has_row(len - 1) => (len - 1, len - 1),
            _ => (len, len.saturating_sub(1)),
        }
    }

    /// A new cache holding a copy of this one's first `len` tokens (this one is unchanged), so
    /// two conversations that share a prefix each keep their own cache. With an MTP block it
    /// may hold one token fewer (see [`KvCache::len`] of the result).
    pub fn fork(&self, len: usize) -> Result<KvCache, crate::GlmError> {
        let (len, pairs) = self.cut_point(len);
        let layers = self
            .layers
            .iter()
            .map(|l| {
                Ok(LayerCache {
                    kv: l.kv.fork(len)?,
                    idx_k: l.idx_k.as_ref().map(|k| k.fork(len)).transpose()?,
                })
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        let device = self.device.as_ref().map(|d| d.fork(len)).transpose()?;
        let mtp = self.mtp.as_ref().map(|m| m.fork(pairs, len)).transpose()?;
        Ok(KvCache {
            layers,
            len,
            device,
            mtp,
        })
    }

    /// Drops everything after the first `len` tokens (prompt-prefix reuse, rejected drafts).
    /// With an MTP block it may keep one token fewer (see [`KvCache::len`] afterwards).
    pub fn truncate(&mut self, len: usize) {
        let (len, pairs) = self.cut_point(len);
        if let Some(m) = &mut self.mtp {
            m.follow(len, pairs);
        }
        self.len = len;
        for l in &mut self.layers {
            l.kv.truncate(len);
            if let Some(k) = &mut l.idx_k {
                k.truncate(len);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn q8_0_rows_round_trip_within_half_a_step_and_truncate() {
        let width = 48; // one whole block and one padded
        let mut buf = GrowBuf::new(width, KvType::Q8_0);
        let values: Vec<f32> = (0..3 * width)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let rows = Tensor::from_vec(values.clone(), (3, width), &Device::Cpu).unwrap();
        buf.append(&rows.narrow(0, 0, 2).unwrap()).unwrap();
        buf.append(&rows.narrow(0, 2, 1).unwrap()).unwrap();
        let floats = |buf: &GrowBuf| -> Vec<f32> {
            let t = buf.view(&Device::Cpu).unwrap();
            t.flatten_all().unwrap().to_vec1().unwrap()
        };
        let got = floats(&buf);
        assert_eq!(got.len(), values.len());
        let blocks_of = |v: &[f32]| -> Vec<Vec<f32>> {
            v.chunks(width)
                .flat_map(|r| r.chunks(32).map(<[f32]>::to_vec))
                .collect()
        };
        for (block, (g, v)) in blocks_of(&got).iter().zip(blocks_of(&values)).enumerate() {
            let step = v.iter().fold(0f32, |m, x| m.max(x.abs())) / 127.0;
            for (a, b) in g.iter().zip(v) {
                // Half a step, plus the f16 rounding of the scale (≤ 127 · 2⁻¹¹ steps).
                assert!((a - b).abs() <= step * 0.57, "block {block}: {a} vs {b}");
            }
        }
        // About half the bytes of f16.
        assert_eq!(buf.blocks.as_ref().unwrap().len(), 3 * 2 * Q8_BLOCK);
        buf.truncate(1);
        buf.append(&rows.narrow(0, 2, 1).unwrap()).unwrap();
        let again = floats(&buf);
        assert_eq!(&again[..width], &got[..width]);
        assert_eq!(&again[width..], &got[2 * width..]);
    }
}
