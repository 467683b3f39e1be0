// The alerting page: alert rules (list, create, edit, delete after a
// confirmation) and silences (list with whether each is active now, create,
// end now by PATCHing endTime, delete), re-read every 5 s while the tab is
// visible.

import { alerting, describe } from "./api";
import { confirmDialog } from "./dialogs";
import { alerts, h, setText } from "./dom";
import { scopeText } from "./cover";
import { absoluteTime, humanDuration } from "./format";
import { severityBadge } from "./incidents";
import { Poller } from "./poller";
import { openRuleForm } from "./ruleform";
import { openSilenceForm } from "./silenceform";
import type { AlertRule, Silence } from "./types";
import type { View } from "./view";

const REFRESH_MS = 5000;

/** "down after 3 failures at 1 location, up after 2 passes". */
export function thresholdsText(rule: AlertRule): string {
  const where = rule.minFailingPercent
    ? `${rule.minFailingPercent} % of locations`
    : `${rule.minFailingLocations ?? 1} location${(rule.minFailingLocations ?? 1) === 1 ? "" : "s"}`;
  return `down after ${rule.failureThreshold ?? 3} failures at ${where}; up after ${rule.successThreshold ?? 2} passes`;
}

function table(caption: string, columns: string[], body: HTMLTableSectionElement, className: string): HTMLElement {
  return h(
    "div",
    { class: "table-wrap", role: "region", "aria-label": caption, tabindex: 0 },
    h(
      "table",
      { class: className },
      h("caption", { class: "visually-hidden", text: caption }),
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", text: c })))),
      body,
    ),
  );
}

function recurrenceText(silence: Silence): string {
  const r = silence.recurrence;
  if (!r) return "the whole time";
  return `${(r.days ?? []).join(", ")} from ${r.start ?? ""} for ${humanDuration(r.duration)} (${r.timeZone || "UTC"})`;
}

export class AlertingView implements View {
  readonly title = "Alerting";
  readonly element: HTMLElement;
  private readonly rules: HTMLTableSectionElement;
  private readonly rulesCount: HTMLElement;
  private readonly silences: HTMLTableSectionElement;
  private readonly silencesCount: HTMLElement;
  private readonly showEnded: HTMLInputElement;
  /** What was last drawn per table: an unchanged answer leaves the rows (and focus) alone. */
  private drawnRules = "";
  private drawnSilences = "";
  private readonly poller = new Poller((current) => this.load(current), REFRESH_MS);

  constructor() {
    this.rules = h("tbody", {});
    this.silences = h("tbody", {});
    this.rulesCount = h("p", { class: "range", "aria-live": "polite", text: "Loading rules…" });
    this.silencesCount = h("p", { class: "range", "aria-live": "polite", text: "Loading silences…" });
    this.showEnded = h("input", { type: "checkbox", id: "silences-ended" });
    this.showEnded.addEventListener("change", () => this.poller.now());
    const newRule = h("button", { type: "button", class: "primary", text: "New rule" });
    newRule.addEventListener("click", () => void this.onNewRule());
    const newSilence = h("button", { type: "button", class: "primary", text: "New silence" });
    newSilence.addEventListener("click", () => void this.onNewSilence());

    this.element = h(
      "section",
      { class: "page alerting-page", "aria-labelledby": "alerting-title" },
      h("div", { class: "page-head" }, h("h1", { id: "alerting-title", tabindex: -1, text: "Alerting" })),
      h(
        "section",
        { class: "card", "aria-labelledby": "rules-title" },
        h("div", { class: "page-head" }, h("h2", { id: "rules-title", text: "Alert rules" }), h("div", { class: "buttons" }, newRule)),
        this.rulesCount,
        table(
          "Alert rules",
          ["Name", "Covers", "Thresholds", "No data", "Severity", "Reminders", "Flapping", "Enabled", ""],
          this.rules,
          "rules-table",
        ),
      ),
      h(
        "section",
        { class: "card", "aria-labelledby": "silences-title" },
        h("div", { class: "page-head" }, h("h2", { id: "silences-title", text: "Silences" }), h("div", { class: "buttons" }, newSilence)),
        h("div", { class: "field field-checkbox" }, this.showEnded, h("label", { for: "silences-ended", text: "Show ended silences" })),
        this.silencesCount,
        table("Silences", ["Covers", "Active", "Start", "End", "When", "Comment", "Created by", ""], this.silences, "silences-table"),
      ),
    );
  }

  mount(): void {
    this.poller.start();
  }

  destroy(): void {
    this.poller.stop();
  }

  private async load(current: () => boolean): Promise<void> {
    const [rules, silences] = await Promise.allSettled([alerting.rules(), alerting.silences(this.showEnded.checked)]);
    if (!current()) return;
    if (rules.status === "fulfilled") {
      this.renderRules(rules.value.rules ?? []);
      alerts.clear("rules");
    } else {
      alerts.show(`Could not load the alert rules: ${describe(rules.reason)}`, { key: "rules" });
    }
    if (silences.status === "fulfilled") {
      this.renderSilences(silences.value.silences ?? []);
      alerts.clear("silences");
    } else {
      alerts.show(`Could not load the silences: ${describe(silences.reason)}`, { key: "silences" });
    }
  }

  private renderRules(rules: AlertRule[]): void {
    setText(this.rulesCount, rules.length ? `${rules.length} rule${rules.length === 1 ? "" : "s"}` : "No alert rules: no incident opens.");
    const key = JSON.stringify(rules);
    if (key === this.drawnRules) return;
    this.drawnRules = key;
    this.rules.replaceChildren(
      ...rules.map((rule) => {
        const name = rule.name ?? "";
        const edit = h("button", { type: "button", class: "small", "aria-label": `Edit rule ${name}`, text: "Edit" });
        const remove = h("button", { type: "button", class: "small danger-outline", "aria-label": `Delete rule ${name}`, text: "Delete" });
        edit.addEventListener("click", () => void this.onEditRule(rule));
        remove.addEventListener("click", () => void this.onDeleteRule(rule));
        const flapping = rule.flapThreshold ? `${rule.flapThreshold} changes in ${humanDuration(rule.flapWindow)}` : "off";
        return h(
          "tr",
          { "data-id": rule.id ?? "", "data-name": name },
          h("th", { scope: "row", class: "name", text: name }),
          h("td", { "data-col": "covers", text: scopeText(rule) }),
          h("td", { "data-col": "thresholds", text: thresholdsText(rule) }),
          h("td", { text: rule.noData === false ? "ignored" : "opens" }),
          h("td", {}, severityBadge(rule)),
          h("td", { text: rule.repeatInterval && rule.repeatInterval !== "0s" ? `every ${humanDuration(rule.repeatInterval)}` : "none" }),
          h("td", { text: flapping }),
          h("td", { "data-col": "enabled", text: rule.enabled === false ? "no" : "yes" }),
          h("td", { class: "actions" }, h("div", { class: "buttons" }, edit, remove)),
        );
      }),
    );
  }

  private renderSilences(silences: Silence[]): void {
    const active = silences.filter((s) => s.active).length;
    setText(
      this.silencesCount,
      silences.length ? `${silences.length} silence${silences.length === 1 ? "" : "s"}, ${active} active now` : "No silences.",
    );
    const key = JSON.stringify(silences);
    if (key === this.drawnSilences) return;
    this.drawnSilences = key;
    const now = Date.now();
    this.silences.replaceChildren(
      ...silences.map((silence) => {
        const label = silence.comment || scopeText(silence);
        const started = !silence.startTime || Date.parse(silence.startTime) <= now;
        const ended = Boolean(silence.endTime && Date.parse(silence.endTime) <= now);
        const end = h("button", {
          type: "button",
          class: "small",
          "aria-label": `End silence ${label} now`,
          text: "End now",
          disabled: !started || ended,
          title: started ? "" : "Not started yet: delete it instead",
        });
        const remove = h("button", { type: "button", class: "small danger-outline", "aria-label": `Delete silence ${label}`, text: "Delete" });
        end.addEventListener("click", () => void this.onEndSilence(silence, label));
        remove.addEventListener("click", () => void this.onDeleteSilence(silence, label));
        const state = silence.active ? "active" : ended ? "ended" : "inactive";
        return h(
          "tr",
          { "data-id": silence.id ?? "", "data-comment": silence.comment ?? "" },
          h("th", { scope: "row", "data-col": "covers", text: scopeText(silence) }),
          h("td", {}, h("span", { class: `badge silence-${state}`, "data-col": "active", text: state })),
          h("td", { class: "nowrap", text: absoluteTime(silence.startTime) }),
          h("td", { class: "nowrap", text: absoluteTime(silence.endTime) }),
          h("td", { text: recurrenceText(silence) }),
          h("td", { text: silence.comment || "" }),
          h("td", { text: silence.createdBy || "" }),
          h("td", { class: "actions" }, h("div", { class: "buttons" }, end, remove)),
        );
      }),
    );
  }

  private async onNewRule(): Promise<void> {
    const created = await openRuleForm();
    if (created) {
      alerts.show(`Created rule ${created.name ?? ""}.`, { kind: "info", key: "action" });
      this.poller.now();
    }
  }

  private async onEditRule(rule: AlertRule): Promise<void> {
    const saved = await openRuleForm(rule);
    if (saved) {
      alerts.show(`Saved rule ${saved.name ?? ""} (version ${saved.version ?? "?"}).`, { kind: "info", key: "action" });
      this.poller.now();
    }
  }

  private async onDeleteRule(rule: AlertRule): Promise<void> {
    const confirmed = await confirmDialog({
      title: `Delete rule ${rule.name ?? ""}?`,
      message: `The rule "${rule.name ?? rule.id}" stops opening incidents; its incidents stay, with its name. This cannot be undone.`,
      confirmLabel: "Delete rule",
      danger: true,
    });
    if (!confirmed) return;
    try {
      await alerting.removeRule(rule.id ?? "", rule.version);
      alerts.show(`Deleted rule ${rule.name ?? ""}.`, { kind: "info", key: "action" });
    } catch (err) {
      alerts.show(`Could not delete rule ${rule.name ?? ""}: ${describe(err)}`, { key: "action" });
    }
    this.poller.now();
  }

  private async onNewSilence(): Promise<void> {
    const created = await openSilenceForm();
    if (created) {
      alerts.show(`Created a silence until ${absoluteTime(created.endTime)}.`, { kind: "info", key: "action" });
      this.poller.now();
    }
  }

  private async onEndSilence(silence: Silence, label: string): Promise<void> {
    try {
      await alerting.updateSilence(silence.id ?? "", { version: silence.version ?? "0", endTime: new Date().toISOString() });
      alerts.show(`Ended silence ${label}.`, { kind: "info", key: "action" });
    } catch (err) {
      alerts.show(`Could not end silence ${label}: ${describe(err)}`, { key: "action" });
    }
    this.poller.now();
  }

  private async onDeleteSilence(silence: Silence, label: string): Promise<void> {
    const confirmed = await confirmDialog({
      title: `Delete silence ${label}?`,
      message: "The silence is removed; incidents it covered notify again. This cannot be undone.",
      confirmLabel: "Delete silence",
      danger: true,
    });
    if (!confirmed) return;
    try {
      await alerting.removeSilence(silence.id ?? "", silence.version);
      alerts.show(`Deleted silence ${label}.`, { kind: "info", key: "action" });
    } catch (err) {
      alerts.show(`Could not delete silence ${label}: ${describe(err)}`, { key: "action" });
    }
    this.poller.now();
  }
}
