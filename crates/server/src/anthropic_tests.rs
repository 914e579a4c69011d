use super::*;
use axum::http::StatusCode;

fn model() -> ModelInfo {
    crate::test_model()
}

fn weather_tool() -> Value {
    json!({ "name": "get_weather", "description": "Weather in a city",
            "input_schema": { "type": "object", "properties": { "city": { "type": "string" } } } })
}

#[test]
fn maps_system_thinking_tool_use_and_tool_results_to_turns() {
    let r = parse(
        &json!({
            "model": "claude-sonnet-4-5", "max_tokens": 99999, "stream": true,
            "system": [{ "type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.37; cch=4f2a;" },
                       { "type": "text", "text": "You are an agent." }, { "type": "text", "text": "Be brief.", "cache_control": { "type": "ephemeral" } }],
            "tools": [weather_tool(), { "type": "web_search_20250305", "name": "web_search" }],
            "thinking": { "type": "enabled", "budget_tokens": 2048 },
            "stop_sequences": ["END"], "temperature": 0.5, "top_k": 20,
            "metadata": { "user_id": "u1" },
            "messages": [
                { "role": "user", "content": "Weather in Paris?" },
                { "role": "assistant", "content": [
                    { "type": "thinking", "thinking": "Call the tool.", "signature": "abc" },
                    { "type": "text", "text": "Checking." },
                    { "type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": { "city": "Paris" } }
                ] },
                { "role": "user", "content": [
                    { "type": "text", "text": "And Oslo?" },
                    { "type": "tool_result", "tool_use_id": "toolu_1", "content": [
                        { "type": "text", "text": "18 C" }, { "type": "image", "source": { "type": "base64", "data": "" } }] }
                ] }
            ]
        }),
        &model(),
        false,
    )
    .unwrap();
    assert!(r.stream && r.parse_tools);
    assert_eq!(r.stop, ["END"]);
    let g = &r.generate;
    assert_eq!(g.sampling.max_tokens, 4096, "capped to the context");
    assert_eq!((g.sampling.temperature, g.sampling.top_k), (0.5, Some(20)));
    assert_eq!(
        (g.enable_thinking, g.reasoning_effort.as_deref()),
        (Some(true), Some("high"))
    );
    assert_eq!(g.clear_thinking, Some(false));
    assert_eq!(
        g.tools,
        Some(
            json!([{ "type": "function", "function": { "name": "get_weather",
            "description": "Weather in a city",
            "parameters": { "type": "object", "properties": { "city": { "type": "string" } } } } }])
        ),
        "the server tool is left out"
    );
    let m = &g.messages;
    assert_eq!(m.len(), 5);
    assert_eq!(
        (m[0].role, m[0].content.as_str()),
        (Role::System, "You are an agent.\nBe brief.")
    );
    assert_eq!(
        (m[1].role, m[1].content.as_str()),
        (Role::User, "Weather in Paris?")
    );
    assert_eq!(m[2].role, Role::Assistant);
    assert_eq!(m[2].content, "Checking.");
    assert_eq!(m[2].reasoning.as_deref(), Some("Call the tool."));
    assert_eq!(
        m[2].tool_calls,
        Some(json!([{ "id": "toolu_1", "type": "function",
            "function": { "name": "get_weather", "arguments": { "city": "Paris" } } }]))
    );
    assert_eq!(
        (
            m[3].role,
            m[3].content.as_str(),
            m[3].tool_call_id.as_deref()
        ),
        (
            Role::Tool,
            format!("18 C\n{NOT_TEXT}").as_str(),
            Some("toolu_1")
        ),
        "the result follows its call; an image stands as a placeholder"
    );
    assert_eq!(
        (m[4].role, m[4].content.as_str()),
        (Role::User, "And Oslo?")
    );
}

#[test]
fn thinking_switches_and_efforts() {
    let with = |extra: Value| {
        let mut body =
            json!({ "max_tokens": 40000, "messages": [{ "role": "user", "content": "x" }] });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let mut m = model();
        m.context_length = Some(100_000);
        let g = parse(&body, &m, false).unwrap().generate;
        (g.enable_thinking, g.reasoning_effort)
    };
    assert_eq!(with(json!({})), (None, None), "the template's default");
    assert_eq!(
        with(json!({ "thinking": { "type": "disabled" } })),
        (Some(false), None)
    );
    assert_eq!(
        with(json!({ "thinking": { "type": "enabled", "budget_tokens": 32000 } })),
        (Some(true), Some("max".into()))
    );
    assert_eq!(
        with(json!({ "output_config": { "effort": "medium" } })),
        (Some(true), Some("high".into()))
    );
    assert_eq!(
        with(json!({ "thinking": { "type": "adaptive" }, "output_config": { "effort": "max" } })),
        (Some(true), Some("max".into()))
    );
}

#[test]
fn claude_codes_thinking_budget_fits_its_max_tokens_whatever_the_context() {
    // max_tokens 32000 with a 31999 budget on a 4096-token context: capped, not refused.
    let r = parse(
        &json!({ "max_tokens": 32000, "thinking": { "type": "enabled", "budget_tokens": 31999 },
                 "messages": [{ "role": "user", "content": "x" }] }),
        &model(),
        false,
    )
    .unwrap();
    assert_eq!(r.generate.sampling.max_tokens, 4096);
    assert_eq!(r.generate.reasoning_effort.as_deref(), Some("max"));
}

#[test]
fn malformed_requests_are_400s_that_say_what_is_wrong() {
    let user = json!([{ "role": "user", "content": "x" }]);
    for (body, says) in [
        (json!({ "messages": user }), "max_tokens: field required"),
        (json!({ "max_tokens": 0, "messages": user }), "max_tokens"),
        (json!({ "max_tokens": 10, "messages": [] }), "messages"),
        (
            json!({ "max_tokens": 10, "messages": [{ "role": "tool", "content": "x" }] }),
            "messages.0.role",
        ),
        (
            json!({ "max_tokens": 10, "messages": [{ "role": "user", "content": [{ "text": "no type" }] }] }),
            "needs a `type`",
        ),
        (
            json!({ "max_tokens": 10, "messages": [{ "role": "user", "content": [{ "type": "text", "text": 5 }] }] }),
            "messages.0.content.0.text",
        ),
        (
            json!({ "max_tokens": 10, "messages": [{ "role": "user", "content": 7 }] }),
            "content",
        ),
        (
            json!({ "max_tokens": 10, "messages": [
            { "role": "user", "content": [{ "type": "tool_result", "tool_use_id": "toolu_9", "content": "x" }] }] }),
            "no earlier tool_use",
        ),
        (
            json!({ "max_tokens": 10, "messages": [{ "role": "assistant", "content": [
            { "type": "tool_use", "id": "t", "name": "f", "input": "not an object" }] }] }),
            "input: must be an object",
        ),
        (
            json!({ "max_tokens": 2000, "thinking": { "type": "enabled", "budget_tokens": 2000 }, "messages": user }),
            "must be less than max_tokens",
        ),
        (
            json!({ "max_tokens": 4000, "thinking": { "type": "enabled", "budget_tokens": 100 }, "messages": user }),
            "at least 1024",
        ),
        (
            json!({ "max_tokens": 10, "thinking": { "type": "sometimes" }, "messages": user }),
            "thinking.type",
        ),
        (
            json!({ "max_tokens": 10, "tools": [{ "name": "f" }], "messages": user }),
            "input_schema",
        ),
        (
            json!({ "max_tokens": 10, "tools": [weather_tool()], "tool_choice": { "type": "tool", "name": "nope" }, "messages": user }),
            "not in tools",
        ),
        (
            json!({ "max_tokens": 10, "stop_sequences": "END", "messages": user }),
            "stop_sequences",
        ),
        (
            json!({ "max_tokens": 10, "temperature": 9, "messages": user }),
            "temperature",
        ),
    ] {
        let e = parse(&body, &model(), false).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(e.message.contains(says), "{body}: {}", e.message);
        assert_eq!(error_body(&e)["error"]["type"], "invalid_request_error");
        assert_eq!(error_body(&e)["type"], "error");
    }
    // Counting needs no max_tokens; an error result is marked.
    let r = parse(
        &json!({ "messages": [
            { "role": "assistant", "content": [{ "type": "tool_use", "id": "t1", "name": "f", "input": {} }] },
            { "role": "user", "content": [{ "type": "tool_result", "tool_use_id": "t1", "content": "boom", "is_error": true }] }
        ] }),
        &model(),
        true,
    )
    .unwrap();
    assert_eq!(r.generate.messages[1].content, "Error: boom");
    assert_eq!(
        r.generate.messages.len(),
        2,
        "no empty user turn after results"
    );
}

#[test]
fn error_types_follow_the_status() {
    let e = |status: StatusCode| ApiError {
        status,
        ..ApiError::invalid("m", None)
    };
    for (status, kind) in [
        (StatusCode::UNAUTHORIZED, "authentication_error"),
        (StatusCode::NOT_FOUND, "not_found_error"),
        (StatusCode::PAYLOAD_TOO_LARGE, "request_too_large"),
        (StatusCode::SERVICE_UNAVAILABLE, "overloaded_error"),
        (StatusCode::INTERNAL_SERVER_ERROR, "api_error"),
    ] {
        assert_eq!(error_body(&e(status))["error"]["type"], kind);
    }
}
