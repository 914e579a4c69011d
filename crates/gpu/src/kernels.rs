//! Weight products on the GPU for every GGML type a GLM file holds: `matmul` (one token is the
//! decode mat-vec, many tokens the prefill product) and `matvec_indexed` (MoE experts picked by
//! ids that live on the device).
//!
//! Invariants:
//! * Weights stay in their GGUF block types; a kernel decodes 32 weights at a time to f32 and
//!   multiplies by f32 activations, so a result differs from the exact f32 product of the
//!   dequantized weights only by f32 rounding of the sums.
//! * Each type's decoder (`shaders/decode/*.wgsl`) follows the CPU dequantizer of
//!   `localglm_quants::dequant` formula for formula; `tests/kernels.rs` checks every type.
//! * A [`QWeight`] is split into chunks of whole rows, each within the binding limit; each
//!   dispatch covers one chunk and writes only that chunk's rows.

mod source;
mod stack;

pub(crate) use source::REDUCE_SHARED;
pub use source::{all_shader_sources, Kernel};
use source::{
    decoder, is_float, kernel_checks, rows_per_wg, shader_source, stream_read_source, WG,
};

use crate::{check_len, Buffer, Gpu, GpuError};
use localglm_quants::GgmlType;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Tokens per workgroup in the tile kernels (`TT` in `kernel_tile.wgsl`).
const TT: usize = 8;
/// Rows per workgroup in the tile kernels (`RT`: WG / GT, GT = 8 groups per tile).
const TILE_ROWS: usize = WG as usize / 8;
/// Rows and tokens per workgroup in the matrix-unit kernels (`CR`, `CT` in `kernel_coop.wgsl`).
const COOP_TILE: usize = 32;
/// Tokens from which a product runs on the matrix units (`Matrices::Auto`): half a tile. A
/// choice, not a measurement (no GPU with them has run both kernels side by side yet); a MoE
/// product uses them when its experts average half that many slots.
pub(crate) const COOP_MIN_TOKENS: usize = 16;
/// The weight types with GPU kernels: the 22 the CPU kernels handle.
pub const GPU_TYPES: [GgmlType; 22] = GgmlType::SUPPORTED;

/// `Params` in `prelude.wgsl`: seventeen u32, padded to a multiple of 16 bytes (the ops' own
/// parameters, `OpParams`, are the first 64 bytes of the same slot).
pub(crate) const PARAMS_BYTES: u64 = 80;

#[derive(Debug, Clone, Copy, Default)]
struct Params {
    rows: u32,
    cols: u32,
    row_bytes: u32,
    n: u32,
    g0: u32,
    g1: u32,
    x_stride: u32,
    y_stride: u32,
    x_off: u32,
    y_off: u32,
    wg_x: u32,
    groups: u32,
    x_div: u32,
    w_skew: u32,
    accumulate: bool,
    experts: u32,
    x_up: u32,
}

impl Params {
    fn bytes(&self) -> Vec<u8> {
        [
            self.rows,
            self.cols,
            self.row_bytes,
            self.n,
            self.g0,
            self.g1,
            self.x_stride,
            self.y_stride,
            self.x_off,
            self.y_off,
            self.wg_x,
            self.groups,
            self.x_div.max(1),
            self.w_skew,
            self.accumulate as u32,
            self.experts,
            self.x_up,
            0,
            0,
            0,
        ]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
    }
}

/// Rows `g0..g1` of a weight (global row numbers: `expert · rows + row`) in one buffer,
/// starting `skew` bytes into it (0 unless the buffer is host pages read in place).
#[derive(Debug)]
struct Chunk {
    buf: wgpu::Buffer,
    g0: usize,
    g1: usize,
    skew: usize,
}

/// A weight on the device in its GGUF block type: `experts` stacked `[rows × cols]` matrices
/// (1 for an ordinary weight), in chunks of whole rows.
#[derive(Debug)]
pub struct QWeight {
    ty: GgmlType,
    experts: usize,
    rows: usize,
    cols: usize,
    row_bytes: usize,
    chunks: Vec<Chunk>,
    in_place: bool,
    /// Whether its many-token products may run on the matrix units (f16 inputs).
    matrices: bool,
}

impl QWeight {
    /// Lets (the default) or forbids its many-token products on the device's matrix units,
    /// whose inputs are f16: a model that asks for exact f32 products forbids them.
    pub fn set_matrices(&mut self, allowed: bool) {
        self.matrices = allowed;
    }

    /// Whether its products may run on the matrix units: allowed, and quantized.
    pub(crate) fn matrices_allowed(&self) -> bool {
        self.matrices && !is_float(self.ty)
    }

    /// Whether the device reads (some chunks of) the weight in place from host memory: the
    /// bytes it was made from must then outlive it.
    pub fn in_place(&self) -> bool {
        self.in_place
    }

    pub fn ty(&self) -> GgmlType {
        self.ty
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn experts(&self) -> usize {
        self.experts
    }

    /// Buffers the weight is split into.
    pub fn chunks(&self) -> usize {
        self.chunks.len()
    }

    /// Bytes on the device.
    pub fn bytes(&self) -> u64 {
        (self.experts * self.rows * self.row_bytes) as u64
    }
}

impl Gpu {
    /// Copies a GGUF weight (`experts` stacked `[rows × cols]` matrices of type `ty`) to the
    /// device, split into chunks of whole rows within the binding limit.
    pub fn upload_weight(
        &self,
        name: &str,
        ty: GgmlType,
        data: &[u8],
        experts: usize,
        rows: usize,
        cols: usize,
    ) -> Result<QWeight, GpuError> {
        // SAFETY: without `in_place` every byte is copied before this returns.
        #[allow(unsafe_code)]
        unsafe {
            self.place_weight(name, ty, data, experts, rows, cols, false)
        }
    }

    /// [`Gpu::upload_weight`], but where the device shares host memory and can read it in
    /// place (Metal on Apple's unified memory, see [`crate::HostWrap`]) the weight is not
    /// copied: its chunks are device buffers over the host pages holding `data`.
    ///
    /// # Safety
    /// `data` must stay mapped and unchanged for as long as the returned weight (and any work
    /// recorded with it) lives — e.g. a read-only memory map of the GGUF that outlives it.
    #[allow(unsafe_code)]
    pub unsafe fn upload_weight_in_place(
        &self,
        name: &str,
        ty: GgmlType,
        data: &[u8],
        experts: usize,
        rows: usize,
        cols: usize,
    ) -> Result<QWeight, GpuError> {
        // SAFETY: the caller keeps `data` alive and unchanged.
        unsafe { self.place_weight(name, ty, data, experts, rows, cols, true) }
    }

    /// # Safety
    /// With `in_place`, as [`Gpu::upload_weight_in_place`].
    #[allow(clippy::too_many_arguments, unsafe_code)]
    unsafe fn place_weight(
        &self,
        name: &str,
        ty: GgmlType,
        data: &[u8],
        experts: usize,
        rows: usize,
        cols: usize,
        in_place: bool,
    ) -> Result<QWeight, GpuError> {
        let row_bytes = weight_row_bytes(ty, cols)?;
        let total_rows = experts * rows;
        check_len("weight bytes", total_rows * row_bytes, data.len())?;
        // Host pages: each chunk's buffer covers its rows' whole pages, so up to two pages of
        // the binding are not rows.
        // (A device that wraps in place lays out only the weights it may wrap that way.)
        let host = self.host_pages().filter(|h| in_place || !h.in_place);
        let room = self
            .max_binding
            .saturating_sub(host.map_or(0, |h| 2 * h.page as u64));
        if row_bytes as u64 > room {
            return Err(GpuError::Shape {
                what: "weight row bytes (above the binding limit)",
                expected: room as usize,
                actual: row_bytes,
            });
        }
        let per_chunk = ((room / row_bytes as u64) as usize).max(1);
        let mut chunks = Vec::new();
        let mut g0 = 0;
        // Wrap while the device accepts; once it refuses a range, copy the rest.
        let mut try_wrap = in_place && host.is_some_and(|h| h.in_place);
        let mut any_wrapped = false;
        while g0 < total_rows {
            let g1 = (g0 + per_chunk).min(total_rows);
            let bytes = &data[g0 * row_bytes..g1 * row_bytes];
            let (buf, skew) = match host {
                Some(h) => {
                    let r = crate::host::page_range(bytes, h.page);
                    // SAFETY: the caller keeps `data` (so these pages) alive when `in_place`.
                    let wrapped = if try_wrap {
                        unsafe { self.wrap_host_pages(name, &r) }
                    } else {
                        None
                    };
                    match wrapped {
                        Some(buf) => {
                            any_wrapped = true;
                            (buf, r.skew)
                        }
                        None => {
                            try_wrap = false;
                            (
                                self.copy_to_device(name, bytes, r.skew, r.len as u64)?,
                                r.skew,
                            )
                        }
                    }
                }
                None => {
                    let size = (bytes.len() as u64).next_multiple_of(4);
                    (self.copy_to_device(name, bytes, 0, size)?, 0)
                }
            };
            chunks.push(Chunk { buf, g0, g1, skew });
            g0 = g1;
        }
        Ok(QWeight {
            ty,
            experts,
            rows,
            cols,
            row_bytes,
            chunks,
            in_place: any_wrapped,
            matrices: true,
        })
    }

    /// A new storage buffer of `size` bytes holding `bytes` at `at` (zeros elsewhere).
    fn copy_to_device(
        &self,
        name: &str,
        bytes: &[u8],
        at: usize,
        size: u64,
    ) -> Result<wgpu::Buffer, GpuError> {
        let buf = self.create_buffer(name, size, wgpu::BufferUsages::STORAGE, true)?;
        crate::fill_mapped(&buf, bytes, at)?;
        self.counters
            .upload_bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(buf)
    }

    /// The compiled pipeline for `(ty, kernel)`, compiled on first use.
    pub(crate) fn pipeline(
        &self,
        ty: GgmlType,
        kernel: Kernel,
    ) -> Result<Arc<wgpu::ComputePipeline>, GpuError> {
        let mut cache = self.pipelines.lock().expect("pipeline cache");
        if let Some(p) = cache.get(&(ty, kernel)) {
            return Ok(p.clone());
        }
        let what = format!("{ty} {kernel:?}");
        let src = shader_source(ty, kernel, self.subgroups).ok_or(GpuError::Unsupported(ty))?;
        let src = self.with_fault(kernel, src);
        let p = self.compile(&what, src, &self.pipeline_layout, kernel_checks())?;
        cache.insert((ty, kernel), p.clone());
        Ok(p)
    }

    /// The bandwidth at which a compute shader of this backend streams a buffer of `bytes` (at
    /// most one binding)
    /// (16-byte loads, each invocation striding over the buffer; best of `reps` passes, eight
    /// per submission, timed by the GPU where it can): the limit a weight product through wgpu can reach on this device.
    pub fn read_bandwidth(&self, bytes: usize, reps: usize) -> Result<f64, GpuError> {
        const PER_SUBMISSION: usize = 8;
        let src = stream_read_source();
        let pipeline = self.compile(
            "stream read",
            src,
            &self.pipeline_layout,
            wgpu::ShaderRuntimeChecks::checked(),
        )?;
        // One binding (the largest a device allows is enough to time it).
        let bytes = bytes.min(self.max_binding as usize);
        let data = self.zeros((bytes / 16).max(1) * 4)?;
        let (x, out) = (self.zeros(1)?, self.zeros(1)?);
        let params = Params::default().bytes();
        let mut best = f64::MAX;
        for i in 0..=reps.max(1) {
            let t = std::time::Instant::now();
            let timed = self.gpu_time(|| {
                for _ in 0..PER_SUBMISSION {
                    self.record(
                        &pipeline,
                        &self.layout,
                        &[&data.buf, &x.buf, &out.buf, &self.tables, &self.dummy_ids],
                        &params,
                        (4096, 1, 1),
                    );
                }
                Ok(())
            })?;
            let secs = match timed {
                Some(s) => s,
                None => {
                    self.read_f32_range(&out, 0, 1)?;
                    t.elapsed().as_secs_f64()
                }
            };
            // The first pass warms the device up.
            if i > 0 {
                best = best.min(secs);
            }
        }
        Ok((data.len() * 4 * PER_SUBMISSION) as f64 / best)
    }

    /// Compiles every kernel of every type now (tests; a load can warm up this way).
    pub fn compile_all(&self) -> Result<(), GpuError> {
        for ty in GPU_TYPES {
            for k in Kernel::ALL {
                self.pipeline(ty, k)?;
            }
            if let Some(size) = self.matrix_size().filter(|_| !is_float(ty)) {
                for grouped in [false, true] {
                    self.pipeline(ty, Kernel::Coop { size, grouped })?;
                }
            }
        }
        Ok(())
    }

    /// Records `y[y_off + t·rows ..][..rows] = W · x[x_off + t·cols ..][..cols]` for `n` tokens.
    pub fn matmul(
        &self,
        w: &QWeight,
        x: &Buffer,
        x_off: usize,
        n: usize,
        y: &Buffer,
        y_off: usize,
    ) -> Result<(), GpuError> {
        self.matmul_into(w, (x, x_off, w.cols), n, y, y_off, false, 0)
    }

    /// [`Gpu::matmul`] on activation rows `x_stride` floats apart (a view of every token's
    /// first part of a wider row, e.g. one product's outputs in a stacked weight's).
    #[allow(clippy::too_many_arguments)]
    pub fn matmul_strided(
        &self,
        w: &QWeight,
        x: &Buffer,
        x_off: usize,
        x_stride: usize,
        n: usize,
        y: &Buffer,
        y_off: usize,
    ) -> Result<(), GpuError> {
        if x_stride < w.cols {
            return Err(GpuError::Shape {
                what: "activation row stride (at least the weight's columns)",
                expected: w.cols,
                actual: x_stride,
            });
        }
        self.matmul_into(w, (x, x_off, x_stride), n, y, y_off, false, 0)
    }

    /// [`Gpu::matmul`] adding to `y` instead of overwriting it (`y += W·x`): a product and the
    /// residual add that follows it in one dispatch.
    pub fn matmul_add(
        &self,
        w: &QWeight,
        x: &Buffer,
        x_off: usize,
        n: usize,
        y: &Buffer,
        y_off: usize,
    ) -> Result<(), GpuError> {
        self.matmul_into(w, (x, x_off, w.cols), n, y, y_off, true, 0)
    }

    /// One token's FFN output added to `y`: `y[y_off..][..rows] += W · (silu(g) ∘ u)` with the
    /// gate `g` at `gu[gate_off..][..cols]` and the up product `u` at `gu[up_off..][..cols]` —
    /// SwiGLU computed where the mat-vec stages its activations, so a decoded token's FFN needs
    /// no separate SwiGLU dispatch (nor its output's write and read). The same arithmetic as
    /// [`Gpu::silu_mul`] then [`Gpu::matmul_add`], so the same result.
    #[allow(clippy::too_many_arguments)]
    pub fn matvec_swiglu_add(
        &self,
        w: &QWeight,
        gu: &Buffer,
        gate_off: usize,
        up_off: usize,
        y: &Buffer,
        y_off: usize,
    ) -> Result<(), GpuError> {
        let x_up = swiglu_up(gate_off, up_off, w.cols)?;
        fits("up", gu.len(), up_off + w.cols)?;
        self.matmul_into(w, (gu, gate_off, w.cols), 1, y, y_off, true, x_up)
    }

    #[allow(clippy::too_many_arguments)]
    fn matmul_into(
        &self,
        w: &QWeight,
        (x, x_off, x_stride): (&Buffer, usize, usize),
        n: usize,
        y: &Buffer,
        y_off: usize,
        accumulate: bool,
        x_up: usize,
    ) -> Result<(), GpuError> {
        if w.experts != 1 {
            return Err(GpuError::Shape {
                what: "matmul on a stacked expert weight",
                expected: 1,
                actual: w.experts,
            });
        }
        if n == 0 {
            return Ok(());
        }
        fits("x", x.len(), x_off + (n - 1) * x_stride + w.cols)?;
        fits("y", y.len(), y_off + n * w.rows)?;
        // One token: the mat-vec kernel, R rows per workgroup.
        let (kernel, per_wg, tt) = if n == 1 {
            (Kernel::Rows, rows_per_wg(), 1)
        } else if let Some(size) = self.coop_for(w, n, false) {
            let k = Kernel::Coop {
                size,
                grouped: false,
            };
            (k, COOP_TILE, COOP_TILE)
        } else {
            (Kernel::Plain, TILE_ROWS, TT)
        };
        let pipeline = self.pipeline(w.ty, kernel)?;
        let tiles = n.div_ceil(tt);
        for chunk in &w.chunks {
            let count = chunk.g1 - chunk.g0;
            let (wg_x, wg_y) = self.grid(count.div_ceil(per_wg));
            let p = Params {
                rows: w.rows as u32,
                cols: w.cols as u32,
                row_bytes: w.row_bytes as u32,
                n: n as u32,
                g0: chunk.g0 as u32,
                g1: chunk.g1 as u32,
                x_stride: x_stride as u32,
                y_stride: w.rows as u32,
                x_off: x_off as u32,
                y_off: y_off as u32,
                wg_x,
                groups: w.cols.div_ceil(32) as u32,
                x_div: 1,
                w_skew: chunk.skew as u32,
                accumulate,
                experts: 1,
                x_up: x_up as u32,
            };
            self.dispatch(
                &pipeline,
                &chunk.buf,
                x,
                y,
                None,
                &p,
                (wg_x, wg_y, tiles as u32),
            )?;
            self.count_matrices(kernel);
            self.counters
                .weight_bytes
                .fetch_add((count * w.row_bytes * tiles) as u64, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Records the MoE product: for each of `slots` slots, `y[y_off + s·rows ..][..rows] =
    /// W[ids[s]] · x_s`, where `x_s` starts at `x_off + s·cols` when `x_per_slot`, else at
    /// `x_off` for every slot. Ids outside `0..experts` leave their slot's output unwritten.
    #[allow(clippy::too_many_arguments)]
    pub fn matvec_indexed(
        &self,
        w: &QWeight,
        ids: &Buffer,
        slots: usize,
        x: &Buffer,
        x_off: usize,
        x_per_slot: bool,
        y: &Buffer,
        y_off: usize,
    ) -> Result<(), GpuError> {
        let x_div = if x_per_slot { 1 } else { 0 };
        self.matvec_indexed_grouped(w, ids, slots, x, x_off, w.cols, x_div, y, y_off)
    }

    /// [`Gpu::matvec_indexed`] where activation rows are `x_stride` floats apart and `x_div`
    /// consecutive slots share one row (slot `s` reads row `s / x_div`: a token's k experts), or
    /// with `x_div == 0` all slots share the row at `x_off`.
    #[allow(clippy::too_many_arguments)]
    pub fn matvec_indexed_grouped(
        &self,
        w: &QWeight,
        ids: &Buffer,
        slots: usize,
        x: &Buffer,
        x_off: usize,
        x_stride: usize,
        x_div: usize,
        y: &Buffer,
        y_off: usize,
    ) -> Result<(), GpuError> {
        let x = (x, x_off, x_stride, x_div, 0);
        self.moe_product(w, ids, false, slots, x, y, y_off)
    }

    /// The MoE down product of a few tokens' slots from their gate and up products: slot `s`
    /// multiplies `W[ids[s]]` by `silu(g_s) ∘ u_s`, `g_s` at `gu[gate_off + s·x_stride ..]` and
    /// `u_s` `up_rel` floats after it (see [`Gpu::matvec_swiglu_add`]; the same result as
    /// [`Gpu::silu_mul`] then [`Gpu::matvec_indexed_grouped`] with `x_div` 1).
    #[allow(clippy::too_many_arguments)]
    pub fn matvec_indexed_swiglu(
        &self,
        w: &QWeight,
        ids: &Buffer,
        slots: usize,
        gu: &Buffer,
        gate_off: usize,
        x_stride: usize,
        up_rel: usize,
        y: &Buffer,
        y_off: usize,
    ) -> Result<(), GpuError> {
        let x_up = swiglu_up(0, up_rel, w.cols)?;
        if slots > 0 {
            fits(
                "up",
                gu.len(),
                gate_off + (slots - 1) * x_stride + x_up + w.cols,
            )?;
        }
        let x = (gu, gate_off, x_stride, 1, x_up);
        self.moe_product(w, ids, false, slots, x, y, y_off)
    }

    /// [`Gpu::matvec_indexed_grouped`] from the slots grouped by expert ([`Gpu::bucket`] of the
    /// ids into `groups`): the same results, but each expert's rows are decoded once per 8 of
    /// its slots rather than once per slot — the MoE product for a prefill, where a batch's
    /// slots share experts.
    #[allow(clippy::too_many_arguments)]
    pub fn matvec_by_expert(
        &self,
        w: &QWeight,
        groups: &Buffer,
        slots: usize,
        x: &Buffer,
        x_off: usize,
        x_stride: usize,
        x_div: usize,
        y: &Buffer,
        y_off: usize,
    ) -> Result<(), GpuError> {
        let x = (x, x_off, x_stride, x_div, 0);
        self.moe_product(w, groups, true, slots, x, y, y_off)
    }

    #[allow(clippy::too_many_arguments)]
    fn moe_product(
        &self,
        w: &QWeight,
        ids: &Buffer,
        by_expert: bool,
        slots: usize,
        (x, x_off, x_stride, x_div, x_up): (&Buffer, usize, usize, usize, usize),
        y: &Buffer,
        y_off: usize,
    ) -> Result<(), GpuError> {
        if slots == 0 {
            return Ok(());
        }
        let x_per_slot = x_div > 0;
        if by_expert {
            fits("expert groups", ids.len(), w.experts + 1 + slots)?;
        } else {
            fits("ids", ids.len(), slots)?;
        }
        let x_need = if x_per_slot {
            (slots.div_ceil(x_div) - 1) * x_stride + w.cols
        } else {
            w.cols
        };
        fits("x", x.len(), x_off + x_need)?;
        fits("y", y.len(), y_off + slots * w.rows)?;
        // By expert on the matrix units where the experts average half their minimum batch.
        let coop = by_expert
            .then(|| self.coop_for(w, slots.div_ceil(w.experts) * 2, true))
            .flatten();
        let (kernel, z, per_wg, tt) = match coop {
            Some(size) => {
                let k = Kernel::Coop {
                    size,
                    grouped: true,
                };
                (k, w.experts, COOP_TILE, COOP_TILE)
            }
            None if by_expert => (Kernel::Grouped, w.experts, TILE_ROWS, TT),
            None => (Kernel::RowsIndexed, slots, rows_per_wg(), 1),
        };
        let pipeline = self.pipeline(w.ty, kernel)?;
        let (wg_x, wg_y) = self.grid(w.rows.div_ceil(per_wg));
        for chunk in &w.chunks {
            let p = Params {
                rows: w.rows as u32,
                cols: w.cols as u32,
                row_bytes: w.row_bytes as u32,
                n: slots as u32,
                g0: chunk.g0 as u32,
                g1: chunk.g1 as u32,
                x_stride: if x_per_slot { x_stride as u32 } else { 0 },
                y_stride: w.rows as u32,
                x_off: x_off as u32,
                y_off: y_off as u32,
                wg_x,
                groups: w.cols.div_ceil(32) as u32,
                x_div: x_div.max(1) as u32,
                w_skew: chunk.skew as u32,
                accumulate: false,
                experts: w.experts as u32,
                x_up: x_up as u32,
            };
            self.dispatch(
                &pipeline,
                &chunk.buf,
                x,
                y,
                Some(ids),
                &p,
                (wg_x, wg_y, z as u32),
            )?;
            self.count_matrices(kernel);
        }
        // Indexed: each slot reads one expert's rows, whichever chunk holds them. By expert:
        // each expert with slots reads its rows once per tile of them (TT, or 32 on the matrix
        // units) — at most min(slots, experts) + slots / tile reads (counted so: an upper
        // bound, never flattering).
        let reads = if by_expert {
            slots.min(w.experts) + slots / tt
        } else {
            slots
        };
        self.counters
            .weight_bytes
            .fetch_add((reads * w.rows * w.row_bytes) as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Rows spread over x and y of the dispatch grid (x ≤ the per-dimension limit).
    fn grid(&self, rows: usize) -> (u32, u32) {
        let wg_x = (rows as u32).clamp(1, self.max_wg_dim);
        (wg_x, (rows as u32).div_ceil(wg_x))
    }

    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        &self,
        pipeline: &wgpu::ComputePipeline,
        w: &wgpu::Buffer,
        x: &Buffer,
        y: &Buffer,
        ids: Option<&Buffer>,
        p: &Params,
        grid: (u32, u32, u32),
    ) -> Result<(), GpuError> {
        if grid.2 > self.max_wg_dim {
            return Err(GpuError::Shape {
                what: "tokens or slots in one dispatch",
                expected: self.max_wg_dim as usize,
                actual: grid.2 as usize,
            });
        }
        let ids = ids.map_or(&self.dummy_ids, |b| &b.buf);
        self.record(
            pipeline,
            &self.layout,
            &[w, &x.buf, &y.buf, &self.tables, ids],
            &p.bytes(),
            grid,
        );
        Ok(())
    }
}

/// The up product's distance from the gate's, in floats, for the fused SwiGLU (`x_up` in the
/// kernel, where 0 means plain activations): up must come after gate, apart from it.
fn swiglu_up(gate_off: usize, up_off: usize, cols: usize) -> Result<usize, GpuError> {
    if up_off < gate_off + cols {
        return Err(GpuError::Shape {
            what: "up product after the gate product",
            expected: gate_off + cols,
            actual: up_off,
        });
    }
    Ok(up_off - gate_off)
}

/// The bytes of a row of `cols` weights of type `ty`, or why the GPU cannot hold such rows.
fn weight_row_bytes(ty: GgmlType, cols: usize) -> Result<usize, GpuError> {
    if decoder(ty).is_none() {
        return Err(GpuError::Unsupported(ty));
    }
    ty.row_bytes(cols).map_err(|_| GpuError::Shape {
        what: "weight columns (whole blocks)",
        expected: ty.block_elems(),
        actual: cols,
    })
}

fn fits(what: &'static str, len: usize, need: usize) -> Result<(), GpuError> {
    if need > len {
        return Err(GpuError::Shape {
            what,
            expected: need,
            actual: len,
        });
    }
    Ok(())
}
