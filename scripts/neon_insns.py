"""Instructions per 256 weights of the aarch64 (NEON) mat-vec kernels, counted under QEMU user
mode: LocalGLM's kernels (the quants crate's `kbench` example built for aarch64) and, where
given, llama.cpp's on the same CPU model (`scripts/ggml_vec_dot.c` against an aarch64 build of
ggml), with their ratio. No ARM machine is at hand and QEMU's times mean nothing for an ARM
core, but its instruction counts repeat exactly, and these kernels are bound by how many
instructions decode and dot a block: the count is the loop structure's measure here; speed
on Apple Silicon needs a Mac.

Each figure is a slope: the instructions of (320 rows, 3 reps) − (320, 1) − (64, 3) + (64, 1),
over 2 reps × 256 rows — set-up, activation quantization and per-call costs cancel, leaving one
row's kernel; each count the least of three runs. One thread (RAYON_NUM_THREADS=1). The counts come from a QEMU plugin
(`scripts/qemu_insn_count.c`), which needs Debian's dynamically linked `qemu-user` (the
static build cannot load plugins).

Usage: python3 scripts/neon_insns.py KBENCH_AARCH64 [GGML_VEC_DOT_AARCH64]
  (NEON_CPU=max by default: SDOT and I8MM; NEON_CPU=cortex-a72 for plain NEON, llama.cpp's
  binary then left out unless built for it; NEON_TYPES=Q4_K,IQ2_XS for some types only;
  NEON_BATCH=8 for the batched product of 8 tokens, per 256 multiply-adds, ours only)
"""
import os
import subprocess
import sys
import tempfile

TYPES = ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
         "IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ4_NL", "IQ4_XS"]
GGML_ID = dict(F32=0, F16=1, Q4_0=2, Q4_1=3, Q5_0=6, Q5_1=7, Q8_0=8, Q2_K=10, Q3_K=11, Q4_K=12, Q5_K=13, Q6_K=14,
               IQ2_XXS=16, IQ2_XS=17, IQ3_XXS=18, IQ1_S=19, IQ4_NL=20, IQ3_S=21, IQ2_S=22, IQ4_XS=23, IQ1_M=29,
               BF16=30)
COLS = 4096
CPU = os.environ.get("NEON_CPU", "max")
BATCH = int(os.environ.get("NEON_BATCH", "1"))
if os.environ.get("NEON_TYPES"):
    TYPES = [t for t in TYPES if t in os.environ["NEON_TYPES"].split(",")]
HERE = os.path.dirname(os.path.abspath(__file__))


def plugin():
    out = os.path.join(tempfile.gettempdir(), "localglm-qemu-insn.so")
    src = os.path.join(HERE, "qemu_insn_count.c")
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
        subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", out, src], check=True)
    return out


def count(argv):
    env = dict(os.environ, RAYON_NUM_THREADS="1")
    run = subprocess.run(["qemu-aarch64", "-cpu", CPU, "-L", "/usr/aarch64-linux-gnu", "-plugin", PLUGIN] + argv,
                         capture_output=True, text=True, env=env, check=True)
    for line in run.stderr.splitlines():
        if line.startswith("guest instructions:"):
            return int(line.split()[-1])
    raise RuntimeError(f"no count from {argv}: {run.stderr[-500:]}")


def slope(argv_of):
    # The least of three runs: an idle thread pool's spinning adds instructions, never removes
    # them (one count in a run beside a build came out a third low through it).
    c = {(rows, reps): min(count(argv_of(rows, reps)) for _ in range(3)) for rows in (64, 320) for reps in (1, 3)}
    per_row = ((c[320, 3] - c[320, 1]) - (c[64, 3] - c[64, 1])) / 2 / 256
    return per_row / (COLS * BATCH / 256)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    kbench = sys.argv[1]
    ggml = sys.argv[2] if len(sys.argv) > 2 and BATCH == 1 else None
    print(f"# instructions per 256 weights{' (per 256 multiply-adds, batch %d)' % BATCH if BATCH > 1 else ''}, "
          f"rows of {COLS}, QEMU -cpu {CPU}")
    print("| type | LocalGLM |" + (" llama.cpp | llama.cpp / LocalGLM |" if ggml else ""))
    print("|---|---|" + ("---|---|" if ggml else ""))
    for ty in TYPES:
        ours = slope(lambda rows, reps: [kbench, f"{rows}x{COLS}", ty, str(reps), str(BATCH)])
        line = f"| {ty} | {ours:.0f} |"
        if ggml:
            theirs = slope(lambda rows, reps: [ggml, str(GGML_ID[ty]), str(rows), str(COLS), str(reps)])
            line += f" {theirs:.0f} | {theirs / ours:.2f} |"
        print(line, flush=True)


PLUGIN = plugin()
if __name__ == "__main__":
    main()
