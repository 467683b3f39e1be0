// What the browser tests and the dashboard benchmark share: how Chromium is
// launched here, a free local port, psql, a REST client and polling.

import { spawnSync } from "node:child_process";
import { once } from "node:events";
import net from "node:net";

import { chromium } from "playwright-core";

/** Headless Chromium flags; this machine has no internet: without these Chromium keeps dialling out. */
export const chromiumArgs = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
];

/**
 * Headless Chromium at `executablePath` with one 1280×900 page; the page's
 * console errors and uncaught exceptions are pushed to `errors` (for a
 * test's closing "no script errors" check).
 */
export async function launchPage(executablePath, errors) {
  const browser = await chromium.launch({ executablePath, headless: true, args: chromiumArgs, timeout: 60_000 });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(`${page.url()}: ${msg.text()}`);
  });
  page.on("pageerror", (err) => errors.push(`${page.url()}: uncaught ${err.message}`));
  return { browser, page };
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort() {
  const probe = net.createServer();
  probe.listen(0, "127.0.0.1");
  await once(probe, "listening");
  const { port } = probe.address();
  probe.close();
  await once(probe, "close");
  return port;
}

/** Runs `sql` with psql against the database URL `url`; returns its output, trimmed. */
export function psql(url, sql) {
  const run = spawnSync("psql", [url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql], { encoding: "utf8" });
  if (run.error) throw new Error(`psql could not run (${run.error.message}): install postgresql-client`);
  if (run.status !== 0) throw new Error(`psql ${JSON.stringify(sql)} failed: ${run.stderr.trim()}`);
  return run.stdout.trim();
}

/** A REST client of the server at `baseUrl` (setup and cross-checks from Node): `rest(method, route, body)` → { status, body }. */
export function restAt(baseUrl) {
  return async function rest(method, route, body) {
    const response = await fetch(`${baseUrl}${route}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : {} };
  };
}

/** Retries `check` until it returns a truthy value or `timeout` ms passed; returns that value. */
export async function eventually(what, check, { timeout = 30_000, interval = 250 } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
      last = `last value: ${JSON.stringify(value)}`;
    } catch (err) {
      last = `last error: ${err.message}`;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeout / 1000} s (${last})`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** A full-page screenshot of `page` as `dir`/`name`.png; a failure is only logged. */
export async function screenshot(page, dir, name) {
  if (!page || page.isClosed()) return;
  try {
    await page.screenshot({ path: `${dir}/${name}.png`, fullPage: true });
  } catch (err) {
    console.error(`screenshot ${name} failed: ${err.message}`);
  }
}

/** The texts the aria-describedby of `locator` points at, joined with " | ". */
export function described(locator) {
  return locator.evaluate((input) =>
    (input.getAttribute("aria-describedby") ?? "")
      .split(/\s+/)
      .map((id) => document.getElementById(id)?.textContent ?? "")
      .join(" | "),
  );
}

/** Submits a form dialog with `button` and waits for it to close, reporting what it shows if it does not. */
export async function submitAndClose(page, dialog, button) {
  await dialog.getByRole("button", { name: button }).click();
  try {
    await dialog.waitFor({ state: "detached", timeout: 10_000 });
  } catch (err) {
    const shown = await dialog.locator(".form-alert, .field-error").allTextContents();
    await page.keyboard.press("Escape");
    throw new Error(`the form did not close; it shows ${JSON.stringify(shown.filter(Boolean))} (${err.message})`);
  }
}
