//! Mat-vec throughput of the quant kernels alone, without the CLI (and its minutes of linking):
//! `kbench 4096x14336 IQ2_XXS,Q4_K [reps] [batch]` (a `rows x cols` shape, or `512M` for about
//! 512 MiB of rows of 4096; `batch` tokens through the batched product, prefill's). Prints G
//! weights/s per type (multiply-adds/s with a batch); `LOCALGLM_SIMD=avx2` and
//! `RAYON_NUM_THREADS` apply as in `localglm bench quants`.

use localglm_quants::bench::{bench_matvec, Size};
use localglm_quants::GgmlType;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: kbench ROWSxCOLS|MIBM TYPE[,TYPE...] [REPS] [BATCH]";
    let (Some(shape), Some(types)) = (args.first(), args.get(1)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let size = match shape.strip_suffix('M') {
        Some(mib) => mib.parse::<usize>().ok().map(|m| Size::Bytes(m << 20)),
        None => shape
            .split_once('x')
            .and_then(|(r, c)| Some((r.parse().ok()?, c.parse().ok()?)))
            .map(|(rows, cols)| Size::Shape { rows, cols }),
    };
    let Some(size) = size else {
        eprintln!("{usage}");
        std::process::exit(2)
    };
    let reps = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(30);
    let batch = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(1);
    for name in types.split(',') {
        let Some(ty) = GgmlType::from_name(name) else {
            eprintln!("unknown type {name}");
            std::process::exit(2);
        };
        match bench_matvec(ty, size, reps, batch) {
            Ok(r) => println!("{name} {:.2} G weights/s", r.weights_per_s / 1e9),
            Err(e) => println!("{name} error: {e}"),
        }
    }
}
