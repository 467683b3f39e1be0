// One check's result for people (proto/monitor/v1/check_result.proto, as a
// placement's lastResult in GetJobStatus): the outcome and error, every
// assertion with what was expected and seen, and the kind's detail (HTTP
// status, timing and certificate, DNS answers, ping round trips, the TLS
// chain, ...). The detail fields of each kind are a table; a new kind is
// an entry. Secrets never reach a result (the worker reports none).

import { h } from "./dom";
import { absoluteTime, durationSeconds, intOf, millis, outcomeClass, outcomeName, relativeTime } from "./format";
import type { CertificateInfo, CheckKind, CheckResult, HttpTiming } from "./types";

/** A term, its value, and the key tests and styles find it by (data-fact). */
export type Fact = [term: string, value: Node | string, key?: string];

/** A definition list of facts; entries without a value are left out. */
export function factList(facts: (Fact | undefined)[]): HTMLDListElement {
  return h(
    "dl",
    { class: "facts" },
    facts
      .filter((f): f is Fact => f !== undefined)
      .map(([term, value, key]) => h("div", {}, h("dt", { text: term }), h("dd", { "data-fact": key ?? null }, value))),
  );
}

/** A Duration as milliseconds for people ("1.2 ms", "340 ms"); "" when unset. */
export function durationText(value: string | undefined): string {
  const seconds = durationSeconds(value);
  return seconds === undefined ? "" : millis(seconds * 1000);
}

/** How a detail field reads. */
type Format =
  /** As is. */
  | "text"
  /** In monospace (addresses, URLs, banners). */
  | "code"
  /** A Duration in milliseconds. */
  | "duration"
  /** A count: absent reads 0 (proto3 JSON leaves zeros out). */
  | "count"
  /** A bool: absent reads no. */
  | "yesno"
  /** Several values, one per line. */
  | "list"
  /** What the peer sent: preformatted. */
  | "received"
  | "certificate"
  | "chain"
  | "timing";

interface DetailField {
  /** The proto3 JSON name inside the kind's result. */
  key: string;
  label: string;
  format: Format;
}

const DETAIL_FIELDS: Record<CheckKind, DetailField[]> = {
  http: [
    { key: "statusCode", label: "Status", format: "text" },
    { key: "httpVersion", label: "HTTP version", format: "text" },
    { key: "finalUrl", label: "Final URL", format: "code" },
    { key: "redirects", label: "Redirects", format: "count" },
    { key: "bodyBytes", label: "Body bytes", format: "count" },
    { key: "firstByteTime", label: "First byte", format: "duration" },
    { key: "connectionReused", label: "Connection reused", format: "yesno" },
    { key: "timing", label: "Timing", format: "timing" },
    { key: "certificate", label: "Certificate", format: "certificate" },
  ],
  tcp: [
    { key: "address", label: "Address", format: "code" },
    { key: "connectTime", label: "Connect", format: "duration" },
    { key: "responseTime", label: "Answer after", format: "duration" },
    { key: "received", label: "Received", format: "received" },
  ],
  dns: [
    { key: "server", label: "Server", format: "code" },
    { key: "rcode", label: "Response code", format: "text" },
    { key: "answers", label: "Answers", format: "list" },
    { key: "queryTime", label: "Query time", format: "duration" },
  ],
  icmp: [
    { key: "address", label: "Address", format: "code" },
    { key: "socket", label: "Socket", format: "text" },
    { key: "sent", label: "Sent", format: "count" },
    { key: "received", label: "Received", format: "count" },
    { key: "minRtt", label: "Min round trip", format: "duration" },
    { key: "avgRtt", label: "Avg round trip", format: "duration" },
    { key: "maxRtt", label: "Max round trip", format: "duration" },
  ],
  tls: [
    { key: "address", label: "Address", format: "code" },
    { key: "protocolVersion", label: "Protocol", format: "text" },
    { key: "cipherSuite", label: "Cipher suite", format: "code" },
    { key: "chainTrusted", label: "Chain trusted", format: "yesno" },
    { key: "chainError", label: "Why not trusted", format: "text" },
    { key: "hostnameMatches", label: "Name matches", format: "yesno" },
    { key: "daysRemaining", label: "Days remaining", format: "count" },
    { key: "connectTime", label: "Connect", format: "duration" },
    { key: "handshakeTime", label: "Handshake", format: "duration" },
    { key: "chain", label: "Chain", format: "chain" },
  ],
  grpcHealth: [
    { key: "address", label: "Address", format: "code" },
    { key: "status", label: "Health status", format: "text" },
    { key: "grpcCode", label: "gRPC code", format: "text" },
    { key: "responseTime", label: "Response time", format: "duration" },
  ],
  websocket: [
    { key: "statusCode", label: "Upgrade status", format: "text" },
    { key: "connectTime", label: "Connect", format: "duration" },
    { key: "replyTime", label: "Reply after", format: "duration" },
    { key: "received", label: "Received", format: "received" },
  ],
  ssh: [
    { key: "address", label: "Address", format: "code" },
    { key: "banner", label: "Banner", format: "code" },
    { key: "connectTime", label: "Connect", format: "duration" },
    { key: "bannerTime", label: "Banner after", format: "duration" },
  ],
  socks5: [
    { key: "proxyAddress", label: "Proxy address", format: "code" },
    { key: "reply", label: "Proxy reply", format: "text" },
    { key: "connectTime", label: "Connect", format: "duration" },
    { key: "handshakeTime", label: "Handshake", format: "duration" },
  ],
};

const KINDS = Object.keys(DETAIL_FIELDS) as CheckKind[];

/** The kind of a result's detail (the member of the oneof it has). */
export function resultKindOf(result: CheckResult): CheckKind | undefined {
  return KINDS.find((kind) => result[kind] !== undefined);
}

const TIMING_PHASES: [keyof HttpTiming, string][] = [
  ["dns", "DNS"],
  ["connect", "connect"],
  ["tlsHandshake", "TLS"],
  ["firstByte", "first byte"],
  ["transfer", "transfer"],
];

/** The phases of an HTTP request: a bar of their shares and the list of their times. */
function timingView(timing: HttpTiming): HTMLElement {
  const phases = TIMING_PHASES.map(([key, label]) => ({ key, label, seconds: durationSeconds(timing[key]) })).filter(
    (p): p is { key: keyof HttpTiming; label: string; seconds: number } => p.seconds !== undefined,
  );
  const total = phases.reduce((sum, p) => sum + p.seconds, 0);
  return h(
    "div",
    { class: "timing" },
    h(
      "div",
      { class: "timing-bar", "aria-hidden": "true" },
      phases.map((p) =>
        h("span", { class: `phase phase-${p.key}`, style: `width: ${total > 0 ? (100 * p.seconds) / total : 0}%`, title: `${p.label} ${millis(p.seconds * 1000)}` }),
      ),
    ),
    h(
      "ul",
      { class: "timing-list" },
      phases.map((p) => h("li", { "data-phase": p.key }, h("span", { class: `swatch phase-${p.key}`, "aria-hidden": "true" }), `${p.label} ${millis(p.seconds * 1000)}`)),
    ),
  );
}

/** How far `iso` is from now in whole days: "in 44 d", "expired 3 d ago". */
function daysText(iso: string, now = Date.now()): string {
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return "";
  const days = (at - now) / 86_400_000;
  return days >= 0 ? `in ${Math.floor(days)} d` : `expired ${Math.floor(-days)} d ago`;
}

/** An X.509 certificate as the check saw it. */
export function certificateView(cert: CertificateInfo): HTMLElement {
  const notAfter = cert.notAfter ? `${absoluteTime(cert.notAfter)} (${daysText(cert.notAfter)})` : "";
  return factList([
    cert.subject ? ["Subject", cert.subject, "subject"] : undefined,
    cert.issuer ? ["Issuer", cert.issuer, "issuer"] : undefined,
    cert.subjectAltNames?.length ? ["Names", cert.subjectAltNames.join(", "), "sans"] : undefined,
    cert.notBefore ? ["Not before", absoluteTime(cert.notBefore), "not-before"] : undefined,
    notAfter ? ["Not after", notAfter, "not-after"] : undefined,
    cert.serial ? ["Serial", h("code", { text: cert.serial }), "serial"] : undefined,
    cert.sha256Fingerprint ? ["SHA-256", h("code", { class: "fingerprint", text: cert.sha256Fingerprint }), "sha256"] : undefined,
  ]);
}

function detailValue(field: DetailField, value: unknown): Node | string | undefined {
  const absent = value === undefined || value === null || value === "" || (Array.isArray(value) && value.length === 0);
  switch (field.format) {
    case "count":
      return String(intOf(value as string | number | undefined));
    case "yesno":
      return value ? "yes" : "no";
    case "duration":
      return absent ? undefined : durationText(String(value));
    case "code":
      return absent ? undefined : h("code", { text: String(value) });
    case "list":
      return absent ? undefined : h("ul", { class: "plain" }, (value as unknown[]).map((v) => h("li", {}, h("code", { text: String(v) }))));
    case "received":
      return absent ? undefined : h("pre", { class: "received", text: String(value) });
    case "certificate":
      return absent ? undefined : certificateView(value as CertificateInfo);
    case "chain":
      return absent
        ? undefined
        : h(
            "ol",
            { class: "chain" },
            (value as CertificateInfo[]).map((cert) => h("li", {}, certificateView(cert))),
          );
    case "timing":
      return absent ? undefined : timingView(value as HttpTiming);
    default:
      return absent ? undefined : String(value);
  }
}

/** The facts of a result's kind detail. */
export function detailFacts(result: CheckResult): Fact[] {
  const kind = resultKindOf(result);
  if (!kind) return [];
  const detail = (result[kind] ?? {}) as Record<string, unknown>;
  const facts: Fact[] = [];
  for (const field of DETAIL_FIELDS[kind]) {
    const value = detailValue(field, detail[field.key]);
    if (value !== undefined) facts.push([field.label, value, `${kind}.${field.key}`]);
  }
  if (kind === "icmp") {
    // The share lost, as the loss assertion judges it.
    const sent = intOf(result.icmp?.sent);
    if (sent > 0) facts.splice(4, 0, ["Loss", `${Math.round((100 * (sent - intOf(result.icmp?.received))) / sent)} %`, "icmp.loss"]);
  }
  return facts;
}

/** The assertions evaluated, in order: passed or failed (in words, not colour alone) and what was seen. */
function assertionsView(result: CheckResult): HTMLElement | undefined {
  const list = result.assertions ?? [];
  if (!list.length) return undefined;
  return h(
    "ul",
    { class: "assertions" },
    list.map((a) =>
      h(
        "li",
        { "data-assertion": a.name ?? "", "data-passed": a.passed ? "true" : "false", class: a.passed ? "passed" : "failed" },
        h("span", { class: `verdict outcome-${a.passed ? "ok" : "bad"}`, text: a.passed ? "✓ passed" : "✗ failed" }),
        " ",
        h("strong", { text: a.name ?? "" }),
        a.detail ? `: ${a.detail}` : "",
      ),
    ),
  );
}

/** One result: outcome, when, how long, the error, the assertions and the kind's detail. */
export function resultView(result: CheckResult): HTMLElement {
  const outcome = outcomeName(result.outcome) || "not reported";
  return h(
    "div",
    { class: "result" },
    factList([
      ["Outcome", h("span", { class: `outcome outcome-${outcomeClass(result.outcome)}`, text: outcome }), "outcome"],
      result.error ? ["Error", result.error, "error"] : undefined,
      result.startTime
        ? ["Checked", h("time", { datetime: result.startTime, title: relativeTime(result.startTime), text: absoluteTime(result.startTime) }), "time"]
        : undefined,
      result.duration ? ["Took", durationText(result.duration), "duration"] : undefined,
      result.workerId ? ["Worker", result.workerId, "worker"] : undefined,
      ...detailFacts(result),
    ]),
    result.assertions?.length ? h("h5", { text: "Assertions" }) : null,
    assertionsView(result),
  );
}
