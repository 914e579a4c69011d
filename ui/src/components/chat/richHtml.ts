//! Svelte action that shows backend-sanitized HTML and decorates it (`decorate`: Copy buttons
//! and language labels on code blocks, syntax highlighting, math). The HTML comes from the
//! backend's Markdown renderer (pulldown-cmark + ammonia), which is the XSS boundary; this action
//! never builds HTML from strings itself.

import type { StreamedHtml } from '../../lib/stores/chat';
import { decorate } from './decorate';

const BUTTON_CLASS = 'copy-code';
const RESET_AFTER_MS = 1500;

async function copyFrom(button: HTMLButtonElement): Promise<void> {
  const code = button.closest('pre')?.querySelector(':scope > code');
  try {
    await navigator.clipboard.writeText(code?.textContent ?? '');
    button.textContent = 'Copied';
  } catch {
    button.textContent = 'Copy failed';
  }
  setTimeout(() => {
    button.textContent = 'Copy';
  }, RESET_AFTER_MS);
}

/** Parses sanitized HTML as `innerHTML` does (scripts inert) into a decorated fragment. */
function fragment(html: string, live: boolean): DocumentFragment {
  const holder = document.createElement('div');
  holder.innerHTML = html;
  const out = document.createDocumentFragment();
  out.append(...holder.childNodes);
  decorate(out, live);
  return out;
}

/**
 * `use:richHtml={html}`: shows backend-sanitized HTML and adds Copy buttons.
 *
 * A whole string is assigned to `innerHTML` (only when it changed). A streaming answer
 * (`StreamedHtml`) is shown incrementally: blocks that became final are parsed and appended
 * once, before a marker; only the live block after the marker is replaced. So each update costs
 * the new HTML, not the whole answer, and the final whole HTML (the saved message), equal to
 * what was streamed, changes nothing in the page.
 */
export function richHtml(node: HTMLElement, html: string | StreamedHtml) {
  let whole: string | null = null;
  // The streamed state: the marker before the live block's nodes, blocks shown, their HTML.
  let marker: Comment | null = null;
  let resets = 0;
  let blocks = 0;
  let appended = '';
  let live = '';

  const showWhole = (next: string) => {
    if (marker !== null && next === appended + live) {
      whole = next; // the streamed answer, now saved: already on screen
      decorate(node); // a long code block left unhighlighted while it streamed
      return;
    }
    if (marker === null && next === whole) return;
    whole = next;
    marker = null;
    node.innerHTML = next;
    decorate(node);
  };

  const showStream = (next: StreamedHtml) => {
    if (marker === null || next.resets !== resets || next.blocks.length < blocks) {
      node.replaceChildren();
      marker = document.createComment('live');
      node.append(marker);
      [resets, blocks, appended, live, whole] = [next.resets, 0, '', '', null];
    }
    for (; blocks < next.blocks.length; blocks++) {
      marker.before(fragment(next.blocks[blocks], false));
      appended += next.blocks[blocks];
    }
    if (next.live !== live) {
      while (marker.nextSibling) marker.nextSibling.remove();
      node.append(fragment(next.live, true));
      live = next.live;
    }
  };

  const show = (next: string | StreamedHtml) => (typeof next === 'string' ? showWhole(next) : showStream(next));

  const onClick = (event: MouseEvent) => {
    const target = event.target;
    if (!(target instanceof Element)) return;
    const button = target.closest(`button.${BUTTON_CLASS}`);
    if (button instanceof HTMLButtonElement && node.contains(button)) void copyFrom(button);
  };
  show(html);
  node.addEventListener('click', onClick);
  return {
    update: show,
    destroy() {
      node.removeEventListener('click', onClick);
    },
  };
}
