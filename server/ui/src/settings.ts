// Settings as data: how one value of an API message is edited (the text
// its control shows for a stored value, the JSON value read back), how it
// reads on a page, and where the server's field violations for it belong.
// A resource with kinds (a notification channel, a job's check) describes
// each kind as a table of settings (channelkinds.ts, checkkinds.ts);
// kindform.ts builds the forms' per-kind fieldsets from such a table, so a
// new kind is a table entry, never form code. No DOM here.

import type { FieldTarget } from "./fields";
import { humanDuration, parseDuration } from "./format";
import type { StatusRange } from "./types";

/** How a setting is edited. */
export type SettingType =
  /** A one-line text (trimmed). */
  | "text"
  /** An absolute URL (trimmed). */
  | "url"
  /** A write-only value: the API shows "***"; sent back unchanged it keeps the stored value. */
  | "secret"
  /** A whole number (empty: 0, the server's default). */
  | "number"
  /** A decimal number for an `optional` proto field: empty leaves it out, 0 is a value. */
  | "decimal"
  /** A Duration typed as 500ms, 2s, 1m (empty: left out). */
  | "duration"
  /** A bool. */
  | "checkbox"
  /** One of `options`. */
  | "select"
  /** Several values, one per line (or comma-separated). */
  | "list"
  /** Multi-line text sent as is. */
  | "multiline"
  /** One line of text with escapes for what a line cannot hold: \r \n \t and \\ (a line protocol's CR LF). */
  | "escaped"
  /** Name/value pairs (HttpHeader), one "Name: value" per line. */
  | "headers"
  /** Text sent as proto `bytes` (base64 in JSON). */
  | "body"
  /** Status code ranges (StatusRange), typed as 200-299,301. */
  | "statusRanges"
  /** A list of messages edited as rows of `columns`. */
  | "rows";

/** One column of a "rows" setting. */
export interface Column {
  /** The proto3 JSON name inside one row's message. */
  key: string;
  label: string;
  type: "text" | "select";
  /** For "select": [value, label]; the first is the default. */
  options?: [string, string][];
}

export interface Setting {
  /**
   * The proto3 JSON name inside the kind's message, dotted for nested
   * messages ("assertions.answersContain"); the proto path the server's
   * violations use follows from it (protoPath).
   */
  key: string;
  label: string;
  type: SettingType;
  hint?: string;
  /** For "select": [value, label]. The first is the default. */
  options?: [string, string][];
  /** For "rows": the columns, and what one row is called ("header condition"). */
  columns?: Column[];
  item?: string;
  /** What an unset value means, for the read-only view ("200–399", "the system resolver"). */
  unset?: string;
  /** Settings with the same section are grouped in a fieldset of that legend. */
  section?: string;
  /** Empty, the message holding this setting is left out (an optional proxy: no host, no proxy). */
  omitsMessage?: boolean;
}

/** A kind of a resource and its settings, in the selector's order. */
export interface KindSpec<K extends string = string> {
  /** The oneof member's proto3 JSON name ("grpcHealth"). */
  kind: K;
  label: string;
  /** Shown under the kind selector when this kind is chosen. */
  about: string;
  settings: Setting[];
}

/** A problem found before asking the server: the setting's proto path and what is wrong. */
export interface SettingProblem {
  path: string;
  description: string;
}

/** A proto3 JSON name (or dotted path) as the proto field path: "assertions.answersContain" → "assertions.answers_contain". */
export function protoPath(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** The value at a dotted key inside a message. */
export function valueAt(message: unknown, key: string): unknown {
  let value = message;
  for (const part of key.split(".")) {
    value = value !== null && typeof value === "object" ? (value as Record<string, unknown>)[part] : undefined;
  }
  return value;
}

/** Sets the value at a dotted key, creating the messages on the way; undefined leaves it out. */
export function setValueAt(message: Record<string, unknown>, key: string, value: unknown): void {
  if (value === undefined) return;
  const parts = key.split(".");
  const last = parts.pop() ?? key;
  let target = message;
  for (const part of parts) {
    const inner = target[part];
    target = (inner !== null && typeof inner === "object" ? inner : (target[part] = {})) as Record<string, unknown>;
  }
  target[last] = value;
}

/** The form field key of a setting: unique across kinds. */
export function settingKey(kind: string, setting: Setting): string {
  return `${kind}.${setting.key}`;
}

/** "Name: value" lines of headers. */
export function headersText(headers: unknown): string {
  if (!Array.isArray(headers)) return "";
  return headers.map((hd: { name?: string; value?: string }) => `${hd.name ?? ""}: ${hd.value ?? ""}`).join("\n");
}

/** Base64 (proto bytes in JSON) as UTF-8 text; "" when it is not. */
export function decodeBody(base64: unknown): string {
  if (typeof base64 !== "string" || !base64) return "";
  try {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    return new TextDecoder().decode(bytes);
  } catch {
    return "";
  }
}

function encodeBody(text: string): string | undefined {
  if (!text) return undefined;
  let binary = "";
  new TextEncoder().encode(text).forEach((b) => (binary += String.fromCharCode(b)));
  return btoa(binary);
}

const ESCAPES: Record<string, string> = { r: "\r", n: "\n", t: "\t", "\\": "\\" };

/** Text with CR, LF, tab and backslash written as escapes, for a one-line input. */
function escapeText(text: string): string {
  return text.replace(/[\\\r\n\t]/g, (c) => `\\${Object.keys(ESCAPES).find((k) => ESCAPES[k] === c) ?? c}`);
}

/** The escapes of escapeText read back; an unknown escape stays as typed. */
function unescapeText(text: string): string {
  return text.replace(/\\([rnt\\])/g, (_, c: string) => ESCAPES[c] ?? c);
}

/** Status ranges as "200-299,301". */
export function rangesText(ranges: unknown, dash = "-"): string {
  if (!Array.isArray(ranges)) return "";
  return ranges
    .map((r: StatusRange) => (r.min === r.max ? `${r.min ?? 0}` : `${r.min ?? 0}${dash}${r.max ?? 0}`))
    .join(",");
}

/** "200-299,301" -> ranges; a string says what is wrong. */
function parseRanges(text: string): StatusRange[] | string {
  const ranges: StatusRange[] = [];
  for (const part of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const match = /^(\d{3})(?:\s*-\s*(\d{3}))?$/.exec(part);
    if (!match) return `"${part}" is not a status code or a range such as 200-299`;
    const min = Number(match[1]);
    ranges.push({ min, max: match[2] ? Number(match[2]) : min });
  }
  return ranges;
}

function firstOption(setting: { options?: [string, string][] }): string {
  return setting.options?.[0]?.[0] ?? "";
}

/** The text a setting's control shows for a stored value. */
export function settingText(setting: Setting, value: unknown): string {
  if (value === undefined || value === null) return setting.type === "select" ? firstOption(setting) : "";
  switch (setting.type) {
    case "headers":
      return headersText(value);
    case "list":
      return Array.isArray(value) ? value.join("\n") : "";
    case "number":
      return value ? String(value) : "";
    case "duration":
      return humanDuration(String(value));
    case "body":
      return decodeBody(value);
    case "escaped":
      return escapeText(String(value));
    case "statusRanges":
      return rangesText(value);
    case "select":
      return value === "" || String(value).endsWith("_UNSPECIFIED") ? firstOption(setting) : String(value);
    default:
      return String(value);
  }
}

/** The JSON value of a setting from its control's text (undefined: left out); problems go to `problems`. */
export function settingValue(setting: Setting, text: string, problems: SettingProblem[]): unknown {
  const path = protoPath(setting.key);
  const t = text.trim();
  switch (setting.type) {
    case "secret":
    case "multiline":
      return text;
    case "number":
      if (!t) return 0;
      if (!/^\d+$/.test(t)) problems.push({ path, description: `"${t}" is not a whole number` });
      return Number(t) || 0;
    case "decimal": {
      if (!t) return undefined;
      const n = Number(t);
      if (!Number.isFinite(n)) problems.push({ path, description: `"${t}" is not a number` });
      return Number.isFinite(n) ? n : undefined;
    }
    case "duration": {
      if (!t) return undefined;
      const parsed = parseDuration(t);
      if (!parsed) problems.push({ path, description: `"${t}" is not a duration such as 500ms, 2s or 1m` });
      return parsed;
    }
    case "list":
      return text
        .split(/[\n,]+/)
        .map((s) => s.trim())
        .filter(Boolean);
    case "headers":
      return text
        .split("\n")
        .map((l) => l.trim())
        .filter(Boolean)
        .map((line) => {
          const at = line.indexOf(":");
          if (at <= 0) problems.push({ path, description: `"${line}" is not Name: value` });
          return { name: line.slice(0, Math.max(at, 0)).trim(), value: line.slice(at + 1).trim() };
        });
    case "body":
      return encodeBody(text);
    case "escaped":
      return unescapeText(text);
    case "statusRanges": {
      const ranges = parseRanges(text);
      if (typeof ranges === "string") problems.push({ path, description: ranges });
      return typeof ranges === "string" ? undefined : ranges;
    }
    default:
      return t;
  }
}

/** What one entry of a list-like setting is called in messages ("header 2 name"). */
function itemName(setting: Setting): string {
  if (setting.type === "headers") return "header";
  if (setting.type === "statusRanges") return "range";
  return setting.item ?? "item";
}

/**
 * Where a violation path inside a kind's message belongs among its
 * settings: "assertions.headers[1].value" → the header conditions, row 2's
 * value; "proxy" (a message holding settings) → its first setting.
 */
export function locateSetting(settings: Setting[], rest: string): { setting: Setting; target: Omit<FieldTarget, "key"> } | undefined {
  for (const setting of settings) {
    const path = protoPath(setting.key);
    if (rest === path) return { setting, target: { detail: "" } };
    const match = rest.startsWith(`${path}[`) ? /^\[(\d+)\](?:\.([a-z_]+))?$/.exec(rest.slice(path.length)) : null;
    if (match) {
      const index = Number(match[1]);
      const part = match[2];
      const detail = [`${itemName(setting)} ${index + 1}`, part?.replace(/_/g, " ")].filter(Boolean).join(" ");
      return { setting, target: { detail, index, part } };
    }
  }
  const inner = settings.find((s) => protoPath(s.key).startsWith(`${rest}.`));
  return inner ? { setting: inner, target: { detail: "" } } : undefined;
}

/**
 * A violation path relative to the resource ("webhook.headers[1].name",
 * "grpc_health.port") → its field: the setting's, or the kind selector
 * ("kind") for the kind itself and for what no setting holds.
 */
export function locateInKinds(kinds: KindSpec[], path: string): FieldTarget | undefined {
  for (const spec of kinds) {
    const name = protoPath(spec.kind);
    if (path === name) return { key: "kind", detail: "" };
    if (!path.startsWith(`${name}.`)) continue;
    const rest = path.slice(name.length + 1);
    const found = locateSetting(spec.settings, rest);
    return found ? { key: settingKey(spec.kind, found.setting), ...found.target } : { key: "kind", detail: rest };
  }
  return undefined;
}

/** A stored setting for people (secrets never: "set" or nothing); undefined when unset and it has no `unset` text. */
export function settingDisplay(setting: Setting, value: unknown): string | undefined {
  const empty = value === undefined || value === null || value === "" || (Array.isArray(value) && value.length === 0);
  if (setting.type === "checkbox") return value ? "yes" : "no";
  if (empty || (setting.type === "number" && !value)) return setting.unset;
  switch (setting.type) {
    case "secret":
      return "set (write-only)";
    case "headers":
      // Secret values arrive as *** already.
      return headersText(value).split("\n").join("; ");
    case "list":
      return Array.isArray(value) ? value.join(", ") : String(value);
    case "body":
      return `${atob(String(value)).length} bytes`;
    case "statusRanges":
      return rangesText(value, "–").replace(/,/g, ", ");
    case "duration":
      return humanDuration(String(value));
    case "escaped":
      return escapeText(String(value));
    case "select": {
      if (String(value).endsWith("_UNSPECIFIED")) return setting.unset;
      return setting.options?.find(([v]) => v === value)?.[1] ?? String(value);
    }
    case "rows": {
      const columns = setting.columns ?? [];
      return (value as Record<string, unknown>[])
        .map((row) =>
          columns
            .map((c) => {
              const v = row[c.key];
              return c.type === "select" ? (c.options?.find(([o]) => o === v)?.[1] ?? String(v ?? "")) : String(v ?? "");
            })
            .filter(Boolean)
            .join(" "),
        )
        .join("; ");
    }
    default:
      return String(value);
  }
}
