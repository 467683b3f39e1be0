// The dashboard's notification channels end to end, in headless Debian
// Chromium driven by playwright-core, against the stack of `scripts/dev up`
// (whose server and alert role may reach the mock on loopback:
// --notify-allow-net 127.0.0.0/8).
//
// Covers: a webhook channel created through the Channels page's form is
// listed (kind, enabled, health) with its secrets answered as ***; Test
// against the mock's /echo shows what the far end said (200 and the start of
// its body); edited to the mock's /status/500 with the secrets left as ***
// (kept), Test shows the refusal (500, error); a bad URL and a blocked
// address are refused with the server's message beside the URL field; a
// rule made through the Alerting form picks a channel by name, a job against
// /status/500 opens an incident, and the incident page lists the delivery to
// that channel with its attempt; the channel's health and last delivery
// follow on the Channels page. Screenshots go to UI_ARTIFACTS.
//
// Run by scripts/ui-test after alerting.test.mjs:
//   node --test-reporter=spec channels.test.mjs
// Settings (environment): MONITOR_URL (default http://127.0.0.1:8080),
// MOCK_URL (default http://127.0.0.1:8081), CHROMIUM_PATH, UI_ARTIFACTS.

import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

import { described, eventually, launchPage, restAt, screenshot as screenshotTo, submitAndClose } from "./support.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const serverUrl = (process.env.MONITOR_URL || "http://127.0.0.1:8080").replace(/\/$/, "");
const mockUrl = (process.env.MOCK_URL || "http://127.0.0.1:8081").replace(/\/$/, "");
const chromiumPath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const artifacts = process.env.UI_ARTIFACTS || path.join(root, "target/ui-artifacts");

const suffix = randomBytes(4).toString("hex");
const hookName = `ui-hook-${suffix}`;
const deliverName = `ui-deliver-${suffix}`;
const ruleName = `ui-channel-rule-${suffix}`;
const jobName = `ui-notified-${suffix}`;
const rest = restAt(serverUrl);

const env = {
  /** @type {import("playwright-core").Browser | undefined} */
  browser: undefined,
  /** @type {import("playwright-core").Page | undefined} */
  page: undefined,
  /** What this run created, removed in after(). */
  jobs: new Set(),
  rules: new Set(),
  channels: new Set(),
  console: [],
};

const screenshot = (page, name) => screenshotTo(page, artifacts, name);

/** The stored channel named `name`, through the API. */
async function channelNamed(name) {
  const listed = await rest("GET", "/v1/notification-channels?pageSize=1000");
  assert.equal(listed.status, 200, JSON.stringify(listed.body));
  return (listed.body.channels ?? []).find((c) => c.name === name);
}

before(
  async () => {
    assert.ok(fs.existsSync(chromiumPath), `${chromiumPath} is missing: apt-get install chromium`);
    fs.mkdirSync(artifacts, { recursive: true });
    const listed = await rest("GET", "/v1/notification-channels");
    assert.equal(listed.status, 200, `the dev server at ${serverUrl} does not answer /v1/notification-channels: run scripts/dev up`);
    ({ browser: env.browser, page: env.page } = await launchPage(chromiumPath, env.console));
  },
  { timeout: 90_000 },
);

after(
  async () => {
    if (env.console.length) fs.writeFileSync(path.join(artifacts, "channels-browser-console.txt"), `${env.console.join("\n")}\n`);
    await env.browser?.close().catch((err) => console.error(`closing Chromium: ${err.message}`));
    const clean = async (route) => rest("DELETE", route).catch((err) => console.error(`cleaning up ${route}: ${err.message}`));
    for (const id of env.jobs) {
      await rest("POST", `/v1/jobs/${id}/stop`).catch(() => {});
      await clean(`/v1/jobs/${id}`);
    }
    for (const id of env.rules) await clean(`/v1/alert-rules/${id}`);
    for (const id of env.channels) await clean(`/v1/notification-channels/${id}`);
  },
  { timeout: 30_000 },
);

test("a webhook channel created on the Channels page is listed, and Test shows the far end's answer", async () => {
  const page = env.page;
  await page.goto(`${serverUrl}/ui/`);
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Channels", exact: true }).click();
  await page.getByRole("heading", { level: 1, name: "Channels" }).waitFor({ timeout: 10_000 });
  assert.equal(await page.locator("[data-nav=channels]").getAttribute("aria-current"), "page");

  await page.getByRole("button", { name: "New channel" }).click();
  const dialog = page.getByRole("dialog", { name: "New channel" });
  await dialog.waitFor();
  await dialog.getByLabel("Name", { exact: true }).fill(hookName);
  assert.equal(await dialog.getByLabel("Kind").inputValue(), "webhook", "webhook is the default kind");
  await dialog.getByLabel("URL", { exact: true }).fill(`${mockUrl}/echo`);
  // No secret header: the mock's /echo answers with the request's headers.
  await dialog.getByLabel("Headers").fill("X-Team: web");
  await dialog.getByLabel("Signing secret").fill(`ui-signing-secret-${suffix}`);
  await dialog.getByLabel("Group wait").fill("0s");
  await submitAndClose(page, dialog, "Create channel");

  const stored = await channelNamed(hookName);
  assert.ok(stored, "the channel exists");
  env.channels.add(stored.id);
  assert.equal(stored.webhook.url, `${mockUrl}/echo`);
  assert.deepEqual(stored.webhook.headers, [{ name: "X-Team", value: "web" }]);
  assert.equal(stored.webhook.signingSecret, "***");
  assert.equal(stored.groupWait, "0s");

  const row = page.locator(`tr[data-name="${hookName}"]`);
  await row.waitFor({ timeout: 10_000 });
  assert.equal(await row.locator("[data-col=kind]").textContent(), "Webhook");
  assert.equal(await row.locator("[data-col=enabled]").textContent(), "yes");
  assert.equal(await row.locator("[data-col=health]").textContent(), "no deliveries yet");
  assert.ok(!(await page.locator("main").textContent()).includes(`ui-signing-secret-${suffix}`), "no secret on the page");

  await page.getByRole("button", { name: `Test channel ${hookName}` }).click();
  const result = page.getByRole("region", { name: `Test of ${hookName}` });
  await result.waitFor({ timeout: 15_000 });
  assert.equal(await result.locator("[data-field=test-delivered]").textContent(), "yes");
  assert.equal(await result.locator("[data-field=test-status]").textContent(), "200");
  // The mock's /echo answers with the request it got: a POST of the test payload.
  const body = await result.locator("[data-field=test-body]").textContent();
  assert.match(body, /"method":\s*"POST"/, `the far end's answer: ${body}`);
  assert.match(body, /"uri":\s*"\/echo"/, `the far end's answer: ${body}`);
  assert.match(body, /x-monitor-signature/, `signed: ${body}`);
  assert.equal(await result.locator("[data-field=test-error]").textContent(), "—");
  assert.match(await result.locator("[data-field=test-duration]").textContent(), /^\d+(\.\d+)?(ms|s)$/);
  await screenshot(page, "channels-test-delivered");
});

test("edited to a refusing URL with its secrets left as ***, Test shows the refusal", async () => {
  const page = env.page;
  await page.getByRole("button", { name: `Edit channel ${hookName}` }).click();
  const dialog = page.getByRole("dialog", { name: `Edit channel ${hookName}` });
  await dialog.waitFor();
  assert.equal(await dialog.getByLabel("Signing secret").inputValue(), "***", "the secret shows as ***");
  assert.equal(await dialog.getByLabel("Headers").inputValue(), "X-Team: web");
  assert.ok(await dialog.getByLabel("Kind").isDisabled(), "the kind cannot change");
  // Same origin: the stored secrets are kept (else the server would refuse the ***).
  await dialog.getByLabel("URL", { exact: true }).fill(`${mockUrl}/status/500`);
  await submitAndClose(page, dialog, "Save channel");
  const stored = await channelNamed(hookName);
  assert.equal(stored.version, "2");
  assert.equal(stored.webhook.url, `${mockUrl}/status/500`);
  assert.equal(stored.webhook.signingSecret, "***");

  await page.getByRole("button", { name: `Test channel ${hookName}` }).click();
  const result = page.getByRole("region", { name: `Test of ${hookName}` });
  await eventually("the refusal", async () => (await result.locator("[data-field=test-status]").textContent()) === "500", { timeout: 15_000 });
  assert.equal(await result.locator("[data-field=test-delivered]").textContent(), "no");
  assert.equal(await result.locator("[data-field=test-error]").textContent(), "HTTP 500");
  await screenshot(page, "channels-test-refused");
});

test("a bad URL and a blocked address are refused with the server's message beside the URL", async () => {
  const page = env.page;
  await page.getByRole("button", { name: "New channel" }).click();
  const dialog = page.getByRole("dialog", { name: "New channel" });
  await dialog.waitFor();
  try {
    await dialog.getByLabel("Name", { exact: true }).fill(`ui-bad-${suffix}`);
    const url = dialog.getByLabel("URL", { exact: true });
    for (const [value, message] of [
      ["ftp://example.com/hook", /http/],
      ["http://169.254.169.254/latest", /blocked|--notify-allow-net/],
    ]) {
      await url.fill(value);
      await dialog.getByRole("button", { name: "Create channel" }).click();
      await eventually(`aria-invalid on the URL for ${value}`, async () => (await url.getAttribute("aria-invalid")) === "true", { timeout: 10_000 });
      const text = await described(url);
      assert.match(text, message, `the URL field's description for ${value}: ${text}`);
      assert.equal(await page.evaluate(() => document.activeElement?.getAttribute("name")), "webhook.url", "focus moves to the URL");
    }
    await screenshot(page, "channels-url-error");
    assert.equal(await channelNamed(`ui-bad-${suffix}`), undefined, "the refused channel must not exist");
  } finally {
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "detached", timeout: 5_000 });
  }
});

test("a rule picks a channel by name, and the incident page lists the delivery to it", async (t) => {
  const page = env.page;
  const created = await rest("POST", "/v1/notification-channels", {
    name: deliverName,
    webhook: { url: `${mockUrl}/echo` },
    groupWait: "0s",
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const channelId = created.body.channel.id;
  env.channels.add(channelId);

  // The rule, through the Alerting page's form, naming the channel by its name.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Alerting", exact: true }).click();
  await page.getByRole("heading", { level: 1, name: "Alerting" }).waitFor({ timeout: 10_000 });
  await page.getByRole("button", { name: "New rule" }).click();
  const dialog = page.getByRole("dialog", { name: "New alert rule" });
  await dialog.waitFor();
  await dialog.getByLabel("Name", { exact: true }).fill(ruleName);
  await dialog.getByLabel("Label selector").fill(`suite=ui-channels-${suffix}`);
  await dialog.getByLabel("Failure threshold").fill("2");
  await dialog.getByLabel(`${deliverName} (Webhook)`).check();
  await submitAndClose(page, dialog, "Create rule");
  const rule = ((await rest("GET", "/v1/alert-rules?pageSize=1000")).body.rules ?? []).find((r) => r.name === ruleName);
  assert.ok(rule, "the rule exists");
  env.rules.add(rule.id);
  assert.deepEqual(rule.channelIds, [channelId], "the rule names the picked channel");

  const job = await rest("POST", "/v1/jobs", {
    name: jobName,
    labels: { suite: `ui-channels-${suffix}` },
    interval: "1s",
    timeout: "1s",
    desiredState: "JOB_STATE_RUNNING",
    http: { url: `${mockUrl}/status/500` },
  });
  assert.equal(job.status, 201, JSON.stringify(job.body));
  env.jobs.add(job.body.job.id);
  const incident = await eventually(
    `an incident of ${jobName} from ${ruleName}`,
    async () => (await rest("GET", `/v1/incidents?jobId=${job.body.job.id}`)).body.incidents?.find((i) => i.ruleId === rule.id),
    { timeout: 60_000, interval: 500 },
  );
  t.diagnostic(`incident ${incident.id}`);
  // The dispatcher delivers the opened notification to the mock's /echo.
  const delivered = await eventually(
    "the opened notification delivered",
    async () => {
      const listed = await rest("GET", `/v1/notification-deliveries?incidentId=${incident.id}`);
      return listed.body.deliveries?.find((d) => d.event === "opened" && d.state === "DELIVERY_STATE_DELIVERED");
    },
    { timeout: 30_000, interval: 500 },
  );
  assert.equal(delivered.channelName, deliverName);

  await page.goto(`${serverUrl}/ui/#/incidents/${incident.id}`);
  await page.getByRole("heading", { level: 1, name: `Incident: ${jobName}` }).waitFor({ timeout: 10_000 });
  const row = page.locator(`table.deliveries tbody tr[data-channel="${deliverName}"][data-event="opened"]`);
  await row.waitFor({ timeout: 15_000 });
  assert.equal(await row.getAttribute("data-state"), "delivered");
  assert.equal(await row.locator("[data-col=delivery-state]").textContent(), "delivered");
  const attempts = await row.locator("[data-col=attempts] li").allTextContents();
  assert.equal(attempts.length, 1, `one attempt: ${attempts}`);
  assert.match(attempts[0], /delivered: HTTP 200/, `the attempt: ${attempts[0]}`);
  await screenshot(page, "incident-deliveries");

  // The channel's health and last delivery follow on the Channels page.
  await page.goto(`${serverUrl}/ui/#/channels`);
  const channelRow = page.locator(`tr[data-name="${deliverName}"]`);
  await channelRow.waitFor({ timeout: 10_000 });
  await eventually("healthy", async () => (await channelRow.locator("[data-col=health]").textContent()) === "healthy");
  assert.match(await channelRow.locator("[data-col=last-delivery]").textContent(), /delivered: HTTP 200/);
  await screenshot(page, "channels");
});

test("the browser reported no script errors on the channel pages", () => {
  // The refused channels answer 400; Chromium logs them. Anything else is a bug.
  const unexpected = env.console.filter((line) => !/Failed to load resource: the server responded with a status of 400/.test(line));
  assert.deepEqual(unexpected, [], "console errors");
});
