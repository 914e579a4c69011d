#!/usr/bin/env python3
"""Coding agents' protocols with the official SDKs against `localglm serve` (real server
processes): the `anthropic` SDK on `/v1/messages` and the `openai` SDK's `responses` client on
`/v1/responses`.

* On the scripted engine (`LOCALGLM_ENGINE=scripted`, which thinks, then answers or calls the
  first tool in GLM's XML format — random weights never call a tool): plain and streaming
  replies with thinking kept apart from text, a full tool round trip, count_tokens, a wrong key,
  an unknown endpoint, an oversized body and malformed requests (clear 400s; the server keeps
  serving), reasoning items sent back.
* On the tiny GLM-5.x fixture (LocalGLM's own runtime): a Claude Code–shaped session (system
  blocks with the per-request attribution block, tools, thinking blocks and tool results sent
  back, streaming) and a Codex-shaped one (`store: false`, encrypted reasoning included and sent
  back, function calls and their outputs), each resending its whole growing conversation, with
  prompt-prefix reuse measured from the usage: from the second request on, everything the
  previous request sent comes from the cache and only the rest is computed.

Prints one line per check; exits 1 on the first failure.

Usage: agent_client_test.py LOCALGLM_BINARY
"""
import json
import sys
from pathlib import Path

import anthropic
import openai

import sdk_common
from sdk_common import check

ROOT = Path(__file__).resolve().parent.parent
BIN = sys.argv[1]
GLM = ROOT / "crates/glm/tests/fixtures/tiny-f32.gguf"

WEATHER = {"name": "get_weather", "description": "Current weather in a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
SHELL = {"type": "function", "name": "shell", "description": "Run a shell command",
         "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}


# A kept cache cut further back than its last 16 positions recomputes one token more when the
# model drafts with its MTP block (the block's input row there is not kept; see
# crates/glm/src/mtp.rs), and `serve` loads the block by default (--mtp auto).
MTP_SLACK = 1

def scripted_anthropic(url):
    client = anthropic.Anthropic(base_url=url, api_key="test-key")
    m = client.messages.create(model="claude-sonnet-4-5", max_tokens=256,
                               messages=[{"role": "user", "content": "Hello there"}])
    kinds = [b.type for b in m.content]
    check("messages: thinking and text blocks, apart", kinds == ["thinking", "text"], kinds)
    check("messages: the text answers", "Hello there" in m.content[1].text, m.content)
    check("messages: end_turn and usage", m.stop_reason == "end_turn" and m.usage.output_tokens > 0
          and m.usage.input_tokens > 0, m)

    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=256,
                                messages=[{"role": "user", "content": "Stream this"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    check("streaming: text deltas", "Stream this" in text, text)
    check("streaming: the final message has a thinking block with its signature",
          final.content[0].type == "thinking" and final.content[0].thinking and final.content[0].signature, final)

    ask = [{"role": "user", "content": "Paris"}]
    m = client.messages.create(model="claude-sonnet-4-5", max_tokens=256, tools=[WEATHER], messages=ask)
    uses = [b for b in m.content if b.type == "tool_use"]
    check("tool use: a tool_use block", m.stop_reason == "tool_use" and len(uses) == 1
          and uses[0].name == "get_weather" and uses[0].input == {"city": "Paris"}, m)
    history = ask + [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in m.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": uses[0].id, "content": "18 C"}]},
    ]
    m = client.messages.create(model="claude-sonnet-4-5", max_tokens=256, tools=[WEATHER], messages=history)
    check("tool use: the result is answered", m.stop_reason == "end_turn"
          and "The tool said: 18 C" in m.content[-1].text, m)
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=256, tools=[WEATHER],
                                messages=[{"role": "user", "content": "Oslo"}]) as s:
        final = s.get_final_message()
    uses = [b for b in final.content if b.type == "tool_use"]
    check("tool use, streamed: input_json_delta accumulates to the input",
          final.stop_reason == "tool_use" and uses and uses[0].input == {"city": "Oslo"}, final)

    n = client.messages.count_tokens(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "one two three"}])
    check("count_tokens", n.input_tokens == 3, n)

    try:
        anthropic.Anthropic(base_url=url, api_key="wrong").messages.create(
            model="x", max_tokens=8, messages=[{"role": "user", "content": "x"}])
        check("a wrong key is refused", False)
    except anthropic.AuthenticationError as e:
        check("a wrong key is a 401 authentication_error", e.status_code == 401
              and e.body["error"]["type"] == "authentication_error", e.body)
    try:
        client.post("/v1/nothing", body={}, cast_to=object)
        check("an unknown endpoint is refused", False)
    except anthropic.NotFoundError as e:
        check("an unknown endpoint is a 404 not_found_error", e.body["error"]["type"] == "not_found_error", e.body)
    try:
        client.messages.create(model="x", max_tokens=8, messages=[{"role": "user", "content": "x" * (9 << 20)}])
        check("an oversized body is refused", False)
    except anthropic.APIStatusError as e:
        check("an oversized body is a 413 request_too_large", e.status_code == 413
              and e.body["error"]["type"] == "request_too_large", e.body)
    for name, kwargs in [
        ("a tool_result naming no tool_use", dict(max_tokens=8, messages=[
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "x"}]}])),
        ("a malformed content block", dict(max_tokens=8, messages=[{"role": "user", "content": [{"type": "text"}]}])),
        ("a thinking budget above max_tokens", dict(max_tokens=2000, thinking={"type": "enabled", "budget_tokens": 4096},
                                                   messages=[{"role": "user", "content": "x"}])),
    ]:
        try:
            client.messages.create(model="x", **kwargs)
            check(f"{name} is refused", False)
        except anthropic.BadRequestError as e:
            check(f"{name} is a 400 invalid_request_error", e.body["error"]["type"] == "invalid_request_error", e.body)
    m = client.messages.create(model="x", max_tokens=64, messages=[{"role": "user", "content": "still there?"}])
    check("the server keeps serving after bad requests", m.stop_reason == "end_turn", m)


def scripted_responses(url):
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="test-key")
    r = client.responses.create(model="gpt-5-codex", input="Hello there")
    kinds = [i.type for i in r.output]
    check("responses: a reasoning item then a message", kinds == ["reasoning", "message"], kinds)
    check("responses: output_text", "Hello there" in r.output_text, r.output_text)
    check("responses: usage with reasoning tokens", r.usage.output_tokens > 0
          and r.usage.output_tokens_details.reasoning_tokens > 0, r.usage)

    with client.responses.stream(model="gpt-5-codex", input="Stream this") as s:
        deltas = [e.delta for e in s if e.type == "response.output_text.delta"]
        final = s.get_final_response()
    check("responses streaming: text deltas and the final response", "Stream this" in "".join(deltas)
          and final.status == "completed" and "Stream this" in final.output_text, final)

    r = client.responses.create(model="gpt-5-codex", input="ls", tools=[SHELL])
    calls = [i for i in r.output if i.type == "function_call"]
    check("function calling: a function_call item", len(calls) == 1 and calls[0].name == "shell"
          and json.loads(calls[0].arguments) == {"command": "ls"}, r.output)
    r2 = client.responses.create(model="gpt-5-codex", tools=[SHELL], input=[
        {"role": "user", "content": "ls"},
        *[i.model_dump(exclude_none=True) for i in r.output],
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": "a.txt"},
    ])
    check("function calling: the output is answered", "The tool said: a.txt" in r2.output_text, r2.output)
    r3 = client.responses.create(model="gpt-5-codex", previous_response_id=r.id, tools=[SHELL], input=[
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": "b.txt"}])
    check("previous_response_id continues a kept response", "The tool said: b.txt" in r3.output_text, r3.output)

    r = client.responses.create(model="gpt-5-codex", input="Think", store=False,
                                include=["reasoning.encrypted_content"])
    item = r.output[0]
    check("reasoning items carry the reasoning (also as encrypted_content when asked)",
          item.type == "reasoning" and item.encrypted_content and item.content[0].text == item.encrypted_content, item)
    r2 = client.responses.create(model="gpt-5-codex", store=False, input=[
        {"role": "user", "content": "Think"}, item.model_dump(exclude_none=True),
        {"role": "assistant", "content": r.output_text}, {"role": "user", "content": "again"}])
    check("reasoning items are accepted back", r2.status == "completed", r2)
    try:
        client.responses.create(model="x", input=[{"type": "function_call_output", "call_id": "nope", "output": "x"}])
        check("an output for no call is refused", False)
    except openai.BadRequestError as e:
        check("an output for no call is a 400 in OpenAI's shape", "no earlier function_call" in str(e), e)


def claude_code_session(url):
    """Five requests as Claude Code sends them, each with the whole conversation so far."""
    client = anthropic.Anthropic(base_url=url, api_key="unused")
    history, previous = [], 0
    tools = [WEATHER, {"name": "read_file", "description": "Read a file",
                       "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}]
    for turn in range(5):
        history.append({"role": "user", "content": f"Step {turn}: read src/{turn}.rs and summarise it."})
        system = [
            # Changes every request (Claude Code's attribution block): must not break reuse.
            {"type": "text", "text": f"x-anthropic-billing-header: cc_version=2.1.50; cch={turn:05x};"},
            {"type": "text", "text": "You are Claude Code, a coding agent.", "cache_control": {"type": "ephemeral"}},
        ]
        with client.messages.stream(model="claude-sonnet-4-5", max_tokens=16, system=system, extra_body={"temperature": 0},
                                    tools=tools, metadata={"user_id": "u"}, messages=history) as s:
            m = s.get_final_message()
        u = m.usage
        prompt = u.input_tokens + u.cache_read_input_tokens
        if turn == 0:
            check("Claude Code session: the first request computes its prompt", u.input_tokens == prompt > 50, u)
        else:
            check(f"Claude Code session, request {turn + 1}: the previous {previous} tokens come from the cache, "
                  f"{u.input_tokens} of {prompt} computed", u.cache_read_input_tokens >= previous - MTP_SLACK
                  and u.input_tokens <= prompt - previous + MTP_SLACK, u)
        previous = prompt
        blocks = [b.model_dump(exclude_none=True) for b in m.content if b.type in ("thinking", "text")]
        history.append({"role": "assistant", "content": blocks or [{"type": "text", "text": "ok"}]})


def codex_session(url):
    """Five stateless Responses requests as Codex sends them (store false, reasoning included)."""
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused")
    items, previous = [], 0
    for turn in range(5):
        items.append({"role": "user", "content": [{"type": "input_text", "text": f"Task {turn}: run the tests."}]})
        if turn > 0:
            # The agent's own function call and its output, as Codex resends them.
            items.append({"type": "function_call", "call_id": f"call_{turn}", "name": "shell",
                          "arguments": json.dumps({"command": f"cargo test {turn}"})})
            items.append({"type": "function_call_output", "call_id": f"call_{turn}", "output": "ok"})
        r = client.responses.create(model="gpt-5-codex", instructions="You are Codex.", input=items, tools=[SHELL],
                                    store=False, include=["reasoning.encrypted_content"], max_output_tokens=16,
                                    temperature=0, reasoning={"effort": "high"})
        u = r.usage
        cached = u.input_tokens_details.cached_tokens
        if turn > 0:
            check(f"Codex session, request {turn + 1}: the previous {previous} tokens come from the cache, "
                  f"{u.input_tokens - cached} of {u.input_tokens} computed", cached >= previous - MTP_SLACK, u)
        previous = u.input_tokens
        for item in r.output:
            if item.type in ("reasoning", "message"):
                d = item.model_dump(exclude_none=True)
                if item.type == "reasoning":
                    # Codex sends reasoning back without its `content`: encrypted_content only.
                    d.pop("content", None)
                items.append(d)


def main():
    procs = []
    try:
        fake, url = sdk_common.serve(BIN, "--api-key", "test-key", env={"LOCALGLM_ENGINE": "scripted"})
        procs.append(fake)
        scripted_anthropic(url)
        scripted_responses(url)
        glm, url = sdk_common.serve(BIN, "--model", str(GLM), "--device", "cpu")
        procs.append(glm)
        claude_code_session(url)
        codex_session(url)
        print("agent clients (anthropic, openai responses): all checks passed")
    finally:
        sdk_common.stop_all(procs)


if __name__ == "__main__":
    main()
