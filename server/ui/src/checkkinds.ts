// What each check kind of a job holds, as data (proto/monitor/v1/job.proto,
// the oneof Job.check): the job form is built from this table, reads and
// writes each kind's message through it and places the server's field
// violations (job.dns.name, job.tcp.proxy.host,
// job.http.assertions.headers[1].value) with it; the job page shows a
// job's check from it. A new kind is a table entry, never form code.

import type { FieldTarget } from "./fields";
import { type KindSpec, type Setting, locateInKinds } from "./settings";
import type { CheckKind, HttpMethod, Job } from "./types";

const SECRET_HINT = "Write-only: shown as ***; leave it so to keep the stored value";
const PORT_HINT = "1 to 65535";
const HOST_HINT = "Host name or IP address";
const REGEX_HINT = "Rust regex syntax; empty: no condition";

const METHODS: HttpMethod[] = [
  "HTTP_METHOD_GET",
  "HTTP_METHOD_HEAD",
  "HTTP_METHOD_POST",
  "HTTP_METHOD_PUT",
  "HTTP_METHOD_PATCH",
  "HTTP_METHOD_DELETE",
  "HTTP_METHOD_OPTIONS",
];

/** The fields of a Socks5Proxy at `key` ("proxy"), in a section named `section`. */
function proxySettings(section: string, required: boolean): Setting[] {
  return [
    {
      key: "proxy.host",
      label: "Proxy host",
      type: "text",
      hint: required ? HOST_HINT : `${HOST_HINT}; empty: no proxy`,
      section,
      unset: required ? undefined : "none (direct)",
      omitsMessage: !required,
    },
    { key: "proxy.port", label: "Proxy port", type: "number", hint: PORT_HINT, section },
    { key: "proxy.username", label: "Proxy user name", type: "text", hint: "RFC 1929 login; empty: none", section },
    { key: "proxy.password", label: "Proxy password", type: "secret", hint: SECRET_HINT, section },
  ];
}

const PROXY_SECTION = "Through a SOCKS5 proxy (optional)";

/** Every kind of Job.check, in the selector's order. */
export const CHECK_KINDS: KindSpec<CheckKind>[] = [
  {
    kind: "http",
    label: "HTTP request",
    about: "An HTTP(S) request; healthy when the answer meets every condition.",
    settings: [
      { key: "url", label: "URL", type: "url", hint: "http:// or https://, e.g. http://127.0.0.1:8081/status/200" },
      { key: "method", label: "Method", type: "select", options: METHODS.map((m) => [m, m.replace("HTTP_METHOD_", "")]) },
      {
        key: "headers",
        label: "Headers",
        type: "headers",
        hint: "One per line: Name: value; a secret shown as *** keeps its stored value",
      },
      {
        key: "secretHeaders",
        label: "Secret header names",
        type: "list",
        hint: "Further headers whose values are write-only (Authorization, Cookie, X-Api-Key… always are)",
      },
      { key: "body", label: "Body", type: "body", hint: "Sent as is (POST, PUT, PATCH, DELETE, OPTIONS)" },
      { key: "followRedirects", label: "Follow redirects", type: "checkbox" },
      { key: "insecureSkipTlsVerify", label: "Skip TLS certificate verification", type: "checkbox" },
      {
        key: "assertions.acceptedStatus",
        label: "Accepted status codes",
        type: "statusRanges",
        hint: "e.g. 200-299,301; empty: 200-399",
        unset: "200–399",
        section: "Conditions",
      },
      { key: "assertions.bodyContains", label: "Body contains", type: "text", section: "Conditions" },
      { key: "assertions.bodyRegex", label: "Body matches (regular expression)", type: "text", hint: REGEX_HINT, section: "Conditions" },
      {
        key: "assertions.maxResponseTime",
        label: "Max response time",
        type: "duration",
        hint: "e.g. 500ms; empty: the timeout only",
        section: "Conditions",
      },
      {
        key: "assertions.certMinDaysRemaining",
        label: "Certificate min days",
        type: "number",
        hint: "HTTPS: fail when the certificate expires within this many days; empty: no condition",
        section: "Conditions",
      },
      {
        key: "assertions.headers",
        label: "Response header conditions",
        type: "rows",
        item: "header condition",
        hint: "Names match case-insensitively; Equals takes the exact value, Matches a regular expression",
        section: "Conditions",
        columns: [
          { key: "name", label: "Name", type: "text" },
          {
            key: "condition",
            label: "Condition",
            type: "select",
            options: [
              ["HEADER_CONDITION_EXISTS", "exists"],
              ["HEADER_CONDITION_ABSENT", "is absent"],
              ["HEADER_CONDITION_EQUALS", "equals"],
              ["HEADER_CONDITION_REGEX", "matches"],
            ],
          },
          { key: "value", label: "Value", type: "text" },
        ],
      },
      {
        key: "assertions.jsonPath",
        label: "JSON body conditions",
        type: "rows",
        item: "JSONPath condition",
        hint: "RFC 9535 queries such as $.status; the value is read as JSON (3, true, \"ok\") or else as text",
        section: "Conditions",
        columns: [
          { key: "path", label: "Path", type: "text" },
          {
            key: "condition",
            label: "Condition",
            type: "select",
            options: [
              ["JSON_CONDITION_EXISTS", "exists"],
              ["JSON_CONDITION_EQUALS", "="],
              ["JSON_CONDITION_NOT_EQUALS", "≠"],
              ["JSON_CONDITION_CONTAINS", "contains"],
              ["JSON_CONDITION_LESS_THAN", "<"],
              ["JSON_CONDITION_LESS_OR_EQUAL", "≤"],
              ["JSON_CONDITION_GREATER_THAN", ">"],
              ["JSON_CONDITION_GREATER_OR_EQUAL", "≥"],
            ],
          },
          { key: "value", label: "Value", type: "text" },
        ],
      },
      ...proxySettings(PROXY_SECTION, false),
    ],
  },
  {
    kind: "tcp",
    label: "TCP connect",
    about: "A TCP connection; optionally a line sent and the answer expected (Telnet-style).",
    settings: [
      { key: "host", label: "Host", type: "text", hint: HOST_HINT },
      { key: "port", label: "Port", type: "number", hint: PORT_HINT },
      {
        key: "send",
        label: "Send",
        type: "escaped",
        hint: "Sent once connected (at most 4 KiB); write a line break as \\r\\n (\\n, \\t, \\\\ also work); empty: nothing",
      },
      { key: "expectContains", label: "Answer contains", type: "text", hint: "What the peer sends must contain this; empty: no condition" },
      { key: "expectRegex", label: "Answer matches (regular expression)", type: "text", hint: REGEX_HINT },
      ...proxySettings(PROXY_SECTION, false),
    ],
  },
  {
    kind: "dns",
    label: "DNS query",
    about: "A DNS query; healthy when the answer meets every condition.",
    settings: [
      { key: "name", label: "Query name", type: "text", hint: "The name to look up, e.g. example.com" },
      {
        key: "recordType",
        label: "Record type",
        type: "select",
        options: ["A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA"].map((t) => [`DNS_RECORD_TYPE_${t}`, t]),
        unset: "A",
      },
      {
        key: "server",
        label: "DNS server",
        type: "text",
        hint: '"ip" or "ip:port" (IPv6 as [::1]:53); empty: the worker\'s resolver',
        unset: "the worker's resolver",
      },
      {
        key: "transport",
        label: "Transport",
        type: "select",
        options: [
          ["DNS_TRANSPORT_UDP", "UDP"],
          ["DNS_TRANSPORT_TCP", "TCP"],
        ],
        unset: "UDP",
      },
      {
        key: "assertions.rcode",
        label: "Response code",
        type: "text",
        hint: "NOERROR, NXDOMAIN, SERVFAIL…; empty: NOERROR",
        unset: "NOERROR",
        section: "Conditions",
      },
      {
        key: "assertions.answersContain",
        label: "Answers contain",
        type: "list",
        hint: "Each must be among the answers; one per line or comma-separated (192.0.2.1, 10 mail.example.com.)",
        section: "Conditions",
      },
      {
        key: "assertions.answersEqual",
        label: "Answers are exactly",
        type: "list",
        hint: "The whole set of answers (order and duplicates ignored); one per line or comma-separated",
        section: "Conditions",
      },
      { key: "assertions.answerRegex", label: "An answer matches (regular expression)", type: "text", hint: REGEX_HINT, section: "Conditions" },
    ],
  },
  {
    kind: "icmp",
    label: "ICMP ping",
    about: "ICMP echo requests; needs an unprivileged ICMP socket or a raw one on the worker.",
    settings: [
      { key: "host", label: "Host", type: "text", hint: HOST_HINT },
      { key: "count", label: "Echo requests", type: "number", hint: "1 to 10; empty: 3", unset: "3" },
      { key: "interval", label: "Between requests", type: "duration", hint: "10ms to 1s; empty: 200ms", unset: "200ms" },
      {
        key: "assertions.maxLossPercent",
        label: "Max loss %",
        type: "decimal",
        hint: "0 to 100; empty: fail only when no reply arrives",
        unset: "fail only when no reply arrives",
        section: "Conditions",
      },
      { key: "assertions.maxAvgRtt", label: "Max average round trip", type: "duration", hint: "e.g. 50ms; empty: no condition", section: "Conditions" },
    ],
  },
  {
    kind: "tls",
    label: "TLS handshake",
    about: "A TLS handshake (no HTTP): the certificate chain, trusted and naming the host, not about to expire.",
    settings: [
      { key: "host", label: "Host", type: "text", hint: HOST_HINT },
      { key: "port", label: "Port", type: "number", hint: PORT_HINT },
      { key: "serverName", label: "Server name (SNI)", type: "text", hint: "Sent and matched; empty: the host", unset: "the host" },
      {
        key: "starttls",
        label: "STARTTLS",
        type: "select",
        options: [
          ["TLS_START_TLS_NONE", "None: TLS at once"],
          ["TLS_START_TLS_SMTP", "SMTP"],
        ],
        unset: "None: TLS at once",
      },
      { key: "assertions.allowUntrustedChain", label: "Allow an untrusted chain", type: "checkbox", section: "Conditions" },
      { key: "assertions.allowHostnameMismatch", label: "Allow a certificate for another name", type: "checkbox", section: "Conditions" },
      {
        key: "assertions.minDaysRemaining",
        label: "Min days remaining",
        type: "number",
        hint: "Fail when the certificate expires within this many days; empty: only when expired",
        section: "Conditions",
      },
    ],
  },
  {
    kind: "grpcHealth",
    label: "gRPC health",
    about: "grpc.health.v1.Health/Check: healthy when the server reports SERVING.",
    settings: [
      { key: "host", label: "Host", type: "text", hint: HOST_HINT },
      { key: "port", label: "Port", type: "number", hint: PORT_HINT },
      { key: "service", label: "Service", type: "text", hint: "Empty: the server as a whole", unset: "the server as a whole" },
      { key: "tls", label: "Use TLS", type: "checkbox" },
      { key: "insecureSkipTlsVerify", label: "Skip TLS certificate verification", type: "checkbox" },
      {
        key: "metadata",
        label: "Metadata",
        type: "headers",
        hint: "One per line: name: value (ASCII); a secret shown as *** keeps its stored value",
      },
      {
        key: "secretMetadata",
        label: "Secret metadata names",
        type: "list",
        hint: "Further names whose values are write-only (authorization, x-api-key, cookie always are)",
      },
    ],
  },
  {
    kind: "websocket",
    label: "WebSocket",
    about: "A WebSocket upgrade; optionally a message sent and the reply expected.",
    settings: [
      { key: "url", label: "WebSocket URL", type: "url", hint: "ws:// or wss://" },
      { key: "headers", label: "Headers", type: "headers", hint: "Sent with the upgrade; one per line: Name: value; *** keeps a stored secret" },
      { key: "secretHeaders", label: "Secret header names", type: "list", hint: "Further headers whose values are write-only" },
      { key: "send", label: "Send", type: "multiline", hint: "A text message sent once connected (at most 64 KiB); empty: nothing" },
      {
        key: "expectContains",
        label: "Reply contains",
        type: "text",
        hint: "The first message must contain this; with neither condition the upgrade alone is the check",
      },
      { key: "expectRegex", label: "Reply matches (regular expression)", type: "text", hint: REGEX_HINT },
      { key: "insecureSkipTlsVerify", label: "Skip TLS certificate verification", type: "checkbox" },
    ],
  },
  {
    kind: "ssh",
    label: "SSH banner",
    about: "Connects and reads the server's SSH identification line (no login).",
    settings: [
      { key: "host", label: "Host", type: "text", hint: HOST_HINT },
      { key: "port", label: "Port", type: "number", hint: "Empty: 22", unset: "22" },
      { key: "bannerContains", label: "Banner contains", type: "text", hint: 'e.g. OpenSSH; empty: it must still start with "SSH-"' },
      { key: "bannerRegex", label: "Banner matches (regular expression)", type: "text", hint: REGEX_HINT },
    ],
  },
  {
    kind: "socks5",
    label: "SOCKS5 proxy",
    about: "A SOCKS5 proxy that accepts the login (if any) and reaches the target.",
    settings: [
      ...proxySettings("Proxy", true),
      { key: "targetHost", label: "Target host", type: "text", hint: "Resolved by the proxy, or an IP address" },
      { key: "targetPort", label: "Target port", type: "number", hint: PORT_HINT },
    ],
  },
];

/** The spec of `kind`. */
export function checkSpec(kind: string): KindSpec<CheckKind> | undefined {
  return CHECK_KINDS.find((spec) => spec.kind === kind);
}

/** The kind of a job's check (the one member of the oneof it has); undefined without one. */
export function checkKindOf(job: Job): CheckKind | undefined {
  return CHECK_KINDS.find((spec) => job[spec.kind] !== undefined)?.kind;
}

/** Server field path (after "job.") → its field: the job's own fields, the kind selector, or a check setting. */
export function jobFieldOf(path: string): FieldTarget | undefined {
  const p = path.replace(/^job\./, "");
  const table: [RegExp, string, (m: RegExpExecArray) => string][] = [
    [/^name$/, "name", () => ""],
    [/^labels(?:\[(.*)\])?$/, "labels", (m) => (m[1] ? `label ${m[1]}` : "")],
    [/^interval$/, "interval", () => ""],
    [/^timeout$/, "timeout", () => ""],
    [/^desired_state$/, "desiredState", () => ""],
    [/^locations(?:\[(\d+)\])?$/, "locations", (m) => (m[1] ? `location ${Number(m[1]) + 1}` : "")],
    [/^check$/, "kind", () => ""],
  ];
  for (const [pattern, key, detail] of table) {
    const match = pattern.exec(p);
    if (match) return { key, detail: detail(match) };
  }
  return locateInKinds(CHECK_KINDS, p);
}
