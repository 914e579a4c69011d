import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import Composer from './Composer.svelte';

function setup(props: Partial<{ generating: boolean; busy: boolean; ok: boolean }> = {}) {
  const onSend = vi.fn().mockResolvedValue(props.ok ?? true);
  const onStop = vi.fn();
  const result = render(Composer, { generating: props.generating ?? false, busy: props.busy ?? false, onSend, onStop });
  const field = screen.getByTestId('composer') as HTMLTextAreaElement;
  return { ...result, onSend, onStop, field };
}

describe('Composer', () => {
  it('sends on Enter and clears the field', async () => {
    const { onSend, field } = setup();
    await fireEvent.input(field, { target: { value: 'Hello there' } });
    await fireEvent.keyDown(field, { key: 'Enter' });
    expect(onSend).toHaveBeenCalledWith('Hello there');
    expect(field.value).toBe('');
  });

  it('does not send on Shift+Enter', async () => {
    const { onSend, field } = setup();
    await fireEvent.input(field, { target: { value: 'line one' } });
    const event = await fireEvent.keyDown(field, { key: 'Enter', shiftKey: true });
    expect(event).toBe(true); // not prevented: the newline goes in
    expect(onSend).not.toHaveBeenCalled();
  });

  it('does not send blank text', async () => {
    const { onSend, field } = setup();
    await fireEvent.input(field, { target: { value: '   ' } });
    await fireEvent.keyDown(field, { key: 'Enter' });
    expect(onSend).not.toHaveBeenCalled();
    expect(screen.getByTestId('send')).toBeDisabled();
  });

  it('sends with the Send button', async () => {
    const { onSend, field } = setup();
    await fireEvent.input(field, { target: { value: 'clicked' } });
    await fireEvent.click(screen.getByTestId('send'));
    expect(onSend).toHaveBeenCalledWith('clicked');
  });

  it('puts the text back when sending failed', async () => {
    const { field } = setup({ ok: false });
    await fireEvent.input(field, { target: { value: 'keep me' } });
    await fireEvent.keyDown(field, { key: 'Enter' });
    await vi.waitFor(() => expect(field.value).toBe('keep me'));
  });

  it('shows Stop instead of Send while generating, and Enter does not send', async () => {
    const { onSend, onStop, field } = setup({ generating: true });
    expect(screen.queryByTestId('send')).toBeNull();
    await fireEvent.input(field, { target: { value: 'next question' } });
    await fireEvent.keyDown(field, { key: 'Enter' });
    expect(onSend).not.toHaveBeenCalled();
    await fireEvent.click(screen.getByTestId('stop'));
    expect(onStop).toHaveBeenCalledOnce();
  });

  it('switches back to Send when the generation ends', async () => {
    const { rerender } = setup({ generating: true });
    expect(screen.getByTestId('stop')).toBeInTheDocument();
    await rerender({ generating: false });
    expect(screen.queryByTestId('stop')).toBeNull();
    expect(screen.getByTestId('send')).toBeInTheDocument();
  });

  it('shows the Think toggle only when the model offers thinking, and reports clicks', async () => {
    const onToggleThinking = vi.fn();
    const { rerender } = render(Composer, {
      onSend: vi.fn(),
      onStop: vi.fn(),
      thinkingSupported: false,
      thinking: true,
      onToggleThinking,
    });
    expect(screen.queryByTestId('think-toggle')).toBeNull();
    await rerender({ thinkingSupported: true, thinking: true });
    const toggle = screen.getByTestId('think-toggle');
    expect(toggle.getAttribute('aria-pressed')).toBe('true');
    await fireEvent.click(toggle);
    expect(onToggleThinking).toHaveBeenCalledTimes(1);
    await rerender({ thinking: false });
    expect(screen.getByTestId('think-toggle').getAttribute('aria-pressed')).toBe('false');
  });

  it('offers the template effort levels while thinking is on and reports the choice', async () => {
    const onEffort = vi.fn();
    const { rerender } = render(Composer, {
      onSend: vi.fn(),
      onStop: vi.fn(),
      thinkingSupported: true,
      thinking: true,
      effortLevels: ['high', 'max'],
      effort: null,
      onEffort,
    });
    const select = screen.getByTestId('effort-select') as HTMLSelectElement;
    expect([...select.options].map((o) => o.textContent)).toEqual(['Default effort', 'High', 'Max']);
    await fireEvent.change(select, { target: { value: 'high' } });
    expect(onEffort).toHaveBeenCalledWith('high');
    await fireEvent.change(select, { target: { value: '' } });
    expect(onEffort).toHaveBeenLastCalledWith(null);
    await rerender({ thinking: false });
    expect(screen.queryByTestId('effort-select')).toBeNull();
  });

  it('offers the presets and reports the one picked', async () => {
    const preset = (id: string, name: string) => ({
      id,
      name,
      sampling: { temperature: 1, top_p: 1, top_k: null, max_tokens: 10, seed: null, min_p: null, repetition_penalty: null },
      enable_thinking: true,
      reasoning_effort: null,
      system_prompt: null,
    });
    const onPreset = vi.fn();
    render(Composer, {
      onSend: vi.fn(),
      onStop: vi.fn(),
      presets: [preset('general', 'General'), preset('swe-bench-pro', 'SWE-Bench Pro')],
      presetId: 'general',
      onPreset,
    });
    const select = screen.getByTestId('preset-select') as HTMLSelectElement;
    expect([...select.options].map((o) => o.textContent)).toEqual(['General', 'SWE-Bench Pro']);
    expect(select.value).toBe('general');
    await fireEvent.change(select, { target: { value: 'swe-bench-pro' } });
    expect(onPreset).toHaveBeenCalledWith('swe-bench-pro');
  });
});
