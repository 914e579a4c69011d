//! The tokenizer of a GGUF (`tokenizer.ggml.model = gpt2`: byte-level BPE) with the
//! pre-tokenizers of [`Pre`] — GLM-4's (`pre = glm4`, digits in groups of 1–3; Llama 3's splits
//! the same way), GPT-2's, or `qwen2`'s single digits — built on the `tokenizers` crate; any
//! other `pre` is refused rather than guessed.
//!
//! Invariant: control tokens (token_type 3/4) are matched whole in template text, and never
//! produced from user text ([`GlmTokenizer::encode_text`] treats `<|user|>` as plain bytes).

use crate::GlmError;
use localglm_gguf::{GgufModel, Value};
use serde_json::{json, Map};
use std::collections::HashMap;
use tokenizers::Tokenizer;

/// The split pattern of llama.cpp's `LLAMA_VOCAB_PRE_TYPE_CHATGLM4` (spec §C.5).
pub const GLM4_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The pattern with single digits (llama.cpp's `qwen2`), for `pre` values not named below.
pub const DEFAULT_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The pre-tokenizers this tokenizer implements, grouped as llama.cpp groups
/// `tokenizer.ggml.pre` values (`llama-vocab.cpp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pre {
    /// `glm4`, `chatglm-bpe` (and a file without the key: GLM's).
    Glm4,
    /// `llama-bpe`, `llama3`, `llama-v3`, `falcon3`: the GLM-4 split, whole-vocabulary
    /// pre-tokens kept, BOS by default.
    Llama3,
    /// `qwen2`, `deepseek-r1-qwen`, `megrez`: single digits.
    Qwen2,
    /// `gpt-2`: GPT-2's split.
    Gpt2,
    /// `smollm`, `starcoder`: single digits, then GPT-2's split.
    Gpt2Digits,
}

/// The pre-tokenizer a GGUF names, or why this tokenizer cannot run it (`tokenizer.ggml.model`
/// other than `gpt2`, or a `pre` not in [`Pre`]: guessing would tokenize wrongly without an
/// error).
pub fn pre_tokenizer(g: &GgufModel) -> Result<Pre, GlmError> {
    let model = g.get_str("tokenizer.ggml.model").unwrap_or("");
    if model != "gpt2" {
        return Err(GlmError::Tokenizer(format!(
            "tokenizer model `{model}` is not supported (byte-level BPE `gpt2` only)"
        )));
    }
    Ok(match g.get_str("tokenizer.ggml.pre") {
        None | Some("glm4") | Some("chatglm-bpe") => Pre::Glm4,
        Some("llama-bpe") | Some("llama3") | Some("llama-v3") | Some("falcon3") => Pre::Llama3,
        Some("qwen2") | Some("deepseek-r1-qwen") | Some("megrez") => Pre::Qwen2,
        Some("gpt-2") | Some("gpt2") => Pre::Gpt2,
        Some("smollm") | Some("starcoder") => Pre::Gpt2Digits,
        Some(other) => {
            return Err(GlmError::Tokenizer(format!(
                "pre-tokenizer `{other}` is not supported"
            )))
        }
    })
}

const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

/// A GGUF's tokenizer.
pub struct GlmTokenizer {
    /// Matches added/special tokens (for rendered templates).
    with_specials: Tokenizer,
    /// Never matches them (for user text).
    plain: Tokenizer,
    tokens: Vec<String>,
    specials: HashMap<String, u32>,
    /// Ids that end a turn: eos, eot, eom (and `<|user|>` / `<|observation|>` when present).
    pub stop_ids: Vec<u32>,
    pub bos_id: Option<u32>,
    pub eos_id: Option<u32>,
    /// A prompt starts with `bos_id` (`tokenizer.ggml.add_bos_token`; added where the
    /// template did not write it).
    pub add_bos: bool,
}

impl std::fmt::Debug for GlmTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlmTokenizer")
            .field("vocab", &self.tokens.len())
            .field("stop_ids", &self.stop_ids)
            .finish()
    }
}

fn strings(g: &GgufModel, key: &str) -> Result<Vec<String>, GlmError> {
    match g.get(key) {
        Some(Value::Array(a)) => a
            .items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| GlmError::Tokenizer(format!("{key} holds non-strings"))),
        _ => Err(GlmError::Tokenizer(format!(
            "metadata key {key} is missing"
        ))),
    }
}

impl GlmTokenizer {
    /// Builds the tokenizer from `tokenizer.ggml.*` metadata.
    pub fn from_gguf(g: &GgufModel) -> Result<Self, GlmError> {
        let tokens = strings(g, "tokenizer.ggml.tokens")?;
        let merges = strings(g, "tokenizer.ggml.merges")?;
        let types: Vec<i64> = match g.get("tokenizer.ggml.token_type") {
            Some(Value::Array(a)) => a
                .items
                .iter()
                .map(|v| v.as_f64().map(|x| x as i64).unwrap_or(1))
                .collect(),
            _ => vec![1; tokens.len()],
        };
        let pre = pre_tokenizer(g)?;
        let pre_tokenizer = match pre {
            // GPT-2's split (ByteLevel's own regex), after every digit on its own for
            // SmolLM's and StarCoder's tokenizers (llama.cpp's `smollm` / `starcoder`).
            Pre::Gpt2 | Pre::Gpt2Digits => {
                let mut steps = Vec::new();
                if pre == Pre::Gpt2Digits {
                    steps.push(json!({"type": "Digits", "individual_digits": true}));
                }
                steps.push(json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true}));
                json!({"type": "Sequence", "pretokenizers": steps})
            }
            Pre::Glm4 | Pre::Llama3 | Pre::Qwen2 => {
                let pattern = match pre {
                    Pre::Qwen2 => DEFAULT_PATTERN,
                    _ => GLM4_PATTERN,
                };
                json!({
                    "type": "Sequence",
                    "pretokenizers": [
                        {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false},
                        {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}
                    ]
                })
            }
        };
        // Llama 3's tokenizer takes a pre-token found whole in the vocabulary as one token
        // before any merge (llama.cpp's and HF's `ignore_merges`).
        let ignore_merges = pre == Pre::Llama3;

        let mut vocab = Map::new();
        let mut added = Vec::new();
        let mut specials = HashMap::new();
        for (id, tok) in tokens.iter().enumerate() {
            let ty = types.get(id).copied().unwrap_or(1);
            if ty == TOKEN_TYPE_CONTROL || ty == TOKEN_TYPE_USER_DEFINED {
                added.push(json!({
                    "id": id, "content": tok, "single_word": false, "lstrip": false,
                    "rstrip": false, "normalized": false, "special": true,
                }));
                specials.insert(tok.clone(), id as u32);
            }
            // Later duplicates (padding tokens) keep the first id.
            vocab.entry(tok.clone()).or_insert(json!(id));
        }
        let spec = json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": null,
            "pre_tokenizer": pre_tokenizer,
            "post_processor": null,
            "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
            "model": {
                "type": "BPE", "dropout": null, "unk_token": null,
                "continuing_subword_prefix": null, "end_of_word_suffix": null,
                "fuse_unk": false, "byte_fallback": false, "ignore_merges": ignore_merges,
                "vocab": vocab, "merges": merges,
            }
        })
        .to_string();
        let with_specials: Tokenizer = spec
            .parse()
            .map_err(|e| GlmError::Tokenizer(format!("building the BPE: {e}")))?;
        let mut plain = with_specials.clone();
        plain.set_encode_special_tokens(true);

        let id_of = |k: &str| g.get_u64(k).map(|v| v as u32);
        let bos_id = id_of("tokenizer.ggml.bos_token_id");
        let eos_id = id_of("tokenizer.ggml.eos_token_id");
        let mut stop_ids: Vec<u32> = [
            eos_id,
            id_of("tokenizer.ggml.eot_token_id"),
            id_of("tokenizer.ggml.eom_token_id"),
            specials.get("<|endoftext|>").copied(),
            specials.get("<|user|>").copied(),
            specials.get("<|observation|>").copied(),
            // End-of-turn tokens of other chat formats (Llama 3, ChatML, Phi, Gemma), which a
            // file's eos id does not always name: as llama.cpp recognises them.
            specials.get("<|eot_id|>").copied(),
            specials.get("<|eom_id|>").copied(),
            specials.get("<|im_end|>").copied(),
            specials.get("<|end|>").copied(),
            specials.get("<end_of_turn>").copied(),
        ]
        .into_iter()
        .flatten()
        .collect();
        stop_ids.sort_unstable();
        stop_ids.dedup();
        Ok(Self {
            with_specials,
            plain,
            tokens,
            specials,
            stop_ids,
            bos_id,
            eos_id,
            // llama.cpp's default for Llama 3's tokenizer is on; the key decides where present.
            add_bos: g
                .get("tokenizer.ggml.add_bos_token")
                .and_then(Value::as_bool)
                .unwrap_or(pre == Pre::Llama3),
        })
    }

    /// `ids` with the BOS token in front where the file asks for one and it is not there.
    pub fn with_bos(&self, mut ids: Vec<u32>) -> Vec<u32> {
        if let (true, Some(bos)) = (self.add_bos, self.bos_id) {
            if ids.first() != Some(&bos) {
                ids.insert(0, bos);
            }
        }
        ids
    }

    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// Id of a special token by its text (`<think>`, `<|user|>`, ...).
    pub fn special_id(&self, text: &str) -> Option<u32> {
        self.specials.get(text).copied()
    }

    /// The token text of `id` (as stored: byte-level alphabet).
    pub fn token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// User text: special-token strings inside it stay ordinary text.
    pub fn encode_text(&self, text: &str) -> Result<Vec<u32>, GlmError> {
        Self::ids(&self.plain, text)
    }

    /// Template text: special-token strings become their single tokens.
    pub fn encode_with_specials(&self, text: &str) -> Result<Vec<u32>, GlmError> {
        Self::ids(&self.with_specials, text)
    }

    /// A rendered prompt in which the given spans (message contents, in order) are user text:
    /// those are encoded without special matching, the template around them with it. A span
    /// the template wrote stripped of its surrounding whitespace is found as such.
    pub fn encode_prompt(&self, rendered: &str, user_spans: &[&str]) -> Result<Vec<u32>, GlmError> {
        let mut out = Vec::new();
        let mut pos = 0;
        for span in user_spans.iter().filter(|s| !s.is_empty()) {
            let found = [*span, span.trim()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .find_map(|s| rendered[pos..].find(s).map(|at| (pos + at, s)));
            let Some((at, span)) = found else {
                continue;
            };
            out.extend(self.encode_with_specials(&rendered[pos..at])?);
            out.extend(self.encode_text(span)?);
            pos = at + span.len();
        }
        out.extend(self.encode_with_specials(&rendered[pos..])?);
        Ok(out)
    }

    fn ids(t: &Tokenizer, text: &str) -> Result<Vec<u32>, GlmError> {
        if text.is_empty() {
            return Ok(Vec::new());
        }
        t.encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| GlmError::Tokenizer(e.to_string()))
    }

    /// Text of `ids`, special tokens included as their text.
    pub fn decode(&self, ids: &[u32]) -> Result<String, GlmError> {
        self.with_specials
            .decode(ids, false)
            .map_err(|e| GlmError::Tokenizer(e.to_string()))
    }
}

/// Turns generated ids into text deltas, holding back an incomplete UTF-8 sequence until its
/// last byte arrives. Only the ids since the last emitted text are decoded (byte-level BPE
/// tokens decode independently), so a long generation costs O(n), not O(n²).
#[derive(Debug, Default)]
pub struct StreamDecoder {
    pending: Vec<u32>,
}

impl StreamDecoder {
    /// Adds one id; returns the new text it completes (possibly empty).
    pub fn push(&mut self, tok: &GlmTokenizer, id: u32) -> Result<String, GlmError> {
        self.pending.push(id);
        let text = tok.decode(&self.pending)?;
        // A held-back partial character decodes to U+FFFD; wait for the rest of its bytes (at
        // most 4 tokens for a 4-byte character) before emitting.
        if text.ends_with('\u{FFFD}') && self.pending.len() < 4 {
            return Ok(String::new());
        }
        self.pending.clear();
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> GlmTokenizer {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny-f32.gguf");
        GlmTokenizer::from_gguf(&GgufModel::open(path).unwrap()).unwrap()
    }

    #[test]
    fn streamed_deltas_concatenate_to_the_full_text_even_inside_multibyte_characters() {
        let tok = tiny();
        let text = "héllo wörld 日本語 🙂 done";
        let ids = tok.encode_text(text).unwrap();
        let mut dec = StreamDecoder::default();
        let mut out = String::new();
        for id in ids {
            let delta = dec.push(&tok, id).unwrap();
            assert!(!delta.contains('\u{FFFD}'), "{delta:?}");
            out.push_str(&delta);
        }
        assert_eq!(out, text);
    }
}
