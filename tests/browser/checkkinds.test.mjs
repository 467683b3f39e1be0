// The job form and the job page for every check kind of Job.check, in
// headless Debian Chromium driven by playwright-core, against a running
// monitor-server (the stack of `scripts/dev up`; no worker is needed: the
// jobs stay stopped).
//
// Covers: a job of each kind (HTTP, TCP, DNS, ICMP, TLS, gRPC health,
// WebSocket, SSH, SOCKS5) created through the form reads back through the
// API as the proto3 JSON the form was filled with, secrets as ***; opened
// again in the form and saved unchanged it stays the same job (version 1:
// the form shows every stored value and writes it back as it was); a proxy
// password edited around stays stored (***) while another field changes; a
// field the server refuses (DNS name "bad..name", ICMP count 11, a TCP
// proxy host, a gRPC port, an HTTP header condition's name) shows the
// server's message beside that input, which gets focus, and so does a
// violation of any kind's path (answered by routing the create request:
// the form's mapping of every proto path, rows and lists included); a value the form
// cannot read (max loss "abc") is refused before any request; and the job
// page shows each kind's configuration and each placement's latest result
// (outcome, error, assertions, the kind's detail: HTTP timing and
// certificate, DNS answers, ping round trips, the TLS chain, ...) from
// GetJobStatus answers shaped like the proto (checkkinds.fixtures.mjs,
// served by routing the page's status request), secrets never shown.
// Screenshots go to UI_ARTIFACTS.
//
// Run by scripts/ui-test after channels.test.mjs:
//   node --test-reporter=spec checkkinds.test.mjs
// Settings (environment): MONITOR_URL (default http://127.0.0.1:8080),
// CHROMIUM_PATH, UI_ARTIFACTS.

import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

import { FIXTURES, OUTCOME_TEXT, statusFixture } from "./checkkinds.fixtures.mjs";
import { described, eventually, launchPage, restAt, screenshot as screenshotTo, submitAndClose } from "./support.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const serverUrl = (process.env.MONITOR_URL || "http://127.0.0.1:8080").replace(/\/$/, "");
const chromiumPath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const artifacts = process.env.UI_ARTIFACTS || path.join(root, "target/ui-artifacts");

const suffix = randomBytes(4).toString("hex");
const rest = restAt(serverUrl);

const env = {
  /** @type {import("playwright-core").Browser | undefined} */
  browser: undefined,
  /** @type {import("playwright-core").Page | undefined} */
  page: undefined,
  /** Ids of the jobs this run created, deleted in after(). */
  jobs: new Set(),
  console: [],
};

const screenshot = (page, name) => screenshotTo(page, artifacts, name);

/** base64 of UTF-8 text, as proto3 JSON writes bytes. */
const base64 = (text) => Buffer.from(text, "utf8").toString("base64");

/** The stored job named `name`, through the API. */
async function jobNamed(name) {
  const listed = await rest("GET", `/v1/jobs?nameContains=${encodeURIComponent(name)}`);
  assert.equal(listed.status, 200, JSON.stringify(listed.body));
  return (listed.body.jobs ?? []).find((j) => j.name === name);
}

/** Opens the New job dialog on the jobs page, names the job and picks `kind`; returns the dialog and the kind's fieldset. */
async function newJobForm(page, name, kind) {
  await page.goto(`${serverUrl}/ui/#/jobs`);
  await page.getByRole("button", { name: "New job" }).click();
  const dialog = page.getByRole("dialog", { name: "New job" });
  await dialog.waitFor();
  await dialog.getByLabel("Name", { exact: true }).fill(name);
  await dialog.getByLabel("Check kind").selectOption(kind);
  const group = dialog.getByRole("group", { name: FIXTURES[kind].label, exact: true });
  await group.waitFor();
  return { dialog, group };
}

/** A labelled control inside `scope`, by its exact label. */
const input = (scope, label) => scope.getByLabel(label, { exact: true });

/** Adds a row to the rows field of `item` and fills its columns (text or select by value). */
async function addRow(group, item, values) {
  const Item = item.charAt(0).toUpperCase() + item.slice(1);
  await group.getByRole("button", { name: `Add ${item}` }).click();
  const n = await group.getByRole("button", { name: new RegExp(`^Remove ${item} \\d+$`) }).count();
  for (const [column, value] of Object.entries(values)) {
    const control = input(group, `${Item} ${n} ${column}`);
    if ((await control.evaluate((el) => el.tagName)) === "SELECT") await control.selectOption(value);
    else await control.fill(value);
  }
}

/**
 * Each kind: how to fill its fieldset, and its member of the stored job as
 * the API answers it (proto3 JSON: defaults left out, secrets as ***).
 */
const KIND_CASES = {
  http: {
    fill: async (group) => {
      await input(group, "URL").fill("https://127.0.0.1:8443/json");
      await input(group, "Method").selectOption("HTTP_METHOD_POST");
      await input(group, "Headers").fill("X-Team: web\nAuthorization: Bearer ui-secret-token");
      await input(group, "Body").fill('{"probe":true}');
      await input(group, "Accepted status codes").fill("200-299,304");
      await input(group, "Max response time").fill("800ms");
      await input(group, "Certificate min days").fill("14");
      await addRow(group, "header condition", { name: "content-type", condition: "HEADER_CONDITION_EQUALS", value: "application/json" });
      await addRow(group, "header condition", { name: "x-request-id", condition: "HEADER_CONDITION_EXISTS" });
      await addRow(group, "JSONPath condition", { path: "$.status", condition: "JSON_CONDITION_EQUALS", value: '"ok"' });
      await addRow(group, "JSONPath condition", { path: "$.latency_ms", condition: "JSON_CONDITION_LESS_THAN", value: "250" });
    },
    stored: {
      url: "https://127.0.0.1:8443/json",
      method: "HTTP_METHOD_POST",
      headers: [
        { name: "X-Team", value: "web" },
        { name: "Authorization", value: "***" },
      ],
      body: base64('{"probe":true}'),
      assertions: {
        acceptedStatus: [
          { min: 200, max: 299 },
          { min: 304, max: 304 },
        ],
        maxResponseTime: "0.800s",
        headers: [
          { name: "content-type", condition: "HEADER_CONDITION_EQUALS", value: "application/json" },
          { name: "x-request-id", condition: "HEADER_CONDITION_EXISTS" },
        ],
        jsonPath: [
          { path: "$.status", condition: "JSON_CONDITION_EQUALS", value: '"ok"' },
          { path: "$.latency_ms", condition: "JSON_CONDITION_LESS_THAN", value: "250" },
        ],
        certMinDaysRemaining: 14,
      },
    },
  },
  tcp: {
    fill: async (group) => {
      await input(group, "Host").fill("127.0.0.1");
      await input(group, "Port").fill("6379");
      // Typed with escapes: a one-line input cannot hold CR LF.
      await input(group, "Send").fill("PING\\r\\n");
      await input(group, "Answer contains").fill("PONG");
      await input(group, "Answer matches (regular expression)").fill("^\\+PONG");
    },
    stored: { host: "127.0.0.1", port: 6379, send: "PING\r\n", expectContains: "PONG", expectRegex: "^\\+PONG" },
  },
  dns: {
    fill: async (group) => {
      await input(group, "Query name").fill("example.test");
      await input(group, "Record type").selectOption("DNS_RECORD_TYPE_MX");
      await input(group, "DNS server").fill("127.0.0.1:5353");
      await input(group, "Transport").selectOption("DNS_TRANSPORT_TCP");
      await input(group, "Response code").fill("NOERROR");
      await input(group, "Answers contain").fill("10 mail.example.test.");
      await input(group, "Answers are exactly").fill("10 mail.example.test., 20 backup.example.test.");
      await input(group, "An answer matches (regular expression)").fill("mail\\.example");
    },
    stored: {
      name: "example.test",
      recordType: "DNS_RECORD_TYPE_MX",
      server: "127.0.0.1:5353",
      transport: "DNS_TRANSPORT_TCP",
      assertions: {
        rcode: "NOERROR",
        answersContain: ["10 mail.example.test."],
        answersEqual: ["10 mail.example.test.", "20 backup.example.test."],
        answerRegex: "mail\\.example",
      },
    },
  },
  icmp: {
    fill: async (group) => {
      await input(group, "Host").fill("127.0.0.1");
      await input(group, "Echo requests").fill("5");
      await input(group, "Between requests").fill("100ms");
      // 0 is a condition (no loss at all), not "unset": the field is optional in the proto.
      await input(group, "Max loss %").fill("0");
      await input(group, "Max average round trip").fill("50ms");
    },
    stored: { host: "127.0.0.1", count: 5, interval: "0.100s", assertions: { maxLossPercent: 0, maxAvgRtt: "0.050s" } },
  },
  tls: {
    fill: async (group) => {
      await input(group, "Host").fill("127.0.0.1");
      await input(group, "Port").fill("2525");
      await input(group, "Server name (SNI)").fill("mail.example.test");
      await input(group, "STARTTLS").selectOption("TLS_START_TLS_SMTP");
      await input(group, "Allow an untrusted chain").check();
      await input(group, "Min days remaining").fill("21");
    },
    stored: {
      host: "127.0.0.1",
      port: 2525,
      serverName: "mail.example.test",
      starttls: "TLS_START_TLS_SMTP",
      assertions: { allowUntrustedChain: true, minDaysRemaining: 21 },
    },
  },
  grpcHealth: {
    fill: async (group) => {
      await input(group, "Host").fill("127.0.0.1");
      await input(group, "Port").fill("50051");
      await input(group, "Service").fill("monitor.v1.JobService");
      await input(group, "Use TLS").check();
      await input(group, "Skip TLS certificate verification").check();
      await input(group, "Metadata").fill("x-team: web\nx-token: ui-grpc-token");
      await input(group, "Secret metadata names").fill("x-token");
    },
    stored: {
      host: "127.0.0.1",
      port: 50051,
      service: "monitor.v1.JobService",
      tls: true,
      insecureSkipTlsVerify: true,
      metadata: [
        { name: "x-team", value: "web" },
        { name: "x-token", value: "***" },
      ],
      secretMetadata: ["x-token"],
    },
  },
  websocket: {
    fill: async (group) => {
      await input(group, "WebSocket URL").fill("wss://127.0.0.1:8443/ws");
      await input(group, "Headers").fill("X-Team: web");
      await input(group, "Send").fill("ping");
      await input(group, "Reply contains").fill("pong");
      await input(group, "Reply matches (regular expression)").fill("^pong");
      await input(group, "Skip TLS certificate verification").check();
    },
    stored: {
      url: "wss://127.0.0.1:8443/ws",
      headers: [{ name: "X-Team", value: "web" }],
      send: "ping",
      expectContains: "pong",
      expectRegex: "^pong",
      insecureSkipTlsVerify: true,
    },
  },
  ssh: {
    fill: async (group) => {
      await input(group, "Host").fill("127.0.0.1");
      await input(group, "Port").fill("2222");
      await input(group, "Banner contains").fill("OpenSSH");
      await input(group, "Banner matches (regular expression)").fill("^SSH-2\\.0-");
    },
    stored: { host: "127.0.0.1", port: 2222, bannerContains: "OpenSSH", bannerRegex: "^SSH-2\\.0-" },
  },
  socks5: {
    fill: async (group) => {
      await input(group, "Proxy host").fill("127.0.0.1");
      await input(group, "Proxy port").fill("1080");
      await input(group, "Proxy user name").fill("probe");
      await input(group, "Proxy password").fill("ui-proxy-password");
      await input(group, "Target host").fill("example.test");
      await input(group, "Target port").fill("443");
    },
    stored: { proxy: { host: "127.0.0.1", port: 1080, username: "probe", password: "***" }, targetHost: "example.test", targetPort: 443 },
  },
};

before(
  async () => {
    assert.ok(fs.existsSync(chromiumPath), `${chromiumPath} is missing: apt-get install chromium`);
    fs.mkdirSync(artifacts, { recursive: true });
    const info = await rest("GET", "/v1/info");
    assert.equal(info.status, 200, `the server at ${serverUrl} does not answer /v1/info: run scripts/dev up`);
    ({ browser: env.browser, page: env.page } = await launchPage(chromiumPath, env.console));
  },
  { timeout: 90_000 },
);

after(
  async () => {
    if (env.console.length) fs.writeFileSync(path.join(artifacts, "checkkinds-browser-console.txt"), `${env.console.join("\n")}\n`);
    await env.browser?.close().catch((err) => console.error(`closing Chromium: ${err.message}`));
    for (const id of env.jobs) await rest("DELETE", `/v1/jobs/${id}`).catch((err) => console.error(`cleaning up job ${id}: ${err.message}`));
  },
  { timeout: 30_000 },
);

for (const [kind, { fill, stored }] of Object.entries(KIND_CASES)) {
  test(`a ${kind} job made in the form reads back as filled in, and saved unchanged stays the same job`, async () => {
    const page = env.page;
    const name = `ui-kind-${kind}-${suffix}`;
    const { dialog, group } = await newJobForm(page, name, kind);
    await fill(group);
    await submitAndClose(page, dialog, "Create job");

    const job = await jobNamed(name);
    assert.ok(job, `the ${kind} job exists`);
    env.jobs.add(job.id);
    assert.deepEqual(job[kind], stored, `the stored ${kind} check`);
    for (const other of Object.keys(KIND_CASES)) if (other !== kind) assert.equal(job[other], undefined, `no ${other} member`);
    assert.ok(!/ui-(secret|grpc|proxy)-/.test(JSON.stringify(job)), "no secret in the answer");

    // The job page shows the check; then the edit form, saved as it opens, changes nothing.
    await page.goto(`${serverUrl}/ui/#/jobs/${job.id}`);
    await page.locator("[data-fact=check]").waitFor({ timeout: 10_000 });
    assert.equal(await page.locator("[data-fact=check]").textContent(), FIXTURES[kind].label);
    assert.ok(!/ui-(secret|grpc|proxy)-/.test((await page.locator("main").textContent()) ?? ""), "no secret on the job page");
    await page.getByRole("button", { name: `Edit ${name}` }).click();
    const edit = page.getByRole("dialog", { name: `Edit ${name}` });
    await edit.waitFor();
    assert.equal(await edit.getByLabel("Check kind").inputValue(), kind);
    await submitAndClose(page, edit, "Save changes");
    const again = await rest("GET", `/v1/jobs/${job.id}`);
    assert.equal(again.body.job.version, "1", `saving the form unchanged changes nothing: ${JSON.stringify(again.body.job[kind])}`);
    await screenshot(page, `checkkinds-${kind}-job`);
  });
}

test("a proxy password is write-only: *** in the form, kept while another field changes", async () => {
  const page = env.page;
  const name = `ui-proxy-${suffix}`;
  const { dialog, group } = await newJobForm(page, name, "tcp");
  await input(group, "Host").fill("example.test");
  await input(group, "Port").fill("443");
  await input(group, "Proxy host").fill("127.0.0.1");
  await input(group, "Proxy port").fill("1080");
  await input(group, "Proxy user name").fill("probe");
  await input(group, "Proxy password").fill("ui-proxy-password");
  await submitAndClose(page, dialog, "Create job");
  const job = await jobNamed(name);
  assert.ok(job, "the job exists");
  env.jobs.add(job.id);
  assert.deepEqual(job.tcp.proxy, { host: "127.0.0.1", port: 1080, username: "probe", password: "***" });

  await page.goto(`${serverUrl}/ui/#/jobs/${job.id}`);
  await page.getByRole("button", { name: `Edit ${name}` }).click();
  const edit = page.getByRole("dialog", { name: `Edit ${name}` });
  const tcp = edit.getByRole("group", { name: "TCP connect", exact: true });
  assert.equal(await input(tcp, "Proxy password").inputValue(), "***", "the password shows as ***");
  await input(tcp, "Answer contains").fill("HTTP/1.1");
  await submitAndClose(page, edit, "Save changes");
  const saved = (await rest("GET", `/v1/jobs/${job.id}`)).body.job;
  assert.equal(saved.version, "2");
  assert.equal(saved.tcp.expectContains, "HTTP/1.1");
  // Sent back as ***, it was kept: the server refuses *** where nothing is stored.
  assert.deepEqual(saved.tcp.proxy, { host: "127.0.0.1", port: 1080, username: "probe", password: "***" });
  assert.ok(!((await page.locator("main").textContent()) ?? "").includes("ui-proxy-password"), "no password on the page");
});

/**
 * Bad fields: the job as JSON (for the server's own message) and how to
 * fill the form the same way; `control` is the input the message belongs
 * beside, `name` its form key.
 */
const BAD_FIELDS = [
  {
    path: "job.tcp.port",
    kind: "tcp",
    check: { host: "127.0.0.1", port: 0 },
    fill: async (group) => {
      await input(group, "Host").fill("127.0.0.1");
      await input(group, "Port").fill("0");
    },
    control: "Port",
    name: "tcp.port",
  },
  {
    path: "job.tcp.host",
    kind: "tcp",
    check: { host: "bad host!", port: 80 },
    fill: async (group) => {
      await input(group, "Host").fill("bad host!");
      await input(group, "Port").fill("80");
    },
    control: "Host",
    name: "tcp.host",
  },
  {
    path: "job.dns.name",
    kind: "dns",
    check: { name: "bad..name" },
    fill: (group) => input(group, "Query name").fill("bad..name"),
    control: "Query name",
    name: "dns.name",
  },
  {
    path: "job.icmp.count",
    kind: "icmp",
    check: { host: "127.0.0.1", count: 11 },
    fill: async (group) => {
      await input(group, "Host").fill("127.0.0.1");
      await input(group, "Echo requests").fill("11");
    },
    control: "Echo requests",
    name: "icmp.count",
  },
  {
    path: "job.tcp.proxy.host",
    kind: "tcp",
    check: { host: "example.test", port: 443, proxy: { host: "bad proxy!", port: 1080 } },
    fill: async (group) => {
      await input(group, "Host").fill("example.test");
      await input(group, "Port").fill("443");
      await input(group, "Proxy host").fill("bad proxy!");
      await input(group, "Proxy port").fill("1080");
    },
    control: "Proxy host",
    name: "tcp.proxy.host",
  },
  {
    path: "job.grpc_health.port",
    kind: "grpcHealth",
    check: { host: "127.0.0.1", port: 70000 },
    fill: async (group) => {
      await input(group, "Host").fill("127.0.0.1");
      await input(group, "Port").fill("70000");
    },
    control: "Port",
    name: "grpcHealth.port",
  },
  {
    path: "job.http.assertions.headers[0].name",
    kind: "http",
    check: { url: "http://127.0.0.1:8081/", assertions: { headers: [{ name: "bad name", condition: "HEADER_CONDITION_EXISTS" }] } },
    fill: async (group) => {
      await input(group, "URL").fill("http://127.0.0.1:8081/");
      await addRow(group, "header condition", { name: "bad name", condition: "HEADER_CONDITION_EXISTS" });
    },
    // The row's own input is marked and focused; the message is the rows' field error.
    control: "Header condition 1 name",
    name: null,
  },
];

for (const [index, bad] of BAD_FIELDS.entries()) {
  test(`a refused ${bad.path} shows the server's message beside its input`, async () => {
    // What the server says about this field, asked directly.
    const refused = await rest("POST", "/v1/jobs", { name: `ui-bad-api-${index}-${suffix}`, interval: "30s", timeout: "5s", [bad.kind]: bad.check });
    if (refused.status === 201) await rest("DELETE", `/v1/jobs/${refused.body.job.id}`);
    assert.equal(refused.status, 400, `the server refuses ${JSON.stringify(bad.check)}: ${JSON.stringify(refused.body)}`);
    const violations = refused.body.details?.flatMap((d) => d.fieldViolations ?? []) ?? [];
    const violation = violations.find((v) => v.field === bad.path);
    assert.ok(violation, `a violation of ${bad.path} among ${JSON.stringify(violations)}`);

    const page = env.page;
    const name = `ui-bad-${bad.kind}-${suffix}`;
    const { dialog, group } = await newJobForm(page, name, bad.kind);
    try {
      await bad.fill(group);
      await dialog.getByRole("button", { name: "Create job" }).click();
      const control = input(group, bad.control);
      await eventually(`aria-invalid on ${bad.control}`, async () => (await control.getAttribute("aria-invalid")) === "true", { timeout: 10_000 });
      const text = await described(control);
      assert.ok(text.includes(violation.description), `${bad.control}'s description has "${violation.description}": ${text}`);
      const focused = await page.evaluate(() => document.activeElement?.getAttribute("aria-label") ?? document.activeElement?.getAttribute("name"));
      assert.equal(focused, bad.name ?? bad.control, "focus moves to the refused input");
      await screenshot(page, `checkkinds-error-${bad.path.replace(/[^a-z0-9]+/gi, "-")}`);
      assert.equal(await jobNamed(name), undefined, "the refused job must not exist");
    } finally {
      await page.keyboard.press("Escape");
      await dialog.waitFor({ state: "detached", timeout: 5_000 });
    }
  });
}

/**
 * Where the form puts a violation of each kind's paths (proto names, as the
 * server writes them): the input labelled `control`, its message prefixed
 * by `detail` for an entry of a list. `rows` adds that many rows first.
 */
const PLACEMENTS = [
  { kind: "dns", path: "job.dns.name", control: "Query name" },
  { kind: "dns", path: "job.dns.assertions.answers_equal[2]", control: "Answers are exactly", detail: "item 3" },
  { kind: "icmp", path: "job.icmp.count", control: "Echo requests" },
  { kind: "icmp", path: "job.icmp.assertions.max_loss_percent", control: "Max loss %" },
  { kind: "tls", path: "job.tls.assertions.min_days_remaining", control: "Min days remaining" },
  { kind: "grpcHealth", path: "job.grpc_health.port", control: "Port" },
  { kind: "grpcHealth", path: "job.grpc_health.metadata[1].value", control: "Metadata", detail: "header 2 value" },
  { kind: "websocket", path: "job.websocket.url", control: "WebSocket URL" },
  { kind: "ssh", path: "job.ssh.banner_regex", control: "Banner matches (regular expression)" },
  { kind: "socks5", path: "job.socks5.proxy.password", control: "Proxy password" },
  { kind: "socks5", path: "job.socks5.target_port", control: "Target port" },
  // A violation of the whole proxy message: its first field.
  { kind: "tcp", path: "job.tcp.proxy", control: "Proxy host" },
  { kind: "tcp", path: "job.tcp.proxy.host", control: "Proxy host" },
  { kind: "http", path: "job.http.proxy.port", control: "Proxy port" },
  { kind: "http", path: "job.http.assertions.cert_min_days_remaining", control: "Certificate min days" },
  { kind: "http", path: "job.http.assertions.json_path[1].value", control: "JSONPath condition 2 value", rows: ["JSONPath condition", 2], detail: "JSONPath condition 2 value" },
  { kind: "http", path: "job.http.assertions.headers[0].condition", control: "Header condition 1 condition", rows: ["header condition", 1], detail: "header condition 1 condition" },
];

test("a violation of any kind's field (as the server names it) lands beside that input", async () => {
  const page = env.page;
  for (const placement of PLACEMENTS) {
    const description = `refused for the test (${placement.path})`;
    await page.unrouteAll();
    await page.route(
      (url) => url.pathname === "/v1/jobs",
      (route) =>
        route.request().method() === "POST"
          ? route.fulfill({
              status: 400,
              json: {
                code: 3,
                message: `invalid request: ${placement.path}: ${description}`,
                details: [{ "@type": "type.googleapis.com/google.rpc.BadRequest", fieldViolations: [{ field: placement.path, description }] }],
              },
            })
          : route.continue(),
    );
    const { dialog, group } = await newJobForm(page, `ui-placed-${suffix}`, placement.kind);
    try {
      const [item, count] = placement.rows ?? ["", 0];
      for (let i = 0; i < count; i++) await addRow(group, item, { [item.startsWith("JSON") ? "path" : "name"]: `$.row${i}` });
      await dialog.getByRole("button", { name: "Create job" }).click();
      const control = input(group, placement.control);
      await eventually(`aria-invalid on ${placement.control} for ${placement.path}`, async () => (await control.getAttribute("aria-invalid")) === "true", {
        timeout: 5_000,
      });
      const want = placement.detail ? `${placement.detail}: ${description}` : description;
      const text = await described(control);
      assert.ok(text.includes(want), `${placement.path}: ${placement.control}'s description has "${want}": ${text}`);
      assert.equal(
        await control.evaluate((el) => el === document.activeElement),
        true,
        `${placement.path}: focus moves to ${placement.control}`,
      );
      assert.equal(await dialog.locator(".form-alert").textContent(), "Some fields need attention: see the messages beside them.");
      if (placement.rows) await screenshot(page, `checkkinds-placed-${placement.kind}-row`);
    } finally {
      await page.keyboard.press("Escape");
      await dialog.waitFor({ state: "detached", timeout: 5_000 });
    }
  }
  await page.unrouteAll();
});

test("a max loss the form cannot read is refused beside its input before any request", async () => {
  const page = env.page;
  const { dialog, group } = await newJobForm(page, `ui-bad-loss-${suffix}`, "icmp");
  try {
    await input(group, "Host").fill("127.0.0.1");
    const loss = input(group, "Max loss %");
    await loss.fill("abc");
    let posted = false;
    page.on("request", (request) => (posted ||= request.method() === "POST" && request.url().endsWith("/v1/jobs")));
    await dialog.getByRole("button", { name: "Create job" }).click();
    await eventually("aria-invalid on Max loss %", async () => (await loss.getAttribute("aria-invalid")) === "true", { timeout: 5_000 });
    assert.match(await described(loss), /"abc" is not a number/);
    assert.equal(posted, false, "nothing was sent");
  } finally {
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "detached", timeout: 5_000 });
  }
});

test("the job page shows each kind's check and each placement's latest result", async () => {
  const page = env.page;
  // One real job for the page to open; its answers are replaced by each kind's fixtures.
  const created = await rest("POST", "/v1/jobs", { name: `ui-results-${suffix}`, interval: "30s", timeout: "5s", http: { url: "http://127.0.0.1:8081/" } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const real = created.body.job;
  env.jobs.add(real.id);
  for (const [kind, fixture] of Object.entries(FIXTURES)) {
    const job = { ...real, name: `ui-results-${kind}-${suffix}`, http: undefined, [kind]: fixture.check };
    const status = statusFixture(job, fixture.ok, fixture.bad);
    await page.unrouteAll();
    await page.route(
      (url) => url.pathname === `/v1/jobs/${real.id}`,
      (route) => (route.request().method() === "GET" ? route.fulfill({ json: { job } }) : route.continue()),
    );
    await page.route(
      (url) => url.pathname === `/v1/jobs/${real.id}/status`,
      (route) => route.fulfill({ json: status }),
    );
    await page.goto(`${serverUrl}/ui/#/jobs/${real.id}`);
    await page.getByRole("heading", { level: 1, name: job.name }).waitFor({ timeout: 10_000 });

    // The check's configuration, by the kind's settings.
    const spec = page.getByRole("region", { name: "Specification" });
    for (const [key, want] of Object.entries(fixture.configFacts)) {
      const text = (await spec.locator(`[data-fact="${key}"]`).textContent({ timeout: 5_000 })) ?? "";
      assert.equal(text.trim(), want, `${kind}: the job page's ${key}`);
    }
    // Each placement's latest result.
    for (const [location, result, facts] of [
      ["local-a", fixture.ok, fixture.okFacts],
      ["local-b", fixture.bad, fixture.badFacts],
    ]) {
      const card = page.getByRole("region", { name: `Latest result in ${location}` });
      await card.waitFor({ timeout: 10_000 });
      assert.equal(await card.locator("[data-fact=outcome]").textContent(), OUTCOME_TEXT[result.outcome], `${kind} ${location}: outcome`);
      if (result.error) assert.equal(await card.locator("[data-fact=error]").textContent(), result.error, `${kind} ${location}: error`);
      else assert.equal(await card.locator("[data-fact=error]").count(), 0, `${kind} ${location}: no error`);
      const assertions = await card.locator("ul.assertions li").evaluateAll((items) =>
        items.map((li) => ({ name: li.dataset.assertion, passed: li.dataset.passed === "true", text: li.textContent })),
      );
      assert.deepEqual(
        assertions.map(({ name, passed }) => ({ name, passed })),
        (result.assertions ?? []).map(({ name, passed }) => ({ name, passed })),
        `${kind} ${location}: the assertions`,
      );
      (result.assertions ?? []).forEach((a, i) => {
        assert.ok(assertions[i].text.includes(a.detail), `${kind} ${location}: assertion ${a.name} shows "${a.detail}": ${assertions[i].text}`);
        assert.ok(assertions[i].text.includes(a.passed ? "passed" : "failed"), `${kind} ${location}: in words, not colour alone`);
      });
      for (const [key, want] of Object.entries(facts)) {
        const text = ((await card.locator(`[data-fact="${key}"]`).textContent({ timeout: 5_000 })) ?? "").trim();
        if (want instanceof RegExp) assert.match(text, want, `${kind} ${location}: ${key}`);
        else assert.equal(text, want, `${kind} ${location}: ${key}`);
      }
    }
    assert.ok(!((await page.locator("main").textContent()) ?? "").includes("ui-secret"), "no secret on the page");
    await screenshot(page, `checkkinds-results-${kind}`);
  }
  await page.unrouteAll();
});

test("the browser reported no script errors on the check kind pages", () => {
  // The refused jobs answer 400; Chromium logs them. Anything else is a bug.
  const unexpected = env.console.filter((line) => !/Failed to load resource: the server responded with a status of 400/.test(line));
  assert.deepEqual(unexpected, [], "console errors");
});
