// End to end in the real LocalGLM window, on the real default model (SmolLM2-135M-Instruct):
// create a conversation, stream a reply, stop a long reply, restart, find everything intact.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { execFileSync } from "node:child_process";
import { ROOT, Session, startDriver, writeSettings, scratchDir } from "./webdriver.mjs";

const dataDir = scratchDir("localglm-e2e-");
let driver;

function installedModel() {
  return execFileSync("python3", [join(ROOT, "scripts", "install_default_model.py"), "--print-path"], {
    env: { ...process.env, LOCALGLM_DATA_DIR: "" },
  })
    .toString()
    .trim();
}

before(async () => {
  // The isolated data directory gets the installed default model (linked, not copied).
  const model = installedModel();
  assert.ok(existsSync(model), `default model missing at ${model}: run the setup first`);
  mkdirSync(join(dataDir, "models"), { recursive: true });
  symlinkSync(model, join(dataDir, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"));
  // Replies capped at 256 tokens so a rambling 135M model cannot stretch the test, yet a long
  // reply still streams for seconds.
  writeSettings(dataDir, { maxTokens: 256 });
  driver = await startDriver({ LOCALGLM_DATA_DIR: dataDir, LOCALGLM_ENGINE: "mistralrs" });
});

after(async () => {
  await driver?.stop();
});

const generating = `return document.querySelector('[data-testid=chat]')?.getAttribute('data-generating') === 'true';`;
const idle = `return document.querySelector('[data-testid=chat]')?.getAttribute('data-generating') === 'false';`;
const lastAssistantText = `const m = [...document.querySelectorAll('[data-testid=message][data-role=assistant]')].pop();
  return m ? (m.querySelector('[data-testid=message-content]')?.textContent || '') : '';`;

async function waitReady(s) {
  await s.until(
    `return document.querySelector('[data-testid=model-indicator]')?.getAttribute('data-state') === 'ready';`,
    { timeout: 120000, what: "model ready" },
  );
}

test("chat with SmolLM2, stop a long reply, and find it all after a restart", async () => {
  let s = await Session.start(driver.url);
  let conversationId;
  try {
    await waitReady(s);
    await s.click("[data-testid=new-chat]");
    await s.until(`return !!document.querySelector('[data-testid=conversation-item][data-active=true]');`, {
      what: "new conversation selected",
    });
    conversationId = await s.exec(
      `return document.querySelector('[data-testid=conversation-item][data-active=true]').getAttribute('data-id');`,
    );

    // 1. A streamed, non-empty reply.
    await s.type("[data-testid=composer]", "What is the capital of France?");
    await s.click("[data-testid=send]");
    // Stats appear under a reply once it is done.
    await s.waitFor("[data-testid=message][data-role=assistant] [data-testid=message-stats]", { timeout: 180000 });
    await s.until(idle, { timeout: 5000, what: "idle after the reply" });
    const first = await s.exec(lastAssistantText);
    assert.ok(first.trim().length > 0);

    // 2. A long reply, stopped while it streams.
    await s.type("[data-testid=composer]", "Write a very long story about a dragon who learns to bake bread.");
    await s.click("[data-testid=send]");
    await s.until(`return (function(){ ${lastAssistantText} })().length > 40 && (function(){ ${generating} })();`, {
      timeout: 120000,
      what: "long reply streaming",
    });
    await s.click("[data-testid=stop]");
    const stoppedAt = Date.now();
    await s.until(idle, { timeout: 5000, what: "generation stopped" });
    assert.ok(Date.now() - stoppedAt < 5000);
    const afterStop = await s.exec(lastAssistantText);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await s.exec(lastAssistantText), afterStop, "no text arrives after Stop");
    const stats = await s.exec(
      `return [...document.querySelectorAll('[data-testid=message][data-role=assistant] [data-testid=message-stats]')].pop()?.textContent || '';`,
    );
    assert.match(stats, /tok\/s/);
    await s.screenshot("e2e-chat.png");
  } catch (e) {
    await s.screenshot("e2e-chat-failure.png").catch(() => {});
    throw e;
  } finally {
    await s.close();
  }

  // 3. Restart the app: the conversation and its four messages are intact.
  s = await Session.start(driver.url);
  try {
    await s.waitFor(`[data-testid=conversation-item][data-id="${conversationId}"]`, { timeout: 30000 });
    // The screenshot comes before the click on the (already open) conversation: after that
    // click WebKitWebDriver's screenshot stalled in 2 of 3 runs with the app's and the web
    // process's main loops idle and the DOM answering (session 12; cause not found).
    await s.until(`return document.querySelectorAll('[data-testid=message]').length === 4;`, {
      timeout: 15000,
      what: "the open conversation shown after restart",
    });
    await s.screenshot("e2e-after-restart.png");
    await s.click(`[data-testid=conversation-item][data-id="${conversationId}"]`);
    await s.until(`return document.querySelectorAll('[data-testid=message]').length === 4;`, {
      timeout: 15000,
      what: "four messages after restart",
    });
    const roles = await s.exec(
      `return [...document.querySelectorAll('[data-testid=message]')].map(m => m.getAttribute('data-role'));`,
    );
    assert.deepEqual(roles, ["user", "assistant", "user", "assistant"]);
    const userText = await s.exec(
      `return document.querySelector('[data-testid=message][data-role=user] [data-testid=message-content]').textContent;`,
    );
    assert.match(userText, /capital of France/);
  } finally {
    await s.close();
  }
});
