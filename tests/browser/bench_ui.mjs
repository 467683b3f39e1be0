// Dashboard time-to-interactive at 100, 1 000 and 10 000 jobs, in headless
// Debian Chromium driven by playwright-core.
//
// For each size: a fresh database, the jobs imported by monitor-server's own
// --jobs-file (a third of them stopped), and per job a day of 1-minute
// rollups written in SQL (so the job list's uptime and sparkline queries read
// what a day-old installation holds). Then several cold loads of /ui/#/jobs,
// each in a new browser context (empty cache). Printed per size, as medians:
//   interactive  ms from navigation start to the app's
//                performance.mark("jobs-interactive") (first page rendered
//                with its handlers attached),
//   dom          ms to domInteractive,
//   api          the page's /v1/job-summaries request as the browser timed it,
//   reference    ms from navigation start to the load event of a static file
//                of the same server (/ui/LICENSES.txt): the floor of any page
//                load in this browser on this machine, measured in the same run,
//   ratio        interactive / reference.
//
// Run by scripts/bench-ui. Settings (environment): MONITOR_SERVER_BIN,
// TEST_DATABASE_URL (server URL, database "postgres"), CHROMIUM_PATH,
// BENCH_SIZES (default "100,1000,10000"), BENCH_RUNS (default 7),
// BENCH_MINUTES (rollup minutes per job, default 1440).

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

import { chromiumArgs, freePort, psql as runPsql } from "./support.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const serverBin = process.env.MONITOR_SERVER_BIN || path.join(root, "target/release/monitor-server");
const adminUrl = process.env.TEST_DATABASE_URL || "postgres://postgres@127.0.0.1:5432/postgres";
const chromiumPath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const sizes = (process.env.BENCH_SIZES || "100,1000,10000").split(",").map((s) => {
  const n = Number(s.trim());
  if (!Number.isInteger(n) || n < 1 || n > 100_000) throw new Error(`BENCH_SIZES: ${JSON.stringify(s)} is not a job count from 1 to 100000`);
  return n;
});
const runs = Number(process.env.BENCH_RUNS || 7);
if (!Number.isInteger(runs) || runs < 1 || runs > 100) throw new Error(`BENCH_RUNS must be a whole number from 1 to 100, not ${process.env.BENCH_RUNS}`);
const minutes = Number(process.env.BENCH_MINUTES ?? 1440);
if (!Number.isInteger(minutes) || minutes < 0 || minutes > 10_080) throw new Error(`BENCH_MINUTES must be a whole number from 0 to 10080, not ${process.env.BENCH_MINUTES}`);

/** The URL of `database` on the server of TEST_DATABASE_URL. */
function databaseUrl(database) {
  return `${adminUrl.replace(/\/[^/?]*(\?.*)?$/, "")}/${database}`;
}

function psql(database, sql) {
  return runPsql(databaseUrl(database), sql);
}

function jobsFile(count) {
  const jobs = [];
  for (let i = 0; i < count; i++) {
    jobs.push({
      name: `bench-${String(i).padStart(6, "0")}`,
      labels: { team: `team-${i % 10}`, env: i % 2 ? "prod" : "staging" },
      interval: "60s",
      timeout: "5s",
      desiredState: i % 3 === 0 ? "JOB_STATE_STOPPED" : "JOB_STATE_RUNNING",
      http: { url: `http://127.0.0.1:8081/status/200?job=${i}` },
    });
  }
  const file = path.join(os.tmpdir(), `bench-ui-jobs-${count}-${process.pid}.json`);
  fs.writeFileSync(file, JSON.stringify({ jobs }));
  return file;
}

/** Starts the server over `database` importing `file`; resolves once it serves. */
async function startServer(database, file) {
  const port = await freePort();
  const childEnv = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("MONITOR_") && k !== "DATABASE_URL"),
  );
  const logFile = path.join(os.tmpdir(), `bench-ui-server-${process.pid}.log`);
  const log = fs.openSync(logFile, "w");
  const child = spawn(
    serverBin,
    [
      "--listen",
      `127.0.0.1:${port}`,
      "--database-url",
      databaseUrl(database),
      "--jobs-file",
      file,
    ],
    { env: { ...childEnv, NO_COLOR: "1", RUST_LOG: "warn" }, stdio: ["ignore", log, log] },
  );
  fs.closeSync(log);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 300_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`monitor-server exited: ${fs.readFileSync(logFile, "utf8").slice(-2000)}`);
    try {
      const ready = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2_000) });
      if (ready.ok) return { child, url };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  child.kill("SIGKILL");
  throw new Error("monitor-server did not become ready within 300 s");
}

/** A day (BENCH_MINUTES) of 1-minute rollups per job: mostly 200s, some 500s. */
function seedRollups(database) {
  if (minutes === 0) return;
  psql(
    database,
    `insert into job_metrics (job_id, location, granularity, dt, rt_min, rt_max, rt_sum, rt_count, rt_histogram, checks, passed, data, errors)
     select j.id, '', '1m', date_trunc('minute', now()) - make_interval(mins => m),
            20 + (m % 7), 80 + (m % 13), 50.0 * (1 + (m % 5)), 1 + (m % 5), '{"70": 1}'::jsonb,
            1 + (m % 5), 1 + (m % 5) - (case when m % 97 = 0 then 1 else 0 end),
            case when m % 97 = 0 then '{"200": 1, "500": 1}'::jsonb else '{"200": 1}'::jsonb end,
            case when m % 97 = 0 then '{"CHECK_OUTCOME_ASSERTION_FAILED": 1}'::jsonb else '{}'::jsonb end
       from jobs j cross join generate_series(0, ${minutes - 1}) m`,
  );
  psql(database, "analyze job_metrics");
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function measure(browser, url) {
  const samples = [];
  for (let i = 0; i < runs; i++) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${url}/ui/#/jobs`);
    await page.waitForFunction(() => performance.getEntriesByName("jobs-interactive").length > 0, null, {
      timeout: 60_000,
    });
    const timing = await page.evaluate(() => {
      const mark = performance.getEntriesByName("jobs-interactive")[0];
      const nav = performance.getEntriesByType("navigation")[0];
      const api = performance
        .getEntriesByType("resource")
        .find((entry) => entry.name.includes("/v1/job-summaries"));
      return {
        interactive: mark.startTime,
        dom: nav.domInteractive,
        api: api ? api.duration : NaN,
        rows: document.querySelectorAll("tbody tr").length,
      };
    });
    await context.close();

    const reference = await browser.newContext();
    const refPage = await reference.newPage();
    await refPage.goto(`${url}/ui/LICENSES.txt`, { waitUntil: "load" });
    timing.reference = await refPage.evaluate(() => performance.getEntriesByType("navigation")[0].loadEventEnd);
    await reference.close();
    samples.push(timing);
  }
  return samples;
}

const browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
const rows = [];
try {
  for (const count of sizes) {
    const database = `monitor_bench_ui_${randomBytes(4).toString("hex")}`;
    psql("postgres", `create database "${database}"`);
    const file = jobsFile(count);
    let server;
    try {
      const imported = Date.now();
      server = await startServer(database, file);
      const importSeconds = (Date.now() - imported) / 1000;
      const seeded = Date.now();
      seedRollups(database);
      const seedSeconds = (Date.now() - seeded) / 1000;
      const samples = await measure(browser, server.url);
      const row = {
        jobs: count,
        rollupRows: count * minutes,
        interactive: median(samples.map((s) => s.interactive)),
        interactiveMax: Math.max(...samples.map((s) => s.interactive)),
        dom: median(samples.map((s) => s.dom)),
        api: median(samples.map((s) => s.api)),
        reference: median(samples.map((s) => s.reference)),
        rendered: samples[0].rows,
      };
      row.ratio = row.interactive / row.reference;
      rows.push(row);
      console.log(
        `${count} jobs (${row.rollupRows} rollup rows; import ${importSeconds.toFixed(1)} s, seed ${seedSeconds.toFixed(1)} s): ` +
          `interactive median ${row.interactive.toFixed(0)} ms (max ${row.interactiveMax.toFixed(0)}), ` +
          `dom ${row.dom.toFixed(0)} ms, api ${row.api.toFixed(0)} ms, ` +
          `reference ${row.reference.toFixed(0)} ms, ratio ${row.ratio.toFixed(1)}, rows rendered ${row.rendered}`,
      );
    } finally {
      if (server && server.child.exitCode === null && server.child.signalCode === null) {
        const exited = once(server.child, "exit");
        server.child.kill("SIGTERM");
        await exited;
      }
      fs.rmSync(file, { force: true });
      psql("postgres", `drop database if exists "${database}" with (force)`);
    }
  }
} finally {
  await browser.close();
}

console.log(`\n| jobs | rollup rows | interactive (median of ${runs}) | max | domInteractive | /v1/job-summaries | reference (static file load) | interactive / reference |`);
console.log("|---:|---:|---:|---:|---:|---:|---:|---:|");
for (const r of rows) {
  console.log(
    `| ${r.jobs} | ${r.rollupRows} | ${r.interactive.toFixed(0)} ms | ${r.interactiveMax.toFixed(0)} ms | ${r.dom.toFixed(0)} ms | ${r.api.toFixed(0)} ms | ${r.reference.toFixed(0)} ms | ${r.ratio.toFixed(1)} |`,
  );
}
