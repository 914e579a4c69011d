// Deterministic UI cases in the real window on the scripted fake engine (LOCALGLM_ENGINE=scripted):
// reasoning pane, sanitized Markdown, copy buttons, regenerate, edit-and-resend, rename, delete.
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
