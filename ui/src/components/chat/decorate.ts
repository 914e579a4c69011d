//! What the webview adds to the backend's sanitized answer HTML: a Copy button and the language
//! on each code block, syntax highlighting (highlight.js), and typeset math (KaTeX).
//!
//! Safety: nothing here builds HTML from the answer's text by string concatenation. highlight.js
//! reads a code element's text and writes back that text escaped, in spans; KaTeX reads the TeX
//! source (escaped text in `span.math`) with `trust: false` (no `\href`, `\url`, `\includegraphics`
//! or HTML extensions) and writes its own markup. `warmUp`'s sample answer is a constant of this file.

import hljs from 'highlight.js/lib/core';
import bash from 'highlight.js/lib/languages/bash';
import c from 'highlight.js/lib/languages/c';
import cpp from 'highlight.js/lib/languages/cpp';
import csharp from 'highlight.js/lib/languages/csharp';
import css from 'highlight.js/lib/languages/css';
import diff from 'highlight.js/lib/languages/diff';
import dockerfile from 'highlight.js/lib/languages/dockerfile';
import go from 'highlight.js/lib/languages/go';
import java from 'highlight.js/lib/languages/java';
import javascript from 'highlight.js/lib/languages/javascript';
import json from 'highlight.js/lib/languages/json';
import kotlin from 'highlight.js/lib/languages/kotlin';
import latex from 'highlight.js/lib/languages/latex';
import lua from 'highlight.js/lib/languages/lua';
import makefile from 'highlight.js/lib/languages/makefile';
import markdown from 'highlight.js/lib/languages/markdown';
import php from 'highlight.js/lib/languages/php';
import python from 'highlight.js/lib/languages/python';
import ruby from 'highlight.js/lib/languages/ruby';
import rust from 'highlight.js/lib/languages/rust';
import shell from 'highlight.js/lib/languages/shell';
import sql from 'highlight.js/lib/languages/sql';
import swift from 'highlight.js/lib/languages/swift';
import ini from 'highlight.js/lib/languages/ini';
import typescript from 'highlight.js/lib/languages/typescript';
import xml from 'highlight.js/lib/languages/xml';
import yaml from 'highlight.js/lib/languages/yaml';
import katex from 'katex';

const LANGUAGES = {
  bash, c, cpp, csharp, css, diff, dockerfile, go, java, javascript, json, kotlin, latex, lua, makefile,
  markdown, php, python, ruby, rust, shell, sql, swift, ini, typescript, xml, yaml,
};
for (const [name, language] of Object.entries(LANGUAGES)) hljs.registerLanguage(name, language);
hljs.registerAliases(['toml'], { languageName: 'ini' });
hljs.registerAliases(['sh', 'zsh', 'console'], { languageName: 'bash' });
hljs.registerAliases(['html', 'svg'], { languageName: 'xml' });
hljs.configure({ ignoreUnescapedHTML: false, throwUnescapedHTML: false });

/** A code block still being written is highlighted again at each update up to this size. */
export const LIVE_HIGHLIGHT_CHARS = 4000;

const COPY_CLASS = 'copy-code';

function language(code: Element): string | null {
  for (const name of code.classList) if (name.startsWith('language-')) return name.slice('language-'.length);
  return null;
}

/** Adds a Copy button and a language label to each `pre` with a `code` element, once. */
export function addCodeTools(root: ParentNode): void {
  for (const pre of root.querySelectorAll('pre')) {
    const code = pre.querySelector(':scope > code');
    if (!code || pre.querySelector(`:scope > button.${COPY_CLASS}`)) continue;
    const lang = language(code);
    if (lang) {
      const label = document.createElement('span');
      label.className = 'code-lang';
      label.dataset.testid = 'code-lang';
      label.textContent = lang;
      pre.prepend(label);
    }
    const button = document.createElement('button');
    button.type = 'button';
    button.className = COPY_CLASS;
    button.textContent = 'Copy';
    button.setAttribute('aria-label', 'Copy code');
    button.dataset.testid = 'copy-code';
    pre.append(button);
  }
}

/** Highlights code blocks of a known language (not yet highlighted; live ones up to a size). */
function highlight(root: ParentNode, live: boolean): void {
  for (const code of root.querySelectorAll('pre > code')) {
    if (!(code instanceof HTMLElement) || code.dataset.highlighted) continue;
    const lang = language(code);
    if (!lang || !hljs.getLanguage(lang)) continue;
    if (live && (code.textContent ?? '').length > LIVE_HIGHLIGHT_CHARS) continue;
    hljs.highlightElement(code);
  }
}

/** Typesets `span.math` (TeX source as text) with KaTeX; a TeX error shows the source. */
function typeset(root: ParentNode): void {
  for (const span of root.querySelectorAll('span.math')) {
    if (!(span instanceof HTMLElement) || span.dataset.tex !== undefined) continue;
    const tex = span.textContent ?? '';
    span.dataset.tex = tex;
    try {
      katex.render(tex, span, {
        displayMode: span.classList.contains('math-display'),
        throwOnError: false,
        trust: false,
        strict: 'ignore',
        maxExpand: 1000,
        maxSize: 50,
      });
    } catch {
      span.textContent = tex;
    }
  }
}

/**
 * Decorates answer HTML in `root`: code tools, highlighting, math. `live`: the block still being
 * written (its long code blocks are highlighted once it is final).
 */
export function decorate(root: ParentNode, live = false): void {
  addCodeTools(root);
  highlight(root, live);
  typeset(root);
}

/**
 * A window's first answer paid one-time costs as it streamed — the first layout of each kind of
 * block, the code font, highlight.js compiling a grammar — and stalled ~160–180 ms (the real-window
 * render bench's cold answer; 40 ms after this). `warmUp` pays them at launch instead: after
 * `delayMs` it decorates a fixed sample answer (a constant, no user text) in a hidden element of
 * `root`, forces its layout and removes it in the same task, so nothing else ever sees it.
 * Returns a function that cancels it if it has not run.
 */
export function warmUp(root: HTMLElement, delayMs = 300): () => void {
  const timer = setTimeout(() => {
    const probe = document.createElement('div');
    probe.className = 'markdown';
    probe.setAttribute('aria-hidden', 'true');
    probe.style.cssText = 'position:absolute;left:-10000px;top:0;width:600px;visibility:hidden';
    probe.innerHTML = WARM_UP_SAMPLE;
    root.appendChild(probe);
    decorate(probe);
    void probe.offsetHeight;
    probe.remove();
  }, delayMs);
  return () => clearTimeout(timer);
}

/** What `warmUp` lays out: one of each block an answer usually has. */
export const WARM_UP_SAMPLE =
  '<h2>Part</h2><p><strong>b</strong> <em>i</em> <code>c</code></p><ul><li>x</li></ul><ol><li>y</li></ol>' +
  '<pre><code class="language-rust">fn main() { let x: u32 = 1; println!("{x}"); }</code></pre>' +
  '<table><thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr><td>1</td><td>2</td></tr></tbody></table>' +
  '<blockquote><p>q</p></blockquote>';
