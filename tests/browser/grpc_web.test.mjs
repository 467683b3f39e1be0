// grpc-web end to end from a real browser.
//
// Starts monitor-server (fresh database, API tokens, one allowed CORS origin),
// serves the bundled test page (page/ -> dist/) from two other origins, one
// allowed and one not, and drives headless Debian Chromium through
// playwright-core. The page talks to the server with a JobService client
// generated from proto/ over connect-web's grpc-web transport, so this proves
// grpc-web, CORS (preflight, allowed and exposed headers) and token checks as
// a browser sees them.
//
// Run by scripts/browser-test, which installs, generates and bundles first:
//   node --test-reporter=spec grpc_web.test.mjs
// Settings (environment): MONITOR_SERVER_BIN, TEST_DATABASE_URL (server URL,
// database "postgres"), CHROMIUM_PATH, BROWSER_DIST, BROWSER_ARTIFACTS.

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

import { Code } from "@connectrpc/connect";
import { chromium } from "playwright-core";

import { chromiumArgs, freePort, psql as runPsql } from "./support.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const serverBin = process.env.MONITOR_SERVER_BIN || path.join(root, "target/debug/monitor-server");
const adminUrl = process.env.TEST_DATABASE_URL || "postgres://postgres@127.0.0.1:5432/postgres";
const chromiumPath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const dist = process.env.BROWSER_DIST || path.join(here, "dist");
const artifacts = process.env.BROWSER_ARTIFACTS || path.join(root, "target/browser-artifacts");

const suffix = randomBytes(6).toString("hex");
const database = `monitor_browser_${suffix}`;
const tokens = {
  read: `read-${suffix}-browser-test`,
  write: `write-${suffix}-browser-test`,
  admin: `admin-${suffix}-browser-test`,
};
const validJob = (name) => ({
  name,
  interval: "30s",
  timeout: "5s",
  http: { url: "http://127.0.0.1:8081/website_mock" },
});

/** Everything before() starts, so after() (and the exit hook) can stop it. */
const env = {
  databaseCreated: false,
  databaseDropped: false,
  /** @type {import("node:child_process").ChildProcess | undefined} */
  server: undefined,
  serverUrl: "",
  /** @type {http.Server[]} */
  staticServers: [],
  allowedOrigin: "",
  blockedOrigin: "",
  /** @type {import("playwright-core").Browser | undefined} */
  browser: undefined,
  /** @type {import("playwright-core").Page | undefined} */
  page: undefined,
  /** @type {import("playwright-core").Page | undefined} */
  blockedPage: undefined,
  /** grpc-web exchanges the allowed page made (promises), saved as an artifact. */
  exchanges: [],
  /** Console messages and failed requests of the blocked page. */
  blockedConsole: [],
  blockedFailures: [],
};

function psql(sql) {
  return runPsql(adminUrl, sql);
}

function dropDatabase() {
  if (!env.databaseCreated || env.databaseDropped) return;
  env.databaseDropped = true;
  psql(`drop database if exists "${database}" with (force)`);
}

function killServer(signal) {
  const server = env.server;
  if (server && server.exitCode === null && server.signalCode === null) server.kill(signal);
}

// Last resort when the run is cut short (uncaught error, Ctrl-C): no server,
// database or browser outlives it. Playwright closes Chromium on its own.
process.on("exit", () => {
  killServer("SIGKILL");
  try {
    dropDatabase();
  } catch (err) {
    console.error(`could not drop database ${database}: ${err.message}`);
  }
});
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => process.exit(130));
}

const contentTypes = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8" };

/** Serves dist/ on 127.0.0.1 at a port of its own: a separate origin. */
async function serveStatic() {
  const server = http.createServer((req, res) => {
    const name = new URL(req.url, "http://x").pathname.replace(/^\/+/, "") || "index.html";
    const file = path.join(dist, path.basename(name));
    fs.readFile(file, (err, body) => {
      if (err) {
        res.writeHead(404, { "content-type": "text/plain" }).end("not found");
        return;
      }
      res.writeHead(200, {
        "content-type": contentTypes[path.extname(file)] ?? "application/octet-stream",
        "cache-control": "no-store",
      });
      res.end(body);
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  env.staticServers.push(server);
  return `http://127.0.0.1:${server.address().port}`;
}

function logTail(file, lines = 30) {
  try {
    return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** Starts monitor-server on a free port and waits until it answers HTTP. */
async function startServer() {
  const logFile = path.join(artifacts, "grpc-web-monitor-server.log");
  // Only what this test sets: no MONITOR_* or DATABASE_URL from the caller.
  const childEnv = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("MONITOR_") && k !== "DATABASE_URL"),
  );
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const log = fs.openSync(logFile, "w");
    const child = spawn(
      serverBin,
      [
        "--listen",
        `127.0.0.1:${port}`,
        "--database-url",
        `${adminUrl.replace(/\/[^/?]*(\?.*)?$/, "")}/${database}`,
        "--cors-allowed-origins",
        env.allowedOrigin,
        "--api-tokens",
        `read:${tokens.read},write:${tokens.write},admin:${tokens.admin}`,
      ],
      { env: { ...childEnv, NO_COLOR: "1" }, stdio: ["ignore", log, log] },
    );
    fs.closeSync(log);
    env.server = child;
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
      try {
        // It binds only after migrating, so any HTTP answer means it serves.
        await fetch(`${url}/v1/openapi.json`, { signal: AbortSignal.timeout(2_000) });
        return url;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    const exited = child.exitCode !== null || child.signalCode !== null;
    killServer("SIGKILL");
    // Another process may have taken the port between probe and bind.
    if (exited && attempt < 3 && /address.*in use/i.test(logTail(logFile))) continue;
    throw new Error(
      `monitor-server ${exited ? `exited (${child.exitCode ?? child.signalCode})` : "was not ready within 60 s"}` +
        ` at ${url}; last lines of ${logFile}:\n${logTail(logFile)}`,
    );
  }
}

async function openPage(origin, { onConsole, onRequestFailed } = {}) {
  const page = await env.browser.newPage({ viewport: { width: 1100, height: 800 } });
  if (onConsole) page.on("console", onConsole);
  if (onRequestFailed) page.on("requestfailed", onRequestFailed);
  const query = new URLSearchParams({ server: env.serverUrl, token: tokens.write });
  await page.goto(`${origin}/index.html?${query}`);
  await page.waitForFunction(() => document.body.dataset.ready === "true" && "monitorApi" in window, null, {
    timeout: 10_000,
  });
  return page;
}

/** Calls window.monitorApi[fn](...args) in `page`; resolves to its Outcome. */
function api(page, fn, ...args) {
  return page.evaluate(([fn, args]) => window.monitorApi[fn](...args), [fn, args]);
}

function expectOk(outcome, what) {
  assert.ok(outcome.ok, `${what} failed in the browser: ${JSON.stringify(outcome)}`);
  return outcome.value;
}

function expectCode(outcome, code, what) {
  assert.equal(outcome.ok, false, `${what} should have failed with ${Code[code]} but succeeded: ${JSON.stringify(outcome)}`);
  assert.equal(
    outcome.code,
    code,
    `${what} should fail with ${Code[code]}, got ${outcome.codeName}: ${outcome.rawMessage}`,
  );
  return outcome;
}

/** The request and response headers of one grpc-web call, as Chromium saw them. */
async function describeExchange(response) {
  const request = response.request();
  return {
    url: request.url(),
    method: request.method(),
    requestHeaders: await request.allHeaders(),
    status: response.status(),
    responseHeaders: await response.allHeaders(),
  };
}

async function screenshot(page, name) {
  if (!page || page.isClosed()) return;
  try {
    await page.screenshot({ path: path.join(artifacts, `grpc-web-${name}.png`), fullPage: true });
  } catch (err) {
    console.error(`screenshot ${name} failed: ${err.message}`);
  }
}

before(
  async () => {
    assert.ok(fs.existsSync(serverBin), `${serverBin} is missing: run cargo build -p monitor-server`);
    assert.ok(fs.existsSync(chromiumPath), `${chromiumPath} is missing: apt-get install chromium`);
    assert.ok(fs.existsSync(path.join(dist, "app.js")), `${dist}/app.js is missing: bundle page/app.ts first`);
    fs.mkdirSync(artifacts, { recursive: true });
    for (const old of fs.readdirSync(artifacts).filter((f) => f.startsWith("grpc-web-"))) {
      fs.rmSync(path.join(artifacts, old));
    }

    psql(`create database "${database}"`);
    env.databaseCreated = true;
    env.allowedOrigin = await serveStatic();
    env.blockedOrigin = await serveStatic();
    env.serverUrl = await startServer();

    env.browser = await chromium.launch({
      executablePath: chromiumPath,
      headless: true,
      args: chromiumArgs,
      timeout: 60_000,
    });
    env.page = await openPage(env.allowedOrigin);
    env.page.on("response", (response) => {
      if (response.url().startsWith(`${env.serverUrl}/monitor.v1.`)) env.exchanges.push(describeExchange(response));
    });
  },
  { timeout: 120_000 },
);

after(
  async () => {
    await screenshot(env.page, "allowed-origin");
    await screenshot(env.blockedPage, "blocked-origin");
    if (env.exchanges.length > 0) {
      const exchanges = await Promise.all(env.exchanges.map((e) => e.catch((err) => ({ error: err.message }))));
      fs.writeFileSync(path.join(artifacts, "grpc-web-exchanges.json"), JSON.stringify(exchanges, null, 2));
    }
    await env.browser?.close().catch((err) => console.error(`closing Chromium: ${err.message}`));
    if (env.server && env.server.exitCode === null && env.server.signalCode === null) {
      const exited = once(env.server, "exit");
      killServer("SIGTERM");
      const timer = setTimeout(() => killServer("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    await Promise.all(env.staticServers.map((s) => new Promise((r) => s.close(r))));
    dropDatabase();
  },
  { timeout: 30_000 },
);

let jobId = "";

test("ListJobs over grpc-web from another origin starts empty", async (t) => {
  const seen = env.page.waitForResponse((r) => r.url() === `${env.serverUrl}/monitor.v1.JobService/ListJobs`, {
    timeout: 10_000,
  });
  const value = expectOk(await api(env.page, "list"), "ListJobs");
  assert.deepEqual(value.jobs, [], "a fresh database should have no jobs");
  assert.equal(value.totalSize, "0", "ListJobs totalSize on a fresh database");

  // It really was grpc-web, cross-origin, with CORS headers on the answer.
  const exchange = await describeExchange(await seen);
  assert.equal(exchange.method, "POST");
  assert.match(exchange.requestHeaders["content-type"] ?? "", /^application\/grpc-web/);
  assert.equal(exchange.requestHeaders.origin, env.allowedOrigin);
  assert.equal(exchange.status, 200);
  assert.match(exchange.responseHeaders["content-type"] ?? "", /^application\/grpc-web/);
  assert.equal(exchange.responseHeaders["access-control-allow-origin"], env.allowedOrigin);
  t.diagnostic(
    `${exchange.requestHeaders.origin} -> ${exchange.url}: ${exchange.requestHeaders["content-type"]}, ` +
      `answered ${exchange.status} ${exchange.responseHeaders["content-type"]}, ` +
      `access-control-allow-origin ${exchange.responseHeaders["access-control-allow-origin"]}`,
  );
});

test("CreateJob returns an id and the job is STOPPED", async () => {
  const value = expectOk(await api(env.page, "create", validJob("browser-job")), "CreateJob");
  assert.match(value.job.id, /^[0-9a-f-]{36}$/, `id ${value.job.id} is not a UUID`);
  assert.equal(value.job.name, "browser-job");
  assert.equal(value.job.desiredState, "JOB_STATE_STOPPED", "a new job should start STOPPED");
  assert.equal(value.job.interval, "30s");
  assert.equal(value.job.http.url, "http://127.0.0.1:8081/website_mock");
  jobId = value.job.id;
});

test("StartJob runs the job; starting again changes nothing", async (t) => {
  assert.ok(jobId, "no job was created");
  const first = expectOk(await api(env.page, "start", jobId), "StartJob");
  assert.equal(first.changed, true, "the first StartJob should change the job");
  assert.equal(first.job.desiredState, "JOB_STATE_RUNNING", "desired state after StartJob");

  const again = expectOk(await api(env.page, "start", jobId), "second StartJob");
  assert.equal(again.changed, false, "a second StartJob should change nothing");
  assert.equal(again.job.desiredState, "JOB_STATE_RUNNING", "desired state after the second StartJob");
  assert.ok(again.message, "an unchanged StartJob should say why");
  t.diagnostic(`second StartJob: changed=false, message=${JSON.stringify(again.message)}`);

  const status = expectOk(await api(env.page, "status", jobId), "GetJobStatus");
  assert.equal(status.status.desiredState, "JOB_STATE_RUNNING", "GetJobStatus desired state");
  // No probe worker runs here, so nothing has picked the job up.
  assert.equal(status.status.phase, "JOB_PHASE_PENDING", "GetJobStatus phase of a running job without workers");
});

test("StopJob stops it and ListJobs shows the one job", async () => {
  assert.ok(jobId, "no job was created");
  const stopped = expectOk(await api(env.page, "stop", jobId), "StopJob");
  assert.equal(stopped.changed, true, "StopJob of a running job should change it");
  assert.equal(stopped.job.desiredState, "JOB_STATE_STOPPED", "desired state after StopJob");

  const status = expectOk(await api(env.page, "status", jobId), "GetJobStatus");
  assert.equal(status.status.phase, "JOB_PHASE_STOPPED", "GetJobStatus phase after StopJob");

  const list = expectOk(await api(env.page, "list"), "ListJobs");
  assert.equal(list.totalSize, "1", "ListJobs totalSize after creating one job");
  assert.deepEqual(
    list.jobs.map((j) => [j.id, j.desiredState]),
    [[jobId, "JOB_STATE_STOPPED"]],
    "ListJobs should show the created job, stopped",
  );
  await screenshot(env.page, "lifecycle");
});

test("a call without a token fails Unauthenticated", async () => {
  const outcome = expectCode(await api(env.page, "list", { token: "", label: "no token" }), Code.Unauthenticated, "ListJobs without a token");
  assert.match(outcome.rawMessage, /credentials|authorization/i);
});

test("the read token may list but CreateJob fails PermissionDenied", async () => {
  const list = expectOk(await api(env.page, "list", { token: tokens.read, label: "read token" }), "ListJobs with the read token");
  assert.equal(list.totalSize, "1", "ListJobs totalSize with the read token");
  const outcome = expectCode(
    await api(env.page, "create", validJob("read-token-job"), { token: tokens.read, label: "read token" }),
    Code.PermissionDenied,
    "CreateJob with the read token",
  );
  assert.match(outcome.rawMessage, /write/);
});

test("an invalid job fails InvalidArgument naming job.http.url", async () => {
  const bad = { ...validJob("bad-url-job"), http: { url: "not a url" } };
  const outcome = expectCode(await api(env.page, "create", bad, { label: "bad url" }), Code.InvalidArgument, "CreateJob with a bad URL");
  assert.match(outcome.rawMessage, /job\.http\.url/);
  // The field violations arrive as google.rpc.BadRequest details, which the
  // browser may only read because the server exposes grpc-status-details-bin.
  assert.ok(
    outcome.detailTypes.includes("google.rpc.BadRequest"),
    `expected a google.rpc.BadRequest detail, got ${JSON.stringify(outcome.detailTypes)}`,
  );
});

test("a page on an origin that is not allowed is blocked by the browser", async (t) => {
  env.blockedPage = await openPage(env.blockedOrigin, {
    onConsole: (msg) => env.blockedConsole.push(msg.text()),
    onRequestFailed: (req) => env.blockedFailures.push(`${req.method()} ${req.url()}: ${req.failure()?.errorText}`),
  });
  const list = await api(env.blockedPage, "list");
  assert.equal(list.ok, false, `ListJobs from ${env.blockedOrigin} should be blocked: ${JSON.stringify(list)}`);
  const create = await api(env.blockedPage, "create", validJob("blocked-origin-job"));
  assert.equal(create.ok, false, `CreateJob from ${env.blockedOrigin} should be blocked: ${JSON.stringify(create)}`);
  // A browser-side network failure, not an answer from the server.
  assert.match(create.rawMessage, /fetch/i, `expected a fetch failure, got ${create.codeName}: ${create.rawMessage}`);
  const report = env.blockedConsole.find((text) => /blocked by CORS policy/.test(text));
  assert.ok(
    report,
    `Chromium reported no CORS block; console: ${JSON.stringify(env.blockedConsole)}, failed requests: ${JSON.stringify(env.blockedFailures)}`,
  );

  t.diagnostic(`Chromium: ${report}`);

  // The preflight failed, so the POST never reached the server: no job.
  const list2 = expectOk(await api(env.page, "list"), "ListJobs from the allowed origin");
  assert.equal(list2.totalSize, "1", "CreateJob from the blocked origin reached the server");
});
