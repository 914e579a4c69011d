// Branches in the real window (scripted engine): a regenerated reply and an edited message keep
// the earlier versions, ‹ n/m › switches between them and everything after them, and the
// branches and the one shown survive a restart; search finds any branch; export and import.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, test } from "node:test";
import { ELEMENT, placeholderDataDir, startScripted } from "./webdriver.mjs";

const dataDir = placeholderDataDir("localglm-e2e-branches-");
let driver;
let s;

async function start() {
  ({ driver, s } = await startScripted(dataDir));
}

after(async () => {
  await s?.close();
  await driver?.stop();
});

/** The rows shown: [role, id, text, version label]. */
const rows = () =>
  s.exec(`return [...document.querySelectorAll('[data-testid=message]')].map((m) => [
    m.getAttribute('data-role'), m.getAttribute('data-id'),
    m.querySelector('[data-testid=message-content]')?.textContent.trim() ?? '',
    m.querySelector('[data-testid=version-label]')?.textContent.trim() ?? '']);`);

const idle = () =>
  s.until(
    `const c = document.querySelector('[data-testid=chat]');
     return c?.getAttribute('data-generating') === 'false'
       && !document.querySelector('[data-testid=message][data-streaming=true]');`,
    { timeout: 60000, what: "the reply done" },
  );

/** Clicks `testid` in the `index`-th message (negative: from the end). */
async function clickIn(index, testid) {
  await s.exec(
    `const ms = [...document.querySelectorAll('[data-testid=message]')];
     ms.at(arguments[0]).querySelector('[data-testid=' + arguments[1] + ']').click();`,
    index,
    testid,
  );
}

async function send(text) {
  await s.type("[data-testid=composer]", text);
  await s.click("[data-testid=send]");
  await s.until(`return document.querySelector('[data-testid=chat]')?.getAttribute('data-generating') === 'true';`);
  await idle();
}

test("regenerate and edit keep earlier versions; switching and a restart keep the branches", async () => {
  await start();
  await s.click("[data-testid=new-chat]");
  await s.until(`return !!document.querySelector('[data-testid=conversation-item][data-active=true]');`);
  await send("first question");
  await send("second question");
  const before = await rows();
  assert.equal(before.length, 4);
  assert.ok(before.every((r) => r[3] === ""), "one version each: no switcher");
  const firstReply = before[3][1];

  // Regenerate: the new reply is version 2/2; ‹ shows the first one again.
  await clickIn(-1, "regenerate");
  await s.until(`return document.querySelector('[data-testid=chat]')?.getAttribute('data-generating') === 'true';`);
  await idle();
  const regenerated = await rows();
  assert.equal(regenerated.length, 4);
  assert.notEqual(regenerated[3][1], firstReply);
  assert.equal(regenerated[3][3], "2/2");
  await clickIn(-1, "version-prev");
  await s.until(
    `const ms = document.querySelectorAll('[data-testid=message]');
     return ms[3]?.getAttribute('data-id') === arguments[0];`,
    { timeout: 10000, what: "the first reply shown again" },
    firstReply,
  );
  assert.equal((await rows())[3][3], "1/2");
  await s.screenshot("e2e-branches.png");

  // Edit the first message: a branch of its own, with its own answer.
  await clickIn(0, "edit");
  const input = await s.waitFor("[data-testid=edit-input]");
  await s.exec(`const el = arguments[0]; el.value = ''; el.dispatchEvent(new Event('input', { bubbles: true }));`, {
    [ELEMENT]: input,
  });
  await s.type("[data-testid=edit-input]", "edited question");
  await s.click("[data-testid=edit-submit]");
  await s.until(
    `const ms = document.querySelectorAll('[data-testid=message]');
     return ms.length === 2 && ms[1].querySelector('[data-testid=message-stats]')
       && ms[1].textContent.includes('edited question');`,
    { timeout: 60000, what: "edited and answered" },
  );
  const edited = await rows();
  assert.equal(edited[0][2], "edited question");
  assert.equal(edited[0][3], "2/2");

  // Restart: the edited branch is shown, and ‹ brings back the first branch as it was left,
  // its first reply included (not the newer regenerated one).
  await s.close();
  await driver.stop();
  await start();
  await s.click("[data-testid=conversation-item]");
  await s.until(`return document.querySelectorAll('[data-testid=message]').length === 2;`, {
    timeout: 20000,
    what: "the conversation after the restart",
  });
  assert.deepEqual(await rows(), edited);
  await clickIn(0, "version-prev");
  await s.until(`return document.querySelectorAll('[data-testid=message]').length === 4;`, {
    timeout: 10000,
    what: "the first branch",
  });
  const back = await rows();
  assert.equal(back[0][2], "first question");
  assert.equal(back[0][3], "1/2");
  assert.equal(back[2][2], "second question");
  assert.equal(back[3][1], firstReply);
  assert.equal(back[3][3], "1/2");

  // Sending continues the branch shown.
  await send("third question");
  const grown = await rows();
  assert.equal(grown.length, 6);
  assert.equal(grown[3][1], firstReply);
  assert.match(grown[5][2], /third question/);
});

test("search finds text on any branch and opens it there, highlighted", async () => {
  // A second conversation, so the search spans more than one.
  await s.click("[data-testid=new-chat]");
  await s.until(`return document.querySelectorAll('[data-testid=conversation-item]').length === 2;`);
  await send("something else entirely");

  await s.type("[data-testid=search-input]", "EDITED question");
  await s.until(`return document.querySelectorAll('[data-testid=search-hit]').length > 0;`, { what: "search hits" });
  const hits = await s.exec(
    `return [...document.querySelectorAll('[data-testid=search-hit]')].map((h) => [h.dataset.field, h.textContent.trim()]);`,
  );
  assert.ok(hits.every(([, text]) => /edited question/i.test(text)), JSON.stringify(hits));
  assert.equal(await s.exec(`return document.querySelectorAll('[data-testid=conversation-item]').length;`), 0);

  // The edited message is on a branch not shown: opening it shows that branch, the term marked.
  await s.click("[data-testid=search-hit][data-field=content]");
  await s.until(
    `const ms = document.querySelectorAll('[data-testid=message]');
     return ms.length === 2 && !!ms[0].querySelector('[data-testid=search-mark]');`,
    { timeout: 10000, what: "the hit opened on its branch" },
  );
  assert.equal(
    await s.exec(`return document.querySelector('[data-testid=search-mark]').textContent;`),
    "edited question",
  );
  assert.equal((await rows())[0][3], "2/2");
  await s.screenshot("e2e-search.png");

  // Escape: the conversation list again.
  await s.type("[data-testid=search-input]", "\uE00C");
  await s.until(`return document.querySelectorAll('[data-testid=conversation-item]').length === 2;`, {
    what: "the list back",
  });
});

test("export as Markdown and JSON; the JSON imports as a copy with its branches; a malformed file changes nothing", async () => {
  await s.click("[data-testid=conversation-item]:last-child [data-testid=conversation-title]");
  await s.until(`return document.querySelectorAll('[data-testid=message]').length === 2;`, { what: "the branched chat" });

  const exported = async (format) => {
    await s.click("[data-testid=export]");
    await s.click(`[data-testid=export-${format}]`);
    await s.until(`return !!document.querySelector('[data-testid=export-notice]')?.dataset.path;`, {
      what: `the ${format} export`,
    });
    const path = await s.exec(`return document.querySelector('[data-testid=export-notice]').dataset.path;`);
    await s.click("[data-testid=export-dismiss]");
    return path;
  };
  const md = readFileSync(await exported("markdown"), "utf8");
  assert.match(md, /^# edited question\n\n## You\n\nedited question\n\n## Assistant \(SmolLM2/);
  assert.match(md, /<details>\n<summary>Reasoning<\/summary>\n\nThe user wrote 15 characters\.\n\n<\/details>/);
  const jsonPath = await exported("json");
  assert.ok(jsonPath.endsWith(".json"), jsonPath);
  const json = readFileSync(jsonPath, "utf8");
  assert.equal(JSON.parse(json).conversation.messages.length, 9, "every branch");

  const count = () => s.exec(`return document.querySelectorAll('[data-testid=conversation-item]').length;`);
  const before = await count();
  await s.click("[data-testid=import-conversation]");
  await s.setValue("[data-testid=import-text]", json.slice(0, json.length / 2));
  await s.click("[data-testid=import-confirm]");
  await s.waitFor("[data-testid=import-error]");
  assert.match(await s.exec(`return document.querySelector('[data-testid=import-error]').textContent;`), /nothing was imported/);
  assert.equal(await count(), before);

  await s.setValue("[data-testid=import-text]", json);
  await s.click("[data-testid=import-confirm]");
  await s.until(`return document.querySelectorAll('[data-testid=conversation-item]').length === arguments[0];`, {
    what: "the imported chat listed",
  }, before + 1);
  await s.until(`return document.querySelectorAll('[data-testid=message]').length === 2;`, { what: "the copy opened" });
  const copy = await rows();
  assert.equal(copy[0][2], "edited question");
  assert.equal(copy[0][3], "2/2");
  await clickIn(0, "version-prev");
  await s.until(`return document.querySelectorAll('[data-testid=message]').length === 6;`, {
    what: "the copy's other branch",
  });
});
