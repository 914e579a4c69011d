import { fireEvent, render, screen, within } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import type { DisplayMessage } from '../../lib/stores/chat';
import { stats } from '../../test/fixtures';
import Message from './Message.svelte';

function row(overrides: Partial<DisplayMessage> = {}): DisplayMessage {
  return {
    key: 'a1',
    id: 'a1',
    role: 'assistant',
    text: 'Use `ls`.',
    html: '<p>Use <code>ls</code>.</p><pre><code class="language-sh">ls -la\n</code></pre>',
    reasoning: 'The user wants to list files.',
    thinking: { phase: 'done', ms: 3_200 },
    stats: stats(),
    finishReason: 'stop',
    model: 'tiny',
    sentWith: null,
    streaming: false,
    optimistic: false,
    versions: [overrides.id ?? 'a1'],
    ...overrides,
  };
}

describe('Message', () => {
  it('renders the answer html, a collapsed reasoning pane and the stats line', () => {
    render(Message, { message: row() });
    const message = screen.getByTestId('message');
    expect(message).toHaveAttribute('data-role', 'assistant');
    expect(message).toHaveAttribute('data-id', 'a1');

    const content = screen.getByTestId('message-content');
    expect(content.querySelector('p code')?.textContent).toBe('ls');
    expect(content).not.toHaveTextContent('The user wants');

    const reasoning = screen.getByTestId('reasoning');
    expect(reasoning.tagName).toBe('DETAILS');
    expect(reasoning).not.toHaveAttribute('open');
    expect(reasoning).toHaveTextContent('Thought for 3 s');
    expect(reasoning).toHaveTextContent('The user wants to list files.');

    expect(screen.getByTestId('message-stats')).toHaveTextContent('TTFT 232 ms');
    expect(screen.getByTestId('message-stats')).toHaveTextContent('decode 23.5 tok/s');
  });

  it('adds a Copy button to code blocks that copies the code', async () => {
    const writeText = vi.fn().mockResolvedValue(undefined);
    Object.defineProperty(navigator, 'clipboard', { value: { writeText }, configurable: true });
    render(Message, { message: row() });
    const copy = within(screen.getByTestId('message-content')).getByTestId('copy-code');
    await fireEvent.click(copy);
    expect(writeText).toHaveBeenCalledWith('ls -la\n');
    expect(copy).toHaveTextContent('Copied');
  });

  it('marks a reply cut off by a closed app, with Retry on the last one', async () => {
    const onRegenerate = vi.fn();
    render(Message, { message: row({ finishReason: 'interrupted', stats: null }), canRegenerate: true, onRegenerate });
    expect(screen.getByTestId('interrupted')).toHaveTextContent('closed while this reply was being written');
    expect(screen.getByTestId('message-content').querySelector('p code')?.textContent).toBe('ls'); // the part that arrived
    await fireEvent.click(screen.getByTestId('retry'));
    expect(onRegenerate).toHaveBeenCalledOnce();
    expect(screen.getByTestId('message-stats')).toHaveTextContent('interrupted');
  });

  it('offers no Retry on an interrupted reply that is not the last', () => {
    render(Message, { message: row({ finishReason: 'interrupted' }), canRegenerate: false });
    expect(screen.getByTestId('interrupted')).toBeInTheDocument();
    expect(screen.queryByTestId('retry')).toBeNull();
  });

  it('shows the finish reason when the reply was stopped', () => {
    render(Message, { message: row({ finishReason: 'cancelled' }) });
    expect(screen.getByTestId('message-stats')).toHaveTextContent('stopped');
  });

  it('has no reasoning pane and no stats while streaming an answer without reasoning', () => {
    render(Message, { message: row({ reasoning: null, thinking: { phase: 'none' }, streaming: true, stats: null, finishReason: null }) });
    expect(screen.queryByTestId('reasoning')).toBeNull();
    expect(screen.queryByTestId('message-stats')).toBeNull();
    expect(screen.queryByTestId('regenerate')).toBeNull();
  });

  it('shows Thinking… open while reasoning streams', () => {
    render(Message, {
      message: row({ html: '', text: '', thinking: { phase: 'live' }, streaming: true, stats: null, finishReason: null }),
    });
    const reasoning = screen.getByTestId('reasoning');
    expect(reasoning).toHaveAttribute('open');
    expect(reasoning).toHaveTextContent('Thinking…');
  });

  it('offers regenerate only when allowed', async () => {
    const onRegenerate = vi.fn();
    const { rerender } = render(Message, { message: row(), canRegenerate: false, onRegenerate });
    expect(screen.queryByTestId('regenerate')).toBeNull();
    await rerender({ message: row(), canRegenerate: true, onRegenerate });
    await fireEvent.click(screen.getByTestId('regenerate'));
    expect(onRegenerate).toHaveBeenCalledOnce();
  });

  it('renders user text as text and edits it inline', async () => {
    const onEdit = vi.fn();
    render(Message, {
      message: row({ key: 'u1', id: 'u1', role: 'user', text: '<b>hi</b>', html: '', reasoning: null, thinking: { phase: 'none' }, stats: null, finishReason: null }),
      canEdit: true,
      onEdit,
    });
    expect(screen.getByTestId('message-content').textContent).toBe('<b>hi</b>');
    await fireEvent.click(screen.getByTestId('edit'));
    const input = screen.getByTestId('edit-input') as HTMLTextAreaElement;
    expect(input.value).toBe('<b>hi</b>');
    await fireEvent.input(input, { target: { value: 'hello' } });
    await fireEvent.keyDown(input, { key: 'Enter' });
    expect(onEdit).toHaveBeenCalledWith('u1', 'hello');
    expect(screen.queryByTestId('edit-input')).toBeNull();
  });

  it('shows which version it is and switches to the others', async () => {
    const onVersion = vi.fn();
    const { rerender } = render(Message, {
      message: row({ id: 'a2', key: 'a2', versions: ['a1', 'a2', 'a3'] }),
      canSwitch: true,
      onVersion,
    });
    expect(screen.getByTestId('version-label')).toHaveTextContent('2/3');
    await fireEvent.click(screen.getByTestId('version-prev'));
    expect(onVersion).toHaveBeenLastCalledWith('a1');
    await fireEvent.click(screen.getByTestId('version-next'));
    expect(onVersion).toHaveBeenLastCalledWith('a3');

    // At the ends, and while a reply is written, the way out is disabled.
    await rerender({ message: row({ id: 'a3', key: 'a3', versions: ['a1', 'a2', 'a3'] }), canSwitch: true, onVersion });
    expect(screen.getByTestId('version-label')).toHaveTextContent('3/3');
    expect(screen.getByTestId('version-next')).toBeDisabled();
    expect(screen.getByTestId('version-prev')).toBeEnabled();
    await rerender({ message: row({ id: 'a3', key: 'a3', versions: ['a1', 'a2', 'a3'] }), canSwitch: false, onVersion });
    expect(screen.getByTestId('version-prev')).toBeDisabled();
  });

  it('shows the versions of an edited message, and none for a single version', () => {
    render(Message, {
      message: row({ role: 'user', id: 'u2', key: 'u2', text: 'edited', versions: ['u1', 'u2'] }),
      canSwitch: true,
    });
    expect(screen.getByTestId('version-label')).toHaveTextContent('2/2');
    expect(screen.getByTestId('version-next')).toBeDisabled();
  });

  it('has no version switcher for a message with one version', () => {
    render(Message, { message: row(), canSwitch: true });
    expect(screen.queryByTestId('versions')).toBeNull();
  });

  it('highlights a search hit in the answer', () => {
    render(Message, { message: row(), highlight: { term: 'LS', field: 'content' } });
    const marks = screen.getByTestId('message-content').querySelectorAll('mark');
    expect([...marks].map((m) => m.textContent)).toEqual(['ls', 'ls']);
  });

  it('opens the reasoning pane to show a hit in it', () => {
    render(Message, { message: row(), highlight: { term: 'files', field: 'reasoning' } });
    const pane = screen.getByTestId('reasoning');
    expect(pane).toHaveAttribute('open');
    expect(pane.querySelector('mark')).toHaveTextContent('files');
    expect(screen.getByTestId('message-content').querySelector('mark')).toBeNull();
  });
});
