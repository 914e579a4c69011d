//! A GGUF's own chat template, rendered for a conversation the way Hugging Face
//! `apply_chat_template` renders it (see `localglm_glm::template`), for backends that take a
//! rendered prompt.

use crate::{ChatTurn, EngineError, GenerateRequest, Role};
use localglm_gguf::{GgufModel, Value};
use localglm_glm::template::{ChatTemplate, TemplateMessage, TemplateOptions};
use std::path::Path;

/// The template and the BOS/EOS token texts it is rendered with.
#[derive(Debug)]
pub struct ModelPrompt {
    template: ChatTemplate,
    bos: String,
    eos: String,
}

fn token_text(g: &GgufModel, id_key: &str) -> String {
    let id = g.get(id_key).and_then(Value::as_u64);
    match (id, g.get("tokenizer.ggml.tokens")) {
        (Some(id), Some(Value::Array(a))) => a
            .items
            .get(id as usize)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        _ => String::new(),
    }
}

impl ModelPrompt {
    /// The template embedded in the GGUF at `path`; `Ok(None)` when it has none, an error
    /// naming the model when it does not compile.
    pub fn from_gguf(path: &Path) -> Result<Option<Self>, EngineError> {
        let failed = |reason: String| EngineError::LoadFailed {
            path: path.to_path_buf(),
            reason,
        };
        let g = GgufModel::open(path).map_err(|e| failed(e.to_string()))?;
        let Some(source) = localglm_glm::template::TemplateSource::of(&g) else {
            return Ok(None);
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let template = source.compile(&name).map_err(|e| failed(e.to_string()))?;
        Ok(Some(Self {
            template,
            bos: token_text(&g, "tokenizer.ggml.bos_token_id"),
            eos: token_text(&g, "tokenizer.ggml.eos_token_id"),
        }))
    }

    /// A template from its source (`name` for errors) with the BOS/EOS token texts.
    pub fn new(source: &str, name: &str, bos: &str, eos: &str) -> Result<Self, EngineError> {
        let template = ChatTemplate::new(source, name).map_err(|e| EngineError::LoadFailed {
            path: name.into(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            template,
            bos: bos.into(),
            eos: eos.into(),
        })
    }

    /// Renders the conversation with the generation prompt; `None` switches stay undefined so
    /// the template's defaults apply.
    pub fn render(&self, request: &GenerateRequest) -> Result<String, EngineError> {
        let messages = template_messages(&request.messages);
        let opts = template_options(request, self.bos.clone(), self.eos.clone());
        self.template
            .render(&messages, &opts)
            .map_err(|e| EngineError::InvalidRequest(e.to_string()))
    }
}

/// The template switches of a request (`None` switches stay undefined so the template's
/// defaults apply), with the generation prompt on.
pub(crate) fn template_options(
    request: &GenerateRequest,
    bos_token: String,
    eos_token: String,
) -> TemplateOptions {
    TemplateOptions {
        add_generation_prompt: true,
        enable_thinking: request.enable_thinking,
        reasoning_effort: request.reasoning_effort.clone(),
        clear_thinking: request.clear_thinking,
        tools: request.tools.clone(),
        bos_token,
        eos_token,
        ..Default::default()
    }
}

/// The conversation as template messages (past reasoning as `reasoning_content`, tool calls
/// and tool results as OpenAI's message fields).
pub(crate) fn template_messages(turns: &[ChatTurn]) -> Vec<TemplateMessage> {
    turns
        .iter()
        .map(|t| TemplateMessage {
            reasoning_content: t.reasoning.clone(),
            tool_calls: t.tool_calls.clone(),
            tool_call_id: t.tool_call_id.clone(),
            ..TemplateMessage::new(role_name(t.role), t.content.clone())
        })
        .collect()
}

pub(crate) fn role_name(r: Role) -> &'static str {
    match r {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

/// Whether a rendered prompt leaves the model inside a reasoning block (it ends with an open
/// `<think>`), so the output starts as reasoning.
pub fn opens_reasoning(prompt: &str) -> bool {
    let tail = prompt.trim_end();
    tail.ends_with("<think>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use localglm_gguf::writer::GgufWriter;
    use localglm_gguf::{Array, ValueType};

    /// A GGUF holding only a tokenizer vocabulary and the real Qwen3 chat template.
    fn qwen3_like(dir: &Path) -> std::path::PathBuf {
        let template = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../glm/tests/fixtures/chat-templates/Qwen-Qwen3-0.6B.jinja"),
        )
        .unwrap();
        let tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
            .map(|t| Value::String(t.into()))
            .to_vec();
        let mut w = GgufWriter::new();
        w.kv("general.architecture", Value::String("qwen3".into()))
            .kv("tokenizer.chat_template", Value::String(template))
            .kv(
                "tokenizer.ggml.tokens",
                Value::Array(Array {
                    elem_type: ValueType::String,
                    items: tokens,
                }),
            )
            .kv("tokenizer.ggml.eos_token_id", Value::U32(2));
        let path = dir.join("qwen3-like.gguf");
        w.write(&path).unwrap();
        path
    }

    #[test]
    fn renders_the_gguf_template_with_thinking_switch_and_reasoning_history() {
        let dir = tempfile::tempdir().unwrap();
        let p = ModelPrompt::from_gguf(&qwen3_like(dir.path()))
            .unwrap()
            .expect("has a template");
        assert_eq!(p.eos, "<|im_end|>");
        let turns = [
            ChatTurn::new(Role::User, "Hi"),
            ChatTurn {
                reasoning: Some("greet back".into()),
                ..ChatTurn::new(Role::Assistant, "Hello!")
            },
            ChatTurn::new(Role::User, "Bye"),
        ];
        let req = |turns: &[ChatTurn], enable_thinking| GenerateRequest {
            messages: turns.to_vec(),
            enable_thinking,
            ..Default::default()
        };
        let on = p.render(&req(&turns, Some(true))).unwrap();
        assert!(on.ends_with("<|im_start|>assistant\n"), "{on}");
        // Qwen3 drops reasoning of turns before the last user message, as jinja2 would.
        assert!(!on.contains("greet back"), "{on}");
        let off = p.render(&req(&turns, Some(false))).unwrap();
        assert!(
            off.ends_with("<|im_start|>assistant\n<think>\n\n</think>\n\n"),
            "{off}"
        );
        // The last assistant turn's reasoning is kept when it follows the last user message.
        let kept = p.render(&req(&turns[..2], None)).unwrap();
        assert!(kept.contains("<think>\ngreet back\n</think>"), "{kept}");
    }

    #[test]
    fn renders_tool_definitions_calls_and_results() {
        let dir = tempfile::tempdir().unwrap();
        let p = ModelPrompt::from_gguf(&qwen3_like(dir.path()))
            .unwrap()
            .expect("has a template");
        let call = serde_json::json!([{ "id": "call_1", "type": "function",
            "function": { "name": "get_weather", "arguments": { "city": "Paris" } } }]);
        let request = GenerateRequest {
            messages: vec![
                ChatTurn::new(Role::User, "Weather in Paris?"),
                ChatTurn {
                    tool_calls: Some(call),
                    ..ChatTurn::new(Role::Assistant, "")
                },
                ChatTurn {
                    tool_call_id: Some("call_1".into()),
                    ..ChatTurn::new(Role::Tool, "18 C, sunny")
                },
            ],
            tools: Some(serde_json::json!([{ "type": "function", "function": {
                "name": "get_weather", "description": "Current weather",
                "parameters": { "type": "object", "properties": { "city": { "type": "string" } } }
            } }])),
            ..Default::default()
        };
        let text = p.render(&request).unwrap();
        assert!(
            text.contains(
                "<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\""
            ),
            "{text}"
        );
        assert!(
            text.contains("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"),
            "{text}"
        );
        assert!(
            text.contains("<tool_response>\n18 C, sunny\n</tool_response>"),
            "{text}"
        );
    }

    #[test]
    fn a_gguf_without_template_has_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bare.gguf");
        GgufWriter::new()
            .kv("general.architecture", Value::String("llama".into()))
            .write(&path)
            .unwrap();
        assert!(ModelPrompt::from_gguf(&path).unwrap().is_none());
    }

    #[test]
    fn an_open_think_tag_at_the_end_starts_in_reasoning() {
        assert!(opens_reasoning("<|assistant|>\n<think>\n"));
        assert!(!opens_reasoning("<|assistant|>\n<think></think>\n"));
        assert!(!opens_reasoning("<|im_start|>assistant\n"));
    }
}
