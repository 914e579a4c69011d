//! Text shown to the user for numbers and states: the stats line under a reply, the reasoning
//! pane's label, model sizes. Pure functions, so tests can pin the wording.

import type { AppError } from './bindings/AppError';
import type { FinishReason } from './bindings/FinishReason';
import type { GenerationStats } from './bindings/GenerationStats';
import type { SentWith } from './bindings/SentWith';
import type { Thinking } from './stores/chat';

function rate(perSecond: number): string {
  if (!Number.isFinite(perSecond) || perSecond <= 0) return '–';
  return perSecond >= 100 ? Math.round(perSecond).toString() : perSecond.toFixed(1);
}

function count(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** How a finish reason other than a normal stop is named; `null` for a normal stop. */
export function finishLabel(reason: FinishReason | null): string | null {
  switch (reason) {
    case 'cancelled':
      return 'stopped';
    case 'length':
      return 'length';
    case 'error':
      return 'error';
    case 'interrupted':
      return 'interrupted';
    default:
      return null;
  }
}

/** The parts of the stats line, in display order. */
export function statsParts(stats: GenerationStats, reason: FinishReason | null): string[] {
  const reasoning = stats.reasoning_tokens ?? 0;
  const parts = [
    `TTFT ${Math.round(stats.ttft_ms)} ms`,
    `prefill ${rate(stats.prefill_tokens_per_s)} tok/s`,
    `decode ${rate(stats.decode_tokens_per_s)} tok/s`,
    count(stats.generated_tokens, 'token', 'tokens') + (reasoning > 0 ? ` (${reasoning} reasoning)` : ''),
    `prompt ${count(stats.prompt_tokens, 'token', 'tokens')}` +
      (stats.cached_tokens ? ` (${stats.cached_tokens} cached)` : ''),
  ];
  if (stats.drafted_tokens) {
    const accepted = stats.accepted_tokens ?? 0;
    const pct = Math.round((100 * accepted) / stats.drafted_tokens);
    parts.push(`MTP ${accepted}/${stats.drafted_tokens} drafts accepted (${pct} %)`);
  }
  const finish = finishLabel(reason);
  if (finish) parts.push(finish);
  return parts;
}

function num(x: number): string {
  return Number.isInteger(x) ? x.toString() : Number(x.toPrecision(4)).toString();
}

/**
 * What a reply was sent with, for the start of its stats line: the preset's name, the sampling
 * values, and the thinking switch and effort (when the model's template has them).
 */
export function sentWithParts(sent: SentWith): string[] {
  const s = sent.sampling;
  const parts: string[] = [];
  if (sent.preset_name) parts.push(sent.preset_name);
  parts.push(`temp ${num(s.temperature)}`, `top-p ${num(s.top_p)}`);
  if (s.top_k !== null) parts.push(`top-k ${s.top_k}`);
  if (s.min_p !== null) parts.push(`min-p ${num(s.min_p)}`);
  if (s.repetition_penalty !== null && s.repetition_penalty !== 1) parts.push(`rep ${num(s.repetition_penalty)}`);
  if (s.seed !== null) parts.push(`seed ${s.seed}`);
  if (sent.enable_thinking === false) parts.push('thinking off');
  else if (sent.enable_thinking === true) {
    parts.push(sent.reasoning_effort ? `thinking ${sent.reasoning_effort}` : 'thinking on');
  }
  return parts;
}

export function formatStats(stats: GenerationStats, reason: FinishReason | null): string {
  return statsParts(stats, reason).join(' · ');
}

/** Whole seconds of thought, at least 1 so a fast thought never reads "0 s". */
export function thoughtSeconds(ms: number): number {
  return Math.max(1, Math.round(ms / 1000));
}

/**
 * The reasoning pane's summary: "Thinking…" while reasoning streams, "Thought for N s" once the
 * duration is known, and "Reasoning" for replies loaded from disk (their duration is not stored).
 */
export function thinkingLabel(thinking: Thinking, tokens: number | null = null): string {
  const spent = tokens !== null && tokens > 0 ? ` · ${count(tokens, 'token', 'tokens')}` : '';
  switch (thinking.phase) {
    case 'live':
      return 'Thinking…';
    case 'done':
      return (thinking.ms === null ? 'Reasoning' : `Thought for ${thoughtSeconds(thinking.ms)} s`) + spent;
    case 'none':
      return '';
  }
}

/** Bytes as a short human size (GiB/MiB), for model info. */
export function formatBytes(bytes: number): string {
  const gib = bytes / 1024 ** 3;
  if (gib >= 1) return `${gib.toFixed(1)} GiB`;
  return `${Math.max(0, Math.round(bytes / 1024 ** 2))} MiB`;
}

/** What the error banner says: one headline, advice for the model-related kinds, and a command to run. */
export interface ErrorText {
  headline: string;
  advice: string | null;
  command: string | null;
}

/** The setup command the README names for downloading the default model. */
export const SETUP_COMMAND = 'npm run app';

export function errorText(error: AppError): ErrorText {
  switch (error.kind) {
    case 'model_missing':
      return {
        headline: 'The model file is missing.',
        advice: 'Download it with the setup command (see the README), then load the model again:',
        command: SETUP_COMMAND,
      };
    case 'no_model':
      return {
        headline: 'No model is loaded yet.',
        advice: 'Wait until the model has loaded, or load it from the model indicator at the top.',
        command: null,
      };
    case 'wont_fit':
      return {
        headline: error.message,
        advice: 'Loading it anyway may make this computer swap heavily or run out of memory.',
        command: null,
      };
    case 'load_failed':
      return {
        headline: 'The model could not be loaded.',
        advice: error.message,
        command: null,
      };
    default:
      return { headline: error.message, advice: null, command: null };
  }
}

/** The fit badge of a plan verdict. */
export function verdictLabel(verdict: string, cpuMoe = 0, moeLayers = 0): string {
  switch (verdict) {
    case 'gpu':
      return 'Fits on GPU';
    case 'gpu_cpu_experts':
      return cpuMoe >= moeLayers ? 'GPU + experts in RAM' : `GPU + ${cpuMoe}/${moeLayers} expert layers in RAM`;
    case 'cpu':
      return 'RAM only';
    default:
      return "Won't fit";
  }
}

/** Context lengths offered by the planner's slider. */
export const CONTEXT_STEPS = [4096, 8192, 16384, 32768, 65536, 131072, 262144, 524288, 1048576];

/** 32768 → "32K", 1048576 → "1M". */
export function contextLabel(tokens: number): string {
  if (tokens >= 1048576 && tokens % 1048576 === 0) return `${tokens / 1048576}M`;
  if (tokens >= 1024) return `${Math.round(tokens / 1024)}K`;
  return String(tokens);
}

/** Bytes as decimal GB with one decimal, as model sizes are quoted. */
export function formatGB(bytes: number): string {
  return `${(bytes / 1e9).toFixed(1)} GB`;
}
