//! One typed function per Tauri command.
//!
//! Invariant: this folder is the only code that touches `invoke`, `Channel` and `listen`.
//! Argument objects use the exact keys the shell expects (Tauri maps camelCase keys such as
//! `generationId` and `onEvent` onto the Rust parameter names). Every function rejects with an
//! `AppError` (see `errors.ts`).

import { Channel, invoke, type InvokeArgs } from '@tauri-apps/api/core';
import type { ExportFormat } from '../bindings/ExportFormat';
import type { ExportedConversation } from '../bindings/ExportedConversation';
import type { MeasureRequest } from '../bindings/MeasureRequest';
import type { MessageMeasure } from '../bindings/MessageMeasure';
import type { SearchHit } from '../bindings/SearchHit';
import type { ApiLogEntry } from '../bindings/ApiLogEntry';
import type { ApiSettings } from '../bindings/ApiSettings';
import type { ApiStatus } from '../bindings/ApiStatus';
import type { AppInfo } from '../bindings/AppInfo';
import type { DownloadState } from '../bindings/DownloadState';
import type { FitPlan } from '../bindings/FitPlan';
import type { FitRequest } from '../bindings/FitRequest';
import type { QuantCatalog } from '../bindings/QuantCatalog';
import type { ConversationSummary } from '../bindings/ConversationSummary';
import type { ConversationView } from '../bindings/ConversationView';
import type { GenerationEvent } from '../bindings/GenerationEvent';
import type { GenerationHandle } from '../bindings/GenerationHandle';
import type { ModelInfo } from '../bindings/ModelInfo';
import type { ModelStatus } from '../bindings/ModelStatus';
import type { RemoteServer } from '../bindings/RemoteServer';
import type { SamplingPreset } from '../bindings/SamplingPreset';
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

/** Built-in presets first, then the user's. */
export function listPresets(): Promise<SamplingPreset[]> {
  return call('list_presets');
}

/** Creates (new or built-in id) or updates a user preset; resolves to the stored preset. */
export function savePreset(preset: SamplingPreset): Promise<SamplingPreset> {
  return call('save_preset', { preset });
}

export function duplicatePreset(id: string): Promise<SamplingPreset> {
  return call('duplicate_preset', { id });
}

export async function deletePreset(id: string): Promise<void> {
  await call<null>('delete_preset', { id });
}

/** The user's presets as the JSON text of a presets file. */
export function exportPresets(): Promise<string> {
  return call('export_presets');
}

/** Adds the presets of a presets file; resolves to those added. */
export function importPresets(json: string): Promise<SamplingPreset[]> {
  return call('import_presets', { json });
}

/** Whether the local API runs, and where. */
export function apiStatus(): Promise<ApiStatus> {
  return call('api_status');
}

/** Saves the local API settings and starts or stops the server. */
export function setApi(api: ApiSettings): Promise<ApiStatus> {
  return call('set_api', { api });
}

/** The requests the local API served most recently. */
export function apiLog(): Promise<ApiLogEntry[]> {
  return call('api_log');
}

export function modelStatus(): Promise<ModelStatus> {
  return call('model_status');
}

/**
 * Loads a model file; `null` loads the configured (or default) model. A model that does not
 * fit this machine is refused with a `wont_fit` error unless `force`.
 */
export function loadModel(path: string | null, force = false): Promise<ModelInfo> {
  return call('load_model', { path, force });
}

/**
 * Checks an OpenAI-compatible server (reachable, key accepted, model listed), switches to it
 * and saves it with the models. A server that cannot be used is not saved.
 */
export function addRemote(server: RemoteServer): Promise<ModelInfo> {
  return call('add_remote', { server });
}

/** Switches to a saved server. */
export function loadRemote(id: string): Promise<ModelInfo> {
  return call('load_remote', { id });
}

/** Forgets a saved server. */
export function removeRemote(id: string): Promise<void> {
  return call('remove_remote', { id });
}

/** GLM-5.2's quants, each with its plan on the requested machine. */
export function quantCatalog(request: FitRequest): Promise<QuantCatalog> {
  return call('quant_catalog', { request });
}

/** One catalog quant's plan (e.g. with a forced expert placement). */
export function planQuant(label: string, request: FitRequest): Promise<FitPlan> {
  return call('plan_quant', { label, request });
}

/** Downloads of this session and unfinished ones of earlier sessions. */
export function listDownloads(): Promise<DownloadState[]> {
  return call('list_downloads');
}

/** Starts or resumes downloading `OWNER/REPO[:QUANT]`; progress arrives as `download` events. */
export function startDownload(spec: string): Promise<DownloadState> {
  return call('start_download', { spec });
}

export function pauseDownload(id: string): Promise<boolean> {
  return call('pause_download', { id });
}

/** Stops a download and deletes its partial files. */
export function cancelDownload(id: string): Promise<boolean> {
  return call('cancel_download', { id });
}

/** Adds a GGUF already on disk (any shard of a split set) to the library. */
export function importModel(path: string): Promise<ModelInfo> {
  return call('import_model', { path });
}

/** Deletes a model of the library (all shards). */
export async function deleteModel(path: string): Promise<void> {
  await call<null>('delete_model', { path });
}

/** The exact plan of `OWNER/REPO:QUANT` from its files' headers on the hub. */
export function planRemote(spec: string, request: FitRequest): Promise<FitPlan> {
  return call('plan_remote', { spec, request });
}

/** A model file's plan from its headers. */
export function planModel(path: string, request: FitRequest): Promise<FitPlan> {
  return call('plan_model', { path, request });
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

/** Writes a conversation to a file in the data directory's `exports/` and returns it. */
export function exportConversation(id: string, format: ExportFormat): Promise<ExportedConversation> {
  return call('export_conversation', { id, format });
}

/** Adds the conversation of a LocalGLM JSON export (as a copy); a malformed file changes nothing. */
export function importConversation(json: string): Promise<ConversationSummary> {
  return call('import_conversation', { json });
}

/** The tokens a message would take, alone and in its whole prompt, and the model's context. */
export function measureMessage(request: MeasureRequest): Promise<MessageMeasure> {
  return call('measure_message', { request });
}

/** Titles and messages of every conversation (every branch) matching `query`; reasoning too when asked. */
export function searchConversations(query: string, reasoning: boolean): Promise<SearchHit[]> {
  return call('search_conversations', { query, reasoning });
}

/** Shows another version of a message and the branch below it; returns the branch shown. */
export function selectBranch(conversationId: string, messageId: string): Promise<ConversationView> {
  return call('select_branch', { conversationId, messageId });
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
