// The local API from the app's settings, in the real window: off by default; turned on with a
// port and a key it serves the loaded model to an HTTP client (models, a streamed chat with
// reasoning apart), refuses a wrong key, lists each request in the live log, is closed to other
// hosts, starts again with the app, and stops when turned off.
// (Scripted engine: replies are known; the server and the client are real.)
import assert from "node:assert/strict";
import { networkInterfaces } from "node:os";
import { createConnection } from "node:net";
import { after, before, test } from "node:test";
import { Session, freePort, placeholderDataDir, startDriver } from "./webdriver.mjs";

const dataDir = placeholderDataDir("localglm-e2e-api-");
let driver;
let port;

before(async () => {
  port = await freePort();
  driver = await startDriver({ LOCALGLM_DATA_DIR: dataDir, LOCALGLM_ENGINE: "scripted" });
});

after(async () => {
  await driver?.stop();
});

const api = (path, init = {}) => fetch(`http://127.0.0.1:${port}/v1${path}`, init);
const auth = (key) => ({ Authorization: `Bearer ${key}`, "Content-Type": "application/json" });

/** Whether a TCP connection to host:port opens. */
const reachable = (host) =>
  new Promise((resolve) => {
    const c = createConnection({ host, port, timeout: 2000 }, () => (c.end(), resolve(true)));
    c.on("error", () => resolve(false));
    c.on("timeout", () => (c.destroy(), resolve(false)));
  });

const status = `const el = document.querySelector('[data-testid=api-status]');
  return el ? [el.getAttribute('data-running'), el.textContent.trim()] : null;`;

test("local API: on from settings, served, logged, loopback only, back after a restart, off", async () => {
  let s = await Session.start(driver.url);
  try {
    await s.until(`return document.querySelector('[data-testid=model-indicator]')?.getAttribute('data-state') === 'ready';`, {
      timeout: 30000,
      what: "model ready",
    });
    await s.click("[data-testid=open-settings]");
    await s.waitFor("[data-testid=local-api]");
    assert.deepEqual(await s.exec(status), ["false", "Off"]);
    assert.equal(await s.exec(`return document.querySelector('[data-testid=api-enabled]').checked;`), false);
    assert.equal(await s.exec(`return document.querySelector('[data-testid=api-host]').value;`), "127.0.0.1");

    // On, with a port and a key.
    await s.exec(`const el = document.querySelector('[data-testid=api-enabled]'); el.click();`);
    await s.setValue("[data-testid=api-port]", String(port));
    await s.setValue("[data-testid=api-key]", "e2e-key");
    await s.click("[data-testid=api-apply]");
    await s.until(`const v = (function(){ ${status} })(); return v && v[0] === 'true';`, { timeout: 10000, what: "API running" });
    assert.match((await s.exec(status))[1], new RegExp(`http://127\\.0\\.0\\.1:${port}/v1`));
    const curl = await s.exec(`return document.querySelector('[data-testid=api-example-curl]').textContent;`);
    assert.match(curl, new RegExp(`127\\.0\\.0\\.1:${port}/v1/chat/completions`));
    assert.match(curl, /Bearer e2e-key/);

    // A real HTTP client: the model list, a wrong key, a streamed chat with reasoning apart.
    const models = await (await api("/models", { headers: auth("e2e-key") })).json();
    assert.equal(models.data[0].id, "SmolLM2-135M-Instruct.Q4_1");
    assert.equal((await api("/models", { headers: auth("nope") })).status, 401);
    const r = await api("/chat/completions", {
      method: "POST",
      headers: auth("e2e-key"),
      body: JSON.stringify({ messages: [{ role: "user", content: "hello" }], stream: true }),
    });
    assert.equal(r.status, 200);
    const events = (await r.text()).split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6));
    assert.equal(events.at(-1), "[DONE]");
    const deltas = events.slice(0, -1).map((e) => JSON.parse(e).choices[0].delta);
    const reasoning = deltas.map((d) => d.reasoning_content ?? "").join("");
    const content = deltas.map((d) => d.content ?? "").join("");
    assert.equal(reasoning, "The user wrote 5 characters.");
    assert.match(content, /^You said: \*\*hello\*\*/);

    // A coding agent's request (Anthropic Messages, its own model name, x-api-key), and the
    // setup the settings show for it.
    const m = await fetch(`http://127.0.0.1:${port}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": "e2e-key", "anthropic-version": "2023-06-01", "Content-Type": "application/json" },
      body: JSON.stringify({ model: "claude-sonnet-4-5", max_tokens: 64, messages: [{ role: "user", content: "hi agent" }] }),
    });
    assert.equal(m.status, 200);
    const message = await m.json();
    assert.deepEqual(message.content.map((b) => b.type), ["thinking", "text"]);
    assert.match(message.content[1].text, /^You said: \*\*hi agent\*\*/);
    const claude = JSON.parse(await s.exec(`return document.querySelector('[data-testid=api-example-claude-code]').textContent;`));
    assert.equal(claude.env.ANTHROPIC_BASE_URL, `http://127.0.0.1:${port}`);
    assert.equal(claude.env.ANTHROPIC_AUTH_TOKEN, "e2e-key");
    assert.equal(claude.env.ANTHROPIC_MODEL, "SmolLM2-135M-Instruct.Q4_1");
    const codex = await s.exec(`return document.querySelector('[data-testid=api-example-codex]').textContent;`);
    assert.match(codex, new RegExp(`base_url = "http://127\\.0\\.0\\.1:${port}/v1"`));

    // Each request in the live log, newest first, with the agent's model mapping.
    await s.until(`return document.querySelectorAll('[data-testid=api-log-row]').length >= 4;`, {
      timeout: 10000,
      what: "four log rows",
    });
    const rows = await s.exec(`return [...document.querySelectorAll('[data-testid=api-log-row]')].map((r) => r.textContent);`);
    assert.match(rows[0], /POST \/v1\/messages\s*claude-sonnet-4-5 → SmolLM2-135M-Instruct\.Q4_1\s*200/);
    assert.match(rows[1], /POST \/v1\/chat\/completions\s*200/);
    assert.match(rows[2], /GET \/v1\/models\s*401/);
    assert.match(rows[3], /GET \/v1\/models\s*200/);

    // Closed to other hosts: the port answers on loopback only.
    const external = Object.values(networkInterfaces()).flat().find((a) => a && a.family === "IPv4" && !a.internal);
    if (external) {
      assert.equal(await reachable(external.address), false, `reachable at ${external.address}:${port}`);
    } else {
      console.log("# no non-loopback IPv4 address here: the other-host check is skipped");
    }
    assert.equal(await reachable("127.0.0.1"), true);
    await s.screenshot("e2e-api.png");
  } catch (e) {
    await s.screenshot("e2e-api-failure.png").catch(() => {});
    throw e;
  } finally {
    await s.close();
  }

  // Restart: the API starts with the app; turning it off stops it.
  s = await Session.start(driver.url);
  try {
    let up = false;
    for (let i = 0; i < 100 && !up; i++) {
      up = (await api("/models", { headers: auth("e2e-key") }).catch(() => null))?.status === 200;
      if (!up) await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(up, "the API is back after a restart");
    await s.click("[data-testid=open-settings]");
    await s.waitFor("[data-testid=local-api]");
    await s.until(`return document.querySelector('[data-testid=api-enabled]')?.checked === true;`, { timeout: 5000, what: "enabled kept" });
    await s.exec(`document.querySelector('[data-testid=api-enabled]').click();`);
    await s.click("[data-testid=api-apply]");
    await s.until(`const v = (function(){ ${status} })(); return v && v[0] === 'false';`, { timeout: 10000, what: "API off" });
    assert.equal(await reachable("127.0.0.1"), false);
  } finally {
    await s.close();
  }
});
