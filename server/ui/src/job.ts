// The job page: the spec (readable, from the check kind's settings table,
// and raw JSON), its status with placements and each placement's latest
// result (results.ts), uPlot charts of latency and of checks by status code from
// QueryMetrics with granularity and range selectors, and a table of the
// recent minutes, and its alerting (open incident, covering rules);
// refreshed every 5 s while the tab is visible.

import { deleteJob, editJob, toggleJob } from "./actions";
import { ApiError, Code, api, describe } from "./api";
import { LatencyChart, StatusChart } from "./charts";
import { checkKindOf, checkSpec } from "./checkkinds";
import { alerts, h, replaceChildren, setText } from "./dom";
import {
  absoluteTime,
  clockTime,
  humanDuration,
  intOf,
  millis,
  outcomeClass,
  outcomeName,
  percent,
  phaseName,
  relativeTime,
  stateName,
  sortedEntries,
} from "./format";
import { JobAlertsCard } from "./jobalerts";
import { Poller } from "./poller";
import { type Fact, factList, resultView } from "./results";
import { settingDisplay, valueAt } from "./settings";
import type { Job, JobPlacement, JobStatus, MetricPoint, QueryMetricsResponse } from "./types";
import type { View } from "./view";

const REFRESH_MS = 5000;
const RECENT_MINUTES = 15;

const GRANULARITIES = [
  { value: "1m", label: "1 minute", seconds: 60 },
  { value: "1h", label: "1 hour", seconds: 3600 },
  { value: "1d", label: "1 day", seconds: 86400 },
] as const;
const RANGES = [
  { value: "1h", label: "Last hour", seconds: 3600 },
  { value: "6h", label: "Last 6 hours", seconds: 6 * 3600 },
  { value: "24h", label: "Last 24 hours", seconds: 86400 },
  { value: "7d", label: "Last 7 days", seconds: 7 * 86400 },
] as const;
/** QueryMetrics refuses ranges of more buckets than this. */
const MAX_BUCKETS = 10000;

/** The chart settings outlive the page, so the next job opens the same way. */
const chartSettings = { granularity: "1m", range: "1h" };

function countsText(counts: Record<string, string> | undefined, readable = (k: string) => k): string {
  const entries = Object.entries(counts ?? {})
    .filter(([, v]) => intOf(v) > 0)
    .sort(([a], [b]) => a.localeCompare(b));
  return entries.length ? entries.map(([k, v]) => `${readable(k)} × ${v}`).join(", ") : "—";
}

/** The job's check, in words, from the kind's settings table (secrets only as "set"). */
function checkFacts(job: Job): Fact[] {
  const kind = checkKindOf(job);
  const spec = kind && checkSpec(kind);
  if (!kind || !spec) return [["Check", "none"]];
  const facts: Fact[] = [["Check", spec.label, "check"]];
  for (const setting of spec.settings) {
    const text = settingDisplay(setting, valueAt(job[kind], setting.key));
    if (text === undefined) continue;
    const value = setting.type === "url" || setting.type === "escaped" ? h("code", { text }) : text;
    facts.push([setting.label, value, `${kind}.${setting.key}`]);
  }
  return facts;
}

export class JobView implements View {
  title = "Job";
  readonly element: HTMLElement;
  private readonly id: string;
  private readonly heading: HTMLHeadingElement;
  private readonly badges: HTMLElement;
  private readonly toggle: HTMLButtonElement;
  private readonly editButton: HTMLButtonElement;
  private readonly deleteButton: HTMLButtonElement;
  private readonly statusFacts: HTMLElement;
  private readonly placements: HTMLTableSectionElement;
  /** Each placement's latest result; redrawn only when one changed. */
  private readonly results: HTMLElement;
  private resultsKey = "";
  private readonly specFacts: HTMLElement;
  private readonly raw: HTMLElement;
  private readonly metricsSummary: HTMLElement;
  private readonly latencyHost: HTMLElement;
  private readonly statusHost: HTMLElement;
  private readonly recent: HTMLTableSectionElement;
  private readonly recentEmpty: HTMLElement;
  private readonly granularity: HTMLSelectElement;
  private readonly range: HTMLSelectElement;
  private readonly body: HTMLElement;
  private readonly alertsCard: JobAlertsCard;
  private latencyChart: LatencyChart | undefined;
  private statusChart: StatusChart | undefined;
  private job: Job | undefined;
  private readonly poller = new Poller((current) => this.load(current), REFRESH_MS);

  constructor(id: string) {
    this.id = id;
    this.alertsCard = new JobAlertsCard(id);
    this.heading = h("h1", { tabindex: -1, text: "Job" });
    this.badges = h("div", { class: "badges" });
    this.toggle = h("button", { type: "button", disabled: true, text: "Start" });
    this.editButton = h("button", { type: "button", disabled: true, text: "Edit" });
    this.deleteButton = h("button", { type: "button", class: "danger-outline", disabled: true, text: "Delete" });
    this.toggle.addEventListener("click", () => void this.onToggle());
    this.editButton.addEventListener("click", () => void this.onEdit());
    this.deleteButton.addEventListener("click", () => void this.onDelete());

    this.statusFacts = h("div", {});
    this.placements = h("tbody", {});
    this.results = h("div", { class: "results" });
    this.specFacts = h("div", {});
    this.raw = h("code", {});
    this.metricsSummary = h("p", { class: "metrics-summary", "aria-live": "polite" });
    this.latencyHost = h("div", { class: "chart", role: "img", "aria-label": "Latency chart: loading", "data-chart": "latency" });
    this.statusHost = h("div", { class: "chart", role: "img", "aria-label": "Status code chart: loading", "data-chart": "status" });
    this.recent = h("tbody", {});
    this.recentEmpty = h("p", { class: "empty", text: "No checks in the last minutes." });

    this.granularity = h(
      "select",
      { id: "metrics-granularity" },
      GRANULARITIES.map((g) => h("option", { value: g.value, text: g.label })),
    );
    this.range = h(
      "select",
      { id: "metrics-range" },
      RANGES.map((r) => h("option", { value: r.value, text: r.label })),
    );
    this.granularity.value = chartSettings.granularity;
    this.range.value = chartSettings.range;
    this.fitSelectors();
    const onChange = () => {
      chartSettings.granularity = this.granularity.value;
      chartSettings.range = this.range.value;
      this.fitSelectors();
      this.poller.now();
    };
    this.granularity.addEventListener("change", onChange);
    this.range.addEventListener("change", onChange);

    const table = (caption: string, columns: string[], body: HTMLTableSectionElement) =>
      h(
        "div",
        { class: "table-wrap", role: "region", "aria-label": caption, tabindex: 0 },
        h(
          "table",
          {},
          h("caption", { class: "visually-hidden", text: caption }),
          h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", text: c })))),
          body,
        ),
      );

    this.body = h(
      "div",
      { class: "job-body" },
      h(
        "section",
        { "aria-labelledby": "status-title", class: "card" },
        h("h2", { id: "status-title", text: "Status" }),
        this.statusFacts,
        h("h3", { text: "Placements" }),
        table("Placements: where the job runs", ["Location", "Worker", "Epoch", "Last outcome", "Last check", "Checks", "Failures"], this.placements),
        h("h3", { text: "Latest results" }),
        this.results,
      ),
      h(
        "section",
        { "aria-labelledby": "metrics-title", class: "card" },
        h("h2", { id: "metrics-title", text: "Metrics" }),
        h(
          "form",
          { class: "filters", "aria-label": "Chart settings", onsubmit: (e: Event) => e.preventDefault() },
          h("div", { class: "field" }, h("label", { for: "metrics-granularity", text: "Granularity" }), this.granularity),
          h("div", { class: "field" }, h("label", { for: "metrics-range", text: "Range" }), this.range),
        ),
        this.metricsSummary,
        h("figure", {}, h("figcaption", { text: "Response time (ms): min, avg, p95, max" }), this.latencyHost),
        h("figure", {}, h("figcaption", { text: "Checks by status code or error" }), this.statusHost),
      ),
      h(
        "section",
        { "aria-labelledby": "recent-title", class: "card" },
        h("h2", { id: "recent-title", text: "Recent minutes" }),
        table("Recent minutes, newest first", ["Time", "Checks", "Passed", "Status codes", "Errors", "Avg"], this.recent),
        this.recentEmpty,
      ),
      this.alertsCard.element,
      h(
        "section",
        { "aria-labelledby": "spec-title", class: "card" },
        h("h2", { id: "spec-title", text: "Specification" }),
        this.specFacts,
        h("details", {}, h("summary", { text: "Raw JSON" }), h("pre", { class: "raw" }, this.raw)),
      ),
    );

    this.element = h(
      "section",
      { class: "page job-page" },
      h("p", { class: "back" }, h("a", { href: "#/jobs", text: "← All jobs" })),
      h(
        "div",
        { class: "page-head" },
        h("div", { class: "title" }, this.heading, this.badges),
        h("div", { class: "buttons" }, this.toggle, this.editButton, this.deleteButton),
      ),
      this.body,
    );
  }

  mount(): void {
    this.poller.start();
  }

  destroy(): void {
    this.poller.stop();
    this.latencyChart?.destroy();
    this.statusChart?.destroy();
  }

  /** Disables combinations QueryMetrics refuses (more than 10 000 buckets). */
  private fitSelectors(): void {
    const rangeSeconds = RANGES.find((r) => r.value === this.range.value)?.seconds ?? 3600;
    for (const option of this.granularity.options) {
      const g = GRANULARITIES.find((x) => x.value === option.value);
      option.disabled = g ? rangeSeconds / g.seconds > MAX_BUCKETS : false;
    }
    if (this.granularity.selectedOptions[0]?.disabled) {
      this.granularity.value = "1h";
      chartSettings.granularity = "1h";
    }
  }

  /** False when the job is gone: polling stops. */
  private async load(current: () => boolean): Promise<boolean> {
    const granularity = GRANULARITIES.find((g) => g.value === this.granularity.value) ?? GRANULARITIES[0];
    const rangeSeconds = RANGES.find((r) => r.value === this.range.value)?.seconds ?? 3600;
    const end = new Date();
    const start = new Date(end.getTime() - rangeSeconds * 1000);
    // Align to the bucket grid so the first bucket is whole.
    start.setTime(Math.floor(start.getTime() / (granularity.seconds * 1000)) * granularity.seconds * 1000);
    const recentStart = new Date(end.getTime() - RECENT_MINUTES * 60_000);
    recentStart.setSeconds(0, 0);
    const sameAsChart = granularity.value === "1m" && rangeSeconds <= 3600;
    try {
      const [job, status, metrics, recent] = await Promise.all([
        api.job(this.id),
        api.status(this.id),
        api.metrics(this.id, granularity.value, start, end),
        sameAsChart ? Promise.resolve(undefined) : api.metrics(this.id, "1m", recentStart, end),
      ]);
      if (!current()) return true;
      this.job = job.job;
      this.renderJob(job.job ?? {});
      void this.alertsCard.load(job.job ?? {}, current);
      this.renderStatus(status.status ?? {});
      this.renderMetrics(metrics, granularity.seconds, start, end);
      this.renderRecent((recent ?? metrics).points ?? []);
      alerts.clear("job");
    } catch (err) {
      if (!current()) return true;
      if (err instanceof ApiError && err.code === Code.NotFound) {
        this.showMissing();
        return false;
      }
      alerts.show(`Could not load the job: ${describe(err)}`, { key: "job" });
    }
    return true;
  }

  private showMissing(): void {
    setText(this.heading, "Job not found");
    this.badges.replaceChildren();
    [this.toggle, this.editButton, this.deleteButton].forEach((b) => (b.disabled = true));
    replaceChildren(
      this.body,
      h("p", { class: "empty", text: `There is no job with id ${this.id}: it may have been deleted.` }),
    );
  }

  private renderJob(job: Job): void {
    const name = job.name ?? this.id;
    this.title = name;
    document.title = `${name} · monitor`;
    setText(this.heading, name);
    const state = stateName(job.desiredState);
    const running = job.desiredState === "JOB_STATE_RUNNING";
    setText(this.toggle, running ? "Stop" : "Start");
    this.toggle.setAttribute("aria-label", `${running ? "Stop" : "Start"} ${name}`);
    this.editButton.setAttribute("aria-label", `Edit ${name}`);
    this.deleteButton.setAttribute("aria-label", `Delete ${name}`);
    [this.toggle, this.editButton, this.deleteButton].forEach((b) => (b.disabled = false));
    this.toggle.className = running ? "" : "primary";
    const stateBadge = this.badges.querySelector<HTMLElement>("[data-badge=state]") ?? h("span", { "data-badge": "state" });
    setText(stateBadge, `state: ${state}`);
    stateBadge.className = `badge state-${state}`;
    if (!stateBadge.isConnected) this.badges.prepend(stateBadge);

    const rawText = JSON.stringify(job, null, 2);
    if (this.raw.textContent !== rawText) {
      this.raw.textContent = rawText;
      replaceChildren(
        this.specFacts,
        factList([
          ["Id", h("code", { text: job.id ?? "" })],
          ["Labels", sortedEntries(job.labels).map(([k, v]) => `${k}=${v}`).join(", ") || "—"],
          ["Locations", (job.locations ?? []).join(", ") || "any one worker"],
          ["Interval", humanDuration(job.interval)],
          ["Timeout", humanDuration(job.timeout)],
          ...checkFacts(job),
          ["Version", job.version ?? ""],
          ["Created", absoluteTime(job.createTime)],
          ["Updated", absoluteTime(job.updateTime)],
        ]),
      );
    }
  }

  private renderStatus(status: JobStatus): void {
    const phase = phaseName(status.phase);
    const phaseBadge = this.badges.querySelector<HTMLElement>("[data-badge=phase]") ?? h("span", { "data-badge": "phase" });
    setText(phaseBadge, `phase: ${phase}`);
    phaseBadge.className = `badge phase-${phase}`;
    if (!phaseBadge.isConnected) this.badges.append(phaseBadge);

    const outcome = outcomeName(status.lastOutcome);
    replaceChildren(
      this.statusFacts,
      factList([
        ["Desired state", stateName(status.desiredState)],
        ["Phase", phase],
        ["Message", status.message || "—"],
        [
          "Last outcome",
          h("span", { class: `outcome outcome-${outcomeClass(status.lastOutcome)}`, "data-field": "last-outcome", text: outcome || "not reported yet" }),
        ],
        [
          "Last check",
          status.lastCheckTime
            ? h("time", { datetime: status.lastCheckTime, title: absoluteTime(status.lastCheckTime), text: relativeTime(status.lastCheckTime) })
            : "—",
        ],
        ["Checks / failures", `${status.checks ?? 0} / ${status.failures ?? 0} (since the workers took it)`],
        ["Worker(s)", (status.assignedWorkers ?? []).join(", ") || "—"],
      ]),
    );
    const rows = (status.placements ?? []).map((p) =>
      h(
        "tr",
        {},
        h("th", { scope: "row", text: p.location || "any" }),
        h("td", { class: "nowrap", text: p.workerId || "unassigned" }),
        h("td", { class: "num", text: p.epoch ?? "0" }),
        h("td", {}, h("span", { class: `outcome outcome-${outcomeClass(p.lastOutcome)}`, text: outcomeName(p.lastOutcome) || "—" })),
        h("td", {}, p.lastCheckTime ? h("time", { datetime: p.lastCheckTime, title: absoluteTime(p.lastCheckTime), text: relativeTime(p.lastCheckTime) }) : "—"),
        h("td", { class: "num", text: p.checks ?? "0" }),
        h("td", { class: "num", text: p.failures ?? "0" }),
      ),
    );
    if (rows.length === 0) rows.push(h("tr", {}, h("td", { colspan: 7, class: "muted", text: "Not placed: the job is stopped or no worker has it yet." })));
    this.placements.replaceChildren(...rows);
    this.renderResults(status.placements ?? []);
  }

  /** Each placement's latest result: outcome, error, assertions and the kind's detail. */
  private renderResults(placements: JobPlacement[]): void {
    const key = JSON.stringify(placements.map((p) => [p.location, p.lastResult]));
    if (key === this.resultsKey) return;
    this.resultsKey = key;
    const reported = placements.filter((p) => p.lastResult);
    replaceChildren(
      this.results,
      reported.length
        ? reported.map((p) =>
            h(
              "section",
              { class: "result-card", "data-location": p.location ?? "", "aria-label": `Latest result in ${p.location || "any location"}` },
              h("h4", { text: `${p.location || "any"}${p.workerId ? ` · ${p.workerId}` : ""}` }),
              resultView(p.lastResult ?? {}),
            ),
          )
        : h("p", { class: "muted", text: "No result reported yet." }),
    );
  }

  private renderMetrics(metrics: QueryMetricsResponse, stepSeconds: number, start: Date, end: Date): void {
    const points = metrics.points ?? [];
    const s = metrics.summary ?? {};
    const checks = intOf(s.checks);
    setText(
      this.metricsSummary,
      checks
        ? `${checks} checks, ${s.passed ?? 0} passed (${percent(s.uptime)}); response time avg ${millis(s.rtAvg)}, p95 ${millis(s.p95)}, max ${millis(s.rtMax)}.`
        : "No checks in this range yet.",
    );
    this.latencyChart ??= new LatencyChart(this.latencyHost);
    this.statusChart ??= new StatusChart(this.statusHost);
    this.latencyChart.update(points, stepSeconds, start, end);
    this.statusChart.update(points, stepSeconds, start, end);
  }

  private renderRecent(points: MetricPoint[]): void {
    const newest = points.slice(-RECENT_MINUTES).reverse();
    this.recentEmpty.hidden = newest.length > 0;
    const outcome = (k: string) => outcomeName(k) || k;
    this.recent.replaceChildren(
      ...newest.map((p) =>
        h(
          "tr",
          {},
          h("th", { scope: "row" }, h("time", { datetime: p.dt ?? "", title: absoluteTime(p.dt), text: clockTime(p.dt) })),
          h("td", { class: "num", "data-col": "checks", text: p.checks ?? "0" }),
          h("td", { class: "num", text: p.passed ?? "0" }),
          h("td", { "data-col": "status", text: countsText(p.statusCounts) }),
          h("td", { text: countsText(p.errorCounts, outcome) }),
          h("td", { class: "num", text: millis(p.rtAvg) }),
        ),
      ),
    );
  }

  private async onToggle(): Promise<void> {
    if (!this.job) return;
    this.toggle.disabled = true;
    await toggleJob(this.job);
    this.toggle.disabled = false;
    this.poller.now();
  }

  private async onEdit(): Promise<void> {
    if (await editJob(this.id)) this.poller.now();
  }

  private async onDelete(): Promise<void> {
    if (this.job && (await deleteJob(this.job))) {
      location.hash = "#/jobs";
    }
  }
}
