import { describe, expect, it } from 'vitest';
import { isAppError, toAppError } from './errors';

describe('toAppError', () => {
  it('passes a backend AppError through', () => {
    const error = { kind: 'model_missing', message: 'No model file.', detail: '/models/x.gguf' };
    expect(toAppError(error)).toEqual(error);
  });

  it('fills a missing detail with null', () => {
    expect(toAppError({ kind: 'io', message: 'Disk full.' })).toEqual({ kind: 'io', message: 'Disk full.', detail: null });
  });

  it('turns a string into an internal error', () => {
    expect(toAppError('command not found')).toEqual({ kind: 'internal', message: 'command not found', detail: null });
  });

  it('turns an Error into an internal error', () => {
    expect(toAppError(new TypeError('x is undefined'))).toEqual({
      kind: 'internal',
      message: 'x is undefined',
      detail: 'TypeError',
    });
  });

  it('keeps the message of an object with an unknown kind', () => {
    const error = toAppError({ kind: 'quota', message: 'Too many.' });
    expect(error.kind).toBe('internal');
    expect(error.message).toBe('Too many.');
    expect(error.detail).toContain('quota');
  });

  it('handles undefined, null and odd values', () => {
    expect(toAppError(undefined)).toEqual({ kind: 'internal', message: 'Unexpected error.', detail: null });
    expect(toAppError(null)).toEqual({ kind: 'internal', message: 'Unexpected error.', detail: null });
    expect(toAppError(42)).toEqual({ kind: 'internal', message: 'Unexpected error.', detail: '42' });
    expect(toAppError('')).toMatchObject({ kind: 'internal', message: 'Unexpected error.' });
  });

  it('is idempotent', () => {
    const once = toAppError(new Error('boom'));
    expect(toAppError(once)).toEqual(once);
    expect(isAppError(once)).toBe(true);
  });
});
