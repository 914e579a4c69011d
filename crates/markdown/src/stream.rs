//! Rendering an answer while it streams, without rendering it all again at every flush.
//!
//! A streamed answer only grows at its end, and Markdown's top-level blocks, once a later one
//! has begun on a whole line, never change again. [`StreamRenderer`] keeps the byte offset up to
//! which the HTML is final; each update parses and renders only the text after it, sends the
//! blocks that became final since the last update once (`append`), and re-renders the one block
//! still being written (`live`).
//!
//! Invariant (checked by a property test on random Markdown split at random points): after
//! every update, the `append` strings since the last `reset`, followed by the latest `live`,
//! equal [`render`] of the whole text. Three things could break it, and each is handled:
//! * a block that starts on an incomplete line may turn out not to start a block (`#` becomes
//!   `#tag`, a fence becomes inline code, a table's delimiter row gets text after it): only a
//!   block whose first line (a table: first two lines) is whole closes the blocks before it;
//! * link reference definitions apply to the whole document: a stream with one falls back to
//!   re-rendering the whole text at every update (`reset` once, then everything is `live`);
//! * raw HTML is parsed by the sanitizer across block boundaries (an unclosed `<b>`, a
//!   `<details>` around several paragraphs, an open comment): blocks become final only where
//!   every tag the model wrote before them is closed in order.

use crate::{options, render, tex_delimiters};
use pulldown_cmark::{Event, Parser, Tag, TagEnd};

/// What changed in the HTML of a streamed text since the previous update.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HtmlUpdate {
    /// Discard the HTML appended so far before appending `append`.
    pub reset: bool,
    /// HTML of blocks that became final: append it after the earlier ones, once.
    pub append: String,
    /// HTML of the rest of the text (the block still being written): replaces the previous one.
    pub live: String,
}

/// Renders a growing Markdown text a piece at a time; see the module documentation.
#[derive(Debug, Default)]
pub struct StreamRenderer {
    /// Bytes of the text whose HTML is final and was sent.
    done: usize,
    /// The text defines link references: every update renders all of it.
    whole: bool,
}

impl StreamRenderer {
    pub fn new() -> Self {
        Self::default()
    }

    /// The HTML changes for `text`, the whole text so far (it must extend the text of the
    /// previous update).
    pub fn update(&mut self, text: &str) -> HtmlUpdate {
        debug_assert!(text.len() >= self.done);
        if self.whole {
            return HtmlUpdate {
                live: render(text),
                ..HtmlUpdate::default()
            };
        }
        let tail = &text[self.done..];
        // Blocks as `render` sees them: with LaTeX delimiters read as math (a `\\[` … `\\]`
        // may hold what would otherwise be raw HTML).
        let read = tex_delimiters(tail);
        let parser = Parser::new_ext(&read, options());
        if parser.reference_definitions().iter().next().is_some() {
            let reset = self.done > 0;
            self.whole = true;
            self.done = 0;
            return HtmlUpdate {
                reset,
                append: String::new(),
                live: render(text),
            };
        }
        // The delimiters change no line, so the split (a line start) is found by its line.
        let lines = read[..final_prefix(&read, parser)].matches('\n').count();
        let split = match lines {
            0 => 0,
            n => tail
                .match_indices('\n')
                .nth(n - 1)
                .map_or(0, |(i, _)| i + 1),
        };
        let append = if split > 0 {
            render(&tail[..split])
        } else {
            String::new()
        };
        self.done += split;
        HtmlUpdate {
            reset: false,
            append,
            live: render(&tail[split..]),
        }
    }
}

/// Bytes at the start of `tail` whose blocks are final: up to the start of the last top-level
/// block that begins on a whole line with every raw HTML tag before it closed.
fn final_prefix(tail: &str, parser: Parser<'_>) -> usize {
    let whole_lines = tail.rfind('\n').map_or(0, |i| i + 1);
    let mut depth = 0usize;
    let mut html = HtmlBalance::default();
    // Whether each open Markdown element is an HTML block (which writes no tags of its own).
    let mut html_blocks: Vec<bool> = Vec::new();
    let (mut split, mut first) = (0, true);
    for (event, range) in parser.into_offset_iter() {
        if depth == 0 && matches!(event, Event::Start(_) | Event::Rule) {
            let line = tail[..range.start].rfind('\n').map_or(0, |i| i + 1);
            // A table is one only with its delimiter row: its second line must be whole too.
            let lines = if matches!(event, Event::Start(Tag::Table(_))) {
                2
            } else {
                1
            };
            let decided = tail[line..].split_inclusive('\n').take(lines);
            if line >= whole_lines || decided.filter(|l| l.ends_with('\n')).count() < lines {
                break;
            }
            if !first && html.closed() {
                split = line;
            }
            first = false;
        }
        match &event {
            Event::Start(tag) => {
                html.start(depth, text_block(tag));
                html_blocks.push(matches!(tag, Tag::HtmlBlock));
                depth += 1;
            }
            Event::End(tag) => {
                let text_block = matches!(
                    tag,
                    TagEnd::Paragraph | TagEnd::Heading(_) | TagEnd::HtmlBlock
                );
                html.end(depth, text_block);
                html_blocks.pop();
                depth -= 1;
            }
            Event::Html(raw) | Event::InlineHtml(raw) => {
                let place = Place {
                    depth,
                    html_block: html_blocks.last() == Some(&true),
                };
                html.feed(raw, place);
            }
            Event::Text(_) | Event::SoftBreak => {} // text: read as text inside anything
            _ => html.start(depth, false),          // a leaf the renderer writes as a tag
        }
    }
    split
}

/// Where raw HTML stands in the Markdown: its nesting depth, and whether directly in an HTML
/// block (no tag of the renderer's around it) rather than in a paragraph or other element.
#[derive(Debug, Clone, Copy)]
struct Place {
    depth: usize,
    html_block: bool,
}

/// Formatting elements: the HTML parser reopens them in the next paragraph, and their end tag
/// there closes them.
const FORMATTING: &[&str] = &[
    "a", "b", "big", "code", "em", "font", "i", "nobr", "s", "small", "strike", "strong", "tt", "u",
];
/// Elements the HTML parser lets span the renderer's paragraphs and headings without changing
/// how it reads their end tags: the formatting elements, plain containers, and custom elements
/// (whose names have a `-`). Not tables, forms, buttons, selects, templates, embedded objects
/// or foreign content, whose scoping rules swallow or redirect the renderer's end tags.
fn spans_blocks(name: &str) -> bool {
    const PLAIN: &[&str] = &[
        "abbr",
        "article",
        "aside",
        "bdi",
        "bdo",
        "blockquote",
        "center",
        "cite",
        "data",
        "dd",
        "del",
        "details",
        "dfn",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "header",
        "ins",
        "kbd",
        "li",
        "main",
        "mark",
        "nav",
        "ol",
        "q",
        "samp",
        "section",
        "span",
        "sub",
        "summary",
        "sup",
        "time",
        "ul",
        "var",
    ];
    FORMATTING.contains(&name) || PLAIN.contains(&name) || name.contains('-')
}

/// Elements that never have content or an end tag.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link", "meta", "param",
    "source", "track", "wbr",
];
/// Elements whose content the HTML parser reads as text up to their end tag.
const RAW_TEXT: &[&str] = &[
    "script",
    "style",
    "textarea",
    "title",
    "xmp",
    "iframe",
    "noembed",
    "noframes",
    "noscript",
    "plaintext",
];

/// Whether the raw HTML seen so far leaves the HTML parser where it started: every element
/// closed in order, no comment, tag or raw-text element left open. Anything it cannot be sure
/// of counts as open for the rest of the text.
///
/// The model's open elements may span the Markdown's own markup only where the HTML parser is
/// known to come back to the same state: markup nested inside them, or top-level paragraphs,
/// headings and HTML blocks around them (`<details>` around paragraphs; `<b>` opened in one
/// paragraph and closed in the next, which the parser carries over). Anything else (a list
/// item or table cell ending inside one, where the parser's scoping rules apply) is unsure.
#[derive(Debug, Default)]
struct HtmlBalance {
    /// Open elements: name, and the Markdown nesting depth they were opened at (0 once they
    /// outlived the top-level block they were opened in).
    open: Vec<(String, usize)>,
    /// The unfinished end of the raw HTML so far (a tag or comment cut by a line end).
    carry: String,
    unsure: bool,
}

/// Top-level blocks an element the model opened may span.
fn text_block(tag: &Tag<'_>) -> bool {
    matches!(tag, Tag::Paragraph | Tag::Heading { .. } | Tag::HtmlBlock)
}

impl HtmlBalance {
    fn closed(&self) -> bool {
        !self.unsure && self.open.is_empty() && self.carry.is_empty()
    }

    /// The renderer writes a start tag (or a leaf element) at Markdown depth `depth`.
    fn start(&mut self, depth: usize, text_block: bool) {
        // Inside an open comment, tag or raw-text element the parser swallows it.
        let top_level_open = depth == 0 && self.open.iter().any(|(_, d)| *d == 0);
        if !self.carry.is_empty() || (top_level_open && !text_block) {
            self.unsure = true;
        }
    }

    /// The renderer writes the end tag of the element at depth `depth` (its content's depth).
    fn end(&mut self, depth: usize, text_block: bool) {
        if !self.carry.is_empty() {
            self.unsure = true;
        }
        for (name, at) in self.open.iter_mut().filter(|(_, at)| *at >= depth) {
            if depth == 1 && text_block && spans_blocks(name) {
                *at = 0;
            } else {
                self.unsure = true;
            }
        }
    }

    fn feed(&mut self, raw: &str, place: Place) {
        let text = std::mem::take(&mut self.carry) + raw;
        let mut rest = text.as_str();
        while !self.unsure {
            let Some(at) = rest.find('<') else { return };
            rest = &rest[at..];
            let skip = if let Some(after) = rest.strip_prefix("<!--") {
                after.find("-->").map(|end| 4 + end + 3)
            } else if rest.starts_with("<!") || rest.starts_with("<?") {
                rest.find('>').map(|end| end + 1)
            } else {
                self.tag(rest, place)
            };
            match skip {
                Some(n) => rest = &rest[n..],
                None => {
                    self.carry = rest.to_string();
                    return;
                }
            }
        }
    }

    /// Reads the tag at the start of `rest` (which starts with `<`); returns its length, or
    /// `None` when it does not end in `rest`.
    fn tag(&mut self, rest: &str, place: Place) -> Option<usize> {
        let body = &rest[1..];
        let closing = body.starts_with('/');
        let named = &body[usize::from(closing)..];
        if !named.starts_with(|c: char| c.is_ascii_alphabetic()) {
            // `<` before a non-letter is text; `</` before one starts a bogus comment.
            return if closing {
                rest.find('>').map(|e| e + 1)
            } else {
                Some(1)
            };
        }
        let end = tag_end(rest)?;
        let name = tag_name(named);
        if closing {
            match self.open.iter().rposition(|(n, _)| *n == name) {
                // Closed in the element it was opened in; or, having outlived its top-level
                // block, in an HTML block, or (a formatting element) in a top-level paragraph
                // where the parser reopened it. Elsewhere the parser's scoping decides.
                Some(i) if i + 1 == self.open.len() => {
                    let at = self.open[i].1;
                    let top = at == 0 && place.depth == 1;
                    if at == place.depth
                        || (top && (place.html_block || FORMATTING.contains(&name.as_str())))
                    {
                        self.open.pop();
                    } else {
                        self.unsure = true;
                    }
                }
                Some(_) => self.unsure = true,
                None => {} // a stray end tag changes nothing outside its own block
            }
            return Some(end);
        }
        if VOID.contains(&name.as_str()) {
            return Some(end);
        }
        if name == "plaintext" {
            self.unsure = true; // text to the end of the document
            return Some(end);
        }
        if RAW_TEXT.contains(&name.as_str()) {
            return raw_text_end(&rest[end..], &name).map(|n| end + n);
        }
        self.open.push((name, place.depth));
        Some(end)
    }
}

/// A tag's name as the HTML tokenizer reads it: up to whitespace, `/` or `>`, lower-cased.
fn tag_name(s: &str) -> String {
    let len = s
        .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
        .unwrap_or(s.len());
    s[..len].to_ascii_lowercase()
}

/// Length of a raw-text element's content and end tag (`</name` then whitespace, `/` or `>`).
fn raw_text_end(s: &str, name: &str) -> Option<usize> {
    let lower = s.to_ascii_lowercase();
    let close = format!("</{name}");
    let mut from = 0;
    while let Some(i) = lower[from..].find(&close) {
        let at = from + i;
        let next = lower[at + close.len()..].chars().next()?;
        if next.is_ascii_whitespace() || next == '/' || next == '>' {
            return tag_end(&s[at..]).map(|e| at + e);
        }
        from = at + close.len();
    }
    None
}

/// Length of the tag at the start of `s` through its `>`; quoted attribute values (a quote
/// right after `=`) are skipped.
fn tag_end(s: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut after_eq = false;
    for (i, c) in s.char_indices() {
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
            }
            None => match c {
                '>' => return Some(i + 1),
                '=' => after_eq = true,
                '"' | '\'' if after_eq => quote = Some(c),
                c if c.is_ascii_whitespace() => {}
                _ => after_eq = false,
            },
        }
    }
    None
}
