//! Tokenizer against the Hugging Face `tokenizers` oracle, and the chat template against
//! renderings made with Python `jinja2` (both written by `scripts/make_glm_fixtures.py`).

use localglm_gguf::GgufModel;
use localglm_glm::template::{ChatTemplate, TemplateMessage, TemplateOptions};
use localglm_glm::tokenizer::GlmTokenizer;
use serde_json::Value;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn load() -> (GgufModel, GlmTokenizer) {
    let g = GgufModel::open(fixture("tiny-f32.gguf")).unwrap();
    let t = GlmTokenizer::from_gguf(&g).unwrap();
    (g, t)
}

#[test]
fn encodes_like_the_hf_tokenizer_and_round_trips() {
    let (_, tok) = load();
    let text = std::fs::read_to_string(fixture("tokenizer-cases.json")).unwrap();
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert!(cases.len() >= 20);
    for c in cases {
        let s = c["text"].as_str().unwrap();
        let want: Vec<u32> = c["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let specials = c["specials"].as_bool().unwrap_or(false);
        let got = if specials {
            tok.encode_with_specials(s).unwrap()
        } else {
            tok.encode_text(s).unwrap()
        };
        assert_eq!(got, want, "{s:?}");
        assert_eq!(tok.decode(&got).unwrap(), s);
    }
}

#[test]
fn digits_split_in_groups_of_three_and_specials_never_come_from_text() {
    let (_, tok) = load();
    let ids = tok.encode_text("1234567").unwrap();
    let pieces: Vec<String> = ids.iter().map(|&i| tok.decode(&[i]).unwrap()).collect();
    // Each pre-token is at most 3 digits, so no token spans a group boundary.
    let joined = pieces.concat();
    assert_eq!(joined, "1234567");
    let mut at = 0;
    for p in &pieces {
        let group_end = (at / 3 + 1) * 3;
        assert!(at + p.len() <= group_end, "{pieces:?}");
        at += p.len();
    }
    let user = tok.special_id("<|user|>").unwrap();
    let ids = tok.encode_text("a <|user|> b").unwrap();
    assert!(!ids.contains(&user));
    assert!(tok
        .encode_with_specials("a<|user|>b")
        .unwrap()
        .contains(&user));
    for s in ["<|endoftext|>", "<|user|>", "<|observation|>"] {
        assert!(tok.stop_ids.contains(&tok.special_id(s).unwrap()), "{s}");
    }
}

#[test]
fn prompt_encoding_keeps_user_text_plain() {
    let (_, tok) = load();
    let rendered = "[gMASK]<sop><|user|>say <|user|> literally<|assistant|><think>";
    let ids = tok
        .encode_prompt(rendered, &["say <|user|> literally"])
        .unwrap();
    let user = tok.special_id("<|user|>").unwrap();
    assert_eq!(ids.iter().filter(|&&i| i == user).count(), 1);
    assert_eq!(tok.decode(&ids).unwrap(), rendered);
}

#[test]
fn template_renders_like_jinja2() {
    let (g, _) = load();
    let src = g.get_str("tokenizer.chat_template").unwrap();
    let t = ChatTemplate::new(src, "tiny").unwrap();
    let text = std::fs::read_to_string(fixture("chat-template-cases.json")).unwrap();
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    for c in cases {
        let msgs: Vec<TemplateMessage> = c["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| TemplateMessage {
                role: m["role"].as_str().unwrap().into(),
                content: m["content"].as_str().unwrap_or("").into(),
                reasoning_content: m["reasoning_content"].as_str().map(Into::into),
                tool_calls: m.get("tool_calls").cloned(),
                tool_call_id: m["tool_call_id"].as_str().map(Into::into),
            })
            .collect();
        let k = &c["kwargs"];
        let opts = TemplateOptions {
            add_generation_prompt: k["add_generation_prompt"].as_bool().unwrap_or(false),
            enable_thinking: k["enable_thinking"].as_bool(),
            reasoning_effort: k["reasoning_effort"].as_str().map(Into::into),
            clear_thinking: k["clear_thinking"].as_bool(),
            tools: k.get("tools").cloned(),
            ..Default::default()
        };
        let got = t.render(&msgs, &opts).unwrap();
        let want = c["expected"].as_str().unwrap();
        if opts.tools.is_some() {
            // KNOWN GAP: serde_json / minijinja here are built without `preserve_order`, so
            // tool JSON keys come out sorted where Python keeps insertion order. Compare
            // with the tools block masked out; everything after it must match exactly.
            let tail = |s: &str| s[s.rfind("</tools>").unwrap()..].to_string();
            assert_eq!(tail(&got), tail(want), "{c}");
            continue;
        }
        assert_eq!(got, want, "{c}");
    }
    let controls = t.controls();
    assert!(controls.thinking_toggle);
    assert_eq!(
        controls.effort_levels,
        vec!["high".to_string(), "max".to_string()]
    );
}

#[test]
fn glm52_thinking_switch_renders_as_the_spec_says() {
    let (g, _) = load();
    let t = ChatTemplate::new(g.get_str("tokenizer.chat_template").unwrap(), "tiny").unwrap();
    let msgs = [TemplateMessage::new("user", "hi")];
    let mut o = TemplateOptions {
        add_generation_prompt: true,
        ..Default::default()
    };
    assert_eq!(
        t.render(&msgs, &o).unwrap(),
        "[gMASK]<sop><|system|>Reasoning Effort: Max<|user|>hi<|assistant|><think>"
    );
    o.enable_thinking = Some(false);
    assert!(t
        .render(&msgs, &o)
        .unwrap()
        .ends_with("<|assistant|><think></think>"));
    o.enable_thinking = Some(true);
    o.reasoning_effort = Some("high".into());
    assert!(t
        .render(&msgs, &o)
        .unwrap()
        .contains("Reasoning Effort: High"));
}

#[test]
fn a_broken_template_names_the_model() {
    let err = ChatTemplate::new("{% if %}", "My-Model.gguf").unwrap_err();
    assert!(err.to_string().contains("My-Model.gguf"), "{err}");
}

/// A message the template wrote stripped of its surrounding whitespace is still found (and
/// kept plain: its special-looking text is not a special token).
#[test]
fn prompt_encoding_finds_stripped_spans() {
    let (_, tok) = load();
    let rendered = "[gMASK]<sop><|user|>hi <|user|><|assistant|>ab<|user|>next";
    let spans = ["  hi <|user|>\n", "ab", "next"];
    let ids = tok.encode_prompt(rendered, &spans).unwrap();
    let user = tok.special_id("<|user|>").unwrap();
    // The stripped user text's `<|user|>` stays plain: only the template's two are specials.
    assert_eq!(ids.iter().filter(|&&i| i == user).count(), 2);
    assert_eq!(tok.decode(&ids).unwrap(), rendered);
}
