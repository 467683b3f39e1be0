// The browser side of the grpc-web test: a JobService client generated from
// proto/ (buf + protoc-gen-es), speaking grpc-web through connect-web to the
// server named in the query string (?server=http://127.0.0.1:PORT&token=T).
//
// The driver (grpc_web.test.mjs) calls the functions on `window.monitorApi`.
// Each one resolves to plain JSON (never throws), so the driver can assert on
// results and on error codes alike; each call is also rendered into the page
// so screenshots show what happened.

import { fromJson, toJson, type DescMessage, type JsonValue, type MessageShape } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createClient,
  createContextKey,
  createContextValues,
  type CallOptions as ConnectCallOptions,
  type Interceptor,
} from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";

import { JobSchema } from "../gen/monitor/v1/job_pb";
import {
  CreateJobResponseSchema,
  GetJobStatusResponseSchema,
  JobService,
  ListJobsResponseSchema,
  StartJobResponseSchema,
  StopJobResponseSchema,
} from "../gen/monitor/v1/job_service_pb";

/** Per call: `token` overrides the page's token; "" sends no credentials. */
type CallOptions = { token?: string; label?: string };

/** What every exposed function resolves to. */
type Outcome =
  | { ok: true; value: JsonValue }
  | {
      ok: false;
      /** ConnectError.code (a `Code` number), or null when not a ConnectError. */
      code: Code | null;
      codeName: string;
      message: string;
      rawMessage: string;
      /** Type names of the error details (e.g. google.rpc.BadRequest). */
      detailTypes: string[];
    };

const params = new URLSearchParams(window.location.search);
const serverUrl = params.get("server") ?? "";
const pageToken = params.get("token") ?? "";

// Each call carries its token in its context values; the interceptor turns it
// into the authorization header (none when the token is empty).
const tokenKey = createContextKey<string>(pageToken, { description: "bearer token" });
const bearer: Interceptor = (next) => async (req) => {
  const token = req.contextValues.get(tokenKey);
  if (token) {
    req.header.set("authorization", `Bearer ${token}`);
  }
  return next(req);
};

const transport = createGrpcWebTransport({
  baseUrl: serverUrl,
  interceptors: [bearer],
});
const jobs = createClient(JobService, transport);

const logList = document.getElementById("log") as HTMLOListElement;
const jobsBody = document.getElementById("jobs") as HTMLTableSectionElement;
const origin = document.getElementById("origin") as HTMLElement;
origin.textContent = `page origin ${window.location.origin} → grpc-web server ${serverUrl || "(none given)"}`;

function render(label: string, outcome: Outcome): void {
  const item = document.createElement("li");
  item.className = outcome.ok ? "ok" : "err";
  const text = outcome.ok
    ? JSON.stringify(outcome.value)
    : `${outcome.codeName}: ${outcome.rawMessage}`;
  item.textContent = `${label} → ${text.length > 400 ? `${text.slice(0, 400)}…` : text}`;
  logList.appendChild(item);
}

function renderJobs(value: JsonValue): void {
  const list = (value as { jobs?: Array<Record<string, unknown>> }).jobs ?? [];
  jobsBody.replaceChildren(
    ...list.map((job) => {
      const row = document.createElement("tr");
      for (const cell of [job.id, job.name, job.desiredState, job.version]) {
        const td = document.createElement("td");
        td.textContent = String(cell ?? "");
        row.appendChild(td);
      }
      return row;
    }),
  );
}

async function call<T extends DescMessage>(
  label: string,
  schema: T,
  options: CallOptions | undefined,
  send: (callOptions: ConnectCallOptions) => Promise<MessageShape<T>>,
): Promise<Outcome> {
  const contextValues = createContextValues().set(tokenKey, options?.token ?? pageToken);
  let outcome: Outcome;
  try {
    const response = await send({ contextValues });
    outcome = { ok: true, value: toJson(schema, response, { alwaysEmitImplicit: true }) };
  } catch (err) {
    if (err instanceof ConnectError) {
      outcome = {
        ok: false,
        code: err.code,
        codeName: Code[err.code],
        message: err.message,
        rawMessage: err.rawMessage,
        detailTypes: err.details.map((d) => ("desc" in d ? d.desc.typeName : d.type)),
      };
    } else {
      outcome = {
        ok: false,
        code: null,
        codeName: "not a ConnectError",
        message: String(err),
        rawMessage: String(err),
        detailTypes: [],
      };
    }
  }
  render(options?.label ? `${label} [${options.label}]` : label, outcome);
  return outcome;
}

const monitorApi = {
  serverUrl,
  list: (options?: CallOptions) =>
    call("ListJobs", ListJobsResponseSchema, options, async (callOptions) => {
      const response = await jobs.listJobs({ pageSize: 100 }, callOptions);
      renderJobs(toJson(ListJobsResponseSchema, response));
      return response;
    }),
  /** `job` is the proto3 JSON form, e.g. {name, interval: "30s", http: {url}}. */
  create: (job: JsonValue, options?: CallOptions) =>
    call("CreateJob", CreateJobResponseSchema, options, (callOptions) =>
      jobs.createJob({ job: fromJson(JobSchema, job) }, callOptions),
    ),
  start: (id: string, options?: CallOptions) =>
    call("StartJob", StartJobResponseSchema, options, (callOptions) => jobs.startJob({ id }, callOptions)),
  stop: (id: string, options?: CallOptions) =>
    call("StopJob", StopJobResponseSchema, options, (callOptions) => jobs.stopJob({ id }, callOptions)),
  status: (id: string, options?: CallOptions) =>
    call("GetJobStatus", GetJobStatusResponseSchema, options, (callOptions) =>
      jobs.getJobStatus({ id }, callOptions),
    ),
};

declare global {
  interface Window {
    monitorApi: typeof monitorApi;
  }
}
window.monitorApi = monitorApi;
document.body.dataset.ready = "true";
