//! The chat template embedded in a GGUF (`tokenizer.chat_template`), rendered with minijinja
//! the way Hugging Face `apply_chat_template` renders it with jinja2 (`trim_blocks`,
//! `lstrip_blocks`, Python string methods, `tojson`, `raise_exception`).
//!
//! Which thinking controls a model offers is read from its template, not from a list of known
//! models: see [`ChatTemplate::controls`].

use crate::GlmError;
use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, Error, ErrorKind};
use serde::Serialize;

/// One message as templates see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateMessage {
    pub role: String,
    pub content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// OpenAI-style tool calls of an assistant turn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<serde_json::Value>,
    /// The call a `tool` message answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl TemplateMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
            reasoning_content: None,
            tool_calls: None,
            tool_call_id: None,
        }
    }
}

/// Template switches (`None` leaves a variable undefined, so the template's default applies).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TemplateOptions {
    pub add_generation_prompt: bool,
    pub enable_thinking: Option<bool>,
    pub reasoning_effort: Option<String>,
    pub clear_thinking: Option<bool>,
    pub tools: Option<serde_json::Value>,
    pub bos_token: String,
    pub eos_token: String,
    /// The time `strftime_now` reports, in seconds since the Unix epoch (UTC); `None` = now.
    pub now: Option<i64>,
}

/// What a template lets the user control.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TemplateControls {
    /// The template reads `enable_thinking`.
    pub thinking_toggle: bool,
    /// Values of `reasoning_effort` it distinguishes (lower case), if it reads the variable.
    pub effort_levels: Vec<String>,
    /// The template renders a `tools` list (tool definitions in the prompt).
    pub tools: bool,
}

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    model_name: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("model", &self.model_name)
            .field("len", &self.source.len())
            .finish()
    }
}

fn tojson(value: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let _: Option<bool> = kwargs.get("ensure_ascii")?;
    let _: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    let json = serde_json::to_value(&value)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    let text = match indent {
        Some(n) => {
            let mut buf = Vec::new();
            let pad = vec![b' '; n];
            let fmt = serde_json::ser::PrettyFormatter::with_indent(&pad);
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            json.serialize(&mut ser)
                .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
            String::from_utf8(buf).unwrap_or_default()
        }
        // Python's json.dumps separators: ", " and ": ".
        None => python_json(&json),
    };
    Ok(Value::from_safe_string(text))
}

/// `json.dumps(v, ensure_ascii=False)` formatting.
fn python_json(v: &serde_json::Value) -> String {
    use serde_json::Value as J;
    match v {
        J::Array(items) => format!(
            "[{}]",
            items.iter().map(python_json).collect::<Vec<_>>().join(", ")
        ),
        J::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", J::String(k.clone()), python_json(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

fn raise_exception(msg: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, msg))
}

/// Python's `time.strftime` for the directives chat templates use, at `secs` (UTC).
fn strftime(format: &str, secs: i64) -> Result<String, Error> {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian, era-based).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy_mar = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy_mar + 2) / 153;
    let day = doy_mar - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let before: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let yday = before[(month - 1) as usize] + day + i64::from(leap && month > 2);
    let weekday = (days + 3).rem_euclid(7) as usize; // 1970-01-01 was a Thursday.
    let (hour, minute, second) = (tod / 3600, tod / 60 % 60, tod % 60);
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let d = chars.next().unwrap_or('%');
        let piece = match d {
            'Y' => year.to_string(),
            'y' => format!("{:02}", year.rem_euclid(100)),
            'm' => format!("{month:02}"),
            'd' => format!("{day:02}"),
            'e' => format!("{day:2}"),
            'j' => format!("{yday:03}"),
            'B' => MONTHS[(month - 1) as usize].into(),
            'b' | 'h' => MONTHS[(month - 1) as usize][..3].into(),
            'A' => DAYS[weekday].into(),
            'a' => DAYS[weekday][..3].into(),
            'H' => format!("{hour:02}"),
            'I' => format!("{:02}", (hour + 11) % 12 + 1),
            'p' => (if hour < 12 { "AM" } else { "PM" }).into(),
            'M' => format!("{minute:02}"),
            'S' => format!("{second:02}"),
            'F' => format!("{year}-{month:02}-{day:02}"),
            '%' => "%".into(),
            other => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("strftime_now: unsupported directive %{other}"),
                ))
            }
        };
        out.push_str(&piece);
    }
    Ok(out)
}

/// GLM-5.2's template (as this project reconstructs it, spec §D; also in the fixtures' GGUFs).
const GLM52_TEMPLATE: &str = include_str!("../tests/fixtures/chat-templates/GLM-5.2.jinja");
/// GLM-4.7's template, which GLM-5 and GLM-5.1 inherit (spec §A.2).
const GLM47_TEMPLATE: &str = include_str!("../tests/fixtures/chat-templates/GLM-4.7-Flash.jinja");

/// Where a model's chat template comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateSource<'a> {
    /// `tokenizer.chat_template` of the file.
    Embedded(&'a str),
    /// A GLM-5.x file without one: its release's template, built in (GLM-4.7's for GLM-5 and
    /// GLM-5.1, GLM-5.2's for 5.2 and 5.3), told apart as the runtime tells them apart.
    BuiltIn {
        family: &'static str,
        source: &'static str,
    },
}

impl<'a> TemplateSource<'a> {
    /// The template of `g`; `None` for a file of another architecture without one.
    pub fn of(g: &'a localglm_gguf::GgufModel) -> Option<Self> {
        if let Some(s) = g.get_str("tokenizer.chat_template") {
            return Some(Self::Embedded(s));
        }
        if g.architecture() != Some("glm-dsa") {
            return None;
        }
        let ctx = g
            .get_u64("glm-dsa.context_length")
            .unwrap_or(localglm_gguf::glm_dsa::DEFAULT_CTX);
        let name = g.get_str("general.name").or(g.get_str("general.basename"));
        let family = localglm_gguf::glm_dsa::family(name, ctx);
        let source = match family {
            "GLM-5.1" => GLM47_TEMPLATE,
            _ => GLM52_TEMPLATE,
        };
        Some(Self::BuiltIn { family, source })
    }

    pub fn text(&self) -> &'a str {
        match *self {
            Self::Embedded(s) => s,
            Self::BuiltIn { source, .. } => source,
        }
    }

    /// Compiles it; `model_name` names the model in errors.
    pub fn compile(&self, model_name: &str) -> Result<ChatTemplate, GlmError> {
        ChatTemplate::new(self.text(), model_name)
    }
}

impl ChatTemplate {
    /// Compiles `source`; `model_name` names the model in errors.
    pub fn new(source: &str, model_name: &str) -> Result<Self, GlmError> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_filter("tojson", tojson);
        env.add_function("raise_exception", raise_exception);
        // `strftime_now` reads the render's clock, passed in the context (see `render_json`).
        env.add_function(
            "strftime_now",
            |state: &minijinja::State, format: String| -> Result<Value, Error> {
                let secs = state
                    .lookup("__localglm_now")
                    .and_then(|v| i64::try_from(v).ok())
                    .unwrap_or(0);
                strftime(&format, secs).map(Value::from)
            },
        );
        env.add_template_owned("chat", source.to_string())
            .map_err(|e| {
                GlmError::Template(format!(
                    "the chat template of {model_name} does not compile: {e:#}"
                ))
            })?;
        Ok(Self {
            env,
            source: source.to_string(),
            model_name: model_name.to_string(),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders a conversation.
    pub fn render(
        &self,
        messages: &[TemplateMessage],
        opts: &TemplateOptions,
    ) -> Result<String, GlmError> {
        self.render_json(serde_json::to_value(messages).unwrap_or_default(), opts)
    }

    /// Renders messages given as JSON exactly as written (an OpenAI-style array: `content` may
    /// be null or a list, `tool_calls` and any other fields pass through untouched), so a
    /// template sees what jinja2 would see for the same file.
    pub fn render_json(
        &self,
        messages: serde_json::Value,
        opts: &TemplateOptions,
    ) -> Result<String, GlmError> {
        let tmpl = self
            .env
            .get_template("chat")
            .map_err(|e| GlmError::Template(e.to_string()))?;
        let mut ctx = serde_json::Map::new();
        ctx.insert("messages".into(), messages);
        ctx.insert(
            "add_generation_prompt".into(),
            opts.add_generation_prompt.into(),
        );
        ctx.insert("bos_token".into(), opts.bos_token.clone().into());
        ctx.insert("eos_token".into(), opts.eos_token.clone().into());
        if let Some(v) = opts.enable_thinking {
            ctx.insert("enable_thinking".into(), v.into());
        }
        if let Some(v) = &opts.reasoning_effort {
            ctx.insert("reasoning_effort".into(), v.clone().into());
        }
        if let Some(v) = opts.clear_thinking {
            ctx.insert("clear_thinking".into(), v.into());
        }
        if let Some(v) = &opts.tools {
            ctx.insert("tools".into(), v.clone());
        }
        let now = opts.now.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        });
        ctx.insert("__localglm_now".into(), now.into());
        tmpl.render(Value::from_serialize(&ctx)).map_err(|e| {
            GlmError::Template(format!(
                "the chat template of {} failed to render: {e:#}",
                self.model_name
            ))
        })
    }

    /// The controls this template offers, read from its source.
    pub fn controls(&self) -> TemplateControls {
        let src = &self.source;
        let mut effort_levels = Vec::new();
        if src.contains("reasoning_effort") {
            // Literal values compared with the variable: `reasoning_effort == 'high'`,
            // `reasoning_effort in ['low', ...]`.
            for (at, _) in src.match_indices("reasoning_effort") {
                let tail: String = src[at + "reasoning_effort".len()..]
                    .chars()
                    .take(80)
                    .collect();
                let tail = tail.trim_start();
                let rest = if let Some(r) = tail.strip_prefix("==") {
                    r
                } else if let Some(r) = tail.strip_prefix("in") {
                    r
                } else {
                    continue;
                };
                let rest = rest.split("%}").next().unwrap_or("");
                for lit in rest.split(['\'', '"']).skip(1).step_by(2) {
                    let l = lit.to_ascii_lowercase();
                    if !l.is_empty()
                        && l.chars().all(|c| c.is_ascii_alphanumeric())
                        && !effort_levels.contains(&l)
                    {
                        effort_levels.push(l);
                    }
                }
            }
            // GLM-5.2: anything but "high" renders "Max".
            if src.contains("Reasoning Effort") && !effort_levels.iter().any(|l| l == "max") {
                effort_levels.push("max".into());
            }
        }
        TemplateControls {
            thinking_toggle: src.contains("enable_thinking"),
            effort_levels,
            tools: src.contains("tools"),
        }
    }
}
