//! How recorded work reaches the device and results come back: one pending command encoder
//! with an open compute pass, per-dispatch parameters in a uniform ring, cached bind groups,
//! submission, and read-back through one reused staging buffer.

use crate::{kernels, Buffer, Gpu, GpuError};
use std::collections::HashMap;
use std::sync::atomic::Ordering;

/// Uniform slots of one submission: parameters of each dispatch, at aligned offsets.
pub(crate) const PARAM_SLOTS: u64 = 4096;

pub(crate) struct Pending {
    /// The open compute pass, recorded into `encoder`: consecutive dispatches share it (wgpu
    /// orders each dispatch's storage accesses after the previous ones'); a copy or a
    /// submission ends it. (Declared first: dropped before its encoder.)
    pass: Option<wgpu::ComputePass<'static>>,
    encoder: Option<wgpu::CommandEncoder>,
    slot: u64,
    /// Set by [`Gpu::gpu_time`]: the next compute pass writes its start and end timestamps here.
    timer: Option<wgpu::QuerySet>,
}

/// Bind groups by the buffers they bind (kernels bind five, ops six, so the count tells the
/// layout apart), reused while those buffers live: a steady decode binds the same pooled
/// buffers every token. Cleared when it grows past `BIND_CACHE_MAX` and by
/// [`Gpu::release_bindings`] (a cached group keeps its buffers alive).
pub(crate) type BindCache = HashMap<Vec<wgpu::Buffer>, wgpu::BindGroup>;
const BIND_CACHE_MAX: usize = 16_384;

impl Pending {
    pub(crate) fn new() -> Self {
        Self {
            pass: None,
            encoder: None,
            slot: 0,
            timer: None,
        }
    }
}

impl Gpu {
    /// Submits everything recorded so far.
    pub fn flush(&self) {
        let mut p = self.pending.lock().expect("pending lock");
        p.pass = None;
        if let Some(enc) = p.encoder.take() {
            self.queue.submit([enc.finish()]);
            self.counters.submissions.fetch_add(1, Ordering::Relaxed);
        }
        p.slot = 0;
    }

    /// Submits pending work and reads `buf[offset..offset + len]` back.
    pub fn read_f32_range(
        &self,
        buf: &Buffer,
        offset: usize,
        len: usize,
    ) -> Result<Vec<f32>, GpuError> {
        Ok(self
            .read_f32_ranges(&[(buf, offset, len)])?
            .pop()
            .expect("one range"))
    }

    /// Submits pending work and reads several `(buffer, offset, len)` ranges back, in one
    /// submission.
    pub fn read_f32_ranges(
        &self,
        ranges: &[(&Buffer, usize, usize)],
    ) -> Result<Vec<Vec<f32>>, GpuError> {
        for &(buf, offset, len) in ranges {
            if offset + len > buf.len {
                return Err(GpuError::Shape {
                    what: "read range",
                    expected: buf.len,
                    actual: offset + len,
                });
            }
        }
        let size = ranges.iter().map(|r| (r.2 * 4) as u64).sum::<u64>();
        if size == 0 {
            return Ok(ranges.iter().map(|_| Vec::new()).collect());
        }
        // One staging buffer, grown as needed (a read-back allocates nothing in steady state).
        let mut slot = self.staging.lock().expect("staging lock");
        if slot.as_ref().is_none_or(|b| b.size() < size) {
            *slot = Some(self.create_buffer(
                "readback",
                size.next_power_of_two(),
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                false,
            )?);
        }
        // Held until the buffer is unmapped: reads from other threads wait their turn.
        let staging = slot.as_ref().expect("created above").clone();
        {
            let mut p = self.pending.lock().expect("pending lock");
            let enc = self.encoder(&mut p);
            let mut at = 0;
            for &(buf, offset, len) in ranges {
                let bytes = (len * 4) as u64;
                if bytes > 0 {
                    enc.copy_buffer_to_buffer(&buf.buf, (offset * 4) as u64, &staging, at, bytes);
                }
                at += bytes;
            }
        }
        self.flush();
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, ..size, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Lost(e.to_string()))?;
        rx.recv()
            .map_err(|e| GpuError::Lost(e.to_string()))?
            .map_err(|e| GpuError::Lost(e.to_string()))?;
        let view = staging
            .get_mapped_range(..size)
            .map_err(|e| GpuError::Lost(e.to_string()))?;
        let all: Vec<f32> = view
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        drop(view);
        staging.unmap();
        drop(slot);
        self.take_faults()?;
        self.counters
            .readback_bytes
            .fetch_add(size, Ordering::Relaxed);
        let mut rest = &all[..];
        Ok(ranges
            .iter()
            .map(|r| {
                let (one, more) = rest.split_at(r.2);
                rest = more;
                one.to_vec()
            })
            .collect())
    }

    /// The errors wgpu reported outside a scope since the last read-back (work it rejected,
    /// a lost device), as one error; the device goes on with the next work.
    fn take_faults(&self) -> Result<(), GpuError> {
        let faults: Vec<String> = self.faults.lock().expect("faults").drain(..).collect();
        match faults.as_slice() {
            [] => Ok(()),
            [one] => Err(GpuError::Lost(one.clone())),
            [first, more @ ..] => Err(GpuError::Lost(format!(
                "{first} (and {} more errors)",
                more.len()
            ))),
        }
    }

    /// Submits pending work and reads the whole buffer back.
    pub fn read_f32(&self, buf: &Buffer) -> Result<Vec<f32>, GpuError> {
        self.read_f32_range(buf, 0, buf.len)
    }

    /// Records one dispatch: `buffers` bound at 0.., the parameters in the next uniform slot
    /// (bound after them, at a dynamic offset), `grid` workgroups.
    pub(crate) fn record(
        &self,
        pipeline: &wgpu::ComputePipeline,
        layout: &wgpu::BindGroupLayout,
        buffers: &[&wgpu::Buffer],
        params: &[u8],
        grid: (u32, u32, u32),
    ) {
        let mut pending = self.pending.lock().expect("pending lock");
        if pending.slot == PARAM_SLOTS {
            drop(pending);
            self.flush();
            pending = self.pending.lock().expect("pending lock");
        }
        let offset = pending.slot * self.param_align;
        pending.slot += 1;
        self.queue.write_buffer(&self.params, offset, params);
        let bind = self.bind_group(layout, buffers);
        if pending.pass.is_none() {
            let timer = pending.timer.take();
            let pass = self
                .encoder(&mut pending)
                .begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: None,
                    timestamp_writes: timer.as_ref().map(|query_set| {
                        wgpu::ComputePassTimestampWrites {
                            query_set,
                            beginning_of_pass_write_index: Some(0),
                            end_of_pass_write_index: Some(1),
                        }
                    }),
                })
                .forget_lifetime();
            pending.pass = Some(pass);
            self.counters.passes.fetch_add(1, Ordering::Relaxed);
        }
        let pass = pending.pass.as_mut().expect("opened above");
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &bind, &[offset as u32]);
        pass.dispatch_workgroups(grid.0, grid.1, grid.2);
        self.counters.dispatches.fetch_add(1, Ordering::Relaxed);
    }

    /// The bind group of `buffers` and the parameter ring, from the cache or made now.
    fn bind_group(
        &self,
        layout: &wgpu::BindGroupLayout,
        buffers: &[&wgpu::Buffer],
    ) -> wgpu::BindGroup {
        let key: Vec<wgpu::Buffer> = buffers.iter().map(|&b| b.clone()).collect();
        let mut cache = self.binds.lock().expect("bind cache");
        if let Some(b) = cache.get(&key) {
            return b.clone();
        }
        let mut entries: Vec<wgpu::BindGroupEntry<'_>> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        entries.push(wgpu::BindGroupEntry {
            binding: buffers.len() as u32,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &self.params,
                offset: 0,
                size: wgpu::BufferSize::new(kernels::PARAMS_BYTES),
            }),
        });
        let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout,
            entries: &entries,
        });
        self.counters.bind_groups.fetch_add(1, Ordering::Relaxed);
        if cache.len() >= BIND_CACHE_MAX {
            cache.clear();
        }
        cache.insert(key, bind.clone());
        bind
    }

    /// Forgets the cached bind groups, so buffers no longer in use are freed (call after
    /// replacing buffers: a grown cache or scratch buffer).
    pub fn release_bindings(&self) {
        self.binds.lock().expect("bind cache").clear();
    }

    /// Seconds the device spent on the work `record` puts into one compute pass (GPU
    /// timestamps at the pass's start and end; the work is submitted and waited for), or
    /// `None` where the adapter has no timestamp queries — then `record` still runs. For
    /// benchmarks: wall-clock times include the submission and read-back, and on a virtualized
    /// H200 they varied up to 2× between runs.
    pub fn gpu_time(
        &self,
        record: impl FnOnce() -> Result<(), GpuError>,
    ) -> Result<Option<f64>, GpuError> {
        if !self.timestamps {
            record()?;
            return Ok(None);
        }
        self.flush();
        let set = self.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("timer"),
            ty: wgpu::QueryType::Timestamp,
            count: 2,
        });
        self.pending.lock().expect("pending lock").timer = Some(set.clone());
        let recorded = record();
        let resolve = self.create_buffer(
            "timer",
            16,
            wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            false,
        )?;
        let out = self.zeros(4)?;
        {
            let mut p = self.pending.lock().expect("pending lock");
            p.timer = None;
            let enc = self.encoder(&mut p);
            enc.resolve_query_set(&set, 0..2, &resolve, 0);
            enc.copy_buffer_to_buffer(&resolve, 0, &out.buf, 0, 16);
        }
        recorded?;
        let words = self.read_f32(&out)?;
        let tick =
            |i: usize| words[2 * i].to_bits() as u64 | (words[2 * i + 1].to_bits() as u64) << 32;
        let ticks = tick(1).saturating_sub(tick(0));
        Ok(Some(
            ticks as f64 * self.queue.get_timestamp_period() as f64 * 1e-9,
        ))
    }

    /// The pending encoder, for a command outside compute passes (the open pass ends).
    pub(crate) fn encoder<'a>(&self, p: &'a mut Pending) -> &'a mut wgpu::CommandEncoder {
        p.pass = None;
        p.encoder.get_or_insert_with(|| {
            self.device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("localglm"),
                })
        })
    }
}
