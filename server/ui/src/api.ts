// The REST client: every call goes through request(), which adds the bearer
// token, turns error bodies (google.rpc.Status JSON) into ApiError, and on a
// 401 asks for a token and retries.

import type {
  AlertRule,
  ChannelResponse,
  ListChannelsResponse,
  ListDeliveriesResponse,
  NotificationChannel,
  TestChannelResponse,
  AlertRuleResponse,
  FieldViolation,
  GetJobStatusResponse,
  IncidentChangeResponse,
  IncidentResponse,
  Job,
  JobResponse,
  ListAlertRulesResponse,
  ListIncidentsResponse,
  ListJobSummariesResponse,
  ListSilencesResponse,
  ListWorkersResponse,
  QueryMetricsResponse,
  ServerInfo,
  Silence,
  SilenceResponse,
  StateChangeResponse,
} from "./types";

/** sessionStorage key of the API token. */
export const TOKEN_KEY = "monitor.token";
const REQUEST_TIMEOUT_MS = 20_000;

/** gRPC codes the views look at. */
export const Code = {
  InvalidArgument: 3,
  NotFound: 5,
  AlreadyExists: 6,
  PermissionDenied: 7,
  Aborted: 10,
  Unauthenticated: 16,
} as const;

/** A failed call, with the server's message and any field violations. */
export class ApiError extends Error {
  /** HTTP status; 0 when no answer arrived. */
  readonly status: number;
  /** gRPC code from the body, when the server sent one. */
  readonly code: number | undefined;
  readonly violations: FieldViolation[];

  constructor(message: string, status: number, code?: number, violations: FieldViolation[] = []) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.violations = violations;
  }
}

export function getToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(token: string | null): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  tokenListeners.forEach((listener) => listener());
}

const tokenListeners: (() => void)[] = [];
/** Whether the server has asked for a token (a 401 was seen). */
let authRequired = false;
export function isAuthRequired(): boolean {
  return authRequired;
}
/** Called whenever the token is set or cleared. */
export function onTokenChange(listener: () => void): void {
  tokenListeners.push(listener);
}

/**
 * Asks the person for a token; resolves true when one was entered, false
 * when they dismissed the prompt. Installed by the auth module.
 */
export type TokenPrompt = (reason: string) => Promise<boolean>;
let tokenPrompt: TokenPrompt = async () => false;
let pendingPrompt: Promise<boolean> | null = null;
/** Set after the prompt was dismissed: polls stop asking until "Sign in" is used. */
let declined = false;

export function installTokenPrompt(prompt: TokenPrompt): void {
  tokenPrompt = prompt;
}

/** Opens the prompt (again) on request, e.g. from the "Sign in" button. */
export function askForToken(reason: string): Promise<boolean> {
  declined = false;
  return sharedPrompt(reason);
}

function sharedPrompt(reason: string): Promise<boolean> {
  if (!pendingPrompt) {
    pendingPrompt = tokenPrompt(reason).then((entered) => {
      pendingPrompt = null;
      declined = !entered;
      return entered;
    });
  }
  return pendingPrompt;
}

type Query = Record<string, string | number | string[] | undefined>;

function buildUrl(path: string, query?: Query): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined || value === "") continue;
    if (Array.isArray(value)) value.forEach((v) => params.append(key, v));
    else params.append(key, String(value));
  }
  const qs = params.toString();
  // Relative to the page's origin: the dashboard is served by the API server.
  return qs ? `${path}?${qs}` : path;
}

async function errorFrom(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => "");
  let message = `${response.status} ${response.statusText}`.trim();
  let code: number | undefined;
  let violations: FieldViolation[] = [];
  try {
    const body = JSON.parse(text) as {
      code?: number;
      message?: string;
      details?: { "@type"?: string; fieldViolations?: FieldViolation[] }[];
    };
    if (body.message) message = body.message;
    code = body.code;
    for (const detail of body.details ?? []) {
      if (detail["@type"]?.endsWith("google.rpc.BadRequest")) violations = violations.concat(detail.fieldViolations ?? []);
    }
  } catch {
    if (text.trim()) message = `${message}: ${text.trim().slice(0, 200)}`;
  }
  if (response.status === 403) {
    message = `Your token lacks the role for this (${message}).`;
  }
  return new ApiError(message, response.status, code, violations);
}

/**
 * One API call. JSON in and out; a 401 prompts for a token and retries with
 * the new one; any other failure throws an ApiError carrying the server's
 * message.
 */
export async function request<T>(method: string, path: string, options: { query?: Query; body?: unknown } = {}): Promise<T> {
  for (;;) {
    const token = getToken();
    const headers: Record<string, string> = { accept: "application/json" };
    if (token) headers.authorization = `Bearer ${token}`;
    if (options.body !== undefined) headers["content-type"] = "application/json";
    let response: Response;
    try {
      response = await fetch(buildUrl(path, options.query), {
        method,
        headers,
        body: options.body === undefined ? null : JSON.stringify(options.body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        cache: "no-store",
      });
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new ApiError(`Could not reach the server for ${method} ${path}: ${reason}`, 0);
    }
    if (response.status === 401) {
      const error = await errorFrom(response);
      if (!authRequired) {
        authRequired = true;
        tokenListeners.forEach((listener) => listener());
      }
      // Another call may have been given a new token while this one flew.
      if (getToken() !== token && getToken()) continue;
      if (declined) throw new ApiError(`Sign in to continue: ${error.message}`, 401, error.code);
      const reason = token ? `The server did not accept the token (${error.message}).` : "This server needs an API token.";
      if (await sharedPrompt(reason)) continue;
      throw new ApiError(`Sign in to continue: ${error.message}`, 401, error.code);
    }
    if (!response.ok) throw await errorFrom(response);
    const text = await response.text();
    return (text ? JSON.parse(text) : {}) as T;
  }
}

/** Filters and paging of the job list (the ListJobs query parameters). */
export interface JobQuery {
  pageSize: number;
  pageToken: string;
  state: "" | "running" | "stopped";
  labelSelector: string[];
  nameContains: string;
}

export const api = {
  info: () => request<ServerInfo>("GET", "/v1/info"),
  summaries: (q: JobQuery) =>
    request<ListJobSummariesResponse>("GET", "/v1/job-summaries", {
      query: {
        pageSize: q.pageSize,
        pageToken: q.pageToken,
        state: q.state,
        labelSelector: q.labelSelector,
        nameContains: q.nameContains,
      },
    }),
  job: (id: string) => request<JobResponse>("GET", `/v1/jobs/${encodeURIComponent(id)}`),
  status: (id: string) => request<GetJobStatusResponse>("GET", `/v1/jobs/${encodeURIComponent(id)}/status`),
  metrics: (id: string, granularity: string, start: Date, end: Date) =>
    request<QueryMetricsResponse>("GET", `/v1/jobs/${encodeURIComponent(id)}/metrics`, {
      query: { granularity, start: start.toISOString(), end: end.toISOString() },
    }),
  create: (job: Job) => request<JobResponse>("POST", "/v1/jobs", { body: job }),
  update: (id: string, changes: Job) =>
    request<JobResponse>("PATCH", `/v1/jobs/${encodeURIComponent(id)}`, { body: changes }),
  remove: (id: string, version: string | undefined) =>
    request<object>("DELETE", `/v1/jobs/${encodeURIComponent(id)}`, { query: { version } }),
  start: (id: string) => request<StateChangeResponse>("POST", `/v1/jobs/${encodeURIComponent(id)}/start`),
  stop: (id: string) => request<StateChangeResponse>("POST", `/v1/jobs/${encodeURIComponent(id)}/stop`),
  workers: () => request<ListWorkersResponse>("GET", "/v1/workers"),
};

/** Filters and paging of the incident list (the ListIncidents query parameters). */
export interface IncidentQuery {
  state?: "" | "open" | "acknowledged" | "resolved";
  jobId?: string;
  ruleId?: string;
  pageSize?: number;
  pageToken?: string;
}

/** Most rules or silences one page holds (the API's limit): the dashboard reads them in one call. */
export const ALERT_PAGE_MAX = 1000;

/** The AlertService's REST routes. */
export const alerting = {
  rules: () => request<ListAlertRulesResponse>("GET", "/v1/alert-rules", { query: { pageSize: ALERT_PAGE_MAX } }),
  createRule: (rule: AlertRule) => request<AlertRuleResponse>("POST", "/v1/alert-rules", { body: rule }),
  /** `changes` carries the version read; the fields present are the update mask. */
  updateRule: (id: string, changes: AlertRule) =>
    request<AlertRuleResponse>("PATCH", `/v1/alert-rules/${encodeURIComponent(id)}`, { body: changes }),
  removeRule: (id: string, version: string | undefined) =>
    request<object>("DELETE", `/v1/alert-rules/${encodeURIComponent(id)}`, { query: { version } }),
  silences: (includeExpired: boolean) =>
    request<ListSilencesResponse>("GET", "/v1/silences", {
      query: { pageSize: ALERT_PAGE_MAX, includeExpired: includeExpired ? "true" : undefined },
    }),
  createSilence: (silence: Silence) => request<SilenceResponse>("POST", "/v1/silences", { body: silence }),
  updateSilence: (id: string, changes: Silence) =>
    request<SilenceResponse>("PATCH", `/v1/silences/${encodeURIComponent(id)}`, { body: changes }),
  removeSilence: (id: string, version: string | undefined) =>
    request<object>("DELETE", `/v1/silences/${encodeURIComponent(id)}`, { query: { version } }),
  incidents: (q: IncidentQuery) =>
    request<ListIncidentsResponse>("GET", "/v1/incidents", {
      query: { state: q.state, jobId: q.jobId, ruleId: q.ruleId, pageSize: q.pageSize, pageToken: q.pageToken },
    }),
  incident: (id: string) => request<IncidentResponse>("GET", `/v1/incidents/${encodeURIComponent(id)}`),
  /** An empty comment sends no body (the route takes none or JSON). */
  acknowledge: (id: string, comment: string) =>
    request<IncidentChangeResponse>("POST", `/v1/incidents/${encodeURIComponent(id)}/acknowledge`, {
      body: comment ? { comment } : undefined,
    }),
  resolve: (id: string, comment: string) =>
    request<IncidentChangeResponse>("POST", `/v1/incidents/${encodeURIComponent(id)}/resolve`, {
      body: comment ? { comment } : undefined,
    }),
};

/** The NotificationService's REST routes. */
export const notifications = {
  /** Every channel, through the pages (channels are few; a page holds up to 1000). */
  channels: async (): Promise<ListChannelsResponse> => {
    const all: NotificationChannel[] = [];
    let pageToken = "";
    for (;;) {
      const page = await request<ListChannelsResponse>("GET", "/v1/notification-channels", {
        query: { pageSize: ALERT_PAGE_MAX, pageToken },
      });
      all.push(...(page.channels ?? []));
      if (!page.nextPageToken) return { channels: all, totalSize: page.totalSize };
      pageToken = page.nextPageToken;
    }
  },
  channel: (id: string) => request<ChannelResponse>("GET", `/v1/notification-channels/${encodeURIComponent(id)}`),
  createChannel: (channel: NotificationChannel) => request<ChannelResponse>("POST", "/v1/notification-channels", { body: channel }),
  /** `changes` carries the version read; the fields present are the update mask. */
  updateChannel: (id: string, changes: NotificationChannel) =>
    request<ChannelResponse>("PATCH", `/v1/notification-channels/${encodeURIComponent(id)}`, { body: changes }),
  removeChannel: (id: string, version: string | undefined) =>
    request<object>("DELETE", `/v1/notification-channels/${encodeURIComponent(id)}`, { query: { version } }),
  testChannel: (id: string) => request<TestChannelResponse>("POST", `/v1/notification-channels/${encodeURIComponent(id)}/test`),
  deliveries: (q: { incidentId?: string; channelId?: string; pageSize?: number; pageToken?: string }) =>
    request<ListDeliveriesResponse>("GET", "/v1/notification-deliveries", {
      query: { incidentId: q.incidentId, channelId: q.channelId, pageSize: q.pageSize, pageToken: q.pageToken },
    }),
};

/** The message to show a person for any thrown value. */
export function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
