// The create / edit form of a job, in a modal dialog. Create is POST
// /v1/jobs; edit is PATCH /v1/jobs/{id} with every field and the version the
// form was opened at (a stale version answers 409 ABORTED). The server's
// field violations (google.rpc.BadRequest) are shown beside their field,
// linked with aria-describedby; anything else goes to the dialog's alert.

import { ApiError, Code, api, describe } from "./api";
import { CHECK_KINDS, checkKindOf, jobFieldOf } from "./checkkinds";
import { showDialog } from "./dialogs";
import { h, uid } from "./dom";
import { FormFields, parseLabelLines } from "./fields";
import { humanDuration, parseDuration, sortedEntries } from "./format";
import { KindSettings } from "./kindform";
import type { FieldViolation, Job } from "./types";

/**
 * Opens the form; resolves with the saved job, or undefined when the person
 * closed it without saving.
 */
export function openJobForm(existing?: Job): Promise<Job | undefined> {
  return new Promise((resolve) => {
    let saved: Job | undefined;
    const editing = Boolean(existing?.id);
    const titleId = uid("job-form-title");
    const fields = new FormFields("job", jobFieldOf);
    const alertArea = fields.alertArea;
    const field = fields.field.bind(fields);

    const job = existing ?? {};

    const name = h("input", { type: "text", value: job.name ?? "", maxlength: 128, autocomplete: "off", required: true });
    const labels = h("textarea", { rows: 2, spellcheck: "false" });
    labels.value = sortedEntries(job.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join("\n");
    const locations = h("input", { type: "text", value: (job.locations ?? []).join(", "), autocomplete: "off" });
    const interval = h("input", { type: "text", value: humanDuration(job.interval) || "30s", inputmode: "text", required: true });
    const timeout = h("input", { type: "text", value: humanDuration(job.timeout) || "5s", required: true });
    const desiredState = h(
      "select",
      {},
      h("option", { value: "JOB_STATE_STOPPED", text: "Stopped" }),
      h("option", { value: "JOB_STATE_RUNNING", text: "Running" }),
    );
    desiredState.value = job.desiredState === "JOB_STATE_RUNNING" ? "JOB_STATE_RUNNING" : "JOB_STATE_STOPPED";

    // The check: a kind selector and one fieldset per kind, from the table in checkkinds.ts.
    const kinds = new KindSettings(fields, CHECK_KINDS, checkKindOf(job) ?? "http", (k) => job[k], (spec) => spec.label);

    const submit = h("button", { type: "submit", class: "primary", text: editing ? "Save changes" : "Create job" });
    const cancel = h("button", { type: "button", text: "Cancel" });
    const form = h(
      "form",
      { novalidate: true, class: "job-form" },
      h("h2", { id: titleId, text: editing ? `Edit ${job.name ?? "job"}` : "New job" }),
      alertArea,
      field("name", "Name", name),
      h(
        "div",
        { class: "row" },
        field("interval", "Interval", interval, "How often: 1s to 24h, e.g. 30s, 5m"),
        field("timeout", "Timeout", timeout, "At most the interval and 60s"),
        field("desiredState", "Desired state", desiredState),
      ),
      h(
        "div",
        { class: "row" },
        field("labels", "Labels", labels, "One key=value per line"),
        field("locations", "Locations", locations, "Comma-separated, e.g. local-a, local-b; empty: any one worker"),
      ),
      h("div", { class: "row" }, field("kind", "Check kind", kinds.selector)),
      kinds.about,
      kinds.sets,
      h("div", { class: "dialog-actions" }, cancel, submit),
    );
    const dialog = h("dialog", { class: "dialog dialog-form", "aria-labelledby": titleId }, form);

    const clearErrors = () => fields.clear();
    const showViolations = (violations: FieldViolation[], fallback?: string) => fields.show(violations, fallback);

    /** The job the form describes, or the client-side problems found. */
    const read = (): { job: Job } | { violations: FieldViolation[] } => {
      const problems: FieldViolation[] = [];
      const out: Job = { name: name.value.trim() };
      out.labels = parseLabelLines(labels.value, "labels", problems);
      out.locations = locations.value
        .split(/[,\s]+/)
        .map((l) => l.trim())
        .filter(Boolean);
      for (const [key, input] of [
        ["interval", interval],
        ["timeout", timeout],
      ] as const) {
        if (!input.value.trim()) continue; // the server says it is required
        const parsed = parseDuration(input.value);
        if (parsed) out[key] = parsed;
        else problems.push({ field: key, description: `"${input.value}" is not a duration such as 30s, 5m or 1h` });
      }
      out.desiredState = desiredState.value as Job["desiredState"];
      out[kinds.kind] = kinds.read(problems);
      return problems.length ? { violations: problems } : { job: out };
    };

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors();
      const result = read();
      if ("violations" in result) {
        showViolations(result.violations);
        return;
      }
      submit.disabled = true;
      submit.textContent = editing ? "Saving…" : "Creating…";
      try {
        const response =
          editing && existing?.id
            ? await api.update(existing.id, { ...result.job, version: existing.version ?? "0" })
            : await api.create(result.job);
        saved = response.job;
        dialog.close();
      } catch (err) {
        if (err instanceof ApiError && err.violations.length) {
          showViolations(err.violations, err.message);
        } else if (err instanceof ApiError && err.code === Code.AlreadyExists) {
          showViolations([{ field: "name", description: err.message }]);
        } else if (err instanceof ApiError && err.code === Code.Aborted) {
          alertArea.replaceChildren(
            h("p", {
              text: `This job was changed by someone else since the form was opened (${err.message}). Close the form and edit it again to start from the latest version.`,
            }),
          );
          alertArea.focus();
        } else {
          alertArea.replaceChildren(h("p", { text: describe(err) }));
          alertArea.focus();
        }
      } finally {
        submit.disabled = false;
        submit.textContent = editing ? "Save changes" : "Create job";
      }
    });
    cancel.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => resolve(saved));
    showDialog(dialog);
    name.focus();
  });
}
