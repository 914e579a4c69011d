import { describe, expect, it } from 'vitest';
import { stats } from '../test/fixtures';
import { contextLabel, errorText, formatStats, sentWithParts, statsParts, thinkingLabel, thoughtSeconds, verdictLabel } from './format';

describe('stats line', () => {
  it('shows TTFT, prefill, decode, generated and prompt tokens', () => {
    expect(statsParts(stats(), 'stop')).toEqual([
      'TTFT 232 ms',
      'prefill 512 tok/s',
      'decode 23.5 tok/s',
      '128 tokens',
      'prompt 42 tokens',
    ]);
  });

  it('names finish reasons other than stop', () => {
    expect(statsParts(stats(), 'cancelled').at(-1)).toBe('stopped');
    expect(statsParts(stats(), 'length').at(-1)).toBe('length');
    expect(statsParts(stats(), 'error').at(-1)).toBe('error');
    expect(statsParts(stats(), null)).toHaveLength(5);
  });

  it('counts reasoning tokens within the generated ones', () => {
    expect(statsParts(stats({ reasoning_tokens: 100 }), 'stop')[3]).toBe('128 tokens (100 reasoning)');
    expect(statsParts(stats({ reasoning_tokens: 0 }), 'stop')[3]).toBe('128 tokens');
    expect(statsParts(stats({ cached_tokens: 40 }), 'stop')[4]).toBe('prompt 42 tokens (40 cached)');
    expect(statsParts(stats({ cached_tokens: 0 }), 'stop')[4]).toBe('prompt 42 tokens');
    // Speculative decoding: drafts and how many the model kept.
    expect(statsParts(stats({ drafted_tokens: 90, accepted_tokens: 61 }), 'stop')[5]).toBe(
      'MTP 61/90 drafts accepted (68 %)',
    );
    expect(statsParts(stats({ drafted_tokens: 0, accepted_tokens: 0 }), 'stop')).toHaveLength(5);
  });

  it('names the preset and the values a reply was sent with', () => {
    const sampling = { temperature: 1, top_p: 0.95, top_k: null, max_tokens: 100, seed: null, min_p: null, repetition_penalty: null };
    expect(
      sentWithParts({ preset_id: 'general', preset_name: 'General', sampling, enable_thinking: true, reasoning_effort: 'max' }),
    ).toEqual(['General', 'temp 1', 'top-p 0.95', 'thinking max']);
    expect(
      sentWithParts({
        preset_id: null,
        preset_name: null,
        sampling: { ...sampling, top_p: 1, top_k: 40, min_p: 0.05, repetition_penalty: 1.1, seed: 7 },
        enable_thinking: false,
        reasoning_effort: null,
      }),
    ).toEqual(['temp 1', 'top-p 1', 'top-k 40', 'min-p 0.05', 'rep 1.1', 'seed 7', 'thinking off']);
    // A model without a thinking switch: nothing said about thinking.
    expect(
      sentWithParts({ preset_id: 'general', preset_name: 'General', sampling, enable_thinking: null, reasoning_effort: null }),
    ).toEqual(['General', 'temp 1', 'top-p 0.95']);
  });

  it('uses singular for one token and a dash for unmeasured rates', () => {
    const line = formatStats(stats({ generated_tokens: 1, prompt_tokens: 1, decode_tokens_per_s: 0 }), 'stop');
    expect(line).toBe('TTFT 232 ms · prefill 512 tok/s · decode – tok/s · 1 token · prompt 1 token');
  });
});

describe('thinking label', () => {
  it('reads Thinking… while reasoning streams', () => {
    expect(thinkingLabel({ phase: 'live' })).toBe('Thinking…');
  });

  it('reads Thought for N s once done, rounded, never 0', () => {
    expect(thinkingLabel({ phase: 'done', ms: 4_400 })).toBe('Thought for 4 s');
    expect(thinkingLabel({ phase: 'done', ms: 4_600 })).toBe('Thought for 5 s');
    expect(thinkingLabel({ phase: 'done', ms: 120 })).toBe('Thought for 1 s');
    expect(thoughtSeconds(0)).toBe(1);
  });

  it('falls back when the duration is unknown (loaded from disk)', () => {
    expect(thinkingLabel({ phase: 'done', ms: null })).toBe('Reasoning');
    expect(thinkingLabel({ phase: 'none' })).toBe('');
  });
});

describe('error text', () => {
  it('tells the user to run the setup command when the model is missing', () => {
    const text = errorText({ kind: 'model_missing', message: 'x', detail: null });
    expect(text.command).toBe('npm run app');
    expect(text.advice).toContain('README');
  });

  it('has specific text for no_model and load_failed', () => {
    expect(errorText({ kind: 'no_model', message: 'x', detail: null }).headline).toBe('No model is loaded yet.');
    const failed = errorText({ kind: 'load_failed', message: 'Unsupported quant Q9', detail: null });
    expect(failed.headline).toBe('The model could not be loaded.');
    expect(failed.advice).toBe('Unsupported quant Q9');
  });

  it('shows the message for other kinds', () => {
    expect(errorText({ kind: 'io', message: 'Disk full.', detail: null })).toEqual({
      headline: 'Disk full.',
      advice: null,
      command: null,
    });
  });
});

describe('fit labels', () => {
  it('names verdicts and contexts', () => {
    expect(verdictLabel('gpu')).toBe('Fits on GPU');
    expect(verdictLabel('gpu_cpu_experts', 75, 75)).toBe('GPU + experts in RAM');
    expect(verdictLabel('gpu_cpu_experts', 16, 75)).toBe('GPU + 16/75 expert layers in RAM');
    expect(verdictLabel('cpu')).toBe('RAM only');
    expect(verdictLabel('no_fit')).toBe("Won't fit");
    expect(contextLabel(32768)).toBe('32K');
    expect(contextLabel(1048576)).toBe('1M');
    expect(errorText({ kind: 'wont_fit', message: 'm.gguf does not fit this machine.', detail: null }).headline).toBe(
      'm.gguf does not fit this machine.',
    );
  });
});
