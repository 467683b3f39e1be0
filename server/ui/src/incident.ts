// One incident: GET /v1/incidents/{id} (with its timeline), re-read every
// 5 s while the tab is visible; Acknowledge and Resolve (POST
// /v1/incidents/{id}/acknowledge|resolve with an optional comment) refresh
// it in place, without a page reload. Under the timeline, the deliveries of
// its notifications (GET /v1/notification-deliveries?incidentId=): per
// channel the state and every attempt with its status and error.

import { ApiError, Code, alerting, describe, notifications } from "./api";
import { attemptText, deliveryStateBadge, outcomeText } from "./deliveries";
import { alerts, h, replaceChildren, setText, uid } from "./dom";
import { absoluteTime, causeName, incidentStateName, locationsText, outcomeClass, outcomeName } from "./format";
import { incidentDuration, refreshTimes, severityBadge, stateBadge, timeEl } from "./incidents";
import { Poller } from "./poller";
import type { FailedCheck, Incident, IncidentEvent, NotificationDelivery } from "./types";
import type { View } from "./view";

const REFRESH_MS = 5000;
/** Deliveries shown: the newest this many (an incident has a few events times its channels). */
const DELIVERIES_SHOWN = 100;

function dl(rows: [string, Node | string][]): HTMLElement {
  return h(
    "dl",
    { class: "facts" },
    rows.map(([term, value]) => h("div", {}, h("dt", { text: term }), h("dd", {}, value))),
  );
}

/** The timeline's kinds as people read them ("location_failed" → "location failed"). */
function kindText(kind: string | undefined): string {
  return (kind ?? "").replace(/_/g, " ");
}

export class IncidentView implements View {
  title = "Incident";
  readonly element: HTMLElement;
  private readonly id: string;
  private readonly heading: HTMLHeadingElement;
  private readonly badges: HTMLElement;
  private readonly facts: HTMLElement;
  private readonly failure: HTMLElement;
  private readonly timeline: HTMLTableSectionElement;
  private readonly deliveries: HTMLTableSectionElement;
  private readonly deliveriesCount: HTMLElement;
  private drawnDeliveries = "";
  private readonly comment: HTMLTextAreaElement;
  private readonly acknowledge: HTMLButtonElement;
  private readonly resolve: HTMLButtonElement;
  private readonly body: HTMLElement;
  private incident: Incident | undefined;
  private drawn = "";
  /** While an action is in flight both buttons stay disabled. */
  private busy = false;
  private readonly poller = new Poller((current) => this.load(current), REFRESH_MS);

  constructor(id: string) {
    this.id = id;
    this.heading = h("h1", { tabindex: -1, text: "Incident" });
    this.badges = h("div", { class: "badges" });
    this.facts = h("div", {});
    this.failure = h("div", {});
    this.timeline = h("tbody", {});
    this.deliveries = h("tbody", {});
    this.deliveriesCount = h("p", { class: "range", "aria-live": "polite", text: "Loading deliveries…" });
    const commentId = uid("incident-comment");
    this.comment = h("textarea", { id: commentId, rows: 2, maxlength: 1024, "aria-describedby": `${commentId}-hint` });
    this.acknowledge = h("button", { type: "button", class: "primary", disabled: true, text: "Acknowledge" });
    this.resolve = h("button", { type: "button", disabled: true, text: "Resolve" });
    this.acknowledge.addEventListener("click", () => void this.act("acknowledge"));
    this.resolve.addEventListener("click", () => void this.act("resolve"));

    this.body = h(
      "div",
      { class: "job-body incident-body" },
      h(
        "section",
        { "aria-labelledby": "incident-facts-title", class: "card" },
        h("h2", { id: "incident-facts-title", text: "Incident" }),
        this.facts,
        h(
          "form",
          { class: "incident-actions", "aria-label": "Acknowledge or resolve", onsubmit: (e: Event) => e.preventDefault() },
          h(
            "div",
            { class: "field" },
            h("label", { for: commentId, text: "Comment (optional)" }),
            this.comment,
            h("p", { id: `${commentId}-hint`, class: "hint", text: "Recorded on the timeline with your token's name." }),
          ),
          h("div", { class: "buttons" }, this.acknowledge, this.resolve),
        ),
      ),
      h(
        "section",
        { "aria-labelledby": "incident-failure-title", class: "card" },
        h("h2", { id: "incident-failure-title", text: "First failure" }),
        this.failure,
      ),
      h(
        "section",
        { "aria-labelledby": "incident-timeline-title", class: "card timeline-card" },
        h("h2", { id: "incident-timeline-title", text: "Timeline" }),
        h(
          "div",
          { class: "table-wrap", role: "region", "aria-label": "Timeline, oldest first", tabindex: 0 },
          h(
            "table",
            { class: "timeline" },
            h("caption", { class: "visually-hidden", text: "Timeline, oldest first" }),
            h("thead", {}, h("tr", {}, ["Time", "Kind", "Location", "Detail", "Actor"].map((c) => h("th", { scope: "col", text: c })))),
            this.timeline,
          ),
        ),
        h("h3", { id: "incident-deliveries-title", text: "Notifications" }),
        this.deliveriesCount,
        h(
          "div",
          { class: "table-wrap", role: "region", "aria-labelledby": "incident-deliveries-title", tabindex: 0 },
          h(
            "table",
            { class: "deliveries" },
            h("caption", { class: "visually-hidden", text: "Notification deliveries, newest first" }),
            h("thead", {}, h("tr", {}, ["Event", "Channel", "State", "Attempts"].map((c) => h("th", { scope: "col", text: c })))),
            this.deliveries,
          ),
        ),
      ),
    );

    this.element = h(
      "section",
      { class: "page incident-page" },
      h("p", { class: "back" }, h("a", { href: "#/incidents", text: "← All incidents" })),
      h("div", { class: "page-head" }, h("div", { class: "title" }, this.heading, this.badges)),
      this.body,
    );
  }

  mount(): void {
    this.poller.start();
  }

  destroy(): void {
    this.poller.stop();
  }

  /** False when the incident does not exist: polling stops. */
  private async load(current: () => boolean): Promise<boolean> {
    try {
      const [response, deliveries] = await Promise.all([
        alerting.incident(this.id),
        notifications.deliveries({ incidentId: this.id, pageSize: DELIVERIES_SHOWN }).catch((err: unknown) => err),
      ]);
      if (!current()) return true;
      this.render(response.incident ?? {});
      alerts.clear("incident");
      if (deliveries instanceof Error) {
        alerts.show(`Could not load the incident's notifications: ${describe(deliveries)}`, { key: "deliveries" });
      } else {
        const listed = deliveries as { deliveries?: NotificationDelivery[]; totalSize?: string };
        this.renderDeliveries(listed.deliveries ?? [], Number(listed.totalSize ?? 0));
        alerts.clear("deliveries");
      }
    } catch (err) {
      if (!current()) return true;
      if (err instanceof ApiError && (err.code === Code.NotFound || err.code === Code.InvalidArgument)) {
        setText(this.heading, "Incident not found");
        replaceChildren(this.body, h("p", { class: "empty", text: `There is no incident with id ${this.id}.` }));
        return false;
      }
      alerts.show(`Could not load the incident: ${describe(err)}`, { key: "incident" });
    }
    return true;
  }

  private render(incident: Incident): void {
    this.incident = incident;
    this.updateButtons();
    // An unchanged answer leaves the page (and focus) alone; only the running duration moves.
    const key = JSON.stringify(incident);
    if (key === this.drawn) {
      const duration = this.facts.querySelector("[data-field=duration]");
      if (duration) setText(duration, incidentDuration(incident));
      refreshTimes(this.facts);
      return;
    }
    this.drawn = key;
    const jobName = incident.jobName || incident.jobId || "";
    this.title = `Incident: ${jobName}`;
    document.title = `${this.title} · monitor`;
    setText(this.heading, this.title);
    replaceChildren(
      this.badges,
      stateBadge(incident),
      severityBadge(incident),
      h("span", { class: "badge", text: causeName(incident.cause) }),
      incident.silenced ? h("span", { class: "badge", text: "silenced" }) : null,
      incident.flapping ? h("span", { class: "badge severity-warning", text: "flapping" }) : null,
    );
    const by = (who: string | undefined) => (who ? ` by ${who}` : "");
    replaceChildren(
      this.facts,
      dl([
        ["Job", h("a", { href: `#/jobs/${encodeURIComponent(incident.jobId ?? "")}`, text: jobName })],
        ["Rule", incident.ruleName || "(deleted rule)"],
        ["State", incidentStateName(incident.state)],
        ["Opened", h("span", {}, timeEl(incident.openTime), ` (${absoluteTime(incident.openTime)})`)],
        [
          "Acknowledged",
          incident.acknowledgeTime ? h("span", { "data-field": "acknowledged" }, timeEl(incident.acknowledgeTime), by(incident.acknowledgedBy)) : "—",
        ],
        ["Resolved", incident.resolveTime ? h("span", {}, timeEl(incident.resolveTime), by(incident.resolvedBy)) : "—"],
        [incident.state === "INCIDENT_STATE_RESOLVED" ? "Downtime" : "Duration", h("span", { "data-field": "duration", text: incidentDuration(incident) })],
        ["Failing locations", locationsText(incident.failingLocations)],
      ]),
    );
    replaceChildren(this.failure, this.failureFacts(incident.firstFailure));
    this.renderTimeline(incident.timeline ?? []);
  }

  private failureFacts(check: FailedCheck | undefined): HTMLElement {
    if (!check || (!check.checkId && !check.outcome)) {
      return h("p", { class: "empty", text: "No failed check recorded (the job produced no data)." });
    }
    return dl([
      [
        "Outcome",
        h("span", { class: `outcome outcome-${outcomeClass(check.outcome)}`, "data-field": "failure-outcome", text: outcomeName(check.outcome) || "—" }),
      ],
      ["Status code", check.statusCode ? String(check.statusCode) : "none"],
      ["Error", check.error || "—"],
      ["Worker", check.workerId || "—"],
      ["Location", check.location || "any"],
      ["Checked", check.startTime ? absoluteTime(check.startTime) : "—"],
    ]);
  }

  private renderTimeline(events: IncidentEvent[]): void {
    const rows = events.map((e) =>
      h(
        "tr",
        { "data-kind": e.kind ?? "" },
        h("th", { scope: "row", class: "nowrap" }, h("time", { datetime: e.time ?? "", text: absoluteTime(e.time) })),
        h("td", { "data-col": "kind", text: kindText(e.kind) }),
        h("td", { text: e.location || "—" }),
        h("td", { text: e.detail || "" }),
        h("td", { "data-col": "actor", text: e.actor || "" }),
      ),
    );
    if (rows.length === 0) rows.push(h("tr", {}, h("td", { colspan: 5, class: "muted", text: "Nothing recorded yet." })));
    this.timeline.replaceChildren(...rows);
  }

  private renderDeliveries(deliveries: NotificationDelivery[], total: number): void {
    setText(
      this.deliveriesCount,
      deliveries.length === 0
        ? "Nothing sent: no notification, or no enabled channel on the rule."
        : total > deliveries.length
          ? `The newest ${deliveries.length} of ${total} deliveries`
          : `${deliveries.length} deliver${deliveries.length === 1 ? "y" : "ies"}`,
    );
    const key = JSON.stringify(deliveries);
    if (key === this.drawnDeliveries) return;
    this.drawnDeliveries = key;
    this.deliveries.replaceChildren(
      ...deliveries.map((d) =>
        h(
          "tr",
          { "data-channel": d.channelName ?? "", "data-event": d.event ?? "", "data-state": (d.state ?? "").replace("DELIVERY_STATE_", "").toLowerCase() },
          h("th", { scope: "row", text: kindText(d.event) }),
          h("td", { "data-col": "channel" }, h("a", { href: "#/channels", text: d.channelName ?? d.channelId ?? "" }), ` (${d.channelKind ?? ""})`),
          h(
            "td",
            {},
            deliveryStateBadge(d),
            d.nextAttemptTime ? h("span", { class: "muted" }, " next ", h("time", { datetime: d.nextAttemptTime, text: absoluteTime(d.nextAttemptTime) })) : null,
          ),
          h(
            "td",
            { "data-col": "attempts" },
            d.attempts?.length
              ? h(
                  "ol",
                  { class: "attempts" },
                  d.attempts.map((a) =>
                    h(
                      "li",
                      { "data-outcome": outcomeText(a.outcome) },
                      h("time", { datetime: a.time ?? "", text: absoluteTime(a.time) }),
                      ` ${outcomeText(a.outcome)}: ${attemptText(a)}`,
                    ),
                  ),
                )
              : "not attempted yet",
          ),
        ),
      ),
    );
  }

  private updateButtons(): void {
    const state = this.incident?.state;
    this.acknowledge.disabled = this.busy || state !== "INCIDENT_STATE_OPEN";
    this.resolve.disabled = this.busy || !state || state === "INCIDENT_STATE_RESOLVED";
    this.acknowledge.title = state === "INCIDENT_STATE_OPEN" ? "" : "Only an open incident can be acknowledged";
    this.resolve.title = state === "INCIDENT_STATE_RESOLVED" ? "Already resolved" : "";
  }

  private async act(action: "acknowledge" | "resolve"): Promise<void> {
    if (!this.incident?.id) return;
    this.busy = true;
    this.updateButtons();
    const comment = this.comment.value.trim();
    try {
      const response =
        action === "acknowledge" ? await alerting.acknowledge(this.incident.id, comment) : await alerting.resolve(this.incident.id, comment);
      const done = action === "acknowledge" ? "Acknowledged" : "Resolved";
      alerts.show(response.changed === false ? `Nothing changed: the incident was already ${done.toLowerCase()}.` : `${done} the incident.`, {
        kind: "info",
        key: "action",
      });
      this.comment.value = "";
    } catch (err) {
      alerts.show(`Could not ${action} the incident: ${describe(err)}`, { key: "action" });
    } finally {
      this.busy = false;
      // The answer has no timeline: read the incident again.
      this.poller.now();
    }
  }
}
