//! One typed function per Tauri command.
//!
//! Invariant: this folder is the only code that touches `invoke`, `Channel` and `listen`.
//! Argument objects use the exact keys the shell expects (Tauri maps camelCase keys such as
//! `generationId` and `onEvent` onto the Rust parameter names). Every function rejects with an
//! `AppError` (see `errors.ts`).

import { Channel, invoke, type InvokeArgs } from '@tauri-apps/api/core';
import type { AppInfo } from '../bindings/AppInfo';
import type { ConversationSummary } from '../bindings/ConversationSummary';
import type { ConversationView } from '../bindings/ConversationView';
import type { GenerationEvent } from '../bindings/GenerationEvent';
import type { GenerationHandle } from '../bindings/GenerationHandle';
import type { ModelInfo } from '../bindings/ModelInfo';
import type { ModelStatus } from '../bindings/ModelStatus';
import type { SendRequest } from '../bindings/SendRequest';
import type { Settings } from '../bindings/Settings';
import { toAppError } from './errors';

async function call<T>(command: string, args?: InvokeArgs): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (reason) {
    throw toAppError(reason);
  }
}

export function appInfo(): Promise<AppInfo> {
  return call('app_info');
}

export function getSettings(): Promise<Settings> {
  return call('get_settings');
}

export function saveSettings(settings: Settings): Promise<Settings> {
  return call('save_settings', { settings });
}

export function modelStatus(): Promise<ModelStatus> {
  return call('model_status');
}

/** Loads a model file; `null` loads the configured (or default) model. */
export function loadModel(path: string | null): Promise<ModelInfo> {
  return call('load_model', { path });
}

export function listModels(): Promise<ModelInfo[]> {
  return call('list_models');
}

/** Most recently updated first. */
export function listConversations(): Promise<ConversationSummary[]> {
  return call('list_conversations');
}

/** `null` lets the backend title the conversation from its first message. */
export function createConversation(title: string | null): Promise<ConversationSummary> {
  return call('create_conversation', { title });
}

export function getConversation(id: string): Promise<ConversationView> {
  return call('get_conversation', { id });
}

export function renameConversation(id: string, title: string): Promise<ConversationSummary> {
  return call('rename_conversation', { id, title });
}

export async function deleteConversation(id: string): Promise<void> {
  await call<null>('delete_conversation', { id });
}

/**
 * Starts a generation. `onEvent` receives the events of this generation only, in order; it is
 * attached before the request leaves, so no event can be missed.
 */
export function sendMessage(
  request: SendRequest,
  onEvent: (event: GenerationEvent) => void,
): Promise<GenerationHandle> {
  const channel = new Channel<GenerationEvent>(onEvent);
  return call('send_message', { request, onEvent: channel });
}

/** Resolves to `false` when the generation had already ended. */
export function stopGeneration(generationId: string): Promise<boolean> {
  return call('stop_generation', { generationId });
}

/** Markdown to sanitized HTML, safe to assign to `innerHTML`. */
export function renderMarkdown(text: string): Promise<string> {
  return call('render_markdown', { text });
}
