// Which jobs a rule or a silence covers, as the alert evaluator decides it:
// the jobs it names by id, and every job carrying all of its selector's
// labels; naming neither covers every job.

import type { Job } from "./types";

/** The part of an AlertRule or a Silence that says which jobs it covers. */
export interface JobScope {
  jobIds?: string[];
  labelSelector?: Record<string, string>;
}

export function covers(scope: JobScope, job: Job): boolean {
  const ids = scope.jobIds ?? [];
  const selector = Object.entries(scope.labelSelector ?? {});
  if (ids.length === 0 && selector.length === 0) return true;
  if (job.id && ids.includes(job.id)) return true;
  return selector.length > 0 && selector.every(([key, value]) => job.labels?.[key] === value);
}

/** What a scope covers, for people: "every job", "env=demo", "2 jobs by id; team=web". */
export function scopeText(scope: JobScope): string {
  const ids = scope.jobIds ?? [];
  const selector = Object.entries(scope.labelSelector ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (ids.length === 0 && selector.length === 0) return "every job";
  const parts: string[] = [];
  if (ids.length) parts.push(ids.length === 1 ? "1 job by id" : `${ids.length} jobs by id`);
  if (selector.length) parts.push(selector.map(([k, v]) => `${k}=${v}`).join(", "));
  return parts.join("; ");
}
