// Start, stop, edit and delete, shared by the jobs list and the job page:
// each reports its outcome in the alert area and resolves to whether
// anything changed.

import { api, describe } from "./api";
import { confirmDialog } from "./dialogs";
import { alerts } from "./dom";
import { openJobForm } from "./form";
import type { Job } from "./types";

/** Starts a stopped job or stops a running one; the new job, or undefined on failure. */
export async function toggleJob(job: Job): Promise<Job | undefined> {
  const id = job.id ?? "";
  const running = job.desiredState === "JOB_STATE_RUNNING";
  try {
    const response = running ? await api.stop(id) : await api.start(id);
    alerts.show(response.message || `${running ? "Stopped" : "Started"} ${job.name ?? "the job"}.`, {
      kind: "info",
      key: "action",
    });
    return response.job;
  } catch (err) {
    alerts.show(`Could not ${running ? "stop" : "start"} ${job.name ?? "the job"}: ${describe(err)}`, { key: "action" });
    return undefined;
  }
}

/** Asks for confirmation, then deletes at the version shown; true when deleted. */
export async function deleteJob(job: Job): Promise<boolean> {
  const confirmed = await confirmDialog({
    title: `Delete ${job.name ?? "this job"}?`,
    message: `The job "${job.name ?? job.id}" stops being checked and is removed. This cannot be undone.`,
    confirmLabel: "Delete job",
    danger: true,
  });
  if (!confirmed) return false;
  try {
    await api.remove(job.id ?? "", job.version);
    alerts.show(`Deleted ${job.name ?? "the job"}.`, { kind: "info", key: "action" });
    return true;
  } catch (err) {
    alerts.show(`Could not delete ${job.name ?? "the job"}: ${describe(err)}`, { key: "action" });
    return false;
  }
}

/** Reads the job's latest version and opens the edit form; the saved job, if any. */
export async function editJob(id: string): Promise<Job | undefined> {
  let job: Job | undefined;
  try {
    job = (await api.job(id)).job;
  } catch (err) {
    alerts.show(`Could not open the job for editing: ${describe(err)}`, { key: "action" });
    return undefined;
  }
  if (!job) return undefined;
  const saved = await openJobForm(job);
  if (saved) alerts.show(`Saved ${saved.name ?? "the job"} (version ${saved.version ?? "?"}).`, { kind: "info", key: "action" });
  return saved;
}

/** Opens the empty form; the created job, if any. */
export async function createJob(): Promise<Job | undefined> {
  const created = await openJobForm();
  if (created) alerts.show(`Created ${created.name ?? "the job"}.`, { kind: "info", key: "action" });
  return created;
}
