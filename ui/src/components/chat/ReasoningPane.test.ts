import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import ReasoningPane from './ReasoningPane.svelte';

describe('ReasoningPane', () => {
  it('is open while thinking and collapses when the answer starts', async () => {
    const { rerender } = render(ReasoningPane, { text: 'hmm', thinking: { phase: 'live' } });
    const pane = screen.getByTestId('reasoning');
    expect(pane).toHaveAttribute('open');
    expect(pane).toHaveTextContent('Thinking…');
    await rerender({ text: 'hmm', thinking: { phase: 'done', ms: 2_000 } });
    expect(pane).not.toHaveAttribute('open');
    expect(pane).toHaveTextContent('Thought for 2 s');
  });

  it('stays open after completion when the user opened it', async () => {
    const { rerender } = render(ReasoningPane, { text: 'hmm', thinking: { phase: 'live' } });
    const pane = screen.getByTestId('reasoning');
    const summary = pane.querySelector('summary')!;
    await fireEvent.click(summary); // close
    expect(pane).not.toHaveAttribute('open');
    await fireEvent.click(summary); // open again: the user's choice now
    await rerender({ text: 'hmm', thinking: { phase: 'done', ms: 2_000 } });
    expect(pane).toHaveAttribute('open');
  });

  it('stays open after the answer starts when the setting says keep open, and counts tokens', async () => {
    const { rerender } = render(ReasoningPane, { text: 'hmm', thinking: { phase: 'live' }, collapseOnAnswer: false });
    const pane = screen.getByTestId('reasoning');
    await rerender({ text: 'hmm', thinking: { phase: 'done', ms: 2_000 }, collapseOnAnswer: false, tokens: 57 });
    expect(pane).toHaveAttribute('open');
    expect(pane).toHaveTextContent('Thought for 2 s · 57 tokens');
  });

  it('opens a finished pane on click', async () => {
    render(ReasoningPane, { text: 'hmm', thinking: { phase: 'done', ms: null } });
    const pane = screen.getByTestId('reasoning');
    expect(pane).not.toHaveAttribute('open');
    await fireEvent.click(pane.querySelector('summary')!);
    expect(pane).toHaveAttribute('open');
  });
});
