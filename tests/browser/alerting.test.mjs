// The dashboard's alerting pages end to end, in headless Debian Chromium
// driven by playwright-core, against the stack of `scripts/dev up` (which
// also runs the alert evaluator, creates the rule "demo: any location down"
// over env=demo and lets the job demo-broken open and resolve an incident).
//
// Covers: the incidents page lists the API's incidents, and demo-broken's
// resolved incident with its first failure and timeline; a rule created
// through the Alerting page's form is listed, edited and deleted (after a
// confirmation); a failure threshold of 500 is refused with the server's
// message beside the field; a silence created through the form is active,
// then ended; a job against the mock's /status/500 opens an incident that the
// job page shows and links to, which is acknowledged (with a comment) and
// then resolved through the UI, without a page reload; the incidents page at
// phone width. Screenshots go to UI_ARTIFACTS.
//
// Run by scripts/ui-test after dashboard.test.mjs:
//   node --test-reporter=spec alerting.test.mjs
// Settings (environment): MONITOR_URL (default http://127.0.0.1:8080),
// MOCK_URL (default http://127.0.0.1:8081), CHROMIUM_PATH, UI_ARTIFACTS.

import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

import { chromiumArgs, eventually, restAt } from "./support.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const serverUrl = (process.env.MONITOR_URL || "http://127.0.0.1:8080").replace(/\/$/, "");
const mockUrl = (process.env.MOCK_URL || "http://127.0.0.1:8081").replace(/\/$/, "");
const chromiumPath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const artifacts = process.env.UI_ARTIFACTS || path.join(root, "target/ui-artifacts");
/** The rule scripts/dev up creates over env=demo. */
const demoRule = "demo: any location down";

const suffix = randomBytes(4).toString("hex");
const ruleName = `ui-rule-${suffix}`;
const silenceComment = `ui-silence-${suffix}`;
const brokenJobName = `ui-broken-${suffix}`;
const rest = restAt(serverUrl);

const env = {
  /** @type {import("playwright-core").Browser | undefined} */
  browser: undefined,
  /** @type {import("playwright-core").Page | undefined} */
  page: undefined,
  /** What this run created, removed in after() if a test failed midway. */
  jobs: new Set(),
  rules: new Set(),
  silences: new Set(),
  console: [],
};

async function screenshot(page, name) {
  if (!page || page.isClosed()) return;
  try {
    await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
  } catch (err) {
    console.error(`screenshot ${name} failed: ${err.message}`);
  }
}

async function newPage(width = 1280, height = 900) {
  const context = await env.browser.newContext({ viewport: { width, height } });
  const page = await context.newPage();
  page.on("console", (msg) => {
    if (msg.type() === "error") env.console.push(`${page.url()}: ${msg.text()}`);
  });
  page.on("pageerror", (err) => env.console.push(`${page.url()}: uncaught ${err.message}`));
  return page;
}

/** The texts the aria-describedby of `locator` points at, joined. */
function described(locator) {
  return locator.evaluate((input) =>
    (input.getAttribute("aria-describedby") ?? "")
      .split(/\s+/)
      .map((id) => document.getElementById(id)?.textContent ?? "")
      .join(" | "),
  );
}

/** Goes to a page through the header's navigation. */
async function navigate(page, name) {
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name, exact: true }).click();
  await page.getByRole("heading", { level: 1, name }).waitFor({ timeout: 10_000 });
  assert.equal(await page.locator(`[data-nav=${name.toLowerCase()}]`).getAttribute("aria-current"), "page");
}

/** The job's id by exact name, through the API. */
async function jobIdOf(name) {
  const listed = await rest("GET", `/v1/jobs?nameContains=${encodeURIComponent(name)}`);
  return (listed.body.jobs ?? []).find((j) => j.name === name)?.id;
}

before(
  async () => {
    assert.ok(fs.existsSync(chromiumPath), `${chromiumPath} is missing: apt-get install chromium`);
    fs.mkdirSync(artifacts, { recursive: true });
    const rules = await rest("GET", "/v1/alert-rules?pageSize=1000");
    assert.equal(rules.status, 200, `the dev server at ${serverUrl} does not answer /v1/alert-rules: run scripts/dev up`);
    assert.ok(
      (rules.body.rules ?? []).some((r) => r.name === demoRule),
      `scripts/dev up should have created the rule "${demoRule}": ${JSON.stringify(rules.body)}`,
    );
    env.browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: chromiumArgs, timeout: 60_000 });
    env.page = await newPage();
  },
  { timeout: 90_000 },
);

after(
  async () => {
    if (env.console.length) fs.writeFileSync(path.join(artifacts, "alerting-browser-console.txt"), `${env.console.join("\n")}\n`);
    await env.browser?.close().catch((err) => console.error(`closing Chromium: ${err.message}`));
    const clean = async (route) => rest("DELETE", route).catch((err) => console.error(`cleaning up ${route}: ${err.message}`));
    for (const id of env.jobs) await clean(`/v1/jobs/${id}`);
    for (const id of env.rules) await clean(`/v1/alert-rules/${id}`);
    for (const id of env.silences) await clean(`/v1/silences/${id}`);
  },
  { timeout: 30_000 },
);

test("the incidents page lists the API's incidents, and demo-broken's resolved one with its timeline", async () => {
  const page = env.page;
  await page.goto(`${serverUrl}/ui/`);
  await navigate(page, "Incidents");
  const api = await rest("GET", "/v1/incidents?pageSize=50");
  assert.equal(api.status, 200, `GET /v1/incidents: ${JSON.stringify(api.body)}`);
  const total = Number(api.body.totalSize ?? 0);
  assert.ok(total >= 1, "scripts/dev up left at least demo-broken's incident");
  // The first page in the API's order (open first, then newest first); new incidents may open meanwhile.
  await eventually("the incident rows", async () => (await page.locator("tbody tr[data-id]").count()) >= Math.min(total, 50));
  const first = api.body.incidents[0];
  const firstRow = page.locator("tbody tr[data-id]").first();
  if ((await firstRow.getAttribute("data-id")) === first.id) {
    assert.equal(await firstRow.getAttribute("data-job"), first.jobName, "the first row's job");
    assert.equal(await firstRow.locator("[data-col=rule]").textContent(), first.ruleName, "the first row's rule");
  }
  assert.equal(await page.getByRole("columnheader").count(), 9, "column headers");
  await screenshot(page, "incidents");

  // The state filter asks the API for resolved incidents only.
  await page.getByLabel("State").selectOption("resolved");
  await eventually("only resolved rows", async () => {
    const states = await page.locator("tbody tr[data-id]").evaluateAll((rows) => rows.map((r) => r.dataset.state));
    return states.length > 0 && states.every((s) => s === "resolved");
  });
  await page.getByLabel("State").selectOption("");

  // demo-broken's incidents, through its job page (the list may hold many of mock-website's).
  const jobId = await jobIdOf("demo-broken");
  assert.ok(jobId, "scripts/dev up created demo-broken");
  await page.goto(`${serverUrl}/ui/#/jobs/${jobId}`);
  await page.getByRole("heading", { level: 1, name: "demo-broken" }).waitFor({ timeout: 10_000 });
  const covering = page.locator("[data-field=covering-rules]");
  await covering.locator(`li[data-name="${demoRule}"]`).waitFor({ timeout: 10_000 });
  await page.getByRole("link", { name: "This job's incidents" }).click();
  const row = page.locator('tbody tr[data-job="demo-broken"]').first();
  await row.waitFor({ timeout: 10_000 });
  assert.equal(await page.locator("tbody tr[data-id]").evaluateAll((rows) => rows.every((r) => r.dataset.job === "demo-broken")), true, "only demo-broken's incidents");
  assert.equal(await row.getAttribute("data-state"), "resolved", "demo-broken's latest incident is resolved (scripts/dev up pointed it at /status/200)");
  assert.equal(await row.locator("[data-col=rule]").textContent(), demoRule);
  assert.equal(await row.locator("[data-col=cause]").textContent(), "down");
  assert.match(await row.locator("[data-col=duration]").textContent(), /^\d+[smhd]/, "the downtime");
  assert.equal(await row.getByRole("link", { name: "demo-broken", exact: true }).getAttribute("href"), `#/jobs/${jobId}`, "the job link");

  await row.locator("a[data-action=open]").click();
  await page.getByRole("heading", { level: 1, name: "Incident: demo-broken" }).waitFor({ timeout: 10_000 });
  await eventually("the failure outcome", async () => (await page.locator("[data-field=failure-outcome]").textContent()) === "assertion failed");
  const failure = await page.getByRole("region", { name: "First failure" }).textContent();
  assert.match(failure, /Status code500/, `the first failure: ${failure}`);
  assert.match(failure, /Workerprobe-[12]/, `the first failure's worker: ${failure}`);
  const kinds = await page.locator("table.timeline tbody tr").evaluateAll((rows) => rows.map((r) => r.dataset.kind));
  assert.equal(kinds[0], "opened", `the timeline starts with opened: ${kinds}`);
  assert.equal(kinds.at(-1), "resolved", `the timeline ends with resolved: ${kinds}`);
  assert.ok(await page.getByRole("button", { name: "Acknowledge" }).isDisabled(), "a resolved incident cannot be acknowledged");
  assert.ok(await page.getByRole("button", { name: "Resolve" }).isDisabled(), "nor resolved again");
  await screenshot(page, "incident-resolved");
});

test("a rule created through the Alerting page's form is listed, edited and deleted", async () => {
  const page = env.page;
  await navigate(page, "Alerting");
  await page.locator(`tr[data-name="${demoRule}"]`).waitFor({ timeout: 10_000 });
  await page.getByRole("button", { name: "New rule" }).click();
  const dialog = page.getByRole("dialog", { name: "New alert rule" });
  await dialog.waitFor();
  await dialog.getByLabel("Name").fill(ruleName);
  await dialog.getByLabel("Label selector").fill(`suite=ui-${suffix}\nteam=web`);
  await dialog.getByLabel("Failure threshold").fill("4");
  await dialog.getByLabel("Min failing percent").fill("50");
  await dialog.getByLabel("Severity").selectOption("SEVERITY_WARNING");
  await dialog.getByLabel("Repeat interval").fill("1h");
  await dialog.getByRole("button", { name: "Create rule" }).click();
  try {
    await dialog.waitFor({ state: "detached", timeout: 10_000 });
  } catch (err) {
    const shown = await dialog.locator(".form-alert, .field-error").allTextContents();
    await page.keyboard.press("Escape");
    throw new Error(`the rule form did not close; it shows ${JSON.stringify(shown.filter(Boolean))} (${err.message})`);
  }
  const stored = (await rest("GET", "/v1/alert-rules?pageSize=1000")).body.rules.find((r) => r.name === ruleName);
  assert.ok(stored, "the rule exists");
  env.rules.add(stored.id);
  assert.deepEqual(stored.labelSelector, { suite: `ui-${suffix}`, team: "web" });
  assert.equal(stored.failureThreshold, 4);
  assert.equal(stored.minFailingPercent, 50);
  assert.equal(stored.severity, "SEVERITY_WARNING");
  assert.equal(stored.repeatInterval, "3600s");
  assert.equal(stored.enabled, true);

  const row = page.locator(`tr[data-name="${ruleName}"]`);
  await row.waitFor({ timeout: 10_000 });
  assert.equal(await row.locator("[data-col=covers]").textContent(), `suite=ui-${suffix}, team=web`);
  assert.match(await row.locator("[data-col=thresholds]").textContent(), /down after 4 failures at 50 % of locations/);

  // Edit: disable it.
  await page.getByRole("button", { name: `Edit rule ${ruleName}` }).click();
  const edit = page.getByRole("dialog", { name: `Edit rule ${ruleName}` });
  await edit.waitFor();
  assert.equal(await edit.getByLabel("Failure threshold").inputValue(), "4", "the form opens with the stored values");
  await edit.getByLabel("Enabled").uncheck();
  await edit.getByRole("button", { name: "Save rule" }).click();
  await edit.waitFor({ state: "detached", timeout: 10_000 });
  await eventually("enabled: no in the list", async () => (await row.locator("[data-col=enabled]").textContent()) === "no");
  const edited = (await rest("GET", `/v1/alert-rules/${stored.id}`)).body.rule;
  assert.equal(edited.enabled, false);
  assert.equal(edited.failureThreshold, 4, "the edit kept the other fields");
  await screenshot(page, "alerting");

  // Delete, after a confirmation (Cancel keeps it).
  await page.getByRole("button", { name: `Delete rule ${ruleName}` }).click();
  const confirm = page.getByRole("dialog", { name: `Delete rule ${ruleName}?` });
  await confirm.getByRole("button", { name: "Cancel" }).click();
  await confirm.waitFor({ state: "detached" });
  assert.equal((await rest("GET", `/v1/alert-rules/${stored.id}`)).status, 200, "Cancel must not delete");
  await page.getByRole("button", { name: `Delete rule ${ruleName}` }).click();
  await confirm.getByRole("button", { name: "Delete rule" }).click();
  await row.waitFor({ state: "detached", timeout: 10_000 });
  assert.equal((await rest("GET", `/v1/alert-rules/${stored.id}`)).status, 404, "the rule is gone");
  env.rules.delete(stored.id);
});

test("a failure threshold of 500 shows the server's message beside the field", async () => {
  const page = env.page;
  await page.getByRole("button", { name: "New rule" }).click();
  const dialog = page.getByRole("dialog", { name: "New alert rule" });
  await dialog.waitFor();
  try {
    await dialog.getByLabel("Name").fill(`ui-bad-rule-${suffix}`);
    const threshold = dialog.getByLabel("Failure threshold");
    await threshold.fill("500");
    await dialog.getByRole("button", { name: "Create rule" }).click();
    await eventually("aria-invalid on the threshold", async () => (await threshold.getAttribute("aria-invalid")) === "true", { timeout: 10_000 });
    const text = await described(threshold);
    assert.match(text, /must be 1 to 100 \(got 500/, `the threshold field's description: ${text}`);
    assert.ok(await dialog.locator("[data-field=failureThreshold] .field-error").isVisible());
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute("name")), "failureThreshold", "focus moves to the invalid field");
    await screenshot(page, "rule-validation-error");
    const rules = (await rest("GET", "/v1/alert-rules?pageSize=1000")).body.rules ?? [];
    assert.ok(!rules.some((r) => r.name === `ui-bad-rule-${suffix}`), "the refused rule must not exist");
  } finally {
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "detached", timeout: 5_000 });
  }
});

test("a silence created through the form is active, and End now ends it", async () => {
  const page = env.page;
  await page.getByRole("button", { name: "New silence" }).click();
  const dialog = page.getByRole("dialog", { name: "New silence" });
  await dialog.waitFor();
  await dialog.getByLabel("Label selector").fill(`suite=ui-${suffix}`);
  await dialog.getByLabel("Comment").fill(silenceComment);
  await dialog.getByRole("button", { name: "Create silence" }).click();
  await dialog.waitFor({ state: "detached", timeout: 10_000 });
  const stored = ((await rest("GET", "/v1/silences?pageSize=1000")).body.silences ?? []).find((s) => s.comment === silenceComment);
  assert.ok(stored, "the silence exists");
  env.silences.add(stored.id);
  assert.equal(stored.active, true, `the API says it is active: ${JSON.stringify(stored)}`);
  assert.deepEqual(stored.labelSelector, { suite: `ui-${suffix}` });
  const endsIn = Date.parse(stored.endTime) - Date.now();
  assert.ok(endsIn > 50 * 60_000 && endsIn <= 60 * 60_000, `the form's default end is an hour from now (${endsIn} ms)`);

  const row = page.locator(`tr[data-comment="${silenceComment}"]`);
  await row.waitFor({ timeout: 10_000 });
  assert.equal(await row.locator("[data-col=active]").textContent(), "active");
  assert.equal(await row.locator("[data-col=covers]").textContent(), `suite=ui-${suffix}`);
  await screenshot(page, "alerting-silence");

  // A weekly window that is refused shows the message beside its field.
  await page.getByRole("button", { name: "New silence" }).click();
  await dialog.waitFor();
  try {
    await dialog.getByLabel("Only during a weekly window").check();
    await dialog.getByLabel("Time zone").fill("Mars/Olympus");
    await dialog.getByLabel("Mon").check();
    await dialog.getByRole("button", { name: "Create silence" }).click();
    const zone = dialog.getByLabel("Time zone");
    await eventually("aria-invalid on the time zone", async () => (await zone.getAttribute("aria-invalid")) === "true", { timeout: 10_000 });
    const text = await described(zone);
    assert.match(text, /Mars\/Olympus/, `the time zone's description: ${text}`);
  } finally {
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "detached", timeout: 5_000 });
  }

  await page.getByRole("button", { name: `End silence ${silenceComment} now` }).click();
  // Ended silences are not listed unless asked for.
  await row.waitFor({ state: "detached", timeout: 10_000 });
  const ended = (await rest("GET", `/v1/silences/${stored.id}`)).body.silence;
  assert.notEqual(ended.active, true, "inactive after End now");
  assert.ok(Date.parse(ended.endTime) <= Date.now(), "its end is now");
  await page.getByLabel("Show ended silences").check();
  await eventually("the ended silence listed", async () => (await row.locator("[data-col=active]").textContent()) === "ended");
});

test("an open incident is shown on its job page, acknowledged and resolved through the UI", async (t) => {
  const page = env.page;
  const created = await rest("POST", "/v1/jobs", {
    name: brokenJobName,
    labels: { env: "demo", suite: `ui-${suffix}` },
    interval: "1s",
    timeout: "1s",
    desiredState: "JOB_STATE_RUNNING",
    http: { url: `${mockUrl}/status/500` },
  });
  assert.equal(created.status, 201, `creating ${brokenJobName}: ${JSON.stringify(created.body)}`);
  const jobId = created.body.job.id;
  env.jobs.add(jobId);
  try {
    const incident = await eventually(
      `an open incident of ${brokenJobName}`,
      async () => (await rest("GET", `/v1/incidents?jobId=${jobId}&state=open`)).body.incidents?.[0],
      { timeout: 60_000, interval: 500 },
    );
    t.diagnostic(`incident ${incident.id} opened at ${incident.openTime}`);
    assert.equal(incident.ruleName, demoRule);

    // The job page shows it, and the rules covering the job.
    await page.goto(`${serverUrl}/ui/#/jobs/${jobId}`);
    await page.getByRole("heading", { level: 1, name: brokenJobName }).waitFor({ timeout: 10_000 });
    const open = page.locator("[data-field=open-incident]");
    const link = open.getByRole("link", { name: `open incident: ${demoRule}` });
    await link.waitFor({ timeout: 15_000 });
    assert.equal(await link.getAttribute("href"), `#/incidents/${incident.id}`);
    const rules = await page.locator("[data-field=covering-rules] li").evaluateAll((items) => items.map((i) => i.dataset.name));
    assert.ok(rules.includes(demoRule), `rules covering the job: ${rules}`);
    await screenshot(page, "job-open-incident");
    await page.evaluate(() => {
      window.__sameDocument = true;
    });

    await link.click();
    await page.getByRole("heading", { level: 1, name: `Incident: ${brokenJobName}` }).waitFor({ timeout: 10_000 });
    const state = page.locator(".page-head [data-col=state]");
    await eventually("state open", async () => (await state.textContent()) === "open");
    const acknowledge = page.getByRole("button", { name: "Acknowledge" });
    const resolve = page.getByRole("button", { name: "Resolve" });
    assert.ok(await acknowledge.isEnabled(), "Acknowledge is offered for an open incident");
    await page.getByLabel("Comment (optional)").fill(`looking (${suffix})`);
    await acknowledge.click();
    await eventually("state acknowledged", async () => (await state.textContent()) === "acknowledged", { timeout: 10_000 });
    const ackEvent = page.locator('table.timeline tbody tr[data-kind="acknowledged"]');
    await ackEvent.waitFor({ timeout: 10_000 });
    assert.match(await ackEvent.textContent(), new RegExp(`looking \\(${suffix}\\)`), "the comment on the timeline");
    assert.equal(await ackEvent.locator("[data-col=actor]").textContent(), "anonymous", "the actor in dev mode");
    assert.ok(await acknowledge.isDisabled(), "no second acknowledgement");
    assert.ok(await resolve.isEnabled(), "Resolve is still offered");
    assert.equal(await page.evaluate(() => window.__sameDocument), true, "the page was reloaded");
    const acked = (await rest("GET", `/v1/incidents/${incident.id}`)).body.incident;
    assert.equal(acked.state, "INCIDENT_STATE_ACKNOWLEDGED");
    assert.equal(acked.acknowledgedBy, "anonymous");
    await screenshot(page, "incident-acknowledged");

    await resolve.click();
    await eventually("state resolved", async () => (await state.textContent()) === "resolved", { timeout: 10_000 });
    await page.locator('table.timeline tbody tr[data-kind="resolved"]').last().waitFor({ timeout: 10_000 });
    assert.ok(await resolve.isDisabled(), "a resolved incident offers no Resolve");
    assert.ok(await acknowledge.isDisabled(), "nor Acknowledge");
    assert.equal(await page.evaluate(() => window.__sameDocument), true, "the page was reloaded");
  } finally {
    await rest("POST", `/v1/jobs/${jobId}/stop`);
    const deleted = await rest("DELETE", `/v1/jobs/${jobId}`);
    if (deleted.status === 200) env.jobs.delete(jobId);
  }
});

test("the incidents page fits a 375 px wide phone screen", async () => {
  const phone = await newPage(375, 740);
  try {
    await phone.goto(`${serverUrl}/ui/#/incidents`);
    await phone.locator("tbody tr[data-id]").first().waitFor({ timeout: 15_000 });
    const widths = await phone.evaluate(() => ({
      page: document.documentElement.scrollWidth,
      table: document.querySelector(".table-wrap")?.scrollWidth ?? 0,
      wrap: document.querySelector(".table-wrap")?.clientWidth ?? 0,
    }));
    assert.ok(widths.page <= 375, `the page is ${widths.page} px wide at a 375 px viewport`);
    assert.ok(widths.table > widths.wrap, "the incidents table scrolls inside its region");
    for (const name of ["Jobs", "Incidents", "Alerting", "Workers"]) {
      assert.ok(await phone.getByRole("navigation", { name: "Main" }).getByRole("link", { name, exact: true }).isVisible(), `${name} is reachable`);
    }
    await screenshot(phone, "incidents-375px");
    await phone.goto(`${serverUrl}/ui/#/alerting`);
    await phone.locator("tr[data-name]").first().waitFor({ timeout: 15_000 });
    assert.ok((await phone.evaluate(() => document.documentElement.scrollWidth)) <= 375, "the alerting page fits too");
    await screenshot(phone, "alerting-375px");
  } finally {
    await phone.context().close();
  }
});

test("the browser reported no script errors on the alerting pages", () => {
  // The refused rule and silence answer 400; Chromium logs them. Anything else is a bug.
  const unexpected = env.console.filter((line) => !/Failed to load resource: the server responded with a status of 400/.test(line));
  assert.deepEqual(unexpected, [], "console errors");
});
