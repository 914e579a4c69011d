//! Real chat templates (GLM-4.6, GLM-4.7-Flash, GLM-5.2, Qwen3, DeepSeek-V3.2, gpt-oss, SmolLM3,
//! Kimi-K2) rendered by [`ChatTemplate`] and compared byte for byte with what Python jinja2
//! renders the way Hugging Face `apply_chat_template` does. The expected texts are written by
//! `scripts/make_template_fixtures.py`; see `tests/fixtures/chat-templates/README.md`.
//!
//! Every case is checked before the test fails, and the failure lists each mismatch with the
//! offset of the first differing byte and the text around it, so one run shows every problem.

use localglm_glm::template::{ChatTemplate, TemplateOptions};
use localglm_glm::GlmError;
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;

/// Bytes of context shown on each side of the first difference.
const CONTEXT: usize = 80;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/chat-templates")
}

fn read_text(name: &str) -> String {
    let path = fixture_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A nullable field of a case: JSON `null` or absent is `None`.
fn opt<'a>(case: &'a Value, key: &str) -> Option<&'a Value> {
    case.get(key).filter(|v| !v.is_null())
}

fn opt_bool(case: &Value, key: &str) -> Option<bool> {
    opt(case, key).map(|v| {
        v.as_bool()
            .unwrap_or_else(|| panic!("`{key}` must be a bool or null, got {v}"))
    })
}

fn options(case: &Value) -> TemplateOptions {
    let string = |key: &str| {
        case[key]
            .as_str()
            .unwrap_or_else(|| panic!("`{key}` must be a string"))
            .to_string()
    };
    TemplateOptions {
        add_generation_prompt: case["add_generation_prompt"]
            .as_bool()
            .expect("`add_generation_prompt` must be a bool"),
        enable_thinking: opt_bool(case, "enable_thinking"),
        reasoning_effort: opt(case, "reasoning_effort").map(|v| {
            v.as_str()
                .expect("`reasoning_effort` must be a string or null")
                .to_string()
        }),
        clear_thinking: opt_bool(case, "clear_thinking"),
        tools: opt(case, "tools").cloned(),
        bos_token: string("bos_token"),
        eos_token: string("eos_token"),
        // The fixtures pin `strftime_now` to 2026-01-15 09:30:00 UTC.
        now: Some(1_768_469_400),
    }
}

/// Largest char boundary of `s` at or below `at`.
fn floor_boundary(s: &str, mut at: usize) -> usize {
    at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Smallest char boundary of `s` at or above `at`.
fn ceil_boundary(s: &str, mut at: usize) -> usize {
    at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at += 1;
    }
    at
}

/// About `CONTEXT` bytes before and after byte `at` of `s`, escaped, with `⟪HERE⟫` at `at`.
fn around(s: &str, at: usize) -> String {
    let mid = floor_boundary(s, at);
    let lo = floor_boundary(s, mid.saturating_sub(CONTEXT));
    let hi = ceil_boundary(s, mid + CONTEXT);
    // Debug-escaped (newlines as \n) without the closing / opening quote at the join.
    let before = format!("{:?}", &s[lo..mid]);
    let after = format!("{:?}", &s[mid..hi]);
    format!(
        "{}{}⟪HERE⟫{}{}",
        if lo > 0 { "…" } else { "" },
        &before[..before.len() - 1],
        &after[1..],
        if hi < s.len() { "…" } else { "" },
    )
}

/// Offset of the first differing byte, or `None` when equal.
fn first_difference(want: &[u8], got: &[u8]) -> Option<usize> {
    if want == got {
        return None;
    }
    Some(
        want.iter()
            .zip(got)
            .position(|(a, b)| a != b)
            .unwrap_or(want.len().min(got.len())),
    )
}

#[test]
fn real_chat_templates_render_like_jinja2() {
    let cases: Vec<Value> = serde_json::from_str(&read_text("cases.json")).expect("cases.json");
    assert!(!cases.is_empty(), "cases.json has no cases");

    let mut templates: HashMap<String, Result<ChatTemplate, GlmError>> = HashMap::new();
    let mut failures = Vec::new();
    let mut passed = 0usize;

    for case in &cases {
        let name = case["name"].as_str().expect("case `name`");
        let file = case["template"].as_str().expect("case `template`");
        let label = format!("{file} / {name}");

        let template = templates
            .entry(file.to_string())
            .or_insert_with(|| ChatTemplate::new(&read_text(file), file));
        let template = match template {
            Ok(t) => t,
            Err(e) => {
                failures.push(format!("{label}: the template does not compile: {e}"));
                continue;
            }
        };

        let result = template.render_json(case["messages"].clone(), &options(case));

        if case["error"].as_bool() == Some(true) {
            match result {
                Err(_) => passed += 1,
                Ok(text) => failures.push(format!(
                    "{label}: jinja2 raises ({}), but we rendered {} bytes:\n    {}",
                    case["python_error"].as_str().unwrap_or("an error"),
                    text.len(),
                    around(&text, 0),
                )),
            }
            continue;
        }

        let expected_file = case["expected"]
            .as_str()
            .unwrap_or_else(|| panic!("{label}: neither `expected` nor `error`"));
        let want = read_text(expected_file);
        match result {
            Err(e) => failures.push(format!("{label}: render failed: {e}")),
            Ok(got) => match first_difference(want.as_bytes(), got.as_bytes()) {
                None => passed += 1,
                Some(at) => failures.push(format!(
                    "{label}: first difference at byte {at} (expected {} bytes, got {})\n    \
                     expected: {}\n    got:      {}",
                    want.len(),
                    got.len(),
                    around(&want, at),
                    around(&got, at),
                )),
            },
        }
    }

    if !failures.is_empty() {
        panic!(
            "{} of {} chat-template cases differ from jinja2 ({passed} pass):\n\n{}\n",
            failures.len(),
            cases.len(),
            failures.join("\n\n"),
        );
    }
}
