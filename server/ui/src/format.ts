// How values read on screen: enum names, relative times, durations,
// percentages.

import type { CheckOutcome, IncidentCause, IncidentState, JobPhase, JobState, Severity, WorkerState } from "./types";

export function stateName(state: JobState | undefined): string {
  return state === "JOB_STATE_RUNNING" ? "running" : "stopped";
}

export function phaseName(phase: JobPhase | undefined): string {
  switch (phase) {
    case "JOB_PHASE_ACTIVE":
      return "active";
    case "JOB_PHASE_PENDING":
      return "pending";
    case "JOB_PHASE_STOPPED":
      return "stopped";
    default:
      return "unknown";
  }
}

const outcomeNames: Record<string, string> = {
  CHECK_OUTCOME_OK: "OK",
  CHECK_OUTCOME_ASSERTION_FAILED: "assertion failed",
  CHECK_OUTCOME_TIMEOUT: "timeout",
  CHECK_OUTCOME_DNS: "DNS error",
  CHECK_OUTCOME_CONNECT: "connect error",
  CHECK_OUTCOME_TLS: "TLS error",
  CHECK_OUTCOME_HTTP_ERROR: "HTTP error",
  CHECK_OUTCOME_BLOCKED: "blocked",
  CHECK_OUTCOME_PROTOCOL_ERROR: "protocol error",
  CHECK_OUTCOME_NOT_PERMITTED: "not permitted",
  CHECK_OUTCOME_PROXY: "proxy error",
};

export function outcomeName(outcome: CheckOutcome | undefined): string {
  if (!outcome || outcome === "CHECK_OUTCOME_UNSPECIFIED") return "";
  return outcomeNames[outcome] ?? outcome.replace(/^CHECK_OUTCOME_/, "").toLowerCase().replace(/_/g, " ");
}

/** "ok" | "bad" | "none": the colour class of an outcome. */
export function outcomeClass(outcome: CheckOutcome | undefined): string {
  if (!outcome || outcome === "CHECK_OUTCOME_UNSPECIFIED") return "none";
  return outcome === "CHECK_OUTCOME_OK" ? "ok" : "bad";
}

export function workerStateName(state: WorkerState | undefined): string {
  switch (state) {
    case "WORKER_STATE_CONNECTED":
      return "connected";
    case "WORKER_STATE_LOST":
      return "lost";
    case "WORKER_STATE_DRAINING":
      return "draining";
    default:
      return "unknown";
  }
}

/** "12 s ago", "3 min ago", "2 h ago", "4 d ago"; "" without a time. */
export function relativeTime(iso: string | undefined, now = Date.now()): string {
  if (!iso) return "";
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return iso;
  const seconds = Math.round((now - at) / 1000);
  if (seconds < -5) return `in ${formatSpan(-seconds)}`;
  if (seconds < 5) return "just now";
  return `${formatSpan(seconds)} ago`;
}

function formatSpan(seconds: number): string {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h`;
  return `${Math.floor(seconds / 86400)} d`;
}

/** A full local date and time, for titles and tables. */
export function absoluteTime(iso: string | undefined): string {
  if (!iso) return "";
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return iso;
  return at.toLocaleString(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

/** Hours and minutes only, for the recent-minutes table. */
export function clockTime(iso: string | undefined): string {
  if (!iso) return "";
  const at = new Date(iso);
  return at.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

export function percent(ratio: number | undefined): string {
  if (ratio === undefined || Number.isNaN(ratio)) return "—";
  const value = ratio * 100;
  if (value === 100) return "100 %";
  return `${value >= 99.9 ? value.toFixed(2) : value.toFixed(1)} %`;
}

export function millis(ms: number | undefined): string {
  if (ms === undefined) return "—";
  return ms >= 100 ? `${Math.round(ms)} ms` : `${ms.toFixed(1)} ms`;
}

/** Parses a proto3 JSON Duration ("30s", "0.000250s") into seconds, unrounded. */
export function durationSeconds(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const match = /^(-?\d+(?:\.\d+)?)s$/.exec(value.trim());
  return match ? Number(match[1]) : undefined;
}

/** Parses a proto3 JSON Duration ("30s", "1.500s") into whole milliseconds. */
export function durationMs(value: string | undefined): number | undefined {
  const seconds = durationSeconds(value);
  return seconds === undefined ? undefined : Math.round(seconds * 1000);
}

/** A Duration for people: "30s", "5m", "1h30m", "1.5s". */
export function humanDuration(value: string | undefined): string {
  const ms = durationMs(value);
  if (ms === undefined) return value ?? "";
  if (ms % 1000 !== 0) return `${ms / 1000}s`;
  let seconds = ms / 1000;
  if (seconds === 0) return "0s";
  const parts: string[] = [];
  for (const [unit, size] of [
    ["d", 86400],
    ["h", 3600],
    ["m", 60],
    ["s", 1],
  ] as const) {
    if (seconds >= size) {
      parts.push(`${Math.floor(seconds / size)}${unit}`);
      seconds %= size;
    }
  }
  return parts.join("");
}

/**
 * Reads what a person types as a duration ("30s", "5m", "1h30m", "500ms",
 * "1.5s", or a plain number of seconds) into proto3 JSON ("30s"); undefined
 * when it cannot be read.
 */
export function parseDuration(text: string): string | undefined {
  const input = text.trim().toLowerCase().replace(/\s+/g, "");
  if (!input) return undefined;
  if (/^\d+(\.\d+)?$/.test(input)) return `${Number(input)}s`;
  const units: Record<string, number> = { ms: 0.001, s: 1, m: 60, min: 60, h: 3600, d: 86400 };
  const pattern = /(\d+(?:\.\d+)?)(ms|min|s|m|h|d)/g;
  let seconds = 0;
  let consumed = 0;
  for (let match = pattern.exec(input); match; match = pattern.exec(input)) {
    if (match.index !== consumed) return undefined;
    seconds += Number(match[1]) * (units[match[2] ?? "s"] ?? 1);
    consumed = match.index + match[0].length;
  }
  if (consumed !== input.length) return undefined;
  // Whole milliseconds, written the way proto3 JSON writes durations.
  const ms = Math.round(seconds * 1000);
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${(ms / 1000).toFixed(3)}s`;
}

export function intOf(value: string | number | undefined): number {
  if (value === undefined) return 0;
  const n = typeof value === "number" ? value : Number(value);
  return Number.isFinite(n) ? n : 0;
}

/** A string map's entries by key, for a stable display of labels. */
export function sortedEntries(map: Record<string, string> | undefined): [string, string][] {
  return Object.entries(map ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

export function severityName(severity: Severity | undefined): string {
  switch (severity) {
    case "SEVERITY_WARNING":
      return "warning";
    case "SEVERITY_INFO":
      return "info";
    default:
      // Unspecified is critical, as the server stores it.
      return "critical";
  }
}

export function incidentStateName(state: IncidentState | undefined): string {
  switch (state) {
    case "INCIDENT_STATE_OPEN":
      return "open";
    case "INCIDENT_STATE_ACKNOWLEDGED":
      return "acknowledged";
    case "INCIDENT_STATE_RESOLVED":
      return "resolved";
    default:
      return "unknown";
  }
}

export function causeName(cause: IncidentCause | undefined): string {
  switch (cause) {
    case "INCIDENT_CAUSE_DOWN":
      return "down";
    case "INCIDENT_CAUSE_NO_DATA":
      return "no data";
    default:
      return "unknown";
  }
}

/** A span in milliseconds for people: "45s", "12m 5s", "3h 20m", "2d 4h". */
export function spanText(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${seconds % 60}s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours}h ${minutes % 60}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

/** Labels (or a label selector) as "k=v, k2=v2", sorted by key. */
export function labelsText(map: Record<string, string> | undefined, separator = ", "): string {
  return sortedEntries(map)
    .map(([k, v]) => `${k}=${v}`)
    .join(separator);
}

/** An incident's failing locations: "" is a job without locations ("any"); none: "—". */
export function locationsText(locations: string[] | undefined): string {
  return (locations ?? []).map((l) => l || "any").join(", ") || "—";
}
