//! The streaming renderer against the whole-text renderer: random Markdown (every construct a
//! model writes, raw HTML and link references included) split at random points; after every
//! piece, the HTML appended so far plus the live HTML must equal `render` of the text so far.

use localglm_markdown::{render, StreamRenderer};

/// SplitMix64: a small seeded generator, so a failure names the seed that reproduces it.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Pieces of Markdown a model writes, the tricky ones included.
const BLOCKS: &[&str] = &[
    "A paragraph with **bold**, *emphasis*, `code`, ~~gone~~ and a [link](https://example.com).",
    "Second line of text\ncontinued on the next line",
    "# Heading one",
    "## Heading two ##",
    "Setext title\n===",
    "Another title\n---",
    "- first\n- second\n- third",
    "- loose\n\n- list",
    "1. one\n2. two\n3. three",
    "3. starts at three",
    "- [x] done\n- [ ] to do",
    "- outer\n  - inner\n    - deeper",
    "* star list\n+ plus list",
    "```rust\nfn main() {\n    println!(\"hi\");\n}\n```",
    "~~~\ntilde fence\n~~~",
    "```\nunclosed fence",
    "    indented code\n    more",
    "| a | b |\n|---|:-:|\n| 1 | 2 |\n| 3 | 4 |",
    "| head |\n| --- |",
    "> a quote\n> continued",
    "> lazy quote\nlazy continuation",
    "---",
    "***",
    "#hashtag is not a heading",
    "```x``` is inline code",
    "1) paren list",
    "line with trailing spaces  \nhard break",
    "&amp; &copy; &#35; entities",
    "<details><summary>More</summary>\n\nInside the details.\n\n</details>",
    "<div>\nhtml block\n</div>",
    "<div class=\"note\">\n\n*markdown inside*\n\n</div>",
    "Inline <b>bold</b> and <i>italic</i> and <br> break",
    "Unclosed <b>bold starts here",
    "closes it</b> later",
    "<img src=\"x.png\" onerror=\"alert(1)\">",
    "<!-- a comment -->",
    "<!-- an open comment",
    "the comment ends -->",
    "<script>alert(1)</script>",
    "<textarea>",
    "</textarea>",
    "<p>raw paragraph",
    "</p>",
    "<a href=\"https://e.x\" title='q > r'>link</a>",
    "<span title=it's>apostrophe</span>",
    "Misnested <b><i>tags</b></i>",
    "<custom-tag>\n\nbody\n\n</custom-tag>",
    "- item with <b>open bold",
    "| <i>cell | </i> |\n|---|---|\n| a <b>x | y |",
    "> quote <details>",
    "</details>",
    "<table><tr><td>",
    "</td></tr></table>",
    "[ref]: https://ref.example \"Title\"",
    "Uses [ref] and [missing].",
    "a < b > c and 5 <= 6",
    "</ bogus>",
    "<",
    "Non-ASCII: naïve café — 漢字 🦀",
    "Inline $x^2$ math and $$y$$ too",
    "\\(a + b\\) and \\[c\\] delimiters",
    "$$\nE = mc^2\n$$",
    "\\[\n\\frac{1}{2}\n\\]",
    "\\[\nunclosed display",
    "It costs $5 and $10",
    "$unclosed math",
    "`\\(code\\)` and \\\\(escaped)",
    "",
];

const SEPARATORS: &[&str] = &["\n\n", "\n", "\n\n\n", " ", "", "\n  "];

fn document(rng: &mut Rng, with_refs: bool) -> String {
    let mut doc = String::new();
    for _ in 0..3 + rng.below(14) {
        let mut block = rng.pick(BLOCKS);
        while !with_refs && block.starts_with("[ref]:") {
            block = rng.pick(BLOCKS);
        }
        doc.push_str(block);
        doc.push_str(rng.pick(SEPARATORS));
    }
    doc
}

/// Streams `doc` in random pieces; checks the invariant after each; returns the number of
/// updates whose `append` carried HTML (blocks made final before the end).
fn stream(doc: &str, rng: &mut Rng, seed: u64) -> usize {
    let mut r = StreamRenderer::new();
    let mut appended = String::new();
    let mut finals = 0;
    let mut end = 0;
    while end < doc.len() {
        let mut next = (end + 1 + rng.below(24)).min(doc.len());
        while !doc.is_char_boundary(next) {
            next += 1;
        }
        end = next;
        let text = &doc[..end];
        let up = r.update(text);
        if up.reset {
            appended.clear();
        }
        if !up.append.is_empty() {
            finals += 1;
        }
        appended.push_str(&up.append);
        let whole = render(text);
        assert_eq!(
            format!("{appended}{}", up.live),
            whole,
            "seed {seed}: after {end} of {} bytes of {doc:?}",
            doc.len()
        );
    }
    finals
}

#[test]
fn streamed_html_equals_the_whole_render_after_every_piece() {
    let mut finals = 0;
    // More documents on demand: LOCALGLM_STREAM_SEEDS=100000.
    let seeds = std::env::var("LOCALGLM_STREAM_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(600u64);
    for seed in 0..seeds {
        let mut rng = Rng(seed);
        let doc = document(&mut rng, seed % 10 == 0);
        finals += stream(&doc, &mut rng, seed);
    }
    // Not a vacuous pass: most documents finalise blocks before their end.
    assert!(finals > 1000, "only {finals} updates made blocks final");
}

#[test]
fn a_long_plain_answer_is_sent_once_block_by_block() {
    // A 30k-word answer: each update re-renders only its last block, and every finished block
    // is sent exactly once.
    let mut doc = String::new();
    for i in 0..2000 {
        doc.push_str(&format!(
            "## Part {i}\n\nText of part {i} with **bold**.\n\n- a\n- b\n\n```\ncode {i}\n```\n\n"
        ));
    }
    let mut r = StreamRenderer::new();
    let (mut appended, mut longest_live) = (String::new(), 0);
    for end in (0..=doc.len()).step_by(97).chain([doc.len()]) {
        let up = r.update(&doc[..end]);
        assert!(!up.reset);
        appended.push_str(&up.append);
        longest_live = longest_live.max(up.live.len());
        if end == doc.len() {
            assert_eq!(format!("{appended}{}", up.live), render(&doc));
        }
    }
    assert!(
        longest_live < 200,
        "live HTML stays one block: {longest_live} bytes"
    );
}

#[test]
fn a_block_on_an_unfinished_line_does_not_close_the_one_before() {
    let mut r = StreamRenderer::new();
    // "#" alone would be an empty heading, interrupting the paragraph; "#tag" is not.
    let up = r.update("para\n#");
    assert_eq!(up.append, "");
    let up = r.update("para\n#tag\n\nnext");
    assert_eq!(up.append, "", "nor does one whose first line is unfinished");
    let up = r.update("para\n#tag\n\nnext\n");
    assert_eq!(up.append, "<p>para\n#tag</p>\n");
    assert_eq!(up.live, "<p>next</p>\n");
}

#[test]
fn a_reference_definition_falls_back_to_whole_renders() {
    let mut r = StreamRenderer::new();
    let up = r.update("Uses [ref] early.\n\nMore text.\n\n");
    assert_eq!(up.append, "<p>Uses [ref] early.</p>\n");
    let up = r.update("Uses [ref] early.\n\nMore text.\n\n[ref]: https://e.x\n\nend");
    assert!(up.reset);
    assert!(up.append.is_empty());
    assert!(up.live.contains("<a href=\"https://e.x\""), "{}", up.live);
}

#[test]
fn open_raw_html_keeps_the_blocks_it_spans_live() {
    let text = "<details><summary>More</summary>\n\nInside.\n\n</details>\n\nAfter.\n\nLast";
    let mut r = StreamRenderer::new();
    let up = r.update(&text[..text.find("Inside").unwrap() + 10]);
    assert_eq!(up.append, "", "the details element is still open");
    let up = r.update(text);
    assert!(up.append.contains("</details>"), "{}", up.append);
    assert_eq!(up.live, "<p>After.</p>\n<p>Last</p>\n");
}

#[test]
fn streamed_html_is_sanitized_too() {
    let mut r = StreamRenderer::new();
    let text = "<img src=x onerror=\"alert(1)\">\n\n[x](javascript:alert(2))\n\n<script>alert(3)</script>\n\nend";
    let mut all = String::new();
    for end in 1..=text.len() {
        let up = r.update(&text[..end]);
        all.push_str(&up.append);
        all.push_str(&up.live);
    }
    // Text may mention anything (it is escaped); no tag may carry a handler, script or link.
    for tag in all
        .split('<')
        .skip(1)
        .map(|t| t.split('>').next().unwrap_or("").to_lowercase())
    {
        for bad in ["onerror", "javascript:", "script"] {
            assert!(!tag.contains(bad), "<{tag}> in {all}");
        }
    }
    assert!(!all.contains("alert(3)"), "script content removed: {all}");
}

#[test]
fn math_is_split_as_the_whole_render_reads_it() {
    // `\[` … `\]` is display math: the `</b>` inside it is TeX, not the end of the bold.
    let doc = "- item with <b>open bold\n  \\[\nunclosed display closes it</b> later\n$$\nE = mc^2\n$$\n\n---\n\nAfter.\n";
    let mut rng = Rng(7);
    stream(doc, &mut rng, 7);
    // And LaTeX delimiters streamed block by block end as the whole render's math.
    let doc = "Inline \\(a^2\\) here.\n\n\\[\n\\frac{1}{2}\n\\]\n\nDone.\n";
    let mut r = StreamRenderer::new();
    let mut html = String::new();
    for end in 1..=doc.len() {
        let up = r.update(&doc[..end]);
        html.push_str(&up.append);
        if end == doc.len() {
            html.push_str(&up.live);
        }
    }
    assert_eq!(html, render(doc));
    assert_eq!(html.matches("class=\"math math-").count(), 2, "{html}");
}
