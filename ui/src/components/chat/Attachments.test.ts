import { fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import Composer from './Composer.svelte';

function setup(measure = { message_tokens: 12, prompt_tokens: 40, context_length: 8192 }) {
  const onSend = vi.fn().mockResolvedValue(true);
  const onMeasure = vi.fn().mockResolvedValue(measure);
  render(Composer, { onSend, onStop: vi.fn(), onMeasure });
  const input = screen.getByTestId('attach-input') as HTMLInputElement;
  const attach = async (...files: File[]) => {
    Object.defineProperty(input, 'files', { value: files, configurable: true });
    await fireEvent.change(input);
  };
  return { onSend, onMeasure, attach, field: screen.getByTestId('composer') as HTMLTextAreaElement };
}

describe('attaching files', () => {
  it('shows each file with the tokens it takes, and sends them as fenced blocks', async () => {
    const { onSend, onMeasure, attach, field } = setup();
    await fireEvent.input(field, { target: { value: 'Review this' } });
    await attach(new File(['fn main() {}\n'], 'main.rs'));
    await waitFor(() => expect(screen.getByTestId('attachment-tokens')).toHaveTextContent('12 tokens; with the conversation 40 of 8,192'));
    expect(screen.getByTestId('attachment')).toHaveTextContent('main.rs');
    expect(onMeasure).toHaveBeenLastCalledWith('Review this\n\n`main.rs`\n```rust\nfn main() {}\n```');
    await fireEvent.click(screen.getByTestId('send'));
    expect(onSend).toHaveBeenCalledWith('Review this\n\n`main.rs`\n```rust\nfn main() {}\n```');
    expect(screen.queryByTestId('attachment')).toBeNull();
  });

  it('refuses binary files with the reason, and sends files alone', async () => {
    const { onSend, attach } = setup();
    await attach(new File([new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 0, 1])], 'a.out'), new File(['x = 1\n'], 'a.py'));
    await waitFor(() => expect(screen.getByTestId('attachment-refused')).toHaveTextContent('a.out is not a text file'));
    expect(screen.getAllByTestId('attachment')).toHaveLength(1);
    await fireEvent.click(screen.getByTestId('send'));
    expect(onSend).toHaveBeenCalledWith('`a.py`\n```python\nx = 1\n```');
  });

  it('refuses files that would overflow the context, with the numbers, until one is removed', async () => {
    const { onSend, attach } = setup({ message_tokens: 9000, prompt_tokens: 9100, context_length: 8192 });
    await attach(new File(['big\n'], 'big.txt'));
    await waitFor(() =>
      expect(screen.getByTestId('attachment-overflow')).toHaveTextContent(
        'the message with the conversation takes 9,100 tokens, the model\'s context holds 8,192',
      ),
    );
    expect(screen.getByTestId('send')).toBeDisabled();
    await fireEvent.click(screen.getByTestId('send'));
    expect(onSend).not.toHaveBeenCalled();
    await fireEvent.click(screen.getByTestId('attachment-remove'));
    expect(screen.queryByTestId('attachment-overflow')).toBeNull();
  });
});
