"""Writes the dequantization fixtures of crates/quants/tests/fixtures/.

For each of the 22 supported GGML types it builds a few rows of random but valid blocks, runs
them through the reference dequantizer (PyPI `gguf`, `gguf.quants.dequantize`) and writes
  <TYPE>.bin  the raw blocks (rows back to back),
  <TYPE>.f32  the expected weights, f32 little-endian,
plus manifest.json (type, id, rows, cols, seed, gguf version) that tests/reference.rs reads.

"Valid" means: random bytes everywhere, except that each f16 scale field holds a finite value
(log-uniform magnitude, random sign, with some zeros and subnormals), so that no expected value
is NaN or infinite because of a garbage scale. IQ1_M has no d field: its f16 super-scale is the
top nibbles of the four scale words, and those nibbles are set from a finite f16 the same way.
F32, F16 and BF16 rows are raw random bit patterns plus a few deliberate specials (NaN payloads,
infinities, subnormals, signed zeros): every pattern is a valid element there.

Run: pip install gguf==0.19.0 numpy && python3 scripts/make_quant_fixtures.py [--seed N]
"""
import argparse
import json
import os
import sys
from importlib import metadata

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "crates", "quants", "tests", "fixtures"))

ROWS = 4

# Byte offsets of the f16 scale fields inside one block (spec §E.2–E.4).
F16_FIELDS = {
    "Q4_0": [0],
    "Q4_1": [0, 2],
    "Q5_0": [0],
    "Q5_1": [0, 2],
    "Q8_0": [0],
    "IQ4_NL": [0],
    "Q2_K": [80, 82],
    "Q3_K": [108],
    "Q4_K": [0, 2],
    "Q5_K": [0, 2],
    "Q6_K": [208],
    "IQ2_XXS": [0],
    "IQ2_XS": [0],
    "IQ2_S": [0],
    "IQ3_XXS": [0],
    "IQ3_S": [0],
    "IQ1_S": [0],
    "IQ4_XS": [0],
    "IQ1_M": [],  # handled separately: the scale is split over four nibbles
}

FLOAT_SPECIALS = {
    "F32": [0x7F800001, 0xFFC00000, 0x7FC12345, 0x7F800000, 0xFF800000, 0x00000001, 0x80000000],
    "F16": [0x7C01, 0xFE00, 0x7D55, 0x7C00, 0xFC00, 0x0001, 0x83FF, 0x8000],
    "BF16": [0x7F81, 0xFFC0, 0x7F80, 0xFF80, 0x0001, 0x8000],
}

SUPPORTED = [
    "F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
    "Q6_K", "IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ4_NL", "IQ4_XS",
]


def finite_f16_bits(rng: np.random.Generator, n: int) -> np.ndarray:
    """n finite f16 bit patterns: mostly ±2^U(-20, 4), some zeros and subnormals."""
    mag = np.exp2(rng.uniform(-20.0, 4.0, n))
    val = (mag * rng.choice([-1.0, 1.0], n)).astype(np.float16)
    bits = val.view(np.uint16).copy()
    kind = rng.random(n)
    bits[kind < 0.05] = rng.choice([0x0000, 0x8000], int((kind < 0.05).sum()))
    sub = (kind >= 0.05) & (kind < 0.10)
    bits[sub] = rng.integers(1, 0x400, int(sub.sum())) | rng.choice([0, 0x8000], int(sub.sum()))
    assert np.isfinite(bits.view(np.float16)).all()
    return bits.astype(np.uint16)


def make_rows(name: str, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    qtype = T[name]
    block_elems, block_bytes = GGML_QUANT_SIZES[qtype]
    cols = {1: 128, 32: 128, 256: 512}[block_elems]
    n_blocks = ROWS * cols // block_elems
    blocks = rng.integers(0, 256, (n_blocks, block_bytes), dtype=np.uint8)
    if name in FLOAT_SPECIALS:
        specials = FLOAT_SPECIALS[name]
        width = block_bytes
        flat = blocks.reshape(-1).view(np.uint32 if width == 4 else np.uint16)
        flat[: len(specials)] = specials
    for at in F16_FIELDS.get(name, []):
        blocks[:, at : at + 2] = finite_f16_bits(rng, n_blocks).view(np.uint8).reshape(n_blocks, 2)
    if name == "IQ1_M":
        d = finite_f16_bits(rng, n_blocks).astype(np.uint16)
        words = blocks[:, 48:56].copy().view(np.uint16)  # (n_blocks, 4)
        for k in range(4):
            nib = (d >> np.uint16(4 * k)) & np.uint16(0xF)
            words[:, k] = (words[:, k] & np.uint16(0x0FFF)) | (nib << np.uint16(12))
        blocks[:, 48:56] = words.view(np.uint8)
    return blocks.reshape(ROWS, -1), cols


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=20260622, help="base RNG seed (default %(default)s)")
    ap.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: the crate's fixtures)")
    args = ap.parse_args()

    os.makedirs(args.out, exist_ok=True)
    manifest = {"gguf_version": metadata.version("gguf"), "seed": args.seed, "types": []}
    total = 0
    for name in SUPPORTED:
        qtype = T[name]
        rng = np.random.default_rng([args.seed, int(qtype)])
        rows, cols = make_rows(name, rng)
        expected = np.asarray(dequantize(rows, qtype), dtype=np.float32)
        assert expected.shape == (ROWS, cols), (name, expected.shape)
        if name not in FLOAT_SPECIALS:
            assert np.isfinite(expected).all(), name
        raw = rows.tobytes()
        want = expected.astype("<f4").tobytes()
        with open(os.path.join(args.out, f"{name}.bin"), "wb") as f:
            f.write(raw)
        with open(os.path.join(args.out, f"{name}.f32"), "wb") as f:
            f.write(want)
        total += len(raw) + len(want)
        manifest["types"].append({"type": name, "id": int(qtype), "rows": ROWS, "cols": cols})
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(f"wrote {len(SUPPORTED)} types, {total} bytes, seed {args.seed}, to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
