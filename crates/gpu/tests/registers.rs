//! Every index into a private array of every shader (the decoded group `wv`, the activations in
//! registers `xr`, the attention's per-head sums, …) is made of constants and of the variables
//! of loops that run from a constant to a constant — so it is a constant once the loops are
//! unrolled, and a driver can keep the array in registers. One index a compiler cannot resolve
//! puts the whole array in memory on NVIDIA and Apple GPUs: a store and a load per element, the
//! likely cause of session 22's per-weight cost (`docs/benchmarks.md`, session 40). Lavapipe
//! cannot show the difference, so the rule is checked on the text.
//!
//! Private arrays: `var<private> NAME: array<…>` and `var NAME: array<…>`. Constants: numbers
//! and ALL-CAPS names (the shaders' `const`s). The one index allowed to be dynamic is the
//! router's bitset of experts taken (`route.wgsl`'s `taken`, indexed by an expert number).

/// `src` without its `//` comments.
fn code(src: &str) -> String {
    src.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Loops open at a point: (variable, runs between constants, brace depth of its body).
type Loops = Vec<(String, bool, usize)>;

fn is_const_expr(e: &str) -> bool {
    e.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .all(|w| {
            w.chars().next().is_some_and(|c| c.is_ascii_digit())
                || w.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
}

/// The private arrays a source declares.
fn private_arrays(src: &str) -> Vec<String> {
    let mut names = Vec::new();
    for part in src.split("var").skip(1) {
        let part = part.strip_prefix("<private>").unwrap_or(part);
        if !part.starts_with(' ') {
            continue;
        }
        let Some((name, rest)) = part.trim_start().split_once(':') else {
            continue;
        };
        if rest.trim_start().starts_with("array<") && !name.contains(char::is_whitespace) {
            names.push(name.to_string());
        }
    }
    names
}

/// `(variable, from and to constants)` of a `for (var v = a; v < b; …)` header.
fn loop_header(header: &str) -> Option<(String, bool)> {
    let mut parts = header.split(';');
    let init = parts.next()?.trim().strip_prefix("var ")?;
    let (var, start) = init.split_once('=')?;
    let cond = parts.next()?.trim();
    let bound = cond
        .split_once("<=")
        .or_else(|| cond.split_once('<'))
        .map(|(_, b)| b)?;
    Some((
        var.trim().to_string(),
        is_const_expr(start) && is_const_expr(bound),
    ))
}

/// The indexes into `arrays` that are not constant once the loops unroll, as "array[index]".
fn dynamic_indexes(src: &str, arrays: &[String]) -> Vec<String> {
    let b = src.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let (mut depth, mut loops, mut pending): (usize, Loops, Option<(String, bool)>) =
        (0, Vec::new(), None);
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let rest = &src[i..];
        let word_start = i == 0 || !ident(b[i - 1]);
        if word_start && rest.starts_with("for (") {
            let close = rest.find(") {").expect("a for loop's header");
            pending = loop_header(&rest[5..close]);
            i += close + 2;
            continue;
        }
        match b[i] {
            b'{' => {
                depth += 1;
                if let Some((var, constant)) = pending.take() {
                    loops.push((var, constant, depth));
                }
            }
            b'}' => {
                loops.retain(|l| l.2 < depth);
                depth -= 1;
            }
            _ => {}
        }
        if word_start {
            if let Some(name) = arrays
                .iter()
                .find(|a| rest.starts_with(a.as_str()) && rest[a.len()..].starts_with('['))
            {
                let open = i + name.len() + 1;
                let mut level = 1;
                let mut end = open;
                while level > 0 {
                    match b[end] {
                        b'[' => level += 1,
                        b']' => level -= 1,
                        _ => {}
                    }
                    end += 1;
                }
                let index = &src[open..end - 1];
                let dynamic = index
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .filter(|w| !w.is_empty() && !is_const_expr(w))
                    .any(|w| !loops.iter().rev().find(|l| l.0 == w).is_some_and(|l| l.1));
                if dynamic {
                    found.push(format!("{name}[{index}]"));
                }
                i = end;
                continue;
            }
        }
        i += 1;
    }
    found
}

#[test]
fn private_arrays_are_indexed_by_constants_once_loops_unroll() {
    let mut checked = 0;
    for (name, src) in localglm_gpu::all_shader_sources() {
        let src = code(&src);
        let arrays: Vec<String> = private_arrays(&src)
            .into_iter()
            .filter(|a| a != "taken")
            .collect();
        checked += arrays.len();
        let bad = dynamic_indexes(&src, &arrays);
        assert!(bad.is_empty(), "{name}: dynamic indexes {bad:?}");
    }
    assert!(checked > 100, "only {checked} private arrays found");
}

/// The check itself finds what it is for: the dot of session 39, whose loop ran to `m`.
#[test]
fn the_check_finds_an_index_by_a_loop_with_a_runtime_bound() {
    let src = "// for (a comment) {\nvar<private> wv: array<f32, 32>;\n\
               fn dot(m: u32) -> f32 {\n    var s = 0.0;\n    if (m == 32u) {\n        \
               for (var i = 0u; i < 32u; i++) {\n            s += wv[i];\n        }\n    } \
               else {\n        for (var i = 0u; i < m; i++) {\n            s += wv[i];\n        \
               }\n    }\n    return s;\n}\n";
    let src = code(src);
    let arrays = private_arrays(&src);
    assert_eq!(arrays, ["wv"]);
    assert_eq!(dynamic_indexes(&src, &arrays), ["wv[i]"]);
    let lid = "var acc: array<f32, 4>;\nfn f(lid: u32) {\n    acc[lid] = 1.0;\n    \
               for (var k = lid; k < 4u; k++) {\n        acc[k] = 0.0;\n    }\n}\n";
    assert_eq!(
        dynamic_indexes(lid, &private_arrays(lid)),
        ["acc[lid]", "acc[k]"]
    );
}
