//! Svelte action that highlights every case-insensitive occurrence of a term in an element's
//! text (a search hit opened from the sidebar) by wrapping it in `<mark>`, and scrolls the
//! first one into view. It only splits existing text nodes: no HTML is built from strings.

const CLASS = 'search-mark';

function unmark(node: HTMLElement): void {
  const marks = node.querySelectorAll(`mark.${CLASS}`);
  for (const mark of marks) mark.replaceWith(...mark.childNodes);
  if (marks.length > 0) node.normalize();
}

function mark(node: HTMLElement, term: string): HTMLElement | null {
  const needle = term.toLowerCase();
  const texts: Text[] = [];
  const walker = document.createTreeWalker(node, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const text = n as Text;
    // Not inside the code blocks' Copy buttons.
    if (!text.parentElement?.closest('button') && text.data.toLowerCase().includes(needle)) texts.push(text);
  }
  let first: HTMLElement | null = null;
  for (let rest of texts) {
    let at = rest.data.toLowerCase().indexOf(needle);
    while (at !== -1) {
      const found = rest.splitText(at);
      rest = found.splitText(needle.length);
      const el = document.createElement('mark');
      el.className = CLASS;
      el.dataset.testid = 'search-mark';
      found.replaceWith(el);
      el.append(found);
      first ??= el;
      at = rest.data.toLowerCase().indexOf(needle);
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
