// The API's messages as canonical proto3 JSON (what monitor-server's REST
// gateway sends): camelCase names, enums as their names, 64-bit integers as
// strings, Durations as "30s", Timestamps as RFC 3339. Fields at their
// default value are omitted by the server, hence the optional members.

export type JobState = "JOB_STATE_UNSPECIFIED" | "JOB_STATE_RUNNING" | "JOB_STATE_STOPPED";
export type JobPhase = "JOB_PHASE_UNSPECIFIED" | "JOB_PHASE_STOPPED" | "JOB_PHASE_PENDING" | "JOB_PHASE_ACTIVE";
export type HttpMethod =
  | "HTTP_METHOD_UNSPECIFIED"
  | "HTTP_METHOD_GET"
  | "HTTP_METHOD_HEAD"
  | "HTTP_METHOD_POST"
  | "HTTP_METHOD_PUT"
  | "HTTP_METHOD_PATCH"
  | "HTTP_METHOD_DELETE"
  | "HTTP_METHOD_OPTIONS";
export type CheckOutcome = string;
export type WorkerState = "WORKER_STATE_UNSPECIFIED" | "WORKER_STATE_CONNECTED" | "WORKER_STATE_LOST" | "WORKER_STATE_DRAINING";

/** A 64-bit integer: a decimal string in proto3 JSON. */
export type Int64 = string;

export interface StatusRange {
  min?: number;
  max?: number;
}

export interface HttpAssertions {
  acceptedStatus?: StatusRange[];
  bodyContains?: string;
  bodyRegex?: string;
  maxResponseTime?: string;
}

export interface HttpHeader {
  name?: string;
  value?: string;
}

export interface HttpCheck {
  url?: string;
  method?: HttpMethod;
  /** Secret values (and the URL's userinfo) come back as "***"; sending "***" keeps the stored value. */
  headers?: HttpHeader[];
  /** Further headers whose values are secret (case-insensitive names). */
  secretHeaders?: string[];
  /** base64 */
  body?: string;
  followRedirects?: boolean;
  insecureSkipTlsVerify?: boolean;
  assertions?: HttpAssertions;
}

export interface TcpCheck {
  host?: string;
  port?: number;
}

export interface Job {
  id?: string;
  name?: string;
  labels?: Record<string, string>;
  interval?: string;
  timeout?: string;
  desiredState?: JobState;
  version?: Int64;
  createTime?: string;
  updateTime?: string;
  stateChangeTime?: string;
  locations?: string[];
  http?: HttpCheck;
  tcp?: TcpCheck;
}

export interface JobPlacement {
  location?: string;
  workerId?: string;
  epoch?: Int64;
  lastCheckTime?: string;
  lastOutcome?: CheckOutcome;
  checks?: Int64;
  failures?: Int64;
}

export interface JobStatus {
  jobId?: string;
  desiredState?: JobState;
  phase?: JobPhase;
  version?: Int64;
  stateChangeTime?: string;
  assignedWorkers?: string[];
  message?: string;
  placements?: JobPlacement[];
  lastCheckTime?: string;
  lastOutcome?: CheckOutcome;
  checks?: Int64;
  failures?: Int64;
}

export interface LatencySample {
  dt?: string;
  rtAvg?: number;
}

export interface JobSummary {
  job?: Job;
  status?: JobStatus;
  checks24h?: Int64;
  passed24h?: Int64;
  uptime24h?: number;
  latency1h?: LatencySample[];
}

export interface ListJobSummariesResponse {
  summaries?: JobSummary[];
  nextPageToken?: string;
  totalSize?: Int64;
}

export interface JobResponse {
  job?: Job;
}

export interface StateChangeResponse {
  job?: Job;
  changed?: boolean;
  message?: string;
}

export interface GetJobStatusResponse {
  status?: JobStatus;
}

export interface MetricPoint {
  dt?: string;
  checks?: Int64;
  passed?: Int64;
  uptime?: number;
  rtMin?: number;
  rtMax?: number;
  rtAvg?: number;
  rtCount?: Int64;
  p50?: number;
  p90?: number;
  p95?: number;
  p99?: number;
  statusCounts?: Record<string, Int64>;
  errorCounts?: Record<string, Int64>;
}

export type MetricSummary = Omit<MetricPoint, "dt">;

export interface QueryMetricsResponse {
  points?: MetricPoint[];
  summary?: MetricSummary;
  granularity?: string;
  startTime?: string;
  endTime?: string;
  location?: string;
}

export interface Worker {
  id?: string;
  labels?: Record<string, string>;
  version?: string;
  capacity?: number;
  state?: WorkerState;
  connectTime?: string;
  lastHeartbeatTime?: string;
  assignedJobs?: Int64;
}

export interface ListWorkersResponse {
  workers?: Worker[];
}

export interface ServerInfo {
  name?: string;
  version?: string;
  startTime?: string;
  uptime?: string;
  jobs?: { total?: Int64; running?: Int64; stopped?: Int64 };
  connectedWorkers?: Int64;
}

export interface FieldViolation {
  field: string;
  description: string;
}

// Alerting (proto/monitor/v1/alert.proto, alert_service.proto).

export type Severity = "SEVERITY_UNSPECIFIED" | "SEVERITY_CRITICAL" | "SEVERITY_WARNING" | "SEVERITY_INFO";
export type IncidentState =
  | "INCIDENT_STATE_UNSPECIFIED"
  | "INCIDENT_STATE_OPEN"
  | "INCIDENT_STATE_ACKNOWLEDGED"
  | "INCIDENT_STATE_RESOLVED";
export type IncidentCause = "INCIDENT_CAUSE_UNSPECIFIED" | "INCIDENT_CAUSE_DOWN" | "INCIDENT_CAUSE_NO_DATA";

export interface AlertRule {
  id?: string;
  name?: string;
  jobIds?: string[];
  labelSelector?: Record<string, string>;
  failureThreshold?: number;
  successThreshold?: number;
  minFailingLocations?: number;
  minFailingPercent?: number;
  /** Optional in the proto: absent means true. */
  noData?: boolean;
  severity?: Severity;
  channelIds?: string[];
  repeatInterval?: string;
  /** Optional in the proto: absent means true. */
  notifyOnResolve?: boolean;
  flapThreshold?: number;
  flapWindow?: string;
  /** Optional in the proto: absent means true. */
  enabled?: boolean;
  version?: Int64;
  createTime?: string;
  updateTime?: string;
}

export interface WeeklyRecurrence {
  /** "mon" … "sun" */
  days?: string[];
  /** "HH:MM" */
  start?: string;
  duration?: string;
  timeZone?: string;
}

export interface Silence {
  id?: string;
  jobIds?: string[];
  labelSelector?: Record<string, string>;
  startTime?: string;
  endTime?: string;
  recurrence?: WeeklyRecurrence;
  comment?: string;
  createdBy?: string;
  version?: Int64;
  createTime?: string;
  updateTime?: string;
  active?: boolean;
}

export interface FailedCheck {
  checkId?: string;
  workerId?: string;
  location?: string;
  startTime?: string;
  outcome?: CheckOutcome;
  statusCode?: number;
  error?: string;
}

export interface IncidentEvent {
  time?: string;
  kind?: string;
  location?: string;
  detail?: string;
  actor?: string;
}

export interface Incident {
  id?: string;
  ruleId?: string;
  ruleName?: string;
  jobId?: string;
  jobName?: string;
  severity?: Severity;
  cause?: IncidentCause;
  state?: IncidentState;
  openTime?: string;
  acknowledgeTime?: string;
  acknowledgedBy?: string;
  resolveTime?: string;
  resolvedBy?: string;
  failingLocations?: string[];
  firstFailure?: FailedCheck;
  downtime?: string;
  silenced?: boolean;
  flapping?: boolean;
  /** GetIncident only. */
  timeline?: IncidentEvent[];
}

export interface AlertRuleResponse {
  rule?: AlertRule;
}

export interface ListAlertRulesResponse {
  rules?: AlertRule[];
  nextPageToken?: string;
  totalSize?: Int64;
}

export interface SilenceResponse {
  silence?: Silence;
}

export interface ListSilencesResponse {
  silences?: Silence[];
  nextPageToken?: string;
  totalSize?: Int64;
}

export interface ListIncidentsResponse {
  incidents?: Incident[];
  nextPageToken?: string;
  totalSize?: Int64;
}

export interface IncidentResponse {
  incident?: Incident;
}

export interface IncidentChangeResponse {
  incident?: Incident;
  /** False when nothing changed (already acknowledged / resolved). */
  changed?: boolean;
}

/** NotificationChannel's kinds, as the oneof's field names. */
export type ChannelKind = "webhook" | "slack" | "discord" | "teams" | "telegram" | "pagerduty" | "email";

export interface WebhookHeader {
  name?: string;
  value?: string;
}

/**
 * A channel as the API sends it: exactly one kind field is set, holding that
 * kind's settings (secrets shown as "***"). The kinds' settings are read and
 * written generically by the channel form's field table (channelkinds.ts).
 */
export interface NotificationChannel {
  id?: string;
  name?: string;
  /** Optional in the proto: absent means true. */
  enabled?: boolean;
  webhook?: Record<string, unknown>;
  slack?: Record<string, unknown>;
  discord?: Record<string, unknown>;
  teams?: Record<string, unknown>;
  telegram?: Record<string, unknown>;
  pagerduty?: Record<string, unknown>;
  email?: Record<string, unknown>;
  groupWait?: string;
  version?: Int64;
  createTime?: string;
  updateTime?: string;
  /** Output only: the latest delivery attempt. */
  lastAttempt?: DeliveryAttempt;
  consecutiveFailures?: number;
  /** Output only; absent means false. */
  healthy?: boolean;
}

export type DeliveryState = "DELIVERY_STATE_UNSPECIFIED" | "DELIVERY_STATE_PENDING" | "DELIVERY_STATE_DELIVERED" | "DELIVERY_STATE_GIVEN_UP";
export type DeliveryOutcome = "DELIVERY_OUTCOME_UNSPECIFIED" | "DELIVERY_OUTCOME_DELIVERED" | "DELIVERY_OUTCOME_RETRY" | "DELIVERY_OUTCOME_GIVEN_UP";

export interface DeliveryAttempt {
  attempt?: number;
  time?: string;
  /** 0 (absent) when the far end did not answer. */
  httpStatus?: number;
  reply?: string;
  error?: string;
  duration?: string;
  outcome?: DeliveryOutcome;
}

export interface NotificationDelivery {
  outboxId?: Int64;
  event?: string;
  dedupKey?: string;
  incidentId?: string;
  jobName?: string;
  channelId?: string;
  channelName?: string;
  channelKind?: string;
  state?: DeliveryState;
  nextAttemptTime?: string;
  batchId?: string;
  createTime?: string;
  finishTime?: string;
  attempts?: DeliveryAttempt[];
}

export interface ChannelResponse {
  channel?: NotificationChannel;
}

export interface ListChannelsResponse {
  channels?: NotificationChannel[];
  nextPageToken?: string;
  totalSize?: Int64;
}

export interface ChannelTestResult {
  delivered?: boolean;
  statusCode?: number;
  bodyExcerpt?: string;
  error?: string;
  duration?: string;
}

export interface TestChannelResponse {
  result?: ChannelTestResult;
}

export interface ListDeliveriesResponse {
  deliveries?: NotificationDelivery[];
  nextPageToken?: string;
  totalSize?: Int64;
}
