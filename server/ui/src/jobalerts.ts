// The job page's alerting card: the job's open (or acknowledged) incident,
// with a link to it, and the alert rules that cover the job (by id, by
// label selector, or all jobs). Read alongside the job page's own poll; a
// failure here is reported without disturbing the rest of the page.

import { alerting, describe } from "./api";
import { covers, scopeText } from "./cover";
import { alerts, h, replaceChildren } from "./dom";
import { incidentStateName, locationsText, severityName } from "./format";
import { incidentDuration, refreshTimes, severityBadge, stateBadge, timeEl } from "./incidents";
import { thresholdsText } from "./alerting";
import type { AlertRule, Incident, Job } from "./types";

/** Incidents of one job read per poll: the API lists open ones first, so the newest few hold any open one. */
const RECENT_INCIDENTS = 5;

export class JobAlertsCard {
  readonly element: HTMLElement;
  private readonly incident: HTMLElement;
  private readonly rules: HTMLElement;
  private readonly links: HTMLElement;
  private drawn = "";

  constructor(jobId: string) {
    this.links = h(
      "p",
      {},
      h("a", { href: `#/incidents?jobId=${encodeURIComponent(jobId)}`, text: "This job's incidents" }),
      " · ",
      h("a", { href: "#/alerting", text: "Manage rules and silences" }),
    );
    this.incident = h("div", { "data-field": "open-incident" }, h("p", { class: "muted", text: "Loading…" }));
    this.rules = h("div", { "data-field": "covering-rules" });
    this.element = h(
      "section",
      { "aria-labelledby": "job-alerting-title", class: "card" },
      h("h2", { id: "job-alerting-title", text: "Alerting" }),
      h("h3", { text: "Open incident" }),
      this.incident,
      h("h3", { text: "Rules covering this job" }),
      this.rules,
      this.links,
    );
  }

  /** Reads the job's incidents and the rules, then draws them for `job`. */
  async load(job: Job, current: () => boolean): Promise<void> {
    try {
      const [incidents, rules] = await Promise.all([
        alerting.incidents({ jobId: job.id, pageSize: RECENT_INCIDENTS }),
        alerting.rules(),
      ]);
      if (!current()) return;
      const open = (incidents.incidents ?? []).find((i) => i.state !== "INCIDENT_STATE_RESOLVED");
      this.render(open, (rules.rules ?? []).filter((rule) => covers(rule, job)));
      alerts.clear("job-alerting");
    } catch (err) {
      if (!current()) return;
      alerts.show(`Could not load the job's incidents and rules: ${describe(err)}`, { key: "job-alerting" });
    }
  }

  private render(open: Incident | undefined, rules: AlertRule[]): void {
    const key = JSON.stringify([open, rules]);
    if (key === this.drawn) {
      // Only the running duration moves.
      const duration = this.incident.querySelector("[data-col=duration]");
      if (open && duration) duration.textContent = incidentDuration(open);
      refreshTimes(this.incident);
      return;
    }
    this.drawn = key;
    replaceChildren(
      this.incident,
      open
        ? h(
            "p",
            { class: "open-incident" },
            stateBadge(open),
            " ",
            severityBadge(open),
            " ",
            h("a", {
              href: `#/incidents/${encodeURIComponent(open.id ?? "")}`,
              "aria-label": `${incidentStateName(open.state)} incident: ${open.ruleName ?? ""}`,
              text: open.ruleName || "incident",
            }),
            ", opened ",
            timeEl(open.openTime),
            " (",
            h("span", { "data-col": "duration", text: incidentDuration(open) }),
            ")",
            open.failingLocations?.length ? `; failing: ${locationsText(open.failingLocations)}` : "",
          )
        : h("p", { class: "muted", text: "None: no rule has an incident open for this job." }),
    );
    replaceChildren(
      this.rules,
      rules.length
        ? h(
            "ul",
            { class: "rule-list" },
            rules.map((rule) =>
              h(
                "li",
                { "data-name": rule.name ?? "" },
                h("strong", { text: rule.name ?? "" }),
                " ",
                h("span", { class: `badge severity-${severityName(rule.severity)}`, text: severityName(rule.severity) }),
                rule.enabled === false ? h("span", { class: "badge", text: "disabled" }) : null,
                h("span", { class: "labels", text: `${scopeText(rule)}: ${thresholdsText(rule)}` }),
              ),
            ),
          )
        : h("p", { class: "muted", text: "No rule covers this job: its failures open no incident." }),
    );
  }
}
