// The incidents page: GET /v1/incidents (open and acknowledged first, then
// resolved, newest first: the API's order), filtered by state and, from the
// route #/incidents?jobId=<id>, by job; 50 per page, re-read every 5 s while
// the tab is visible. Each row links to its job and to the incident's own
// page.

import { type IncidentQuery, alerting, describe } from "./api";
import { alerts, h, setText } from "./dom";
import { absoluteTime, causeName, durationMs, incidentStateName, locationsText, relativeTime, severityName, spanText } from "./format";
import { Poller } from "./poller";
import type { Incident } from "./types";
import type { View } from "./view";

const PAGE_SIZE = 50;
const REFRESH_MS = 5000;

/** The filter and page outlive the view, so coming back keeps them. */
const saved = {
  state: "" as NonNullable<IncidentQuery["state"]>,
  /** The job the pages were read for ("" for all): another job starts at page 1. */
  jobId: "",
  /** Page tokens: tokens[i] opens page i (tokens[0] = ""). */
  tokens: [""],
  page: 0,
};

/** How long an incident has lasted: its downtime once resolved, else the time since it opened. */
export function incidentDuration(incident: Incident, now = Date.now()): string {
  if (incident.state === "INCIDENT_STATE_RESOLVED") {
    // A span for people ("4s", "3m 20s"): downtimes are measured to the
    // microsecond, so the exact Duration ("3.999827s") would read badly.
    const downtime = durationMs(incident.downtime);
    if (downtime !== undefined) return spanText(downtime);
    if (incident.openTime && incident.resolveTime) return spanText(Date.parse(incident.resolveTime) - Date.parse(incident.openTime));
    return "—";
  }
  return incident.openTime ? `${spanText(now - Date.parse(incident.openTime))} so far` : "—";
}

/** A <time> showing "3 min ago" with the full time as its title. */
export function timeEl(iso: string | undefined): HTMLElement | string {
  return iso ? h("time", { datetime: iso, title: absoluteTime(iso), "data-relative": true, text: relativeTime(iso) }) : "—";
}

/** Rewrites the relative texts of the timeEl()s under `root` ("just now" → "2 min ago") without redrawing. */
export function refreshTimes(root: Element): void {
  root.querySelectorAll<HTMLTimeElement>("time[data-relative]").forEach((t) => setText(t, relativeTime(t.dateTime)));
}

/** The state badge of an incident (text and colour). */
export function stateBadge(incident: Incident): HTMLElement {
  const state = incidentStateName(incident.state);
  return h("span", { class: `badge incident-${state}`, "data-col": "state", text: state });
}

export function severityBadge(incident: { severity?: Incident["severity"] }): HTMLElement {
  const severity = severityName(incident.severity);
  return h("span", { class: `badge severity-${severity}`, text: severity });
}

export class IncidentsView implements View {
  readonly title = "Incidents";
  readonly element: HTMLElement;
  private readonly tbody: HTMLTableSectionElement;
  private readonly count: HTMLElement;
  private readonly empty: HTMLElement;
  private readonly stateFilter: HTMLSelectElement;
  private readonly prev: HTMLButtonElement;
  private readonly next: HTMLButtonElement;
  private nextToken = "";
  /** The incidents last drawn: an unchanged answer only refreshes the durations, so focus stays put. */
  private drawn = "";
  private shown: Incident[] = [];
  private readonly poller = new Poller((current) => this.load(current), REFRESH_MS);

  /** `jobId`: only this job's incidents ("" for all). */
  constructor(private readonly jobId = "") {
    if (saved.jobId !== jobId) {
      saved.jobId = jobId;
      saved.tokens = [""];
      saved.page = 0;
    }
    this.tbody = h("tbody", {});
    this.count = h("p", { class: "range", "aria-live": "polite", text: "Loading incidents…" });
    this.empty = h("p", { class: "empty", hidden: true });
    this.stateFilter = h(
      "select",
      { id: "incident-state" },
      h("option", { value: "", text: "Any" }),
      h("option", { value: "open", text: "Open" }),
      h("option", { value: "acknowledged", text: "Acknowledged" }),
      h("option", { value: "resolved", text: "Resolved" }),
    );
    this.stateFilter.value = saved.state;
    this.stateFilter.addEventListener("change", () => {
      saved.state = this.stateFilter.value as typeof saved.state;
      saved.tokens = [""];
      saved.page = 0;
      this.poller.now();
    });
    this.prev = h("button", { type: "button", text: "Previous page", disabled: true });
    this.next = h("button", { type: "button", text: "Next page", disabled: true });
    this.prev.addEventListener("click", () => {
      if (saved.page === 0) return;
      saved.page -= 1;
      this.poller.now();
    });
    this.next.addEventListener("click", () => {
      if (!this.nextToken) return;
      saved.tokens[saved.page + 1] = this.nextToken;
      saved.page += 1;
      this.poller.now();
    });
    const columns = ["Job", "Rule", "Severity", "Cause", "State", "Opened", "Duration", "Failing locations", ""];
    this.element = h(
      "section",
      { class: "page", "aria-labelledby": "incidents-title" },
      h("div", { class: "page-head" }, h("h1", { id: "incidents-title", tabindex: -1, text: "Incidents" })),
      h(
        "form",
        { class: "filters", "aria-label": "Filter incidents", onsubmit: (e: Event) => e.preventDefault() },
        h("div", { class: "field" }, h("label", { for: "incident-state", text: "State" }), this.stateFilter),
      ),
      jobId
        ? h("p", { class: "job-filter" }, "Only one job's incidents. ", h("a", { href: "#/incidents", text: "Show every job's incidents" }))
        : null,
      this.count,
      h(
        "div",
        { class: "table-wrap", role: "region", "aria-labelledby": "incidents-caption", tabindex: 0 },
        h(
          "table",
          { class: "incidents-table" },
          h("caption", { id: "incidents-caption", class: "visually-hidden", text: "Incidents, open first, newest first" }),
          h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", text: c })))),
          this.tbody,
        ),
      ),
      this.empty,
      h("div", { class: "pager" }, this.prev, this.next),
    );
  }

  mount(): void {
    this.poller.start();
  }

  destroy(): void {
    this.poller.stop();
  }

  private async load(current: () => boolean): Promise<void> {
    try {
      const response = await alerting.incidents({
        state: saved.state,
        jobId: this.jobId,
        pageSize: PAGE_SIZE,
        pageToken: saved.tokens[saved.page] ?? "",
      });
      if (!current()) return;
      this.nextToken = response.nextPageToken ?? "";
      this.render(response.incidents ?? [], Number(response.totalSize ?? 0));
      alerts.clear("incidents");
    } catch (err) {
      if (!current()) return;
      alerts.show(`Could not load the incidents: ${describe(err)}`, { key: "incidents" });
    }
  }

  private render(incidents: Incident[], total: number): void {
    const first = saved.page * PAGE_SIZE;
    setText(this.count, incidents.length ? `${first + 1}–${first + incidents.length} of ${total}` : `0 of ${total}`);
    this.empty.hidden = incidents.length > 0;
    setText(this.empty, saved.state ? "No incidents in this state." : "No incidents yet: every covered job is up.");
    this.prev.disabled = saved.page === 0;
    this.next.disabled = !this.nextToken;
    const key = JSON.stringify(incidents);
    if (key === this.drawn) {
      this.tbody.querySelectorAll<HTMLElement>("[data-col=duration]").forEach((cell, i) => {
        const incident = this.shown[i];
        if (incident) setText(cell, incidentDuration(incident));
      });
      refreshTimes(this.tbody);
      return;
    }
    this.drawn = key;
    this.shown = incidents;
    this.tbody.replaceChildren(
      ...incidents.map((incident) => {
        const jobName = incident.jobName || incident.jobId || "";
        const open = `#/incidents/${encodeURIComponent(incident.id ?? "")}`;
        return h(
          "tr",
          { "data-id": incident.id ?? "", "data-job": jobName, "data-state": incidentStateName(incident.state) },
          h("th", { scope: "row", class: "name" }, h("a", { href: `#/jobs/${encodeURIComponent(incident.jobId ?? "")}`, text: jobName })),
          h("td", { "data-col": "rule", text: incident.ruleName || "(deleted rule)" }),
          h("td", {}, severityBadge(incident)),
          h("td", { "data-col": "cause", text: causeName(incident.cause) }),
          h(
            "td",
            {},
            stateBadge(incident),
            incident.silenced ? h("span", { class: "badge", text: "silenced" }) : null,
            incident.flapping ? h("span", { class: "badge severity-warning", text: "flapping" }) : null,
          ),
          h("td", {}, timeEl(incident.openTime)),
          h("td", { class: "nowrap", "data-col": "duration", text: incidentDuration(incident) }),
          h("td", { "data-col": "locations", text: locationsText(incident.failingLocations) }),
          h(
            "td",
            {},
            h("a", {
              href: open,
              "data-action": "open",
              "aria-label": `Incident of ${jobName} (${incident.ruleName ?? "rule"}), opened ${absoluteTime(incident.openTime)}`,
              text: "Details",
            }),
          ),
        );
      }),
    );
  }
}
