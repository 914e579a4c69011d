import { describe, expect, it } from 'vitest';
import { appendText, CHUNK_CHARS } from './appendText';
import { richHtml } from './richHtml';

const pre = '<pre><code class="language-rust">fn a() {}\n</code></pre>\n';

describe('richHtml with a streaming answer', () => {
  it('appends final blocks once, replaces only the live block, and keeps the page at the end', () => {
    const node = document.createElement('div');
    const action = richHtml(node, { blocks: [], live: '<p>Hel</p>\n', resets: 0 });
    expect(node.textContent).toBe('Hel\n');
    const firstLive = node.querySelector('p');

    action.update({ blocks: ['<p>Hello</p>\n'], live: pre, resets: 0 });
    const hello = node.querySelector('p');
    expect(hello).not.toBe(firstLive); // the live paragraph became a final block
    expect(node.querySelectorAll('[data-testid=copy-code]')).toHaveLength(1);

    action.update({ blocks: ['<p>Hello</p>\n', pre], live: '<p>Bye</p>\n', resets: 0 });
    expect(node.querySelector('p')).toBe(hello); // final blocks are never rebuilt
    const code = node.querySelector('pre');
    expect(node.querySelectorAll('[data-testid=copy-code]')).toHaveLength(1);

    // The saved message's HTML is what was streamed: nothing in the page changes.
    const saved = '<p>Hello</p>\n' + pre + '<p>Bye</p>\n';
    action.update(saved);
    expect(node.querySelector('pre')).toBe(code);
    expect(node.textContent).toBe('Hello\nrustfn a() {}\nCopy\nBye\n');

    // A different whole HTML replaces everything.
    action.update('<p>Other</p>');
    expect(node.innerHTML).toBe('<p>Other</p>');
  });

  it('starts over when the backend resets the final blocks', () => {
    const node = document.createElement('div');
    const action = richHtml(node, { blocks: ['<p>a</p>'], live: '<p>b</p>', resets: 0 });
    action.update({ blocks: [], live: '<p>all of it</p>', resets: 1 });
    expect(node.textContent).toBe('all of it');
    action.update({ blocks: ['<p>x</p>'], live: '', resets: 1 });
    expect(node.textContent).toBe('x');
  });

  it('keeps scripts inert and handlers out of the page', () => {
    const node = document.createElement('div');
    document.body.append(node);
    const w = window as unknown as { __ran?: number };
    richHtml(node, { blocks: ['<p>ok</p>'], live: '<script>window.__ran = 1</script>', resets: 0 });
    expect(w.__ran).toBeUndefined();
    node.remove();
  });
});

describe('appendText', () => {
  it('adds only the new text, in blocks cut at line ends, with the text unchanged', () => {
    const node = document.createElement('div');
    const line = 'x'.repeat(100) + '\n';
    const action = appendText(node, 'start\n');
    let text = 'start\n';
    const first = node.firstChild;
    for (let i = 0; i < 60; i++) {
      text += line;
      action.update(text);
    }
    expect(node.firstChild).toBe(first); // never rebuilt
    expect(node.textContent).toBe(text);
    expect(node.children.length).toBeGreaterThan(2);
    for (const block of node.children) {
      // A block passes CHUNK_CHARS by at most the update that took it there and one line.
      expect(block.textContent!.length).toBeLessThanOrEqual(CHUNK_CHARS + 2 * line.length);
      expect(block.textContent!.endsWith('\n')).toBe(true);
    }
  });

  it('replaces everything when the text is not an extension', () => {
    const node = document.createElement('div');
    const action = appendText(node, 'abc');
    action.update('xyz');
    expect(node.textContent).toBe('xyz');
    expect(node.children).toHaveLength(1);
    action.update('');
    expect(node.textContent).toBe('');
  });
});
