import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { GenerationEvent } from '../bindings/GenerationEvent';
import type { ModelStatus } from '../bindings/ModelStatus';
import { assistantMessage, userMessage } from '../../test/fixtures';

// The store talks to the backend only through `../ipc`; replace it with a scripted fake.
const { fakePreset } = vi.hoisted(() => ({
  fakePreset: (id: string, name: string, top_p: number, thinking: boolean, effort: string | null) => ({
    id,
    name,
    sampling: { temperature: 1, top_p, top_k: null, max_tokens: 131072, seed: null, min_p: null, repetition_penalty: null },
    enable_thinking: thinking,
    reasoning_effort: effort,
    system_prompt: null,
  }),
}));

const fake = vi.hoisted(() => ({
  onEvent: null as ((event: unknown) => void) | null,
  modelListener: null as ((status: unknown) => void) | null,
  conversationListener: null as ((summary: unknown) => void) | null,
}));

vi.mock('../ipc', async () => {
  const errors = await import('../ipc/errors');
  return {
    toAppError: errors.toAppError,
    isAppError: errors.isAppError,
    appInfo: vi.fn(async () => ({ version: '0.1.0', data_dir: '/d', default_model_path: '/m.gguf' })),
    getSettings: vi.fn(async () => ({
      version: 1,
      sampling: { temperature: 1, top_p: 0.95, top_k: null, max_tokens: 64, seed: null },
      system_prompt: '',
      clear_thinking: false,
      model_path: null,
      collapse_reasoning: true,
      presets: [],
      default_preset: 'general',
    })),
    listPresets: vi.fn(async () => [
      fakePreset('general', 'General', 0.95, true, null),
      fakePreset('swe-bench-pro', 'SWE-Bench Pro', 1, true, null),
      fakePreset('user-quick', 'Quick', 0.8, false, null),
    ]),
    savePreset: vi.fn(async (p: unknown) => p),
    duplicatePreset: vi.fn(),
    deletePreset: vi.fn(async () => {}),
    importPresets: vi.fn(async () => {
      throw { kind: 'invalid_request', message: 'That is not a LocalGLM presets file.', detail: null };
    }),
    modelStatus: vi.fn(async () => ({ state: 'loading', path: '/m.gguf', progress: null })),
    onConversation: vi.fn(async (handler: (summary: unknown) => void) => {
      fake.conversationListener = handler;
      return () => {};
    }),
    onModelStatus: vi.fn(async (handler: (status: unknown) => void) => {
      fake.modelListener = handler;
      return () => {};
    }),
    listConversations: vi.fn(async () => [
      { id: 'c2', title: 'Recent', updated_at_ms: 2, message_count: 2 },
      { id: 'c1', title: 'Older', updated_at_ms: 1, message_count: 0 },
    ]),
    getConversation: vi.fn(async (id: string) => ({
      id,
      title: id === 'c2' ? 'Recent' : 'Older',
      messages: id === 'c2' ? [userMessage('u1', 'hi'), assistantMessage('a1', 'hello')] : [],
      thinking: id === 'c1' ? { enabled: false, effort: 'high' } : null,
      preset_id: id === 'c1' ? 'swe-bench-pro' : null,
    })),
    createConversation: vi.fn(async () => ({ id: 'c3', title: '', updated_at_ms: 3, message_count: 0 })),
    renameConversation: vi.fn(async (id: string, title: string) => ({ id, title, updated_at_ms: 4, message_count: 2 })),
    deleteConversation: vi.fn(async () => {}),
    importConversation: vi.fn(async (json: string) => {
      if (json === 'bad') throw { kind: 'invalid_request', message: 'That is not a LocalGLM conversation file; nothing was imported.', detail: 'not JSON' };
      return { id: 'c7', title: 'Imported', updated_at_ms: 9, message_count: 2 };
    }),
    selectBranch: vi.fn(async (id: string, messageId: string) => ({
      id,
      title: 'Recent',
      messages: [userMessage('u1', 'hi'), assistantMessage(messageId, 'earlier', { versions: ['a1', 'a9'] })],
      thinking: null,
      preset_id: null,
    })),
    sendMessage: vi.fn(async (request: { action: { type: string; text?: string } }, onEvent: (event: unknown) => void) => {
      fake.onEvent = onEvent;
      return {
        generation_id: 'g1',
        user_message: userMessage('u2', request.action.text ?? 'hi'),
        assistant_message_id: 'a2',
      };
    }),
    stopGeneration: vi.fn(async () => true),
    loadModel: vi.fn(),
    saveSettings: vi.fn(async (settings: unknown) => settings),
    renderMarkdown: vi.fn(),
    listModels: vi.fn(),
  };
});

const ipc = await import('../ipc');
const { AppStore } = await import('./app.svelte');

/** Applies streamed deltas as they come (the window applies them once per frame). */
const atOnce = (apply: () => void) => apply();

function emit(event: GenerationEvent) {
  fake.onEvent?.(event);
}

beforeEach(() => {
  vi.clearAllMocks();
  fake.onEvent = null;
  fake.modelListener = null;
});

describe('AppStore', () => {
  it('loads info, settings, model status and conversations, and opens the most recent', async () => {
    const store = new AppStore(atOnce);
    await store.init();
    expect(store.info?.version).toBe('0.1.0');
    expect(store.settings?.sampling.max_tokens).toBe(64);
    expect(store.modelStatus.state).toBe('loading');
    expect(store.conversations.map((c) => c.id)).toEqual(['c2', 'c1']);
    expect(store.chat.conversationId).toBe('c2');
    expect(store.messages.map((m) => m.id)).toEqual(['u1', 'a1']);
    expect(ipc.onModelStatus).toHaveBeenCalledOnce();
  });

  it('follows model-status events and shows load failures in the banner', async () => {
    const store = new AppStore(atOnce);
    await store.init();
    const failed: ModelStatus = {
      state: 'failed',
      path: '/m.gguf',
      error: { kind: 'model_missing', message: 'No model file.', detail: '/m.gguf' },
    };
    fake.modelListener?.(failed);
    expect(store.modelStatus.state).toBe('failed');
    expect(store.error?.kind).toBe('model_missing');
    expect(store.refusedPath).toBeNull();
  });

  it('offers Load anyway for a model refused at start for not fitting', async () => {
    const store = new AppStore(atOnce);
    await store.init();
    fake.modelListener?.({
      state: 'failed',
      path: '/big.gguf',
      error: { kind: 'wont_fit', message: 'big.gguf does not fit this machine.', detail: null },
    });
    expect(store.error?.kind).toBe('wont_fit');
    await store.loadAnyway();
    expect(ipc.loadModel).toHaveBeenLastCalledWith('/big.gguf', true);
  });

  it('does not let a stale model_status answer overwrite a newer event', async () => {
    let answer: (status: unknown) => void = () => {};
    vi.mocked(ipc.modelStatus).mockImplementationOnce(() => new Promise((resolve) => (answer = resolve as typeof answer)));
    const store = new AppStore(atOnce);
    const starting = store.init();
    await vi.waitFor(() => expect(fake.modelListener).not.toBeNull());
    fake.modelListener?.({ state: 'ready', model: { name: 'M', path: '/m.gguf', size_bytes: 1, backend: 'x', architecture: null, context_length: null } });
    answer({ state: 'loading', path: '/m.gguf', progress: null });
    await starting;
    expect(store.modelStatus.state).toBe('ready');
  });

  it('streams a reply, then refreshes the list for the new title', async () => {
    const store = new AppStore(atOnce);
    await store.init();
    const sending = store.send('how are you?');
    // The user message shows before the backend answers.
    expect(store.messages.at(-2)).toMatchObject({ role: 'user', text: 'how are you?' });
    expect(store.generatingHere).toBe(true);
    expect(await sending).toBe(true);

    emit({ event: 'started', generation_id: 'g1', model: 'tiny' });
    emit({ event: 'reasoning', delta: 'thinking' });
    emit({ event: 'content', delta: 'Fine', append_html: '', live_html: '<p>Fine</p>', reset_html: false });
    expect(store.messages.at(-1)).toMatchObject({
      key: 'a2',
      streaming: true,
      html: { blocks: [], live: '<p>Fine</p>', resets: 0 },
      reasoning: 'thinking',
    });

    emit({ event: 'done', message: assistantMessage('a2', 'Fine', { reasoning: 'thinking' }), finish_reason: 'stop' });
    expect(store.generation).toBeNull();
    expect(store.messages.map((m) => m.id)).toEqual(['u1', 'a1', 'u2', 'a2']);
    expect(ipc.listConversations).toHaveBeenCalledTimes(2);
  });

  it('creates a conversation when sending with none selected', async () => {
    vi.mocked(ipc.listConversations).mockResolvedValueOnce([]);
    const store = new AppStore(atOnce);
    await store.init();
    expect(store.chat.conversationId).toBeNull();
    await store.send('first');
    expect(ipc.createConversation).toHaveBeenCalledWith(null);
    expect(store.chat.conversationId).toBe('c3');
    expect(vi.mocked(ipc.sendMessage).mock.calls[0][0]).toEqual({
      conversation_id: 'c3',
      action: { type: 'new', text: 'first' },
      preset_id: 'general',
      sampling: null,
      enable_thinking: null,
      reasoning_effort: null,
    });
  });

  it('restores the view and shows the error when the send is refused', async () => {
    vi.mocked(ipc.sendMessage).mockRejectedValueOnce({ kind: 'no_model', message: 'No model loaded.', detail: null });
    const store = new AppStore(atOnce);
    await store.init();
    expect(await store.send('hello?')).toBe(false);
    expect(store.messages.map((m) => m.id)).toEqual(['u1', 'a1']);
    expect(store.generation).toBeNull();
    expect(store.error?.kind).toBe('no_model');
  });

  it('regenerates in place', async () => {
    const store = new AppStore(atOnce);
    await store.init();
    vi.mocked(ipc.sendMessage).mockImplementationOnce(async (_request, onEvent) => {
      fake.onEvent = onEvent as (event: unknown) => void;
      return { generation_id: 'g2', user_message: userMessage('u1', 'hi'), assistant_message_id: 'a9' };
    });
    await store.regenerate();
    expect(store.messages.map((m) => m.key)).toEqual(['u1', 'a9']);
    emit({ event: 'done', message: assistantMessage('a9', 'hey'), finish_reason: 'stop' });
    expect(store.messages.map((m) => m.id)).toEqual(['u1', 'a9']);
  });

  it('keeps the earlier reply as a version and switches back to it', async () => {
    const store = new AppStore(atOnce);
    await store.init();
    vi.mocked(ipc.sendMessage).mockImplementationOnce(async (_request, onEvent) => {
      fake.onEvent = onEvent as (event: unknown) => void;
      return { generation_id: 'g2', user_message: userMessage('u1', 'hi'), assistant_message_id: 'a9' };
    });
    await store.regenerate();
    // No switching while the reply is written.
    await store.selectVersion('a1');
    expect(ipc.selectBranch).not.toHaveBeenCalled();
    emit({ event: 'done', message: assistantMessage('a9', 'hey', { versions: ['a1', 'a9'] }), finish_reason: 'stop' });
    expect(store.messages.at(-1)?.versions).toEqual(['a1', 'a9']);
    await store.selectVersion('a1');
    expect(ipc.selectBranch).toHaveBeenCalledWith('c2', 'a1');
    expect(store.messages.map((m) => [m.id, m.text])).toEqual([
      ['u1', 'hi'],
      ['a1', 'earlier'],
    ]);
  });

  it('shows a title the model generated after the first reply', async () => {
    const store = new AppStore(atOnce);
    await store.init();
    fake.conversationListener?.({ id: 'c2', title: 'Greetings exchanged', updated_at_ms: 2, message_count: 2 });
    expect(store.conversations.find((c) => c.id === 'c2')?.title).toBe('Greetings exchanged');
    expect(store.chat.title).toBe('Greetings exchanged');
  });

  it('imports a conversation and opens it; a refused file changes nothing', async () => {
    const store = new AppStore(atOnce);
    await store.init();
    const refused = await store.importConversation('bad');
    expect(refused).toMatchObject({ kind: 'invalid_request', detail: 'not JSON' });
    expect(store.conversations.map((c) => c.id)).toEqual(['c2', 'c1']);
    await store.importConversation('{}');
    expect(store.conversations.map((c) => c.id)).toEqual(['c7', 'c2', 'c1']);
    expect(store.chat.conversationId).toBe('c7');
  });

  it('opens a search hit on the branch holding it, highlighted, and forgets it on send', async () => {
    const store = new AppStore(atOnce);
    await store.init();
    await store.openHit({
      conversation_id: 'c2', title: 'Recent', message_id: 'a1', field: 'content', before: '', matched: 'hel', after: 'lo',
    });
    expect(ipc.selectBranch).not.toHaveBeenCalled();
    expect(store.highlight).toEqual({ conversationId: 'c2', messageId: 'a1', term: 'hel', field: 'content' });
    // A message on a branch not shown: that branch is shown first.
    await store.openHit({
      conversation_id: 'c2', title: 'Recent', message_id: 'a7', field: 'reasoning', before: '', matched: 'x', after: '',
    });
    expect(ipc.selectBranch).toHaveBeenCalledWith('c2', 'a7');
    expect(store.messages.map((m) => m.id)).toEqual(['u1', 'a7']);
    expect(store.highlight?.field).toBe('reasoning');
    await store.send('next');
    expect(store.highlight).toBeNull();
  });

  it('sends Stop with the generation id, also when pressed before the id was known', async () => {
    let release: () => void = () => {};
    vi.mocked(ipc.sendMessage).mockImplementationOnce(async (_request, onEvent) => {
      fake.onEvent = onEvent as (event: unknown) => void;
      await new Promise<void>((resolve) => (release = resolve));
      return { generation_id: 'g1', user_message: userMessage('u2', 'q'), assistant_message_id: 'a2' };
    });
    const store = new AppStore(atOnce);
    await store.init();
    const sending = store.send('q');
    await store.stop();
    expect(ipc.stopGeneration).not.toHaveBeenCalled();
    release();
    await sending;
    expect(ipc.stopGeneration).toHaveBeenCalledWith('g1');
  });

  it('keeps streaming into a conversation the user left, and shows it on return', async () => {
    const store = new AppStore(atOnce);
    await store.init();
    await store.send('long question');
    emit({ event: 'content', delta: 'Part', append_html: '', live_html: '<p>Part</p>', reset_html: false });
    await store.select('c1');
    expect(store.generatingHere).toBe(false);
    expect(store.messages).toEqual([]);
    emit({ event: 'content', delta: ' two', append_html: '', live_html: '<p>Part two</p>', reset_html: false });
    await store.select('c2');
    expect(store.generatingHere).toBe(true);
    expect(store.messages.at(-1)?.html).toEqual({ blocks: [], live: '<p>Part two</p>', resets: 0 });
  });

  it('applies the deltas that arrived within a frame together, and all of them before done', async () => {
    const frames: (() => void)[] = [];
    const store = new AppStore((apply) => frames.push(apply));
    await store.init();
    await store.send('q');
    emit({ event: 'started', generation_id: 'g1', model: 'tiny' });
    emit({ event: 'reasoning', delta: 'hm' });
    emit({ event: 'content', delta: 'A', append_html: '', live_html: '<p>A</p>', reset_html: false });
    emit({ event: 'content', delta: 'B', append_html: '', live_html: '<p>AB</p>', reset_html: false });
    expect(frames).toHaveLength(1); // one frame scheduled for three deltas
    expect(store.messages.at(-1)?.text).toBe('');
    frames[0]();
    expect(store.messages.at(-1)).toMatchObject({ text: 'AB', reasoning: 'hm', html: { live: '<p>AB</p>' } });
    emit({ event: 'content', delta: 'C', append_html: '<p>ABC</p>', live_html: '', reset_html: false });
    emit({ event: 'done', message: assistantMessage('a2', 'ABC', { reasoning: 'hm' }), finish_reason: 'stop' });
    expect(store.messages.at(-1)).toMatchObject({ id: 'a2', text: 'ABC', streaming: false });
    frames[1](); // the frame scheduled before done finds nothing left to apply
    expect(store.messages.at(-1)).toMatchObject({ id: 'a2', text: 'ABC', streaming: false });
  });

  it('shows generation errors in the banner and keeps the partial message', async () => {
    const store = new AppStore(atOnce);
    await store.init();
    await store.send('q');
    const partial = assistantMessage('a2', 'Par', { finish_reason: 'error' });
    emit({ event: 'error', error: { kind: 'generation', message: 'Engine crashed.', detail: null }, message: partial });
    expect(store.error?.message).toBe('Engine crashed.');
    expect(store.messages.at(-1)?.id).toBe('a2');
    expect(store.generation).toBeNull();
  });

  it('restores the thinking controls a conversation last used', async () => {
    const store = new AppStore(atOnce);
    await store.init();
    expect(store.thinking).toBe(true);
    await store.select('c1');
    expect(store.thinking).toBe(false);
    expect(store.effort).toBe('high');
    expect(store.presetId).toBe('swe-bench-pro');
  });

  it('sends with the chosen preset, whose thinking setting the composer takes over', async () => {
    const store = new AppStore(atOnce);
    await store.init();
    store.setModelStatus({
      state: 'ready',
      model: {
        name: 'glm', path: '/g.gguf', size_bytes: 1, backend: 'glm', architecture: 'glm-dsa',
        context_length: 4096, quant: null, supports_thinking: true, effort_levels: ['high', 'max'], supports_tools: false, placement: null, prompt_cache_bytes: null, runtimes: [],
      },
    });
    expect(store.presets.map((p) => p.id)).toEqual(['general', 'swe-bench-pro', 'user-quick']);
    expect(store.presetId).toBe('general');
    await store.choosePreset('user-quick');
    expect(store.thinking).toBe(false);
    // The choice becomes the default for new conversations.
    expect(vi.mocked(ipc.saveSettings).mock.calls[0][0]).toMatchObject({ default_preset: 'user-quick' });
    await store.send('quick one');
    expect(vi.mocked(ipc.sendMessage).mock.calls[0][0]).toMatchObject({
      preset_id: 'user-quick',
      enable_thinking: false,
      reasoning_effort: null,
    });
    // Per message: thinking back on with an effort, same preset.
    emit({ event: 'done', message: assistantMessage('a2', 'ok'), finish_reason: 'stop' });
    store.thinking = true;
    store.effort = 'max';
    await store.send('again');
    expect(vi.mocked(ipc.sendMessage).mock.calls[1][0]).toMatchObject({
      preset_id: 'user-quick',
      enable_thinking: true,
      reasoning_effort: 'max',
    });
  });

  it('reports preset errors to the caller instead of the banner', async () => {
    const store = new AppStore(atOnce);
    await store.init();
    const result = await store.importPresets('nonsense');
    expect(result).toMatchObject({ kind: 'invalid_request' });
    expect(store.error).toBeNull();
  });

  it('renames and deletes conversations', async () => {
    const store = new AppStore(atOnce);
    await store.init();
    await store.rename('c2', '  Renamed ');
    expect(ipc.renameConversation).toHaveBeenCalledWith('c2', 'Renamed');
    expect(store.chat.title).toBe('Renamed');
    await store.remove('c2');
    expect(store.conversations.map((c) => c.id)).toEqual(['c1']);
    expect(store.chat.conversationId).toBe('c1');
  });
});
