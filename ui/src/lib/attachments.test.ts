import { describe, expect, it } from 'vitest';
import { composeMessage, languageOf, MAX_FILE_BYTES, readAttachment } from './attachments';

describe('attachments', () => {
  it('write each file as a fenced block under its name, after the text', () => {
    const message = composeMessage('Review these:', [
      { name: 'main.rs', text: 'fn main() {}\n', bytes: 13 },
      { name: 'notes', text: 'no newline', bytes: 10 },
    ]);
    expect(message).toBe('Review these:\n\n`main.rs`\n```rust\nfn main() {}\n```\n\n`notes`\n```\nno newline\n```');
    expect(composeMessage('', [{ name: 'a.py', text: 'x = 1\n', bytes: 6 }])).toBe('`a.py`\n```python\nx = 1\n```');
  });

  it('fence a file that holds fences with a longer one', () => {
    const md = 'Text\n```js\nx\n```\n````\ny\n````\n';
    const message = composeMessage('', [{ name: 'README.md', text: md, bytes: md.length }]);
    expect(message.startsWith('`README.md`\n`````markdown\n')).toBe(true);
    expect(message.endsWith('\n`````')).toBe(true);
  });

  it('know languages by extension and name', () => {
    expect(languageOf('App.TSX')).toBe('typescript');
    expect(languageOf('Dockerfile')).toBe('dockerfile');
    expect(languageOf('Cargo.toml')).toBe('toml');
    expect(languageOf('LICENSE')).toBe('');
  });

  it('read text, and refuse binary, non-UTF-8 and oversized files', async () => {
    const text = await readAttachment(new File(['héllo\n'], 'a.txt'));
    expect(text).toEqual({ name: 'a.txt', text: 'héllo\n', bytes: 7 });
    const png = await readAttachment(new File([new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 0, 1])], 'x.png'));
    expect(png).toBe('x.png is not a text file; attach text or code files.');
    const latin1 = await readAttachment(new File([new Uint8Array([0x63, 0x61, 0x66, 0xe9])], 'l.txt'));
    expect(latin1).toBe('l.txt is not a text file; attach text or code files.');
    const big = new File([new Uint8Array(MAX_FILE_BYTES + 1).fill(65)], 'big.log');
    expect(await readAttachment(big)).toBe('big.log is 4.0 MB; files over 4 MB are not attached.');
  });
});
