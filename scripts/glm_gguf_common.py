"""Shared pieces of the synthetic `glm-dsa` GGUF writers (make_glm_fixtures.py, make_glm_bench_model.py);
make_dense_fixtures.py reuses the vocabulary (with ChatML specials), the random weights and the writer.

The tiny byte-level BPE vocabulary with the GLM special tokens (spec §C.5), the chat template, the
tensor layout of a GLM-5.x block (spec §C.4), seeded random weights, the model metadata (spec §C.3)
and the GGUF writer.  Needs numpy, regex and gguf==0.19.0 (`tokenizers` only for Vocab.hf_tokenizer).
"""
import os
import zlib
from collections import Counter

import numpy as np
import regex
from gguf import GGUFWriter, GGMLQuantizationType as QT
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

HERE = os.path.dirname(os.path.abspath(__file__))

# ----------------------------------------------------------------------------------------------
# Tokenizer (spec §C.5)
# ----------------------------------------------------------------------------------------------

GLM4_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
              r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
PRE_RE = regex.compile(GLM4_SPLIT)
SPECIALS = ["<|endoftext|>", "[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>", "<|system|>", "<|user|>",
            "<|assistant|>", "<|observation|>", "<think>", "</think>", "<tool_call>", "</tool_call>",
            "<tool_response>", "</tool_response>", "<arg_key>", "</arg_key>", "<arg_value>", "</arg_value>"]
N_MERGES = 200
CORPUS = """The quick brown fox jumps over the lazy dog. The dog sleeps, and the fox runs into the forest.
It's a small model, but it's enough for the tests: we don't need more than a few hundred merges.
I'm sure they'll say we've done it right, and you'd agree that it's fine. Isn't it? They're here.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 11 12 42 64 100 128 256 512 1000 1024 2048 4096 65536 1234567 2026.
Prices: 3.14, 2.50, 19.99 and 100.00; dates 2026-07-01 and 2025-12-31; time 12:30:45.
The model reads the prompt, the model writes the answer, and the user reads the answer again.
Thinking is on by default; the reasoning effort is max unless the user asks for high.
def forward(self, hidden_states, position_ids=None):
    residual = hidden_states
    hidden_states = self.input_layernorm(hidden_states)
    return residual + self.mlp(hidden_states)

fn main() {
    let tokens: Vec<u32> = vec![1, 2, 3];
    for token in tokens.iter() {
        println!("token = {}", token);
    }
}
for (int i = 0; i < n; i++) { sum += a[i] * b[i]; }
if (x != nullptr && x->value >= 0) { return x->value; } else { return -1; }
{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}
The weather in Paris is sunny, the weather in London is rainy, and the weather in Tokyo is warm.
"""


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable unicode character map (256 entries)."""
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


B2U = bytes_to_unicode()


def pre_tokens(text):
    """Split text with the GLM-4 regex and map each piece to the byte-unicode alphabet."""
    return ["".join(B2U[b] for b in p.encode("utf-8")) for p in PRE_RE.findall(text)]


def train_bpe(corpus, n_merges):
    """Classic BPE training inside pre-token boundaries; ties broken by the pair's strings."""
    words = Counter(tuple(w) for w in pre_tokens(corpus))
    merges = []
    for _ in range(n_merges):
        pairs = Counter()
        for w, c in words.items():
            for pair in zip(w, w[1:]):
                pairs[pair] += c
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        merged = Counter()
        for w, c in words.items():
            merged[merge_pair(w, best)] += c
        words = merged
    return merges


def merge_pair(symbols, pair):
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
            out.append(symbols[i] + symbols[i + 1])
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return tuple(out)


class Vocab:
    """The fixture vocabulary: 256 byte tokens, merge results, then the special (control) tokens:
    the GLM ones by default, others for other model families (make_dense_fixtures.py: ChatML)."""

    def __init__(self, specials=SPECIALS):
        self.specials = list(specials)
        self.merges = train_bpe(CORPUS, N_MERGES)
        self.tokens = [B2U[b] for b in range(256)]
        for a, b in self.merges:
            if a + b not in self.tokens:
                self.tokens.append(a + b)
        self.n_normal = len(self.tokens)
        self.tokens += self.specials
        self.types = [1] * self.n_normal + [3] * len(self.specials)
        self.ids = {t: i for i, t in enumerate(self.tokens)}
        self.ranks = {m: r for r, m in enumerate(self.merges)}
        assert len(self.ids) == len(self.tokens)

    def sid(self, s):
        return self.ids[s]

    def encode_ref(self, text, specials):
        """Reference encoder (independent of `tokenizers`): specials first, regex, then ranked merges."""
        pieces = [text]
        if specials:
            pat = "(" + "|".join(regex.escape(s) for s in self.specials) + ")"
            pieces = [p for p in regex.split(pat, text) if p]
        ids = []
        for piece in pieces:
            if specials and piece in self.specials:
                ids.append(self.ids[piece])
                continue
            for word in pre_tokens(piece):
                sym = tuple(word)
                while len(sym) > 1:
                    best = min(zip(sym, sym[1:]), key=lambda p: self.ranks.get(p, 1 << 30))
                    if best not in self.ranks:
                        break
                    sym = merge_pair(sym, best)
                ids += [self.ids[s] for s in sym]
        return ids

    def hf_tokenizer(self):
        """The same tokenizer as a Hugging Face `tokenizers` object."""
        from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

        vocab = {t: i for i, t in enumerate(self.tokens[:self.n_normal])}
        bpe = models.BPE(vocab=vocab, merges=list(self.merges), byte_fallback=False, ignore_merges=False)
        tok = Tokenizer(bpe)
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(GLM4_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        tok.decoder = decoders.ByteLevel()
        tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in self.specials])
        for s in self.specials:
            assert tok.token_to_id(s) == self.ids[s], s
        return tok

    def vocab_kv(self):
        """The tokenizer.* keys that describe the vocabulary itself (pre = glm4: the split it was trained with)."""
        return [("tokenizer.ggml.model", "gpt2"), ("tokenizer.ggml.pre", "glm4"),
                ("tokenizer.ggml.tokens", list(self.tokens)), ("tokenizer.ggml.token_type", list(self.types)),
                ("tokenizer.ggml.merges", [f"{a} {b}" for a, b in self.merges])]

    def gguf_kv(self):
        """tokenizer.* metadata of the GLM models (spec §C.3)."""
        return self.vocab_kv() + [
            ("tokenizer.ggml.bos_token_id", ("u32", self.sid("[gMASK]"))),
            ("tokenizer.ggml.eos_token_id", ("u32", self.sid("<|endoftext|>"))),
            ("tokenizer.ggml.eot_token_id", ("u32", self.sid("<|user|>"))),
            ("tokenizer.ggml.eom_token_id", ("u32", self.sid("<|observation|>"))),
            ("tokenizer.ggml.padding_token_id", ("u32", self.sid("<|endoftext|>"))),
            ("tokenizer.ggml.unknown_token_id", ("u32", self.sid("<|endoftext|>"))),
            ("tokenizer.ggml.add_bos_token", False),
            ("tokenizer.chat_template", CHAT_TEMPLATE)]


# Chat template (spec §D.1/§D.2), stored in each GGUF as tokenizer.chat_template

with open(os.path.join(HERE, "glm_chat_template.jinja"), encoding="utf-8") as _f:
    CHAT_TEMPLATE = _f.read().rstrip("\n")


# ----------------------------------------------------------------------------------------------
# Models: layout and random weights (spec §C.3, §C.4)
# ----------------------------------------------------------------------------------------------

COMMON = dict(n_shared_experts=1, n_group=1, topk_group=1, routed_scaling_factor=2.5, norm_topk_prob=True,
              rms_norm_eps=1e-5, tie_word_embeddings=False, hidden_act="silu")


def layer_specs(c, l, moe, nextn):
    """(GGUF name, torch shape) of one block; attn_kv_b is split into attn_k_b/attn_v_b when written.
    The indexer is listed for every block (Unsloth duplicates it into shared layers)."""
    D, H, p = c["hidden_size"], c["num_attention_heads"], f"blk.{l}."
    nope, rope, vd = c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"]
    qr, kr, nI, dI = c["q_lora_rank"], c["kv_lora_rank"], c["index_n_heads"], c["index_head_dim"]
    s = [("attn_norm.weight", (D,)), ("attn_q_a.weight", (qr, D)), ("attn_q_a_norm.weight", (qr,)),
         ("attn_q_b.weight", (H * (nope + rope), qr)), ("attn_kv_a_mqa.weight", (kr + rope, D)),
         ("attn_kv_a_norm.weight", (kr,)), ("attn_kv_b.weight", (H * (nope + vd), kr)),
         ("attn_output.weight", (D, H * vd)), ("ffn_norm.weight", (D,)),
         ("indexer.attn_q_b.weight", (nI * dI, qr)), ("indexer.attn_k.weight", (dI, D)),
         ("indexer.k_norm.weight", (dI,)), ("indexer.k_norm.bias", (dI,)), ("indexer.proj.weight", (nI, D))]
    if moe:
        E, I, Ish = c["n_routed_experts"], c["moe_intermediate_size"], c["moe_intermediate_size"] * c["n_shared_experts"]
        s += [("ffn_gate_inp.weight", (E, D)), ("exp_probs_b.bias", (E,)), ("ffn_gate_exps.weight", (E, I, D)),
              ("ffn_up_exps.weight", (E, I, D)), ("ffn_down_exps.weight", (E, D, I)),
              ("ffn_gate_shexp.weight", (Ish, D)), ("ffn_up_shexp.weight", (Ish, D)), ("ffn_down_shexp.weight", (D, Ish))]
    else:
        F = c["intermediate_size"]
        s += [("ffn_gate.weight", (F, D)), ("ffn_up.weight", (F, D)), ("ffn_down.weight", (D, F))]
    if nextn:
        s += [("nextn.eh_proj.weight", (D, 2 * D)), ("nextn.enorm.weight", (D,)), ("nextn.hnorm.weight", (D,)),
              ("nextn.shared_head_norm.weight", (D,))]
    return [(p + n, shape) for n, shape in s]


def model_specs(c, n_vocab, n_mtp):
    D, L = c["hidden_size"], c["num_hidden_layers"]
    specs = [("token_embd.weight", (n_vocab, D)), ("output_norm.weight", (D,)), ("output.weight", (n_vocab, D))]
    for l in range(L + n_mtp):
        specs += layer_specs(c, l, l >= c["first_k_dense_replace"], l >= L)
    return specs


def rng_for(seed, name, salt=0):
    return np.random.default_rng([seed, zlib.crc32(name.encode()), salt])


def gen_f32(seed, name, shape):
    """Random float weights: norms 1+0.1N, biases 0.1N, embeddings N(0,1), matrices N(0, 1/fan_in)."""
    g = rng_for(seed, name)
    if name.endswith("norm.weight"):
        return (1.0 + 0.1 * g.standard_normal(shape)).astype(np.float32)
    if name.endswith(".bias"):
        return (0.1 * g.standard_normal(shape)).astype(np.float32)
    std = 1.0 if name == "token_embd.weight" else 1.0 / np.sqrt(shape[-1])
    return (std * g.standard_normal(shape)).astype(np.float32)


def random_quant_blocks(seed, name, qtype, shape):
    """Random blocks of a K/I-quant type whose f16 scale fields (d, and dmin for Q4_K) are set so that
    the dequantized weights have std ~ 1/sqrt(fan_in); per-block factors in [0.75, 1.25] vary them."""
    elems, nbytes = GGML_QUANT_SIZES[qtype]
    n_blocks = int(np.prod(shape)) // elems
    g = rng_for(seed, name, int(qtype))
    raw = g.integers(0, 256, size=(n_blocks, nbytes), dtype=np.uint8)
    u = g.uniform(0.75, 1.25, size=(n_blocks, 2))
    byte_shape = tuple(shape[:-1]) + (shape[-1] // elems * nbytes,)

    def with_scale(s):
        b = raw.copy()
        b[:, 0:2] = (s * u[:, :1]).astype(np.float16).view(np.uint8)
        if qtype == QT.Q4_K:  # y = d*sc*q - dmin*m; E[q] = 7.5 so dmin ~ 7.5 d centres the weights
            b[:, 2:4] = (7.5 * s * u[:, 1:]).astype(np.float16).view(np.uint8)
        return b.reshape(byte_shape)

    probe = dequantize(with_scale(1e-3), qtype)
    return with_scale(1e-3 / (probe.std() * np.sqrt(shape[-1])))


def gguf_metadata(c, vocab, n_mtp, write_types, name):
    """Model metadata (spec §C.3) as [(key, value)]; ints are tagged ('u32', v)."""
    A = "glm-dsa."
    u = lambda v: ("u32", int(v))
    kv = [("general.name", name), (A + "block_count", u(c["num_hidden_layers"] + n_mtp)),
          (A + "nextn_predict_layers", u(n_mtp)), (A + "context_length", u(c["max_position_embeddings"])),
          (A + "embedding_length", u(c["hidden_size"])), (A + "feed_forward_length", u(c["intermediate_size"])),
          (A + "leading_dense_block_count", u(c["first_k_dense_replace"])), (A + "vocab_size", u(len(vocab.tokens))),
          (A + "attention.head_count", u(c["num_attention_heads"])), (A + "attention.head_count_kv", u(1)),
          (A + "attention.layer_norm_rms_epsilon", float(c["rms_norm_eps"])),
          (A + "attention.q_lora_rank", u(c["q_lora_rank"])), (A + "attention.kv_lora_rank", u(c["kv_lora_rank"])),
          (A + "attention.key_length", u(c["kv_lora_rank"] + c["qk_rope_head_dim"])),
          (A + "attention.value_length", u(c["kv_lora_rank"])),
          (A + "attention.key_length_mla", u(c["qk_nope_head_dim"] + c["qk_rope_head_dim"])),
          (A + "attention.value_length_mla", u(c["v_head_dim"])),
          (A + "rope.dimension_count", u(c["qk_rope_head_dim"])),
          (A + "rope.freq_base", float(c["rope_parameters"]["rope_theta"])),
          (A + "expert_count", u(c["n_routed_experts"])), (A + "expert_used_count", u(c["num_experts_per_tok"])),
          (A + "expert_shared_count", u(c["n_shared_experts"])),
          (A + "expert_feed_forward_length", u(c["moe_intermediate_size"])),
          (A + "expert_weights_scale", float(c["routed_scaling_factor"])),
          (A + "expert_weights_norm", bool(c["norm_topk_prob"])), (A + "expert_gating_func", u(2)),
          (A + "attention.indexer.head_count", u(c["index_n_heads"])),
          (A + "attention.indexer.key_length", u(c["index_head_dim"])),
          (A + "attention.indexer.top_k", u(c["index_topk"]))]
    if write_types:
        kv.append((A + "attention.indexer.types", [t == "full" for t in c["indexer_types"]]))
    return kv + vocab.gguf_kv()


def write_gguf(path, meta, tensors, arch="glm-dsa"):
    """meta: [(key, value)] with ints tagged ('u32', v); tensors: [(name, array, GGML type)], quantized
    ones as their raw block bytes."""
    w = GGUFWriter(path, arch)
    for key, val in meta:
        if isinstance(val, tuple):
            w.add_uint32(key, val[1])
        elif isinstance(val, list):
            w.add_array(key, val)
        elif isinstance(val, bool):
            w.add_bool(key, val)
        elif isinstance(val, float):
            w.add_float32(key, val)
        else:
            w.add_string(key, val)
    for name, data, qt in tensors:
        w.add_tensor(name, data, raw_dtype=None if qt == QT.F32 else qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def search_seeds(groups, vocab, out, try_seed, write_fixture):
    """Builds each group of fixtures (`(first_seed, [fixture, ...])`) from the first seed at which
    `try_seed` accepts every fixture of the group (so variants of one model share the seed), and
    writes them with `write_fixture`."""
    for seed, group in groups:
        while True:
            built, why = [], None
            for fx in group:
                d, why = try_seed(fx, vocab, seed)
                if d is None:
                    print(f"  {fx[0]}: seed {seed} rejected: {why}")
                    break
                built.append((fx, d))
            if why is None:
                break
            seed += 1
        for fx, d in built:
            path = write_fixture(fx, vocab, seed, d, out)
            print(f"{fx[0]}: seed {seed}, {os.path.getsize(path)} bytes, " +
                  ", ".join(f"{k}={v:.3g}" for k, v in d["report"].items()))
