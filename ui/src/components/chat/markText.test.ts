import { describe, expect, it } from 'vitest';
import { markText } from './markText';

describe('markText', () => {
  it('wraps every match, case-insensitively, across elements, and unwraps on change', () => {
    const node = document.createElement('div');
    node.innerHTML = '<p>Paris is <b>in PARIS</b></p><pre><code>paris()</code><button>Copy paris</button></pre>';
    const action = markText(node, 'paris');
    const marks = [...node.querySelectorAll('mark')];
    expect(marks.map((m) => m.textContent)).toEqual(['Paris', 'PARIS', 'paris']);
    expect(node.querySelector('button')?.textContent).toBe('Copy paris');
    expect(node.textContent).toBe('Paris is in PARISparis()Copy paris');

    action.update('is');
    expect([...node.querySelectorAll('mark')].map((m) => m.textContent)).toEqual(['is', 'is', 'IS', 'is']);
    action.update(null);
    expect(node.querySelector('mark')).toBeNull();
    expect(node.innerHTML).toBe('<p>Paris is <b>in PARIS</b></p><pre><code>paris()</code><button>Copy paris</button></pre>');
  });

  it('never turns text into markup', () => {
    const node = document.createElement('div');
    node.textContent = 'a <img src=x onerror=alert(1)> b';
    markText(node, 'img');
    expect(node.querySelector('img')).toBeNull();
    expect(node.querySelector('mark')?.textContent).toBe('img');
  });

  it('keeps positions right where lower case changes the length, and skips labels', () => {
    const node = document.createElement('div');
    node.innerHTML = '<p>İstanbul foo</p><pre><span class="code-lang">foo</span><code>foo</code></pre>';
    markText(node, 'FOO');
    expect([...node.querySelectorAll('mark')].map((m) => m.textContent)).toEqual(['foo', 'foo']);
    expect(node.querySelector('p')?.textContent).toBe('İstanbul foo');
    expect(node.querySelector('.code-lang mark')).toBeNull();
  });
});
