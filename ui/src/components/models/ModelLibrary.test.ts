import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import type { DownloadState } from '../../lib/bindings/DownloadState';
import ModelLibrary from './ModelLibrary.svelte';

const dl = (id: string, status: string): DownloadState => ({
  id,
  spec: `unsloth/GLM-5.2-GGUF:${id}`,
  name: `GLM-5.2-${id}`,
  files: 6,
  total_bytes: 239e9,
  done_bytes: 60e9,
  bytes_per_s: status === 'running' ? 100e6 : 0,
  status,
  error: null,
  path: null,
});

describe('ModelLibrary', () => {
  it('shows downloads with their controls and the installed models', async () => {
    const props = {
      models: [{ name: 'm', path: '/lib/m.gguf', size_bytes: 1e9, backend: '', architecture: 'llama', context_length: 4096, quant: 'Q4_K', supports_thinking: false, effort_levels: [], supports_tools: false, placement: null, prompt_cache_bytes: null, runtimes: ['localglm', 'mistralrs'] }],
      downloads: [dl('UD-IQ2_M', 'running'), dl('UD-IQ1_S', 'paused'), dl('BF16', 'done')],
      onLoad: vi.fn(),
      onDelete: vi.fn(),
      onPause: vi.fn(),
      onResume: vi.fn(),
      onCancel: vi.fn(),
    };
    render(ModelLibrary, props);
    const rows = screen.getAllByTestId('download');
    expect(rows).toHaveLength(2);
    expect(rows[0]).toHaveTextContent('60.0 GB of 239.0 GB');
    expect(rows[0]).toHaveTextContent('100.0 MB/s');
    await fireEvent.click(screen.getByTestId('download-pause'));
    expect(props.onPause).toHaveBeenCalledWith('UD-IQ2_M');
    await fireEvent.click(screen.getByTestId('download-resume'));
    expect(props.onResume).toHaveBeenCalledWith('unsloth/GLM-5.2-GGUF:UD-IQ1_S');
    await fireEvent.click(screen.getAllByTestId('download-cancel')[1]);
    expect(props.onCancel).toHaveBeenCalledWith('UD-IQ1_S');
    await fireEvent.click(screen.getByTestId('library-load'));
    expect(props.onLoad).toHaveBeenCalledWith('/lib/m.gguf');
    await fireEvent.click(screen.getByTestId('library-delete'));
    expect(props.onDelete).toHaveBeenCalledWith('/lib/m.gguf');
  });

  it('offers "Run with" where two runtimes can run a model and names the one of the others', async () => {
    const model = (name: string, runtimes: string[]) => ({
      name, path: `/lib/${name}.gguf`, size_bytes: 1e9, backend: '', architecture: 'llama', context_length: 4096, quant: 'Q4_1',
      supports_thinking: false, effort_levels: [], supports_tools: false, placement: null, prompt_cache_bytes: null, runtimes,
    });
    const onRunWith = vi.fn();
    const models = [model('dense', ['localglm', 'mistralrs']), model('glm', ['localglm']), model('gemma', ['mistralrs']), model('odd', [])];
    render(ModelLibrary, {
      models, downloads: [], onLoad: vi.fn(), onDelete: vi.fn(), onPause: vi.fn(), onResume: vi.fn(), onCancel: vi.fn(),
      runtimeOf: (m) => (m.name === 'dense' ? 'mistralrs' : m.runtimes[0] ?? null),
      onRunWith,
    });
    const select = screen.getByTestId('library-run-with') as HTMLSelectElement;
    expect(screen.getAllByTestId('library-run-with')).toHaveLength(1);
    expect(select.value).toBe('mistralrs');
    expect([...select.options].map((o) => o.textContent)).toEqual(['LocalGLM runtime', 'mistral.rs']);
    await fireEvent.change(select, { target: { value: 'localglm' } });
    expect(onRunWith).toHaveBeenCalledWith(models[0], 'localglm');
    expect(screen.getAllByTestId('library-runtime').map((e) => e.textContent)).toEqual(['LocalGLM runtime', 'mistral.rs']);
  });
});
