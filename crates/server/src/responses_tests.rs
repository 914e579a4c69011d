use super::*;
use axum::http::StatusCode;

fn model() -> ModelInfo {
    crate::test_model()
}

#[test]
fn maps_items_to_turns_with_reasoning_calls_and_outputs() {
    let kept = Kept::default();
    let p = parse(
        &json!({
            "model": "gpt-5-codex", "instructions": "You are Codex.", "stream": true, "store": false,
            "include": ["reasoning.encrypted_content"],
            "reasoning": { "effort": "medium" }, "max_output_tokens": 100000,
            "tools": [
                { "type": "function", "name": "shell", "description": "Run a command",
                  "parameters": { "type": "object", "properties": { "command": { "type": "string" } } } },
                { "type": "web_search" }
            ],
            "input": [
                { "type": "message", "role": "developer", "content": [{ "type": "input_text", "text": "Be careful." }] },
                { "role": "user", "content": "List files." },
                { "type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "Use ls." },
                { "type": "function_call", "call_id": "call_1", "name": "shell", "arguments": "{\"command\": \"ls\"}" },
                { "type": "function_call_output", "call_id": "call_1", "output": "a.txt" },
                { "type": "reasoning", "id": "rs_2", "summary": [{ "type": "summary_text", "text": "Done." }] },
                { "type": "message", "role": "assistant", "content": [{ "type": "output_text", "text": "One file: a.txt" }] },
                { "type": "message", "role": "user", "content": [{ "type": "input_text", "text": "Thanks" }] }
            ]
        }),
        &model(),
        &kept,
    )
    .unwrap();
    assert!(!p.store && p.instructions && p.chat.stream && p.chat.parse_tools);
    let g = &p.chat.generate;
    assert_eq!(g.sampling.max_tokens, 4096);
    assert_eq!(
        (g.enable_thinking, g.reasoning_effort.as_deref()),
        (Some(true), Some("high"))
    );
    assert_eq!(g.clear_thinking, Some(false));
    assert_eq!(
        g.tools.as_ref().unwrap().as_array().unwrap().len(),
        1,
        "built-in tools left out"
    );
    assert_eq!(g.tools.as_ref().unwrap()[0]["function"]["name"], "shell");
    let m = &g.messages;
    let roles: Vec<Role> = m.iter().map(|t| t.role).collect();
    use Role::*;
    assert_eq!(
        roles,
        [System, System, User, Assistant, Tool, Assistant, User]
    );
    assert_eq!(m[3].reasoning.as_deref(), Some("Use ls."));
    assert_eq!(
        m[3].tool_calls.as_ref().unwrap()[0]["function"]["arguments"],
        json!({ "command": "ls" })
    );
    assert_eq!(
        (m[4].content.as_str(), m[4].tool_call_id.as_deref()),
        ("a.txt", Some("call_1"))
    );
    assert_eq!(
        (m[5].reasoning.as_deref(), m[5].content.as_str()),
        (Some("Done."), "One file: a.txt")
    );
}

#[test]
fn previous_response_id_continues_a_kept_conversation() {
    let kept = Kept::default();
    let first = parse(
        &json!({ "instructions": "Sys", "input": "Hi" }),
        &model(),
        &kept,
    )
    .unwrap();
    let said = Collected {
        reasoning: "greet".into(),
        content: "Hello".into(),
        ..Default::default()
    };
    keep(
        &kept,
        "resp_1",
        kept_turns(&first.kept_request(), &said, &[]),
    );
    let next = parse(
        &json!({ "previous_response_id": "resp_1", "instructions": "New", "input": "Again" }),
        &model(),
        &kept,
    )
    .unwrap();
    let m = &next.chat.generate.messages;
    let texts: Vec<(Role, &str)> = m.iter().map(|t| (t.role, t.content.as_str())).collect();
    assert_eq!(
        texts,
        [
            (Role::System, "New"),
            (Role::User, "Hi"),
            (Role::Assistant, "Hello"),
            (Role::User, "Again")
        ],
        "earlier instructions are not carried over"
    );
    assert_eq!(m[2].reasoning.as_deref(), Some("greet"));
    let e = parse(
        &json!({ "previous_response_id": "resp_x", "input": "x" }),
        &model(),
        &kept,
    )
    .err()
    .unwrap();
    assert_eq!(e.status, StatusCode::NOT_FOUND);
    // Only the last KEPT are kept.
    for i in 0..KEPT + 1 {
        keep(&kept, &format!("r{i}"), Vec::new());
    }
    assert_eq!(kept.lock().unwrap().len(), KEPT);
    assert!(kept.lock().unwrap().iter().all(|(id, _)| id != "r0"));
}

#[test]
fn malformed_requests_are_400s_that_say_what_is_wrong() {
    for (body, says) in [
        (json!({}), "input"),
        (json!({ "input": [] }), "input"),
        (
            json!({ "input": [{ "content": "no type or role" }] }),
            "needs a type",
        ),
        (
            json!({ "input": [{ "role": "robot", "content": "x" }] }),
            "input.0.role",
        ),
        (
            json!({ "input": [{ "role": "user", "content": [{ "type": "input_image", "image_url": "x" }] }] }),
            "not supported",
        ),
        (
            json!({ "input": [{ "type": "function_call_output", "call_id": "call_9", "output": "x" }] }),
            "no earlier function_call",
        ),
        (
            json!({ "input": [{ "type": "function_call", "call_id": "c", "name": "f", "arguments": "[1]" }] }),
            "arguments",
        ),
        (
            json!({ "input": [{ "type": "item_reference", "id": "x" }] }),
            "item_reference",
        ),
        (
            json!({ "input": "x", "max_output_tokens": 0 }),
            "max_output_tokens",
        ),
        (
            json!({ "input": "x", "tools": [{ "type": "function" }] }),
            "tools.0.name",
        ),
        (
            json!({ "input": "x", "tool_choice": "sometimes" }),
            "tool_choice",
        ),
        (json!({ "input": "x", "top_p": 7 }), "top_p"),
    ] {
        let e = parse(&body, &model(), &Kept::default()).err().unwrap();
        assert_eq!(e.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(e.message.contains(says), "{body}: {}", e.message);
    }
}
