// "Run with" in the real window, on the real default model (SmolLM2-135M-Instruct) and the
// automatic engine: the model loads on LocalGLM's runtime; choosing mistral.rs for it in the
// library reloads it there at once, and the choice is kept in settings.json under its file name.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { execFileSync } from "node:child_process";
import { ROOT, Session, startDriver, writeSettings, scratchDir } from "./webdriver.mjs";

const dataDir = scratchDir("localglm-e2e-runtime-");
const file = "SmolLM2-135M-Instruct.Q4_1.gguf";
let driver;

before(async () => {
  const model = execFileSync("python3", [join(ROOT, "scripts", "install_default_model.py"), "--print-path"], {
    env: { ...process.env, LOCALGLM_DATA_DIR: "" },
  })
    .toString()
    .trim();
  assert.ok(existsSync(model), `default model missing at ${model}: run the setup first`);
  mkdirSync(join(dataDir, "models"), { recursive: true });
  symlinkSync(model, join(dataDir, "models", file));
  writeSettings(dataDir, { maxTokens: 16 });
  driver = await startDriver({ LOCALGLM_DATA_DIR: dataDir, LOCALGLM_ENGINE: "" });
});

after(async () => {
  await driver?.stop();
});

const readyOn = (backend) =>
  `const i = document.querySelector('[data-testid=model-indicator]');
   return i?.getAttribute('data-state') === 'ready' && i.title.split('\\n')[1]?.startsWith('${backend}');`;

test("a model's runtime is chosen in the library and it reloads there", async () => {
  const s = await Session.start(driver.url);
  try {
    await s.until(readyOn("localglm-glm"), { timeout: 120000, what: "ready on LocalGLM's runtime" });
    await s.click("[data-testid=open-models]");
    const select = `[data-testid=library-model][data-name^=SmolLM2] [data-testid=library-run-with]`;
    await s.waitFor(select, { timeout: 20000 });
    assert.equal(await s.exec(`return document.querySelector(arguments[0]).value;`, select), "localglm");
    await s.setValue(select, "mistralrs", ["change"]);
    await s.until(readyOn("mistralrs"), { timeout: 120000, what: "reloaded on mistral.rs" });
    const saved = JSON.parse(readFileSync(join(dataDir, "settings.json"), "utf8"));
    assert.equal(saved.settings.model_runtimes[file], "mistralrs");
    assert.equal(await s.exec(`return document.querySelector(arguments[0]).value;`, select), "mistralrs");
    await s.exec(`document.querySelector(arguments[0]).scrollIntoView({ block: "center" });`, select);
    await s.screenshot("e2e-run-with.png");
  } finally {
    await s.close();
  }
});
