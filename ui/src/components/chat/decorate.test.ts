import { describe, expect, it, vi } from 'vitest';
import { decorate, LIVE_HIGHLIGHT_CHARS, warmUp } from './decorate';
import { richHtml } from './richHtml';

function html(inner: string): HTMLElement {
  const node = document.createElement('div');
  node.innerHTML = inner;
  return node;
}

describe('decorate', () => {
  it('highlights code of a known language, labels it, and keeps its text', () => {
    const node = html('<pre><code class="language-rust">fn main() { let x = 1; } // done\n</code></pre>');
    decorate(node);
    const code = node.querySelector('code')!;
    expect(code.querySelector('.hljs-keyword')?.textContent).toBe('fn');
    expect(code.querySelector('.hljs-comment')?.textContent).toBe('// done');
    expect(code.textContent).toBe('fn main() { let x = 1; } // done\n');
    expect(node.querySelector('[data-testid=code-lang]')?.textContent).toBe('rust');
    expect(node.querySelectorAll('[data-testid=copy-code]')).toHaveLength(1);
    decorate(node);
    expect(node.querySelectorAll('[data-testid=copy-code]')).toHaveLength(1);
  });

  it('labels but does not guess an unknown language; plain blocks get only Copy', () => {
    const node = html('<pre><code class="language-klingon">qapla</code></pre><pre><code>plain</code></pre>');
    decorate(node);
    expect(node.querySelector('[data-testid=code-lang]')?.textContent).toBe('klingon');
    expect(node.querySelectorAll('[data-testid=code-lang]')).toHaveLength(1);
    expect(node.querySelector('code span')).toBeNull();
  });

  it('keeps code text as text: markup in code never becomes elements', () => {
    const node = html('<pre><code class="language-html">&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;x()&lt;/script&gt;</code></pre>');
    decorate(node);
    expect(node.querySelector('img, script')).toBeNull();
    expect(node.querySelector('code')?.textContent).toBe('<img src=x onerror=alert(1)><script>x()</script>');
  });

  it('typesets math, inline and display, and shows bad TeX as an error, not a failure', () => {
    const node = html(
      '<p><span class="math math-inline">e^{i\\pi}</span> and <span class="math math-inline">\\frac{</span></p>' +
        '<p><span class="math math-display">\\sum_{k=1}^n k</span></p>',
    );
    decorate(node);
    const [inline, broken, display] = node.querySelectorAll('span.math');
    expect(inline.querySelector('.katex')).not.toBeNull();
    expect(inline.querySelector('.katex-display')).toBeNull();
    expect(display.querySelector('.katex-display')).not.toBeNull();
    expect(broken.textContent).toContain('\\frac{');
    expect((inline as HTMLElement).dataset.tex).toBe('e^{i\\pi}');
  });

  it('gives TeX no way to links, images, styles or HTML', () => {
    const node = html(
      ['\\href{javascript:alert(1)}{x}', '\\url{javascript:alert(2)}', '\\includegraphics{http://e.x/a.png}',
        '\\htmlClass{evil}{y}', '\\htmlStyle{color:red}{z}', '\\htmlData{foo=bar}{w}']
        .map((t) => `<span class="math math-inline">${t}</span>`)
        .join(' '),
    );
    decorate(node);
    expect(node.querySelector('a, img, [style*="color:red"], .evil, [data-foo]')).toBeNull();
  });
});

describe('richHtml with long code streaming', () => {
  it('highlights a long live code block once the answer is saved', () => {
    const long = `<pre><code class="language-python">${'x = 1\n'.repeat(LIVE_HIGHLIGHT_CHARS / 4)}</code></pre>`;
    const node = document.createElement('div');
    const action = richHtml(node, { blocks: [], live: long, resets: 0 });
    expect(node.querySelector('code span')).toBeNull();
    action.update(long);
    expect(node.querySelector('code .hljs-number')).not.toBeNull();
    // Short live code is highlighted while it streams.
    const short = '<pre><code class="language-python">y = 2\n</code></pre>';
    const other = document.createElement('div');
    richHtml(other, { blocks: [], live: short, resets: 0 });
    expect(other.querySelector('code .hljs-number')).not.toBeNull();
  });
});

describe('warmUp', () => {
  it('decorates a hidden sample once after the delay and leaves nothing behind', async () => {
    vi.useFakeTimers();
    try {
      const root = document.createElement('div');
      root.innerHTML = '<p>kept</p>';
      const seen: HTMLElement[] = [];
      const observer = new MutationObserver((records) => {
        for (const r of records) for (const n of r.addedNodes) if (n instanceof HTMLElement) seen.push(n);
      });
      observer.observe(root, { childList: true });
      warmUp(root, 300);
      vi.advanceTimersByTime(299);
      await Promise.resolve();
      expect(observer.takeRecords()).toHaveLength(0);
      vi.advanceTimersByTime(1);
      for (const r of observer.takeRecords()) for (const n of r.addedNodes) if (n instanceof HTMLElement) seen.push(n);
      observer.disconnect();
      // Added and removed in the same task: highlighted, with its Copy button, hidden from readers.
      expect(seen).toHaveLength(1);
      const probe = seen[0];
      expect(probe.getAttribute('aria-hidden')).toBe('true');
      expect(probe.querySelector('code.language-rust .hljs-keyword')?.textContent).toBe('fn');
      expect(probe.querySelectorAll('[data-testid=copy-code]')).toHaveLength(1);
      expect(probe.isConnected).toBe(false);
      expect(root.innerHTML).toBe('<p>kept</p>');
    } finally {
      vi.useRealTimers();
    }
  });

  it('does nothing once cancelled', () => {
    vi.useFakeTimers();
    try {
      const root = document.createElement('div');
      const append = vi.spyOn(root, 'appendChild');
      const cancel = warmUp(root, 300);
      cancel();
      vi.advanceTimersByTime(1000);
      expect(append).not.toHaveBeenCalled();
    } finally {
      vi.useRealTimers();
    }
  });
});
