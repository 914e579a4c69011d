import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import type { SamplingPreset } from '../../lib/bindings/SamplingPreset';
import PresetEditor from './PresetEditor.svelte';

function preset(id: string, name: string, top_p: number): SamplingPreset {
  return {
    id,
    name,
    sampling: { temperature: 1, top_p, top_k: null, max_tokens: 131072, seed: null, min_p: null, repetition_penalty: null },
    enable_thinking: true,
    reasoning_effort: null,
    system_prompt: null,
  };
}

const PRESETS = [preset('general', 'General', 0.95), preset('swe-bench-pro', 'SWE-Bench Pro', 1), preset('user-mine', 'Mine', 0.9)];

function setup() {
  const props = {
    presets: PRESETS,
    effortLevels: ['high', 'max'],
    onSave: vi.fn(async (p: SamplingPreset) => ({ ...p, id: p.id || 'user-new' })),
    onDuplicate: vi.fn(async () => preset('user-copy', 'General copy', 0.95)),
    onDelete: vi.fn(async () => {}),
    onExport: vi.fn(async () => '{"format":"localglm-presets","version":1,"presets":[]}'),
    onImport: vi.fn(async () => ({ kind: 'invalid_request' as const, message: 'That is not a LocalGLM presets file.', detail: 'not JSON' })),
  };
  render(PresetEditor, props);
  return props;
}

async function type(testId: string, value: string) {
  await fireEvent.input(screen.getByTestId(testId), { target: { value } });
}

describe('PresetEditor', () => {
  it('saves a built-in as a new preset with every field parsed', async () => {
    const props = setup();
    expect(screen.getByTestId('preset-delete')).toBeDisabled();
    expect(screen.getByTestId('preset-save')).toHaveTextContent('Save as new preset');
    await type('preset-name', 'Precise');
    await type('preset-temperature', '0.6');
    await type('preset-top-k', '40');
    await type('preset-min-p', '0.05');
    await type('preset-repetition-penalty', '1.1');
    await type('preset-seed', '7');
    await type('preset-system-prompt', 'Be exact.');
    await fireEvent.change(screen.getByTestId('preset-effort'), { target: { value: 'max' } });
    await fireEvent.click(screen.getByTestId('preset-save'));
    expect(props.onSave).toHaveBeenCalledWith({
      id: '',
      name: 'Precise',
      sampling: { temperature: 0.6, top_p: 0.95, top_k: 40, min_p: 0.05, repetition_penalty: 1.1, max_tokens: 131072, seed: 7 },
      enable_thinking: true,
      reasoning_effort: 'max',
      system_prompt: 'Be exact.',
    });
    expect(await screen.findByTestId('preset-message')).toHaveTextContent('Saved “Precise”.');
  });

  it('refuses a field that is not a number, without saving', async () => {
    const props = setup();
    await type('preset-temperature', 'warm');
    await fireEvent.click(screen.getByTestId('preset-save'));
    expect(props.onSave).not.toHaveBeenCalled();
    expect(screen.getByTestId('preset-message')).toHaveTextContent('Temperature must be a number.');
  });

  it('edits, duplicates and deletes a user preset', async () => {
    const props = setup();
    await fireEvent.change(screen.getByTestId('preset-list'), { target: { value: 'user-mine' } });
    expect(screen.getByTestId('preset-delete')).not.toBeDisabled();
    expect((screen.getByTestId('preset-top-p') as HTMLInputElement).value).toBe('0.9');
    await fireEvent.click(screen.getByTestId('preset-delete'));
    expect(props.onDelete).toHaveBeenCalledWith('user-mine');
    await fireEvent.click(screen.getByTestId('preset-duplicate'));
    expect(props.onDuplicate).toHaveBeenCalled();
  });

  it('exports as text and shows why an import failed', async () => {
    const props = setup();
    await fireEvent.click(screen.getByTestId('preset-export'));
    expect(await screen.findByTestId('preset-export-text')).toHaveValue('{"format":"localglm-presets","version":1,"presets":[]}');
    await fireEvent.click(screen.getByTestId('preset-import'));
    await type('preset-import-text', 'nope');
    await fireEvent.click(screen.getByTestId('preset-import-confirm'));
    expect(props.onImport).toHaveBeenCalledWith('nope');
    expect(await screen.findByTestId('preset-message')).toHaveTextContent('That is not a LocalGLM presets file. not JSON');
  });
});
