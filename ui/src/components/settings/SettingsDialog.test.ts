import { fireEvent, render, screen } from '@testing-library/svelte';
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
  presets: [],
  default_preset: 'general',
  api: { enabled: false, host: '127.0.0.1', port: 8080, api_key: null },
  remotes: [],
  active_remote: null,
  context_length: null,
  kv_cache: null,
};

function open(onSaveSettings = vi.fn(async () => true)) {
  render(SettingsDialog, {
    settings,
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
});
