import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import type { DisplayMessage } from '../../lib/stores/chat';
import MessageList from './MessageList.svelte';

function user(id: string, overrides: Partial<DisplayMessage> = {}): DisplayMessage {
  return {
    key: id,
    id,
    role: 'user',
    text: 'hello',
    html: '',
    reasoning: null,
    thinking: { phase: 'none' },
    stats: null,
    finishReason: null,
    model: null,
    sentWith: null,
    streaming: false,
    optimistic: false,
    versions: [overrides.id ?? id],
    ...overrides,
  };
}

const props = (messages: DisplayMessage[], locked = false) => ({
  messages,
  conversationId: 'c1',
  locked,
  onRegenerate: vi.fn(),
  onEdit: vi.fn(),
});

describe('MessageList', () => {
  it('shows a message left without a reply as such, with Retry', async () => {
    const p = props([user('u1')]);
    render(MessageList, p);
    expect(screen.getByTestId('unanswered')).toHaveTextContent('no reply');
    await fireEvent.click(screen.getByTestId('retry'));
    expect(p.onRegenerate).toHaveBeenCalledOnce();
  });

  it('says nothing while a reply is on its way or the message is not yet saved', () => {
    render(MessageList, props([user('u1')], true));
    expect(screen.queryByTestId('unanswered')).toBeNull();
  });

  it('says nothing for an optimistic message', () => {
    render(MessageList, props([user('tmp', { optimistic: true })]));
    expect(screen.queryByTestId('unanswered')).toBeNull();
  });
});
