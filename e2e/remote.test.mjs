// A model on a server, in the real window: the app (real engine, real default model loaded)
// connects to a second, real `localglm serve` process over HTTP — a wrong key is refused with a
// clear message beside the form and the local model stays; the right key switches to the server, and chat works
// through it as with a local model (reasoning pane, answer, stats, Stop, Regenerate). After a
// restart the server is still the model; loading the local model switches back.
// (The serving process runs the scripted engine so its replies are known.)
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, openSync, symlinkSync } from "node:fs";
import { createConnection } from "node:net";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { ARTIFACTS, ELEMENT, ROOT, Session, appBinary, freePort, sleep, startDriver, writeSettings, scratchDir } from "./webdriver.mjs";

const dataDir = scratchDir("localglm-e2e-remote-");
let driver;
let server;
let serverUrl;

async function startServer() {
  const port = await freePort();
  // The server's request log goes to a file, not to this test's stderr: output a process
  // writes to a test file's stdio after the file has finished is held by node's test runner
  // (Node 20) until it exits, so a server that outlived its file could grow the runner's heap.
  mkdirSync(ARTIFACTS, { recursive: true });
  const log = openSync(join(ARTIFACTS, "remote-serve.log"), "a");
  server = spawn(join(dirname(appBinary()), "localglm"), ["serve", "--port", String(port), "--model", "/m/gpu-glm.gguf", "--api-key", "secret"], {
    env: { ...process.env, LOCALGLM_ENGINE: "scripted", LOCALGLM_DATA_DIR: dataDir },
    stdio: ["ignore", "ignore", log],
  });
  for (let i = 0; i < 100; i++) {
    const up = await new Promise((resolve) => {
      const c = createConnection({ port, host: "127.0.0.1" }, () => (c.end(), resolve(true)));
      c.on("error", () => resolve(false));
    });
    if (up) return `http://127.0.0.1:${port}/v1`;
    await sleep(100);
  }
  throw new Error("localglm serve did not start");
}

before(async () => {
  const model = execFileSync("python3", [join(ROOT, "scripts", "install_default_model.py"), "--print-path"], {
    env: { ...process.env, LOCALGLM_DATA_DIR: "" },
  }).toString().trim();
  assert.ok(existsSync(model), `default model missing at ${model}: run the setup first`);
  mkdirSync(join(dataDir, "models"), { recursive: true });
  symlinkSync(model, join(dataDir, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"));
  writeSettings(dataDir, { maxTokens: 256 });
  serverUrl = await startServer();
  driver = await startDriver({ LOCALGLM_DATA_DIR: dataDir });
});

after(async () => {
  await driver?.stop();
  if (server && server.exitCode === null && server.signalCode === null) {
    const exited = once(server, "exit");
    server.kill();
    const timer = setTimeout(() => server.kill("SIGKILL"), 2000);
    await exited;
    clearTimeout(timer);
  }
});

const indicator = `const el = document.querySelector('[data-testid=model-indicator]');
  return el ? [el.getAttribute('data-state'), el.textContent.replace(/\\s+/g, ' ').trim()] : null;`;
const idle = `return document.querySelector('[data-testid=chat]')?.getAttribute('data-generating') === 'false';`;
const generating = `return document.querySelector('[data-testid=chat]')?.getAttribute('data-generating') === 'true';`;
const last = (css) => `const m = [...document.querySelectorAll('[data-testid=message][data-role=assistant]')].pop();
  return m ? (m.querySelector('${css}')?.textContent || '') : '';`;

/** Clicks a control of the models dialog (scrolled into view first: the dialog scrolls). */
async function press(s, css) {
  const el = await s.waitFor(css);
  await s.exec(`arguments[0].scrollIntoView({ block: 'center' }); arguments[0].click();`, { [ELEMENT]: el });
}

async function readyAs(s, pattern, timeout = 120000) {
  await s.until(`const v = (function(){ ${indicator} })(); return !!v && v[0] === 'ready' && ${pattern}.test(v[1]);`, {
    timeout,
    what: `model ready as ${pattern}`,
  });
}

test("chat through a remote OpenAI-compatible server like a local model", async () => {
  let s = await Session.start(driver.url);
  try {
    await readyAs(s, /SmolLM2/);
    await s.click("[data-testid=open-models]");
    await s.waitFor("[data-testid=remote-servers]");

    // A wrong key: a clear message, nothing saved, the local model still loaded.
    await s.setValue("[data-testid=remote-name]", "GPU node");
    await s.setValue("[data-testid=remote-url]", serverUrl);
    await s.setValue("[data-testid=remote-key]", "wrong");
    await press(s, "[data-testid=remote-add]");
    await s.waitFor("[data-testid=remote-error]", { timeout: 15000 });
    const banner = await s.exec(`return document.querySelector('[data-testid=remote-error]').textContent;`);
    assert.match(banner, /Could not use the server GPU node/);
    assert.match(banner, /401/);
    assert.equal(await s.exec(`return document.querySelectorAll('[data-testid=remote-server]').length;`), 0);
    await readyAs(s, /SmolLM2/, 5000);

    // The right key: the server becomes the model and is listed as in use.
    await s.setValue("[data-testid=remote-key]", "secret");
    await press(s, "[data-testid=remote-add]");
    await readyAs(s, /GPU node · gpu-glm/, 15000);
    await s.until(`return document.querySelector('[data-testid=remote-server]')?.getAttribute('data-active') === 'true';`, {
      timeout: 5000,
      what: "server listed as in use",
    });
    assert.match((await s.exec(indicator))[1], /server/);
    await s.click("[data-testid=picker-close]");

    // Chat: reasoning in its pane, the answer apart, stats under it.
    await s.click("[data-testid=new-chat]");
    await s.type("[data-testid=composer]", "Hello there");
    await s.click("[data-testid=send]");
    await s.waitFor("[data-testid=message][data-role=assistant] [data-testid=message-stats]", { timeout: 30000 });
    await s.until(idle, { timeout: 5000, what: "idle after the reply" });
    assert.match(await s.exec(last("[data-testid=message-content]")), /You said: Hello there/);
    assert.doesNotMatch(await s.exec(last("[data-testid=message-content]")), /characters/);
    assert.match(await s.exec(last("[data-testid=reasoning]")), /The user wrote 11 characters/);
    assert.match(await s.exec(last("[data-testid=message-stats]")), /tok\/s/);

    // Regenerate answers again in place.
    await s.click("[data-testid=message][data-role=assistant] [data-testid=regenerate]");
    await s.until(generating, { timeout: 5000, what: "regenerating" }).catch(() => {});
    await s.until(idle, { timeout: 30000, what: "regenerated" });
    assert.equal(await s.exec(`return document.querySelectorAll('[data-testid=message]').length;`), 2);
    assert.match(await s.exec(last("[data-testid=message-content]")), /You said: Hello there/);

    // Stop a long answer while it streams; nothing arrives after.
    await s.type("[data-testid=composer]", "a long one");
    await s.click("[data-testid=send]");
    await s.until(`return (function(){ ${last("[data-testid=message-content]")} })().includes('word5');`, {
      timeout: 30000,
      what: "long answer streaming",
    });
    await s.click("[data-testid=stop]");
    await s.until(idle, { timeout: 5000, what: "stopped" });
    const stopped = await s.exec(last("[data-testid=message-content]"));
    await sleep(800);
    assert.equal(await s.exec(last("[data-testid=message-content]")), stopped);
    assert.doesNotMatch(stopped, /word399/);
    await s.screenshot("e2e-remote.png");
  } catch (e) {
    await s.screenshot("e2e-remote-failure.png").catch(() => {});
    throw e;
  } finally {
    await s.close();
  }

  // Restart: the server is still the model; loading the local one switches back.
  s = await Session.start(driver.url);
  try {
    await readyAs(s, /GPU node · gpu-glm/, 30000);
    await s.click("[data-testid=open-models]");
    await press(s, "[data-testid=library-model][data-name^=SmolLM2] [data-testid=library-load]");
    await readyAs(s, /SmolLM2/);
    await s.until(`return document.querySelector('[data-testid=remote-server]')?.getAttribute('data-active') === 'false';`, {
      timeout: 5000,
      what: "server no longer in use",
    });
  } catch (e) {
    await s.screenshot("e2e-remote-restart-failure.png").catch(() => {});
    throw e;
  } finally {
    await s.close();
  }
});
