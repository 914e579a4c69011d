//! Model output (Markdown) to HTML that is safe to assign to `innerHTML` in the webview, whole
//! ([`render`]) or while it streams ([`StreamRenderer`]: only what changed).
//!
//! Invariant: every string returned by [`render`] has passed through ammonia's allow-list
//! sanitizer: no scripts, no event-handler attributes, no `javascript:`/`data:` links, no
//! `style` attributes. Raw HTML written by the model is sanitized, never trusted.

use pulldown_cmark::{html, Options, Parser};
use std::sync::OnceLock;

mod stream;
pub use stream::{HtmlUpdate, StreamRenderer};

fn sanitizer() -> &'static ammonia::Builder<'static> {
    static BUILDER: OnceLock<ammonia::Builder<'static>> = OnceLock::new();
    BUILDER.get_or_init(|| {
        let mut b = ammonia::Builder::default();
        b.add_tag_attributes("code", ["class"])
            .add_tag_attributes("input", ["type", "checked", "disabled"])
            .add_tags(["input"])
            .link_rel(Some("noopener noreferrer nofollow"))
            .url_schemes(["http", "https", "mailto"].into_iter().collect());
        b
    })
}

/// The Markdown dialect: CommonMark plus tables, strikethrough and task lists.
fn options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS
}

/// Renders Markdown (CommonMark plus tables, strikethrough and task lists) to sanitized HTML.
pub fn render(markdown: &str) -> String {
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
    fn code_is_escaped() {
        let html = render("```html\n<script>alert(1)</script>\n```");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }
}
