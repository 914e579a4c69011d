// Bad input in the real window, real engine: no model installed, and a truncated model file.
// Each ends in a clear banner and a failed model indicator; the app keeps running.
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { Session, startDriver, writeSettings, scratchDir } from "./webdriver.mjs";

async function launch(prepare) {
  const dataDir = scratchDir("localglm-e2e-err-");
  prepare(dataDir);
  const driver = await startDriver({ LOCALGLM_DATA_DIR: dataDir, LOCALGLM_ENGINE: "mistralrs" });
  const s = await Session.start(driver.url);
  return { s, driver };
}

const failedBanner = `
  const ind = document.querySelector('[data-testid=model-indicator]');
  const banner = document.querySelector('[data-testid=error-banner]');
  return ind?.getAttribute('data-state') === 'failed' && banner
    ? { kind: banner.getAttribute('data-kind'), text: banner.textContent }
    : null;`;

test("no model installed: a model_missing banner, and the app still works", async () => {
  const { s, driver } = await launch(() => {});
  try {
    const banner = await s.until(failedBanner, { timeout: 30000, what: "model_missing banner" });
    assert.equal(banner.kind, "model_missing");
    assert.match(banner.text, /setup|README|npm run app/i);
    // Conversations still work without a model.
    await s.click("[data-testid=new-chat]");
    await s.until(`return document.querySelectorAll('[data-testid=conversation-item]').length === 1;`);
    await s.screenshot("e2e-model-missing.png");
  } finally {
    await s.close();
    await driver.stop();
  }
});

test("a truncated model file: a load_failed banner naming the file", async () => {
  const { s, driver } = await launch((dir) => {
    mkdirSync(join(dir, "models"), { recursive: true });
    const bad = join(dir, "models", "broken.gguf");
    // A GGUF header that stops in the middle of its metadata.
    const head = Buffer.alloc(24);
    head.write("GGUF", 0, "ascii");
    head.writeUInt32LE(3, 4);
    head.writeBigUInt64LE(10n, 8);
    head.writeBigUInt64LE(5n, 16);
    writeFileSync(bad, head);
    writeSettings(dir, { modelPath: bad });
  });
  try {
    const banner = await s.until(failedBanner, { timeout: 60000, what: "load_failed banner" });
    assert.equal(banner.kind, "load_failed");
    assert.match(banner.text, /broken\.gguf/);
  } finally {
    await s.close();
    await driver.stop();
  }
});
