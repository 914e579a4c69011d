#!/usr/bin/env python3
"""Writes a synthetic random-weight GLM-5.x (`glm-dsa`) GGUF for speed benchmarks.

The model has the GLM-5.2 structure (spec §A, §C): MLA attention with split attn_k_b/attn_v_b, a DSA
lightning indexer in every block with `attention.indexer.types` (GLM-5.2 pattern: block i is `full`
iff max(i - 2, 0) % 4 == 0), leading dense FFN blocks, then sigmoid-routed MoE blocks with one shared
expert.  Weights are random and there are no reference logits: the file is only for timing (LocalGLM
vs llama.cpp on the same bytes).  Tensor types:

  routed experts (gate/up/down)     IQ2_XXS          dense FFN (leading blocks)   Q4_K
  token_embd, attention, indexer,   Q8_0             output                       Q6_K
  shared expert                                      norms, router, biases        F32

or, with `--mix`, a model of an Unsloth Dynamic file's per-tensor mix (MIXES below): the routed experts
at the label's low-bit types and every other matrix at a K-quant, as the real files are (spec §F).
attn_k_b (rows of 128 here, 192 in GLM-5.2) cannot take 256-blocks and stays Q8_0, as in the real files.

Quantized tensors are random bytes whose f16 scale fields are set (from a dequantized probe of the
first blocks) so that every value is finite and the weights have std ~ 1/sqrt(fan_in) (token_embd ~ 1).
The tokenizer is the tiny byte-level BPE of the test fixtures (256 bytes + merges + GLM specials, same
ids) padded with unused `[PAD{i}]` tokens (token_type 5) to the vocab size; pre = glm4; chat template
embedded.  Deterministic: the same size and seed write the same bytes.

Usage: python3 scripts/make_glm_bench_model.py OUT.gguf [--size mid|small] [--seed N] [--mtp]
                                              [--mix ud-iq1_s|ud-iq2_m]
Needs numpy, regex, gguf==0.19.0 (see glm_gguf_common.py).  mid ~1.4 GB, small ~0.15 GB.
"""
import argparse
import os
import time

import numpy as np
from gguf import GGMLQuantizationType as QT
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

from glm_gguf_common import COMMON, Vocab, gen_f32, gguf_metadata, model_specs, rng_for, write_gguf

VOCAB_SIZE = 32000
SHAPE = dict(qk_nope_head_dim=128, qk_rope_head_dim=64, v_head_dim=128, kv_lora_rank=512, num_hidden_layers=8,
             n_routed_experts=64, num_experts_per_tok=8, index_head_dim=128, index_topk=2048)
SIZES = {  # HF-style configs (the keys make_glm_fixtures.py uses); every K/IQ row length is a multiple of 256
    "mid": dict(SHAPE, hidden_size=2048, first_k_dense_replace=1, intermediate_size=5632, num_attention_heads=16,
                q_lora_rank=768, moe_intermediate_size=1536, index_n_heads=16),
    "small": dict(SHAPE, hidden_size=768, first_k_dense_replace=1, intermediate_size=2048, num_attention_heads=8,
                  q_lora_rank=384, moe_intermediate_size=256, index_n_heads=8),
}
# Byte offset of the f16 `d` in a block (every type a bench model writes).
SCALE_AT = {QT.Q8_0: 0, QT.Q4_K: 0, QT.Q5_K: 0, QT.Q6_K: 208, QT.IQ1_S: 0, QT.IQ2_XXS: 0, QT.IQ2_XS: 0,
            QT.IQ2_S: 0, QT.IQ3_XXS: 0}
# K-quants with a minimum: dmin = CENTRE * d puts the mean of d*sc*q - dmin*m near 0 (q, sc, m uniform).
CENTRE = {QT.Q4_K: 7.5, QT.Q5_K: 15.5}

# Per-role types of the Unsloth Dynamic files users run (spec §F), as far as they are public. The only
# GLM-5.2 mix published in full is UD-Q2_K_XL's; for the 1-bit file a reader of its header reported
# heavily quantized routed experts with down_proj at IQ3_XXS and "a lot of Q5_K, Q6_K" elsewhere. These
# models follow that: IQ1_S gate/up for UD-IQ1_S; the 2-bit grid types of llama.cpp's IQ2_M recipe
# for UD-IQ2_M, down one step above gate/up as in every Unsloth mix seen. With GLM-5.2's shapes (testkit glm52.rs' layout)
# they come to 204 GB (UD-IQ1_S; the file is 217 GB: Unsloth upcasts some layers further) and 236 GB
# (UD-IQ2_M; 239 GB). On the mid bench model they read 331 and 364 MiB per decoded token.
MIXES = {
    "ud-iq1_s": dict(exps_gate_up=QT.IQ1_S, exps_down=QT.IQ3_XXS, attention=QT.Q5_K, indexer=QT.Q5_K,
                     shared=QT.Q6_K, dense=QT.Q6_K, token_embd=QT.Q5_K, output=QT.Q6_K),
    "ud-iq2_m": dict(exps_gate_up=QT.IQ2_XS, exps_down=QT.IQ2_S, attention=QT.Q6_K, indexer=QT.Q6_K,
                     shared=QT.Q6_K, dense=QT.Q6_K, token_embd=QT.Q6_K, output=QT.Q6_K),
}
PROBE_BLOCKS = 1024


def config(size):
    """Full HF-style config of a bench size (GLM-5.2 rope/context, GLM-5.2 indexer pattern)."""
    c = dict(COMMON, **SIZES[size], num_key_value_heads=SIZES[size]["num_attention_heads"],
             rope_parameters={"rope_theta": 8000000.0, "rope_type": "default"}, max_position_embeddings=1048576)
    c["indexer_types"] = ["full" if max(i - 3 + 1, 0) % 4 == 0 else "shared" for i in range(c["num_hidden_layers"])]
    return c


class PaddedVocab(Vocab):
    """The fixture vocabulary (same ids for bytes, merges and specials) padded with unused tokens."""

    def __init__(self, n_vocab):
        super().__init__()
        n_pad = n_vocab - len(self.tokens)
        assert n_pad >= 0
        self.tokens += [f"[PAD{i}]" for i in range(n_pad)]
        self.types += [5] * n_pad  # LLAMA_TOKEN_TYPE_UNUSED: never matched in text, never produced
        assert len(set(self.tokens)) == n_vocab


def tensor_type(name, shape, mix=None):
    """GGML type of one tensor (see the table in the module docstring, or `mix`, one of MIXES)."""
    if len(shape) == 1 or "ffn_gate_inp" in name:
        return QT.F32
    if mix is not None:
        return mix_type(name, MIXES[mix])
    if "_exps." in name:
        return QT.IQ2_XXS
    if name == "output.weight":
        return QT.Q6_K
    if name.split(".")[-2] in ("ffn_gate", "ffn_up", "ffn_down"):
        return QT.Q4_K
    return QT.Q8_0


def mix_type(name, m):
    """A tensor's type under one of MIXES (a matrix: norms, router and biases are F32 already)."""
    role = name.split(".")[-2]
    if role in ("ffn_gate_exps", "ffn_up_exps"):
        return m["exps_gate_up"]
    if role == "ffn_down_exps":
        return m["exps_down"]
    if role in ("attn_k_b", "proj"):  # 128-wide rows; the indexer's head weights are Q8_0 in every file
        return QT.Q8_0
    if name in ("token_embd.weight", "output.weight"):
        return m[name.split(".")[0]]
    if ".indexer." in name:
        return m["indexer"]
    if role.endswith("_shexp"):
        return m["shared"]
    if role in ("ffn_gate", "ffn_up", "ffn_down"):
        return m["dense"]
    return m["attention"]  # attn_*, and the MTP block's eh_proj


def random_blocks(seed, name, qtype, shape, std):
    """Random blocks of `qtype` for a tensor of torch `shape`, as a uint8 array of GGUF byte shape.
    Each block's f16 d (and dmin = 7.5 d for Q4_K, which centres it) is k * u with u ~ U[0.75, 1.25];
    k is fitted on the first PROBE_BLOCKS blocks so that the dequantized std is `std`."""
    elems, nbytes = GGML_QUANT_SIZES[qtype]
    assert shape[-1] % elems == 0, (name, shape, qtype.name)
    n_blocks = int(np.prod(shape)) // elems
    g = rng_for(seed, name, int(qtype))
    raw = np.frombuffer(bytearray(g.bytes(n_blocks * nbytes)), dtype=np.uint8).reshape(n_blocks, nbytes)
    u = g.uniform(0.75, 1.25, size=(n_blocks, 1))
    at = SCALE_AT[qtype]

    def set_scale(blocks, k):
        blocks[:, at:at + 2] = (k * u[:len(blocks)]).astype(np.float16).view(np.uint8)
        if qtype in CENTRE:
            blocks[:, 2:4] = (CENTRE[qtype] * k * u[:len(blocks)]).astype(np.float16).view(np.uint8)

    probe = raw[:PROBE_BLOCKS].copy()
    set_scale(probe, 1e-3)
    set_scale(raw, 1e-3 * std / float(dequantize(probe, qtype).std()))
    return raw.reshape(tuple(shape[:-1]) + (shape[-1] // elems * nbytes,))


def bench_tensors(c, seed, n_mtp=0, mix=None):
    """[(GGUF name, array, type)] in model_specs order; attn_kv_b is written as attn_k_b/attn_v_b."""
    H, nope, vd, kr = c["num_attention_heads"], c["qk_nope_head_dim"], c["v_head_dim"], c["kv_lora_rank"]
    out = []
    for name, shape in model_specs(c, VOCAB_SIZE, n_mtp):
        parts = [(name, shape)]
        if name.endswith("attn_kv_b.weight"):  # torch shapes of the per-head k_nope^T and v blocks (spec §C.4)
            parts = [(name.replace("kv_b", "k_b"), (H, kr, nope)), (name.replace("kv_b", "v_b"), (H, vd, kr))]
        for n, s in parts:
            qt = tensor_type(n, s, mix)
            if qt == QT.F32:
                out.append((n, gen_f32(seed, n, s), qt))
            else:
                std = 1.0 if n == "token_embd.weight" else 1.0 / np.sqrt(s[-1])
                out.append((n, random_blocks(seed, n, qt, s, std), qt))
    return out


def bytes_per_token(c, tensors):
    """Weight bytes one decoded token reads: every non-expert tensor except token_embd (and except the
    indexer of `shared` blocks, which a runtime skips), used/total of the routed experts, one embedding row.
    Returns (bytes/token, the same counting the shared-block indexers, breakdown)."""
    D, E, k = c["hidden_size"], c["n_routed_experts"], c["num_experts_per_tok"]
    shared = {f"blk.{i}." for i, t in enumerate(c["indexer_types"]) if t == "shared"}
    part = {"experts": 0, "token_embd": 0, "shared_indexer": 0, "other": 0}
    for name, data, _ in tensors:
        if "_exps." in name:
            key = "experts"
        elif name == "token_embd.weight":
            key = "token_embd"
        elif ".indexer." in name and name[:name.index(".", 4) + 1] in shared:
            key = "shared_indexer"
        else:
            key = "other"
        part[key] += data.nbytes
    row = part["token_embd"] // VOCAB_SIZE  # one embedding row read per token
    per_token = part["other"] + part["experts"] * k // E + row
    return per_token, per_token + part["shared_indexer"], part


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", help="output .gguf path")
    ap.add_argument("--size", choices=sorted(SIZES), default="mid")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mtp", action="store_true", help="also write an MTP (NextN) block after the trunk, "
                    "as GLM-5.x files have (for `bench glm`'s speculative-decoding figures)")
    ap.add_argument("--mix", choices=sorted(MIXES), help="a model of an Unsloth Dynamic file's type mix "
                    "instead of the default types (see MIXES)")
    args = ap.parse_args()
    t0 = time.time()
    c = config(args.size)
    vocab = PaddedVocab(VOCAB_SIZE)
    n_mtp = 1 if args.mtp else 0
    tensors = bench_tensors(c, args.seed, n_mtp, args.mix)
    label = f"glm-bench-{args.size}" + (f"-{args.mix}" if args.mix else "")
    meta = gguf_metadata(c, vocab, n_mtp, True, label)
    write_gguf(args.out, meta, tensors)
    total = os.path.getsize(args.out)
    trunk = [t for t in tensors if not t[0].startswith(f"blk.{c['num_hidden_layers']}.")]
    per_tok, per_tok_idx, part = bytes_per_token(c, trunk)
    keys = ("hidden_size", "num_hidden_layers", "first_k_dense_replace", "intermediate_size", "num_attention_heads",
            "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", "n_routed_experts",
            "num_experts_per_tok", "moe_intermediate_size", "index_n_heads", "index_head_dim", "index_topk")
    print(f"{args.out}: glm-dsa bench model '{label}', seed {args.seed}, {len(tensors)} tensors, "
          f"vocab {VOCAB_SIZE}, {time.time() - t0:.1f} s")
    print("  " + ", ".join(f"{k}={c[k]}" for k in keys))
    print("  indexer types: " + "".join("F" if t == "full" else "s" for t in c["indexer_types"]))
    print(f"  total bytes:         {total} ({total / 2**30:.3f} GiB)")
    print("  weight bytes:        " + ", ".join(f"{k} {v}" for k, v in part.items()))
    print(f"  bytes/decoded token: {per_tok} ({per_tok / 2**20:.1f} MiB; {per_tok_idx / 2**20:.1f} MiB "
          "counting the shared blocks' indexer tensors)")


if __name__ == "__main__":
    main()
