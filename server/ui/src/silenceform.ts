// The create form of a silence (a maintenance window), in a modal dialog:
// POST /v1/silences. Start and end are local times (empty start: now); an
// optional weekly recurrence narrows the window to some days and hours in a
// time zone. The server's field violations (silence.end_time,
// silence.recurrence.days, …) appear beside their fields.

import { ApiError, alerting, describe } from "./api";
import { showDialog } from "./dialogs";
import { h, uid } from "./dom";
import { FormFields, parseIdList, parseLabelLines } from "./fields";
import { parseDuration } from "./format";
import type { FieldViolation, Silence } from "./types";

const DAYS: [string, string][] = [
  ["mon", "Mon"],
  ["tue", "Tue"],
  ["wed", "Wed"],
  ["thu", "Thu"],
  ["fri", "Fri"],
  ["sat", "Sat"],
  ["sun", "Sun"],
];

/** Server path (after "silence.") → form field. */
function fieldOf(path: string): { key: string; detail: string } | undefined {
  const p = path.replace(/^silence\./, "");
  const ids = /^job_ids(?:\[(\d+)\])?$/.exec(p);
  if (ids) return { key: "jobIds", detail: ids[1] ? `id ${Number(ids[1]) + 1}` : "" };
  const labels = /^label_selector(?:\[(.*)\])?$/.exec(p);
  if (labels) return { key: "labelSelector", detail: labels[1] ? `label ${labels[1]}` : "" };
  if (/^recurrence\.days/.test(p)) return { key: "days", detail: "" };
  if (/^recurrence\.start/.test(p)) return { key: "recurrenceStart", detail: "" };
  if (/^recurrence\.duration/.test(p)) return { key: "recurrenceDuration", detail: "" };
  if (/^recurrence\.time_zone/.test(p)) return { key: "timeZone", detail: "" };
  if (/^recurrence/.test(p)) return { key: "recurring", detail: "" };
  const simple: Record<string, string> = { start_time: "startTime", end_time: "endTime", comment: "comment" };
  const key = simple[p];
  return key ? { key, detail: "" } : undefined;
}

/** A datetime-local value ("2026-12-01T10:30") for a Date, in local time. */
function localInput(at: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}T${pad(at.getHours())}:${pad(at.getMinutes())}`;
}

/** Opens the form; resolves with the created silence, or undefined when closed without saving. */
export function openSilenceForm(): Promise<Silence | undefined> {
  return new Promise((resolve) => {
    let saved: Silence | undefined;
    const titleId = uid("silence-form-title");
    const fields = new FormFields("silence", fieldOf);
    const field = fields.field.bind(fields);

    const jobIds = h("textarea", { rows: 2, spellcheck: "false" });
    const labelSelector = h("textarea", { rows: 2, spellcheck: "false" });
    const startTime = h("input", { type: "datetime-local" });
    const endTime = h("input", { type: "datetime-local", value: localInput(new Date(Date.now() + 3600_000)) });
    const recurring = h("input", { type: "checkbox" });
    const dayName = uid("silence-days");
    const dayError = h("p", { id: `${dayName}-error`, class: "field-error" });
    const dayBoxes = DAYS.map(([value, label]) => {
      const id = uid(`day-${value}`);
      const input = h("input", { type: "checkbox", id, name: dayName, value });
      return { input, el: h("div", { class: "radio" }, input, h("label", { for: id, text: label })) };
    });
    const daySet = h(
      "fieldset",
      { class: "days", "aria-describedby": dayError.id },
      h("legend", { text: "Days" }),
      h("div", { class: "radios" }, dayBoxes.map((d) => d.el)),
      dayError,
    );
    const firstDay = dayBoxes[0]?.input ?? recurring;
    fields.register({ key: "days", control: daySet, focusable: firstDay, error: dayError, wrapper: daySet });
    const recurrenceStart = h("input", { type: "text", value: "02:00", inputmode: "numeric", autocomplete: "off" });
    const recurrenceDuration = h("input", { type: "text", value: "2h", autocomplete: "off" });
    const timeZone = h("input", {
      type: "text",
      value: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC",
      autocomplete: "off",
      spellcheck: "false",
    });
    const comment = h("textarea", { rows: 2, maxlength: 1024 });

    const recurrenceSet = h(
      "fieldset",
      { class: "recurrence-fields" },
      h("legend", { text: "Weekly window" }),
      daySet,
      h(
        "div",
        { class: "row" },
        field("recurrenceStart", "Window start", recurrenceStart, "Local time, HH:MM (24-hour)"),
        field("recurrenceDuration", "Window length", recurrenceDuration, "1m to 7d, e.g. 2h"),
        field("timeZone", "Time zone", timeZone, "IANA name, e.g. Europe/Berlin; empty: UTC"),
      ),
    );
    const showRecurrence = () => (recurrenceSet.hidden = !recurring.checked);
    recurring.addEventListener("change", showRecurrence);
    showRecurrence();

    const submit = h("button", { type: "submit", class: "primary", text: "Create silence" });
    const cancel = h("button", { type: "button", text: "Cancel" });
    const form = h(
      "form",
      { novalidate: true, class: "silence-form" },
      h("h2", { id: titleId, text: "New silence" }),
      fields.alertArea,
      h(
        "div",
        { class: "row" },
        field("jobIds", "Job ids", jobIds, "One per line; with no ids and no labels it silences every job"),
        field("labelSelector", "Label selector", labelSelector, "One key=value per line: jobs carrying all of them"),
      ),
      h(
        "div",
        { class: "row" },
        field("startTime", "Start", startTime, "Your local time; empty: now"),
        field("endTime", "End", endTime, "At most 400 days after the start"),
      ),
      field("recurring", "Only during a weekly window", recurring),
      recurrenceSet,
      field("comment", "Comment", comment, "Why, for whoever sees it (at most 1024 characters)"),
      h("div", { class: "dialog-actions" }, cancel, submit),
    );
    const dialog = h("dialog", { class: "dialog dialog-form", "aria-labelledby": titleId }, form);

    const read = (): { silence: Silence } | { violations: FieldViolation[] } => {
      const problems: FieldViolation[] = [];
      const time = (input: HTMLInputElement, path: string): string | undefined => {
        if (!input.value) return undefined;
        const at = new Date(input.value);
        if (Number.isNaN(at.getTime())) {
          problems.push({ field: path, description: `"${input.value}" is not a date and time` });
          return undefined;
        }
        return at.toISOString();
      };
      const out: Silence = {
        jobIds: parseIdList(jobIds.value),
        labelSelector: parseLabelLines(labelSelector.value, "label_selector", problems),
        comment: comment.value.trim(),
      };
      const start = time(startTime, "start_time");
      if (start) out.startTime = start;
      const end = time(endTime, "end_time");
      if (end) out.endTime = end;
      if (recurring.checked) {
        const duration = recurrenceDuration.value.trim() ? parseDuration(recurrenceDuration.value) : undefined;
        if (recurrenceDuration.value.trim() && !duration)
          problems.push({ field: "recurrence.duration", description: `"${recurrenceDuration.value}" is not a duration such as 2h` });
        out.recurrence = {
          days: dayBoxes.filter((d) => d.input.checked).map((d) => d.input.value),
          start: recurrenceStart.value.trim(),
          timeZone: timeZone.value.trim(),
        };
        if (duration) out.recurrence.duration = duration;
      }
      return problems.length ? { violations: problems } : { silence: out };
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
      submit.textContent = "Creating…";
      try {
        saved = (await alerting.createSilence(result.silence)).silence;
        dialog.close();
      } catch (err) {
        if (err instanceof ApiError && err.violations.length) fields.show(err.violations, err.message);
        else fields.alert(describe(err));
      } finally {
        submit.disabled = false;
        submit.textContent = "Create silence";
      }
    });
    cancel.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => resolve(saved));
    showDialog(dialog);
    jobIds.focus();
  });
}
