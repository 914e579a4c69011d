import { describe, expect, it } from 'vitest';
import type { GenerationEvent } from '../bindings/GenerationEvent';
import type { GenerationHandle } from '../bindings/GenerationHandle';
import { assistantMessage, userMessage } from '../../test/fixtures';
import {
  abortSend,
  applyEvent,
  attachHandle,
  beginSend,
  chatFromView,
  displayMessages,
  hasHtml,
  truncateFor,
  type ChatState,
} from './chat';

function conversation(): ChatState {
  return chatFromView({
    id: 'c1',
    thinking: null,
    preset_id: null,
    title: 'Greetings',
    messages: [userMessage('u1', 'hi'), assistantMessage('a1', 'hello'), userMessage('u2', 'how are you?'), assistantMessage('a2', 'fine')],
  });
}

function handle(userId: string, text: string): GenerationHandle {
  return { generation_id: 'g1', user_message: userMessage(userId, text), assistant_message_id: 'a-new' };
}

function run(chat: ChatState, events: GenerationEvent[], startMs = 10_000, stepMs = 1_000): ChatState {
  return events.reduce((state, event, i) => applyEvent(state, event, startMs + i * stepMs), chat);
}

const ids = (chat: ChatState) => chat.messages.map((m) => m.id);

describe('truncateFor', () => {
  const messages = conversation().messages;

  it('keeps everything for a new message', () => {
    expect(truncateFor(messages, { type: 'new', text: 'x' })).toBe(messages);
  });

  it('drops the last assistant reply on regenerate', () => {
    expect(truncateFor(messages, { type: 'regenerate' }).map((m) => m.id)).toEqual(['u1', 'a1', 'u2']);
  });

  it('keeps a trailing user message without reply on regenerate', () => {
    const unanswered = messages.slice(0, 3);
    expect(truncateFor(unanswered, { type: 'regenerate' }).map((m) => m.id)).toEqual(['u1', 'a1', 'u2']);
  });

  it('drops the edited message and everything after it on edit', () => {
    expect(truncateFor(messages, { type: 'edit', message_id: 'u1', text: 'hey' }).map((m) => m.id)).toEqual([]);
    expect(truncateFor(messages, { type: 'edit', message_id: 'u2', text: 'x' }).map((m) => m.id)).toEqual(['u1', 'a1']);
  });

  it('does not mutate its input', () => {
    const copy = [...messages];
    truncateFor(messages, { type: 'regenerate' });
    expect(messages).toEqual(copy);
  });
});

describe('beginSend / attachHandle', () => {
  it('shows the user text at once and a streaming reply after it', () => {
    const chat = beginSend(conversation(), { type: 'new', text: 'and you?' }, 'local-1', 5);
    expect(ids(chat)).toEqual(['u1', 'a1', 'u2', 'a2', 'local-1']);
    const rows = displayMessages(chat);
    expect(rows.at(-2)).toMatchObject({ role: 'user', text: 'and you?', optimistic: true });
    expect(rows.at(-1)).toMatchObject({ role: 'assistant', streaming: true, id: '' });
  });

  it('swaps the optimistic message for the saved one and keys the reply by its future id', () => {
    let chat = beginSend(conversation(), { type: 'new', text: 'and you?' }, 'local-1', 5);
    chat = attachHandle(chat, handle('u3', 'and you?'));
    expect(ids(chat)).toEqual(['u1', 'a1', 'u2', 'a2', 'u3']);
    expect(chat.optimisticUserId).toBeNull();
    expect(chat.pending).toMatchObject({ key: 'a-new', assistantId: 'a-new', generationId: 'g1' });
  });

  it('regenerate removes the last reply and adds no user message', () => {
    let chat = beginSend(conversation(), { type: 'regenerate' }, 'local-1', 5);
    expect(ids(chat)).toEqual(['u1', 'a1', 'u2']);
    chat = attachHandle(chat, handle('u2', 'how are you?'));
    expect(ids(chat)).toEqual(['u1', 'a1', 'u2']);
    expect(displayMessages(chat).map((r) => r.key)).toEqual(['u1', 'a1', 'u2', 'a-new']);
  });

  it('edit drops everything after the edited message and shows the new text', () => {
    let chat = beginSend(conversation(), { type: 'edit', message_id: 'u2', text: 'how old are you?' }, 'local-1', 5);
    expect(ids(chat)).toEqual(['u1', 'a1', 'local-1']);
    chat = attachHandle(chat, handle('u2', 'how old are you?'));
    expect(ids(chat)).toEqual(['u1', 'a1', 'u2']);
    expect(chat.messages[2].content).toBe('how old are you?');
  });

  it('abortSend restores the previous messages', () => {
    const before = conversation();
    const chat = abortSend(beginSend(before, { type: 'regenerate' }, 'local-1', 5), before.messages);
    expect(chat.messages).toBe(before.messages);
    expect(chat.pending).toBeNull();
  });
});

describe('applyEvent', () => {
  const started: GenerationEvent = { event: 'started', generation_id: 'g1', model: 'tiny' };

  function streaming(): ChatState {
    return attachHandle(beginSend(conversation(), { type: 'new', text: 'q' }, 'local-1', 0), handle('u3', 'q'));
  }

  it('streams reasoning and content into separate fields', () => {
    const chat = run(streaming(), [
      started,
      { event: 'reasoning', delta: 'Let me ' },
      { event: 'reasoning', delta: 'think.' },
      { event: 'content', delta: 'The ', append_html: '', live_html: '<p>The</p>', reset_html: false },
      { event: 'content', delta: 'answer', append_html: '', live_html: '<p>The answer</p>', reset_html: false },
    ]);
    expect(chat.pending).toMatchObject({
      reasoning: 'Let me think.',
      content: 'The answer',
      html: { blocks: [], live: '<p>The answer</p>', resets: 0 },
      model: 'tiny',
      generationId: 'g1',
    });
    const row = displayMessages(chat).at(-1)!;
    expect(row.reasoning).toBe('Let me think.');
    expect(JSON.stringify(row.html)).not.toContain('think');
    expect(row.text).not.toContain('think');
  });

  it('keeps reasoning out of the answer even when it arrives after content', () => {
    const chat = run(streaming(), [
      started,
      { event: 'content', delta: 'A', append_html: '', live_html: '<p>A</p>', reset_html: false },
      { event: 'reasoning', delta: 'late thought' },
      { event: 'content', delta: 'B', append_html: '', live_html: '<p>AB</p>', reset_html: false },
    ]);
    expect(chat.pending).toMatchObject({ content: 'AB', html: { live: '<p>AB</p>' }, reasoning: 'late thought' });
  });

  it('appends final blocks once, replaces the live block, and starts over on a reset', () => {
    const content = (delta: string, append_html: string, live_html: string, reset_html = false) =>
      ({ event: 'content', delta, append_html, live_html, reset_html }) as const;
    const before = streaming();
    const chat = run(before, [
      content('**a', '', '<p>**a</p>'),
      content('**', '', '<p><strong>a</strong></p>'),
      content('\n\nb\n', '<p><strong>a</strong></p>\n', '<p>b</p>\n'),
      content('\nc', '<p>b</p>\n', '<p>c</p>\n'),
    ]);
    expect(chat.pending?.html).toEqual({
      blocks: ['<p><strong>a</strong></p>\n', '<p>b</p>\n'],
      live: '<p>c</p>\n',
      resets: 0,
    });
    const reset = applyEvent(chat, content('\n\n[x]: y', '', '<p>whole</p>', true), 0);
    expect(reset.pending?.html).toEqual({ blocks: [], live: '<p>whole</p>', resets: 1 });
    expect(chat.pending?.html.blocks).toHaveLength(2); // inputs unchanged
    expect(hasHtml(before.pending!.html)).toBe(false);
    expect(hasHtml(chat.pending!.html)).toBe(true);
  });

  it('times the thinking from the first reasoning delta to the first content', () => {
    const chat = run(
      streaming(),
      [
        started, // t = 10 000
        { event: 'reasoning', delta: 'a' }, // 11 000
        { event: 'reasoning', delta: 'b' }, // 12 000
        { event: 'content', delta: 'x', append_html: '', live_html: '<p>x</p>', reset_html: false }, // 13 000
        { event: 'content', delta: 'y', append_html: '', live_html: '<p>xy</p>', reset_html: false }, // 14 000
      ],
    );
    expect(displayMessages(chat).at(-1)!.thinking).toEqual({ phase: 'done', ms: 2000 });
  });

  it('reports live thinking until content starts', () => {
    const chat = run(streaming(), [started, { event: 'reasoning', delta: 'a' }]);
    expect(displayMessages(chat).at(-1)!.thinking).toEqual({ phase: 'live' });
  });

  it('on done appends the saved message in place of the streaming reply and keeps the thinking time', () => {
    const saved = assistantMessage('a-new', 'xy', { reasoning: 'ab', html: '<p>xy</p>' });
    const chat = run(streaming(), [
      started,
      { event: 'reasoning', delta: 'a' },
      { event: 'reasoning', delta: 'b' },
      { event: 'done', message: saved, finish_reason: 'stop' },
    ]);
    expect(chat.pending).toBeNull();
    expect(ids(chat)).toEqual(['u1', 'a1', 'u2', 'a2', 'u3', 'a-new']);
    const row = displayMessages(chat).at(-1)!;
    expect(row).toMatchObject({ key: 'a-new', streaming: false, reasoning: 'ab', html: '<p>xy</p>' });
    // Reasoning started at 11 000 and ended with `done` at 13 000.
    expect(row.thinking).toEqual({ phase: 'done', ms: 2000 });
  });

  it('keeps the row key from streaming to saved so the component survives', () => {
    const before = run(streaming(), [started, { event: 'content', delta: 'x', append_html: '', live_html: '<p>x</p>', reset_html: false }]);
    const after = applyEvent(before, { event: 'done', message: assistantMessage('a-new', 'x'), finish_reason: 'stop' }, 0);
    expect(displayMessages(before).at(-1)!.key).toBe(displayMessages(after).at(-1)!.key);
  });

  it('on error keeps the partial saved message', () => {
    const partial = assistantMessage('a-new', 'par', { finish_reason: 'error' });
    const chat = run(streaming(), [
      started,
      { event: 'content', delta: 'par', append_html: '', live_html: '<p>par</p>', reset_html: false },
      { event: 'error', error: { kind: 'generation', message: 'boom', detail: null }, message: partial },
    ]);
    expect(chat.pending).toBeNull();
    expect(chat.messages.at(-1)).toBe(partial);
  });

  it('on error without a message drops the streaming reply', () => {
    const chat = run(streaming(), [
      started,
      { event: 'error', error: { kind: 'no_model', message: 'No model', detail: null }, message: null },
    ]);
    expect(chat.pending).toBeNull();
    expect(ids(chat)).toEqual(['u1', 'a1', 'u2', 'a2', 'u3']);
  });

  it('handles done arriving before the handle', () => {
    let chat = beginSend(conversation(), { type: 'new', text: 'q' }, 'local-1', 0);
    chat = run(chat, [started, { event: 'done', message: assistantMessage('a-new', 'x'), finish_reason: 'stop' }]);
    chat = attachHandle(chat, handle('u3', 'q'));
    expect(ids(chat)).toEqual(['u1', 'a1', 'u2', 'a2', 'u3', 'a-new']);
    expect(chat.pending).toBeNull();
  });

  it('ignores deltas when nothing is streaming', () => {
    const chat = conversation();
    expect(applyEvent(chat, { event: 'content', delta: 'x', append_html: '', live_html: '<p>x</p>', reset_html: false }, 0)).toBe(chat);
  });

  it('never mutates the previous state', () => {
    const before = streaming();
    const snapshot = structuredClone(before);
    run(before, [started, { event: 'reasoning', delta: 'a' }, { event: 'content', delta: 'b', append_html: '', live_html: 'b', reset_html: false }]);
    expect(before).toEqual(snapshot);
  });
});

describe('displayMessages', () => {
  it('hides system messages and marks loaded reasoning as of unknown duration', () => {
    const chat = chatFromView({
      id: 'c',
      thinking: null,
    preset_id: null,
      title: '',
      messages: [
        { ...userMessage('s', 'be brief'), role: 'system' },
        userMessage('u', 'q'),
        assistantMessage('a', 'x', { reasoning: 'hmm' }),
      ],
    });
    const rows = displayMessages(chat);
    expect(rows.map((r) => r.id)).toEqual(['u', 'a']);
    expect(rows[1].thinking).toEqual({ phase: 'done', ms: null });
    expect(rows[0].thinking).toEqual({ phase: 'none' });
  });

  it('shows the reasoning duration saved with a message after a restart', () => {
    const chat = chatFromView({
      id: 'c',
      thinking: null,
    preset_id: null,
      title: '',
      messages: [userMessage('u', 'q'), assistantMessage('a', 'x', { reasoning: 'hmm', reasoning_ms: 4_400 })],
    });
    expect(displayMessages(chat)[1].thinking).toEqual({ phase: 'done', ms: 4_400 });
  });
});
