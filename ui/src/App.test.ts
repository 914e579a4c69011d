import { fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import { assistantMessage, userMessage } from './test/fixtures';

// A scripted backend behind the real IPC layer: `invoke` answers per command, the channel
// handed to `send_message` is kept so the test can stream events into it.
const backend = vi.hoisted(() => ({ channel: null as null | { onmessage: (event: unknown) => void } }));

vi.mock('@tauri-apps/api/core', () => ({
  Channel: class {
    onmessage: (event: unknown) => void;
    constructor(handler: (event: unknown) => void) {
      this.onmessage = handler;
    }
  },
  invoke: vi.fn(async (command: string, args: Record<string, unknown> = {}) => {
    switch (command) {
      case 'app_info':
        return { version: '0.1.0', data_dir: '/d', default_model_path: '/m.gguf' };
      case 'get_settings':
        return {
          version: 1,
          sampling: { temperature: 1, top_p: 0.95, top_k: null, max_tokens: 64, seed: null },
          system_prompt: '',
          clear_thinking: false,
          model_path: null,
        };
      case 'model_status':
        return { state: 'ready', model: { name: 'Tiny', path: '/m.gguf', size_bytes: 1e8, backend: 'scripted', architecture: null, context_length: 2048 } };
      case 'list_conversations':
        return [
          { id: 'c2', title: 'Recent chat', updated_at_ms: 2, message_count: 2 },
          { id: 'c1', title: 'Older chat', updated_at_ms: 1, message_count: 0 },
        ];
      case 'get_conversation':
        return args.id === 'c2'
          ? { id: 'c2', title: 'Recent chat', messages: [userMessage('u1', 'hi'), assistantMessage('a1', 'hello')] }
          : { id: args.id, title: 'Older chat', messages: [] };
      case 'send_message':
        backend.channel = args.onEvent as typeof backend.channel;
        return { generation_id: 'g1', user_message: userMessage('u2', 'next'), assistant_message_id: 'a2' };
      case 'stop_generation':
        return true;
      default:
        throw { kind: 'internal', message: `unexpected ${command}`, detail: null };
    }
  }),
}));

vi.mock('@tauri-apps/api/event', () => ({ listen: vi.fn(async () => () => {}) }));

const { default: App } = await import('./App.svelte');

describe('App', () => {
  it('opens the most recent conversation and exposes the test hooks', async () => {
    render(App);
    await waitFor(() => expect(screen.getAllByTestId('message')).toHaveLength(2));
    const items = screen.getAllByTestId('conversation-item');
    expect(items.map((i) => i.dataset.id)).toEqual(['c2', 'c1']);
    expect(items[0]).toHaveAttribute('data-active', 'true');
    expect(items[1]).toHaveAttribute('data-active', 'false');
    expect(within(items[0]).getByTestId('conversation-title')).toHaveTextContent('Recent chat');
    expect(screen.getByTestId('model-indicator')).toHaveAttribute('data-state', 'ready');
    expect(screen.getByTestId('chat')).toHaveAttribute('data-generating', 'false');
    expect(screen.getByTestId('regenerate')).toBeInTheDocument();
    expect(screen.getAllByTestId('edit')).toHaveLength(1);
  });

  it('streams a reply with Stop shown until done', async () => {
    render(App);
    await waitFor(() => expect(screen.getAllByTestId('message')).toHaveLength(2));
    const composer = screen.getByTestId('composer');
    await fireEvent.input(composer, { target: { value: 'next' } });
    await fireEvent.keyDown(composer, { key: 'Enter' });
    await waitFor(() => expect(backend.channel).not.toBeNull());
    expect(screen.getByTestId('chat')).toHaveAttribute('data-generating', 'true');
    expect(screen.getByTestId('stop')).toBeInTheDocument();
    expect(screen.queryByTestId('send')).toBeNull();

    backend.channel!.onmessage({ event: 'started', generation_id: 'g1', model: 'Tiny' });
    backend.channel!.onmessage({ event: 'reasoning', delta: 'pondering' });
    backend.channel!.onmessage({ event: 'content', delta: 'Sure', append_html: '', live_html: '<p>Sure</p>', reset_html: false });
    await waitFor(() => expect(screen.getAllByTestId('message')).toHaveLength(4));
    const streaming = screen.getAllByTestId('message')[3];
    expect(streaming).toHaveAttribute('data-id', 'a2');
    // Deltas are drawn on the next frame.
    await waitFor(() => expect(within(streaming).getByTestId('message-content').innerHTML).toBe('<!--live--><p>Sure</p>'));
    expect(within(streaming).getByTestId('reasoning')).toHaveTextContent('pondering');

    backend.channel!.onmessage({
      event: 'done',
      message: assistantMessage('a2', 'Sure', { reasoning: 'pondering', finish_reason: 'cancelled' }),
      finish_reason: 'cancelled',
    });
    await waitFor(() => expect(screen.getByTestId('chat')).toHaveAttribute('data-generating', 'false'));
    const done = screen.getAllByTestId('message')[3];
    expect(within(done).getByTestId('message-stats')).toHaveTextContent('stopped');
    expect(within(done).getByTestId('regenerate')).toBeInTheDocument();
    expect(screen.getByTestId('send')).toBeInTheDocument();
  });
});
