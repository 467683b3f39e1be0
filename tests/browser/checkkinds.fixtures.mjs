// Fixtures of checkkinds.test.mjs, shaped exactly like the server's proto3
// JSON (camelCase names, enums by name, Durations as "0.012s", 64-bit
// integers as strings, zeros and false left out): for each check kind a job
// as GetJob answers it (secrets as "***") and the latest results of its two
// placements as GetJobStatus answers them (JobPlacement.lastResult), with
// what the job page must show of them.

const NOW = Date.now();
const iso = (offsetDays) => new Date(NOW + offsetDays * 86_400_000).toISOString().replace(/\.\d+Z$/, "Z");

const leaf = {
  subject: "CN=svc.example.test",
  issuer: "CN=Example Test CA",
  subjectAltNames: ["svc.example.test", "127.0.0.1"],
  notBefore: iso(-30),
  notAfter: iso(45),
  serial: "1A:2B:3C",
  sha256Fingerprint: "ab".repeat(32),
};
const ca = { subject: "CN=Example Test CA", issuer: "CN=Example Test CA", notBefore: iso(-365), notAfter: iso(3650), serial: "01" };

/**
 * kind → { label (the selector's option), job (the check member), ok / bad
 * (lastResult of placement local-a / local-b), facts: data-fact key → text
 * the page shows (config facts "kind.key", result facts "kind.key" inside a
 * result card), okFacts / badFacts: result facts of each card }.
 */
export const FIXTURES = {
  http: {
    label: "HTTP request",
    check: {
      url: "https://svc.example.test/health",
      method: "HTTP_METHOD_POST",
      headers: [
        { name: "X-Team", value: "web" },
        { name: "Authorization", value: "***" },
      ],
      assertions: {
        acceptedStatus: [{ min: 200, max: 299 }],
        headers: [{ name: "content-type", condition: "HEADER_CONDITION_EQUALS", value: "application/json" }],
        jsonPath: [{ path: "$.status", condition: "JSON_CONDITION_EQUALS", value: '"ok"' }],
        certMinDaysRemaining: 14,
      },
      proxy: { host: "127.0.0.1", port: 1080, username: "probe", password: "***" },
    },
    configFacts: {
      "http.url": "https://svc.example.test/health",
      "http.method": "POST",
      "http.headers": "X-Team: web; Authorization: ***",
      "http.assertions.acceptedStatus": "200–299",
      "http.assertions.headers": "content-type equals application/json",
      "http.assertions.jsonPath": '$.status = "ok"',
      "http.assertions.certMinDaysRemaining": "14",
      "http.proxy.host": "127.0.0.1",
      "http.proxy.password": "set (write-only)",
    },
    ok: {
      outcome: "CHECK_OUTCOME_OK",
      duration: "0.042s",
      assertions: [
        { name: "status", passed: true, detail: "200 is within 200-299" },
        { name: "header", passed: true, detail: "content-type equals application/json" },
        { name: "json_path", passed: true, detail: '$.status is "ok"' },
        { name: "cert_days_remaining", passed: true, detail: "45 days remaining (at least 14)" },
      ],
      http: {
        statusCode: 200,
        bodyBytes: "17",
        firstByteTime: "0.031s",
        finalUrl: "https://svc.example.test/health",
        timing: { dns: "0.001200s", connect: "0.002s", tlsHandshake: "0.009s", firstByte: "0.018s", transfer: "0.000400s" },
        httpVersion: "HTTP/2",
        certificate: leaf,
      },
    },
    okFacts: {
      "http.statusCode": "200",
      "http.httpVersion": "HTTP/2",
      "http.bodyBytes": "17",
      "http.connectionReused": "no",
      "http.timing": /DNS 1\.2 ms.*connect 2\.0 ms.*TLS 9\.0 ms.*first byte 18\.0 ms.*transfer 0\.4 ms/,
      "http.certificate": /CN=svc\.example\.test.*CN=Example Test CA.*svc\.example\.test, 127\.0\.0\.1.*in 4[45] d/,
    },
    bad: {
      outcome: "CHECK_OUTCOME_ASSERTION_FAILED",
      error: "JSONPath $.status: expected \"ok\", got \"degraded\"",
      assertions: [
        { name: "status", passed: true, detail: "200 is within 200-299" },
        { name: "json_path", passed: false, detail: 'expected "ok", got "degraded"' },
      ],
      http: { statusCode: 200, httpVersion: "HTTP/1.1", connectionReused: true, timing: { firstByte: "0.020s", transfer: "0.001s" } },
    },
    badFacts: { "http.httpVersion": "HTTP/1.1", "http.connectionReused": "yes", "http.timing": /first byte 20\.0 ms.*transfer 1\.0 ms/ },
  },
  tcp: {
    label: "TCP connect",
    check: { host: "127.0.0.1", port: 6379, send: "PING\r\n", expectContains: "PONG" },
    configFacts: { "tcp.host": "127.0.0.1", "tcp.port": "6379", "tcp.expectContains": "PONG", "tcp.proxy.host": "none (direct)" },
    ok: {
      outcome: "CHECK_OUTCOME_OK",
      assertions: [{ name: "expect_contains", passed: true, detail: 'received "+PONG"' }],
      tcp: { connectTime: "0.000300s", address: "127.0.0.1:6379", received: "+PONG\r\n", responseTime: "0.001s" },
    },
    okFacts: { "tcp.address": "127.0.0.1:6379", "tcp.connectTime": "0.3 ms", "tcp.received": "+PONG" },
    bad: { outcome: "CHECK_OUTCOME_CONNECT", error: "connection refused", tcp: { address: "127.0.0.1:6379" } },
    badFacts: { "tcp.address": "127.0.0.1:6379" },
  },
  dns: {
    label: "DNS query",
    check: {
      name: "example.test",
      recordType: "DNS_RECORD_TYPE_MX",
      server: "127.0.0.1:5353",
      transport: "DNS_TRANSPORT_TCP",
      assertions: { answersContain: ["10 mail.example.test."] },
    },
    configFacts: {
      "dns.name": "example.test",
      "dns.recordType": "MX",
      "dns.server": "127.0.0.1:5353",
      "dns.transport": "TCP",
      "dns.assertions.rcode": "NOERROR",
      "dns.assertions.answersContain": "10 mail.example.test.",
    },
    ok: {
      outcome: "CHECK_OUTCOME_OK",
      assertions: [
        { name: "rcode", passed: true, detail: "NOERROR" },
        { name: "answers_contain", passed: true, detail: "10 mail.example.test. is among the answers" },
      ],
      dns: { rcode: "NOERROR", answers: ["10 mail.example.test.", "20 backup.example.test."], queryTime: "0.004s", server: "127.0.0.1:5353" },
    },
    okFacts: { "dns.rcode": "NOERROR", "dns.answers": /10 mail\.example\.test\.\s*20 backup\.example\.test\./, "dns.queryTime": "4.0 ms" },
    bad: {
      outcome: "CHECK_OUTCOME_ASSERTION_FAILED",
      error: "rcode: expected NOERROR, got NXDOMAIN",
      assertions: [{ name: "rcode", passed: false, detail: "expected NOERROR, got NXDOMAIN" }],
      dns: { rcode: "NXDOMAIN", server: "127.0.0.1:5353" },
    },
    badFacts: { "dns.rcode": "NXDOMAIN" },
  },
  icmp: {
    label: "ICMP ping",
    check: { host: "127.0.0.1", count: 4, interval: "0.100s", assertions: { maxLossPercent: 0, maxAvgRtt: "0.050s" } },
    configFacts: { "icmp.host": "127.0.0.1", "icmp.count": "4", "icmp.interval": "0.1s", "icmp.assertions.maxLossPercent": "0", "icmp.assertions.maxAvgRtt": "0.05s" },
    ok: {
      outcome: "CHECK_OUTCOME_OK",
      assertions: [
        { name: "loss", passed: true, detail: "0 % lost (at most 0 %)" },
        { name: "avg_rtt", passed: true, detail: "0.1 ms (at most 50 ms)" },
      ],
      icmp: { address: "127.0.0.1", sent: 4, received: 4, minRtt: "0.000060s", avgRtt: "0.000080s", maxRtt: "0.000120s", socket: "dgram" },
    },
    okFacts: { "icmp.sent": "4", "icmp.received": "4", "icmp.loss": "0 %", "icmp.minRtt": "0.1 ms", "icmp.maxRtt": "0.1 ms", "icmp.socket": "dgram" },
    bad: {
      outcome: "CHECK_OUTCOME_ASSERTION_FAILED",
      error: "loss: 75 % lost (at most 0 %)",
      assertions: [{ name: "loss", passed: false, detail: "75 % lost (at most 0 %)" }],
      icmp: { address: "127.0.0.1", sent: 4, received: 1, minRtt: "0.002s", avgRtt: "0.002s", maxRtt: "0.002s", socket: "raw" },
    },
    badFacts: { "icmp.received": "1", "icmp.loss": "75 %", "icmp.socket": "raw" },
  },
  tls: {
    label: "TLS handshake",
    check: { host: "mail.example.test", port: 25, starttls: "TLS_START_TLS_SMTP", assertions: { allowUntrustedChain: true, minDaysRemaining: 21 } },
    configFacts: {
      "tls.host": "mail.example.test",
      "tls.port": "25",
      "tls.serverName": "the host",
      "tls.starttls": "SMTP",
      "tls.assertions.allowUntrustedChain": "yes",
      "tls.assertions.allowHostnameMismatch": "no",
      "tls.assertions.minDaysRemaining": "21",
    },
    ok: {
      outcome: "CHECK_OUTCOME_OK",
      assertions: [
        { name: "chain", passed: true, detail: "untrusted (allowed): unknown issuer" },
        { name: "hostname", passed: true, detail: "the certificate names mail.example.test" },
        { name: "cert_days_remaining", passed: true, detail: "45 days remaining (at least 21)" },
      ],
      tls: {
        address: "127.0.0.1:25",
        protocolVersion: "TLSv1.3",
        cipherSuite: "TLS13_AES_256_GCM_SHA384",
        chain: [leaf, ca],
        chainError: "unknown issuer",
        hostnameMatches: true,
        connectTime: "0.001s",
        handshakeTime: "0.006s",
        daysRemaining: "45",
      },
    },
    okFacts: {
      "tls.protocolVersion": "TLSv1.3",
      "tls.cipherSuite": "TLS13_AES_256_GCM_SHA384",
      "tls.chainTrusted": "no",
      "tls.chainError": "unknown issuer",
      "tls.hostnameMatches": "yes",
      "tls.daysRemaining": "45",
      "tls.chain": /CN=svc\.example\.test.*CN=Example Test CA.*CN=Example Test CA/,
    },
    bad: {
      outcome: "CHECK_OUTCOME_TLS",
      error: "certificate expired 3 days ago",
      assertions: [{ name: "cert_days_remaining", passed: false, detail: "expired 3 days ago" }],
      tls: { address: "127.0.0.1:25", protocolVersion: "TLSv1.2", chainTrusted: true, daysRemaining: "-3", chain: [{ ...leaf, notAfter: iso(-3) }] },
    },
    badFacts: { "tls.chainTrusted": "yes", "tls.hostnameMatches": "no", "tls.daysRemaining": "-3", "tls.chain": /expired 3 d ago/ },
  },
  grpcHealth: {
    label: "gRPC health",
    check: { host: "127.0.0.1", port: 50051, service: "monitor.v1.JobService", tls: true, metadata: [{ name: "authorization", value: "***" }] },
    configFacts: { "grpcHealth.service": "monitor.v1.JobService", "grpcHealth.tls": "yes", "grpcHealth.insecureSkipTlsVerify": "no", "grpcHealth.metadata": "authorization: ***" },
    ok: {
      outcome: "CHECK_OUTCOME_OK",
      assertions: [{ name: "serving", passed: true, detail: "SERVING" }],
      grpcHealth: { status: "SERVING", responseTime: "0.003s", address: "127.0.0.1:50051" },
    },
    okFacts: { "grpcHealth.status": "SERVING", "grpcHealth.responseTime": "3.0 ms", "grpcHealth.address": "127.0.0.1:50051" },
    bad: {
      outcome: "CHECK_OUTCOME_PROTOCOL_ERROR",
      error: "Health/Check failed: UNIMPLEMENTED",
      grpcHealth: { grpcCode: "UNIMPLEMENTED", address: "127.0.0.1:50051" },
    },
    badFacts: { "grpcHealth.grpcCode": "UNIMPLEMENTED" },
  },
  websocket: {
    label: "WebSocket",
    check: { url: "wss://svc.example.test/ws", send: "ping", expectContains: "pong", insecureSkipTlsVerify: true },
    configFacts: { "websocket.url": "wss://svc.example.test/ws", "websocket.send": "ping", "websocket.expectContains": "pong", "websocket.insecureSkipTlsVerify": "yes" },
    ok: {
      outcome: "CHECK_OUTCOME_OK",
      assertions: [{ name: "expect_contains", passed: true, detail: 'received "pong 1"' }],
      websocket: { statusCode: 101, connectTime: "0.002s", received: "pong 1", replyTime: "0.000500s" },
    },
    okFacts: { "websocket.statusCode": "101", "websocket.received": "pong 1", "websocket.replyTime": "0.5 ms" },
    bad: { outcome: "CHECK_OUTCOME_PROTOCOL_ERROR", error: "no WebSocket upgrade: HTTP 404", websocket: { statusCode: 404 } },
    badFacts: { "websocket.statusCode": "404" },
  },
  ssh: {
    label: "SSH banner",
    check: { host: "127.0.0.1", bannerContains: "OpenSSH" },
    configFacts: { "ssh.host": "127.0.0.1", "ssh.port": "22", "ssh.bannerContains": "OpenSSH" },
    ok: {
      outcome: "CHECK_OUTCOME_OK",
      assertions: [{ name: "banner", passed: true, detail: 'contains "OpenSSH"' }],
      ssh: { banner: "SSH-2.0-OpenSSH_9.6", connectTime: "0.000200s", bannerTime: "0.004s", address: "127.0.0.1:22" },
    },
    okFacts: { "ssh.banner": "SSH-2.0-OpenSSH_9.6", "ssh.bannerTime": "4.0 ms" },
    bad: {
      outcome: "CHECK_OUTCOME_ASSERTION_FAILED",
      error: 'banner: "SSH-2.0-dropbear" does not contain "OpenSSH"',
      assertions: [{ name: "banner", passed: false, detail: '"SSH-2.0-dropbear" does not contain "OpenSSH"' }],
      ssh: { banner: "SSH-2.0-dropbear", address: "127.0.0.1:22" },
    },
    badFacts: { "ssh.banner": "SSH-2.0-dropbear" },
  },
  socks5: {
    label: "SOCKS5 proxy",
    check: { proxy: { host: "127.0.0.1", port: 1080, username: "probe", password: "***" }, targetHost: "example.test", targetPort: 443 },
    configFacts: {
      "socks5.proxy.host": "127.0.0.1",
      "socks5.proxy.port": "1080",
      "socks5.proxy.username": "probe",
      "socks5.proxy.password": "set (write-only)",
      "socks5.targetHost": "example.test",
      "socks5.targetPort": "443",
    },
    ok: {
      outcome: "CHECK_OUTCOME_OK",
      socks5: { proxyAddress: "127.0.0.1:1080", connectTime: "0.000300s", handshakeTime: "0.002s", reply: "succeeded" },
    },
    okFacts: { "socks5.reply": "succeeded", "socks5.proxyAddress": "127.0.0.1:1080", "socks5.handshakeTime": "2.0 ms" },
    bad: {
      outcome: "CHECK_OUTCOME_PROXY",
      error: "the proxy could not reach example.test:443: host unreachable",
      socks5: { proxyAddress: "127.0.0.1:1080", reply: "host unreachable" },
    },
    badFacts: { "socks5.reply": "host unreachable" },
  },
};

/** The readable outcome names the page shows. */
export const OUTCOME_TEXT = {
  CHECK_OUTCOME_OK: "OK",
  CHECK_OUTCOME_ASSERTION_FAILED: "assertion failed",
  CHECK_OUTCOME_CONNECT: "connect error",
  CHECK_OUTCOME_TLS: "TLS error",
  CHECK_OUTCOME_PROTOCOL_ERROR: "protocol error",
  CHECK_OUTCOME_PROXY: "proxy error",
};

/** GetJobStatus of `job` with two placements whose latest results are `ok` (local-a) and `bad` (local-b). */
export function statusFixture(job, ok, bad) {
  const placement = (location, workerId, result, failures) => ({
    location,
    workerId,
    epoch: "3",
    lastCheckTime: new Date(NOW).toISOString(),
    lastOutcome: result.outcome,
    checks: "12",
    failures,
    lastResult: {
      schemaVersion: 1,
      checkId: `00000000-0000-4000-8000-00000000000${location === "local-a" ? 1 : 2}`,
      jobId: job.id,
      jobVersion: job.version,
      workerId,
      epoch: "3",
      location,
      scheduledTime: new Date(NOW - 1000).toISOString(),
      startTime: new Date(NOW - 990).toISOString(),
      duration: "0.050s",
      ...result,
    },
  });
  return {
    status: {
      jobId: job.id,
      desiredState: "JOB_STATE_RUNNING",
      phase: "JOB_PHASE_ACTIVE",
      version: job.version,
      assignedWorkers: ["probe-1", "probe-2"],
      placements: [placement("local-a", "probe-1", ok, "0"), placement("local-b", "probe-2", bad, "12")],
      lastOutcome: bad.outcome,
      checks: "24",
      failures: "12",
    },
  };
}
