// Downloading a GLM-5.2 quant from the picker in the real window, against a real local HTTP
// server in the Hugging Face layout (HF_ENDPOINT): progress, pause, resume, verification, the
// model in the library, and loading it.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, openSync, readFileSync, readSync, closeSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ELEMENT, ROOT, Session, startDriver, placeholderDataDir, scratchDir } from "./webdriver.mjs";

const dataDir = placeholderDataDir("localglm-e2e-dl-");
const hubDir = scratchDir("localglm-e2e-hub-");
const REL = "UD-IQ1_S/GLM-5.2-UD-IQ1_S.gguf";
let server;
let driver;
let s;

/** Serves `hubDir` with Range support, at 1 MB/s so the download can be watched and paused. */
function serve() {
  return new Promise((resolve) => {
    server = createServer((req, res) => {
      const path = join(hubDir, decodeURIComponent(req.url.split("?")[0]));
      let size;
      try {
        size = statSync(path).size;
      } catch {
        res.writeHead(404).end();
        return;
      }
      const m = /bytes=(\d+)-(\d*)/.exec(req.headers.range ?? "");
      const start = m ? Number(m[1]) : 0;
      const end = m && m[2] ? Number(m[2]) : size - 1;
      res.writeHead(m ? 206 : 200, {
        "content-length": end - start + 1,
        ...(m ? { "content-range": `bytes ${start}-${end}/${size}` } : {}),
      });
      const fd = openSync(path, "r");
      let pos = start;
      const tick = setInterval(() => {
        if (pos > end || res.destroyed) {
          clearInterval(tick);
          closeSync(fd);
          res.end();
          return;
        }
        const n = Math.min(64 * 1024, end - pos + 1);
        const buf = Buffer.alloc(n);
        readSync(fd, buf, 0, n, pos);
        pos += n;
        res.write(buf);
      }, 64);
    });
    server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${server.address().port}`));
  });
}

before(async () => {
  const file = join(hubDir, "unsloth/GLM-5.2-GGUF/resolve/main", REL);
  mkdirSync(join(file, ".."), { recursive: true });
  copyFileSync(join(ROOT, "crates/glm/tests/fixtures/tiny-q-iq2_xxs.gguf"), file);
  const bytes = readFileSync(file);
  const listing = [
    { type: "directory", path: "UD-IQ1_S" },
    { type: "file", path: REL, size: bytes.length,
      lfs: { oid: createHash("sha256").update(bytes).digest("hex"), size: bytes.length, pointerSize: 134 } },
  ];
  mkdirSync(join(hubDir, "api/models/unsloth/GLM-5.2-GGUF/tree"), { recursive: true });
  writeFileSync(join(hubDir, "api/models/unsloth/GLM-5.2-GGUF/tree/main"), JSON.stringify(listing));
  const url = await serve();
  driver = await startDriver({ LOCALGLM_DATA_DIR: dataDir, LOCALGLM_ENGINE: "scripted", HF_ENDPOINT: url });
  s = await Session.start(driver.url);
  await s.until(`return document.querySelector('[data-testid=model-indicator]')?.getAttribute('data-state') === 'ready';`,
    { timeout: 60000, what: "ready" });
});

after(async () => {
  await s?.close();
  await driver?.stop();
  server?.close();
});

const download = (attr) =>
  s.exec(`return document.querySelector('[data-testid=download]')?.getAttribute(arguments[0]) ?? null;`, attr);

test("download a quant from the picker: progress, pause, resume, verify, load", async () => {
  await s.click("[data-testid=open-models]");
  await s.click("[data-testid=quant-row][data-label=UD-IQ1_S] button");
  // The exact plan from the file's header on the hub (a range request), before downloading.
  await s.click("[data-testid=plan-exact]");
  await s.waitFor("[data-testid=plan-exact-note]", { timeout: 15000 });
  // The tiny stand-in file fits any machine (RAM only here; on the GPU where there is one).
  assert.match(await s.exec(`return document.querySelector('[data-testid=plan-detail]').dataset.verdict;`), /^(cpu|gpu)$/);
  await s.click("[data-testid=download-quant]");
  await s.until(`return document.querySelector('[data-testid=download]')?.dataset.status === 'running'
    && Number(document.querySelector('[data-testid=download] progress')?.value) > 0;`, { timeout: 15000, what: "progress" });
  await s.screenshot("e2e-download-running.png");
  await s.click("[data-testid=download-pause]");
  await s.until(`return document.querySelector('[data-testid=download]')?.dataset.status === 'paused';`, { timeout: 10000, what: "paused" });
  const pausedAt = Number(await s.exec(`return document.querySelector('[data-testid=download] progress').value;`));
  assert.ok(pausedAt > 0, `${pausedAt}`);
  assert.equal(await download("data-status"), "paused");
  await s.click("[data-testid=download-resume]");
  await s.until(`return document.querySelector('[data-testid=library-model][data-name="GLM-5.2-UD-IQ1_S"]') !== null;`,
    { timeout: 30000, what: "in the library" });
  assert.equal(await s.exec(`return document.querySelectorAll('[data-testid=download]').length;`), 0);
  await s.screenshot("e2e-download-done.png");
  await s.click(`[data-testid=library-model][data-name="GLM-5.2-UD-IQ1_S"] [data-testid=library-load]`);
  await s.until(`return document.querySelector('[data-testid=model-indicator]')?.textContent.includes('GLM-5.2-UD-IQ1_S')
    && document.querySelector('[data-testid=model-indicator]')?.getAttribute('data-state') === 'ready';`,
    { timeout: 20000, what: "loaded" });
  void ELEMENT;
});
