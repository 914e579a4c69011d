// Thinking controls and sampling presets in the real window, on the scripted engine (a thinking
// model whose template reads `enable_thinking` and `reasoning_effort` with levels High / Max):
// the preset and thinking switches change what is sent (read back from each reply's stats line,
// which the backend records), the reasoning pane streams, collapses when the answer starts and
// re-expands, user presets are created, exported and imported, and all of it survives a restart.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Session, startDriver, placeholderDataDir } from "./webdriver.mjs";

const dataDir = placeholderDataDir("localglm-e2e-presets-");
let driver;
let s;

const ready = `return document.querySelector('[data-testid=model-indicator]')?.getAttribute('data-state') === 'ready';`;
const idle = `return document.querySelector('[data-testid=chat]')?.getAttribute('data-generating') === 'false';`;
const replies = `return document.querySelectorAll('[data-testid=message][data-role=assistant] [data-testid=message-stats]').length;`;

async function open() {
  s = await Session.start(driver.url);
  await s.until(ready, { timeout: 60000, what: "scripted model ready" });
}

before(async () => {
  driver = await startDriver({ LOCALGLM_DATA_DIR: dataDir, LOCALGLM_ENGINE: "scripted" });
  await open();
});

after(async () => {
  await s?.close();
  await driver?.stop();
});

/** Picks the option of a select by its label. */
async function choose(css, label) {
  const value = await s.exec(
    `return [...document.querySelector(arguments[0]).options].find((o) => o.textContent.trim() === arguments[1])?.value ?? null;`,
    css,
    label,
  );
  assert.ok(value !== null, `no option ${label} in ${css}`);
  await s.setValue(css, value);
}

const chosen = (css) =>
  s.exec(`const el = document.querySelector(arguments[0]); return el.options[el.selectedIndex]?.textContent.trim() ?? null;`, css);

const attr = (css, name) =>
  s.exec(`return document.querySelector(arguments[0])?.getAttribute(arguments[1]) ?? null;`, css, name);

/** Sends `text` and waits for its reply; returns the reply's "sent with" text. */
async function send(text) {
  const before = await s.exec(replies);
  await s.type("[data-testid=composer]", text);
  await s.click("[data-testid=send]");
  await s.until(`return document.querySelectorAll('[data-testid=message][data-role=assistant] [data-testid=message-stats]').length > arguments[0];`,
    { timeout: 30000, what: `reply to ${text}` }, before);
  await s.until(idle, { timeout: 10000, what: "idle" });
  return lastReply();
}

function lastReply() {
  return s.exec(`const ms = document.querySelectorAll('[data-testid=message][data-role=assistant]');
    const m = ms[ms.length - 1];
    return {
      sent: m.querySelector('[data-testid=message-sent-with]')?.textContent.trim() ?? '',
      stats: m.querySelector('[data-testid=message-stats]')?.textContent ?? '',
      reasoning: m.querySelector('[data-testid=reasoning] .trace')?.textContent ?? null,
      label: m.querySelector('[data-testid=reasoning-label]')?.textContent.trim() ?? null,
      open: m.querySelector('[data-testid=reasoning]')?.getAttribute('data-open') ?? null,
    };`);
}

test("thinking on and off, effort, and presets change what is sent; the pane streams and collapses", async () => {
  await s.click("[data-testid=new-chat]");
  await s.until(`return !!document.querySelector('[data-testid=conversation-item][data-active=true]');`);
  assert.equal(await attr("[data-testid=preset-select]", "aria-label"), "Sampling preset");
  assert.equal(await chosen("[data-testid=preset-select]"), "General");
  assert.equal(await attr("[data-testid=think-toggle]", "aria-pressed"), "true");

  // A long thought: watch the pane stream open, then collapse when the answer starts.
  await s.type("[data-testid=composer]", "please ponder this");
  await s.click("[data-testid=send]");
  await s.until(
    `const r = document.querySelector('[data-testid=message][data-role=assistant] [data-testid=reasoning]');
     return r && r.getAttribute('data-phase') === 'live' && r.getAttribute('data-open') === 'true'
       && r.textContent.includes('step');`,
    { timeout: 10000, what: "reasoning streams into an open pane" },
  );
  await s.screenshot("e2e-presets-thinking-live.png");
  await s.until(idle, { timeout: 30000, what: "reply done" });
  let reply = await lastReply();
  assert.equal(reply.sent, "General · temp 1 · top-p 0.95 · thinking on");
  assert.equal(reply.open, "false", "collapsed once the answer started");
  assert.match(reply.label, /^Thought for \d+ s · \d+ tokens$/);
  assert.match(reply.stats, /\(\d+ reasoning\)/);
  await s.click("[data-testid=message][data-role=assistant] [data-testid=reasoning] summary");
  assert.equal((await lastReply()).open, "true", "re-expands on click");

  // SWE-Bench Pro, thinking off: no reasoning at all.
  await choose("[data-testid=preset-select]", "SWE-Bench Pro");
  await s.click("[data-testid=think-toggle]");
  assert.equal(await attr("[data-testid=think-toggle]", "aria-pressed"), "false");
  reply = await send("quick answer");
  assert.equal(reply.sent, "SWE-Bench Pro · temp 1 · top-p 1 · thinking off");
  assert.equal(reply.reasoning, null);

  // Thinking back on at Max effort, per message.
  await s.click("[data-testid=think-toggle]");
  await choose("[data-testid=effort-select]", "Max");
  reply = await send("hard question");
  assert.equal(reply.sent, "SWE-Bench Pro · temp 1 · top-p 1 · thinking max");
  assert.match(reply.reasoning, /Effort: max\./);
  await s.screenshot("e2e-presets-swe.png");
});

test("user presets: create in settings, send with one, export and import", async () => {
  await s.click("[data-testid=open-settings]");
  await s.waitFor("[data-testid=settings-dialog]");
  await s.click("[data-testid=preset-new]");
  await s.until(`return document.querySelector('[data-testid=preset-message]')?.textContent.includes('Created');`,
    { timeout: 10000, what: "preset created" });
  await s.setValue("[data-testid=preset-name]", "Careful");
  await s.setValue("[data-testid=preset-temperature]", "0.5");
  await s.setValue("[data-testid=preset-min-p]", "0.05");
  await s.click("[data-testid=preset-save]");
  await s.until(`return document.querySelector('[data-testid=preset-message]')?.textContent === 'Saved “Careful”.';`,
    { timeout: 10000, what: "preset saved" });
  // A bad value is refused with the backend's reason, and nothing changes.
  await s.setValue("[data-testid=preset-top-p]", "3");
  await s.click("[data-testid=preset-save]");
  await s.until(`return document.querySelector('[data-testid=preset-message]')?.getAttribute('role') === 'alert';`,
    { timeout: 10000, what: "validation error shown" });
  assert.match(await s.exec(`return document.querySelector('[data-testid=preset-message]').textContent;`), /top_p/);

  await s.click("[data-testid=preset-export]");
  await s.waitFor("[data-testid=preset-export-text]");
  const file = await s.exec(`return document.querySelector('[data-testid=preset-export-text]').value;`);
  assert.equal(JSON.parse(file).presets[0].name, "Careful");
  await s.click("[data-testid=preset-import]");
  await s.setValue("[data-testid=preset-import-text]", file);
  await s.click("[data-testid=preset-import-confirm]");
  await s.until(`return document.querySelector('[data-testid=preset-message]')?.textContent.includes('Careful (2)');`,
    { timeout: 10000, what: "imported as a new preset" });
  await s.screenshot("e2e-presets-settings.png");
  await s.click("[data-testid=settings-close]");

  const options = await s.exec(`return [...document.querySelectorAll('[data-testid=preset-select] option')].map((o) => o.textContent);`);
  assert.deepEqual(options, ["General", "SWE-Bench Pro", "Careful", "Careful (2)"]);
  await choose("[data-testid=preset-select]", "Careful");
  const reply = await send("with my preset");
  assert.equal(reply.sent, "Careful · temp 0.5 · top-p 0.95 · min-p 0.05 · thinking on");
});

test("the keep-open setting, and everything after a restart", async () => {
  await s.click("[data-testid=open-settings]");
  await s.click("[data-testid=setting-collapse-reasoning]");
  await s.click("[data-testid=settings-close]");
  let reply = await send("keep it open");
  assert.equal(reply.open, "true", "the setting keeps the pane open after the answer");
  const conversation = await attr("[data-testid=chat]", "data-conversation-id");

  await s.close();
  await open();
  await s.click(`[data-testid=conversation-item][data-id="${conversation}"]`);
  await s.until(replies.replace("return ", "return 5 === "), { timeout: 10000, what: "five replies after restart" });
  const sent = await s.exec(`return [...document.querySelectorAll('[data-testid=message-sent-with]')].map((e) => e.textContent.trim());`);
  assert.deepEqual(sent, [
    "General · temp 1 · top-p 0.95 · thinking on",
    "SWE-Bench Pro · temp 1 · top-p 1 · thinking off",
    "SWE-Bench Pro · temp 1 · top-p 1 · thinking max",
    "Careful · temp 0.5 · top-p 0.95 · min-p 0.05 · thinking on",
    "Careful · temp 0.5 · top-p 0.95 · min-p 0.05 · thinking on",
  ]);
  const panes = await s.exec(`return [...document.querySelectorAll('[data-testid=reasoning]')].map((r) => ({
    open: r.getAttribute('data-open'), label: r.querySelector('[data-testid=reasoning-label]').textContent.trim() }));`);
  assert.equal(panes.length, 4, "the thinking-off reply has no pane");
  for (const p of panes) assert.match(p.label, /^Thought for \d+ s · \d+ tokens$/);
  // Keep-open is still the setting; the conversation's last preset is back in the composer.
  assert.ok(panes.every((p) => p.open === "true"));
  assert.equal(await chosen("[data-testid=preset-select]"), "Careful");
  await s.screenshot("e2e-presets-after-restart.png");

  // Collapse again: panes close and re-expand on click.
  await s.click("[data-testid=open-settings]");
  await s.click("[data-testid=setting-collapse-reasoning]");
  await s.click("[data-testid=settings-close]");
  await s.until(`return [...document.querySelectorAll('[data-testid=reasoning]')].every((r) => r.getAttribute('data-open') === 'false');`,
    { timeout: 5000, what: "collapsed by the setting" });
  await s.click("[data-testid=message][data-role=assistant] [data-testid=reasoning] summary");
  assert.equal(await attr("[data-testid=message][data-role=assistant] [data-testid=reasoning]", "data-open"), "true");
  reply = await lastReply();
  assert.equal(reply.sent, "Careful · temp 0.5 · top-p 0.95 · min-p 0.05 · thinking on");
});
