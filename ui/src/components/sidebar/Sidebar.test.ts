import { fireEvent, render, screen, within } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import Sidebar from './Sidebar.svelte';

function setup() {
  const props = {
    conversations: [
      { id: 'c2', title: 'Second', updated_at_ms: 2, message_count: 2 },
      { id: 'c1', title: '', updated_at_ms: 1, message_count: 0 },
    ],
    activeId: 'c2',
    onNew: vi.fn(),
    onSelect: vi.fn(),
    onRename: vi.fn(),
    onDelete: vi.fn(),
  };
  render(Sidebar, props);
  return props;
}

describe('Sidebar', () => {
  it('lists conversations with the active one marked and untitled ones named', async () => {
    const props = setup();
    const items = screen.getAllByTestId('conversation-item');
    expect(items.map((i) => [i.dataset.id, i.dataset.active])).toEqual([
      ['c2', 'true'],
      ['c1', 'false'],
    ]);
    expect(within(items[1]).getByTestId('conversation-title')).toHaveTextContent('New chat');
    await fireEvent.click(within(items[1]).getByTestId('conversation-title'));
    expect(props.onSelect).toHaveBeenCalledWith('c1');
    await fireEvent.click(screen.getByTestId('new-chat'));
    expect(props.onNew).toHaveBeenCalledOnce();
  });

  it('renames inline: Enter commits, Escape cancels', async () => {
    const props = setup();
    const item = screen.getAllByTestId('conversation-item')[0];
    await fireEvent.click(within(item).getByTestId('rename-conversation'));
    let input = within(item).getByTestId('rename-input') as HTMLInputElement;
    expect(input.value).toBe('Second');
    await fireEvent.input(input, { target: { value: 'Renamed' } });
    await fireEvent.keyDown(input, { key: 'Enter' });
    expect(props.onRename).toHaveBeenCalledWith('c2', 'Renamed');

    await fireEvent.click(within(item).getByTestId('rename-conversation'));
    input = within(item).getByTestId('rename-input') as HTMLInputElement;
    await fireEvent.input(input, { target: { value: 'Nope' } });
    await fireEvent.keyDown(input, { key: 'Escape' });
    expect(props.onRename).toHaveBeenCalledTimes(1);
    expect(within(item).getByTestId('conversation-title')).toBeInTheDocument();
  });

  it('deletes only after confirmation', async () => {
    const props = setup();
    const item = screen.getAllByTestId('conversation-item')[1];
    await fireEvent.click(within(item).getByTestId('delete-conversation'));
    expect(props.onDelete).not.toHaveBeenCalled();
    await fireEvent.click(within(item).getByTestId('cancel-delete'));
    expect(within(item).getByTestId('delete-conversation')).toBeInTheDocument();
    await fireEvent.click(within(item).getByTestId('delete-conversation'));
    await fireEvent.click(within(item).getByTestId('confirm-delete'));
    expect(props.onDelete).toHaveBeenCalledWith('c1');
  });
});
