import { render, screen } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import type { ModelInfo } from '../../lib/bindings/ModelInfo';
import ModelIndicator from './ModelIndicator.svelte';

const model: ModelInfo = {
  name: 'tiny-f32',
  path: '/models/tiny-f32.gguf',
  size_bytes: 2e6,
  backend: 'glm',
  architecture: 'glm-dsa',
  context_length: 4096,
  quant: 'F32',
  supports_thinking: true,
  effort_levels: [],
  supports_tools: false,
  placement: null,
  prompt_cache_bytes: null,
  runtimes: [],
};

describe('ModelIndicator', () => {
  it('shows where a ready model runs, after its name and facts', () => {
    const placement = 'GPU · Vulkan · llvmpipe (LLVM 15.0.6, 256 bits)';
    render(ModelIndicator, { status: { state: 'ready', model: { ...model, placement } }, onLoad: vi.fn() });
    const indicator = screen.getByTestId('model-indicator');
    expect(indicator).toHaveAttribute('data-state', 'ready');
    expect(indicator).toHaveTextContent('tiny-f32');
    expect(indicator).toHaveTextContent('ready · glm-dsa · F32');
    expect(screen.getByTestId('model-placement')).toHaveTextContent(placement);
    expect(indicator.getAttribute('title')).toContain(placement);
  });

  it('shows no placement where the backend does not say, nor while loading', () => {
    const { unmount } = render(ModelIndicator, { status: { state: 'ready', model }, onLoad: vi.fn() });
    expect(screen.getByTestId('model-indicator')).toHaveTextContent('tiny-f32');
    expect(screen.queryByTestId('model-placement')).toBeNull();
    unmount();
    render(ModelIndicator, { status: { state: 'loading', path: model.path, progress: null }, onLoad: vi.fn() });
    expect(screen.queryByTestId('model-placement')).toBeNull();
    expect(screen.getByTestId('model-indicator')).toHaveTextContent('loading…');
  });

  it('shows how far a GPU upload has come while loading', () => {
    const progress = { stage: 'uploading weights to the GPU', done_bytes: 3.3e9, total_bytes: 1e10 };
    render(ModelIndicator, { status: { state: 'loading', path: model.path, progress }, onLoad: vi.fn() });
    const indicator = screen.getByTestId('model-indicator');
    expect(indicator).toHaveAttribute('data-state', 'loading');
    expect(indicator).toHaveTextContent('uploading weights to the GPU 33%');
    expect(indicator.getAttribute('title')).toContain('uploading weights to the GPU: ');
  });
});
