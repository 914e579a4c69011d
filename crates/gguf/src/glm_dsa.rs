//! How a `glm-dsa` (GLM-5.x) header is read where it leaves something out: the rules the fit
//! planner and the runtime share, so that both size and run the same model.
//!
//! GLM-5 and GLM-5.1 (202,752-token context, rope θ 1e6, an indexer in every layer) and
//! GLM-5.2 / GLM-5.3 (1,048,576 tokens, θ 8e6, GLM-5.2's IndexShare layout) use one
//! architecture; a file that lacks a key is told apart by its training context, as llama.cpp
//! does (`n_ctx_train < 1048576` ⇒ every indexer layer full).

use crate::{GgufError, Value};

/// The training context from which a file without `indexer.types` takes GLM-5.2's layout.
pub const GLM52_CTX: u64 = 1_048_576;

/// The training context assumed when `context_length` is missing (GLM-5 / GLM-5.1's).
pub const DEFAULT_CTX: u64 = 202_752;

/// The rope base of a file without `rope.freq_base`.
pub fn default_rope_base(ctx_train: u64) -> f64 {
    if ctx_train >= GLM52_CTX {
        8.0e6
    } else {
        1.0e6
    }
}

/// GLM-5.2's IndexShare layout: layer `i` has a full indexer iff `max(i − 3 + 1, 0) mod 4 == 0`
/// (layers 0–2, then every fourth from 6).
pub fn glm52_indexer_types(n_layer: usize) -> Vec<bool> {
    (0..n_layer)
        .map(|i| (i + 1).saturating_sub(3) % 4 == 0)
        .collect()
}

/// Which of the `n_layer` trunk layers compute their own indexer keys (`true`, "full") rather
/// than reuse the previous full layer's selection: `glm-dsa.attention.indexer.types` (strings
/// `full`/`shared`, or flags) where the file has it, else by the training context.
pub fn indexer_types(
    value: Option<&Value>,
    n_layer: usize,
    ctx_train: u64,
) -> Result<Vec<bool>, GgufError> {
    let bad = |m: String| GgufError::Metadata(m);
    let types = match value {
        Some(Value::Array(a)) => {
            let v: Vec<bool> = a
                .items
                .iter()
                .map(|x| match x {
                    Value::String(s) => match s.as_str() {
                        "full" => Some(true),
                        "shared" => Some(false),
                        _ => None,
                    },
                    other => other.as_bool(),
                })
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    bad(
                        "attention.indexer.types holds values other than full/shared or flags"
                            .into(),
                    )
                })?;
            if v.len() < n_layer {
                return Err(bad(format!(
                    "attention.indexer.types has {} entries for {n_layer} layers",
                    v.len()
                )));
            }
            v[..n_layer].to_vec()
        }
        Some(_) => return Err(bad("attention.indexer.types is not an array".into())),
        None if ctx_train >= GLM52_CTX => glm52_indexer_types(n_layer),
        None => vec![true; n_layer],
    };
    if types.first() == Some(&false) {
        return Err(bad(
            "layer 0 is a shared indexer layer, but no earlier full layer exists".into(),
        ));
    }
    Ok(types)
}

/// The GLM-5.x release a file is, for naming and picking a catalog: from `general.name` /
/// `general.basename` (e.g. `GLM-5.1`), else from its training context.
pub fn family(name: Option<&str>, ctx_train: u64) -> &'static str {
    let name = name.unwrap_or("").to_ascii_lowercase();
    for (tag, family) in [("5.1", "GLM-5.1"), ("5.3", "GLM-5.3"), ("5.2", "GLM-5.2")] {
        if name.contains(&format!("glm-{tag}")) || name.contains(&format!("glm {tag}")) {
            return family;
        }
    }
    if ctx_train >= GLM52_CTX {
        "GLM-5.2"
    } else {
        "GLM-5.1"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Array, ValueType};

    fn strings(v: &[&str]) -> Value {
        Value::Array(Array {
            elem_type: ValueType::String,
            items: v.iter().map(|s| Value::String((*s).into())).collect(),
        })
    }

    #[test]
    fn the_key_wins_and_its_absence_follows_the_context() {
        let t = glm52_indexer_types(78);
        let full: Vec<usize> = (0..78).filter(|&i| t[i]).collect();
        assert_eq!(full.len(), 21);
        assert_eq!(&full[..5], &[0, 1, 2, 6, 10]);
        assert_eq!(*full.last().unwrap(), 74);
        // GLM-5.1 files (202,752 tokens) without the key: every layer full, as llama.cpp.
        assert_eq!(
            indexer_types(None, 78, DEFAULT_CTX).unwrap(),
            vec![true; 78]
        );
        assert_eq!(indexer_types(None, 78, GLM52_CTX).unwrap(), t);
        let key = strings(&["full", "shared", "full", "shared", "full"]);
        assert_eq!(
            indexer_types(Some(&key), 4, GLM52_CTX).unwrap(),
            vec![true, false, true, false]
        );
        let flags = Value::Array(Array {
            elem_type: ValueType::Bool,
            items: vec![Value::Bool(true), Value::Bool(false)],
        });
        assert_eq!(
            indexer_types(Some(&flags), 2, 0).unwrap(),
            vec![true, false]
        );
    }

    #[test]
    fn bad_indexer_types_are_errors() {
        for (v, n, want) in [
            (strings(&["full"]), 2, "1 entries for 2 layers"),
            (strings(&["full", "dense"]), 2, "other than full/shared"),
            (strings(&["shared", "full"]), 2, "no earlier full layer"),
            (Value::U32(1), 2, "not an array"),
        ] {
            let e = indexer_types(Some(&v), n, GLM52_CTX)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn family_from_the_name_else_the_context() {
        assert_eq!(family(Some("GLM-5.1"), GLM52_CTX), "GLM-5.1");
        assert_eq!(family(Some("Glm-5.3 Preview"), DEFAULT_CTX), "GLM-5.3");
        assert_eq!(family(Some("GLM 5.2"), DEFAULT_CTX), "GLM-5.2");
        assert_eq!(family(Some("tiny"), DEFAULT_CTX), "GLM-5.1");
        assert_eq!(family(None, GLM52_CTX), "GLM-5.2");
        assert_eq!(default_rope_base(DEFAULT_CTX), 1.0e6);
        assert_eq!(default_rope_base(GLM52_CTX), 8.0e6);
    }
}
