// A reply cut off by killing the app mid-answer (the scripted engine, in the real window): after
// the restart the conversation shows what had streamed, marked as interrupted, and Retry answers
// again (the interrupted reply kept as its first version).
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { placeholderDataDir, sleep, startScripted } from "./webdriver.mjs";

const dataDir = placeholderDataDir("localglm-e2e-interrupted-");
let driver;
let s;

async function start() {
  ({ driver, s } = await startScripted(dataDir));
}

after(async () => {
  await s?.close();
  await driver?.stop();
});

const answer = `const m = [...document.querySelectorAll('[data-testid=message][data-role=assistant]')].pop();
  return m ? m.querySelector('[data-testid=message-content]').textContent : '';`;

test("a reply cut off by killing the app is kept, marked interrupted, and Retry answers again", async () => {
  await start();
  await s.click("[data-testid=new-chat]");
  await s.until(`return !!document.querySelector('[data-testid=conversation-item][data-active=true]');`);
  await s.type("[data-testid=composer]", "a long one, please");
  await s.click("[data-testid=send]");
  await s.until(`return (function(){ ${answer} })().includes('word5');`, { what: "the reply streaming" });
  await sleep(1600); // the reply being written is kept on disk every second
  const streamed = await s.exec(answer);
  assert.equal(await s.exec(`return document.querySelector('[data-testid=chat]').getAttribute('data-generating');`), "true");

  // Killed mid-answer (SIGTERM to the app's process group; it has no handler), then started again.
  await driver.stop();
  await start();
  await s.click("[data-testid=conversation-item]");
  await s.waitFor("[data-testid=interrupted]");
  const kept = await s.exec(answer);
  assert.ok(kept.startsWith("You said: a long one, please"), kept);
  // What was on disk: at most a second behind what was on screen.
  assert.ok(kept.includes("word5") && kept.length <= streamed.length + 300, `${kept.length} vs ${streamed.length}`);
  assert.match(
    await s.exec(`return document.querySelector('[data-testid=message-stats]')?.textContent || '';`),
    /interrupted/,
  );

  // Retry answers again; the interrupted reply stays as the first version.
  await s.click("[data-testid=retry]");
  await s.until(`return document.querySelector('[data-testid=chat]')?.getAttribute('data-generating') === 'true';`);
  await s.until(`return document.querySelector('[data-testid=chat]')?.getAttribute('data-generating') === 'false';`, {
    timeout: 60000,
    what: "the retried reply done",
  });
  assert.equal(await s.exec(`return document.querySelectorAll('[data-testid=interrupted]').length;`), 0);
  assert.equal(await s.exec(`return document.querySelectorAll('[data-testid=message][data-role=assistant]').length;`), 1);
  assert.match(await s.exec(answer), /word399/);
  assert.equal(await s.exec(`return document.querySelector('[data-testid=version-label]')?.textContent.trim();`), "2/2");
});
