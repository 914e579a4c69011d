#!/usr/bin/env python3
"""Builds the dense LLaMA-family test fixtures of crates/glm/tests/fixtures/.

Outputs (described in that folder's README.md):
  tiny-llama-f32.gguf (+ .ref.json)   `llama`, 2 layers, GQA (4 query / 2 KV heads), untied output, all F32
  tiny-llama-q.gguf (+ .ref.json)     the same weights with tied embeddings (no output.weight), token_embd
                                      Q8_0 and every layer matrix Q4_1, norms F32 (like SmolLM2's Q4_1 GGUF)
  tiny-qwen2-f32.gguf (+ .ref.json)   `qwen2`: q/k/v biases, NEOX RoPE
  tiny-qwen3-f32.gguf (+ .ref.json)   `qwen3`: per-head RMSNorm of q and k, head_dim 32 != hidden / heads

The vocabulary is glm_gguf_common.Vocab (the byte-level BPE of the GLM fixtures, `pre` = glm4) with the
ChatML control tokens <|endoftext|>, <|im_start|>, <|im_end|> instead of the GLM ones, and a ChatML chat
template.  Every weight comes from a numpy Generator seeded by (seed, crc32(tensor name)).  Tensors are
written the way llama.cpp's convert_hf_to_gguf.py writes them: for `llama` the q and k rows of each head
are permuted so that llama.cpp's adjacent-pair RoPE on the GGUF weights equals transformers' rotate_half
RoPE on the HF weights; `qwen2`/`qwen3` keep the HF order (NEOX RoPE).  The reference logits come from
transformers' LlamaForCausalLM / Qwen2ForCausalLM / Qwen3ForCausalLM (float32, eager) run on exactly the
weights stored in the GGUF (dequantized, q/k un-permuted), and are cross-checked against an independent
numpy (float64) forward pass that reads the GGUF tensors with llama.cpp's RoPE style for the architecture.

Run: python3 scripts/make_dense_fixtures.py   (needs torch, transformers>=5.24, gguf==0.19.0, numpy,
regex, jinja2 and tokenizers).  Deterministic: a rerun writes the same bytes.
"""
import argparse
import json
import os

import jinja2.sandbox
import numpy as np
import torch
from gguf import GGUFReader, GGMLQuantizationType as QT, LlamaFileType
from gguf.quants import dequantize, quantize
from transformers import (LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM, Qwen3Config,
                          Qwen3ForCausalLM)

from glm_gguf_common import Vocab, gen_f32, search_seeds, write_gguf

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "crates", "glm", "tests", "fixtures"))

# ----------------------------------------------------------------------------------------------
# Tokenizer: the GLM fixtures' BPE with ChatML control tokens, and a ChatML template (SmolLM2's,
# without its default system prompt)
# ----------------------------------------------------------------------------------------------

CHATML_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content']"
                 " + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}"
                 "{{ '<|im_start|>assistant\\n' }}{% endif %}")
CHAT_MESSAGES = [{"role": "user", "content": "Hi!"}]
CHAT_TEXT = "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n"


def render_chat(messages):
    env = jinja2.sandbox.ImmutableSandboxedEnvironment()
    return env.from_string(CHAT_TEMPLATE).render(messages=messages, add_generation_prompt=True)


def tokenizer_kv(vocab):
    """tokenizer.* metadata: SmolLM2's special-token roles (bos <|im_start|>, eos/pad <|im_end|>,
    unk <|endoftext|>), no BOS added."""
    u = lambda s: ("u32", vocab.sid(s))
    return vocab.vocab_kv() + [("tokenizer.ggml.bos_token_id", u("<|im_start|>")),
                               ("tokenizer.ggml.eos_token_id", u("<|im_end|>")),
                               ("tokenizer.ggml.unknown_token_id", u("<|endoftext|>")),
                               ("tokenizer.ggml.padding_token_id", u("<|im_end|>")),
                               ("tokenizer.ggml.add_bos_token", False),
                               ("tokenizer.chat_template", CHAT_TEMPLATE)]


# ----------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------

BASE = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            intermediate_size=96, hidden_act="silu")
LLAMA = dict(BASE, head_dim=16, rms_norm_eps=1e-5, rope_parameters={"rope_theta": 10000.0, "rope_type": "default"},
             max_position_embeddings=2048, attention_bias=False, mlp_bias=False)
QWEN2 = dict(BASE, rms_norm_eps=1e-6, rope_parameters={"rope_theta": 1000000.0, "rope_type": "default"},
             max_position_embeddings=32768, use_sliding_window=False)
QWEN3 = dict(BASE, head_dim=32, rms_norm_eps=1e-6, rope_parameters={"rope_theta": 1000000.0, "rope_type": "default"},
             max_position_embeddings=40960, attention_bias=False, use_sliding_window=False)
HF = {"llama": (LlamaConfig, LlamaForCausalLM), "qwen2": (Qwen2Config, Qwen2ForCausalLM),
      "qwen3": (Qwen3Config, Qwen3ForCausalLM)}
# (file name, architecture, HF config, tied embeddings, quantized, seed search start); fixtures with the
# same start share the seed, hence every weight they both have (before quantization).
FIXTURES = [("tiny-llama-f32", "llama", LLAMA, False, False, 1),
            ("tiny-llama-q", "llama", LLAMA, True, True, 1),
            ("tiny-qwen2-f32", "qwen2", QWEN2, False, False, 201),
            ("tiny-qwen3-f32", "qwen3", QWEN3, False, False, 301)]
CASE_LENGTHS = (("short", 5), ("long", 40))
MIN_TOP2_GAP = 1e-3  # a seed is rejected when some position's two best logits are closer than this


def head_dim(c):
    return c.get("head_dim", c["hidden_size"] // c["num_attention_heads"])


def specs(arch, c, n_vocab, tied):
    """(GGUF name, HF shape) of every tensor, in file order."""
    D, F, H, Hkv, hd = (c["hidden_size"], c["intermediate_size"], c["num_attention_heads"],
                        c["num_key_value_heads"], head_dim(c))
    s = [("token_embd.weight", (n_vocab, D)), ("output_norm.weight", (D,))]
    if not tied:
        s.append(("output.weight", (n_vocab, D)))
    for l in range(c["num_hidden_layers"]):
        b = [("attn_norm.weight", (D,))]
        for x, rows in (("q", H * hd), ("k", Hkv * hd), ("v", Hkv * hd)):
            b += [(f"attn_{x}.weight", (rows, D))] + ([(f"attn_{x}.bias", (rows,))] if arch == "qwen2" else [])
        b += [("attn_output.weight", (D, H * hd))]
        if arch == "qwen3":
            b += [("attn_q_norm.weight", (hd,)), ("attn_k_norm.weight", (hd,))]
        b += [("ffn_norm.weight", (D,)), ("ffn_gate.weight", (F, D)), ("ffn_up.weight", (F, D)),
              ("ffn_down.weight", (D, F))]
        s += [(f"blk.{l}.{n}", shape) for n, shape in b]
    return s


def expected_ne(arch, c, n_vocab):
    """GGUF ne (ggml order: contiguous input width first) of the shape-sensitive tensors."""
    D, H, Hkv, hd = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"], head_dim(c)
    ne = {"token_embd.weight": [D, n_vocab], "output.weight": [D, n_vocab], "attn_q.weight": [D, H * hd],
          "attn_k.weight": [D, Hkv * hd], "attn_v.weight": [D, Hkv * hd], "attn_output.weight": [H * hd, D],
          "ffn_gate.weight": [D, c["intermediate_size"]], "ffn_down.weight": [c["intermediate_size"], D]}
    if arch == "qwen3":
        ne.update({"attn_q_norm.weight": [hd], "attn_k_norm.weight": [hd]})
    return ne


def permute(w, n_head):
    """convert_hf_to_gguf's q/k permutation for `llama`: each head's rows [first halves; second halves]
    -> interleaved pairs, so that adjacent-pair RoPE on the result equals rotate_half RoPE on `w`."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w, n_head):
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def n_heads_of(name, c):
    return c["num_attention_heads"] if "attn_q." in name else c["num_key_value_heads"]


def materialize(arch, c, n_vocab, tied, quantized, seed):
    """Returns (tensors to write: [(name, array, qtype)], effective float32 GGUF tensors by name).
    Effective = exactly what a reader dequantizes from the written bytes (GGUF row order)."""
    tensors, eff = [], {}
    for name, shape in specs(arch, c, n_vocab, tied):
        w = gen_f32(seed, name, shape)  # HF layout
        if arch == "llama" and name.endswith(("attn_q.weight", "attn_k.weight")):
            w = permute(w, n_heads_of(name, c))
        qt = QT.F32
        if quantized and len(shape) == 2:
            qt = QT.Q8_0 if name == "token_embd.weight" else QT.Q4_1
        data = w if qt == QT.F32 else quantize(w, qt)
        tensors.append((name, data, qt))
        eff[name] = data if qt == QT.F32 else dequantize(data, qt).astype(np.float32)
    return tensors, eff


def metadata(name, arch, c, vocab, quantized):
    """Model metadata as [(key, value)] (ints tagged ('u32', v)); general.architecture is added by the writer."""
    A, u, hd = arch + ".", lambda v: ("u32", int(v)), head_dim(c)
    ftype = LlamaFileType.MOSTLY_Q4_1 if quantized else LlamaFileType.ALL_F32
    return [("general.name", name), ("general.file_type", u(ftype)),
            (A + "block_count", u(c["num_hidden_layers"])), (A + "context_length", u(c["max_position_embeddings"])),
            (A + "embedding_length", u(c["hidden_size"])), (A + "feed_forward_length", u(c["intermediate_size"])),
            (A + "attention.head_count", u(c["num_attention_heads"])),
            (A + "attention.head_count_kv", u(c["num_key_value_heads"])),
            (A + "attention.key_length", u(hd)), (A + "attention.value_length", u(hd)),
            (A + "rope.dimension_count", u(hd)), (A + "rope.freq_base", float(c["rope_parameters"]["rope_theta"])),
            (A + "attention.layer_norm_rms_epsilon", float(c["rms_norm_eps"])),
            (A + "vocab_size", u(len(vocab.tokens)))] + tokenizer_kv(vocab)


def read_back(path, arch, meta, tensors, ne):
    """Re-read a written GGUF; check metadata and tensor names/types/shapes/bytes; return dequantized weights."""
    r = GGUFReader(path)
    assert r.fields["general.architecture"].contents() == arch
    for key, val in meta:
        got = r.fields[key].contents()
        want = val[1] if isinstance(val, tuple) else val
        assert (got == np.float32(want)) if isinstance(want, float) else got == want, key
    assert [t.name for t in r.tensors] == [n for n, _, _ in tensors]
    eff = {}
    for t, (name, data, qt) in zip(r.tensors, tensors):
        assert t.tensor_type == qt, name
        suffix = name.split(".", 2)[-1] if name.startswith("blk.") else name
        assert suffix not in ne or [int(x) for x in t.shape] == ne[suffix], (name, t.shape)
        raw = np.asarray(t.data).reshape(data.shape)
        assert np.array_equal(raw.view(np.uint8), data.view(np.uint8)), name
        eff[name] = raw.astype(np.float32) if qt == QT.F32 else dequantize(raw, qt).astype(np.float32)
    return eff


# ----------------------------------------------------------------------------------------------
# Hugging Face reference
# ----------------------------------------------------------------------------------------------

def hf_config_kwargs(arch, c, vocab, tied):
    """Everything passed to the HF config class (also recorded in the .ref.json)."""
    return dict(c, vocab_size=len(vocab.tokens), tie_word_embeddings=tied, bos_token_id=vocab.sid("<|im_start|>"),
                eos_token_id=vocab.sid("<|im_end|>"), pad_token_id=vocab.sid("<|im_end|>"),
                attn_implementation="eager", dtype="float32")


def gguf_to_hf(arch, c, T, tied):
    """GGUF-named float32 arrays -> HF state dict (q/k rows back in HF order for `llama`)."""
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    sd = {"model.embed_tokens.weight": t(T["token_embd.weight"]), "model.norm.weight": t(T["output_norm.weight"]),
          "lm_head.weight": t(T["token_embd.weight" if tied else "output.weight"])}
    names = {"input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
             "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
             "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
             "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
             "mlp.down_proj.weight": "ffn_down.weight"}
    if arch == "qwen2":
        names.update({f"self_attn.{x}_proj.bias": f"attn_{x}.bias" for x in "qkv"})
    if arch == "qwen3":
        names.update({"self_attn.q_norm.weight": "attn_q_norm.weight", "self_attn.k_norm.weight": "attn_k_norm.weight"})
    for l in range(c["num_hidden_layers"]):
        for hf, gg in names.items():
            w = T[f"blk.{l}.{gg}"]
            if arch == "llama" and gg in ("attn_q.weight", "attn_k.weight"):
                w = unpermute(w, n_heads_of(gg, c))
            sd[f"model.layers.{l}.{hf}"] = t(w)
    return sd


def hf_model(arch, c, vocab, T, tied):
    config_cls, model_cls = HF[arch]
    model = model_cls(config_cls(**hf_config_kwargs(arch, c, vocab, tied))).eval()
    assert model.dtype == torch.float32 and model.config._attn_implementation == "eager"
    sd = gguf_to_hf(arch, c, T, tied)
    model.load_state_dict(sd, strict=True)
    for k, v in model.state_dict().items():
        assert torch.equal(v, sd[k]), f"HF did not load {k} exactly"
    assert (model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()) == tied
    return model


@torch.no_grad()
def hf_logits(model, tokens):
    return model(input_ids=torch.tensor([tokens]), use_cache=False).logits[0].numpy()


# ----------------------------------------------------------------------------------------------
# Independent numpy (float64) forward from the GGUF tensors + metadata, as llama.cpp computes it
# ----------------------------------------------------------------------------------------------

def np_rope(v, theta, neox):
    """RoPE over the last axis of v [pos, head, dim]: adjacent pairs (2i, 2i+1) (llama.cpp's normal
    style, `llama`) or halves (i, i + dim/2) (NEOX, `qwen2`/`qwen3`); frequency theta^(-2i/dim)."""
    d = v.shape[-1]
    ang = (np.arange(v.shape[0])[:, None] * theta ** (-np.arange(0, d, 2) / d))[:, None, :]
    c, s = np.cos(ang), np.sin(ang)
    a, b = (v[..., :d // 2], v[..., d // 2:]) if neox else (v[..., 0::2], v[..., 1::2])
    ra, rb = a * c - b * s, a * s + b * c
    return np.concatenate([ra, rb], -1) if neox else np.stack([ra, rb], -1).reshape(v.shape)


def np_forward(arch, meta, T, tokens, neox=None):
    """Logits [position][vocab]; neox overrides the architecture's RoPE style (for the sensitivity check)."""
    m = {k: (v[1] if isinstance(v, tuple) else v) for k, v in meta}
    A = arch + "."
    neox = arch != "llama" if neox is None else neox
    H, Hkv, hd = m[A + "attention.head_count"], m[A + "attention.head_count_kv"], m[A + "attention.key_length"]
    theta, eps = m[A + "rope.freq_base"], m[A + "attention.layer_norm_rms_epsilon"]
    assert m[A + "rope.dimension_count"] == hd and m[A + "attention.value_length"] == hd
    W = {k: v.astype(np.float64) for k, v in T.items()}
    rms = lambda x, w: x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w
    silu = lambda z: z / (1 + np.exp(-z))
    n = len(tokens)
    causal = np.tril(np.ones((n, n), bool))
    x = W["token_embd.weight"][tokens]
    for l in range(m[A + "block_count"]):
        w = lambda s: W[f"blk.{l}.{s}"]
        bias = lambda s: W.get(f"blk.{l}.{s}", 0.0)
        h = rms(x, w("attn_norm.weight"))
        q = (h @ w("attn_q.weight").T + bias("attn_q.bias")).reshape(n, H, hd)
        k = (h @ w("attn_k.weight").T + bias("attn_k.bias")).reshape(n, Hkv, hd)
        v = (h @ w("attn_v.weight").T + bias("attn_v.bias")).reshape(n, Hkv, hd)
        if f"blk.{l}.attn_q_norm.weight" in W:  # qwen3: per-head RMSNorm before RoPE
            q, k = rms(q, w("attn_q_norm.weight")), rms(k, w("attn_k_norm.weight"))
        q, k = np_rope(q, theta, neox), np_rope(k, theta, neox)
        k, v = np.repeat(k, H // Hkv, axis=1), np.repeat(v, H // Hkv, axis=1)  # query head j uses kv head j // group
        s = np.einsum("thd,shd->hts", q, k) / np.sqrt(hd)
        s = np.where(causal[None], s, -np.inf)
        p = np.exp(s - s.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        x = x + np.einsum("hts,shd->thd", p, v).reshape(n, H * hd) @ w("attn_output.weight").T
        h2 = rms(x, w("ffn_norm.weight"))
        x = x + (silu(h2 @ w("ffn_gate.weight").T) * (h2 @ w("ffn_up.weight").T)) @ w("ffn_down.weight").T
    head = W.get("output.weight", W["token_embd.weight"])  # tied: the embedding is the head
    return rms(x, W["output_norm.weight"]) @ head.T


# ----------------------------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------------------------

def prompts(vocab):
    """Random normal tokens (no specials), and the ChatML rendering of CHAT_MESSAGES."""
    out = []
    for name, n in CASE_LENGTHS:
        g = np.random.default_rng(1000 + n)
        out.append({"name": name, "tokens": [int(i) for i in g.choice(vocab.n_normal, size=n, replace=False)]})
    text = render_chat(CHAT_MESSAGES)
    assert text == CHAT_TEXT, text
    ids = vocab.encode_ref(text, specials=True)
    tok = vocab.hf_tokenizer()
    assert tok.encode(text, add_special_tokens=False).ids == ids and tok.decode(ids, skip_special_tokens=False) == text
    assert ids.count(vocab.sid("<|im_start|>")) == 2 and ids.count(vocab.sid("<|im_end|>")) == 1
    out.append({"name": "chat", "messages": CHAT_MESSAGES, "text": text, "tokens": ids})
    return out


def try_seed(fx, vocab, seed):
    """Build one fixture for a seed; returns (data, None) or (None, reason to reject the seed)."""
    name, arch, c, tied, quantized, _ = fx
    tensors, T = materialize(arch, c, len(vocab.tokens), tied, quantized, seed)
    meta = metadata(name, arch, c, vocab, quantized)
    model = hf_model(arch, c, vocab, T, tied)
    cases, report = [], {"hf_vs_numpy": 0.0, "min_top2_gap": np.inf, "other_rope_style_diff": np.inf}
    for case in prompts(vocab):
        tokens = case["tokens"]
        assert all(0 <= i < len(vocab.tokens) for i in tokens)
        logits = hf_logits(model, tokens)
        diff = float(np.abs(np_forward(arch, meta, T, tokens) - logits).max())
        assert diff < 1e-3, f"{name}: HF vs numpy forward differ by {diff}"
        top2 = np.sort(logits, -1)[:, -2:]
        gap = float((top2[:, 1] - top2[:, 0]).min())
        if gap < MIN_TOP2_GAP:
            return None, f"near-tie between the two best logits ({gap:.2e})"
        if len(tokens) > 1:  # the wrong RoPE style must show (position 0 is not rotated)
            wrong = float(np.abs(np_forward(arch, meta, T, tokens, neox=arch == "llama") - logits).max())
            assert wrong > 0.1, f"{name}: the RoPE style makes no difference ({wrong})"
            report["other_rope_style_diff"] = min(report["other_rope_style_diff"], wrong)
        report["hf_vs_numpy"] = max(report["hf_vs_numpy"], diff)
        report["min_top2_gap"] = min(report["min_top2_gap"], gap)
        cases.append(dict(case, logits=logits))
    return dict(tensors=tensors, T=T, meta=meta, cases=cases, report=report), None


def rounded(rows):
    return [[float(f"{v:.7g}") for v in row] for row in rows.tolist()]


def write_fixture(fx, vocab, seed, d, out):
    name, arch, c, tied, quantized, _ = fx
    path = os.path.join(out, name + ".gguf")
    write_gguf(path, d["meta"], d["tensors"], arch=arch)
    T2 = read_back(path, arch, d["meta"], d["tensors"], expected_ne(arch, c, len(vocab.tokens)))
    assert T2.keys() == d["T"].keys() and all(np.array_equal(T2[k], d["T"][k]) for k in T2)
    again = hf_logits(hf_model(arch, c, vocab, T2, tied), d["cases"][-1]["tokens"])  # reload from the file's bytes
    assert np.array_equal(again, d["cases"][-1]["logits"]), "reloaded model gives different logits"
    ref = {"gguf": name + ".gguf", "architecture": arch, "hf_class": HF[arch][1].__name__, "seed": seed,
           "weights": ("token_embd Q8_0 (also the output head: tied), layer matrices Q4_1, norms F32; logits "
                       "computed on the dequantized weights" if quantized else
                       "all F32" + (", tied output head" if tied else ", untied output head")),
           "config": hf_config_kwargs(arch, c, vocab, tied),
           "checks": {k: float(f"{v:.4g}") for k, v in d["report"].items()},
           "cases": [{k: (rounded(v) if k == "logits" else v) for k, v in case.items()} for case in d["cases"]]}
    with open(os.path.join(out, name + ".ref.json"), "w") as f:
        json.dump(ref, f, separators=(",", ":"), ensure_ascii=False)
        f.write("\n")
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    vocab = Vocab(CHATML_SPECIALS)
    print(f"vocab: {len(vocab.tokens)} tokens ({len(vocab.merges)} merges, {vocab.n_normal} normal); "
          + ", ".join(f"{s} = {vocab.sid(s)}" for s in CHATML_SPECIALS))
    groups = {}
    for fx in FIXTURES:
        groups.setdefault(fx[5], []).append(fx)
    # Fixtures that share a seed start share the seed.
    search_seeds(list(groups.items()), vocab, args.out, try_seed, write_fixture)

if __name__ == "__main__":
    main()
