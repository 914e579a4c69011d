#!/usr/bin/env python3
"""Builds the GLM-5.x (`glm-dsa`) test fixtures of crates/glm/tests/fixtures/.

Outputs (described in that folder's README.md):
  tokenizer.json, tokenizer-cases.json       a small byte-level BPE with the GLM-4 pre-tokenizer
  chat-template-cases.json                    renderings of the GLM-5.2-style template (glm_chat_template.jinja)
  tiny-f32.gguf (+ tiny-f32.ref.json)         6-layer GLM-5.2-like model, all F32, with an MTP block
  tiny-q-{iq2_xxs,iq3_s,q4_k}.gguf (+ .ref)   4-layer GLM-5.1-like model, quantized experts

Every weight comes from a numpy Generator seeded by (seed, crc32(tensor name)); the reference logits
come from Hugging Face transformers' GlmMoeDsaForCausalLM (float32, eager) run on exactly the weights
stored in the GGUF (dequantized), and are cross-checked against an independent numpy (float64)
forward pass that reads the GGUF tensors the way glm52-spec.md §B describes (absorbed MLA).

Run: python3 scripts/make_glm_fixtures.py   (needs torch, transformers>=5.24, tokenizers, gguf==0.19.0,
numpy, regex, jinja2).  Deterministic: a rerun writes the same bytes.
"""
import argparse
import json
import os

import jinja2
import jinja2.sandbox
import numpy as np
import torch
from gguf import GGUFReader, GGMLQuantizationType as QT
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize, quantize
from transformers import GlmMoeDsaConfig, GlmMoeDsaForCausalLM

from glm_gguf_common import (CHAT_TEMPLATE, COMMON, Vocab, gen_f32, gguf_metadata, model_specs,
                             random_quant_blocks, search_seeds, write_gguf)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "crates", "glm", "tests", "fixtures"))

# The tokenizer (Vocab), the block layout (model_specs), the random weights and the GGUF metadata and
# writer live in glm_gguf_common.py (shared with make_glm_bench_model.py).

TOKENIZER_TEXTS = [
    "Hello world", "hello, world!", "The quick brown fox jumps over the lazy dog.", "1234567 and 89",
    "3.14159 + 2.71828 = 5.85987", "x=1;y=22;z=333;w=4444", "héllo wörld 日本語 🙂",
    "Ünïcödé façade — naïve café", "Привет мир! Γειά σου κόσμε", "emoji 👍🏽 family 👨\u200d👩\u200d👧",
    "line one\nline two\n\nline four\n", "\r\n windows line\r\nend", "tab\tseparated\tvalues",
    "multiple   spaces    here", "  leading and trailing spaces  ", "   \n  \t ", "\n\n\n", " ", "a", "",
    "def forward(self, x):\n    return self.weight * x\n", 'fn main() { println!("{}", 42); }',
    "I'm sure you don't know what they'll do; we've seen it. I'M LOUD AND DON'T CARE",
    "<|user|> hi </think>", "[gMASK]<sop><|system|>not special here", "<think>reasoning</think>answer",
    "https://example.com/path?query=1&b=2",
]

# ----------------------------------------------------------------------------------------------
# Chat template (spec §D.1/§D.2; GLM-4.7-Flash structure; CHAT_TEMPLATE is glm_chat_template.jinja).
# Every tag trims whitespace and literal newlines never follow a block tag, so it renders the same
# with or without trim_blocks/lstrip_blocks.
# ----------------------------------------------------------------------------------------------

TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Get the weather",
                                         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
TOOL_CHAT = [{"role": "user", "content": "Weather in Paris?"},
             {"role": "assistant", "content": "", "tool_calls": [
                 {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}]},
             {"role": "tool", "content": '{"temp": 21}'}]
MULTI_CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q1"},
              {"role": "assistant", "content": "A1", "reasoning_content": "R1"}, {"role": "user", "content": "Q2"},
              {"role": "assistant", "content": "<think>R2</think>A2"}, {"role": "user", "content": "Q3"}]
SYSTEM_MAX = "[gMASK]<sop><|system|>Reasoning Effort: Max"
TOOLS_BLOCK = ("<|system|>\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
               "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
               + json.dumps(TOOL["function"], ensure_ascii=False) + "\n</tools>\n\nFor each function call, "
               "output the function name and arguments within the following XML format:\n<tool_call>{function-name}"
               "<arg_key>{arg-key-1}</arg_key><arg_value>{arg-value-1}</arg_value><arg_key>{arg-key-2}</arg_key>"
               "<arg_value>{arg-value-2}</arg_value>...</tool_call>")
TEMPLATE_CASES = [  # (messages, kwargs, expected rendering)
    ([{"role": "user", "content": "hi"}], {}, SYSTEM_MAX + "<|user|>hi<|assistant|><think>"),
    ([{"role": "user", "content": "hi"}], {"enable_thinking": False}, "[gMASK]<sop><|user|>hi<|assistant|><think></think>"),
    ([{"role": "user", "content": "hi"}], {"reasoning_effort": "high"},
     "[gMASK]<sop><|system|>Reasoning Effort: High<|user|>hi<|assistant|><think>"),
    (MULTI_CHAT, {}, SYSTEM_MAX + "<|system|>Be brief.<|user|>Q1<|assistant|><think>R1</think>A1<|user|>Q2"
                     "<|assistant|><think>R2</think>A2<|user|>Q3<|assistant|><think>"),
    (MULTI_CHAT, {"clear_thinking": True, "enable_thinking": False},
     "[gMASK]<sop><|system|>Be brief.<|user|>Q1<|assistant|><think></think>A1<|user|>Q2<|assistant|><think></think>A2"
     "<|user|>Q3<|assistant|><think></think>"),
    (TOOL_CHAT, {"tools": [TOOL]}, SYSTEM_MAX + TOOLS_BLOCK + "<|user|>Weather in Paris?<|assistant|><think></think>"
     "<tool_call>get_weather<arg_key>city</arg_key><arg_value>Paris</arg_value><arg_key>days</arg_key><arg_value>2"
     "</arg_value></tool_call><|observation|><tool_response>{\"temp\": 21}</tool_response><|assistant|><think>"),
]


def render(messages, trim, **kwargs):
    """Render CHAT_TEMPLATE like transformers' apply_chat_template (sandbox, HF-style tojson)."""
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=trim, lstrip_blocks=trim,
                                                       extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = lambda x, ensure_ascii=False, indent=None, separators=None, sort_keys=False: \
        json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
    return env.from_string(CHAT_TEMPLATE).render(messages=messages, add_generation_prompt=True, **kwargs)


def check_template():
    for messages, kwargs, expected in TEMPLATE_CASES:
        for trim in (True, False):
            got = render(messages, trim, **kwargs)
            assert got == expected, f"template mismatch (trim={trim}):\n{got!r}\n{expected!r}"
    return [case[2] for case in (TEMPLATE_CASES[0], TEMPLATE_CASES[4], TEMPLATE_CASES[5])]


def build_tokenizer_fixtures(vocab, out):
    tok = vocab.hf_tokenizer()
    tok.save(os.path.join(out, "tokenizer.json"))
    cases = []
    for specials, texts in ((False, TOKENIZER_TEXTS), (True, check_template())):
        tok.encode_special_tokens = not specials
        for text in texts:
            ids = tok.encode(text, add_special_tokens=False).ids
            assert ids == vocab.encode_ref(text, specials), f"HF vs reference encoder differ on {text!r}"
            assert tok.decode(ids, skip_special_tokens=False) == text, f"round trip failed on {text!r}"
            assert specials or all(i < vocab.n_normal for i in ids), f"special matched in {text!r}"
            cases.append({"text": text, "ids": ids, **({"specials": True} if specials else {})})
    tok.encode_special_tokens = True
    literal = tok.encode("<|user|>", add_special_tokens=False).ids
    assert len(literal) > 1 and all(i < vocab.n_normal for i in literal)
    write_json_lines(os.path.join(out, "tokenizer-cases.json"), cases)
    write_json_lines(os.path.join(out, "chat-template-cases.json"), [
        {"messages": m, "kwargs": dict(k, add_generation_prompt=True), "expected": e} for m, k, e in TEMPLATE_CASES])
    return len(cases)


def write_json_lines(path, items):
    """A JSON list with one item per line (readable diffs)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("[\n" + ",\n".join(json.dumps(x, ensure_ascii=False) for x in items) + "\n]\n")


# ----------------------------------------------------------------------------------------------
# Models: configuration, weight generation, GGUF layout (spec §C.3, §C.4)
# ----------------------------------------------------------------------------------------------

TINY = dict(COMMON, hidden_size=64, num_hidden_layers=6, first_k_dense_replace=2, intermediate_size=128,
            moe_intermediate_size=32, n_routed_experts=16, num_experts_per_tok=4, num_attention_heads=4,
            num_key_value_heads=4, q_lora_rank=32, kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=16,
            v_head_dim=16, index_n_heads=8, index_head_dim=32, index_topk=8,
            rope_parameters={"rope_theta": 8000000.0, "rope_type": "default"}, max_position_embeddings=1048576,
            indexer_types=["full", "full", "full", "shared", "shared", "shared"])
TINY_Q = dict(COMMON, hidden_size=256, num_hidden_layers=4, first_k_dense_replace=2, intermediate_size=512,
              moe_intermediate_size=256, n_routed_experts=8, num_experts_per_tok=2, num_attention_heads=4,
              num_key_value_heads=4, q_lora_rank=64, kv_lora_rank=64, qk_nope_head_dim=32, qk_rope_head_dim=32,
              v_head_dim=32, index_n_heads=8, index_head_dim=64, index_topk=16,
              rope_parameters={"rope_theta": 1000000.0, "rope_type": "default"}, max_position_embeddings=202752,
              indexer_types=["full", "shared", "full", "shared"])
# (file name, HF config, MTP blocks, write indexer.types, expert type, seed search start, short/long lengths)
FIXTURES = [("tiny-f32", TINY, 1, False, QT.F32, 1, (6, 40)),
            ("tiny-q-iq2_xxs", TINY_Q, 0, True, QT.IQ2_XXS, 101, (10, 48)),
            ("tiny-q-iq3_s", TINY_Q, 0, True, QT.IQ3_S, 101, (10, 48)),
            ("tiny-q-q4_k", TINY_Q, 0, True, QT.Q4_K, 101, (10, 48))]


def materialize(c, specs, seed, expert_type):
    """Returns (tensors to write: [(name, array, qtype)], effective float32 weights by GGUF name).
    Effective = exactly what a reader dequantizes from the written bytes."""
    tensors, eff = [], {}
    for name, shape in specs:
        if "_exps." in name and expert_type != QT.F32:
            qt, data = expert_type, random_quant_blocks(seed, name, expert_type, shape)
            parts = [(name, data, qt)]
        else:
            qt = QT.F32 if (len(shape) == 1 or "ffn_gate_inp" in name or expert_type == QT.F32) else QT.Q8_0
            w = gen_f32(seed, name, shape)
            if name.endswith("attn_kv_b.weight"):  # spec §C.4: per-head k_nope rows transposed, v rows as-is
                w3, nope = w.reshape(c["num_attention_heads"], -1, shape[1]), c["qk_nope_head_dim"]
                parts = [(name.replace("kv_b", "k_b"), np.ascontiguousarray(w3[:, :nope, :].transpose(0, 2, 1)), qt),
                         (name.replace("kv_b", "v_b"), np.ascontiguousarray(w3[:, nope:, :]), qt)]
            else:
                parts = [(name, w, qt)]
            if qt == QT.Q8_0:
                parts = [(n, quantize(a, QT.Q8_0), qt) for n, a, _ in parts]
        for n, data, t in parts:
            tensors.append((n, data, t))
            eff[n] = data if t == QT.F32 else dequantize(data, t).astype(np.float32)
    return tensors, eff


def spec_ne(c, n_vocab):
    """GGUF ne of the layout-sensitive tensors, written out from spec §C.4 (checked on read-back)."""
    D, H, E, I = c["hidden_size"], c["num_attention_heads"], c["n_routed_experts"], c["moe_intermediate_size"]
    return {"token_embd.weight": [D, n_vocab], "output.weight": [D, n_vocab],
            "attn_k_b.weight": [c["qk_nope_head_dim"], c["kv_lora_rank"], H],
            "attn_v_b.weight": [c["kv_lora_rank"], c["v_head_dim"], H],
            "attn_q_b.weight": [c["q_lora_rank"], H * (c["qk_nope_head_dim"] + c["qk_rope_head_dim"])],
            "attn_kv_a_mqa.weight": [D, c["kv_lora_rank"] + c["qk_rope_head_dim"]],
            "indexer.attn_q_b.weight": [c["q_lora_rank"], c["index_n_heads"] * c["index_head_dim"]],
            "indexer.proj.weight": [D, c["index_n_heads"]], "ffn_gate_inp.weight": [D, E],
            "ffn_gate_exps.weight": [D, I, E], "ffn_up_exps.weight": [D, I, E], "ffn_down_exps.weight": [I, D, E],
            "nextn.eh_proj.weight": [2 * D, D]}


def read_back(path, meta, tensors, ne):
    """Re-read a written GGUF; check metadata, tensor names/types/shapes/bytes; return dequantized weights."""
    r = GGUFReader(path)
    for key, val in meta:
        got = r.fields[key].contents()
        want = val[1] if isinstance(val, tuple) else val
        assert (got == np.float32(want)) if isinstance(want, float) else got == want, key
    assert [t.name for t in r.tensors] == [n for n, _, _ in tensors]
    eff = {}
    for t, (name, data, qt) in zip(r.tensors, tensors):
        assert t.tensor_type == qt, name
        elems = GGML_QUANT_SIZES[qt][0]
        torch_shape = data.shape if qt == QT.F32 else data.shape[:-1] + (data.shape[-1] // GGML_QUANT_SIZES[qt][1] * elems,)
        assert tuple(int(x) for x in t.shape) == tuple(reversed(torch_shape)), name
        suffix = name.split(".", 2)[-1] if name.startswith("blk.") else name
        assert suffix not in ne or [int(x) for x in t.shape] == ne[suffix], name
        assert np.array_equal(np.asarray(t.data).reshape(data.shape).view(np.uint8), data.view(np.uint8)), name
        raw = np.asarray(t.data).reshape(data.shape)
        eff[name] = raw.astype(np.float32) if qt == QT.F32 else dequantize(raw, qt).astype(np.float32)
    return eff


# ----------------------------------------------------------------------------------------------
# Hugging Face reference
# ----------------------------------------------------------------------------------------------

def gguf_to_hf(T, c):
    """GGUF-named float32 arrays -> GlmMoeDsaForCausalLM state dict (inverse of the converter layout)."""
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    sd = {"model.embed_tokens.weight": t(T["token_embd.weight"]), "model.norm.weight": t(T["output_norm.weight"]),
          "lm_head.weight": t(T["output.weight"])}
    for l in range(c["num_hidden_layers"]):
        g, p = lambda n: T[f"blk.{l}.{n}"], f"model.layers.{l}."
        kb, vb = g("attn_k_b.weight"), g("attn_v_b.weight")
        kv_b = np.concatenate([kb.transpose(0, 2, 1), vb], axis=1).reshape(-1, kb.shape[1])
        names = {"input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
                 "self_attn.q_a_proj.weight": "attn_q_a.weight", "self_attn.q_a_layernorm.weight": "attn_q_a_norm.weight",
                 "self_attn.q_b_proj.weight": "attn_q_b.weight", "self_attn.kv_a_proj_with_mqa.weight":
                 "attn_kv_a_mqa.weight", "self_attn.kv_a_layernorm.weight": "attn_kv_a_norm.weight",
                 "self_attn.o_proj.weight": "attn_output.weight"}
        if c["indexer_types"][l] == "full":
            names.update({"self_attn.indexer.wq_b.weight": "indexer.attn_q_b.weight",
                          "self_attn.indexer.wk.weight": "indexer.attn_k.weight",
                          "self_attn.indexer.k_norm.weight": "indexer.k_norm.weight",
                          "self_attn.indexer.k_norm.bias": "indexer.k_norm.bias",
                          "self_attn.indexer.weights_proj.weight": "indexer.proj.weight"})
        if l < c["first_k_dense_replace"]:
            names.update({f"mlp.{k}_proj.weight": f"ffn_{k}.weight" for k in ("gate", "up", "down")})
        else:
            names.update({f"mlp.shared_experts.{k}_proj.weight": f"ffn_{k}_shexp.weight" for k in ("gate", "up", "down")})
            names.update({"mlp.gate.weight": "ffn_gate_inp.weight", "mlp.gate.e_score_correction_bias": "exp_probs_b.bias",
                          "mlp.experts.down_proj": "ffn_down_exps.weight"})
            sd[p + "mlp.experts.gate_up_proj"] = t(np.concatenate([g("ffn_gate_exps.weight"), g("ffn_up_exps.weight")], 1))
        sd.update({p + hf: t(g(gg)) for hf, gg in names.items()})
        sd[p + "self_attn.kv_b_proj.weight"] = t(kv_b)
    return sd


def hf_config_kwargs(c, vocab):
    """Everything passed to GlmMoeDsaConfig (also recorded in the .ref.json)."""
    return dict(c, vocab_size=len(vocab.tokens), pad_token_id=vocab.sid("<|endoftext|>"), bos_token_id=vocab.sid("[gMASK]"),
                eos_token_id=[vocab.sid(s) for s in ("<|endoftext|>", "<|user|>", "<|observation|>")],
                attn_implementation="eager", experts_implementation="eager", dtype="float32")


def hf_model(c, vocab, T):
    model = GlmMoeDsaForCausalLM(GlmMoeDsaConfig(**hf_config_kwargs(c, vocab))).eval()
    assert model.dtype == torch.float32
    sd = gguf_to_hf(T, c)
    model.load_state_dict(sd, strict=True)
    for k, v in model.state_dict().items():
        assert torch.equal(v, sd[k]), f"HF did not load {k} exactly"
    return model


@torch.no_grad()
def hf_logits(model, tokens, dense=False):
    """One full forward without cache; dense=True raises index_topk so the indexer keeps every key.
    Also returns the top-k index sets each full layer's indexer produced."""
    captured, hooks = {}, []
    for l, layer in enumerate(model.model.layers):
        idx = layer.self_attn.indexer
        if idx is not None:
            idx.index_topk = 10 ** 9 if dense else model.config.index_topk
            hooks.append(idx.register_forward_hook(lambda m, a, o, l=l: captured.__setitem__(l, o[0].numpy())))
    logits = model(input_ids=torch.tensor([tokens]), use_cache=False).logits[0].numpy()
    for h in hooks:
        h.remove()
    sets = {l: [sorted(int(i) for i in row if i <= t) for t, row in enumerate(o)] for l, o in captured.items()}
    return logits, sets


# ----------------------------------------------------------------------------------------------
# MTP (NextN) reference: the block after the trunk, wired as vLLM's and llama.cpp's glm-dsa
# drafting runs it (spec §B.9), around transformers' own decoder layer
# ----------------------------------------------------------------------------------------------

def hf_mtp_model(c, vocab, T):
    """blk.{L} as a one-layer GlmMoeDsaForCausalLM: a full-indexer MoE layer whose final norm is
    nextn.shared_head_norm and whose head is the trunk's output (Unsloth files share it)."""
    L = c["num_hidden_layers"]
    one = dict(c, num_hidden_layers=1, first_k_dense_replace=0, indexer_types=["full"])
    sub = {k.replace(f"blk.{L}.", "blk.0."): v for k, v in T.items() if k.startswith(f"blk.{L}.")}
    sub.update({"token_embd.weight": T["token_embd.weight"], "output.weight": T["output.weight"],
                "output_norm.weight": T[f"blk.{L}.nextn.shared_head_norm.weight"]})
    return hf_model(one, vocab, sub)


@torch.no_grad()
def hf_mtp(model, mtp, T, L, tokens, chain):
    """MTP logits for a prompt and for a draft chain.

    The trunk's hidden state after its final norm, h_i, and the embedding of the next token
    t_{i+1} make the MTP input at position i: u_i = eh_proj · [RMSNorm_enorm(emb(t_{i+1})) ;
    RMSNorm_hnorm(h_i)], the embedding zeroed at position 0 (vLLM's rule). Its logits predict
    t_{i+2}. `chain` = [x, y1, y2, ...]: x follows the prompt, then each y is a draft fed with the
    MTP's own last output after its shared_head_norm (llama.cpp's glm-dsa drafting).
    Returns (prompt rows: positions 0..n-2, chain rows: one per chain token)."""
    W = lambda n: torch.from_numpy(np.ascontiguousarray(T[n], dtype=np.float32))
    eps = model.config.rms_norm_eps
    rms = lambda v, w: v * torch.rsqrt(v.pow(2).mean(-1, keepdim=True) + eps) * w
    emb, eh = W("token_embd.weight"), W(f"blk.{L}.nextn.eh_proj.weight")
    en, hn = W(f"blk.{L}.nextn.enorm.weight"), W(f"blk.{L}.nextn.hnorm.weight")
    for m in (model, mtp):  # sparse, whatever an earlier dense run left set
        for layer in m.model.layers:
            if layer.self_attn.indexer is not None:
                layer.self_attn.indexer.index_topk = m.config.index_topk
    h = model.model(input_ids=torch.tensor([tokens])).last_hidden_state[0]
    toks = list(tokens[1:]) + [chain[0]]
    hidden = [h[i] for i in range(len(tokens))]
    rows = []
    for step in range(len(chain)):
        e = emb[torch.tensor(toks)].clone()
        e[0] = 0
        u = torch.cat([rms(e, en), rms(torch.stack(hidden), hn)], -1) @ eh.T
        out = mtp.model(inputs_embeds=u[None]).last_hidden_state[0]  # after shared_head_norm
        rows.append(mtp.lm_head(out)[-1])
        if step + 1 < len(chain):
            hidden.append(out[-1])
            toks.append(chain[step + 1])
    prompt = mtp.lm_head(out[:len(tokens) - 1])
    return prompt.numpy(), torch.stack(rows).numpy()


# ----------------------------------------------------------------------------------------------
# Independent numpy (float64) forward from GGUF tensors + metadata, following spec §B (absorbed MLA)
# ----------------------------------------------------------------------------------------------

def np_rope(v, theta):
    """Interleaved RoPE over the last axis; axis 0 is the position."""
    d = v.shape[-1]
    ang = np.arange(v.shape[0])[:, None] * theta ** (-np.arange(0, d, 2) / d)
    ang = ang.reshape((v.shape[0],) + (1,) * (v.ndim - 2) + (d // 2,))
    c, s, out = np.cos(ang), np.sin(ang), v.copy()
    out[..., 0::2] = v[..., 0::2] * c - v[..., 1::2] * s
    out[..., 1::2] = v[..., 0::2] * s + v[..., 1::2] * c
    return out


def np_forward(meta, T, tokens):
    """Returns (logits, {full layer: top-k sets}, min indexer boundary gap, min router boundary gap)."""
    m = {k: (v[1] if isinstance(v, tuple) else v) for k, v in meta}
    A = "glm-dsa."
    W = {k: v.astype(np.float64) for k, v in T.items()}
    n_layer = m[A + "block_count"] - m.get(A + "nextn_predict_layers", 0)
    types = m.get(A + "attention.indexer.types") or (
        [max(i - 2, 0) % 4 == 0 for i in range(n_layer)] if m[A + "context_length"] >= 1048576 else [True] * n_layer)
    H, rope, theta = m[A + "attention.head_count"], m[A + "rope.dimension_count"], m[A + "rope.freq_base"]
    R, qk, eps = m[A + "attention.kv_lora_rank"], m[A + "attention.key_length_mla"], m[A + "attention.layer_norm_rms_epsilon"]
    nI, dI, k_top = m[A + "attention.indexer.head_count"], m[A + "attention.indexer.key_length"], m[A + "attention.indexer.top_k"]
    rms = lambda x, w, e=eps: x / np.sqrt((x * x).mean(-1, keepdims=True) + e) * w
    silu = lambda z: z / (1 + np.exp(-z))
    n = len(tokens)
    x = W["token_embd.weight"][tokens]
    sets, igap, rgap, allowed = {}, np.inf, np.inf, None
    for l in range(n_layer):
        w = lambda s: W[f"blk.{l}.{s}"]
        h = rms(x, w("attn_norm.weight"))
        cq = rms(h @ w("attn_q_a.weight").T, w("attn_q_a_norm.weight"), 1e-6)
        q = (cq @ w("attn_q_b.weight").T).reshape(n, H, qk)
        q_nope, q_pe = q[..., :qk - rope], np_rope(q[..., qk - rope:], theta)
        kv = h @ w("attn_kv_a_mqa.weight").T
        ckv, k_pe = rms(kv[:, :R], w("attn_kv_a_norm.weight"), 1e-6), np_rope(kv[:, R:], theta)
        if types[l]:  # lightning indexer (§B.4)
            qi = (cq @ w("indexer.attn_q_b.weight").T).reshape(n, nI, dI)
            qi = np.concatenate([np_rope(qi[..., :rope], theta), qi[..., rope:]], -1)
            ki = h @ w("indexer.attn_k.weight").T
            ki = (ki - ki.mean(-1, keepdims=True)) / np.sqrt(ki.var(-1, keepdims=True) + 1e-6)
            ki = ki * w("indexer.k_norm.weight") + w("indexer.k_norm.bias")
            ki = np.concatenate([np_rope(ki[:, :rope], theta), ki[:, rope:]], -1)
            wt = (h @ w("indexer.proj.weight").T) * nI ** -0.5
            score = np.einsum("tj,tjs->ts", wt, np.maximum(np.einsum("tjd,sd->tjs", qi, ki) * dI ** -0.5, 0))
            allowed, sets[l] = np.zeros((n, n), bool), []
            for t in range(n):
                order = np.argsort(-score[t, :t + 1], kind="stable")
                if t + 1 > k_top:
                    igap = min(igap, score[t, order[k_top - 1]] - score[t, order[k_top]])
                keep = sorted(order[:k_top].tolist())
                allowed[t, keep] = True
                sets[l].append(keep)
        q_abs = np.einsum("hrd,thd->thr", w("attn_k_b.weight"), q_nope)  # absorbed MLA (§B.3)
        s = (np.einsum("thr,sr->hts", q_abs, ckv) + np.einsum("thd,sd->hts", q_pe, k_pe)) * qk ** -0.5
        s = np.where(allowed[None], s, -np.inf)
        p = np.exp(s - s.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        o = np.einsum("hvr,thr->thv", w("attn_v_b.weight"), np.einsum("hts,sr->thr", p, ckv))
        x = x + o.reshape(n, -1) @ w("attn_output.weight").T
        h2 = rms(x, w("ffn_norm.weight"))
        if l < m[A + "leading_dense_block_count"]:
            f = (silu(h2 @ w("ffn_gate.weight").T) * (h2 @ w("ffn_up.weight").T)) @ w("ffn_down.weight").T
        else:  # MoE (§B.6)
            k_e = m[A + "expert_used_count"]
            sg = 1 / (1 + np.exp(-(h2 @ w("ffn_gate_inp.weight").T)))
            sel = sg + w("exp_probs_b.bias")
            f = (silu(h2 @ w("ffn_gate_shexp.weight").T) * (h2 @ w("ffn_up_shexp.weight").T)) @ w("ffn_down_shexp.weight").T
            for t in range(n):
                order = np.argsort(-sel[t], kind="stable")
                rgap = min(rgap, sel[t, order[k_e - 1]] - sel[t, order[k_e]])
                g = sg[t, order[:k_e]]
                g = g / (g.sum() + 1e-20) * m[A + "expert_weights_scale"]
                for e, ge in zip(order[:k_e], g):
                    a = silu(w("ffn_gate_exps.weight")[e] @ h2[t]) * (w("ffn_up_exps.weight")[e] @ h2[t])
                    f[t] += ge * (w("ffn_down_exps.weight")[e] @ a)
        x = x + f
    logits = rms(x, W["output_norm.weight"]) @ W["output.weight"].T
    return logits, sets, igap, rgap


# ----------------------------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------------------------

def prompts(vocab, lengths):
    head = [vocab.sid("[gMASK]"), vocab.sid("<sop>")]
    out = []
    for name, n in zip(("short", "long"), lengths):
        g = np.random.default_rng(1000 + n)
        out.append((name, head + [int(i) for i in g.choice(vocab.n_normal, size=n - 2, replace=False)]))
    return out


def try_seed(fx, vocab, seed):
    """Build one fixture for a seed; returns (data, None) or (None, reason to reject the seed)."""
    name, c, n_mtp, write_types, etype, _, lengths = fx
    tensors, T = materialize(c, model_specs(c, len(vocab.tokens), n_mtp), seed, etype)
    meta = gguf_metadata(c, vocab, n_mtp, write_types, name)
    model = hf_model(c, vocab, T)
    mtp = hf_mtp_model(c, vocab, T) if n_mtp else None
    cases, report = [], {"hf_vs_numpy": 0.0, "min_router_gap": np.inf}
    for case, tokens in prompts(vocab, lengths):
        logits, hf_sets = hf_logits(model, tokens)
        ref, np_sets, igap, rgap = np_forward(meta, T, tokens)
        diff = float(np.abs(ref - logits).max())
        assert diff < 1e-3, f"{name}: HF vs numpy forward differ by {diff}"
        assert hf_sets == np_sets, f"{name}: HF and numpy indexers chose different keys"
        if rgap < 1e-5:
            return None, f"router near-tie ({rgap:.2e})"
        if case == "long":
            if igap < 1e-4:
                return None, f"indexer near-tie at the top-k boundary ({igap:.2e})"
            dense, _ = hf_logits(model, tokens, dense=True)
            sd = float(np.abs(dense - logits).max())
            if sd <= 1e-2:
                return None, f"sparse == dense ({sd:.2e})"
            report.update(sparse_vs_dense=sd, min_indexer_gap=float(igap))
        report["min_router_gap"] = min(report["min_router_gap"], float(rgap))
        report["hf_vs_numpy"] = max(report["hf_vs_numpy"], diff)
        cases.append({"name": case, "tokens": tokens, "logits": logits})
        if mtp is not None:
            g = np.random.default_rng(2000 + len(tokens))
            chain = [int(i) for i in g.choice(vocab.n_normal, size=3, replace=False)]
            rows, chain_rows = hf_mtp(model, mtp, T, c["num_hidden_layers"], tokens, chain)
            cases[-1]["mtp"] = {"logits": rows, "chain": chain, "chain_logits": chain_rows}
    return dict(tensors=tensors, T=T, meta=meta, model=model, cases=cases, report=report), None


def rounded(rows):
    return [[float(f"{v:.7g}") for v in row] for row in rows.tolist()]


def write_fixture(fx, vocab, seed, d, out):
    name, c, _, _, etype, _, _ = fx
    path = os.path.join(out, name + ".gguf")
    write_gguf(path, d["meta"], d["tensors"])
    T2 = read_back(path, d["meta"], d["tensors"], spec_ne(c, len(vocab.tokens)))
    assert T2.keys() == d["T"].keys() and all(np.array_equal(T2[k], d["T"][k]) for k in T2)
    again, _ = hf_logits(hf_model(c, vocab, T2), d["cases"][-1]["tokens"])  # reload from the file's bytes
    assert np.array_equal(again, d["cases"][-1]["logits"]), "reloaded model gives different logits"
    ref = {"gguf": name + ".gguf", "seed": seed, "expert_type": etype.name,
           "weights": "all F32" if etype == QT.F32 else f"experts {etype.name}, other matrices Q8_0, norms/router/"
                      "biases F32; logits computed on the dequantized weights",
           "config": hf_config_kwargs(c, vocab),
           "checks": {k: float(f"{v:.4g}") for k, v in d["report"].items()},
           "cases": [dict({"name": k["name"], "tokens": k["tokens"], "logits": rounded(k["logits"])},
                          **({"mtp": {"logits": rounded(k["mtp"]["logits"]), "chain": k["mtp"]["chain"],
                                      "chain_logits": rounded(k["mtp"]["chain_logits"])}} if "mtp" in k else {}))
                     for k in d["cases"]]}
    with open(os.path.join(out, name + ".ref.json"), "w") as f:
        json.dump(ref, f, separators=(",", ":"))
        f.write("\n")
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    vocab = Vocab()
    print(f"vocab: {len(vocab.tokens)} tokens ({len(vocab.merges)} merges, {vocab.n_normal} normal)")
    print(f"tokenizer cases: {build_tokenizer_fixtures(vocab, args.out)}")
    groups = {}
    for fx in FIXTURES:
        groups.setdefault(id(fx[1]), []).append(fx)
    # Variants of one model share the seed (and all non-expert weights).
    search_seeds([(g[0][5], g) for g in groups.values()], vocab, args.out, try_seed, write_fixture)

if __name__ == "__main__":
    main()
