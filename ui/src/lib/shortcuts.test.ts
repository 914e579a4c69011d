import { describe, expect, it } from 'vitest';
import { keysLabel, SHORTCUTS, shortcutFor } from './shortcuts';

const key = (k: string, mods: Partial<KeyboardEventInit> = {}) => new KeyboardEvent('keydown', { key: k, ...mods });

describe('shortcuts', () => {
  it('reads Ctrl elsewhere and ⌘ on a Mac', () => {
    expect(shortcutFor(key('O', { ctrlKey: true, shiftKey: true }), false)).toBe('newChat');
    expect(shortcutFor(key('o', { metaKey: true, shiftKey: true }), true)).toBe('newChat');
    expect(shortcutFor(key('o', { metaKey: true, shiftKey: true }), false)).toBeNull();
    expect(shortcutFor(key('o', { ctrlKey: true, shiftKey: true }), true)).toBeNull();
    expect(shortcutFor(key('k', { ctrlKey: true }), false)).toBe('search');
    expect(shortcutFor(key(',', { ctrlKey: true }), false)).toBe('settings');
    expect(shortcutFor(key('R', { ctrlKey: true, shiftKey: true }), false)).toBe('regenerate');
    expect(shortcutFor(key('Escape'), false)).toBe('stop');
    expect(shortcutFor(key('Escape', { shiftKey: true }), false)).toBe('focusComposer');
  });

  it('ignores plain typing, Alt chords and IME composition', () => {
    expect(shortcutFor(key('k'), false)).toBeNull();
    expect(shortcutFor(key('k', { ctrlKey: true, altKey: true }), false)).toBeNull();
    expect(shortcutFor(key('k', { ctrlKey: true, isComposing: true }), false)).toBeNull();
  });

  it('are written the way each platform writes them, all distinct', () => {
    const newChat = SHORTCUTS.find((s) => s.action === 'newChat')!;
    expect(keysLabel(newChat, true)).toBe('⌘⇧O');
    expect(keysLabel(newChat, false)).toBe('Ctrl+Shift+O');
    const labels = SHORTCUTS.map((s) => keysLabel(s, false));
    expect(new Set(labels).size).toBe(labels.length);
  });
});
