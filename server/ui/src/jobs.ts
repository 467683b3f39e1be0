// The jobs page: one GET /v1/job-summaries per page (job, status, 24 h
// uptime and a 1 h latency series in one answer), re-polled every 3 s while
// the tab is visible. Rows are keyed by job id and updated in place, so
// focus, selection and scroll survive a poll; sparklines are drawn after the
// table is painted, so the table is usable first.

import { createJob, deleteJob, editJob, toggleJob } from "./actions";
import { type JobQuery, api, describe } from "./api";
import { Sparkline } from "./charts";
import { alerts, h, setAttr, setText } from "./dom";
import {
  absoluteTime,
  intOf,
  outcomeClass,
  outcomeName,
  percent,
  phaseName,
  relativeTime,
  stateName,
  sortedEntries,
} from "./format";
import { Poller } from "./poller";
import type { JobSummary, ListJobSummariesResponse } from "./types";
import type { View } from "./view";

const PAGE_SIZE = 50;
const POLL_MS = 3000;
const DEBOUNCE_MS = 300;

/** Set once per page load, the first time the table shows data with its handlers. */
let markedInteractive = false;

/** Filters and paging outlive the view, so coming back to the list keeps them. */
const saved = {
  nameContains: "",
  state: "" as JobQuery["state"],
  labels: "",
  /** Page tokens: tokens[i] opens page i (tokens[0] = ""). */
  tokens: [""],
  page: 0,
};

/** One table row, holding its cells so a poll changes only what changed. */
class JobRow {
  readonly tr: HTMLTableRowElement;
  private readonly link: HTMLAnchorElement;
  private readonly labels: HTMLElement;
  private readonly state: HTMLElement;
  private readonly phase: HTMLElement;
  private readonly locations: HTMLElement;
  private readonly workers: HTMLElement;
  private readonly outcome: HTMLElement;
  private readonly checked: HTMLTimeElement;
  private readonly uptime: HTMLElement;
  readonly sparkHost: HTMLElement;
  private readonly toggle: HTMLButtonElement;
  private readonly edit: HTMLButtonElement;
  private readonly remove: HTMLButtonElement;
  sparkline: Sparkline | undefined;
  private sparkKey = "";
  summary: JobSummary;

  constructor(summary: JobSummary, private readonly view: JobsView) {
    this.summary = summary;
    this.link = h("a", {});
    this.labels = h("span", { class: "labels" });
    this.state = h("span", { class: "badge" });
    this.phase = h("span", { class: "badge" });
    this.locations = h("td", {});
    this.workers = h("td", {});
    this.outcome = h("span", { class: "outcome" });
    this.checked = h("time", { class: "muted" });
    this.uptime = h("td", { class: "num" });
    this.sparkHost = h("div", { class: "sparkline", role: "img", "aria-label": "Latency not drawn yet" });
    this.toggle = h("button", { type: "button", class: "small", "data-action": "toggle" });
    this.edit = h("button", { type: "button", class: "small", "data-action": "edit", text: "Edit" });
    this.remove = h("button", { type: "button", class: "small danger-outline", "data-action": "delete", text: "Delete" });
    this.toggle.addEventListener("click", () => void this.onToggle());
    this.edit.addEventListener("click", () => void this.onEdit());
    this.remove.addEventListener("click", () => void this.onDelete());
    this.tr = h(
      "tr",
      {},
      h("th", { scope: "row", class: "name" }, this.link, this.labels),
      h("td", { "data-col": "state" }, this.state),
      h("td", { "data-col": "phase" }, this.phase),
      this.locations,
      this.workers,
      h("td", { "data-col": "outcome" }, this.outcome, " ", this.checked),
      this.uptime,
      h("td", { class: "spark-cell" }, this.sparkHost),
      h("td", { class: "actions" }, h("div", { class: "buttons" }, this.toggle, this.edit, this.remove)),
    );
    this.update(summary);
  }

  get id(): string {
    return this.summary.job?.id ?? "";
  }

  update(summary: JobSummary): void {
    this.summary = summary;
    const job = summary.job ?? {};
    const status = summary.status ?? {};
    const name = job.name ?? job.id ?? "";
    this.tr.dataset.id = job.id ?? "";
    this.tr.dataset.name = name;
    setText(this.link, name);
    setAttr(this.link, "href", `#/jobs/${encodeURIComponent(job.id ?? "")}`);
    setText(
      this.labels,
      sortedEntries(job.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(" "),
    );
    const state = stateName(job.desiredState);
    setText(this.state, state);
    setAttr(this.state, "class", `badge state-${state}`);
    const phase = phaseName(status.phase);
    setText(this.phase, phase);
    setAttr(this.phase, "class", `badge phase-${phase}`);
    setText(this.locations, (job.locations ?? []).join(", ") || "any");
    setText(this.workers, (status.assignedWorkers ?? []).join(", ") || "—");
    const outcome = outcomeName(status.lastOutcome);
    setText(this.outcome, outcome || "not reported yet");
    setAttr(this.outcome, "class", `outcome outcome-${outcomeClass(status.lastOutcome)}`);
    setText(this.checked, relativeTime(status.lastCheckTime));
    setAttr(this.checked, "datetime", status.lastCheckTime ?? null);
    setAttr(this.checked, "title", status.lastCheckTime ? absoluteTime(status.lastCheckTime) : null);
    const checks = intOf(summary.checks24h);
    setText(this.uptime, checks ? percent(summary.uptime24h) : "—");
    setAttr(this.uptime, "title", checks ? `${summary.passed24h ?? 0} of ${checks} checks passed in 24 h` : "no checks in 24 h");
    const running = job.desiredState === "JOB_STATE_RUNNING";
    setText(this.toggle, running ? "Stop" : "Start");
    setAttr(this.toggle, "aria-label", `${running ? "Stop" : "Start"} ${name}`);
    setAttr(this.edit, "aria-label", `Edit ${name}`);
    setAttr(this.remove, "aria-label", `Delete ${name}`);
    if (this.sparkline) this.drawSparkline();
  }

  /** Creates or updates the sparkline (only when its data changed). */
  drawSparkline(): void {
    const samples = this.summary.latency1h ?? [];
    const last = samples[samples.length - 1];
    const key = `${samples.length}|${samples[0]?.dt ?? ""}|${last?.dt ?? ""}|${last?.rtAvg ?? ""}`;
    if (this.sparkline && key === this.sparkKey) return;
    this.sparkKey = key;
    if (this.sparkline) this.sparkline.update(samples);
    else this.sparkline = new Sparkline(this.sparkHost, samples);
  }

  destroy(): void {
    this.sparkline?.destroy();
    this.tr.remove();
  }

  private async onToggle(): Promise<void> {
    const job = this.summary.job;
    if (!job) return;
    this.toggle.disabled = true;
    const changed = await toggleJob(job);
    this.toggle.disabled = false;
    if (changed) this.update({ ...this.summary, job: changed });
    this.view.refresh();
  }

  private async onEdit(): Promise<void> {
    if (await editJob(this.id)) this.view.refresh();
  }

  private async onDelete(): Promise<void> {
    const job = this.summary.job;
    if (job && (await deleteJob(job))) {
      this.view.forget(this.id);
      this.view.refresh();
    }
  }
}

export class JobsView implements View {
  readonly title = "Jobs";
  readonly element: HTMLElement;
  private readonly tbody: HTMLTableSectionElement;
  private readonly rows = new Map<string, JobRow>();
  private readonly range: HTMLElement;
  private readonly empty: HTMLElement;
  private readonly previous: HTMLButtonElement;
  private readonly next: HTMLButtonElement;
  private readonly search: HTMLInputElement;
  private readonly stateSelect: HTMLSelectElement;
  private readonly labelInput: HTMLInputElement;
  private nextToken = "";
  private debounce: number | undefined;
  private sparkTimer: number | undefined;
  /** Answers to a load that a newer one replaced are dropped. */
  private readonly poller = new Poller((current) => this.load(current), POLL_MS);

  constructor() {
    this.search = h("input", { type: "search", id: "jobs-search", value: saved.nameContains, autocomplete: "off" });
    this.stateSelect = h(
      "select",
      { id: "jobs-state" },
      h("option", { value: "", text: "Any" }),
      h("option", { value: "running", text: "Running" }),
      h("option", { value: "stopped", text: "Stopped" }),
    );
    this.stateSelect.value = saved.state;
    this.labelInput = h("input", {
      type: "text",
      id: "jobs-labels",
      value: saved.labels,
      autocomplete: "off",
      spellcheck: "false",
      placeholder: "team=web",
      "aria-describedby": "jobs-labels-hint",
    });
    const onFilter = () => {
      window.clearTimeout(this.debounce);
      this.debounce = window.setTimeout(() => this.applyFilters(), DEBOUNCE_MS);
    };
    this.search.addEventListener("input", onFilter);
    this.labelInput.addEventListener("input", onFilter);
    this.stateSelect.addEventListener("change", () => this.applyFilters());

    this.tbody = h("tbody", {});
    this.range = h("p", { class: "range", "aria-live": "polite", text: "Loading jobs…" });
    this.empty = h("p", { class: "empty", hidden: true });
    this.previous = h("button", { type: "button", text: "Previous page", disabled: true });
    this.next = h("button", { type: "button", text: "Next page", disabled: true });
    this.previous.addEventListener("click", () => this.goTo(saved.page - 1));
    this.next.addEventListener("click", () => this.goTo(saved.page + 1));
    const newJob = h("button", { type: "button", class: "primary", text: "New job" });
    newJob.addEventListener("click", async () => {
      if (await createJob()) this.refresh();
    });

    const columns = ["Name", "State", "Phase", "Location(s)", "Worker(s)", "Last outcome", "Uptime 24 h", "Latency 1 h", "Actions"];
    this.element = h(
      "section",
      { class: "page jobs-page", "aria-labelledby": "jobs-title" },
      h("div", { class: "page-head" }, h("h1", { id: "jobs-title", tabindex: -1, text: "Jobs" }), newJob),
      h(
        "form",
        { role: "search", class: "filters", "aria-label": "Filter jobs", onsubmit: (e: Event) => e.preventDefault() },
        h("div", { class: "field" }, h("label", { for: "jobs-search", text: "Name contains" }), this.search),
        h("div", { class: "field" }, h("label", { for: "jobs-state", text: "State" }), this.stateSelect),
        h(
          "div",
          { class: "field" },
          h("label", { for: "jobs-labels", text: "Labels" }),
          this.labelInput,
          h("p", { class: "hint", id: "jobs-labels-hint", text: "key=value, comma-separated" }),
        ),
      ),
      this.range,
      h(
        "div",
        { class: "table-wrap", role: "region", "aria-labelledby": "jobs-caption", tabindex: 0 },
        h(
          "table",
          { class: "jobs-table" },
          h("caption", { id: "jobs-caption", class: "visually-hidden", text: "Jobs, with state, placement, last outcome, uptime and latency" }),
          h("thead", {}, h("tr", {}, ...columns.map((c) => h("th", { scope: "col", text: c })))),
          this.tbody,
        ),
      ),
      this.empty,
      h("nav", { class: "pager", "aria-label": "Job pages" }, this.previous, this.next),
    );
  }

  mount(): void {
    this.poller.start();
  }

  destroy(): void {
    this.poller.stop();
    window.clearTimeout(this.debounce);
    window.clearTimeout(this.sparkTimer);
    this.rows.forEach((row) => row.destroy());
    this.rows.clear();
  }

  /** Loads the current page now (after an action, or when the tab shows again). */
  refresh(): void {
    this.poller.now();
  }

  /** Drops a row at once (after a delete), before the next poll confirms it. */
  forget(id: string): void {
    this.rows.get(id)?.destroy();
    this.rows.delete(id);
  }

  private query(): JobQuery {
    return {
      pageSize: PAGE_SIZE,
      pageToken: saved.tokens[saved.page] ?? "",
      state: saved.state,
      labelSelector: saved.labels
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
      nameContains: saved.nameContains.trim(),
    };
  }

  private applyFilters(): void {
    const changed =
      saved.nameContains !== this.search.value ||
      saved.state !== this.stateSelect.value ||
      saved.labels !== this.labelInput.value;
    if (!changed) return;
    saved.nameContains = this.search.value;
    saved.state = this.stateSelect.value as JobQuery["state"];
    saved.labels = this.labelInput.value;
    saved.tokens = [""];
    saved.page = 0;
    this.poller.now();
  }

  private goTo(page: number): void {
    if (page < 0) return;
    if (page > saved.page) {
      if (!this.nextToken) return;
      saved.tokens[page] = this.nextToken;
    }
    saved.page = page;
    this.poller.now();
  }

  private async load(current: () => boolean): Promise<void> {
    try {
      const response = await api.summaries(this.query());
      if (!current()) return;
      this.render(response);
      alerts.clear("jobs");
    } catch (err) {
      if (!current()) return;
      alerts.show(`Could not load the jobs: ${describe(err)}`, { key: "jobs" });
      if (!markedInteractive) setText(this.range, "The jobs could not be loaded.");
    }
  }

  private render(response: ListJobSummariesResponse): void {
    const summaries = response.summaries ?? [];
    const total = intOf(response.totalSize);
    this.nextToken = response.nextPageToken ?? "";
    const seen = new Set<string>();
    summaries.forEach((summary, index) => {
      const id = summary.job?.id ?? "";
      seen.add(id);
      let row = this.rows.get(id);
      if (row) row.update(summary);
      else {
        row = new JobRow(summary, this);
        this.rows.set(id, row);
      }
      // Move only rows out of place: moving a row would take focus from its buttons.
      if (this.tbody.children[index] !== row.tr) this.tbody.insertBefore(row.tr, this.tbody.children[index] ?? null);
    });
    for (const [id, row] of this.rows) {
      if (!seen.has(id)) {
        row.destroy();
        this.rows.delete(id);
      }
    }
    const first = saved.page * PAGE_SIZE + 1;
    setText(
      this.range,
      summaries.length ? `${first}–${first + summaries.length - 1} of ${total}` : `0 of ${total}`,
    );
    const filtered = Boolean(saved.nameContains.trim() || saved.state || saved.labels.trim());
    this.empty.hidden = summaries.length > 0;
    setText(
      this.empty,
      saved.page > 0
        ? "No jobs on this page: go to the previous page."
        : filtered
          ? "No jobs match these filters."
          : "No jobs yet: create one with “New job”.",
    );
    this.previous.disabled = saved.page === 0;
    this.next.disabled = !this.nextToken;
    if (!markedInteractive) {
      markedInteractive = true;
      performance.mark("jobs-interactive");
    }
    this.scheduleSparklines();
  }

  /** Draws sparklines after the browser painted the table, a few rows per task. */
  private scheduleSparklines(): void {
    window.clearTimeout(this.sparkTimer);
    requestAnimationFrame(() => {
      const pending = [...this.rows.values()];
      const step = () => {
        if (this.poller.isStopped) return;
        // A row dropped since (deleted, or gone from the page) is not drawn:
        // its chart would never be destroyed.
        const batch = pending.splice(0, 10).filter((row) => this.rows.get(row.id) === row);
        batch.forEach((row) => row.drawSparkline());
        if (pending.length) this.sparkTimer = window.setTimeout(step, 0);
      };
      this.sparkTimer = window.setTimeout(step, 0);
    });
  }
}

