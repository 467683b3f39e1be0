// The create / edit form of an alert rule, in a modal dialog. Create is POST
// /v1/alert-rules; edit is PATCH /v1/alert-rules/{id} with every settable
// field and the version the form was opened at (stale: 409 ABORTED). The
// server's field violations (rule.failure_threshold, rule.job_ids[0], …)
// appear beside their fields, as in the job form. The channels the rule
// notifies are picked by name from GET /v1/notification-channels.

import { ApiError, Code, alerting, describe, notifications } from "./api";
import { showDialog } from "./dialogs";
import { h, uid } from "./dom";
import { FormFields, parseIdList, parseLabelLines } from "./fields";
import { kindOf, kindSpec } from "./channelkinds";
import { humanDuration, labelsText, parseDuration } from "./format";
import type { AlertRule, FieldViolation, Severity } from "./types";

/** Server path (after "rule.") → form field. */
function fieldOf(path: string): { key: string; detail: string } | undefined {
  const p = path.replace(/^rule\./, "");
  const ids = /^job_ids(?:\[(\d+)\])?$/.exec(p);
  if (ids) return { key: "jobIds", detail: ids[1] ? `id ${Number(ids[1]) + 1}` : "" };
  const channels = /^channel_ids(?:\[(\d+)\])?$/.exec(p);
  if (channels) return { key: "channelIds", detail: channels[1] ? `channel ${Number(channels[1]) + 1}` : "" };
  const labels = /^label_selector(?:\[(.*)\])?$/.exec(p);
  if (labels) return { key: "labelSelector", detail: labels[1] ? `label ${labels[1]}` : "" };
  const simple: Record<string, string> = {
    name: "name",
    failure_threshold: "failureThreshold",
    success_threshold: "successThreshold",
    min_failing_locations: "minFailingLocations",
    min_failing_percent: "minFailingPercent",
    no_data: "noData",
    severity: "severity",
    repeat_interval: "repeatInterval",
    notify_on_resolve: "notifyOnResolve",
    flap_threshold: "flapThreshold",
    flap_window: "flapWindow",
    enabled: "enabled",
  };
  const key = simple[p];
  return key ? { key, detail: "" } : undefined;
}

const SEVERITIES: [Severity, string][] = [
  ["SEVERITY_CRITICAL", "Critical"],
  ["SEVERITY_WARNING", "Warning"],
  ["SEVERITY_INFO", "Info"],
];

/** Opens the form; resolves with the saved rule, or undefined when closed without saving. */
export function openRuleForm(existing?: AlertRule): Promise<AlertRule | undefined> {
  return new Promise((resolve) => {
    let saved: AlertRule | undefined;
    const editing = Boolean(existing?.id);
    const rule = existing ?? {};
    const titleId = uid("rule-form-title");
    const fields = new FormFields("rule", fieldOf);
    const field = fields.field.bind(fields);

    const text = (value: string, attrs: Record<string, string | number> = {}) => h("input", { type: "text", value, autocomplete: "off", ...attrs });
    const count = (value: number | undefined) => text(value ? String(value) : "", { inputmode: "numeric" });
    const checkbox = (checked: boolean) => h("input", { type: "checkbox", checked });

    const name = text(rule.name ?? "", { maxlength: 128 });
    const jobIds = h("textarea", { rows: 2, spellcheck: "false" });
    jobIds.value = (rule.jobIds ?? []).join("\n");
    const labelSelector = h("textarea", { rows: 2, spellcheck: "false" });
    labelSelector.value = labelsText(rule.labelSelector, "\n");
    const failureThreshold = count(rule.failureThreshold);
    const successThreshold = count(rule.successThreshold);
    const minFailingLocations = count(rule.minFailingLocations);
    const minFailingPercent = count(rule.minFailingPercent);
    const noData = checkbox(rule.noData ?? true);
    const severity = h("select", {}, SEVERITIES.map(([value, label]) => h("option", { value, text: label })));
    severity.value = rule.severity && rule.severity !== "SEVERITY_UNSPECIFIED" ? rule.severity : "SEVERITY_CRITICAL";
    const repeatInterval = text(humanDuration(rule.repeatInterval) === "0s" ? "" : humanDuration(rule.repeatInterval));
    const notifyOnResolve = checkbox(rule.notifyOnResolve ?? true);
    const flapThreshold = count(rule.flapThreshold);
    const flapWindow = text(humanDuration(rule.flapWindow));
    const enabled = checkbox(rule.enabled ?? true);

    // Channels: one checkbox per channel, by name, filled once the list arrives.
    const channelsName = uid("rule-channels");
    const channelsError = h("p", { id: `${channelsName}-error`, class: "field-error" });
    const channelsBox = h("div", { class: "checkboxes" }, h("p", { class: "hint", text: "Loading channels…" }));
    const channelsSet = h(
      "fieldset",
      { class: "channels", "aria-describedby": channelsError.id, "data-field": "channelIds" },
      h("legend", { text: "Channels" }),
      channelsBox,
      channelsError,
    );
    const channelFocus = h("a", { href: "#/channels", text: "Manage channels" });
    fields.register({ key: "channelIds", control: channelsSet, focusable: channelFocus, error: channelsError, wrapper: channelsSet });
    const chosen = new Set(rule.channelIds ?? []);
    const channelBoxes: HTMLInputElement[] = [];
    /** Until the list arrives (or when it cannot), the rule keeps the channels it names. */
    let channelsReady = false;
    void notifications
      .channels()
      .then((listed) => {
        const all = listed.channels ?? [];
        const known = new Set(all.map((c) => c.id ?? ""));
        const items = all.map((c) => {
          const id = uid("rule-channel");
          const box = h("input", { type: "checkbox", id, value: c.id ?? "", checked: chosen.has(c.id ?? ""), name: channelsName });
          channelBoxes.push(box);
          const kind = kindOf(c);
          const about = [kind ? (kindSpec(kind)?.label ?? kind) : "", c.enabled === false ? "disabled" : ""].filter(Boolean).join(", ");
          return h("div", { class: "field-checkbox" }, box, h("label", { for: id, text: `${c.name ?? ""} (${about})` }));
        });
        // Ids of channels deleted since: shown, not kept (the server refuses unknown ids).
        const gone = [...chosen].filter((id) => !known.has(id));
        channelsReady = true;
        channelsBox.replaceChildren(
          ...(items.length ? items : [h("p", { class: "hint", text: "No channels yet: incidents of this rule notify nobody." })]),
          ...(gone.length ? [h("p", { class: "hint", text: `Deleted since, dropped on save: ${gone.join(", ")}` })] : []),
          h("p", { class: "hint" }, channelFocus),
        );
      })
      .catch((err: unknown) => {
        channelsBox.replaceChildren(h("p", { class: "hint", text: `Could not load the channels (${describe(err)}); the rule keeps its ${chosen.size}.` }));
      });

    const submitLabel = editing ? "Save rule" : "Create rule";
    const submit = h("button", { type: "submit", class: "primary", text: submitLabel });
    const cancel = h("button", { type: "button", text: "Cancel" });
    const form = h(
      "form",
      { novalidate: true, class: "rule-form" },
      h("h2", { id: titleId, text: editing ? `Edit rule ${rule.name ?? ""}`.trim() : "New alert rule" }),
      fields.alertArea,
      field("name", "Name", name),
      h(
        "div",
        { class: "row" },
        field("jobIds", "Job ids", jobIds, "One per line; with no ids and no labels the rule covers every job"),
        field("labelSelector", "Label selector", labelSelector, "One key=value per line: jobs carrying all of them"),
      ),
      h(
        "fieldset",
        {},
        h("legend", { text: "When is a job down" }),
        h(
          "div",
          { class: "row" },
          field("failureThreshold", "Failure threshold", failureThreshold, "Failed checks in a row, 1 to 100; empty: 3"),
          field("successThreshold", "Success threshold", successThreshold, "Passed checks in a row to recover; empty: 2"),
        ),
        h(
          "div",
          { class: "row" },
          field("minFailingLocations", "Min failing locations", minFailingLocations, "1 to 64; empty: 1"),
          field("minFailingPercent", "Min failing percent", minFailingPercent, "Instead of a count: 1 to 100 % of the locations"),
        ),
        field("noData", "Open an incident when a running job reports nothing", noData),
      ),
      h(
        "fieldset",
        {},
        h("legend", { text: "Notifications" }),
        h(
          "div",
          { class: "row" },
          field("severity", "Severity", severity),
          field("repeatInterval", "Repeat interval", repeatInterval, "Reminders while unacknowledged, 1m to 7d; empty: none"),
        ),
        field("notifyOnResolve", "Notify when resolved", notifyOnResolve),
        channelsSet,
        h(
          "div",
          { class: "row" },
          field("flapThreshold", "Flap threshold", flapThreshold, "Down/up changes within the window, 2 to 100; empty: off"),
          field("flapWindow", "Flap window", flapWindow, "1m to 24h; empty: 10m"),
        ),
      ),
      field("enabled", "Enabled", enabled),
      h("div", { class: "dialog-actions" }, cancel, submit),
    );
    const dialog = h("dialog", { class: "dialog dialog-form", "aria-labelledby": titleId }, form);

    /** The rule the form describes, or the problems found before asking the server. */
    const read = (): { rule: AlertRule } | { violations: FieldViolation[] } => {
      const problems: FieldViolation[] = [];
      const number = (input: HTMLInputElement, path: string): number => {
        const value = input.value.trim();
        if (!value) return 0;
        if (!/^\d+$/.test(value)) {
          problems.push({ field: path, description: `"${value}" is not a whole number` });
          return 0;
        }
        return Number(value);
      };
      const duration = (input: HTMLInputElement, path: string): string => {
        if (!input.value.trim()) return "0s";
        const parsed = parseDuration(input.value);
        if (!parsed) problems.push({ field: path, description: `"${input.value}" is not a duration such as 30m, 1h or 1d` });
        return parsed ?? "0s";
      };
      // Every settable field is sent, so an edit's update mask names them all.
      const out: AlertRule = {
        name: name.value.trim(),
        jobIds: parseIdList(jobIds.value),
        labelSelector: parseLabelLines(labelSelector.value, "label_selector", problems),
        failureThreshold: number(failureThreshold, "failure_threshold"),
        successThreshold: number(successThreshold, "success_threshold"),
        minFailingLocations: number(minFailingLocations, "min_failing_locations"),
        minFailingPercent: number(minFailingPercent, "min_failing_percent"),
        noData: noData.checked,
        severity: severity.value as Severity,
        channelIds: channelsReady ? channelBoxes.filter((box) => box.checked).map((box) => box.value) : [...chosen],
        repeatInterval: duration(repeatInterval, "repeat_interval"),
        notifyOnResolve: notifyOnResolve.checked,
        flapThreshold: number(flapThreshold, "flap_threshold"),
        flapWindow: duration(flapWindow, "flap_window"),
        enabled: enabled.checked,
      };
      return problems.length ? { violations: problems } : { rule: out };
    };

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      fields.clear();
      const result = read();
      if ("violations" in result) {
        fields.show(result.violations);
        return;
      }
      submit.disabled = true;
      submit.textContent = editing ? "Saving…" : "Creating…";
      try {
        const response =
          editing && existing?.id
            ? await alerting.updateRule(existing.id, { ...result.rule, version: existing.version ?? "0" })
            : await alerting.createRule(result.rule);
        saved = response.rule;
        dialog.close();
      } catch (err) {
        if (err instanceof ApiError && err.violations.length) fields.show(err.violations, err.message);
        else if (err instanceof ApiError && err.code === Code.AlreadyExists) fields.show([{ field: "name", description: err.message }]);
        else if (err instanceof ApiError && err.code === Code.Aborted)
          fields.alert(`This rule was changed by someone else since the form was opened (${err.message}). Close the form and edit it again.`);
        else fields.alert(describe(err));
      } finally {
        submit.disabled = false;
        submit.textContent = submitLabel;
      }
    });
    cancel.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => resolve(saved));
    showDialog(dialog);
    name.focus();
  });
}
