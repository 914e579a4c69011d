// The GLM-5.2 quant picker in the real window: a fit badge per quant for the chosen machine, and
// the plan of the selected quant updates when the context slider or the expert slider moves.
// (Scripted engine: no model needs to run for the planner.)
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Session, startDriver, placeholderDataDir } from "./webdriver.mjs";

const dataDir = placeholderDataDir("localglm-e2e-models-");
let driver;
let s;

before(async () => {
  driver = await startDriver({ LOCALGLM_DATA_DIR: dataDir, LOCALGLM_ENGINE: "scripted" });
  s = await Session.start(driver.url);
});

after(async () => {
  await s?.close();
  await driver?.stop();
});

const badges = `return [...document.querySelectorAll('[data-testid=quant-row]')].map((r) => [r.dataset.label,
  r.querySelector('[data-testid=fit-badge]').dataset.verdict]);`;
const text = (id) => s.exec(`return document.querySelector('[data-testid=${id}]')?.textContent.trim() ?? null;`);

test("quant picker: badges per machine, plan follows the sliders", async () => {
  await s.click("[data-testid=open-models]");
  await s.waitFor("[data-testid=quant-picker]");
  await s.until(`return document.querySelectorAll('[data-testid=fit-badge]').length === 16;`, { timeout: 10000, what: "16 badges" });

  // A 256 GB Mac at the default Metal limit: 1- and 2-bit fit with some experts in RAM.
  await s.setValue("[data-testid=picker-machine]", "1", ["change"]);
  await s.until(`return document.querySelector('[data-testid=picker-machine-description]')?.textContent.includes('256 GiB unified');`,
    { timeout: 10000, what: "mac described" });
  const mac = Object.fromEntries(await s.exec(badges));
  assert.equal(mac["UD-IQ1_S"], "gpu_cpu_experts");
  assert.equal(mac["UD-IQ2_M"], "gpu_cpu_experts");
  assert.equal(mac["BF16"], "no_fit");

  await s.click("[data-testid=quant-row][data-label=UD-IQ2_M] button");
  await s.waitFor("[data-testid=plan-summary]");
  await s.until(`return document.querySelector('[data-testid=plan-kv]')?.textContent.length > 0;`, { timeout: 10000, what: "plan shown" });
  const kv32 = await text("plan-kv");
  const layers32 = Number(await text("plan-cpu-moe"));
  assert.ok(layers32 > 0 && layers32 < 75, `${layers32}`);
  await s.screenshot("e2e-quant-picker.png");

  // 128 K of context: more KV, so more expert layers move to RAM.
  await s.setValue("[data-testid=picker-context]", "5", ["input"]);
  await s.until(`return document.querySelector('[data-testid=picker-context-label]')?.textContent === '128K';`, { timeout: 5000, what: "128K" });
  await s.until(`return document.querySelector('[data-testid=plan-kv]')?.textContent !== arguments[0];`, { timeout: 10000, what: "KV re-planned" }, kv32);
  const kv128 = await text("plan-kv");
  assert.ok(parseFloat(kv128) > parseFloat(kv32) * 3, `${kv32} → ${kv128}`);
  assert.ok(Number(await text("plan-cpu-moe")) > layers32);

  // The expert slider forces a placement; too few layers in RAM does not fit.
  await s.setValue("[data-testid=picker-cpu-moe]", "0", ["input"]);
  await s.until(`return document.querySelector('[data-testid=plan-detail]')?.dataset.verdict === 'no_fit';`, { timeout: 10000, what: "forced all-GPU does not fit" });
  assert.match(await text("plan-fixes"), /sysctl iogpu\.wired_limit_mb=/);

  // The 24 GB GPU + 256 GB PC at 32 K (at 128 K its GPU cannot hold the KV cache too: RAM only).
  await s.setValue("[data-testid=picker-machine]", "5", ["change"]);
  await s.until(`return [...document.querySelectorAll('[data-testid=fit-badge]')].some((b) => b.dataset.verdict === 'cpu');`,
    { timeout: 10000, what: "RAM only at 128K" });
  await s.setValue("[data-testid=picker-context]", "3", ["input"]);
  await s.until(`return document.querySelector('[data-testid=picker-machine-description]')?.textContent.includes('24 GiB VRAM');`,
    { timeout: 10000, what: "pc described" });
  await s.until(`return document.querySelector('[data-testid=quant-row][data-label=UD-IQ2_M] [data-testid=fit-badge]')?.dataset.verdict === 'gpu_cpu_experts';`,
    { timeout: 10000, what: "UD-IQ2_M fits the PC with experts in RAM at 32K" });
  const pc = Object.fromEntries(await s.exec(badges));
  assert.equal(pc["UD-IQ2_M"], "gpu_cpu_experts");
  await s.screenshot("e2e-quant-picker-pc.png");
  await s.click("[data-testid=picker-close]");
});
