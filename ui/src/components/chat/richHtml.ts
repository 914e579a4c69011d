//! Svelte action that shows backend-sanitized HTML and decorates it: every `pre > code` block
//! gets a Copy button. The HTML comes from the backend's Markdown renderer (pulldown-cmark +
//! ammonia), which is the XSS boundary; this action never builds HTML from strings itself.

const BUTTON_CLASS = 'copy-code';
const RESET_AFTER_MS = 1500;

/** Adds a Copy button to each `pre` that holds a `code` element and has none yet. */
export function addCopyButtons(root: HTMLElement): void {
  for (const pre of root.querySelectorAll('pre')) {
    if (!pre.querySelector(':scope > code') || pre.querySelector(`:scope > button.${BUTTON_CLASS}`)) continue;
    const button = document.createElement('button');
    button.type = 'button';
    button.className = BUTTON_CLASS;
    button.textContent = 'Copy';
    button.setAttribute('aria-label', 'Copy code');
    button.dataset.testid = 'copy-code';
    pre.append(button);
  }
}

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

/** `use:richHtml={html}`: assigns `html` to `innerHTML` (only when it changed) and adds Copy buttons. */
export function richHtml(node: HTMLElement, html: string) {
  let shown: string | null = null;
  const show = (next: string) => {
    if (next === shown) return;
    shown = next;
    node.innerHTML = next;
    addCopyButtons(node);
  };
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
