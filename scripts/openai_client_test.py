#!/usr/bin/env python3
"""The official `openai` Python client against `localglm serve` (a real server process):
on the default model (SmolLM2, a dense `llama` model on LocalGLM's runtime) and on the tiny
GLM-5.x fixture (LocalGLM's runtime, a thinking template): list models, plain and streaming
chat, `reasoning_content` separated, `chat_template_kwargs` honoured, tools, errors. Tool calls parsed into the SDK's
`tool_calls` objects are checked on the scripted engine (`LOCALGLM_ENGINE=scripted`, which
writes GLM's XML call format), since random weights never call a tool. Prints one line per
check; exits 1 on the first failure.

Usage: openai_client_test.py LOCALGLM_BINARY
"""
import json
import sys
from pathlib import Path

import openai

import sdk_common

ROOT = Path(__file__).resolve().parent.parent
BIN = sys.argv[1]
GLM = ROOT / "crates/glm/tests/fixtures/tiny-f32.gguf"


def serve(*args, env=None):
    p, url = sdk_common.serve(BIN, *args, env=env)
    return p, f"{url}/v1"


TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}}]
ROUND_TRIP = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {
        "name": "get_weather", "arguments": json.dumps({"city": "Paris"})}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "21 C"},
]


check = sdk_common.check


def main():
    procs = []
    try:
        small, url = serve("--api-key", "test-key", "--strict-model-names")
        procs.append(small)
        client = openai.OpenAI(base_url=url, api_key="test-key")
        models = client.models.list().data
        check("models lists the default model", len(models) == 1 and "SmolLM2" in models[0].id, models)
        r = client.chat.completions.create(
            model=models[0].id, messages=[{"role": "user", "content": "Say hello."}], max_tokens=16, temperature=0
        )
        check("plain completion has text", bool(r.choices[0].message.content), r)
        check("usage is reported", r.usage.completion_tokens >= 1 and r.usage.prompt_tokens > 5, r.usage)
        chunks = list(
            client.chat.completions.create(
                model=models[0].id, messages=[{"role": "user", "content": "Count to five."}],
                max_tokens=16, stream=True,
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        check("streaming yields deltas and a finish reason", text and chunks[-1].choices[0].finish_reason in ("stop", "length"), chunks[-1])
        try:
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
            check("unknown model is refused with --strict-model-names", False)
        except openai.NotFoundError as e:
            check("unknown model is a 404 in OpenAI's shape (--strict-model-names)", e.status_code == 404 and "gpt-4o" in str(e))
        try:
            openai.OpenAI(base_url=url, api_key="wrong").models.list()
            check("a wrong key is refused", False)
        except openai.AuthenticationError as e:
            check("a wrong key is a 401", e.status_code == 401)
        try:
            client.chat.completions.create(
                model=models[0].id, messages=[{"role": "user", "content": "x"}], tools=TOOLS
            )
            check("tools on a template without tools are refused", False)
        except openai.BadRequestError as e:
            check("tools on a template without tools are a 400", e.status_code == 400 and "tools" in str(e), e)

        glm, url = serve("--model", str(GLM))
        procs.append(glm)
        client = openai.OpenAI(base_url=url, api_key="unused")
        r = client.chat.completions.create(
            model="tiny-f32", messages=[{"role": "user", "content": "Hi"}], max_tokens=24, seed=3
        )
        msg = r.choices[0].message
        reasoning = getattr(msg, "reasoning_content", None) or (msg.model_extra or {}).get("reasoning_content")
        check("a thinking template's reasoning is separate", bool(reasoning) and reasoning not in (msg.content or ""), msg)
        r = client.chat.completions.create(
            model="tiny-f32", messages=[{"role": "user", "content": "Hi"}], max_tokens=24, seed=3,
            extra_body={"chat_template_kwargs": {"enable_thinking": False}},
        )
        msg = r.choices[0].message
        reasoning = (msg.model_extra or {}).get("reasoning_content")
        check("chat_template_kwargs enable_thinking=false: no reasoning", not reasoning, msg)
        stream = client.chat.completions.create(
            model="tiny-f32", messages=[{"role": "user", "content": "Hi"}], max_tokens=12, stream=True, seed=3
        )
        kinds = set()
        for c in stream:
            if c.choices:
                extra = c.choices[0].delta.model_extra or {}
                if extra.get("reasoning_content"):
                    kinds.add("reasoning")
                if c.choices[0].delta.content:
                    kinds.add("content")
        check("streamed reasoning arrives as reasoning_content deltas", "reasoning" in kinds, kinds)
        hi = [{"role": "user", "content": "Hi"}]
        plain = client.chat.completions.create(model="tiny-f32", messages=hi, max_tokens=1)
        with_tools = client.chat.completions.create(model="tiny-f32", messages=hi, max_tokens=1, tools=TOOLS)
        check("tools are rendered into a GLM prompt", with_tools.usage.prompt_tokens > plain.usage.prompt_tokens + 20,
              (plain.usage, with_tools.usage))
        r = client.chat.completions.create(model="tiny-f32", max_tokens=1, tools=TOOLS, messages=ROUND_TRIP)
        check("a tool call and its result are accepted by a GLM template", r.usage.prompt_tokens > with_tools.usage.prompt_tokens, r.usage)

        fake, url = serve(env={"LOCALGLM_ENGINE": "scripted"})
        procs.append(fake)
        client = openai.OpenAI(base_url=url, api_key="unused")
        model = client.models.list().data[0].id
        r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Paris"}], tools=TOOLS)
        call = (r.choices[0].message.tool_calls or [None])[0]
        check("a GLM XML tool call becomes tool_calls", r.choices[0].finish_reason == "tool_calls" and call is not None
              and call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}, r)
        calls = {}
        finish = None
        for c in client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Oslo"}], tools=TOOLS, stream=True
        ):
            for d in (c.choices[0].delta.tool_calls or []) if c.choices else []:
                slot = calls.setdefault(d.index, {"name": "", "arguments": ""})
                slot["name"] += d.function.name or ""
                slot["arguments"] += d.function.arguments or ""
            if c.choices and c.choices[0].finish_reason:
                finish = c.choices[0].finish_reason
        check("streamed tool_calls deltas accumulate to the call", finish == "tool_calls" and calls.get(0) ==
              {"name": "get_weather", "arguments": json.dumps({"city": "Oslo"}, separators=(",", ":"))}, (calls, finish))
        messages = [
            {"role": "user", "content": "Paris"},
            r.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "21 C"},
        ]
        r = client.chat.completions.create(model=model, messages=messages, tools=TOOLS)
        check("the tool result goes back and is answered", r.choices[0].message.content == "The tool said: 21 C", r)
        print("openai client: all checks passed")
    finally:
        sdk_common.stop_all(procs)


if __name__ == "__main__":
    main()
