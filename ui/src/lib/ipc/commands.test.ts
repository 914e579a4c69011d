import { beforeEach, describe, expect, it, vi } from 'vitest';

const invoke = vi.fn();

vi.mock('@tauri-apps/api/core', () => ({
  invoke: (...args: unknown[]) => invoke(...args),
  Channel: class<T> {
    onmessage: (message: T) => void;
    constructor(onmessage?: (message: T) => void) {
      this.onmessage = onmessage ?? (() => {});
    }
  },
}));

const { deleteConversation, getConversation, loadModel, selectBranch, sendMessage, stopGeneration, listConversations } =
  await import('./commands');

beforeEach(() => {
  invoke.mockReset();
});

describe('commands', () => {
  it('passes arguments under the keys the shell expects', async () => {
    invoke.mockResolvedValue(true);
    await stopGeneration('g1');
    expect(invoke).toHaveBeenLastCalledWith('stop_generation', { generationId: 'g1' });
    await getConversation('c1');
    expect(invoke).toHaveBeenLastCalledWith('get_conversation', { id: 'c1' });
    await selectBranch('c1', 'm2');
    expect(invoke).toHaveBeenLastCalledWith('select_branch', { conversationId: 'c1', messageId: 'm2' });
    await loadModel(null);
    expect(invoke).toHaveBeenLastCalledWith('load_model', { path: null, force: false });
    await listConversations();
    expect(invoke).toHaveBeenLastCalledWith('list_conversations', undefined);
  });

  it('rejects with the AppError the backend sent', async () => {
    const error = { kind: 'not_found', message: 'No such conversation.', detail: 'c9' };
    invoke.mockRejectedValue(error);
    await expect(deleteConversation('c9')).rejects.toEqual(error);
  });

  it('normalises other rejections into an internal AppError', async () => {
    invoke.mockRejectedValue('Command delete_conversation not found');
    await expect(deleteConversation('c9')).rejects.toEqual({
      kind: 'internal',
      message: 'Command delete_conversation not found',
      detail: null,
    });
  });

  it('sends a channel as onEvent and forwards its messages', async () => {
    const handle = { generation_id: 'g', user_message: {}, assistant_message_id: 'a' };
    invoke.mockResolvedValue(handle);
    const events: unknown[] = [];
    const request = { conversation_id: 'c', action: { type: 'new' as const, text: 'hi' }, preset_id: null, sampling: null, enable_thinking: null, reasoning_effort: null };
    await expect(sendMessage(request, (event) => events.push(event))).resolves.toBe(handle);
    const [command, args] = invoke.mock.calls[0];
    expect(command).toBe('send_message');
    expect(args.request).toBe(request);
    args.onEvent.onmessage({ event: 'started', generation_id: 'g', model: 'm' });
    expect(events).toEqual([{ event: 'started', generation_id: 'g', model: 'm' }]);
  });
});
