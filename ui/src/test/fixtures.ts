//! Builders for test data shaped like the backend's.

import type { GenerationStats } from '../lib/bindings/GenerationStats';
import type { MessageView } from '../lib/bindings/MessageView';

export function stats(overrides: Partial<GenerationStats> = {}): GenerationStats {
  return {
    prompt_tokens: 42,
    generated_tokens: 128,
    ttft_ms: 231.6,
    prefill_tokens_per_s: 512.34,
    decode_tokens_per_s: 23.456,
    total_ms: 5600,
    context_length: 8192,
    reasoning_tokens: null,
    cached_tokens: null,
    drafted_tokens: null,
    accepted_tokens: null,
    ...overrides,
  };
}

export function userMessage(id: string, content: string): MessageView {
  return {
    id,
    role: 'user',
    parent_id: null,
    content,
    html: `<p>${content}</p>`,
    reasoning: null,
    reasoning_ms: null,
    created_at_ms: 1_700_000_000_000,
    stats: null,
    finish_reason: null,
    model: null,
    sent_with: null,
    versions: [id],
  };
}

export function assistantMessage(id: string, content: string, extra: Partial<MessageView> = {}): MessageView {
  return {
    id,
    role: 'assistant',
    parent_id: null,
    content,
    html: `<p>${content}</p>`,
    reasoning: null,
    reasoning_ms: null,
    created_at_ms: 1_700_000_001_000,
    stats: stats(),
    finish_reason: 'stop',
    model: 'tiny',
    sent_with: null,
    versions: [id],
    ...extra,
  };
}
