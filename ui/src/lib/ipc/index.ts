//! The UI's only doorway to the Tauri backend.

export * from './commands';
export * from './events';
export { isAppError, toAppError } from './errors';
