//! The models dialog's state: downloads, the models in the library and which runtime each
//! runs on. Kept apart from the app store, which it reaches only through `LibraryHost`.
//!
//! Invariant: `library` and `downloads` are the backend's answers (a finished download
//! refreshes the library); a model's "Run with" choice is stored in the settings by file name
//! (`model_runtimes`) — the same key the backend's load reads.

import type { DownloadState } from '../bindings/DownloadState';
import type { ModelInfo } from '../bindings/ModelInfo';
import type { ModelStatus } from '../bindings/ModelStatus';
import type { Settings } from '../bindings/Settings';
import * as ipc from '../ipc';

/** What the library needs of the app: errors, the settings and reloading a model. */
export interface LibraryHost {
  readonly settings: Settings | null;
  readonly modelStatus: ModelStatus;
  showError(reason: unknown): void;
  saveSettings(settings: Settings): Promise<boolean>;
  loadModel(path: string | null): Promise<void>;
}

/** The file name a path ends with (either separator): the key of a model's runtime choice. */
export function fileName(path: string): string {
  return path.split(/[\\/]/).pop() ?? path;
}

export class LibraryStore {
  constructor(private readonly host: LibraryHost) {}

  /** Downloads (running, paused, failed) and the models in the library. */
  downloads = $state.raw<DownloadState[]>([]);
  models = $state.raw<ModelInfo[]>([]);
  private unlistenDownloads: (() => void) | null = null;

  /** Fetches the library and downloads and follows download events (the picker calls it). */
  async open(): Promise<void> {
    try {
      if (!this.unlistenDownloads) {
        this.unlistenDownloads = await ipc.onDownload((s) => this.onDownload(s));
      }
      const [downloads, models] = await Promise.all([ipc.listDownloads(), ipc.listModels()]);
      this.downloads = downloads;
      this.models = models;
    } catch (reason) {
      this.host.showError(reason);
    }
  }

  private onDownload(state: DownloadState): void {
    const others = this.downloads.filter((d) => d.id !== state.id);
    this.downloads = state.status === 'cancelled' ? others : [...others, state].sort((a, b) => a.id.localeCompare(b.id));
    if (state.status === 'done') void this.refresh();
  }

  async refresh(): Promise<void> {
    try {
      this.models = await ipc.listModels();
    } catch (reason) {
      this.host.showError(reason);
    }
  }

  async startDownload(spec: string): Promise<void> {
    try {
      this.onDownload(await ipc.startDownload(spec));
    } catch (reason) {
      this.host.showError(reason);
    }
  }

  async pauseDownload(id: string): Promise<void> {
    await ipc.pauseDownload(id).catch((r) => this.host.showError(r));
  }

  async cancelDownload(id: string): Promise<void> {
    await ipc.cancelDownload(id).catch((r) => this.host.showError(r));
  }

  async importModel(path: string): Promise<boolean> {
    try {
      await ipc.importModel(path.trim());
      await this.refresh();
      return true;
    } catch (reason) {
      this.host.showError(reason);
      return false;
    }
  }

  async deleteModel(path: string): Promise<void> {
    try {
      await ipc.deleteModel(path);
      await this.refresh();
    } catch (reason) {
      this.host.showError(reason);
    }
  }

  /**
   * The runtime `model` runs on: its own choice, else (where it has a choice) the settings'
   * runtime for dense models, else the first that can run it; `null` when none is known.
   */
  runtimeOf(model: ModelInfo): string | null {
    const choices = model.runtimes;
    if (choices.length === 0) return null;
    const settings = this.host.settings;
    const wanted = [settings?.model_runtimes?.[fileName(model.path)], settings?.dense_runtime];
    return wanted.find((r): r is string => !!r && choices.includes(r)) ?? choices[0];
  }

  /**
   * Runs `model` on `runtime` from now on (kept in the settings); when it is the model loaded,
   * it is loaded again on that runtime at once.
   */
  async setRuntime(model: ModelInfo, runtime: string): Promise<void> {
    const settings = this.host.settings;
    if (!settings || this.runtimeOf(model) === runtime) return;
    const model_runtimes = { ...settings.model_runtimes, [fileName(model.path)]: runtime };
    if (!(await this.host.saveSettings({ ...settings, model_runtimes }))) return;
    const status = this.host.modelStatus;
    if (status.state === 'ready' && status.model.path === model.path) await this.host.loadModel(model.path);
  }
}
