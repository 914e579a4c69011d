//! `localglm bench quants`: every type's mat-vec against this machine's memory bandwidth.

use anyhow::{bail, Result};
use localglm_quants::bench::{bench_matvec, measure_bandwidth, Size};
use localglm_quants::GgmlType;

pub fn quants(
    mib: usize,
    reps: usize,
    names: &[String],
    shape: Option<&str>,
    batch: usize,
) -> Result<()> {
    let mut types = Vec::new();
    for n in names {
        match GgmlType::from_name(&n.to_uppercase()) {
            Some(t) if t.is_supported() => types.push(t),
            _ => bail!("unknown or unsupported type {n}"),
        }
    }
    if types.is_empty() {
        types = GgmlType::SUPPORTED.to_vec();
    }
    let size = match shape {
        None => Size::Bytes(mib << 20),
        Some(s) => {
            let parsed = s
                .split_once('x')
                .and_then(|(r, c)| Some((r.parse().ok()?, c.parse().ok()?)));
            match parsed {
                Some((rows, cols)) => Size::Shape { rows, cols },
                None => bail!("--shape wants ROWSxCOLS, e.g. 4096x14336"),
            }
        }
    };
    let threads = rayon::current_num_threads();
    let bytes = mib << 20;
    eprintln!("measuring memory bandwidth ({mib} MiB buffers, {threads} threads) ...");
    let bw = measure_bandwidth(bytes, reps);
    println!(
        "memory bandwidth: copy {:.2} GB/s (read+write), read {:.2} GB/s — {threads} threads",
        bw.copy_bytes_per_s / 1e9,
        bw.read_bytes_per_s / 1e9
    );
    println!();
    // A batched product reuses every weight `batch` times: compute, not bandwidth, bounds it,
    // so only multiply-adds per second are reported for it.
    if batch > 1 {
        println!("batched product, {batch} activation vectors; multiply-adds per second\n");
        println!("| type | bits/w | matrix | MAC/s |");
        println!("|---|---:|---:|---:|");
    } else {
        println!(
            "| type | bits/w | matrix | weights/s | GB/s | ratio to copy bw | ratio to read bw |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|");
    }
    for ty in types {
        let r = bench_matvec(ty, size, reps, batch)?;
        let head = format!(
            "| {} | {:.4} | {}×{} ({} MiB) | {:.2} G |",
            ty.name(),
            ty.bits_per_weight(),
            r.rows,
            r.cols,
            r.weight_bytes >> 20,
            r.weights_per_s / 1e9,
        );
        if batch > 1 {
            println!("{head}");
        } else {
            println!(
                "{head} {:.2} | {:.2} | {:.2} |",
                r.bytes_per_s / 1e9,
                r.bytes_per_s / bw.copy_bytes_per_s,
                r.bytes_per_s / bw.read_bytes_per_s,
            );
        }
    }
    Ok(())
}
