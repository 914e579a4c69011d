//! Global (app-wide) events. Per-generation events travel on channels instead (`commands.ts`).

import { listen, type UnlistenFn } from '@tauri-apps/api/event';
import type { ApiLogEntry } from '../bindings/ApiLogEntry';
import type { ConversationSummary } from '../bindings/ConversationSummary';
import type { DownloadState } from '../bindings/DownloadState';
import type { ModelStatus } from '../bindings/ModelStatus';
import { toAppError } from './errors';

/** Name of the event the shell emits whenever the model status changes. */
export const MODEL_STATUS_EVENT = 'model-status';
/** Name of the event the shell emits on every change of a download. */
export const DOWNLOAD_EVENT = 'download';
/** Name of the event the shell emits for every request the local API serves. */
export const API_LOG_EVENT = 'api-log';
/** Name of the event the shell emits when a conversation changes outside a request (a generated title). */
export const CONVERSATION_EVENT = 'conversation';

/** Calls `handler` with every payload of event `name` until the returned function is called. */
async function on<T>(name: string, handler: (payload: T) => void): Promise<UnlistenFn> {
  try {
    return await listen<T>(name, (event) => handler(event.payload));
  } catch (reason) {
    throw toAppError(reason);
  }
}

/** Every new model status. */
export const onModelStatus = (handler: (status: ModelStatus) => void) => on(MODEL_STATUS_EVENT, handler);

/** Every change of a download. */
export const onDownload = (handler: (state: DownloadState) => void) => on(DOWNLOAD_EVENT, handler);

/** Every request the local API serves. */
export const onApiLog = (handler: (entry: ApiLogEntry) => void) => on(API_LOG_EVENT, handler);

/** Every conversation changed outside a request (its title generated after the first reply). */
export const onConversation = (handler: (summary: ConversationSummary) => void) => on(CONVERSATION_EVENT, handler);
