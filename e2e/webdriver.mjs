// A small WebDriver client (W3C protocol over fetch) and a launcher for tauri-driver under Xvfb.
// Drives the real LocalGLM window: WebKitWebDriver inside tauri-driver, no mocks.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const ARTIFACTS = join(ROOT, "artifacts");
export const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";

export function appBinary() {
  const target = process.env.CARGO_TARGET_DIR || join(process.env.HOME, ".cache", "localglm-target");
  return join(target, "debug", "localglm-app");
}

/**
 * Writes `settings.json` as the app stores it (tauri-plugin-store file), with an optional model
 * path and a user preset "E2E" (General's values, replies capped at `maxTokens`) selected as the
 * default, so real-model replies stay short. `extra` adds (or overrides) top-level settings fields,
 * e.g. `{ device: "gpu" }`.
 */
export function writeSettings(dataDir, { maxTokens = 256, modelPath = null, seed = null, extra = {} } = {}) {
  const sampling = {
    temperature: 1.0, top_p: 0.95, top_k: null, max_tokens: maxTokens, seed, min_p: null, repetition_penalty: null,
  };
  const settings = {
    settings: {
      version: 1,
      sampling,
      system_prompt: "",
      model_path: modelPath,
      presets: [
        { id: "user-e2e", name: "E2E", sampling, enable_thinking: true, reasoning_effort: null, system_prompt: null },
      ],
      default_preset: "user-e2e",
      ...extra,
    },
  };
  writeFileSync(join(dataDir, "settings.json"), JSON.stringify(settings));
}

/** The temporary directories the tests made, removed when the test process exits. */
const scratch = [];
process.on("exit", () => {
  for (const dir of scratch) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // A directory something still writes to is left; the next run starts from fresh ones.
    }
  }
});

/** A fresh temporary directory named `prefix…`, removed when the test process exits. */
export function scratchDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}

/**
 * A fresh data directory whose library holds a placeholder default model (for tests on the
 * scripted engine, which loads any path).
 */
export function placeholderDataDir(prefix) {
  const dataDir = scratchDir(prefix);
  mkdirSync(join(dataDir, "models"), { recursive: true });
  writeFileSync(join(dataDir, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"), "GGUF");
  return dataDir;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts the app on the scripted engine with `dataDir` (and `env`), opens a session and waits
 * until its model is ready; returns { driver, s }.
 */
export async function startScripted(dataDir, env = {}) {
  const driver = await startDriver({ LOCALGLM_DATA_DIR: dataDir, LOCALGLM_ENGINE: "scripted", ...env });
  const s = await Session.start(driver.url);
  await s.until(
    `return document.querySelector('[data-testid=model-indicator]')?.getAttribute('data-state') === 'ready';`,
    { timeout: 60000, what: "scripted model ready" },
  );
  return { driver, s };
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

/** Starts tauri-driver under Xvfb with `env` for the app; returns { url, stop }. */
export async function startDriver(env) {
  const port = await freePort();
  const nativePort = await freePort();
  const child = spawn(
    "xvfb-run",
    ["-a", "--server-args=-screen 0 1280x900x24", "tauri-driver", "--port", String(port), "--native-port", String(nativePort)],
    {
      env: {
        ...process.env,
        WEBKIT_DISABLE_COMPOSITING_MODE: "1",
        WEBKIT_DISABLE_DMABUF_RENDERER: "1",
        LIBGL_ALWAYS_SOFTWARE: "1",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    },
  );
  // Only the tail is kept: tauri-driver can print a line per failed accept() in a tight loop,
  // and nothing reads more than the end.
  let log = "";
  const keep = (d) => (log = (log + d).slice(-65536));
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`${url}/status`);
      if (r.ok || r.status === 404 || r.status === 405) break;
    } catch {
      /* not up yet */
    }
    await sleep(100);
  }
  return {
    url,
    log: () => log,
    stop: async () => {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {
        /* already gone */
      }
      await sleep(300);
      child.stdout.destroy();
      child.stderr.destroy();
    },
  };
}

async function call(base, method, path, body) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) {
    const v = json.value || {};
    throw new Error(`${method} ${path}: ${res.status} ${v.error || ""} ${v.message || JSON.stringify(json)}`);
  }
  return json.value;
}

/** One WebDriver session = one running LocalGLM window. */
export class Session {
  static async start(driverUrl) {
    const value = await call(driverUrl, "POST", "/session", {
      capabilities: { alwaysMatch: { "tauri:options": { application: appBinary() } } },
    });
    const s = new Session(driverUrl, value.sessionId);
    return s;
  }

  constructor(base, id) {
    this.base = base;
    this.id = id;
  }

  cmd(method, path, body) {
    return call(this.base, method, `/session/${this.id}${path}`, body);
  }

  async find(css) {
    const v = await this.cmd("POST", "/element", { using: "css selector", value: css });
    return v[ELEMENT];
  }

  async findAll(css) {
    const v = await this.cmd("POST", "/elements", { using: "css selector", value: css });
    return v.map((e) => e[ELEMENT]);
  }

  async click(css) {
    const el = await this.waitFor(css);
    // WebKitWebDriver does not scroll inside a scrolling dialog by itself: bring the element
    // to the middle of its scroll container first, as a user would.
    await this.exec(`arguments[0].scrollIntoView({ block: "center" });`, { [ELEMENT]: el });
    await this.cmd("POST", `/element/${el}/click`, {});
  }

  async type(css, text) {
    const el = await this.waitFor(css);
    await this.cmd("POST", `/element/${el}/value`, { text });
  }

  /** Runs a script in the page; `arguments` holds args. */
  exec(script, ...args) {
    return this.cmd("POST", "/execute/sync", { script, args });
  }

  /** Sets a form control's value the way a user's edit would: `events` fired in order. */
  async setValue(css, value, events = ["input", "change"]) {
    const el = await this.waitFor(css);
    await this.exec(
      `const el = arguments[0]; el.value = arguments[1];
       for (const e of arguments[2]) el.dispatchEvent(new Event(e, { bubbles: true }));`,
      { [ELEMENT]: el },
      value,
      events,
    );
  }

  /** Waits until `css` matches (and `pred(el)` holds, evaluated in the page if given). */
  async waitFor(css, { timeout = 30000, visible = false } = {}) {
    const end = Date.now() + timeout;
    let last;
    while (Date.now() < end) {
      try {
        const found = await this.exec(
          `const el = document.querySelector(arguments[0]);
           if (!el) return false;
           if (arguments[1]) { const r = el.getBoundingClientRect(); if (r.width === 0 && r.height === 0) return false; }
           return true;`,
          css,
          visible,
        );
        if (found) return await this.find(css);
      } catch (e) {
        last = e;
      }
      await sleep(100);
    }
    throw new Error(`timed out waiting for ${css}${last ? ` (${last.message})` : ""}`);
  }

  /** Polls `script` (returning a value) until it is truthy. */
  async until(script, { timeout = 60000, what = script } = {}, ...args) {
    const end = Date.now() + timeout;
    let v;
    while (Date.now() < end) {
      v = await this.exec(script, ...args);
      if (v) return v;
      await sleep(150);
    }
    throw new Error(`timed out: ${what}`);
  }

  async screenshot(name) {
    const b64 = await this.cmd("GET", "/screenshot");
    mkdirSync(ARTIFACTS, { recursive: true });
    const path = join(ARTIFACTS, name);
    writeFileSync(path, Buffer.from(b64, "base64"));
    return path;
  }

  async close() {
    try {
      await call(this.base, "DELETE", `/session/${this.id}`);
    } catch {
      /* the app may already be gone */
    }
  }
}
