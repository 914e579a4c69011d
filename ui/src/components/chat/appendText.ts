//! Svelte action for text that grows at its end (a streaming reasoning trace): only what was
//! added is put into the page, and into a block of its own once the current block is long, so
//! the browser lays out the new text instead of the whole trace at every update. Text only: it
//! never parses HTML.

/** Characters after which the next line starts a new block. */
export const CHUNK_CHARS = 2048;

/**
 * `use:appendText={text}`: shows `text` in `node` (which keeps its `white-space: pre-wrap`) as
 * blocks split at line ends. When `text` extends what is shown, only the extension is added;
 * otherwise everything is replaced. `node.textContent` is always `text`.
 */
export function appendText(node: HTMLElement, text: string) {
  let shown = '';
  let last: Text | null = null;

  const block = (): Text => {
    const div = document.createElement('div');
    const t = document.createTextNode('');
    div.append(t);
    node.append(div);
    return t;
  };

  const show = (next: string) => {
    if (next === shown) return;
    if (!next.startsWith(shown)) {
      node.replaceChildren();
      [shown, last] = ['', null];
    }
    let add = next.slice(shown.length);
    shown = next;
    while (add) {
      last ??= block();
      // A long block ends at its next line end (a block boundary there draws nothing).
      const cut = last.length >= CHUNK_CHARS ? add.indexOf('\n') : -1;
      if (cut === -1) {
        last.appendData(add);
        return;
      }
      last.appendData(add.slice(0, cut + 1));
      add = add.slice(cut + 1);
      last = null;
    }
  };

  show(text);
  return { update: show };
}
