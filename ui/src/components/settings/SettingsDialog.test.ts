import { cleanup, fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import type { Settings } from '../../lib/bindings/Settings';
import SettingsDialog from './SettingsDialog.svelte';

const settings: Settings = {
  version: 1,
  sampling: { temperature: 1, top_p: 0.95, top_k: null, max_tokens: 64, seed: null, min_p: null, repetition_penalty: null },
  system_prompt: '',
  model_path: null,
  clear_thinking: false,
  collapse_reasoning: true,
  generate_titles: true,
  presets: [],
  default_preset: 'general',
  api: { enabled: false, host: '127.0.0.1', port: 8080, api_key: null },
  remotes: [],
  active_remote: null,
  context_length: null,
  kv_cache: null,
  device: null,
  cpu_moe: null,
  prompt_cache_mb: null,
  mtp: null,
  dense_runtime: null,
  model_runtimes: {},
};

function open(onSaveSettings = vi.fn(async () => true), saved: Settings = settings) {
  render(SettingsDialog, {
    settings: saved,
    presets: [],
    onSaveSettings,
    onClose: vi.fn(),
    onSavePreset: vi.fn(),
    onDuplicatePreset: vi.fn(),
    onDeletePreset: vi.fn(),
    onExportPresets: vi.fn(),
    onImportPresets: vi.fn(),
  });
  return onSaveSettings;
}

describe('SettingsDialog: loading models', () => {
  it('saves the context length on blur and the KV-cache type on change', async () => {
    const save = open();
    const context = screen.getByTestId('setting-context');
    expect(context).toHaveValue('');
    expect(screen.getByTestId('setting-kv-cache')).toHaveValue('f16');
    await fireEvent.input(context, { target: { value: '65,536' } });
    await fireEvent.blur(context);
    expect(save).toHaveBeenLastCalledWith({ ...settings, context_length: 65536 });
    await fireEvent.change(screen.getByTestId('setting-kv-cache'), { target: { value: 'q8_0' } });
    expect(save).toHaveBeenLastCalledWith({ ...settings, kv_cache: 'q8_0' });
  });

  it('sets how many tokens the MTP block drafts (Auto by default)', async () => {
    const save = open();
    expect(screen.getByTestId('setting-mtp')).toHaveValue('auto');
    await fireEvent.change(screen.getByTestId('setting-mtp'), { target: { value: 'off' } });
    expect(save).toHaveBeenLastCalledWith({ ...settings, mtp: 'off' });
  });

  it('an unchanged or unreadable context saves nothing; 32k means 32768', async () => {
    const save = open();
    const context = screen.getByTestId('setting-context');
    await fireEvent.blur(context);
    await fireEvent.input(context, { target: { value: 'lots' } });
    await fireEvent.blur(context);
    expect(save).not.toHaveBeenCalled();
    expect(context).toHaveValue('');
    await fireEvent.input(context, { target: { value: '32k' } });
    await fireEvent.blur(context);
    expect(save).toHaveBeenLastCalledWith({ ...settings, context_length: 32768 });
  });

  it('saves the device; null shows as Auto', async () => {
    const save = open();
    const device = screen.getByTestId('setting-device');
    expect(device).toHaveValue('auto');
    await fireEvent.change(device, { target: { value: 'gpu' } });
    expect(save).toHaveBeenLastCalledWith({ ...settings, device: 'gpu' });
    await fireEvent.change(device, { target: { value: 'cpu' } });
    expect(save).toHaveBeenLastCalledWith({ ...settings, device: 'cpu' });
  });

  it('takes experts in RAM on Auto and GPU, as an integer 0 to 1024 (empty or 0: the planner)', async () => {
    open();
    expect(screen.getByTestId('setting-cpu-moe')).toBeEnabled();
    cleanup();
    open(undefined, { ...settings, device: 'cpu', cpu_moe: 3 });
    expect(screen.getByTestId('setting-device')).toHaveValue('cpu');
    expect(screen.getByTestId('setting-cpu-moe')).toBeDisabled();
    expect(screen.getByTestId('setting-cpu-moe')).toHaveValue(3);
    cleanup();

    const gpu = { ...settings, device: 'gpu', cpu_moe: 12 };
    const save = open(undefined, gpu);
    expect(screen.getByTestId('setting-device')).toHaveValue('gpu');
    const moe = screen.getByTestId('setting-cpu-moe');
    expect(moe).toBeEnabled();
    expect(moe).toHaveValue(12);
    await fireEvent.change(moe, { target: { value: '2000' } });
    await fireEvent.change(moe, { target: { value: '1.5' } });
    expect(save).not.toHaveBeenCalled();
    expect(moe).toHaveValue(12);
    await fireEvent.change(moe, { target: { value: '40' } });
    expect(save).toHaveBeenLastCalledWith({ ...gpu, cpu_moe: 40 });
    await fireEvent.change(moe, { target: { value: '0' } });
    expect(save).toHaveBeenLastCalledWith({ ...gpu, cpu_moe: null });
    expect(moe).toHaveValue(null);
    await fireEvent.change(moe, { target: { value: '' } });
    expect(save).toHaveBeenLastCalledWith({ ...gpu, cpu_moe: null });
  });

  it('saves the prompt cache size, empty as the default, and shows the default', async () => {
    const save = vi.fn(async () => true);
    render(SettingsDialog, {
      settings, presets: [], onSaveSettings: save, onClose: vi.fn(), onSavePreset: vi.fn(),
      onDuplicatePreset: vi.fn(), onDeletePreset: vi.fn(), onExportPresets: vi.fn(), onImportPresets: vi.fn(),
      promptCacheBytes: 2048 * 1024 * 1024,
    });
    const input = screen.getByTestId('setting-prompt-cache') as HTMLInputElement;
    expect(input.placeholder).toBe('auto (2048)');
    await fireEvent.change(input, { target: { value: '512' } });
    expect(save).toHaveBeenLastCalledWith({ ...settings, prompt_cache_mb: 512 });
    cleanup();
    const saved = { ...settings, prompt_cache_mb: 512 };
    const save2 = open(vi.fn(async () => true), saved);
    const again = screen.getByTestId('setting-prompt-cache') as HTMLInputElement;
    await fireEvent.change(again, { target: { value: '' } });
    expect(save2).toHaveBeenLastCalledWith({ ...saved, prompt_cache_mb: null });
  });
});

describe('SettingsDialog: chats', () => {
  it('turns generated titles off', async () => {
    const save = open();
    await fireEvent.click(screen.getByTestId('setting-generate-titles'));
    expect(save).toHaveBeenLastCalledWith(expect.objectContaining({ generate_titles: false }));
    cleanup();
  });
});

describe('SettingsDialog: keyboard shortcuts', () => {
  it('lists every shortcut with its keys', () => {
    open();
    const list = screen.getByTestId('shortcuts');
    const rows = [...list.querySelectorAll('.shortcut')].map((r) => r.getAttribute('data-action'));
    expect(rows).toEqual(['newChat', 'focusComposer', 'stop', 'regenerate', 'search', 'settings']);
    expect(list).toHaveTextContent('New chat');
    expect(list).toHaveTextContent(/Ctrl\+Shift\+O|⌘⇧O/);
    cleanup();
  });
});
