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

/** A value of the oneof Job.check, by its proto3 JSON name. */
export type CheckKind = "http" | "tcp" | "dns" | "icmp" | "tls" | "grpcHealth" | "websocket" | "ssh" | "socks5";

export type HeaderCondition =
  | "HEADER_CONDITION_UNSPECIFIED"
  | "HEADER_CONDITION_EXISTS"
  | "HEADER_CONDITION_ABSENT"
  | "HEADER_CONDITION_EQUALS"
  | "HEADER_CONDITION_REGEX";

export type JsonCondition =
  | "JSON_CONDITION_UNSPECIFIED"
  | "JSON_CONDITION_EXISTS"
  | "JSON_CONDITION_EQUALS"
  | "JSON_CONDITION_CONTAINS"
  | "JSON_CONDITION_LESS_THAN"
  | "JSON_CONDITION_LESS_OR_EQUAL"
  | "JSON_CONDITION_GREATER_THAN"
  | "JSON_CONDITION_GREATER_OR_EQUAL"
  | "JSON_CONDITION_NOT_EQUALS";

export interface HeaderAssertion {
  name?: string;
  condition?: HeaderCondition;
  /** EQUALS: the value; REGEX: a regular expression. */
  value?: string;
}

export interface JsonPathAssertion {
  /** RFC 9535 query, e.g. $.status */
  path?: string;
  condition?: JsonCondition;
  /** Read as JSON when it parses as JSON, else as a string. */
  value?: string;
}

export interface HttpAssertions {
  acceptedStatus?: StatusRange[];
  bodyContains?: string;
  bodyRegex?: string;
  maxResponseTime?: string;
  headers?: HeaderAssertion[];
  jsonPath?: JsonPathAssertion[];
  certMinDaysRemaining?: number;
}

export interface HttpHeader {
  name?: string;
  value?: string;
}

/** A SOCKS5 proxy a check connects through. */
export interface Socks5Proxy {
  host?: string;
  port?: number;
  username?: string;
  /** Write-only: answers show "***"; sending "***" back keeps the stored one. */
  password?: string;
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
  proxy?: Socks5Proxy;
}

export interface TcpCheck {
  host?: string;
  port?: number;
  send?: string;
  expectContains?: string;
  expectRegex?: string;
  proxy?: Socks5Proxy;
}

export type DnsRecordType =
  | "DNS_RECORD_TYPE_UNSPECIFIED"
  | "DNS_RECORD_TYPE_A"
  | "DNS_RECORD_TYPE_AAAA"
  | "DNS_RECORD_TYPE_CNAME"
  | "DNS_RECORD_TYPE_MX"
  | "DNS_RECORD_TYPE_TXT"
  | "DNS_RECORD_TYPE_NS"
  | "DNS_RECORD_TYPE_SOA";
export type DnsTransport = "DNS_TRANSPORT_UNSPECIFIED" | "DNS_TRANSPORT_UDP" | "DNS_TRANSPORT_TCP";

export interface DnsAssertions {
  /** Response code name; empty means NOERROR. */
  rcode?: string;
  answersContain?: string[];
  answersEqual?: string[];
  answerRegex?: string;
}

export interface DnsCheck {
  name?: string;
  recordType?: DnsRecordType;
  /** "ip" or "ip:port"; empty: the worker's resolver configuration. */
  server?: string;
  transport?: DnsTransport;
  assertions?: DnsAssertions;
}

export interface IcmpAssertions {
  /** Optional in the proto: absent means no loss condition (0 is a condition). */
  maxLossPercent?: number;
  maxAvgRtt?: string;
}

export interface IcmpCheck {
  host?: string;
  /** 1 to 10; 0 (absent) means 3. */
  count?: number;
  /** Unset means 200 ms. */
  interval?: string;
  assertions?: IcmpAssertions;
}

export type TlsStartTls = "TLS_START_TLS_UNSPECIFIED" | "TLS_START_TLS_NONE" | "TLS_START_TLS_SMTP";

export interface TlsAssertions {
  allowUntrustedChain?: boolean;
  allowHostnameMismatch?: boolean;
  minDaysRemaining?: number;
}

export interface TlsCheck {
  host?: string;
  port?: number;
  serverName?: string;
  starttls?: TlsStartTls;
  assertions?: TlsAssertions;
}

export interface GrpcHealthCheck {
  host?: string;
  port?: number;
  service?: string;
  tls?: boolean;
  insecureSkipTlsVerify?: boolean;
  /** Secret values come back as "***", as for HTTP headers. */
  metadata?: HttpHeader[];
  secretMetadata?: string[];
}

export interface WebSocketCheck {
  url?: string;
  /** Secret values come back as "***", as for HTTP headers. */
  headers?: HttpHeader[];
  send?: string;
  expectContains?: string;
  expectRegex?: string;
  insecureSkipTlsVerify?: boolean;
  secretHeaders?: string[];
}

export interface SshCheck {
  host?: string;
  /** 0 (absent) means 22. */
  port?: number;
  bannerContains?: string;
  bannerRegex?: string;
}

export interface Socks5Check {
  proxy?: Socks5Proxy;
  targetHost?: string;
  targetPort?: number;
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
  // The oneof check: exactly one of these is set.
  http?: HttpCheck;
  tcp?: TcpCheck;
  dns?: DnsCheck;
  icmp?: IcmpCheck;
  tls?: TlsCheck;
  grpcHealth?: GrpcHealthCheck;
  websocket?: WebSocketCheck;
  ssh?: SshCheck;
  socks5?: Socks5Check;
}

// Check results (proto/monitor/v1/check_result.proto).

export interface AssertionResult {
  /** "status", "header", "rcode", "loss", "chain", "banner", ... */
  name?: string;
  passed?: boolean;
  detail?: string;
}

export interface HttpTiming {
  dns?: string;
  connect?: string;
  tlsHandshake?: string;
  firstByte?: string;
  transfer?: string;
}

export interface CertificateInfo {
  subject?: string;
  issuer?: string;
  subjectAltNames?: string[];
  notBefore?: string;
  notAfter?: string;
  serial?: string;
  sha256Fingerprint?: string;
}

export interface HttpResult {
  statusCode?: number;
  /** uint64 */
  bodyBytes?: Int64;
  firstByteTime?: string;
  finalUrl?: string;
  redirects?: number;
  timing?: HttpTiming;
  httpVersion?: string;
  certificate?: CertificateInfo;
  connectionReused?: boolean;
}

export interface TcpResult {
  connectTime?: string;
  address?: string;
  received?: string;
  responseTime?: string;
}

export interface DnsResult {
  rcode?: string;
  answers?: string[];
  queryTime?: string;
  server?: string;
}

export interface IcmpResult {
  address?: string;
  sent?: number;
  received?: number;
  minRtt?: string;
  avgRtt?: string;
  maxRtt?: string;
  /** "dgram" or "raw" */
  socket?: string;
}

export interface TlsResult {
  address?: string;
  protocolVersion?: string;
  cipherSuite?: string;
  /** Leaf first. */
  chain?: CertificateInfo[];
  chainTrusted?: boolean;
  chainError?: string;
  hostnameMatches?: boolean;
  connectTime?: string;
  handshakeTime?: string;
  /** int64: negative when expired. */
  daysRemaining?: Int64;
}

export interface GrpcHealthResult {
  status?: string;
  grpcCode?: string;
  responseTime?: string;
  address?: string;
}

export interface WebSocketResult {
  statusCode?: number;
  connectTime?: string;
  received?: string;
  replyTime?: string;
}

export interface SshResult {
  banner?: string;
  connectTime?: string;
  bannerTime?: string;
  address?: string;
}

export interface Socks5Result {
  proxyAddress?: string;
  connectTime?: string;
  handshakeTime?: string;
  reply?: string;
}

/** One check's result; the detail is the member named like the job's check kind. */
export interface CheckResult {
  schemaVersion?: number;
  checkId?: string;
  jobId?: string;
  jobVersion?: Int64;
  workerId?: string;
  /** uint64 */
  epoch?: Int64;
  location?: string;
  scheduledTime?: string;
  startTime?: string;
  duration?: string;
  outcome?: CheckOutcome;
  error?: string;
  assertions?: AssertionResult[];
  http?: HttpResult;
  tcp?: TcpResult;
  dns?: DnsResult;
  icmp?: IcmpResult;
  tls?: TlsResult;
  grpcHealth?: GrpcHealthResult;
  websocket?: WebSocketResult;
  ssh?: SshResult;
  socks5?: Socks5Result;
}

export interface JobPlacement {
  location?: string;
  workerId?: string;
  epoch?: Int64;
  lastCheckTime?: string;
  lastOutcome?: CheckOutcome;
  checks?: Int64;
  failures?: Int64;
  /** The latest check's result as the worker reported it. */
  lastResult?: CheckResult;
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
