import { fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import type { FitPlan } from '../../lib/bindings/FitPlan';
import type { FitRequest } from '../../lib/bindings/FitRequest';
import QuantPicker from './QuantPicker.svelte';

function plan(verdict: string, context: number, cpuMoe = 0): FitPlan {
  return {
    verdict,
    cpu_moe_layers: cpuMoe,
    moe_layers: 75,
    context,
    max_context: 58251,
    kv_type: 'f16',
    bytes: {
      weights_gpu: 200e9, weights_cpu: 20e9, experts_gpu: 180e9, experts_cpu: 19e9, kv: context * 95232,
      scratch: 3e8, os_reserve: 13e9, gpu_budget: 206e9, ram_budget: 261e9, gpu_used: 204e9, ram_used: 224e9,
    },
    model_bytes: 239e9,
    fixes: verdict === 'no_fit' ? [{ kind: 'smaller_quant', text: 'A smaller quant.' }] : [],
    summary: `plan at ${context} with ${cpuMoe}`,
    estimated: true,
  };
}

function setup(onUsePlacement: ((n: number) => void) | null = null) {
  const loadCatalog = vi.fn(async (r: FitRequest) => ({
    family: r.family ?? 'GLM-5.2',
    families: ['GLM-5.1', 'GLM-5.2', 'GLM-5.3'],
    repo: `unsloth/${r.family ?? 'GLM-5.2'}-GGUF`,
    context_max: r.family === 'GLM-5.1' ? 202752 : 1048576,
    sizes_note: r.family === 'GLM-5.3' ? 'GLM-5.3 sizes are estimated from GLM-5.2.' : null,
    machine: '256 GiB unified memory, GPU limit 192 GiB (Metal default) [simulated]',
    rows: [
      { label: 'UD-IQ1_S', bits: 1, size_bytes: 217e9, size_confidence: 'documented', shards: null, memory_guidance: 223e9, quality: '≈ 76 %', plan: plan('gpu_cpu_experts', r.context, 10) },
      { label: 'BF16', bits: 16, size_bytes: 1508e9, size_confidence: 'estimated', shards: 33, memory_guidance: 1520e9, quality: null, plan: plan('no_fit', r.context, 75) },
    ],
  }));
  const planQuant = vi.fn(async (_label: string, r: FitRequest) => plan('gpu_cpu_experts', r.context, r.cpu_moe ?? 10));
  const onDownload = vi.fn();
  render(QuantPicker, { loadCatalog, planQuant, onClose: vi.fn(), onUsePlacement, onDownload });
  return { loadCatalog, planQuant, onDownload };
}

describe('QuantPicker', () => {
  it('badges each quant, and re-plans when the context slider moves', async () => {
    const { loadCatalog } = setup();
    await waitFor(() => expect(screen.getAllByTestId('fit-badge')).toHaveLength(2));
    const badges = screen.getAllByTestId('fit-badge');
    expect(badges[0]).toHaveAttribute('data-verdict', 'gpu_cpu_experts');
    expect(badges[0]).toHaveTextContent('GPU + 10/75 expert layers in RAM');
    expect(badges[1]).toHaveTextContent("Won't fit");
    expect(loadCatalog.mock.calls[0][0].context).toBe(32768);
    await fireEvent.input(screen.getByTestId('picker-context'), { target: { value: '5' } });
    await waitFor(() => expect(loadCatalog.mock.lastCall?.[0].context).toBe(131072));
    expect(screen.getByTestId('picker-context-label')).toHaveTextContent('128K');
  });

  it('shows a quant in detail, and the expert slider forces a placement', async () => {
    const { planQuant } = setup();
    await waitFor(() => expect(screen.getAllByTestId('quant-row')).toHaveLength(2));
    await fireEvent.click(screen.getAllByTestId('quant-row')[0]);
    await waitFor(() => expect(screen.getByTestId('plan-summary')).toHaveTextContent('plan at 32768 with 10'));
    expect(planQuant.mock.lastCall?.[0]).toBe('UD-IQ1_S');
    expect(screen.getByTestId('plan-bar')).toBeInTheDocument();
    await fireEvent.input(screen.getByTestId('picker-cpu-moe'), { target: { value: '40' } });
    await waitFor(() => expect(screen.getByTestId('plan-cpu-moe')).toHaveTextContent('40'));
    expect(planQuant.mock.lastCall?.[1].cpu_moe).toBe(40);
    await fireEvent.change(screen.getByTestId('picker-machine'), { target: { value: '5' } });
    await waitFor(() => expect(planQuant.mock.lastCall?.[1].machine.vram_gib).toBe(24));
  });

  it('makes the slider placement the one loads use, on this computer only', async () => {
    const use = vi.fn();
    setup(use);
    await waitFor(() => expect(screen.getAllByTestId('quant-row')).toHaveLength(2));
    await fireEvent.click(screen.getAllByTestId('quant-row')[0]);
    await waitFor(() => expect(screen.getByTestId('plan-cpu-moe')).toHaveTextContent('10'));
    expect(screen.queryByTestId('use-placement')).toBeNull();
    await fireEvent.input(screen.getByTestId('picker-cpu-moe'), { target: { value: '40' } });
    await waitFor(() => expect(screen.getByTestId('use-placement')).toHaveTextContent('40 expert layers in RAM'));
    await fireEvent.click(screen.getByTestId('use-placement'));
    expect(use).toHaveBeenCalledWith(40);
    await fireEvent.change(screen.getByTestId('picker-machine'), { target: { value: '5' } });
    await waitFor(() => expect(screen.queryByTestId('use-placement')).toBeNull());
  });

  it('lists another GLM-5.x release, plans and downloads from its repository', async () => {
    const { loadCatalog, planQuant, onDownload } = setup();
    await waitFor(() => expect(screen.getByTestId('picker-family')).toHaveValue('GLM-5.2'));
    expect(screen.getByRole('heading', { level: 2 })).toHaveTextContent('GLM-5.2 quants');
    expect(loadCatalog.mock.calls[0][0].family).toBeUndefined();
    await fireEvent.click(screen.getAllByTestId('quant-row')[0]);
    await waitFor(() => expect(screen.getByTestId('plan-detail')).toBeInTheDocument());
    await fireEvent.change(screen.getByTestId('picker-family'), { target: { value: 'GLM-5.1' } });
    await waitFor(() => expect(screen.getByRole('heading', { level: 2 })).toHaveTextContent('GLM-5.1 quants'));
    expect(loadCatalog.mock.lastCall?.[0].family).toBe('GLM-5.1');
    // The selection belonged to the other release.
    expect(screen.queryByTestId('plan-detail')).toBeNull();
    expect(screen.getByTestId('picker-repo')).toHaveTextContent('unsloth/GLM-5.1-GGUF');
    expect(screen.getByTestId('picker-machine-description')).toHaveTextContent('context up to 198K');
    expect(screen.queryByTestId('picker-sizes-note')).toBeNull();
    await fireEvent.click(screen.getAllByTestId('quant-row')[0]);
    await waitFor(() => expect(screen.getByTestId('download-quant')).toBeInTheDocument());
    expect(planQuant.mock.lastCall?.[1].family).toBe('GLM-5.1');
    await fireEvent.click(screen.getByTestId('download-quant'));
    expect(onDownload).toHaveBeenCalledWith('unsloth/GLM-5.1-GGUF:UD-IQ1_S');
    await fireEvent.change(screen.getByTestId('picker-family'), { target: { value: 'GLM-5.3' } });
    await waitFor(() => expect(screen.getByTestId('picker-sizes-note')).toHaveTextContent('estimated from GLM-5.2'));
  });
});
