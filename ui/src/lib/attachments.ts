//! Text and code files attached to a message: read, refused when binary or too large, and
//! written into the message as fenced code blocks under their names.

/** Larger files are refused before they are read whole (the context check comes after). */
export const MAX_FILE_BYTES = 4 * 1024 * 1024;
/** How much of a file is looked at for NUL bytes (binary content). */
const SNIFF_BYTES = 8192;

export interface Attachment {
  name: string;
  text: string;
  bytes: number;
}

const LANGUAGES: Record<string, string> = {
  rs: 'rust', py: 'python', js: 'javascript', mjs: 'javascript', cjs: 'javascript', ts: 'typescript',
  tsx: 'typescript', jsx: 'javascript', c: 'c', h: 'c', cc: 'cpp', cpp: 'cpp', hpp: 'cpp', cs: 'csharp',
  go: 'go', java: 'java', kt: 'kotlin', swift: 'swift', rb: 'ruby', php: 'php', lua: 'lua', sh: 'bash',
  bash: 'bash', zsh: 'bash', json: 'json', yaml: 'yaml', yml: 'yaml', toml: 'toml', ini: 'ini', sql: 'sql',
  html: 'html', xml: 'xml', svg: 'xml', css: 'css', md: 'markdown', tex: 'latex', diff: 'diff',
  patch: 'diff', dockerfile: 'dockerfile', makefile: 'makefile', svelte: 'html', vue: 'html',
};

/** The fence language for a file name (`''` when unknown). */
export function languageOf(name: string): string {
  const lower = name.toLowerCase();
  if (lower === 'dockerfile' || lower === 'makefile') return lower;
  const dot = lower.lastIndexOf('.');
  return dot === -1 ? '' : (LANGUAGES[lower.slice(dot + 1)] ?? '');
}

function bytesOf(file: Blob): Promise<ArrayBuffer> {
  if (typeof file.arrayBuffer === 'function') return file.arrayBuffer();
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result as ArrayBuffer);
    reader.onerror = () => reject(reader.error);
    reader.readAsArrayBuffer(file);
  });
}

/** A file's text, or why it is refused (binary, not UTF-8, too large). */
export async function readAttachment(file: File): Promise<Attachment | string> {
  if (file.size > MAX_FILE_BYTES) {
    return `${file.name} is ${(file.size / 1024 / 1024).toFixed(1)} MB; files over ${MAX_FILE_BYTES / 1024 / 1024} MB are not attached.`;
  }
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await bytesOf(file));
  } catch {
    return `${file.name} could not be read (a folder, or a file that is gone).`;
  }
  const binary = `${file.name} is not a text file; attach text or code files.`;
  if (bytes.subarray(0, SNIFF_BYTES).includes(0)) return binary;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return { name: file.name, text, bytes: file.size };
  } catch {
    return binary;
  }
}

/** The message as sent: the typed text, then each file as a fenced block under its name. */
export function composeMessage(text: string, files: readonly Attachment[]): string {
  const parts = text.trim() ? [text.trimEnd()] : [];
  for (const file of files) {
    const longest = Math.max(0, ...[...file.text.matchAll(/`+/g)].map((m) => m[0].length));
    const fence = '`'.repeat(Math.max(3, longest + 1));
    const body = file.text.endsWith('\n') ? file.text : `${file.text}\n`;
    parts.push(`\`${file.name}\`\n${fence}${languageOf(file.name)}\n${body}${fence}`);
  }
  return parts.join('\n\n');
}
