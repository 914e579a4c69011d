import { fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { SearchHit } from '../../lib/bindings/SearchHit';

const searchConversations = vi.hoisted(() => vi.fn());
vi.mock('../../lib/ipc', async () => {
  const errors = await import('../../lib/ipc/errors');
  return { toAppError: errors.toAppError, searchConversations };
});

const { SearchStore } = await import('../../lib/stores/search.svelte');
const { default: Sidebar } = await import('./Sidebar.svelte');

const hit = (id: string, field: SearchHit['field'], before: string, matched: string, after: string): SearchHit => ({
  conversation_id: id,
  title: `Chat ${id}`,
  message_id: field === 'title' ? null : `m-${id}`,
  field,
  before,
  matched,
  after,
});

function setup() {
  const search = new SearchStore();
  const onOpenHit = vi.fn();
  render(Sidebar, {
    conversations: [{ id: 'c1', title: 'Paris trip', updated_at_ms: 1, message_count: 2 }],
    activeId: null,
    onNew: vi.fn(),
    onSelect: vi.fn(),
    onRename: vi.fn(),
    onDelete: vi.fn(),
    search,
    onOpenHit,
  });
  return { search, onOpenHit };
}

beforeEach(() => searchConversations.mockReset());

describe('search in the sidebar', () => {
  it('shows the hits of what was typed, highlighted, and opens the one clicked', async () => {
    searchConversations.mockResolvedValue([
      hit('c1', 'title', '', 'Paris', ' trip'),
      hit('c1', 'content', 'What to see in ', 'PARIS', '?'),
    ]);
    const { onOpenHit } = setup();
    await fireEvent.input(screen.getByTestId('search-input'), { target: { value: 'paris' } });
    await waitFor(() => expect(screen.getAllByTestId('search-hit')).toHaveLength(2));
    expect(searchConversations).toHaveBeenCalledTimes(1);
    expect(searchConversations).toHaveBeenLastCalledWith('paris', false);
    expect(screen.queryByTestId('conversation-item')).toBeNull();
    const second = screen.getAllByTestId('search-hit')[1];
    expect(second).toHaveTextContent('message: What to see in PARIS?');
    expect(second.querySelector('mark')).toHaveTextContent('PARIS');
    await fireEvent.click(second);
    expect(onOpenHit).toHaveBeenCalledWith(expect.objectContaining({ message_id: 'm-c1', field: 'content' }));

    // Reasoning too: searched again with it.
    await fireEvent.click(screen.getByTestId('search-reasoning'));
    expect(searchConversations).toHaveBeenLastCalledWith('paris', true);

    // Escape: back to the conversation list.
    await fireEvent.keyDown(screen.getByTestId('search-input'), { key: 'Escape' });
    await waitFor(() => expect(screen.getAllByTestId('conversation-item')).toHaveLength(1));
  });

  it('says when nothing matches, and shows a failure', async () => {
    searchConversations.mockResolvedValueOnce([]);
    const { search } = setup();
    await fireEvent.input(screen.getByTestId('search-input'), { target: { value: 'zzz' } });
    await waitFor(() => expect(screen.getByTestId('search-none')).toHaveTextContent('No matches.'));
    searchConversations.mockRejectedValueOnce({ kind: 'internal', message: 'disk on fire', detail: null });
    await search.run('zzz2');
    await waitFor(() => expect(screen.getByTestId('search-error')).toHaveTextContent('disk on fire'));
  });

  it('keeps the answer to the latest query when an older one arrives late', async () => {
    let releaseOld: (hits: SearchHit[]) => void = () => {};
    searchConversations
      .mockImplementationOnce(() => new Promise((resolve) => (releaseOld = resolve)))
      .mockResolvedValueOnce([hit('c2', 'content', '', 'new', '')]);
    const search = new SearchStore();
    const old = search.run('ol');
    await search.run('new');
    releaseOld([hit('c1', 'content', '', 'ol', '')]);
    await old;
    expect(search.hits.map((h) => h.conversation_id)).toEqual(['c2']);
    expect(search.searching).toBe(false);
  });
});
