import { describe, expect, it } from 'vitest';
import { stats } from '../test/fixtures';
import { errorText, formatStats, statsParts, thinkingLabel, thoughtSeconds } from './format';

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
