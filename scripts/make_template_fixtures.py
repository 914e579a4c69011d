#!/usr/bin/env python3
"""Render real chat templates with Python jinja2 the way Hugging Face `apply_chat_template` does,
and write the results as byte-exact fixtures for `crates/glm/tests/template_fixtures.rs`.

Inputs (all inside the repository):
  crates/glm/tests/fixtures/chat-templates/*.jinja

Outputs (same folder):
  cases.json                         one entry per (template, case)
  expected/<template-stem>__<case>.txt   the rendered text, exact UTF-8 bytes, nothing appended

Needs only jinja2 (>= 3.1). Deterministic: `strftime_now` is pinned to FIXED_NOW, so a rerun writes
the same bytes.

    python3 scripts/make_template_fixtures.py

The jinja environment mirrors transformers' `_compile_jinja_template`
(src/transformers/utils/chat_template_utils.py): an ImmutableSandboxedEnvironment with trim_blocks,
lstrip_blocks and the loopcontrols extension; a `tojson` filter that is `json.dumps` with
ensure_ascii=False by default and the indent / separators / sort_keys options; the globals
`raise_exception` (raises TemplateError) and `strftime_now`. transformers' `{% generation %}`
tracker extension is left out: none of these templates uses that tag.

Context differences from transformers, on purpose (they match what our renderer puts in the
context; see `TemplateOptions`):
  * `tools` is only defined when a case has tools (transformers always passes `tools=None` and
    `documents=None`). The script checks that every template renders the same both ways.
  * `bos_token` / `eos_token` are always defined (transformers passes the tokenizer's special
    tokens map, so a model without a BOS token leaves `bos_token` undefined).
"""

import copy
import datetime
import json
import os
import shutil
import sys

import jinja2
import jinja2.ext
import jinja2.sandbox
from jinja2.exceptions import TemplateError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "crates", "glm", "tests", "fixtures", "chat-templates")
EXPECTED_DIR = "expected"

# Pinned clock for `strftime_now` (only openai-gpt-oss-120b.jinja calls it: strftime_now("%Y-%m-%d")).
FIXED_NOW = datetime.datetime(2026, 1, 15, 9, 30, 0)


# ------------------------------------------------------------------------------------------------
# The jinja environment (as transformers builds it)
# ------------------------------------------------------------------------------------------------

def make_env():
    def raise_exception(message):
        raise TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        # Not jinja2's built-in tojson: that one HTML-escapes <, >, & and ' and sorts keys.
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent,
                          separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return FIXED_NOW.strftime(fmt)

    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


# ------------------------------------------------------------------------------------------------
# Per-template settings
# ------------------------------------------------------------------------------------------------

# template file -> (bos_token, eos_token, effort levels the template distinguishes)
TEMPLATES = {
    "GLM-4.6.jinja": ("", "<|endoftext|>", []),
    "GLM-4.7-Flash.jinja": ("", "<|endoftext|>", []),
    "GLM-5.2.jinja": ("", "<|endoftext|>", ["high", "max"]),
    "HuggingFaceTB-SmolLM3-3B.jinja": ("", "<|im_end|>", []),
    "Kimi-K2-Thinking.jinja": ("[BOS]", "[EOS]", []),
    "Qwen-Qwen3-0.6B.jinja": ("", "<|im_end|>", []),
    "deepseek-ai-DeepSeek-V3.2.jinja": ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", []),
    "openai-gpt-oss-120b.jinja": ("<|startoftext|>", "<|return|>", ["low", "medium", "high"]),
}


# ------------------------------------------------------------------------------------------------
# Conversations
# ------------------------------------------------------------------------------------------------

SYSTEM = {"role": "system", "content": "You are a helpful assistant. Answer briefly."}

SINGLE = [
    SYSTEM,
    {"role": "user", "content": "What's the weather like in Zürich? Antworte kurz — danke! 🌤"},
]

MULTI_REASONING = [
    SYSTEM,
    {"role": "user", "content": "What is 17 * 23?"},
    {"role": "assistant",
     "reasoning_content": "17 * 23 = 17 * 20 + 17 * 3 = 340 + 51 = 391.",
     "content": "17 × 23 = 391."},
    {"role": "user", "content": "And divided by 7?"},
    {"role": "assistant",
     "reasoning_content": "\n391 / 7 = 55.857...; round to two decimals.\n",
     "content": "About 55.86."},
    {"role": "user", "content": "Say it in French, please."},
]

# Reasoning inline in `content` (no reasoning_content field): templates split it on </think>.
INLINE_THINK = [
    SYSTEM,
    {"role": "user", "content": "Hi!"},
    {"role": "assistant",
     "content": "<think>\nThe user greets me; greet back.\n</think>\n\nHello! How can I help?"},
    {"role": "user", "content": "Tell me a fun fact about owls."},
]

# Key order in the tools and in the arguments is deliberately NOT sorted: Python keeps insertion
# order, so a renderer that sorts map keys shows up here.
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather & forecast for a city (uses <metric> units).",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {"type": "string", "description": "City name, e.g. \"Zürich\""},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"],
                             "default": "celsius", "description": "Temperature unit"},
                    "days": {"type": "integer", "description": "Forecast days", "default": 1},
                    "options": {
                        "type": "object",
                        "description": "Extra options",
                        "properties": {
                            "hourly": {"type": "boolean"},
                            "fields": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                },
                "required": ["location", "unit"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "search_web",
            "description": "Search the web.",
            "parameters": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "What to look for"},
                    "top_k": {"type": "number"},
                },
                "required": ["query"],
            },
        },
    },
]

TOOL_MESSAGES = [
    {"role": "system", "content": "You can look up the weather."},
    {"role": "user", "content": "How warm is it in Paris and in Tokyo?"},
    {"role": "assistant",
     "content": "",
     "reasoning_content": "I should call get_weather for both cities.",
     "tool_calls": [
         {"id": "call_1", "type": "function",
          "function": {"name": "get_weather",
                       "arguments": {"location": "Paris", "unit": "celsius", "days": 2,
                                     "options": {"hourly": False, "fields": ["temp", "wind"]},
                                     "max_wind": 40.5}}},
         {"id": "call_2", "type": "function",
          "function": {"name": "get_weather",
                       "arguments": {"unit": "celsius", "location": "東京"}}},
     ]},
    {"role": "tool", "tool_call_id": "call_1", "name": "get_weather",
     "content": "{\"temp\": 18, \"sky\": \"cloudy\"}"},
    {"role": "tool", "tool_call_id": "call_2", "name": "get_weather",
     "content": "{\"temp\": 9, \"sky\": \"clear\"}"},
]

# A coding agent's multi-turn tool use with reasoning on every assistant turn (kept:
# clear_thinking false), as the local API's three protocols (chat completions, Anthropic
# Messages, OpenAI Responses) hand it to the template; the server's tests parse the same
# conversation from each protocol and compare their rendering with this case's.
AGENT_REASONING = [
    {"role": "system", "content": "You are a coding agent."},
    {"role": "user", "content": "Is it warmer in Paris or in Oslo?"},
    {"role": "assistant",
     "reasoning_content": "I need both temperatures; start with Paris.",
     "content": "Let me check Paris first.",
     "tool_calls": [
         {"id": "call_a", "type": "function",
          "function": {"name": "get_weather",
                       "arguments": {"location": "Paris", "unit": "celsius"}}}]},
    {"role": "tool", "tool_call_id": "call_a", "content": "{\"temp\": 18}"},
    {"role": "assistant",
     "reasoning_content": "Paris is 18 C. Now Oslo.",
     "content": "",
     "tool_calls": [
         {"id": "call_b", "type": "function",
          "function": {"name": "get_weather",
                       "arguments": {"location": "Oslo", "unit": "celsius"}}}]},
    {"role": "tool", "tool_call_id": "call_b", "content": "{\"temp\": 4}"},
    {"role": "assistant",
     "reasoning_content": "18 > 4.",
     "content": "Paris (18 °C) is warmer than Oslo (4 °C)."},
    {"role": "user", "content": "And in Fahrenheit?"},
]

# Ends in an assistant turn; rendered with add_generation_prompt=false (training-style).
COMPLETED = [
    SYSTEM,
    {"role": "user", "content": "Name a prime number."},
    {"role": "assistant", "reasoning_content": "2 is the smallest prime.",
     "content": "2 is prime."},
]


def case(name, messages, agp=True, tools=None, enable_thinking=None, reasoning_effort=None,
         clear_thinking=None):
    return {
        "name": name,
        "messages": messages,
        "tools": tools,
        "add_generation_prompt": agp,
        "enable_thinking": enable_thinking,
        "reasoning_effort": reasoning_effort,
        "clear_thinking": clear_thinking,
    }


def cases_for(source, efforts):
    out = [
        case("single", SINGLE),
        case("multi_reasoning", MULTI_REASONING),
        case("inline_think", INLINE_THINK),
        case("tools", TOOL_MESSAGES, tools=TOOLS),
        # Tools declared but never called: the declaration alone (tojson key order, TypeScript
        # rendering) even where a template cannot render tool calls.
        case("tools_no_calls", SINGLE, tools=TOOLS),
    ]
    if "enable_thinking" in source:
        out.append(case("thinking_on", MULTI_REASONING, enable_thinking=True))
        out.append(case("thinking_off", MULTI_REASONING, enable_thinking=False))
    if efforts:
        assert "reasoning_effort" in source
        for level in efforts:
            out.append(case(f"effort_{level}", SINGLE, reasoning_effort=level))
    if "clear_thinking" in source:
        out.append(case("clear_thinking_true", MULTI_REASONING, clear_thinking=True))
        out.append(case("clear_thinking_false", MULTI_REASONING, clear_thinking=False))
        out.append(case("agent_reasoning_kept", AGENT_REASONING, tools=TOOLS,
                        clear_thinking=False))
    out.append(case("no_generation_prompt", COMPLETED, agp=False))
    return out


# ------------------------------------------------------------------------------------------------
# Rendering
# ------------------------------------------------------------------------------------------------

def context_for(c, bos, eos, hf_style=False):
    ctx = {
        "messages": copy.deepcopy(c["messages"]),
        "add_generation_prompt": c["add_generation_prompt"],
        "bos_token": bos,
        "eos_token": eos,
    }
    if c["tools"] is not None:
        ctx["tools"] = copy.deepcopy(c["tools"])
    elif hf_style:
        ctx["tools"] = None
    if hf_style:
        ctx["documents"] = None
    for key in ("enable_thinking", "reasoning_effort", "clear_thinking"):
        if c[key] is not None:
            ctx[key] = c[key]
    return ctx


def render(template, ctx):
    try:
        return template.render(**ctx), None
    except Exception as e:  # the template raised (raise_exception, sandbox, type error ...)
        return None, f"{type(e).__name__}: {e}"


def main():
    env = make_env()
    names = sorted(f for f in os.listdir(FIXTURES) if f.endswith(".jinja"))
    missing = set(TEMPLATES) ^ set(names)
    if missing:
        sys.exit(f"template list and files differ: {sorted(missing)}")

    exp_dir = os.path.join(FIXTURES, EXPECTED_DIR)
    if os.path.isdir(exp_dir):
        shutil.rmtree(exp_dir)
    os.makedirs(exp_dir)

    all_cases = []
    for name in names:
        with open(os.path.join(FIXTURES, name), encoding="utf-8", newline="") as f:
            source = f.read()
        bos, eos, efforts = TEMPLATES[name]
        template = env.from_string(source)
        stem = name[: -len(".jinja")]
        for c in cases_for(source, efforts):
            text, err = render(template, context_for(c, bos, eos))
            # Same result with transformers' always-present tools=None / documents=None?
            text2, err2 = render(template, context_for(c, bos, eos, hf_style=True))
            if (text, err is None) != (text2, err2 is None):
                sys.exit(f"{name} {c['name']}: tools undefined vs None render differently")
            entry = {"name": c["name"], "template": name}
            entry.update({k: c[k] for k in ("messages", "tools", "add_generation_prompt")})
            entry["bos_token"] = bos
            entry["eos_token"] = eos
            entry.update({k: c[k] for k in ("enable_thinking", "reasoning_effort",
                                             "clear_thinking")})
            if err is None:
                fname = f"{stem}__{c['name']}.txt"
                with open(os.path.join(exp_dir, fname), "wb") as f:
                    f.write(text.encode("utf-8"))
                entry["expected"] = f"{EXPECTED_DIR}/{fname}"
            else:
                entry["error"] = True
                entry["python_error"] = err
                print(f"expected error: {name} {c['name']}: {err}")
            all_cases.append(entry)

    with open(os.path.join(FIXTURES, "cases.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(all_cases, f, ensure_ascii=False, indent=1)
        f.write("\n")

    per = {}
    for e in all_cases:
        per.setdefault(e["template"], [0, 0])
        per[e["template"]][0] += 1
        per[e["template"]][1] += e.get("error", False)
    for t, (n, nerr) in per.items():
        print(f"{t}: {n} cases, {nerr} expected errors")
    print(f"jinja2 {jinja2.__version__}; {len(all_cases)} cases written")


if __name__ == "__main__":
    main()
