//! Svelte action that highlights every case-insensitive occurrence of a term in an element's
//! text (a search hit opened from the sidebar) by wrapping it in `<mark>`, and scrolls the
//! first one into view. It only splits existing text nodes: no HTML is built from strings.

const CLASS = 'search-mark';

function unmark(node: HTMLElement): void {
  const marks = node.querySelectorAll(`mark.${CLASS}`);
  for (const mark of marks) mark.replaceWith(...mark.childNodes);
  if (marks.length > 0) node.normalize();
}

/** Not highlighted: code blocks' Copy buttons and language labels, KaTeX's hidden TeX copy. */
const SKIP = 'button, .code-lang, .katex-mathml';

function mark(node: HTMLElement, term: string): HTMLElement | null {
  // Matched on the original text (a lower-cased copy can differ in length, e.g. 'İ').
  const pattern = new RegExp(term.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'giu');
  const texts: Text[] = [];
  const walker = document.createTreeWalker(node, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const text = n as Text;
    pattern.lastIndex = 0;
    if (!text.parentElement?.closest(SKIP) && pattern.test(text.data)) texts.push(text);
  }
  let first: HTMLElement | null = null;
  for (let rest of texts) {
    pattern.lastIndex = 0;
    let found = pattern.exec(rest.data);
    while (found !== null && found[0].length > 0) {
      const hit = rest.splitText(found.index);
      rest = hit.splitText(found[0].length);
      const el = document.createElement('mark');
      el.className = CLASS;
      el.dataset.testid = 'search-mark';
      hit.replaceWith(el);
      el.append(hit);
      first ??= el;
      pattern.lastIndex = 0;
      found = pattern.exec(rest.data);
    }
  }
  return first;
}

export function markText(node: HTMLElement, term: string | null) {
  const apply = (next: string | null) => {
    unmark(node);
    if (!next) return;
    const first = mark(node, next);
    // After the list's own scrolling (to the end of a conversation just opened).
    if (first) setTimeout(() => first.isConnected && first.scrollIntoView?.({ block: 'center' }), 0);
  };
  apply(term);
  return { update: apply, destroy: () => unmark(node) };
}
