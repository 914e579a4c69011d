import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { ModelInfo } from '../bindings/ModelInfo';
import type { ModelStatus } from '../bindings/ModelStatus';
import type { Settings } from '../bindings/Settings';

const fake = vi.hoisted(() => ({ downloadListener: null as ((s: unknown) => void) | null, listed: 0 }));

vi.mock('../ipc', () => ({
  onDownload: vi.fn(async (handler: (s: unknown) => void) => {
    fake.downloadListener = handler;
    return () => {};
  }),
  listDownloads: vi.fn(async () => []),
  listModels: vi.fn(async () => {
    fake.listed += 1;
    return [];
  }),
}));

import { fileName, LibraryStore, type LibraryHost } from './library.svelte';

const model = (path: string, runtimes: string[]): ModelInfo => ({
  name: fileName(path), path, size_bytes: 1e8, backend: '', architecture: 'llama', context_length: 8192, quant: 'Q4_1',
  supports_thinking: false, effort_levels: [], supports_tools: false, placement: null, prompt_cache_bytes: null, runtimes,
});

/** A host whose settings hold `dense_runtime` and `model_runtimes`, recording saves and loads. */
function host(dense: string | null, perModel: Record<string, string>, status: ModelStatus = { state: 'none' }) {
  const h = {
    settings: { dense_runtime: dense, model_runtimes: perModel } as unknown as Settings,
    modelStatus: status,
    showError: vi.fn(),
    saveSettings: vi.fn(async (s: Settings) => {
      h.settings = s;
      return true;
    }),
    loadModel: vi.fn(async () => {}),
  };
  return h satisfies LibraryHost;
}

describe('LibraryStore', () => {
  beforeEach(() => {
    fake.listed = 0;
  });

  it("takes a model's own runtime, else the dense-model setting, else its first", () => {
    const dense = model('/lib/a/Smol.gguf', ['localglm', 'mistralrs']);
    expect(new LibraryStore(host(null, {})).runtimeOf(dense)).toBe('localglm');
    expect(new LibraryStore(host('mistralrs', {})).runtimeOf(dense)).toBe('mistralrs');
    expect(new LibraryStore(host('mistralrs', { 'Smol.gguf': 'localglm' })).runtimeOf(dense)).toBe('localglm');
    // A choice the model cannot take (a GLM file only LocalGLM runs) is not shown as its runtime.
    expect(new LibraryStore(host('mistralrs', {})).runtimeOf(model('/lib/glm.gguf', ['localglm']))).toBe('localglm');
    expect(new LibraryStore(host(null, {})).runtimeOf(model('/lib/x.gguf', []))).toBeNull();
    expect(fileName('C:\\models\\Smol.gguf')).toBe('Smol.gguf');
  });

  it('saves the choice by file name and reloads the model when it is the one loaded', async () => {
    const smol = model('/lib/Smol.gguf', ['localglm', 'mistralrs']);
    const idle = host(null, { 'other.gguf': 'mistralrs' });
    await new LibraryStore(idle).setRuntime(smol, 'mistralrs');
    expect(idle.settings.model_runtimes).toEqual({ 'other.gguf': 'mistralrs', 'Smol.gguf': 'mistralrs' });
    expect(idle.loadModel).not.toHaveBeenCalled();

    const loaded = host(null, {}, { state: 'ready', model: smol });
    const store = new LibraryStore(loaded);
    await store.setRuntime(smol, 'localglm');
    expect(loaded.saveSettings).not.toHaveBeenCalled(); // already its runtime
    await store.setRuntime(smol, 'mistralrs');
    expect(loaded.loadModel).toHaveBeenCalledWith('/lib/Smol.gguf');

    const refused = host(null, {}, { state: 'ready', model: smol });
    refused.saveSettings.mockResolvedValueOnce(false);
    await new LibraryStore(refused).setRuntime(smol, 'mistralrs');
    expect(refused.loadModel).not.toHaveBeenCalled();
  });

  it('refreshes the models when a download finishes', async () => {
    const store = new LibraryStore(host(null, {}));
    await store.open();
    expect(fake.listed).toBe(1);
    fake.downloadListener!({ id: 'q', status: 'running' });
    expect(store.downloads).toHaveLength(1);
    fake.downloadListener!({ id: 'q', status: 'done' });
    await vi.waitFor(() => expect(fake.listed).toBe(2));
  });
});
