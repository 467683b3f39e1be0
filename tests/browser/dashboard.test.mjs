// The web dashboard end to end, in headless Debian Chromium driven by
// playwright-core, against the real stack of `scripts/dev up` (PostgreSQL,
// the Kafka broker, the mock website, monitor-server with jobs.json, two probe
// workers and the aggregator).
//
// Covers: the jobs page lists jobs.json's jobs; a bad URL is refused with the
// server's message beside the URL field; a job against the mock is created,
// started (its outcome appears), shows charts with data on its page, is
// stopped (the list changes without a reload) and deleted (after a
// confirmation); the workers page; the token prompt of a second server with
// API tokens on; the jobs page at phone width. Screenshots of every page go
// to UI_ARTIFACTS.
//
// Run by scripts/ui-test, which builds, brings the stack up and down:
//   node --test-reporter=spec dashboard.test.mjs
// Settings (environment): MONITOR_URL (the dev server, default
// http://127.0.0.1:8080), MOCK_URL (default http://127.0.0.1:8081),
// MONITOR_SERVER_BIN (for the second server), DATABASE_URL (the dev
// database), CHROMIUM_PATH, UI_ARTIFACTS.

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

import { chromiumArgs, eventually, freePort, restAt } from "./support.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const serverUrl = (process.env.MONITOR_URL || "http://127.0.0.1:8080").replace(/\/$/, "");
const mockUrl = (process.env.MOCK_URL || "http://127.0.0.1:8081").replace(/\/$/, "");
const serverBin = process.env.MONITOR_SERVER_BIN || path.join(root, "target/debug/monitor-server");
const databaseUrl = process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/monitor";
const chromiumPath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const artifacts = process.env.UI_ARTIFACTS || path.join(root, "target/ui-artifacts");
const jobsFile = JSON.parse(fs.readFileSync(path.join(root, "jobs.json"), "utf8"));

const suffix = randomBytes(4).toString("hex");
const jobName = `ui-test-${suffix}`;
const authJobName = `ui-auth-${suffix}`;
const tokens = {
  read: `read-${suffix}-dashboard-test`,
  write: `write-${suffix}-dashboard-test`,
};

const env = {
  /** @type {import("playwright-core").Browser | undefined} */
  browser: undefined,
  /** @type {import("playwright-core").Page | undefined} */
  page: undefined,
  /** @type {import("node:child_process").ChildProcess | undefined} */
  authServer: undefined,
  authUrl: "",
  /** Ids of jobs this run created, deleted in after() if a test failed midway. */
  created: new Set(),
  /** Browser console errors and failed requests, saved as an artifact. */
  console: [],
};

/** Calls the dev server's REST API from Node (setup and cross-checks). */
const rest = restAt(serverUrl);

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

/** The table row of a job, by name. */
function row(page, name) {
  return page.locator(`tr[data-name="${name}"]`);
}

/** Narrows the jobs list to names containing `text` and waits until it shows. */
async function searchFor(page, text) {
  await page.getByLabel("Name contains").fill(text);
  await eventually(`the jobs list filtered by "${text}"`, async () => {
    const names = await page.locator("tbody tr[data-name]").evaluateAll((rows) => rows.map((r) => r.dataset.name));
    return names.length > 0 && names.every((n) => n.toLowerCase().includes(text.toLowerCase()));
  });
}

/** A second monitor-server on the dev database, with API tokens on. */
async function startAuthServer() {
  const logFile = path.join(artifacts, "auth-monitor-server.log");
  const childEnv = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("MONITOR_") && k !== "DATABASE_URL"),
  );
  const port = await freePort();
  const log = fs.openSync(logFile, "w");
  const child = spawn(
    serverBin,
    [
      "--listen",
      `127.0.0.1:${port}`,
      "--database-url",
      databaseUrl,
      "--no-migrate",
      "--api-tokens",
      `read:${tokens.read},write:${tokens.write}`,
    ],
    { env: { ...childEnv, NO_COLOR: "1" }, stdio: ["ignore", log, log] },
  );
  fs.closeSync(log);
  env.authServer = child;
  const url = `http://127.0.0.1:${port}`;
  await eventually(
    `the second monitor-server at ${url} (log ${logFile})`,
    async () => {
      if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}: ${fs.readFileSync(logFile, "utf8").slice(-2000)}`);
      const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) });
      return response.ok;
    },
    { timeout: 60_000, interval: 200 },
  );
  return url;
}

before(
  async () => {
    assert.ok(fs.existsSync(chromiumPath), `${chromiumPath} is missing: apt-get install chromium`);
    fs.mkdirSync(artifacts, { recursive: true });
    const info = await rest("GET", "/v1/info");
    assert.equal(info.status, 200, `the dev server at ${serverUrl} does not answer /v1/info: run scripts/dev up`);
    env.browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: chromiumArgs, timeout: 60_000 });
    env.page = await newPage();
  },
  { timeout: 90_000 },
);

after(
  async () => {
    if (env.console.length) fs.writeFileSync(path.join(artifacts, "browser-console.txt"), `${env.console.join("\n")}\n`);
    await env.browser?.close().catch((err) => console.error(`closing Chromium: ${err.message}`));
    if (env.authServer && env.authServer.exitCode === null) {
      const exited = once(env.authServer, "exit");
      env.authServer.kill("SIGTERM");
      const timer = setTimeout(() => env.authServer?.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    for (const id of env.created) {
      await rest("DELETE", `/v1/jobs/${id}`).catch((err) => console.error(`cleaning up job ${id}: ${err.message}`));
    }
  },
  { timeout: 30_000 },
);

test("the jobs page lists jobs.json's jobs, with live outcomes", async (t) => {
  const page = env.page;
  await page.goto(`${serverUrl}/ui/`);
  const api = await rest("GET", "/v1/job-summaries?pageSize=50");
  assert.equal(api.status, 200, `GET /v1/job-summaries: ${JSON.stringify(api.body)}`);
  const total = Number(api.body.totalSize);
  const shown = Math.min(total, 50);
  assert.ok(total >= jobsFile.jobs.length, `the server has ${total} jobs, fewer than jobs.json's ${jobsFile.jobs.length}`);

  // Unfiltered: the first page and the range line agree with the API.
  await eventually("the range line", async () => (await page.locator(".range").textContent()) === `1–${shown} of ${total}`);
  assert.equal(await page.locator("tbody tr[data-name]").count(), shown, "rows on the first page");
  assert.equal(await page.getByRole("columnheader").count(), 9, "column headers");

  const mark = await page.evaluate(() => performance.getEntriesByName("jobs-interactive").map((e) => e.startTime));
  assert.equal(mark.length, 1, "performance.mark('jobs-interactive') should be set exactly once");
  t.diagnostic(`jobs-interactive at ${mark[0].toFixed(0)} ms after navigation start (${shown} rows)`);

  // Filtered to jobs.json's names: every one is there, as a link to its page.
  await searchFor(page, "mock-");
  for (const job of jobsFile.jobs) {
    const link = row(page, job.name).getByRole("link", { name: job.name, exact: true });
    await link.waitFor({ timeout: 10_000 });
    const id = await row(page, job.name).getAttribute("data-id");
    assert.equal(await link.getAttribute("href"), `#/jobs/${id}`, `link of ${job.name}`);
    if (job.desiredState === "JOB_STATE_RUNNING") {
      assert.equal(await row(page, job.name).locator("[data-col=state]").textContent(), "running", `state of ${job.name}`);
    }
  }
  // mock-website runs every 10 s on the probe workers: its outcome shows up.
  const outcome = await eventually(
    "an outcome for mock-website",
    async () => {
      const text = await row(page, "mock-website").locator(".outcome").textContent();
      return text && text !== "not reported yet" ? text : undefined;
    },
    { timeout: 60_000, interval: 500 },
  );
  assert.match(outcome, /^(OK|assertion failed)$/, "mock-website's outcome (the mock answers 200, 404 or 500)");
  const phase = await row(page, "mock-website").locator("[data-col=phase]").textContent();
  assert.equal(phase, "active", "phase of mock-website");
  await page.getByLabel("Name contains").fill("");
  await eventually("the unfiltered list again", async () => (await page.locator("tbody tr[data-name]").count()) === shown);
  await screenshot(page, "jobs");
});

test("the jobs page fits a 375 px wide phone screen", async () => {
  const phone = await newPage(375, 740);
  try {
    await phone.goto(`${serverUrl}/ui/#/jobs`);
    await phone.locator("tbody tr[data-name]").first().waitFor({ timeout: 15_000 });
    // The table scrolls inside its own region; the page itself does not.
    const widths = await phone.evaluate(() => ({
      page: document.documentElement.scrollWidth,
      table: document.querySelector(".table-wrap")?.scrollWidth ?? 0,
      wrap: document.querySelector(".table-wrap")?.clientWidth ?? 0,
    }));
    assert.ok(widths.page <= 375, `the page is ${widths.page} px wide at a 375 px viewport`);
    assert.ok(widths.table > widths.wrap, "the jobs table should scroll horizontally inside its region");
    assert.ok(await phone.getByRole("button", { name: "New job" }).isVisible(), "New job is reachable on a phone");
    await screenshot(phone, "jobs-375px");
  } finally {
    await phone.context().close();
  }
});

test("a bad URL is refused with the server's message beside the URL field", async () => {
  const page = env.page;
  await page.getByRole("button", { name: "New job" }).click();
  const dialog = page.getByRole("dialog", { name: "New job" });
  await dialog.waitFor();
  try {
    await dialog.getByLabel("Name", { exact: true }).fill(`ui-bad-${suffix}`);
    await dialog.getByLabel("URL", { exact: true }).fill("ftp://x");
    await dialog.getByRole("button", { name: "Create job" }).click();
    const url = dialog.getByLabel("URL", { exact: true });
    await eventually("aria-invalid on the URL field", async () => (await url.getAttribute("aria-invalid")) === "true", { timeout: 10_000 });
    // The message is the server's (google.rpc.BadRequest for job.http.url), tied to the field.
    const described = await url.evaluate((input) =>
      (input.getAttribute("aria-describedby") ?? "")
        .split(/\s+/)
        .map((id) => document.getElementById(id)?.textContent ?? "")
        .join(" | "),
    );
    assert.match(described, /scheme must be http or https \(got "ftp"\)/, `the URL field's description: ${described}`);
    assert.ok(await dialog.locator(".field-error", { hasText: "scheme must be http or https" }).isVisible());
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute("type")), "url", "focus moves to the invalid field");
    await screenshot(page, "form-validation-error");
    const listed = await rest("GET", `/v1/jobs?nameContains=ui-bad-${suffix}`);
    assert.equal(Number(listed.body.totalSize ?? 0), 0, `the refused job must not exist: ${JSON.stringify(listed.body)}`);
  } finally {
    // Escape closes the dialog (and leaves the page usable for the next tests).
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "detached", timeout: 5_000 });
  }
});

let jobId = "";

test("a new job against the mock is created stopped", async () => {
  const page = env.page;
  await page.getByRole("button", { name: "New job" }).click();
  const dialog = page.getByRole("dialog", { name: "New job" });
  await dialog.getByLabel("Name", { exact: true }).fill(jobName);
  await dialog.getByLabel("Interval").fill("2s");
  await dialog.getByLabel("Timeout").fill("1s");
  await dialog.getByLabel("Labels").fill("suite=ui");
  await dialog.getByLabel("URL", { exact: true }).fill(`${mockUrl}/status/200`);
  await dialog.getByLabel("Accepted status codes").fill("200-299");
  await dialog.getByRole("button", { name: "Create job" }).click();
  try {
    await dialog.waitFor({ state: "detached", timeout: 10_000 });
  } catch (err) {
    const shown = await dialog.locator(".form-alert, .field-error").allTextContents();
    await page.keyboard.press("Escape");
    throw new Error(`the form did not close after Create job; it shows ${JSON.stringify(shown.filter(Boolean))} (${err.message})`);
  }

  const listed = await rest("GET", `/v1/jobs?nameContains=${jobName}`);
  assert.equal(listed.body.totalSize, "1", `the created job: ${JSON.stringify(listed.body)}`);
  const job = listed.body.jobs[0];
  jobId = job.id;
  env.created.add(jobId);
  assert.equal(job.interval, "2s");
  assert.equal(job.timeout, "1s");
  assert.deepEqual(job.labels, { suite: "ui" });
  assert.deepEqual(job.http.assertions.acceptedStatus, [{ min: 200, max: 299 }]);
  assert.equal(job.desiredState, "JOB_STATE_STOPPED");

  await searchFor(page, jobName);
  assert.equal(await page.locator(".range").textContent(), "1–1 of 1");
  assert.equal(await row(page, jobName).locator("[data-col=state]").textContent(), "stopped");
  assert.equal(await row(page, jobName).locator(".labels").textContent(), "suite=ui");
});

test("starting it runs it on a worker and its outcome appears in the list", async () => {
  assert.ok(jobId, "no job was created");
  const page = env.page;
  await page.getByRole("button", { name: `Start ${jobName}` }).click();
  await eventually("state running in the list", async () => (await row(page, jobName).locator("[data-col=state]").textContent()) === "running", {
    timeout: 10_000,
  });
  await eventually("phase active in the list", async () => (await row(page, jobName).locator("[data-col=phase]").textContent()) === "active", {
    timeout: 30_000,
  });
  await eventually("outcome OK in the list", async () => (await row(page, jobName).locator(".outcome").textContent()) === "OK", {
    timeout: 60_000,
    interval: 500,
  });
  const workers = await row(page, jobName).locator("td").nth(3).textContent();
  assert.match(workers, /^probe-[12]$/, "the worker running it");
});

test("the job page shows its status, charts with data and recent minutes", async (t) => {
  assert.ok(jobId, "no job was created");
  const page = env.page;
  await row(page, jobName).getByRole("link", { name: jobName }).click();
  await page.getByRole("heading", { level: 1, name: jobName }).waitFor({ timeout: 10_000 });
  assert.equal(new URL(page.url()).hash, `#/jobs/${jobId}`);
  await eventually("last outcome OK on the job page", async () => (await page.locator("[data-field=last-outcome]").textContent()) === "OK", {
    timeout: 30_000,
  });
  // The aggregator flushes every 2 s in dev and the page refreshes every 5 s.
  const points = await eventually(
    "latency chart points",
    async () => Number((await page.locator("[data-chart=latency]").getAttribute("data-points")) ?? 0),
    { timeout: 90_000, interval: 500 },
  );
  assert.ok(points >= 1, "the latency chart has data");
  assert.ok(await page.locator("[data-chart=latency] canvas").count(), "uPlot drew the latency chart on a canvas");
  const statusLabel = await eventually("status chart with 200s", async () => {
    const label = await page.locator("[data-chart=status]").getAttribute("aria-label");
    return /200: [1-9]/.test(label ?? "") ? label : undefined;
  });
  t.diagnostic(`status chart: ${statusLabel}`);
  const recent = page.getByRole("table", { name: "Recent minutes, newest first" });
  const firstRow = recent.locator("tbody tr").first();
  assert.ok(Number(await firstRow.locator("[data-col=checks]").textContent()) >= 1, "checks in the newest minute");
  assert.match(await firstRow.locator("[data-col=status]").textContent(), /^200 × \d+$/, "status counts of the newest minute");
  // The spec is shown, readable and raw.
  assert.ok(await page.getByText(`${mockUrl}/status/200`).first().isVisible(), "the URL in the spec");
  await page.getByText("Raw JSON").click();
  const raw = JSON.parse(await page.locator("pre.raw").textContent());
  assert.equal(raw.id, jobId);
  // Other granularities answer too (no data yet in 1h buckets is fine, an error is not).
  await page.getByLabel("Range").selectOption("7d");
  assert.equal(await page.getByLabel("Granularity").inputValue(), "1h", "7 days by minute is over the bucket limit: 1 hour");
  await eventually("the 7-day chart", async () => (await page.locator("[data-chart=latency]").getAttribute("aria-label"))?.startsWith("Latency chart"));
  assert.equal(await page.locator("#alerts .alert-error").count(), 0, `errors shown: ${await page.locator("#alerts").textContent()}`);
  await page.getByLabel("Range").selectOption("1h");
  await page.getByLabel("Granularity").selectOption("1m");
  await eventually("1 minute points again", async () => Number(await page.locator("[data-chart=latency]").getAttribute("data-points")) >= 1);
  await screenshot(page, "job");
});

test("stopping it from the list changes its state without a reload", async () => {
  assert.ok(jobId, "no job was created");
  const page = env.page;
  await page.getByRole("link", { name: "← All jobs" }).click();
  await row(page, jobName).waitFor({ timeout: 10_000 });
  await page.evaluate(() => {
    window.__sameDocument = true;
  });
  await page.getByRole("button", { name: `Stop ${jobName}` }).click();
  await eventually("state stopped in the list", async () => (await row(page, jobName).locator("[data-col=state]").textContent()) === "stopped", {
    timeout: 10_000,
  });
  await eventually("phase stopped in the list", async () => (await row(page, jobName).locator("[data-col=phase]").textContent()) === "stopped", {
    timeout: 30_000,
  });
  assert.equal(await page.evaluate(() => window.__sameDocument), true, "the page was reloaded");
  assert.ok(await page.getByRole("button", { name: `Start ${jobName}` }).isVisible(), "the row offers Start again");
  const job = await rest("GET", `/v1/jobs/${jobId}`);
  assert.equal(job.body.job.desiredState, "JOB_STATE_STOPPED");
});

test("another change made elsewhere shows up within seconds", async () => {
  assert.ok(jobId, "no job was created");
  const page = env.page;
  const started = await rest("POST", `/v1/jobs/${jobId}/start`);
  assert.equal(started.status, 200);
  await eventually("state running after a start through the API", async () => (await row(page, jobName).locator("[data-col=state]").textContent()) === "running", {
    timeout: 10_000,
  });
  const stopped = await rest("POST", `/v1/jobs/${jobId}/stop`);
  assert.equal(stopped.status, 200);
  await eventually("state stopped again", async () => (await row(page, jobName).locator("[data-col=state]").textContent()) === "stopped", {
    timeout: 10_000,
  });
});

test("deleting it asks for confirmation first", async () => {
  assert.ok(jobId, "no job was created");
  const page = env.page;
  await page.getByRole("button", { name: `Delete ${jobName}` }).click();
  const dialog = page.getByRole("dialog", { name: `Delete ${jobName}?` });
  await dialog.waitFor();
  // Cancel keeps it.
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await dialog.waitFor({ state: "detached" });
  assert.equal((await rest("GET", `/v1/jobs/${jobId}`)).status, 200, "Cancel must not delete");
  await page.getByRole("button", { name: `Delete ${jobName}` }).click();
  await screenshot(page, "delete-confirmation");
  await dialog.getByRole("button", { name: "Delete job" }).click();
  await row(page, jobName).waitFor({ state: "detached", timeout: 10_000 });
  const gone = await rest("GET", `/v1/jobs/${jobId}`);
  assert.equal(gone.status, 404, `the job should be gone: ${JSON.stringify(gone.body)}`);
  env.created.delete(jobId);
  await eventually("the empty filtered list", async () => (await page.locator(".range").textContent()) === "0 of 0");
  assert.equal(await page.locator(".empty").textContent(), "No jobs match these filters.");
});

test("the workers page lists both probe workers", async () => {
  const page = env.page;
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Workers" }).click();
  await page.getByRole("heading", { level: 1, name: "Workers" }).waitFor();
  for (const [id, location] of [
    ["probe-1", "local-a"],
    ["probe-2", "local-b"],
  ]) {
    const line = page.locator(`tr[data-id="${id}"]`);
    await line.waitFor({ timeout: 10_000 });
    assert.equal(await line.locator(".badge").textContent(), "connected", `state of ${id}`);
    assert.match(await line.textContent(), new RegExp(`location=${location}`), `labels of ${id}`);
    assert.match(await line.locator("td").last().textContent(), /just now|\d+ s ago/, `last heartbeat of ${id}`);
  }
  assert.equal(await page.locator("[data-nav=workers]").getAttribute("aria-current"), "page");
  await screenshot(page, "workers");
});

test("with tokens on, the dashboard asks for one and uses it", async (t) => {
  // A stopped job to try a write with the read token.
  const created = await rest("POST", "/v1/jobs", {
    name: authJobName,
    interval: "60s",
    timeout: "5s",
    http: { url: `${mockUrl}/status/200` },
  });
  assert.equal(created.status, 201, `creating ${authJobName}: ${JSON.stringify(created.body)}`);
  env.created.add(created.body.job.id);

  env.authUrl = await startAuthServer();
  const page = await newPage();
  try {
    const unauthenticated = await fetch(`${env.authUrl}/v1/job-summaries`);
    assert.equal(unauthenticated.status, 401, "the second server must require a token");
    await page.goto(`${env.authUrl}/ui/`);
    const prompt = page.getByRole("dialog", { name: "Sign in" });
    await prompt.waitFor({ timeout: 15_000 });
    assert.match(await prompt.textContent(), /needs an API token/);
    await screenshot(page, "token-prompt");

    // A wrong token is refused and asked for again.
    await prompt.getByLabel("API token").fill("not-a-valid-token-at-all");
    await prompt.getByRole("button", { name: "Sign in" }).click();
    await eventually("the prompt again after a wrong token", async () => /did not accept the token/.test((await prompt.textContent()) ?? ""), {
      timeout: 10_000,
    });

    await prompt.getByLabel("API token").fill(tokens.read);
    await prompt.getByRole("button", { name: "Sign in" }).click();
    await prompt.waitFor({ state: "detached", timeout: 10_000 });
    const total = Number((await rest("GET", "/v1/job-summaries?pageSize=1")).body.totalSize);
    await eventually("the job list with the read token", async () => /of (\d+)$/.exec((await page.locator(".range").textContent()) ?? "")?.[1] === String(total), {
      timeout: 15_000,
    });
    assert.equal(await page.evaluate(() => sessionStorage.getItem("monitor.token")), tokens.read, "the token is kept in sessionStorage");
    assert.match(await page.locator("#server-info").textContent(), /\S/, "server name and version in the header");

    // The read token may not start a job: the 403 is explained.
    await searchFor(page, authJobName);
    await page.getByRole("button", { name: `Start ${authJobName}` }).click();
    const alert = page.locator("#alerts .alert-error");
    await alert.waitFor({ timeout: 10_000 });
    assert.match(await alert.textContent(), /lacks the role/);
    t.diagnostic(`403 shown as: ${await alert.locator(".alert-text").textContent()}`);
    assert.equal((await rest("GET", `/v1/jobs/${created.body.job.id}`)).body.job.desiredState, "JOB_STATE_STOPPED");
    await screenshot(page, "forbidden");

    // Signing out forgets the token and asks again.
    await page.getByRole("button", { name: "Sign out" }).click();
    await prompt.waitFor({ timeout: 10_000 });
    assert.equal(await page.evaluate(() => sessionStorage.getItem("monitor.token")), null, "sign out clears the token");
    await page.keyboard.press("Escape");
    await prompt.waitFor({ state: "detached" });
    assert.ok(await page.getByRole("button", { name: "Sign in" }).isVisible(), "Sign in is offered after dismissing the prompt");
  } finally {
    await page.context().close();
  }
});

test("the browser reported no script errors", () => {
  // Chromium logs every failed API call as a console error: the 400 of the bad
  // URL, the 401s and the 403 above are expected; anything else is a bug.
  const unexpected = env.console.filter((line) => !/Failed to load resource: the server responded with a status of 40[013]/.test(line));
  assert.deepEqual(unexpected, [], "console errors");
});
