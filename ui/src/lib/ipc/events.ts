//! Global (app-wide) events. Per-generation events travel on channels instead (`commands.ts`).

import { listen, type UnlistenFn } from '@tauri-apps/api/event';
import type { ApiLogEntry } from '../bindings/ApiLogEntry';
import type { DownloadState } from '../bindings/DownloadState';
import type { ModelStatus } from '../bindings/ModelStatus';
import { toAppError } from './errors';

/** Name of the event the shell emits whenever the model status changes. */
export const MODEL_STATUS_EVENT = 'model-status';

/** Calls `handler` with every new model status until the returned function is called. */
export async function onModelStatus(handler: (status: ModelStatus) => void): Promise<UnlistenFn> {
  try {
    return await listen<ModelStatus>(MODEL_STATUS_EVENT, (event) => handler(event.payload));
  } catch (reason) {
    throw toAppError(reason);
  }
}

/** Name of the event the shell emits on every change of a download. */
export const DOWNLOAD_EVENT = 'download';

/** Calls `handler` with every download change until the returned function is called. */
export async function onDownload(handler: (state: DownloadState) => void): Promise<UnlistenFn> {
  try {
    return await listen<DownloadState>(DOWNLOAD_EVENT, (event) => handler(event.payload));
  } catch (reason) {
    throw toAppError(reason);
  }
}

/** Name of the event the shell emits for every request the local API serves. */
export const API_LOG_EVENT = 'api-log';

/** Calls `handler` with every local-API request until the returned function is called. */
export async function onApiLog(handler: (entry: ApiLogEntry) => void): Promise<UnlistenFn> {
  try {
    return await listen<ApiLogEntry>(API_LOG_EVENT, (event) => handler(event.payload));
  } catch (reason) {
    throw toAppError(reason);
  }
}
