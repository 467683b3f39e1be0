// What each notification channel kind holds, as data: the channel form is
// built from this table, reads and writes each kind's settings through it
// and places the server's field violations (channel.webhook.headers[1].name)
// with it. A kind whose sender lands in the server is a table entry, never
// form code. Kinds the server does not deliver yet are listed too: it
// refuses them with a field error, which the form shows beside the kind.

import type { ChannelKind } from "./types";

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
  /** One of `options`. */
  | "select"
  /** Several values, one per line (or comma-separated). */
  | "list"
  /** Multi-line text sent as is. */
  | "multiline"
  /** Webhook headers, one "Name: value" per line. */
  | "headers";

export interface Setting {
  /** The proto3 JSON name inside the kind's object ("webhookUrl"). */
  key: string;
  /** The proto field name the server's violations use ("webhook_url"). */
  path: string;
  label: string;
  type: SettingType;
  hint?: string;
  /** For "select": [value, label]. The first is the default. */
  options?: [string, string][];
}

export interface KindSpec {
  kind: ChannelKind;
  label: string;
  /** Shown under the kind selector when this kind is chosen. */
  about: string;
  settings: Setting[];
}

const SECRET_HINT = "Write-only: shown as ***; leave it so to keep the stored value";

/** Every kind of NotificationChannel (proto/monitor/v1/notification.proto), in the selector's order. */
export const CHANNEL_KINDS: KindSpec[] = [
  {
    kind: "webhook",
    label: "Webhook",
    about: "POSTs the versioned JSON payload, signed when a signing secret is set.",
    settings: [
      { key: "url", path: "url", label: "URL", type: "url", hint: "Absolute http:// or https:// URL" },
      {
        key: "headers",
        path: "headers",
        label: "Headers",
        type: "headers",
        hint: "One per line: Name: value (at most 20). Secret values show as ***, which keeps them",
      },
      {
        key: "secretHeaders",
        path: "secret_headers",
        label: "Secret header names",
        type: "list",
        hint: "Further header names whose values are write-only (authorization, cookie, x-api-key… always are)",
      },
      {
        key: "signingSecret",
        path: "signing_secret",
        label: "Signing secret",
        type: "secret",
        hint: `16 to 256 characters; empty: unsigned. ${SECRET_HINT}`,
      },
    ],
  },
  {
    kind: "slack",
    label: "Slack",
    about: "A Slack incoming webhook (text plus blocks).",
    settings: [{ key: "webhookUrl", path: "webhook_url", label: "Webhook URL", type: "secret", hint: `The URL is the secret. ${SECRET_HINT}` }],
  },
  {
    kind: "discord",
    label: "Discord",
    about: "A Discord webhook.",
    settings: [
      {
        key: "webhookUrl",
        path: "webhook_url",
        label: "Webhook URL",
        type: "secret",
        hint: `https://discord.com/api/webhooks/<id>/<token>. ${SECRET_HINT}`,
      },
    ],
  },
  {
    kind: "teams",
    label: "Microsoft Teams",
    about: "A Teams Workflows webhook, sent an Adaptive Card.",
    settings: [{ key: "webhookUrl", path: "webhook_url", label: "Workflow URL", type: "secret", hint: `The workflow's HTTP POST URL. ${SECRET_HINT}` }],
  },
  {
    kind: "telegram",
    label: "Telegram",
    about: "A Telegram chat, through a bot.",
    settings: [
      { key: "botToken", path: "bot_token", label: "Bot token", type: "secret", hint: `From @BotFather ("123456:ABC-…"). ${SECRET_HINT}` },
      { key: "chatId", path: "chat_id", label: "Chat id", type: "text", hint: 'A numeric id ("-1001234567890") or "@channelusername"' },
      { key: "apiUrl", path: "api_url", label: "Bot API URL", type: "url", hint: "Empty: https://api.telegram.org" },
    ],
  },
  {
    kind: "pagerduty",
    label: "PagerDuty",
    about: "PagerDuty Events API v2: one alert per incident, never grouped.",
    settings: [
      { key: "routingKey", path: "routing_key", label: "Routing key", type: "secret", hint: SECRET_HINT },
      { key: "eventsUrl", path: "events_url", label: "Events URL", type: "url", hint: "Empty: https://events.pagerduty.com/v2/enqueue" },
    ],
  },
  {
    kind: "email",
    label: "Email",
    about: "Email over SMTP (STARTTLS or implicit TLS), plain text and HTML.",
    settings: [
      { key: "host", path: "host", label: "SMTP host", type: "text" },
      { key: "port", path: "port", label: "Port", type: "number", hint: "Empty: 587 with STARTTLS, 465 with implicit TLS" },
      {
        key: "tls",
        path: "tls",
        label: "TLS",
        type: "select",
        options: [
          ["EMAIL_TLS_STARTTLS", "STARTTLS"],
          ["EMAIL_TLS_IMPLICIT", "Implicit TLS"],
        ],
      },
      { key: "username", path: "username", label: "User name", type: "text", hint: "Log in when set (with the password)" },
      { key: "password", path: "password", label: "Password", type: "secret", hint: SECRET_HINT },
      { key: "from", path: "from", label: "From", type: "text", hint: 'e.g. "Monitor <monitor@example.com>"' },
      { key: "to", path: "to", label: "To", type: "list", hint: "Recipients, one per line (1 to 50)" },
      { key: "caCertificatePem", path: "ca_certificate_pem", label: "CA certificate (PEM)", type: "multiline", hint: "Trusted besides the system roots; empty: system roots only" },
    ],
  },
];

/** The spec of `kind`. */
export function kindSpec(kind: string): KindSpec | undefined {
  return CHANNEL_KINDS.find((spec) => spec.kind === kind);
}

/** The kind a channel is (the one kind field it has). */
export function kindOf(channel: Partial<Record<ChannelKind, unknown>>): ChannelKind | undefined {
  return CHANNEL_KINDS.find((spec) => channel[spec.kind] !== undefined)?.kind;
}

/** The form field key of a setting: unique across kinds. */
export function settingKey(kind: ChannelKind, setting: Setting): string {
  return `${kind}.${setting.key}`;
}

/** "Name: value" lines of headers. */
export function headersText(headers: unknown): string {
  if (!Array.isArray(headers)) return "";
  return headers.map((hd: { name?: string; value?: string }) => `${hd.name ?? ""}: ${hd.value ?? ""}`).join("\n");
}

/** The text a setting's control shows for a stored value. */
export function settingText(setting: Setting, value: unknown): string {
  if (value === undefined || value === null) return setting.type === "select" ? (setting.options?.[0]?.[0] ?? "") : "";
  if (setting.type === "headers") return headersText(value);
  if (setting.type === "list") return Array.isArray(value) ? value.join("\n") : "";
  if (setting.type === "number") return value ? String(value) : "";
  if (setting.type === "select" && (value === "" || String(value).endsWith("_UNSPECIFIED"))) return setting.options?.[0]?.[0] ?? "";
  return String(value);
}

/** A problem found before asking the server: the setting's path and what is wrong. */
export interface SettingProblem {
  path: string;
  description: string;
}

/** The JSON value of a setting from its control's text; problems go to `problems`. */
export function settingValue(setting: Setting, text: string, problems: SettingProblem[]): unknown {
  switch (setting.type) {
    case "secret":
    case "multiline":
      return text;
    case "text":
    case "url":
    case "select":
      return text.trim();
    case "number": {
      const t = text.trim();
      if (!t) return 0;
      if (!/^\d+$/.test(t)) problems.push({ path: setting.path, description: `"${t}" is not a whole number` });
      return Number(t) || 0;
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
          if (at <= 0) problems.push({ path: setting.path, description: `"${line}" is not Name: value` });
          return { name: line.slice(0, Math.max(at, 0)).trim(), value: line.slice(at + 1).trim() };
        });
  }
}

/**
 * Where a server violation path belongs: "channel.webhook.headers[1].name"
 * → the webhook's headers field, "header 2 name"; "channel.discord" → the
 * kind selector; name, enabled, group_wait → those fields.
 */
export function channelFieldOf(path: string): { key: string; detail: string } | undefined {
  const p = path.replace(/^channel\./, "");
  const top: Record<string, string> = { name: "name", enabled: "enabled", group_wait: "groupWait" };
  if (top[p]) return { key: top[p], detail: "" };
  for (const spec of CHANNEL_KINDS) {
    if (p === spec.kind) return { key: "kind", detail: "" };
    if (!p.startsWith(`${spec.kind}.`)) continue;
    const rest = p.slice(spec.kind.length + 1);
    const match = /^([a-z_]+)(?:\[(\d+)\](?:\.([a-z_]+))?)?$/.exec(rest);
    const setting = match ? spec.settings.find((s) => s.path === match[1]) : undefined;
    if (!match || !setting) return { key: "kind", detail: rest };
    const index = match[2] === undefined ? "" : `${setting.type === "headers" ? "header" : "item"} ${Number(match[2]) + 1}`;
    return { key: settingKey(spec.kind, setting), detail: [index, match[3] ?? ""].filter(Boolean).join(" ") };
  }
  return undefined;
}
