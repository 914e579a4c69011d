//! The sidebar's search over every conversation (titles and messages of every branch, reasoning
//! when asked). Kept apart from the app store: it only reads.
//!
//! Invariant: `hits` always answers the latest query; an answer to an older one is dropped.

import type { SearchHit } from '../bindings/SearchHit';
import * as ipc from '../ipc';

export class SearchStore {
  query = $state('');
  /** Search the reasoning traces too. */
  reasoning = $state(false);
  hits = $state.raw<SearchHit[]>([]);
  searching = $state(false);
  /** Why the last search failed, if it did. */
  error = $state<string | null>(null);

  private seq = 0;

  /** A query is typed: the sidebar shows hits instead of the conversation list. */
  get active(): boolean {
    return this.query.trim() !== '';
  }

  async run(query: string = this.query, reasoning: boolean = this.reasoning): Promise<void> {
    this.query = query;
    this.reasoning = reasoning;
    const seq = ++this.seq;
    if (!query.trim()) {
      this.hits = [];
      this.searching = false;
      this.error = null;
      return;
    }
    this.searching = true;
    try {
      const hits = await ipc.searchConversations(query, reasoning);
      if (seq === this.seq) {
        this.hits = hits;
        this.error = null;
      }
    } catch (reason) {
      if (seq === this.seq) {
        this.hits = [];
        this.error = ipc.toAppError(reason).message;
      }
    } finally {
      if (seq === this.seq) this.searching = false;
    }
  }

  clear(): void {
    void this.run('');
  }
}

export const search = new SearchStore();
