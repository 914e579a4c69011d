//! The app's state (Svelte 5 runes) and the actions the components call.
//!
//! Invariants: state changes go through the pure functions of `chat.ts`; at most one generation
//! runs at a time (`generation`); events of a generation are applied to the chat of the
//! conversation that started it, also when the user has switched to another conversation
//! meanwhile (that chat is parked in `parked` until the generation ends or the user returns).
//! Streamed deltas are applied at most once per frame (all that arrived since the last one), so
//! a window slower than the stream never falls behind it one event at a time.

import type { AppError } from '../bindings/AppError';
import type { AppInfo } from '../bindings/AppInfo';
import type { ConversationSummary } from '../bindings/ConversationSummary';
import type { GenerationEvent } from '../bindings/GenerationEvent';
import type { ApiLogEntry } from '../bindings/ApiLogEntry';
import type { ApiSettings } from '../bindings/ApiSettings';
import type { ApiStatus } from '../bindings/ApiStatus';
import type { ModelStatus } from '../bindings/ModelStatus';
import type { RemoteServer } from '../bindings/RemoteServer';
import type { SamplingPreset } from '../bindings/SamplingPreset';
import type { MessageMeasure } from '../bindings/MessageMeasure';
import type { SearchHit } from '../bindings/SearchHit';
import type { SendAction } from '../bindings/SendAction';
import type { Settings } from '../bindings/Settings';
import * as ipc from '../ipc';
import { LibraryStore } from './library.svelte';
import {
  abortSend,
  applyEvent,
  attachHandle,
  beginSend,
  chatFromView,
  displayMessages,
  emptyChat,
  loadingChat,
  showBranch,
  type ChatState,
  type SearchMark,
} from './chat';

/** The generation in flight. */
export interface ActiveGeneration {
  conversationId: string;
  /** Known from the `started` event or the handle, whichever comes first. */
  generationId: string | null;
  stopRequested: boolean;
}

/** Runs `apply` before the next frame is drawn (or within 100 ms where frames are not drawn). */
export function nextFrame(apply: () => void): void {
  let ran = false;
  const once = () => {
    if (ran) return;
    ran = true;
    apply();
  };
  if (typeof requestAnimationFrame === 'function') requestAnimationFrame(once);
  setTimeout(once, 100);
}

export class AppStore {
  /** `schedule` decides when buffered stream deltas are applied: by default once per frame. */
  constructor(private readonly schedule: (apply: () => void) => void = nextFrame) {}

  info = $state.raw<AppInfo | null>(null);
  settings = $state.raw<Settings | null>(null);
  modelStatus = $state.raw<ModelStatus>({ state: 'none' });
  /** Think toggle for models whose template reads `enable_thinking` (on = template default). */
  thinking = $state(true);
  /** Chosen `reasoning_effort`; `null` = the template's default. */
  effort = $state<string | null>(null);
  /** Built-in presets, then the user's. */
  presets = $state.raw<SamplingPreset[]>([]);
  /** Preset the next message is sent with. */
  presetId = $state('general');

  /** Effort levels the loaded model's template distinguishes (lower case). */
  get effortLevels(): string[] {
    return this.modelStatus.state === 'ready' ? this.modelStatus.model.effort_levels : [];
  }

  /** The loaded model's template offers a thinking switch. */
  get thinkingSupported(): boolean {
    return this.modelStatus.state === 'ready' && this.modelStatus.model.supports_thinking;
  }
  conversations = $state.raw<ConversationSummary[]>([]);
  chat = $state.raw<ChatState>(emptyChat());
  generation = $state.raw<ActiveGeneration | null>(null);
  /** A search hit highlighted in the conversation in view. */
  highlight = $state.raw<SearchMark | null>(null);
  error = $state.raw<AppError | null>(null);

  /** Rows of the message list of the conversation in view. */
  messages = $derived(displayMessages(this.chat));
  /** A generation runs in the conversation in view. */
  generatingHere = $derived(
    this.generation !== null && this.generation.conversationId === this.chat.conversationId,
  );

  private parked: ChatState | null = null;
  private selectSeq = 0;
  private branchSeq = 0;
  private tempSeq = 0;
  private unlisten: (() => void) | null = null;
  private unlistenConversation: (() => void) | null = null;

  /** Loads everything the first screen needs; each failure shows in the banner on its own. */
  async init(): Promise<void> {
    // Subscribe before asking, so no change is missed; an event that lands before the answer to
    // `model_status` is the newer news, so the answer then does not overwrite it.
    let statusEvents = 0;
    const listening = ipc
      .onModelStatus((status) => {
        statusEvents++;
        this.setModelStatus(status);
      })
      .then((unlisten) => {
        this.unlisten = unlisten;
      });
    void ipc
      .onConversation((summary) => this.onConversationChanged(summary))
      .then((unlisten) => (this.unlistenConversation = unlisten))
      .catch((reason) => this.showError(reason));
    const [info, settings, status, conversations, subscribed, presets] = await Promise.allSettled([
      ipc.appInfo(),
      ipc.getSettings(),
      ipc.modelStatus(),
      ipc.listConversations(),
      listening,
      ipc.listPresets(),
    ]);
    if (info.status === 'fulfilled') this.info = info.value;
    else this.showError(info.reason);
    if (presets.status === 'fulfilled') this.presets = presets.value;
    else this.showError(presets.reason);
    if (settings.status === 'fulfilled') {
      this.settings = settings.value;
      this.usePreset(settings.value.default_preset);
    } else this.showError(settings.reason);
    if (status.status === 'fulfilled') {
      if (statusEvents === 0) this.setModelStatus(status.value);
    } else {
      this.showError(status.reason);
    }
    if (subscribed.status === 'rejected') this.showError(subscribed.reason);
    if (conversations.status === 'fulfilled') {
      this.conversations = conversations.value;
      const first = conversations.value[0];
      if (first) await this.select(first.id);
    } else {
      this.showError(conversations.reason);
    }
  }

  dispose(): void {
    this.unlisten?.();
    this.unlisten = null;
    this.unlistenConversation?.();
    this.unlistenConversation = null;
  }

  /** A conversation changed outside a request: its generated title, shown where it is listed. */
  private onConversationChanged(summary: ConversationSummary): void {
    this.conversations = this.conversations.map((c) => (c.id === summary.id ? { ...c, title: summary.title } : c));
    if (this.chat.conversationId === summary.id) this.chat = { ...this.chat, title: summary.title };
    if (this.parked?.conversationId === summary.id) this.parked = { ...this.parked, title: summary.title };
  }

  showError(reason: unknown): void {
    this.error = ipc.toAppError(reason);
  }

  dismissError(): void {
    this.error = null;
  }

  setModelStatus(status: ModelStatus): void {
    this.modelStatus = status;
    if (status.state === 'failed') {
      this.error = status.error;
      // A model refused at start for not fitting can still be loaded anyway.
      if (status.error.kind === 'wont_fit') this.refusedPath = status.path;
    }
    else if (status.state === 'ready' && this.error && isModelError(this.error)) this.error = null;
  }

  /** The models dialog: downloads, the library and each model's runtime. */
  readonly library: LibraryStore = new LibraryStore(this);

  /** The local API's state and recent requests (loaded when the settings open). */
  apiStatus = $state.raw<ApiStatus | null>(null);
  apiLog = $state.raw<ApiLogEntry[]>([]);
  private unlistenApiLog: (() => void) | null = null;

  async openApi(): Promise<void> {
    try {
      if (!this.unlistenApiLog) {
        this.unlistenApiLog = await ipc.onApiLog((e) => (this.apiLog = [...this.apiLog.slice(-199), e]));
      }
      const [status, log] = await Promise.all([ipc.apiStatus(), ipc.apiLog()]);
      this.apiStatus = status;
      this.apiLog = log;
    } catch (reason) {
      this.showError(reason);
    }
  }

  async setApi(api: ApiSettings): Promise<void> {
    try {
      this.apiStatus = await ipc.setApi(api);
      this.settings = await ipc.getSettings();
    } catch (reason) {
      this.showError(reason);
    }
  }

  /** The model of the last load refused as too big (for "Load anyway"). */
  refusedPath: string | null = null;

  async loadModel(path: string | null = null, force = false): Promise<void> {
    try {
      await ipc.loadModel(path, force);
      this.refusedPath = null;
      // A local model replaces a server in use.
      this.settings = await ipc.getSettings();
    } catch (reason) {
      const error = ipc.toAppError(reason);
      this.refusedPath = error.kind === 'wont_fit' ? path : null;
      this.showError(error);
    }
  }

  /**
   * Adds a server and switches to it; resolves to `null`, or to why it failed (shown beside the
   * form, since the models dialog covers the error banner).
   */
  async addRemote(server: RemoteServer): Promise<AppError | null> {
    try {
      await ipc.addRemote(server);
      this.settings = await ipc.getSettings();
      return null;
    } catch (reason) {
      return ipc.toAppError(reason);
    }
  }

  useRemote(id: string): Promise<void> {
    return this.changeSettings(ipc.loadRemote(id));
  }

  removeRemote(id: string): Promise<void> {
    return this.changeSettings(ipc.removeRemote(id));
  }

  /** Waits for a command that changes the settings, then reads them again (errors shown). */
  private async changeSettings(command: Promise<unknown>): Promise<void> {
    try {
      await command;
      this.settings = await ipc.getSettings();
    } catch (reason) {
      this.showError(reason);
    }
  }

  /** Loads the model that was refused as too big, accepting the risk. */
  async loadAnyway(): Promise<void> {
    this.error = null;
    await this.loadModel(this.refusedPath, true);
  }

  async saveSettings(settings: Settings): Promise<boolean> {
    try {
      this.settings = await ipc.saveSettings(settings);
      return true;
    } catch (reason) {
      this.showError(reason);
      return false;
    }
  }

  /** The preset the next message is sent with. */
  get preset(): SamplingPreset | null {
    return this.presets.find((p) => p.id === this.presetId) ?? null;
  }

  /** Selects a preset without side effects beyond the composer's thinking controls. */
  private usePreset(id: string): void {
    const preset = this.presets.find((p) => p.id === id);
    if (!preset) return;
    this.presetId = preset.id;
    this.thinking = preset.enable_thinking;
    this.effort = preset.reasoning_effort;
  }

  /**
   * Picks the preset for the next message (the composer's selector): its thinking settings
   * become the composer's, and it becomes the default for new conversations.
   */
  async choosePreset(id: string): Promise<void> {
    this.usePreset(id);
    if (this.settings && this.settings.default_preset !== id) {
      await this.saveSettings({ ...this.settings, default_preset: id });
    }
  }

  private async refreshPresets(): Promise<void> {
    this.presets = await ipc.listPresets();
    if (!this.presets.some((p) => p.id === this.presetId)) this.usePreset('general');
    this.settings = await ipc.getSettings();
  }

  /**
   * Runs a preset change; resolves to its result, or to the `AppError` it failed with (the
   * settings dialog shows it next to the form).
   */
  async presetAction<T>(action: () => Promise<T>): Promise<T | AppError> {
    try {
      const out = await action();
      await this.refreshPresets();
      return out;
    } catch (reason) {
      return ipc.toAppError(reason);
    }
  }

  savePreset(preset: SamplingPreset): Promise<SamplingPreset | AppError> {
    return this.presetAction(() => ipc.savePreset(preset));
  }

  duplicatePreset(id: string): Promise<SamplingPreset | AppError> {
    return this.presetAction(() => ipc.duplicatePreset(id));
  }

  deletePreset(id: string): Promise<void | AppError> {
    return this.presetAction(() => ipc.deletePreset(id));
  }

  importPresets(json: string): Promise<SamplingPreset[] | AppError> {
    return this.presetAction(() => ipc.importPresets(json));
  }

  async refreshConversations(): Promise<void> {
    try {
      this.conversations = await ipc.listConversations();
      const current = this.conversations.find((c) => c.id === this.chat.conversationId);
      if (current && current.title !== this.chat.title) this.chat = { ...this.chat, title: current.title };
    } catch (reason) {
      this.showError(reason);
    }
  }

  async select(id: string): Promise<void> {
    if (this.chat.conversationId === id && !this.chat.loading) return;
    this.highlight = null;
    this.park();
    const seq = ++this.selectSeq;
    if (this.parked?.conversationId === id) {
      this.chat = this.parked;
      this.parked = null;
      return;
    }
    const title = this.conversations.find((c) => c.id === id)?.title ?? '';
    this.chat = loadingChat(id, title);
    try {
      const view = await ipc.getConversation(id);
      if (seq === this.selectSeq) {
        this.chat = chatFromView(view);
        // Restore the preset and thinking controls this conversation last used.
        if (view.preset_id && this.presets.some((p) => p.id === view.preset_id)) this.presetId = view.preset_id;
        if (view.thinking) {
          this.thinking = view.thinking.enabled;
          this.effort = view.thinking.effort;
        }
      }
    } catch (reason) {
      if (seq === this.selectSeq) this.chat = { ...this.chat, loading: false };
      this.showError(reason);
    }
  }

  /** Creates an empty conversation and shows it. */
  async newConversation(): Promise<string | null> {
    try {
      const summary = await ipc.createConversation(null);
      this.conversations = [summary, ...this.conversations.filter((c) => c.id !== summary.id)];
      this.park();
      this.selectSeq++;
      this.highlight = null;
      this.chat = { ...emptyChat(), conversationId: summary.id, title: summary.title };
      return summary.id;
    } catch (reason) {
      this.showError(reason);
      return null;
    }
  }

  async rename(id: string, title: string): Promise<void> {
    const trimmed = title.trim();
    if (!trimmed) return;
    try {
      const summary = await ipc.renameConversation(id, trimmed);
      this.conversations = this.conversations.map((c) => (c.id === id ? summary : c));
      if (this.chat.conversationId === id) this.chat = { ...this.chat, title: summary.title };
      if (this.parked?.conversationId === id) this.parked = { ...this.parked, title: summary.title };
    } catch (reason) {
      this.showError(reason);
    }
  }

  async remove(id: string): Promise<void> {
    if (this.generation?.conversationId === id) {
      await this.stop();
      this.generation = null;
    }
    try {
      await ipc.deleteConversation(id);
    } catch (reason) {
      this.showError(reason);
      return;
    }
    this.conversations = this.conversations.filter((c) => c.id !== id);
    if (this.parked?.conversationId === id) this.parked = null;
    if (this.chat.conversationId === id) {
      this.selectSeq++;
      this.chat = emptyChat();
      const next = this.conversations[0];
      if (next) await this.select(next.id);
    }
  }

  /** Sends `text` as a new user message; creates a conversation first when none is shown. */
  async send(text: string): Promise<boolean> {
    if (!text.trim() || this.generation) return false;
    let id = this.chat.conversationId;
    if (!id) id = await this.newConversation();
    if (!id) return false;
    return this.start(id, { type: 'new', text });
  }

  async regenerate(): Promise<boolean> {
    const id = this.chat.conversationId;
    if (!id || this.generation) return false;
    return this.start(id, { type: 'regenerate' });
  }

  async edit(messageId: string, text: string): Promise<boolean> {
    const id = this.chat.conversationId;
    if (!id || this.generation || !text.trim()) return false;
    return this.start(id, { type: 'edit', message_id: messageId, text });
  }

  /** The preset and thinking controls the next message is sent with. */
  private sendChoices() {
    return {
      preset_id: this.presets.some((p) => p.id === this.presetId) ? this.presetId : null,
      enable_thinking: this.thinkingSupported ? this.thinking : null,
      reasoning_effort:
        this.thinking && this.effort !== null && this.effortLevels.includes(this.effort) ? this.effort : null,
    };
  }

  /** The tokens a message would take (alone, and with the conversation) and the model's context. */
  async measure(text: string): Promise<MessageMeasure | AppError> {
    try {
      return await ipc.measureMessage({ conversation_id: this.chat.conversationId, text, ...this.sendChoices() });
    } catch (reason) {
      return ipc.toAppError(reason);
    }
  }

  /** Imports a LocalGLM conversation file and opens it; the error when it is refused. */
  async importConversation(json: string): Promise<ConversationSummary | AppError> {
    try {
      const summary = await ipc.importConversation(json);
      this.conversations = [summary, ...this.conversations.filter((c) => c.id !== summary.id)];
      await this.select(summary.id);
      return summary;
    } catch (reason) {
      return ipc.toAppError(reason);
    }
  }

  /** Opens the conversation of a search hit, on the branch holding it, its term highlighted. */
  async openHit(hit: SearchHit): Promise<void> {
    await this.select(hit.conversation_id);
    if (this.chat.conversationId !== hit.conversation_id || this.chat.loading) return;
    const id = hit.message_id;
    if (id !== null && !this.chat.messages.some((m) => m.id === id)) await this.selectVersion(id);
    if (this.chat.conversationId !== hit.conversation_id) return; // the user moved on
    this.highlight =
      id !== null && hit.field !== 'title'
        ? { conversationId: hit.conversation_id, messageId: id, term: hit.matched, field: hit.field }
        : null;
  }

  /** Shows another version of a message (and the branch below it). */
  async selectVersion(messageId: string): Promise<void> {
    const id = this.chat.conversationId;
    if (!id || this.generation) return;
    const seq = ++this.branchSeq;
    try {
      const view = await ipc.selectBranch(id, messageId);
      if (seq !== this.branchSeq) return; // a later switch answers for the screen
      this.chat = showBranch(this.chat, view);
      this.conversations = this.conversations.map((c) =>
        c.id === id ? { ...c, message_count: view.messages.length } : c,
      );
    } catch (reason) {
      this.showError(reason);
    }
  }

  async stop(): Promise<void> {
    const active = this.generation;
    if (!active || active.stopRequested) return;
    this.generation = { ...active, stopRequested: true };
    if (active.generationId) await this.requestStop(active.generationId);
  }

  private async requestStop(generationId: string): Promise<void> {
    try {
      await ipc.stopGeneration(generationId);
    } catch (reason) {
      this.showError(reason);
    }
  }

  private async start(conversationId: string, action: SendAction): Promise<boolean> {
    const before = this.chat.messages;
    this.highlight = null;
    const tempId = `local-${++this.tempSeq}`;
    this.chat = beginSend(this.chat, action, tempId, Date.now());
    this.generation = { conversationId, generationId: null, stopRequested: false };
    try {
      const handle = await ipc.sendMessage(
        {
          conversation_id: conversationId,
          action,
          ...this.sendChoices(),
          sampling: null,
        },
        (event) => this.onEvent(conversationId, event),
      );
      this.updateChatOf(conversationId, (chat) => attachHandle(chat, handle));
      this.learnGenerationId(conversationId, handle.generation_id);
      return true;
    } catch (reason) {
      this.updateChatOf(conversationId, (chat) => abortSend(chat, before));
      if (this.generation?.conversationId === conversationId) this.generation = null;
      this.showError(reason);
      return false;
    }
  }

  /** Stream deltas received and not yet applied, in order. */
  private deltas: { conversationId: string; event: GenerationEvent }[] = [];

  private onEvent(conversationId: string, event: GenerationEvent): void {
    if (event.event === 'reasoning' || event.event === 'content') {
      if (this.deltas.push({ conversationId, event }) === 1) this.schedule(() => this.applyDeltas());
      return;
    }
    this.applyDeltas();
    this.updateChatOf(conversationId, (chat) => applyEvent(chat, event, Date.now()));
    if (event.event === 'started') {
      this.learnGenerationId(conversationId, event.generation_id);
    } else if (event.event === 'done' || event.event === 'error') {
      if (this.generation?.conversationId === conversationId) this.generation = null;
      if (this.parked?.conversationId === conversationId) this.parked = null;
      if (event.event === 'error') this.showError(event.error);
      void this.refreshConversations();
    }
  }

  /** Applies the buffered deltas: each chat changes once, however many arrived. */
  private applyDeltas(): void {
    const deltas = this.deltas;
    if (deltas.length === 0) return;
    this.deltas = [];
    const now = Date.now();
    for (const id of new Set(deltas.map((d) => d.conversationId))) {
      const mine = deltas.filter((d) => d.conversationId === id);
      this.updateChatOf(id, (chat) => mine.reduce((c, d) => applyEvent(c, d.event, now), chat));
    }
  }

  /** Records the generation id and sends a Stop that was pressed before the id was known. */
  private learnGenerationId(conversationId: string, generationId: string): void {
    const active = this.generation;
    if (!active || active.conversationId !== conversationId || active.generationId) return;
    this.generation = { ...active, generationId };
    if (active.stopRequested) void this.requestStop(generationId);
  }

  private updateChatOf(conversationId: string, change: (chat: ChatState) => ChatState): void {
    if (this.chat.conversationId === conversationId) this.chat = change(this.chat);
    else if (this.parked?.conversationId === conversationId) this.parked = change(this.parked);
  }

  /** Keeps the chat in view alive while its generation runs and the user looks elsewhere. */
  private park(): void {
    const id = this.chat.conversationId;
    if (id && this.generation?.conversationId === id) this.parked = this.chat;
  }
}

function isModelError(error: AppError): boolean {
  return error.kind === 'model_missing' || error.kind === 'no_model' || error.kind === 'load_failed';
}

/** The one store of the app. */
export const app = new AppStore();
