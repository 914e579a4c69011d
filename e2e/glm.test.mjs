// End to end in the real LocalGLM window on a GLM-5.x (`glm-dsa`) model, run by LocalGLM's own
// runtime: the tiny random-weight fixture (its text is gibberish; the flow is what is tested):
// the model loads, the Think toggle (and the effort levels High / Max) appear because its chat
// template reads `enable_thinking` and `reasoning_effort`,
// a reply streams with its reasoning in the reasoning pane, and with thinking off the reply
// starts as an answer (the template ends the prompt with an empty `<think></think>`).
// With the default device (Auto) the indicator says where it runs and why; with `device: "gpu"`
// in the settings the same model loads on the GPU (lavapipe's Vulkan on CI) and says so.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ROOT, Session, startDriver, writeSettings, scratchDir } from "./webdriver.mjs";

const dataDir = scratchDir("localglm-e2e-glm-");
const model = join(ROOT, "crates", "glm", "tests", "fixtures", "tiny-f32.gguf");
let driver;

before(async () => {
  // A fixed seed makes the gibberish reproducible.
  writeSettings(dataDir, { maxTokens: 24, modelPath: model, seed: 11 });
  driver = await startDriver({ LOCALGLM_DATA_DIR: dataDir, LOCALGLM_ENGINE: "" });
});

after(async () => {
  await driver?.stop();
});

const idle = `return document.querySelector('[data-testid=chat]')?.getAttribute('data-generating') === 'false';`;
const lastAssistant = `const m = [...document.querySelectorAll('[data-testid=message][data-role=assistant]')].pop();
  if (!m) return null;
  const r = m.querySelector('[data-testid=reasoning]');
  return {
    content: m.querySelector('[data-testid=message-content]')?.textContent || '',
    reasoning: r ? r.textContent : null,
    stats: !!m.querySelector('[data-testid=message-stats]'),
  };`;

async function reply(s, text, count) {
  await s.type("[data-testid=composer]", text);
  await s.click("[data-testid=send]");
  await s.until(
    `return document.querySelectorAll('[data-testid=message][data-role=assistant] [data-testid=message-stats]').length >= ${count};`,
    { timeout: 60000, what: `reply ${count} done` },
  );
  await s.until(idle, { timeout: 5000, what: "idle" });
  return s.exec(lastAssistant);
}

test("a glm-dsa model chats in the window, thinking on and off", async () => {
  const s = await Session.start(driver.url);
  try {
    await s.until(
      `return document.querySelector('[data-testid=model-indicator]')?.getAttribute('data-state') === 'ready';`,
      { timeout: 60000, what: "GLM model ready" },
    );
    const indicator = await s.exec(`return document.querySelector('[data-testid=model-indicator]').textContent;`);
    assert.match(indicator, /tiny-f32/);
    // The default device is Auto: a software adapter (lavapipe) is never picked on its own, so
    // the model runs on the CPU and the indicator says why (a real GPU would be chosen).
    const placement = await s.exec(
      `return document.querySelector('[data-testid=model-placement]')?.textContent ?? null;`,
    );
    assert.match(placement ?? "", /^(CPU \(Auto: .+\)|GPU · .+)$/, `placement: ${placement}`);

    // The template reads enable_thinking, so the toggle is there, on by default.
    await s.waitFor("[data-testid=think-toggle]");
    assert.equal(
      await s.exec(`return document.querySelector('[data-testid=think-toggle]').getAttribute('aria-pressed');`),
      "true",
    );
    await s.click("[data-testid=new-chat]");

    // Thinking on: the prompt ends inside <think>, so the reply opens with reasoning.
    const first = await reply(s, "Hello GLM", 1);
    assert.ok(first.stats);
    assert.ok(first.reasoning !== null && first.reasoning.length > 0, JSON.stringify(first));
    await s.screenshot("glm-thinking-on.png");

    // The template distinguishes reasoning_effort 'high' (and renders Max otherwise): the
    // effort selector offers exactly those levels while thinking is on.
    const levels = await s.exec(
      `return [...document.querySelectorAll('[data-testid=effort-select] option')].map((o) => o.textContent);`,
    );
    assert.deepEqual(levels, ["Default effort", "High", "Max"]);

    // Thinking off: the reply starts as an answer.
    await s.click("[data-testid=think-toggle]");
    assert.equal(
      await s.exec(`return document.querySelector('[data-testid=think-toggle]').getAttribute('aria-pressed');`),
      "false",
    );
    assert.equal(await s.exec(`return document.querySelector('[data-testid=effort-select]') === null;`), true);
    const second = await reply(s, "Answer directly", 2);
    assert.ok(second.stats);
    assert.ok(second.content.length > 0, JSON.stringify(second));
    await s.screenshot("glm-thinking-off.png");
  } finally {
    await s.close();
  }
});

test("with device gpu, the glm-dsa model runs on the GPU and the indicator says so", async () => {
  // Settings are read at start: a window of its own, on a data dir whose settings ask for the GPU.
  const gpuDir = scratchDir("localglm-e2e-glm-gpu-");
  writeSettings(gpuDir, { maxTokens: 24, modelPath: model, seed: 11, extra: { device: "gpu" } });
  const gpuDriver = await startDriver({ LOCALGLM_DATA_DIR: gpuDir, LOCALGLM_ENGINE: "" });
  const s = await Session.start(gpuDriver.url);
  try {
    // A GPU load fails rather than fall back to the CPU: report the banner if it does.
    const loaded = await s.until(
      `const ind = document.querySelector('[data-testid=model-indicator]');
       const state = ind?.getAttribute('data-state');
       if (state !== 'ready' && state !== 'failed') return null;
       const banner = document.querySelector('[data-testid=error-banner]');
       return { state, text: ind.textContent, banner: banner ? banner.textContent : null };`,
      { timeout: 120000, what: "GLM model loaded on the GPU" },
    );
    assert.equal(loaded.state, "ready", JSON.stringify(loaded));
    assert.match(loaded.text, /tiny-f32/);
    const placement = await s.exec(
      `return document.querySelector('[data-testid=model-placement]')?.textContent ?? null;`,
    );
    assert.match(placement ?? "", /GPU/, `placement: ${placement}`);

    // The Settings dialog shows the saved device, and the experts field is enabled with it.
    await s.click("[data-testid=open-settings]");
    await s.waitFor("[data-testid=setting-device]");
    assert.deepEqual(
      await s.exec(`return [
        document.querySelector('[data-testid=setting-device]').value,
        document.querySelector('[data-testid=setting-cpu-moe]').disabled,
      ];`),
      ["gpu", false],
    );
    await s.click("[data-testid=settings-close]");

    await s.click("[data-testid=new-chat]");
    const answer = await reply(s, "Hello GPU", 1);
    assert.ok(answer.stats, JSON.stringify(answer));
    assert.ok(answer.content.length > 0 || (answer.reasoning ?? "").length > 0, JSON.stringify(answer));
    await s.screenshot("glm-gpu.png");
  } finally {
    await s.close();
    await gpuDriver.stop();
  }
});
