// Deterministic UI cases in the real window on the scripted fake engine (LOCALGLM_ENGINE=scripted):
// reasoning pane, sanitized Markdown, math, copy buttons, regenerate, edit-and-resend, rename,
// delete, keyboard shortcuts.
// In addition to, never instead of, the real-model test in chat.test.mjs.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ELEMENT, placeholderDataDir, startScripted } from "./webdriver.mjs";

const dataDir = placeholderDataDir("localglm-e2e-ui-");
let driver;
let s;

before(async () => {
  ({ driver, s } = await startScripted(dataDir));
});

after(async () => {
  await s?.close();
  await driver?.stop();
});

const count = (css) => `return document.querySelectorAll(${JSON.stringify(css)}).length;`;
const idle = `return document.querySelector('[data-testid=chat]')?.getAttribute('data-generating') === 'false';`;

async function send(text) {
  await s.type("[data-testid=composer]", text);
  await s.click("[data-testid=send]");
  await s.until(`return document.querySelector('[data-testid=chat]')?.getAttribute('data-generating') === 'true'
    || document.querySelectorAll('[data-testid=message-stats]').length > 0;`, { timeout: 10000, what: "started" });
  await s.until(idle, { timeout: 30000, what: "reply done" });
}

test("reasoning pane, sanitized markdown and copy buttons", async () => {
  await s.click("[data-testid=new-chat]");
  await s.until(`return !!document.querySelector('[data-testid=conversation-item][data-active=true]');`);
  await send('Hi <img src=x onerror="window.__pwned=1"> [x](javascript:window.__pwned=2)');
  await s.waitFor("[data-testid=message][data-role=assistant] [data-testid=message-stats]");

  const reasoning = await s.exec(
    `return document.querySelector('[data-testid=message][data-role=assistant] [data-testid=reasoning]')?.textContent || '';`,
  );
  assert.match(reasoning, /The user wrote/);
  const content = await s.exec(
    `return document.querySelector('[data-testid=message][data-role=assistant] [data-testid=message-content]').innerHTML;`,
  );
  assert.doesNotMatch(content, /The user wrote/, "reasoning never in the answer");
  assert.match(content, /<strong>/);
  assert.equal(await s.exec(`return window.__pwned === undefined;`), true, "no script ran");
  assert.equal(await s.exec(count("[onerror]")), 0);
  assert.equal(await s.exec(count('a[href^="javascript"]')), 0);
  assert.ok((await s.exec(count("[data-testid=copy-code]"))) >= 1, "code blocks get a copy button");
  await s.screenshot("e2e-scripted-reasoning.png");
});

test("math is typeset and code labelled, with no way to script or links through TeX", async () => {
  await s.click("[data-testid=new-chat]");
  await s.until(`return document.querySelectorAll('[data-testid=message]').length === 0;`);
  await send(
    "Math $e^{i\\pi}+1=0$ and \\(x^2\\) and $\\href{javascript:window.__pwned=3}{x}$ and $\\htmlClass{evil}{y}$",
  );
  const m = `[...document.querySelectorAll('[data-testid=message][data-role=assistant]')].pop()`;
  await s.until(`return ${m}?.querySelectorAll('.katex').length >= 4;`, { timeout: 10000, what: "typeset math" });
  const inMessage = (css) => s.exec(`return ${m}.querySelectorAll(${JSON.stringify(css)}).length;`);
  assert.equal(await inMessage('a[href^="javascript"], .evil, script, img'), 0);
  assert.equal(await s.exec(`return window.__pwned === undefined;`), true, "no script ran");
  // The echo's code block is labelled with its language.
  assert.equal(await s.exec(`return ${m}.querySelector('[data-testid=code-lang]')?.textContent;`), "text");
  await s.screenshot("e2e-math.png");
});

test("regenerate answers again; edit-and-resend shows the edited branch (earlier versions kept)", async () => {
  const firstReply = await s.exec(
    `return document.querySelector('[data-testid=message][data-role=assistant]').getAttribute('data-id');`,
  );
  await s.click("[data-testid=regenerate]");
  await s.until(
    `const m = document.querySelector('[data-testid=message][data-role=assistant]');
     return m && m.getAttribute('data-id') !== arguments[0] && m.querySelector('[data-testid=message-stats]');`,
    { timeout: 30000, what: "regenerated reply" },
    firstReply,
  );
  assert.equal(await s.exec(count("[data-testid=message]")), 2);

  await send("second question");
  assert.equal(await s.exec(count("[data-testid=message]")), 4);

  await s.click("[data-testid=message][data-role=user] [data-testid=edit]");
  const input = await s.waitFor("[data-testid=edit-input]");
  await s.exec(`const el = arguments[0]; el.value = ''; el.dispatchEvent(new Event('input', { bubbles: true }));`, { [ELEMENT]: input });
  await s.type("[data-testid=edit-input]", "edited question");
  await s.click("[data-testid=edit-submit]");
  await s.until(
    `const ms = document.querySelectorAll('[data-testid=message]');
     return ms.length === 2 && ms[1].querySelector('[data-testid=message-stats]')
       && ms[1].textContent.includes('edited question');`,
    { timeout: 30000, what: "edited and re-answered" },
  );
});

test("rename and delete conversations", async () => {
  await s.click("[data-testid=conversation-item][data-active=true] [data-testid=rename-conversation]");
  const input = await s.waitFor("[data-testid=rename-input]");
  await s.exec(`const el = arguments[0]; el.value = ''; el.dispatchEvent(new Event('input', { bubbles: true }));`, { [ELEMENT]: input });
  await s.type("[data-testid=rename-input]", "Renamed chat\uE007");
  await s.until(
    `return document.querySelector('[data-testid=conversation-item][data-active=true] [data-testid=conversation-title]')?.textContent.trim() === 'Renamed chat';`,
    { timeout: 10000, what: "renamed" },
  );
  const before = await s.exec(count("[data-testid=conversation-item]"));
  await s.click("[data-testid=conversation-item][data-active=true] [data-testid=delete-conversation]");
  await s.click("[data-testid=confirm-delete]");
  await s.until(`return document.querySelectorAll('[data-testid=conversation-item]').length === arguments[0];`, {
    timeout: 10000,
    what: "deleted",
  }, before - 1);
});

test("keyboard shortcuts: new chat, search, composer, settings, stop and regenerate", async () => {
  const CTRL = "\uE009";
  const SHIFT = "\uE008";
  const ESC = "\uE00C";
  const chord = async (...keys) => {
    const down = keys.map((value) => ({ type: "keyDown", value }));
    const up = [...keys].reverse().map((value) => ({ type: "keyUp", value }));
    await s.cmd("POST", "/actions", { actions: [{ type: "key", id: "keyboard", actions: [...down, ...up] }] });
  };
  const active = () => s.exec(`return document.activeElement?.getAttribute('data-testid') ?? '';`);
  const items = () => s.exec(count("[data-testid=conversation-item]"));

  const before = await items();
  await chord(CTRL, SHIFT, "o");
  await s.until(`return document.querySelectorAll('[data-testid=conversation-item]').length === arguments[0];`, {
    timeout: 10000,
    what: "a new chat",
  }, before + 1);

  await chord(CTRL, "k");
  assert.equal(await active(), "search-input");
  await chord(SHIFT, ESC);
  assert.equal(await active(), "composer");

  await chord(CTRL, ",");
  await s.waitFor("[data-testid=shortcuts]");
  assert.match(await s.exec(`return document.querySelector('[data-testid=shortcuts]').textContent;`), /Ctrl\+Shift\+R/);
  await chord(ESC);
  await s.until(`return !document.querySelector('[data-testid=settings-dialog]');`, { what: "settings closed" });

  // Esc stops the reply being written; Ctrl+Shift+R writes it again as a second version.
  await s.type("[data-testid=composer]", "a long answer please");
  await s.click("[data-testid=send]");
  await s.until(
    `return (document.querySelector('[data-testid=message][data-role=assistant] [data-testid=message-content]')?.textContent ?? '').includes('word5');`,
    { timeout: 20000, what: "the answer streaming" },
  );
  await chord(ESC);
  await s.until(idle, { timeout: 10000, what: "stopped by Esc" });
  const stopped = await s.exec(`return document.querySelector('[data-testid=message][data-role=assistant] [data-testid=message-content]')?.textContent ?? '';`);
  assert.ok(!stopped.includes("word399"), "stopped before the end");
  await chord(CTRL, SHIFT, "r");
  await s.until(`return document.querySelector('[data-testid=version-label]')?.textContent.trim() === '2/2';`, {
    timeout: 60000,
    what: "regenerated by Ctrl+Shift+R",
  });
  await s.until(idle, { timeout: 60000, what: "the second version done" });
});

test("files dropped on the composer: text attached with its token count, binary refused, overflow refused", async () => {
  await s.click("[data-testid=new-chat]");
  await s.until(`return document.querySelectorAll('[data-testid=message]').length === 0;`);
  // A real drop event carrying File objects, as the webview gets from the desktop.
  const drop = (files) =>
    s.exec(
      `const dt = new DataTransfer();
       for (const [name, body, binary] of arguments[0]) {
         dt.items.add(new File([binary ? new Uint8Array(body) : body], name));
       }
       document.querySelector('[data-testid=composer-form]')
         .dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));`,
      files,
    );
  await drop([
    ["main.rs", "fn main() {\n    println!(\"hi\");\n}\n", false],
    ["logo.png", [0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 13], true],
  ]);
  await s.waitFor("[data-testid=attachment-tokens]");
  assert.match(await s.exec(`return document.querySelector('[data-testid=attachment]').textContent;`), /main\.rs/);
  assert.match(
    await s.exec(`return document.querySelector('[data-testid=attachment-refused]').textContent;`),
    /logo\.png is not a text file/,
  );
  assert.match(await s.exec(`return document.querySelector('[data-testid=attachment-tokens]').textContent;`), /\d+ tokens; with the conversation \d+ of 8,192/);
  await s.type("[data-testid=composer]", "Review this");
  await s.click("[data-testid=send]");
  await s.until(idle, { timeout: 30000, what: "the reply" });
  const sent = await s.exec(`return document.querySelector('[data-testid=message][data-role=user] [data-testid=message-content]').textContent;`);
  assert.equal(sent, 'Review this\n\n`main.rs`\n```rust\nfn main() {\n    println!("hi");\n}\n```');
  assert.equal(await s.exec(count("[data-testid=attachment]")), 0);

  // More words than the scripted model's 8,192-token context: refused with the numbers.
  await drop([["huge.txt", "word ".repeat(9000), false]]);
  await s.waitFor("[data-testid=attachment-overflow]");
  assert.match(
    await s.exec(`return document.querySelector('[data-testid=attachment-overflow]').textContent;`),
    /takes [\d,]+ tokens, the model's context holds 8,192/,
  );
  assert.equal(await s.exec(`return document.querySelector('[data-testid=send]').disabled;`), true);
  await s.click("[data-testid=attachment-remove]");
  assert.equal(await s.exec(count("[data-testid=attachment-overflow]")), 0);
});
