//! The app's keyboard shortcuts: one table, read by the window's key handler and listed in
//! Settings. `Mod` is ⌘ on macOS and Ctrl elsewhere.

export type ShortcutAction = 'newChat' | 'focusComposer' | 'stop' | 'regenerate' | 'search' | 'settings';

export interface Shortcut {
  action: ShortcutAction;
  /** What it does, as listed in Settings. */
  label: string;
  /** `event.key`, lower case for letters. */
  key: string;
  mod: boolean;
  shift: boolean;
}

export const SHORTCUTS: readonly Shortcut[] = [
  { action: 'newChat', label: 'New chat', key: 'o', mod: true, shift: true },
  { action: 'focusComposer', label: 'Focus the message box', key: 'Escape', mod: false, shift: true },
  { action: 'stop', label: 'Stop the reply being written', key: 'Escape', mod: false, shift: false },
  { action: 'regenerate', label: 'Regenerate the last reply', key: 'r', mod: true, shift: true },
  { action: 'search', label: 'Search chats', key: 'k', mod: true, shift: false },
  { action: 'settings', label: 'Settings', key: ',', mod: true, shift: false },
];

/** Whether this is a Mac (⌘ instead of Ctrl). */
export function isMac(): boolean {
  return typeof navigator !== 'undefined' && /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent);
}

/** The action `event` asks for, if any. */
export function shortcutFor(event: KeyboardEvent, mac: boolean = isMac()): ShortcutAction | null {
  if (event.isComposing || event.altKey) return null;
  const mod = mac ? event.metaKey : event.ctrlKey;
  const other = mac ? event.ctrlKey : event.metaKey;
  if (other) return null;
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  const found = SHORTCUTS.find((s) => s.key === key && s.mod === mod && s.shift === event.shiftKey);
  return found?.action ?? null;
}

const NAMES: Record<string, string> = { Escape: 'Esc', ',': ',' };

/** How the keys of `shortcut` are written on this platform: `⌘⇧O` or `Ctrl+Shift+O`. */
export function keysLabel(shortcut: Shortcut, mac: boolean = isMac()): string {
  const key = NAMES[shortcut.key] ?? shortcut.key.toUpperCase();
  if (mac) return `${shortcut.mod ? '⌘' : ''}${shortcut.shift ? '⇧' : ''}${key}`;
  return [shortcut.mod ? 'Ctrl' : null, shortcut.shift ? 'Shift' : null, key].filter(Boolean).join('+');
}
