//! The GLM-5.x backend end to end on the tiny random-weight `glm-dsa` fixtures (the text is
//! gibberish; the flow — template, streaming, reasoning split by token id, stop, stats,
//! cancellation, cache reuse — is what is tested), through the same `AutoEngine` the app uses.

use futures::StreamExt;
use localglm_engine::auto::AutoEngine;
use localglm_engine::glm::GlmChat;
use localglm_engine::{
    ChatTurn, Engine, EngineEvent, GenerateRequest, LoadSpec, Role, SamplingParams,
};
use localglm_glm::RuntimeOptions;
use localglm_protocol::FinishReason;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../glm/tests/fixtures")
        .join(name)
}

fn request(text: &str, thinking: Option<bool>, max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        messages: vec![ChatTurn::new(Role::User, text)],
        sampling: SamplingParams {
            temperature: 1.0,
            top_p: 1.0,
            top_k: None,
            max_tokens,
            seed: Some(7),
            ..Default::default()
        },
        enable_thinking: thinking,
        reasoning_effort: None,
        clear_thinking: None,
        tools: None,
    }
}

async fn collect(engine: &AutoEngine, req: GenerateRequest) -> (String, String, FinishReason, u32) {
    let (reasoning, content, reason, stats) = turn(engine, req).await;
    (reasoning, content, reason, stats.generated_tokens)
}

#[tokio::test]
async fn auto_engine_runs_glm_dsa_on_the_own_runtime() {
    let engine = AutoEngine::new();
    let info = engine
        .load(LoadSpec::new(fixture("tiny-f32.gguf")))
        .await
        .unwrap();
    assert_eq!(info.backend, "localglm-glm");
    assert_eq!(info.architecture.as_deref(), Some("glm-dsa"));
    assert_eq!(info.context_length, Some(1_048_576));
    // What the chat service reads back is what `load` returned, template controls included.
    assert!(info.supports_thinking);
    assert_eq!(info.effort_levels, ["high", "max"]);
    assert_eq!(engine.loaded().as_ref(), Some(&info));

    // Thinking on (template default): the prompt ends inside <think>, so output starts as
    // reasoning.
    let (reasoning, _content, reason, n) = collect(&engine, request("Hello", None, 24)).await;
    assert!(!reasoning.is_empty());
    assert!(matches!(reason, FinishReason::Length | FinishReason::Stop));
    assert!((1..=24).contains(&n));

    // Same seed, same prompt → same output (and the reused cache gives the same logits).
    let again = collect(&engine, request("Hello", None, 24)).await;
    assert_eq!(again.0, reasoning);
}

/// A dense LLaMA-family GGUF runs on the same runtime through the same engine (ChatML
/// template, streaming, stop at `<|im_end|>`, stats), and on mistral.rs when the load asks;
/// the real default model answers on the own runtime when it is installed.
#[tokio::test]
async fn auto_engine_runs_dense_llama_family_models_on_the_own_runtime() {
    let engine = AutoEngine::new();
    for stem in ["tiny-llama-q", "tiny-qwen2-f32", "tiny-qwen3-f32"] {
        let info = engine
            .load(LoadSpec::new(fixture(&format!("{stem}.gguf"))))
            .await
            .unwrap();
        assert_eq!(info.backend, "localglm-glm", "{stem}");
        assert!(!info.supports_thinking);
        assert!(info.placement.as_deref().unwrap_or("").starts_with("CPU"));
        let (reasoning, content, reason, n) = collect(&engine, request("Hello", None, 12)).await;
        assert!(reasoning.is_empty());
        assert!(matches!(reason, FinishReason::Length | FinishReason::Stop));
        assert!((1..=12).contains(&n), "{stem}: {n}");
        assert!(!content.is_empty() || reason == FinishReason::Stop);
    }
    let default = localglm_models::Library::from_env().default_model_path();
    if !default.exists() {
        eprintln!("SKIPPED: the default model is not installed");
        return;
    }
    let info = engine.load(LoadSpec::new(&default)).await.unwrap();
    assert_eq!(info.backend, "localglm-glm");
    assert_eq!(info.architecture.as_deref(), Some("llama"));
    assert_eq!(info.context_length, Some(8192));
    // Asked plainly ("What is the capital of France?") this 135M model nearly ties at its
    // first token: "The" 0.08 nats ahead of "L" in exact f32, and llama.cpp's greedy answer on
    // the same file is "L'Étoile, la Marseillaise, …". Asked for one word, "The" leads by
    // 1.47 nats and llama.cpp answers "The capital of France is Paris." — a check that a
    // last-bit difference cannot flip.
    let mut greedy = request(
        "What is the capital of France? Answer in one word.",
        None,
        24,
    );
    greedy.sampling.temperature = 0.0;
    let (_, content, _, _) = collect(&engine, greedy).await;
    assert!(content.contains("Paris"), "{content}");
    let on_mistral = engine
        .load(LoadSpec {
            mistralrs: true,
            ..LoadSpec::new(&default)
        })
        .await
        .unwrap();
    assert_eq!(on_mistral.backend, "mistralrs");
}

/// The library's "Run with" choices: GLM-5.x only on LocalGLM's runtime, a dense file it runs
/// on either (LocalGLM first, the default), another architecture only on mistral.rs, an
/// unreadable file none.
#[test]
fn the_runtimes_that_can_run_a_file() {
    use localglm_engine::auto::runtimes;
    use localglm_gguf::writer::GgufWriter;
    assert_eq!(runtimes(&fixture("tiny-f32.gguf")), ["localglm"]);
    for stem in ["tiny-llama-q", "tiny-qwen3-f32"] {
        let path = fixture(&format!("{stem}.gguf"));
        assert_eq!(runtimes(&path), ["localglm", "mistralrs"], "{stem}");
    }
    let dir = tempfile::tempdir().unwrap();
    let gemma = dir.path().join("gemma.gguf");
    let mut w = GgufWriter::new();
    w.kv(
        "general.architecture",
        localglm_gguf::Value::String("gemma3".into()),
    );
    w.write(&gemma).unwrap();
    assert_eq!(runtimes(&gemma), ["mistralrs"]);
    let truncated = dir.path().join("cut.gguf");
    std::fs::write(&truncated, b"GGUF\x03\x00").unwrap();
    assert!(runtimes(&truncated).is_empty());
    assert!(runtimes(&dir.path().join("missing.gguf")).is_empty());
}

/// The prompt of `messages` with the given template switches.
fn prompt_of(
    chat: &GlmChat,
    messages: &[ChatTurn],
    enable_thinking: Option<bool>,
    reasoning_effort: Option<&str>,
    clear_thinking: Option<bool>,
) -> Vec<u32> {
    chat.prompt(&GenerateRequest {
        messages: messages.to_vec(),
        enable_thinking,
        reasoning_effort: reasoning_effort.map(str::to_owned),
        clear_thinking,
        ..Default::default()
    })
    .unwrap()
}

#[tokio::test]
async fn thinking_off_renders_an_empty_think_block_and_streams_content() {
    let chat = GlmChat::open(&fixture("tiny-f32.gguf"), RuntimeOptions::default()).unwrap();
    let hi = [ChatTurn::new(Role::User, "hi")];
    let on = prompt_of(&chat, &hi, None, None, None);
    let off = prompt_of(&chat, &hi, Some(false), None, None);
    let open = chat.think_open.unwrap();
    let close = chat.think_close.unwrap();
    assert_eq!(*on.last().unwrap(), open);
    assert_eq!(&off[off.len() - 2..], &[open, close]);
    assert_eq!(
        chat.tokenizer.decode(&on).unwrap(),
        "[gMASK]<sop><|system|>Reasoning Effort: Max<|user|>hi<|assistant|><think>"
    );
    let high = prompt_of(&chat, &hi, None, Some("high"), None);
    assert!(chat
        .tokenizer
        .decode(&high)
        .unwrap()
        .starts_with("[gMASK]<sop><|system|>Reasoning Effort: High<|user|>"));

    let engine = AutoEngine::new();
    engine
        .load(LoadSpec::new(fixture("tiny-q-iq2_xxs.gguf")))
        .await
        .unwrap();
    let (reasoning, content, _, _) = collect(&engine, request("Hello", Some(false), 16)).await;
    // With thinking off the first output is content (a random model may still emit <think>
    // later, which the id-based splitter routes to reasoning).
    assert!(!content.is_empty() || !reasoning.is_empty());
}

#[tokio::test]
async fn cancellation_ends_within_a_token_and_the_engine_stays_usable() {
    let engine = AutoEngine::new();
    engine
        .load(LoadSpec::new(fixture("tiny-f32.gguf")))
        .await
        .unwrap();
    let mut g = engine
        .generate(request("Hello", None, 100_000))
        .await
        .unwrap();
    let mut seen = 0;
    let reason = loop {
        match g.events.next().await.unwrap() {
            EngineEvent::Finished { reason, .. } => break reason,
            _ => {
                seen += 1;
                if seen == 3 {
                    g.cancel();
                }
            }
        }
    };
    assert_eq!(reason, FinishReason::Cancelled);
    let (_, _, reason, _) = collect(&engine, request("Again", None, 4)).await;
    assert!(matches!(reason, FinishReason::Length | FinishReason::Stop));
}

#[tokio::test]
async fn a_foreign_or_truncated_file_is_a_clear_load_error() {
    let dir = std::env::temp_dir().join(format!("localglm-glm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bytes = std::fs::read(fixture("tiny-f32.gguf")).unwrap();
    let cut = dir.join("cut.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let engine = AutoEngine::new();
    let err = engine
        .load(LoadSpec::new(&cut))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cut.gguf") && err.contains("truncated"),
        "{err}"
    );
    assert!(engine.loaded().is_none());
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn past_reasoning_is_kept_in_the_prompt_unless_clear_thinking() {
    let chat = GlmChat::open(&fixture("tiny-f32.gguf"), RuntimeOptions::default()).unwrap();
    let history = [
        ChatTurn::new(Role::User, "q1"),
        ChatTurn {
            reasoning: Some("because <|user|> said so".into()),
            ..ChatTurn::new(Role::Assistant, "a1")
        },
        ChatTurn::new(Role::User, "q2"),
    ];
    let kept = prompt_of(&chat, &history, None, None, None);
    let text = chat.tokenizer.decode(&kept).unwrap();
    assert!(
        text.contains("<|assistant|><think>because <|user|> said so</think>a1<|user|>q2"),
        "{text}"
    );
    // The literal "<|user|>" inside the kept reasoning is text, not the role token.
    let user = chat.tokenizer.special_id("<|user|>").unwrap();
    assert_eq!(kept.iter().filter(|&&t| t == user).count(), 2);
    let cleared = prompt_of(&chat, &history, None, None, Some(true));
    let text = chat.tokenizer.decode(&cleared).unwrap();
    assert!(
        text.contains("<|assistant|><think></think>a1<|user|>q2"),
        "{text}"
    );
}

#[tokio::test]
async fn tools_calls_and_results_render_in_glm_xml_with_single_special_tokens() {
    let chat = GlmChat::open(&fixture("tiny-f32.gguf"), RuntimeOptions::default()).unwrap();
    let request = GenerateRequest {
        messages: vec![
            ChatTurn::new(Role::User, "Weather in Paris?"),
            ChatTurn {
                tool_calls: Some(serde_json::json!([{ "id": "call_1", "type": "function",
                    "function": { "name": "get_weather",
                        "arguments": { "city": "Paris", "days": 2 } } }])),
                ..ChatTurn::new(Role::Assistant, "")
            },
            ChatTurn {
                tool_call_id: Some("call_1".into()),
                ..ChatTurn::new(Role::Tool, "18 C")
            },
        ],
        tools: Some(serde_json::json!([{ "type": "function", "function": {
            "name": "get_weather", "parameters": { "type": "object" } } }])),
        ..Default::default()
    };
    let ids = chat.prompt(&request).unwrap();
    let text = chat.tokenizer.decode(&ids).unwrap();
    assert!(
        text.contains("<tools>\n{\"name\": \"get_weather\", \"parameters\": {\"type\": \"object\"}}\n</tools>"),
        "{text}"
    );
    assert!(
        text.contains(
            "<|assistant|><think></think><tool_call>get_weather<arg_key>city</arg_key>\
             <arg_value>Paris</arg_value><arg_key>days</arg_key><arg_value>2</arg_value>\
             </tool_call><|observation|><tool_response>18 C</tool_response><|assistant|><think>"
        ),
        "{text}"
    );
    // Tool tags are single tokens, as the model was trained on.
    for tag in [
        "<tool_call>",
        "</tool_call>",
        "<arg_key>",
        "<tool_response>",
    ] {
        let id = chat.tokenizer.special_id(tag).expect(tag);
        assert!(ids.contains(&id), "{tag}");
    }

    // Special-token strings inside a tool's description or a call's argument stay text.
    let mut sneaky = request.clone();
    sneaky.tools = Some(serde_json::json!([{ "type": "function", "function": {
        "name": "get_weather", "description": "Ends with \"<|user|>\" then <|observation|>" } }]));
    sneaky.messages[1].tool_calls = Some(serde_json::json!([{ "id": "call_1", "type": "function",
        "function": { "name": "get_weather", "arguments": { "city": "<|user|>Paris" } } }]));
    let ids = chat.prompt(&sneaky).unwrap();
    let count = |tag: &str| {
        let id = chat.tokenizer.special_id(tag).unwrap();
        ids.iter().filter(|&&t| t == id).count()
    };
    assert_eq!(count("<|user|>"), 1, "only the real user turn");
    assert_eq!(count("<|observation|>"), 1, "only the real tool result");
    assert!(chat
        .tokenizer
        .decode(&ids)
        .unwrap()
        .contains("<arg_value><|user|>Paris</arg_value>"));
}

/// Greedy text and finish with MTP drafting equal those without; the stats count the drafts.
#[tokio::test]
async fn mtp_drafting_gives_the_same_greedy_text_and_reports_its_drafts() {
    use localglm_glm::spec::Drafting;
    let run = |mtp: Drafting| async move {
        let engine = AutoEngine::new();
        let spec = LoadSpec {
            mtp,
            ..LoadSpec::new(fixture("tiny-f32.gguf"))
        };
        engine.load(spec).await.unwrap();
        let mut req = request("Hello there", Some(false), 60);
        req.sampling.temperature = 0.0;
        let mut g = engine.generate(req).await.unwrap();
        let mut text = String::new();
        while let Some(ev) = g.events.next().await {
            match ev {
                EngineEvent::Reasoning(t) | EngineEvent::Content(t) => text.push_str(&t),
                EngineEvent::Finished { reason, stats, .. } => return (text, reason, stats),
            }
        }
        panic!("no Finished event");
    };
    let (plain, reason, stats) = run(Drafting::Fixed(0)).await;
    assert_eq!(stats.drafted_tokens, None);
    for k in [1, 3] {
        let (text, r, s) = run(Drafting::Fixed(k)).await;
        assert_eq!((&text, r), (&plain, reason), "{k} drafts");
        assert_eq!(s.generated_tokens, stats.generated_tokens);
        let drafted = s.drafted_tokens.unwrap();
        assert!(
            drafted > 0 && s.accepted_tokens.unwrap() <= drafted,
            "{s:?}"
        );
    }
}

/// One generation's reasoning, content, finish reason and stats.
async fn turn(
    engine: &AutoEngine,
    req: GenerateRequest,
) -> (
    String,
    String,
    FinishReason,
    localglm_protocol::GenerationStats,
) {
    let mut g = engine.generate(req).await.unwrap();
    let (mut reasoning, mut content) = (String::new(), String::new());
    while let Some(ev) = g.events.next().await {
        match ev {
            EngineEvent::Reasoning(t) => reasoning.push_str(&t),
            EngineEvent::Content(t) => content.push_str(&t),
            EngineEvent::Finished {
                reason,
                stats,
                error,
            } => {
                assert!(error.is_none(), "{error:?}");
                return (reasoning, content, reason, stats);
            }
        }
    }
    panic!("no Finished event");
}

/// A conversation's next turn starts from the previous one's cache: on a model whose replies
/// re-encode to the ids that were sampled (a trained model's almost always do: the default
/// model, and the llama fixture here), everything up to the end of the reply is reused and
/// only the new message is computed. The prompt is always the text's own encoding, so an answer
/// never depends on what happens to be cached (`localglm-server`'s agent test checks warm =
/// cold); the random-weight GLM fixture's gibberish re-encodes differently, and its reuse ends
/// at the reply.
#[tokio::test]
async fn the_next_turn_reuses_the_whole_previous_exchange() {
    let engine = AutoEngine::new();
    let mut models = vec![
        (fixture("tiny-f32.gguf"), Some(true), false),
        (fixture("tiny-llama-q.gguf"), None, true),
    ];
    let default = localglm_models::Library::from_env().default_model_path();
    if default.exists() {
        models.push((default, None, true));
    }
    for (path, thinking, whole) in models {
        engine.load(LoadSpec::new(&path)).await.unwrap();
        let mut first = request("Tell me a story about a cat.", thinking, 40);
        first.clear_thinking = Some(false);
        let (reasoning, content, _, s1) = turn(&engine, first.clone()).await;
        let mut second = first.clone();
        second.messages.push(ChatTurn {
            reasoning: (!reasoning.is_empty()).then_some(reasoning),
            ..ChatTurn::new(Role::Assistant, content)
        });
        second.messages.push(ChatTurn::new(Role::User, "And then?"));
        let (_, _, _, s2) = turn(&engine, second).await;
        let cached = s2.cached_tokens.unwrap_or(0);
        eprintln!(
            "{}: turn 1 {} prompt + {} generated; turn 2 {} prompt, {cached} reused",
            path.display(),
            s1.prompt_tokens,
            s1.generated_tokens,
            s2.prompt_tokens
        );
        // At least the first turn's prompt; with `whole`, its reply too (but the last sampled
        // token — the end of the turn, or one past max_tokens — which is never fed).
        let want = match whole {
            true => s1.prompt_tokens + s1.generated_tokens - 1,
            false => s1.prompt_tokens,
        };
        assert!(cached >= want, "{}: {cached} < {want}", path.display());
    }
}

/// A copy of fixture `stem` without the metadata keys `drop`.
fn without_keys(stem: &str, drop: &[&str], dir: &std::path::Path) -> PathBuf {
    use localglm_gguf::writer::GgufWriter;
    let src = localglm_gguf::GgufModel::open(fixture(&format!("{stem}.gguf"))).unwrap();
    let mut w = GgufWriter::new();
    for (k, v) in src.metadata() {
        if !drop.contains(&k.as_str()) {
            w.kv(k, v.clone());
        }
    }
    for t in src.tensors() {
        w.tensor(&t.name, &t.dims, t.ty, src.tensor_bytes(t).to_vec())
            .unwrap();
    }
    let path = dir.join(format!("{stem}-stripped.gguf"));
    w.write(&path).unwrap();
    path
}

/// GLM-5.x files that leave keys out load with their release's defaults, as llama.cpp reads
/// them: a GLM-5.1-like file (202,752-token context) without `indexer.types`, rope base or chat
/// template gets an indexer in every layer, θ = 1e6 and GLM-4.7's template (which GLM-5.1
/// inherits: no effort line, `</think>` when thinking is off); a 1 M-context file gets GLM-5.2's
/// IndexShare layout, θ = 8e6 and GLM-5.2's template. Both load through the app's engine, offer
/// the controls of the template they got, and chat.
#[tokio::test]
async fn glm5x_files_without_optional_keys_load_with_their_release_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let drop = [
        "tokenizer.chat_template",
        "glm-dsa.attention.indexer.types",
        "glm-dsa.rope.freq_base",
    ];
    let glm51 = without_keys("tiny-q-q4_k", &drop, dir.path());
    let chat = GlmChat::open(&glm51, RuntimeOptions::default()).unwrap();
    assert_eq!(chat.model.config.indexer_full, vec![true; 4]);
    assert_eq!(chat.model.config.rope_base, 1.0e6);
    let hi = [ChatTurn::new(Role::User, "hi")];
    let text = |ids: Vec<u32>| chat.tokenizer.decode(&ids).unwrap();
    assert_eq!(
        text(prompt_of(&chat, &hi, None, None, None)),
        "[gMASK]<sop><|user|>hi<|assistant|><think>"
    );
    assert_eq!(
        text(prompt_of(&chat, &hi, Some(false), None, None)),
        "[gMASK]<sop><|user|>hi<|assistant|></think>"
    );

    let glm52 = without_keys("tiny-f32", &drop, dir.path());
    let chat52 = GlmChat::open(&glm52, RuntimeOptions::default()).unwrap();
    let c = &chat52.model.config;
    assert_eq!(c.indexer_full, vec![true, true, true, false, false, false]);
    assert_eq!(c.rope_base, 8.0e6);
    assert_eq!(
        chat52
            .tokenizer
            .decode(&prompt_of(&chat52, &hi, None, None, None))
            .unwrap(),
        "[gMASK]<sop><|system|>Reasoning Effort: Max<|user|>hi<|assistant|><think>"
    );

    let engine = AutoEngine::new();
    let info = engine.load(LoadSpec::new(glm51)).await.unwrap();
    assert_eq!(info.context_length, Some(202_752));
    assert!(info.supports_thinking);
    assert!(info.effort_levels.is_empty(), "{:?}", info.effort_levels);
    let (reasoning, content, _, n) = collect(&engine, request("Hello", Some(false), 8)).await;
    assert!(n > 0 && !(content.is_empty() && reasoning.is_empty()));
    let info = engine.load(LoadSpec::new(glm52)).await.unwrap();
    assert_eq!(info.effort_levels, ["high", "max"]);
}
