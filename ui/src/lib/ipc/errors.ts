//! Turns whatever an IPC call rejected with into an `AppError`.
//!
//! Invariant: every promise returned by this folder rejects with a well-formed `AppError`; the
//! backend already sends one, anything else (a plain string, an `Error`, `undefined`) becomes
//! kind `internal` so the UI has a single shape to switch on.

import type { AppError } from '../bindings/AppError';
import type { ErrorKind } from '../bindings/ErrorKind';

const KINDS: ReadonlySet<string> = new Set<ErrorKind>([
  'model_missing',
  'load_failed',
  'no_model',
  'generation',
  'not_found',
  'invalid_request',
  'io',
  'internal',
]);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** True when `value` already has the `{ kind, message, detail }` shape with a known kind. */
export function isAppError(value: unknown): value is AppError {
  return (
    isRecord(value) &&
    typeof value.kind === 'string' &&
    KINDS.has(value.kind) &&
    typeof value.message === 'string' &&
    (value.detail === null || value.detail === undefined || typeof value.detail === 'string')
  );
}

function describe(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Normalises a rejection reason into an `AppError`; idempotent on `AppError`s. */
export function toAppError(reason: unknown): AppError {
  if (isAppError(reason)) {
    return { kind: reason.kind, message: reason.message, detail: reason.detail ?? null };
  }
  if (reason instanceof Error) {
    return { kind: 'internal', message: reason.message || 'Unexpected error.', detail: reason.name };
  }
  if (typeof reason === 'string') {
    return { kind: 'internal', message: reason || 'Unexpected error.', detail: null };
  }
  if (isRecord(reason) && typeof reason.message === 'string' && reason.message) {
    // An error-like object of a shape we don't know (e.g. a kind added by a newer backend).
    return { kind: 'internal', message: reason.message, detail: describe(reason) };
  }
  return { kind: 'internal', message: 'Unexpected error.', detail: describe(reason) };
}
