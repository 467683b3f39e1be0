// The create / edit form of a job, in a modal dialog. Create is POST
// /v1/jobs; edit is PATCH /v1/jobs/{id} with every field and the version the
// form was opened at (a stale version answers 409 ABORTED). The server's
// field violations (google.rpc.BadRequest) are shown beside their field,
// linked with aria-describedby; anything else goes to the dialog's alert.

import { ApiError, Code, api, describe } from "./api";
import { showDialog } from "./dialogs";
import { h, uid } from "./dom";
import { FormFields, parseLabelLines } from "./fields";
import { humanDuration, parseDuration, sortedEntries } from "./format";
import type { FieldViolation, HttpCheck, HttpMethod, Job, StatusRange } from "./types";

const METHODS: HttpMethod[] = [
  "HTTP_METHOD_GET",
  "HTTP_METHOD_HEAD",
  "HTTP_METHOD_POST",
  "HTTP_METHOD_PUT",
  "HTTP_METHOD_PATCH",
  "HTTP_METHOD_DELETE",
  "HTTP_METHOD_OPTIONS",
];

/** Server field path (after "job.") -> form field, and how to name the sub-path. */
function fieldOf(path: string): { key: string; detail: string } | undefined {
  const p = path.replace(/^job\./, "");
  const table: [RegExp, string, (m: RegExpExecArray) => string][] = [
    [/^name$/, "name", () => ""],
    [/^labels(?:\[(.*)\])?$/, "labels", (m) => (m[1] ? `label ${m[1]}` : "")],
    [/^interval$/, "interval", () => ""],
    [/^timeout$/, "timeout", () => ""],
    [/^desired_state$/, "desiredState", () => ""],
    [/^locations(?:\[(\d+)\])?$/, "locations", (m) => (m[1] ? `location ${Number(m[1]) + 1}` : "")],
    [/^check$/, "kind", () => ""],
    [/^http\.url$/, "url", () => ""],
    [/^http\.method$/, "method", () => ""],
    [/^http\.headers(?:\[(\d+)\]\.(name|value))?$/, "headers", (m) => (m[1] ? `header ${Number(m[1]) + 1} ${m[2]}` : "")],
    [/^http\.body$/, "body", () => ""],
    [
      /^http\.assertions\.accepted_status(?:\[(\d+)\])?$/,
      "acceptedStatus",
      (m) => (m[1] ? `range ${Number(m[1]) + 1}` : ""),
    ],
    [/^http\.assertions\.body_contains$/, "bodyContains", () => ""],
    [/^http\.assertions\.body_regex$/, "bodyRegex", () => ""],
    [/^http\.assertions\.max_response_time$/, "maxResponseTime", () => ""],
    [/^tcp\.host$/, "host", () => ""],
    [/^tcp\.port$/, "port", () => ""],
  ];
  for (const [pattern, key, detail] of table) {
    const match = pattern.exec(p);
    if (match) return { key, detail: detail(match) };
  }
  return undefined;
}

function decodeBody(base64: string | undefined): string {
  if (!base64) return "";
  try {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    return new TextDecoder().decode(bytes);
  } catch {
    return "";
  }
}

function encodeBody(text: string): string | undefined {
  if (!text) return undefined;
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  bytes.forEach((b) => (binary += String.fromCharCode(b)));
  return btoa(binary);
}

function rangesText(ranges: StatusRange[] | undefined): string {
  return (ranges ?? []).map((r) => (r.min === r.max ? `${r.min ?? 0}` : `${r.min ?? 0}-${r.max ?? 0}`)).join(",");
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

/**
 * Opens the form; resolves with the saved job, or undefined when the person
 * closed it without saving.
 */
export function openJobForm(existing?: Job): Promise<Job | undefined> {
  return new Promise((resolve) => {
    let saved: Job | undefined;
    const editing = Boolean(existing?.id);
    const titleId = uid("job-form-title");
    const fields = new FormFields("job", fieldOf);
    const alertArea = fields.alertArea;
    const field = fields.field.bind(fields);

    const job = existing ?? {};
    const http: HttpCheck = job.http ?? {};
    const kind = job.tcp ? "tcp" : "http";

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

    // Check kind: a radio group in a fieldset.
    const kindName = uid("kind");
    const kindError = h("p", { id: `${kindName}-error`, class: "field-error" });
    const radio = (value: string, label: string) => {
      const id = uid(`kind-${value}`);
      const input = h("input", { type: "radio", name: kindName, id, value, checked: value === kind });
      return { input, el: h("div", { class: "radio" }, input, h("label", { for: id, text: label })) };
    };
    const httpRadio = radio("http", "HTTP(S) request");
    const tcpRadio = radio("tcp", "TCP connect");
    const kindSet = h(
      "fieldset",
      { class: "kind", "aria-describedby": kindError.id },
      h("legend", { text: "Check" }),
      h("div", { class: "radios" }, httpRadio.el, tcpRadio.el),
      kindError,
    );
    fields.register({ key: "kind", control: kindSet, focusable: httpRadio.input, error: kindError, wrapper: kindSet });

    const url = h("input", { type: "url", value: http.url ?? "", autocomplete: "off", spellcheck: "false" });
    const method = h("select", {}, ...METHODS.map((m) => h("option", { value: m, text: m.replace("HTTP_METHOD_", "") })));
    method.value = http.method && http.method !== "HTTP_METHOD_UNSPECIFIED" ? http.method : "HTTP_METHOD_GET";
    const headers = h("textarea", { rows: 2, spellcheck: "false" });
    headers.value = (http.headers ?? []).map((hd) => `${hd.name ?? ""}: ${hd.value ?? ""}`).join("\n");
    const body = h("textarea", { rows: 3, spellcheck: "false" });
    body.value = decodeBody(http.body);
    const followRedirects = h("input", { type: "checkbox", checked: Boolean(http.followRedirects) });
    const skipTls = h("input", { type: "checkbox", checked: Boolean(http.insecureSkipTlsVerify) });
    const acceptedStatus = h("input", { type: "text", value: rangesText(http.assertions?.acceptedStatus), autocomplete: "off" });
    const bodyContains = h("input", { type: "text", value: http.assertions?.bodyContains ?? "", autocomplete: "off" });
    const bodyRegex = h("input", { type: "text", value: http.assertions?.bodyRegex ?? "", autocomplete: "off", spellcheck: "false" });
    const maxResponseTime = h("input", { type: "text", value: humanDuration(http.assertions?.maxResponseTime), autocomplete: "off" });

    const host = h("input", { type: "text", value: job.tcp?.host ?? "", autocomplete: "off", spellcheck: "false" });
    const port = h("input", { type: "text", inputmode: "numeric", value: job.tcp?.port ? String(job.tcp.port) : "" });

    const httpSet = h(
      "fieldset",
      { class: "check-fields" },
      h("legend", { text: "HTTP request" }),
      field("url", "URL", url, "http:// or https://, e.g. http://127.0.0.1:8081/status/200"),
      h("div", { class: "row" }, field("method", "Method", method), field("acceptedStatus", "Accepted status codes", acceptedStatus, "e.g. 200-299,301; empty: 200-399")),
      field("headers", "Headers", headers, "One per line: Name: value; a secret shown as *** keeps its stored value"),
      field("body", "Body", body, "Sent as is (POST, PUT, PATCH, DELETE, OPTIONS)"),
      h("div", { class: "row" }, field("bodyContains", "Body contains", bodyContains), field("bodyRegex", "Body matches (regular expression)", bodyRegex)),
      h("div", { class: "row" }, field("maxResponseTime", "Max response time", maxResponseTime, "e.g. 500ms; empty: the timeout only")),
      field("followRedirects", "Follow redirects", followRedirects),
      field("insecureSkipTlsVerify", "Skip TLS certificate verification", skipTls),
    );
    const tcpSet = h(
      "fieldset",
      { class: "check-fields" },
      h("legend", { text: "TCP connect" }),
      h("div", { class: "row" }, field("host", "Host", host, "Host name or IP address"), field("port", "Port", port, "1 to 65535")),
    );
    const showKind = () => {
      const tcp = tcpRadio.input.checked;
      httpSet.hidden = tcp;
      tcpSet.hidden = !tcp;
    };
    httpRadio.input.addEventListener("change", showKind);
    tcpRadio.input.addEventListener("change", showKind);
    showKind();

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
      kindSet,
      httpSet,
      tcpSet,
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
      if (tcpRadio.input.checked) {
        const portText = port.value.trim();
        const portNumber = Number(portText);
        if (portText && !/^\d+$/.test(portText)) problems.push({ field: "tcp.port", description: `"${portText}" is not a number` });
        out.tcp = { host: host.value.trim(), port: portText ? portNumber : 0 };
      } else {
        const check: HttpCheck = {
          url: url.value.trim(),
          method: method.value as HttpMethod,
          followRedirects: followRedirects.checked,
          insecureSkipTlsVerify: skipTls.checked,
        };
        const headerList = headers.value
          .split("\n")
          .map((l) => l.trim())
          .filter(Boolean)
          .map((line) => {
            const at = line.indexOf(":");
            if (at <= 0) problems.push({ field: "http.headers", description: `"${line}" is not Name: value` });
            return { name: line.slice(0, Math.max(at, 0)).trim(), value: line.slice(at + 1).trim() };
          });
        if (headerList.length) check.headers = headerList;
        // The form does not edit which headers are secret; keep the job's marks.
        if (http.secretHeaders?.length) check.secretHeaders = http.secretHeaders;
        const encoded = encodeBody(body.value);
        if (encoded) check.body = encoded;
        const assertions: NonNullable<HttpCheck["assertions"]> = {};
        const ranges = parseRanges(acceptedStatus.value);
        if (typeof ranges === "string") problems.push({ field: "http.assertions.accepted_status", description: ranges });
        else if (ranges.length) assertions.acceptedStatus = ranges;
        if (bodyContains.value) assertions.bodyContains = bodyContains.value;
        if (bodyRegex.value) assertions.bodyRegex = bodyRegex.value;
        if (maxResponseTime.value.trim()) {
          const parsed = parseDuration(maxResponseTime.value);
          if (parsed) assertions.maxResponseTime = parsed;
          else
            problems.push({
              field: "http.assertions.max_response_time",
              description: `"${maxResponseTime.value}" is not a duration such as 500ms or 2s`,
            });
        }
        if (Object.keys(assertions).length) check.assertions = assertions;
        out.http = check;
      }
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
