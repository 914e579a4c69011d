//! The chat view as plain data, and the pure functions that change it: loading a conversation,
//! starting a send (with regenerate/edit truncation), attaching the backend's handle, and
//! applying each `GenerationEvent`.
//!
//! Invariants: functions never mutate their inputs; reasoning text and answer text live in
//! separate fields and no function moves text from one to the other; the reply being streamed
//! keeps the key of the message it becomes, so the component showing it survives `done`.

import type { SearchField } from '../bindings/SearchField';
import type { SentWith } from '../bindings/SentWith';
import type { ConversationView } from '../bindings/ConversationView';
import type { FinishReason } from '../bindings/FinishReason';
import type { GenerationEvent } from '../bindings/GenerationEvent';
import type { GenerationHandle } from '../bindings/GenerationHandle';
import type { GenerationStats } from '../bindings/GenerationStats';
import type { MessageView } from '../bindings/MessageView';
import type { Role } from '../bindings/Role';
import type { SendAction } from '../bindings/SendAction';

/**
 * A streaming answer's HTML as the backend sends it: the blocks that are final, each sent once
 * (append-only), and the block still being written. `resets` counts the times the backend
 * discarded the final blocks (an answer whose HTML must be rendered whole). `blocks` joined,
 * then `live`, is the whole answer's HTML.
 */
export interface StreamedHtml {
  blocks: readonly string[];
  live: string;
  resets: number;
}

/** A search hit shown in the conversation: the term highlighted in one field of one message. */
export interface SearchMark {
  conversationId: string;
  messageId: string;
  term: string;
  field: SearchField;
}

export const NO_HTML: StreamedHtml = { blocks: [], live: '', resets: 0 };

/** The assistant reply being streamed. */
export interface PendingReply {
  /** Stable key for rendering: the assistant message id once known. */
  key: string;
  generationId: string | null;
  /** Id the saved message will carry (from the handle), once known. */
  assistantId: string | null;
  model: string | null;
  reasoning: string;
  content: string;
  /** The answer so far, rendered and sanitized by the backend, as streamed. */
  html: StreamedHtml;
  /** Client clock (ms) of the first reasoning delta. */
  reasoningStartMs: number | null;
  /** Client clock (ms) when reasoning ended: first answer text, or the end of the generation. */
  reasoningEndMs: number | null;
}

export interface ChatState {
  conversationId: string | null;
  title: string;
  messages: MessageView[];
  pending: PendingReply | null;
  /** Id of the optimistic user message shown until the handle brings the saved one. */
  optimisticUserId: string | null;
  /** Reasoning durations measured live in this session, by assistant message id. */
  thinkingMs: Record<string, number>;
  /** True while the conversation is being fetched. */
  loading: boolean;
}

/** Where a message's reasoning stands, for the reasoning pane. */
export type Thinking =
  | { phase: 'none' }
  | { phase: 'live' }
  | { phase: 'done'; ms: number | null };

/** One row of the message list, saved or streaming. */
export interface DisplayMessage {
  key: string;
  /** Empty while a streaming reply has no id yet. */
  id: string;
  role: Role;
  /** Plain text (user messages are shown as text). */
  text: string;
  /** Sanitized HTML of the answer (assistant messages): whole once saved, as streamed before. */
  html: string | StreamedHtml;
  reasoning: string | null;
  thinking: Thinking;
  stats: GenerationStats | null;
  finishReason: FinishReason | null;
  model: string | null;
  /** Preset, sampling and thinking settings the reply was generated with. */
  sentWith: SentWith | null;
  streaming: boolean;
  /** Shown optimistically; the backend has not confirmed it yet. */
  optimistic: boolean;
  /** Ids of this message's versions (regenerated replies, edited messages), oldest first. */
  versions: readonly string[];
}

export function emptyChat(): ChatState {
  return {
    conversationId: null,
    title: '',
    messages: [],
    pending: null,
    optimisticUserId: null,
    thinkingMs: {},
    loading: false,
  };
}

/** A chat for `conversationId` whose messages are still being fetched. */
export function loadingChat(conversationId: string, title: string): ChatState {
  return { ...emptyChat(), conversationId, title, loading: true };
}

export function chatFromView(view: ConversationView): ChatState {
  return { ...emptyChat(), conversationId: view.id, title: view.title, messages: view.messages };
}

/** `chat` showing another branch of the same conversation (measured reasoning times kept). */
export function showBranch(chat: ChatState, view: ConversationView): ChatState {
  if (chat.conversationId !== view.id || chat.pending) return chat;
  return { ...chat, title: view.title, messages: view.messages };
}

/**
 * The messages that stay in view when `action` starts: regenerate hides the last assistant
 * reply (and anything after the last user message); edit hides the edited message and all
 * after it (its new version comes back from the backend). What is hidden stays saved as
 * another branch.
 */
export function truncateFor(messages: MessageView[], action: SendAction): MessageView[] {
  switch (action.type) {
    case 'new':
      return messages;
    case 'regenerate': {
      const lastUser = findLastIndex(messages, (m) => m.role === 'user');
      return lastUser === -1 ? messages : messages.slice(0, lastUser + 1);
    }
    case 'edit': {
      const index = messages.findIndex((m) => m.id === action.message_id);
      return index === -1 ? messages : messages.slice(0, index);
    }
  }
}

function findLastIndex<T>(items: T[], predicate: (item: T) => boolean): number {
  for (let i = items.length - 1; i >= 0; i--) if (predicate(items[i])) return i;
  return -1;
}

/** A user message shown before the backend confirms it. */
export function optimisticUserMessage(id: string, text: string, nowMs: number): MessageView {
  return {
    id,
    role: 'user',
    parent_id: null,
    content: text,
    html: '',
    versions: [id],
    reasoning: null,
    reasoning_ms: null,
    created_at_ms: nowMs,
    stats: null,
    finish_reason: null,
    model: null,
    sent_with: null,
  };
}

function newPending(key: string): PendingReply {
  return {
    key,
    generationId: null,
    assistantId: null,
    model: null,
    reasoning: '',
    content: '',
    html: NO_HTML,
    reasoningStartMs: null,
    reasoningEndMs: null,
  };
}

/**
 * The view right after the user sends: truncated for `action`, the user's text shown at once
 * (for `new` and `edit`) under `tempId`, and an empty streaming reply keyed `pending:<tempId>`.
 */
export function beginSend(chat: ChatState, action: SendAction, tempId: string, nowMs: number): ChatState {
  const kept = truncateFor(chat.messages, action);
  let messages = kept;
  let optimisticUserId: string | null = null;
  if (action.type === 'new' || action.type === 'edit') {
    messages = [...kept, optimisticUserMessage(tempId, action.text, nowMs)];
    optimisticUserId = tempId;
  }
  return { ...chat, messages, optimisticUserId, pending: newPending(`pending:${tempId}`) };
}

/** Puts back the messages shown before a send the backend refused. */
export function abortSend(chat: ChatState, messagesBefore: MessageView[]): ChatState {
  return { ...chat, messages: messagesBefore, pending: null, optimisticUserId: null };
}

/** Swaps the optimistic user message for the saved one and learns the ids of the generation. */
export function attachHandle(chat: ChatState, handle: GenerationHandle): ChatState {
  const user = handle.user_message;
  let messages = chat.messages;
  const swapId = chat.optimisticUserId ?? user.id;
  const index = messages.findIndex((m) => m.id === swapId);
  if (index !== -1) {
    messages = [...messages.slice(0, index), user, ...messages.slice(index + 1)];
  }
  const pending = chat.pending
    ? {
        ...chat.pending,
        key: handle.assistant_message_id,
        assistantId: handle.assistant_message_id,
        generationId: chat.pending.generationId ?? handle.generation_id,
      }
    : null;
  return { ...chat, messages, pending, optimisticUserId: null };
}

function closeReasoning(pending: PendingReply, nowMs: number): PendingReply {
  if (pending.reasoningStartMs !== null && pending.reasoningEndMs === null) {
    return { ...pending, reasoningEndMs: nowMs };
  }
  return pending;
}

function finish(chat: ChatState, message: MessageView | null, nowMs: number): ChatState {
  const pending = chat.pending ? closeReasoning(chat.pending, nowMs) : null;
  let thinkingMs = chat.thinkingMs;
  let messages = chat.messages;
  if (message) {
    if (pending && pending.reasoningStartMs !== null && pending.reasoningEndMs !== null) {
      thinkingMs = { ...thinkingMs, [message.id]: pending.reasoningEndMs - pending.reasoningStartMs };
    }
    messages = [...messages.filter((m) => m.id !== message.id), message];
  }
  return { ...chat, messages, thinkingMs, pending: null };
}

/** Applies one event of the generation streaming into `chat`; `nowMs` is the client clock. */
export function applyEvent(chat: ChatState, event: GenerationEvent, nowMs: number): ChatState {
  const pending = chat.pending;
  switch (event.event) {
    case 'started':
      if (!pending) return chat;
      return { ...chat, pending: { ...pending, generationId: event.generation_id, model: event.model } };
    case 'reasoning':
      if (!pending) return chat;
      return {
        ...chat,
        pending: {
          ...pending,
          reasoning: pending.reasoning + event.delta,
          reasoningStartMs: pending.reasoningStartMs ?? nowMs,
        },
      };
    case 'content':
      if (!pending) return chat;
      return {
        ...chat,
        pending: {
          ...closeReasoning(pending, nowMs),
          content: pending.content + event.delta,
          html: streamHtml(pending.html, event),
        },
      };
    case 'done':
      return finish(chat, event.message, nowMs);
    case 'error':
      return finish(chat, event.message, nowMs);
  }
}

/** `html` after a `content` event: its final blocks appended (after a reset, replacing), its live block replaced. */
function streamHtml(
  html: StreamedHtml,
  event: { append_html: string; live_html: string; reset_html: boolean },
): StreamedHtml {
  const blocks = event.reset_html ? [] : html.blocks;
  return {
    blocks: event.append_html ? [...blocks, event.append_html] : blocks,
    live: event.live_html,
    resets: html.resets + (event.reset_html ? 1 : 0),
  };
}

/** Whether a row has any answer HTML to show yet. */
export function hasHtml(html: string | StreamedHtml): boolean {
  return typeof html === 'string' ? html !== '' : html.blocks.length > 0 || html.live !== '';
}

function thinkingOfSaved(message: MessageView, thinkingMs: Record<string, number>): Thinking {
  if (!message.reasoning) return { phase: 'none' };
  // The live measurement of this session, else the duration saved with the message.
  const ms = thinkingMs[message.id] ?? message.reasoning_ms ?? null;
  return { phase: 'done', ms };
}

function thinkingOfPending(pending: PendingReply): Thinking {
  if (pending.reasoningStartMs === null) return { phase: 'none' };
  if (pending.reasoningEndMs === null) return { phase: 'live' };
  return { phase: 'done', ms: pending.reasoningEndMs - pending.reasoningStartMs };
}

/** The rows to render, in order: saved messages (system prompts hidden), then the streaming reply. */
export function displayMessages(chat: ChatState): DisplayMessage[] {
  const rows: DisplayMessage[] = chat.messages
    .filter((m) => m.role !== 'system')
    .map((m) => ({
      key: m.id,
      id: m.id,
      role: m.role,
      text: m.content,
      html: m.html,
      reasoning: m.reasoning,
      thinking: thinkingOfSaved(m, chat.thinkingMs),
      stats: m.stats,
      finishReason: m.finish_reason,
      model: m.model,
      sentWith: m.sent_with,
      streaming: false,
      optimistic: m.id === chat.optimisticUserId,
      versions: m.versions,
    }));
  const p = chat.pending;
  if (p) {
    rows.push({
      key: p.key,
      id: p.assistantId ?? '',
      role: 'assistant',
      text: p.content,
      html: p.html,
      reasoning: p.reasoning || null,
      thinking: thinkingOfPending(p),
      stats: null,
      finishReason: null,
      model: p.model,
      sentWith: null,
      streaming: true,
      optimistic: false,
      versions: [],
    });
  }
  return rows;
}
