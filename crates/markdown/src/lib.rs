//! Model output (Markdown) to HTML that is safe to assign to `innerHTML` in the webview, whole
//! ([`render`]) or while it streams ([`StreamRenderer`]: only what changed).
//!
//! Invariant: every string returned by [`render`] has passed through ammonia's allow-list
//! sanitizer: no scripts, no event-handler attributes, no `javascript:`/`data:` links, no
//! `style` attributes. Raw HTML written by the model is sanitized, never trusted.

use pulldown_cmark::{html, Event, Options, Parser, Tag};
use std::borrow::Cow;
use std::sync::OnceLock;

mod stream;
pub use stream::{HtmlUpdate, StreamRenderer};

fn sanitizer() -> &'static ammonia::Builder<'static> {
    static BUILDER: OnceLock<ammonia::Builder<'static>> = OnceLock::new();
    BUILDER.get_or_init(|| {
        let mut b = ammonia::Builder::default();
        // Math is sent as its TeX source in `span.math` (escaped text), typeset by the webview.
        b.add_allowed_classes("span", ["math", "math-inline", "math-display"])
            .add_tag_attributes("code", ["class"])
            .add_tag_attributes("input", ["type", "checked", "disabled"])
            .add_tags(["input"])
            .link_rel(Some("noopener noreferrer nofollow"))
            .url_schemes(["http", "https", "mailto"].into_iter().collect());
        b
    })
}

/// The Markdown dialect: CommonMark plus tables, strikethrough, task lists and math.
fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_MATH
}

/// LaTeX's `\(…\)` and `\[…\]` (what models often write) as the `$…$` and `$$…$$` the
/// parser reads as math; inside code, raw HTML and links they stay as written.
pub(crate) fn tex_delimiters(markdown: &str) -> Cow<'_, str> {
    // Each delimiter is replaced on its own, paired or not, so that rendering a text in
    // pieces (`StreamRenderer`) replaces exactly what rendering it whole does.
    if !["\\(", "\\)", "\\[", "\\]"]
        .iter()
        .any(|d| markdown.contains(d))
    {
        return Cow::Borrowed(markdown);
    }
    let mut code = Vec::new();
    for (event, range) in Parser::new_ext(markdown, options()).into_offset_iter() {
        match event {
            // Code, math, raw HTML and links (a `\(` in a URL is an escaped parenthesis)
            // are left as written.
            Event::Code(_)
            | Event::InlineMath(_)
            | Event::DisplayMath(_)
            | Event::Html(_)
            | Event::InlineHtml(_) => code.push(range),
            Event::Start(Tag::CodeBlock(_) | Tag::Link { .. } | Tag::Image { .. }) => {
                code.push(range)
            }
            _ => {}
        }
    }
    let mut out = String::with_capacity(markdown.len());
    let bytes = markdown.as_bytes();
    let mut i = 0;
    let mut last = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'\\' {
            let swap = match bytes[i + 1] {
                b'(' | b')' => Some("$"),
                b'[' | b']' => Some("$$"),
                // An escaped backslash is not a delimiter's start.
                b'\\' => {
                    i += 2;
                    continue;
                }
                _ => None,
            };
            if let Some(swap) = swap.filter(|_| !code.iter().any(|r| r.contains(&i))) {
                out.push_str(&markdown[last..i]);
                out.push_str(swap);
                i += 2;
                last = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&markdown[last..]);
    Cow::Owned(out)
}

/// Renders Markdown (CommonMark plus tables, strikethrough, task lists and math: `$…$`,
/// `$$…$$`, `\(…\)`, `\[…\]`) to sanitized HTML.
pub fn render(markdown: &str) -> String {
    let markdown = tex_delimiters(markdown);
    let markdown = markdown.as_ref();
    let parser = Parser::new_ext(markdown, options());
    let mut unsafe_html = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut unsafe_html, parser);
    sanitizer().clean(&unsafe_html).to_string()
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn renders_common_markdown() {
        let html = render("# Title\n\n**bold** and `code`\n\n```rust\nfn main() {}\n```\n");
        assert!(html.contains("<h1>Title</h1>"));
        assert!(html.contains("<strong>bold</strong>"));
        assert!(html.contains("<code>code</code>"));
        assert!(html.contains("<pre><code class=\"language-rust\">fn main() {}\n</code></pre>"));
    }

    #[test]
    fn tables_and_lists() {
        let html = render("| a | b |\n|---|---|\n| 1 | 2 |\n\n- [x] done\n- item\n");
        assert!(html.contains("<table>"));
        assert!(html.contains("<td>1</td>"));
        assert!(html.contains("<li>"));
    }

    #[test]
    fn script_tags_are_removed() {
        let html = render("hello <script>alert('x')</script> world");
        assert!(!html.to_lowercase().contains("<script"), "{html}");
        assert!(!html.contains("alert('x')") || !html.contains("<script"));
    }

    #[test]
    fn event_handler_attributes_are_removed() {
        let html = render("<img src=\"x.png\" onerror=\"alert(1)\"> <a href=\"https://a.b\" onclick=\"x()\">l</a>");
        assert!(!html.contains("onerror"), "{html}");
        assert!(!html.contains("onclick"), "{html}");
    }

    #[test]
    fn javascript_links_are_inert() {
        for md in [
            "[click](javascript:alert(1))",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<a href=\"JaVaScRiPt:alert(1)\">x</a>",
            "[d](data:text/html;base64,PHNjcmlwdD4=)",
        ] {
            let html = render(md).to_lowercase();
            assert!(!html.contains("javascript:"), "{md} -> {html}");
            assert!(!html.contains("data:text"), "{md} -> {html}");
        }
    }

    #[test]
    fn styles_iframes_and_forms_are_removed() {
        let html = render(
            "<iframe src=\"https://e.x\"></iframe><div style=\"position:fixed\">x</div><form><button>b</button></form><svg onload=alert(1)>",
        );
        for bad in ["<iframe", "style=", "<form", "<button", "<svg", "onload"] {
            assert!(!html.contains(bad), "{bad} survived: {html}");
        }
    }

    #[test]
    fn safe_links_get_rel() {
        let html = render("[site](https://example.org)");
        assert!(html.contains("href=\"https://example.org\""));
        assert!(html.contains("rel=\"noopener noreferrer nofollow\""));
    }

    #[test]
    fn math_is_sent_as_escaped_tex_in_any_delimiters() {
        assert_eq!(
            render("Euler: $e^{i\\pi} + 1 = 0$."),
            "<p>Euler: <span class=\"math math-inline\">e^{i\\pi} + 1 = 0</span>.</p>\n"
        );
        assert_eq!(
            render("$$\na < b\n$$"),
            "<p><span class=\"math math-display\">\na &lt; b\n</span></p>\n"
        );
        assert_eq!(render("\\(x^2\\)"), render("$x^2$"));
        assert_eq!(
            render("\\[\n\\frac{a}{b}\n\\]"),
            render("$$\n\\frac{a}{b}\n$$")
        );
        // In code they are code; an escaped backslash is not a delimiter; prices are not math.
        assert!(render("`\\(x\\)`").contains("<code>\\(x\\)</code>"));
        assert!(render("```\n\\[a\\]\n```").contains("\\[a\\]"));
        assert!(!render("a \\\\(b) c").contains("math"));
        assert!(!render("It costs $5 and $10.").contains("math"));
        let link = render("[Lisp](https://en.wikipedia.org/wiki/Lisp_\\(programming_language\\))");
        assert!(
            link.contains("href=\"https://en.wikipedia.org/wiki/Lisp_(programming_language)\""),
            "{link}"
        );
    }

    #[test]
    fn math_cannot_carry_markup() {
        for md in [
            "$<img src=x onerror=alert(1)>$",
            "\\(</span><script>alert(1)</script>\\)",
            "<span class=\"math math-inline\" onclick=\"x()\" style=\"a\">y</span>",
            "<span class=\"evil math\">z</span>",
        ] {
            let html = render(md);
            for bad in ["<img", "<script", "onclick", "style=", "evil"] {
                assert!(!html.contains(bad), "{md} -> {html}");
            }
        }
    }

    #[test]
    fn code_is_escaped() {
        let html = render("```html\n<script>alert(1)</script>\n```");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }
}
