// What each notification channel kind holds, as data: the channel form is
// built from this table, reads and writes each kind's settings through it
// and places the server's field violations (channel.webhook.headers[1].name)
// with it. A kind whose sender lands in the server is a table entry, never
// form code. Kinds the server does not deliver yet are listed too: it
// refuses them with a field error, which the form shows beside the kind.

import type { FieldTarget } from "./fields";
import { type KindSpec, locateInKinds } from "./settings";
import type { ChannelKind } from "./types";

const SECRET_HINT = "Write-only: shown as ***; leave it so to keep the stored value";

/** Every kind of NotificationChannel (proto/monitor/v1/notification.proto), in the selector's order. */
export const CHANNEL_KINDS: KindSpec<ChannelKind>[] = [
  {
    kind: "webhook",
    label: "Webhook",
    about: "POSTs the versioned JSON payload, signed when a signing secret is set.",
    settings: [
      { key: "url", label: "URL", type: "url", hint: "Absolute http:// or https:// URL" },
      {
        key: "headers",
        label: "Headers",
        type: "headers",
        hint: "One per line: Name: value (at most 20). Secret values show as ***, which keeps them",
      },
      {
        key: "secretHeaders",
        label: "Secret header names",
        type: "list",
        hint: "Further header names whose values are write-only (authorization, cookie, x-api-key… always are)",
      },
      {
        key: "signingSecret",
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
    settings: [{ key: "webhookUrl", label: "Webhook URL", type: "secret", hint: `The URL is the secret. ${SECRET_HINT}` }],
  },
  {
    kind: "discord",
    label: "Discord",
    about: "A Discord webhook.",
    settings: [
      {
        key: "webhookUrl",
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
    settings: [{ key: "webhookUrl", label: "Workflow URL", type: "secret", hint: `The workflow's HTTP POST URL. ${SECRET_HINT}` }],
  },
  {
    kind: "telegram",
    label: "Telegram",
    about: "A Telegram chat, through a bot.",
    settings: [
      { key: "botToken", label: "Bot token", type: "secret", hint: `From @BotFather ("123456:ABC-…"). ${SECRET_HINT}` },
      { key: "chatId", label: "Chat id", type: "text", hint: 'A numeric id ("-1001234567890") or "@channelusername"' },
      { key: "apiUrl", label: "Bot API URL", type: "url", hint: "Empty: https://api.telegram.org" },
    ],
  },
  {
    kind: "pagerduty",
    label: "PagerDuty",
    about: "PagerDuty Events API v2: one alert per incident, never grouped.",
    settings: [
      { key: "routingKey", label: "Routing key", type: "secret", hint: SECRET_HINT },
      { key: "eventsUrl", label: "Events URL", type: "url", hint: "Empty: https://events.pagerduty.com/v2/enqueue" },
    ],
  },
  {
    kind: "email",
    label: "Email",
    about: "Email over SMTP (STARTTLS or implicit TLS), plain text and HTML.",
    settings: [
      { key: "host", label: "SMTP host", type: "text" },
      { key: "port", label: "Port", type: "number", hint: "Empty: 587 with STARTTLS, 465 with implicit TLS" },
      {
        key: "tls",
        label: "TLS",
        type: "select",
        options: [
          ["EMAIL_TLS_STARTTLS", "STARTTLS"],
          ["EMAIL_TLS_IMPLICIT", "Implicit TLS"],
        ],
      },
      { key: "username", label: "User name", type: "text", hint: "Log in when set (with the password)" },
      { key: "password", label: "Password", type: "secret", hint: SECRET_HINT },
      { key: "from", label: "From", type: "text", hint: 'e.g. "Monitor <monitor@example.com>"' },
      { key: "to", label: "To", type: "list", hint: "Recipients, one per line (1 to 50)" },
      { key: "caCertificatePem", label: "CA certificate (PEM)", type: "multiline", hint: "Trusted besides the system roots; empty: system roots only" },
    ],
  },
];

/** The spec of `kind`. */
export function kindSpec(kind: string): KindSpec<ChannelKind> | undefined {
  return CHANNEL_KINDS.find((spec) => spec.kind === kind);
}

/** The kind a channel is (the one kind field it has). */
export function kindOf(channel: Partial<Record<ChannelKind, unknown>>): ChannelKind | undefined {
  return CHANNEL_KINDS.find((spec) => channel[spec.kind] !== undefined)?.kind;
}

/**
 * Where a server violation path belongs: "channel.webhook.headers[1].name"
 * → the webhook's headers field, "header 2 name"; "channel.discord" → the
 * kind selector; name, enabled, group_wait → those fields.
 */
export function channelFieldOf(path: string): FieldTarget | undefined {
  const p = path.replace(/^channel\./, "");
  const top: Record<string, string> = { name: "name", enabled: "enabled", group_wait: "groupWait" };
  if (top[p]) return { key: top[p], detail: "" };
  return locateInKinds(CHANNEL_KINDS, p);
}
