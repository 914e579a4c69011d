#!/usr/bin/env python3
"""Writes crates/glm/tests/fixtures/smollm2-ref.json: Hugging Face `transformers`' top-20
log-probabilities at every position of a chat prompt, run on the dequantized weights of the real
default model (SmolLM2-135M-Instruct Q4_1, the file the setup installs), and the prompt's text and
token ids as `transformers`' tokenizer (converted from the same GGUF) makes them.

`crates/glm/tests/dense.rs` checks LocalGLM's own runtime and tokenizer against it.

Run: python3 scripts/make_smollm2_reference.py [--model PATH]   (needs torch, transformers>=5.24,
accelerate, gguf). Deterministic.
"""
import argparse
import json
import os

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "crates", "glm", "tests", "fixtures", "smollm2-ref.json"))
DEFAULT = os.path.join(os.environ.get("LOCALGLM_DATA_DIR") or os.path.expanduser("~/.local/share/localglm"),
                       "models", "SmolLM2-135M-Instruct.Q4_1.gguf")

# ChatML as the model's template renders it (with its default system prompt), digits and code
# included so the tokenizer's digit split and byte-level pieces are exercised.
TEXT = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nWhat is 1234 + 5678? Answer in one line, then show `x = 42`.<|im_end|>\n"
        "<|im_start|>assistant\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=DEFAULT)
    args = ap.parse_args()
    folder, name = os.path.split(os.path.abspath(args.model))
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model.eval()
    ids = tok(TEXT, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double()
    lp = torch.log_softmax(logits, -1)
    top = []
    for row in lp:
        v, i = torch.topk(row, 20)
        top.append([[int(a), round(float(b), 6)] for a, b in zip(i, v)])
    with open(OUT, "w") as f:
        json.dump({"model": name, "text": TEXT, "tokens": ids, "top": top}, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT}: {len(ids)} tokens")


if __name__ == "__main__":
    main()
