//! The OpenAPI 3 description served at `/v1/openapi.json`. Schemas are
//! generated from the proto descriptors with the proto3 JSON mapping (the
//! same mapping pbjson applies to the bodies), so they cannot drift from the
//! contract; the route table below lists the gateway's routes.

use prost::Message;
use prost_types::{
    DescriptorProto, FieldDescriptorProto, FileDescriptorSet,
    field_descriptor_proto::{Label, Type},
};
use serde_json::{Map, Value, json};

/// One documented route.
struct Route {
    method: &'static str,
    path: &'static str,
    operation: &'static str,
    summary: &'static str,
    role: &'static str,
    request: Option<&'static str>,
    response: &'static str,
    query: &'static [(&'static str, &'static str, &'static str)],
}

const LIST_QUERY: &[(&str, &str, &str)] = &[
    ("pageSize", "integer", "jobs per page (default 50, at most 1000)"),
    ("pageToken", "string", "nextPageToken of the previous page"),
    (
        "state",
        "string",
        "running or stopped (or JOB_STATE_RUNNING / JOB_STATE_STOPPED)",
    ),
    (
        "labelSelector",
        "string",
        "key=value; repeat for several (all must match)",
    ),
    ("nameContains", "string", "case-insensitive substring of the name"),
];

const METRICS_QUERY: &[(&str, &str, &str)] = &[
    (
        "granularity",
        "string",
        "bucket width <N><s|m|h|d>, e.g. 1m, 5m, 1h, 1d (default 1m)",
    ),
    (
        "start",
        "string",
        "RFC 3339; points whose bucket starts at or after it (default: end - 1h)",
    ),
    (
        "end",
        "string",
        "RFC 3339; points whose bucket starts before it (default: now); at most 10000 buckets after start",
    ),
    (
        "location",
        "string",
        "one location; empty: the job over all its locations",
    ),
    (
        "aggregates",
        "string",
        "comma-separated subset of min,max,avg,count,p50,p90,p95,p99 (default: all)",
    ),
];

const PAGE_QUERY: &[(&str, &str, &str)] = &[
    ("pageSize", "integer", "items per page (default 50, at most 1000)"),
    ("pageToken", "string", "nextPageToken of the previous page"),
];

const SILENCES_QUERY: &[(&str, &str, &str)] = &[
    ("pageSize", "integer", "silences per page (default 50, at most 1000)"),
    ("pageToken", "string", "nextPageToken of the previous page"),
    (
        "includeExpired",
        "boolean",
        "also silences that have ended (default: only current and future ones)",
    ),
];

const DELIVERIES_QUERY: &[(&str, &str, &str)] = &[
    (
        "incidentId",
        "string",
        "the incident's deliveries (this or channelId is required; both: the incident's to that channel)",
    ),
    ("channelId", "string", "the channel's deliveries"),
    ("pageSize", "integer", "deliveries per page (default 50, at most 1000)"),
    ("pageToken", "string", "nextPageToken of the previous page"),
];

const INCIDENTS_QUERY: &[(&str, &str, &str)] = &[
    ("pageSize", "integer", "incidents per page (default 50, at most 1000)"),
    ("pageToken", "string", "nextPageToken of the previous page"),
    (
        "state",
        "string",
        "open, acknowledged or resolved (or INCIDENT_STATE_OPEN, ...); default: any",
    ),
    ("jobId", "string", "only this job's incidents"),
    ("ruleId", "string", "only this rule's incidents"),
];

/// Operations answering 201 Created.
const CREATES: &[&str] = &[
    "CreateJob",
    "CreateAlertRule",
    "CreateSilence",
    "CreateNotificationChannel",
];

const ROUTES: &[Route] = &[
    Route {
        method: "get",
        path: "/v1/jobs",
        operation: "ListJobs",
        summary: "List jobs a page at a time",
        role: "read",
        request: None,
        response: "ListJobsResponse",
        query: LIST_QUERY,
    },
    Route {
        method: "post",
        path: "/v1/jobs",
        operation: "CreateJob",
        summary: "Create a job (body: the Job)",
        role: "write",
        request: Some("Job"),
        response: "CreateJobResponse",
        query: &[],
    },
    Route {
        method: "get",
        path: "/v1/jobs/{id}",
        operation: "GetJob",
        summary: "Get one job",
        role: "read",
        request: None,
        response: "GetJobResponse",
        query: &[],
    },
    Route {
        method: "patch",
        path: "/v1/jobs/{id}",
        operation: "UpdateJob",
        summary: "Change a job: the body carries version and the fields to change (they form the mask unless updateMask is given)",
        role: "write",
        request: Some("Job"),
        response: "UpdateJobResponse",
        query: &[("updateMask", "string", "comma-separated fields to change")],
    },
    Route {
        method: "delete",
        path: "/v1/jobs/{id}",
        operation: "DeleteJob",
        summary: "Delete a job",
        role: "write",
        request: None,
        response: "DeleteJobResponse",
        query: &[("version", "integer", "delete only at this version")],
    },
    Route {
        method: "post",
        path: "/v1/jobs/{id}/start",
        operation: "StartJob",
        summary: "Set the desired state to running (idempotent)",
        role: "write",
        request: None,
        response: "StartJobResponse",
        query: &[],
    },
    Route {
        method: "post",
        path: "/v1/jobs/{id}/stop",
        operation: "StopJob",
        summary: "Set the desired state to stopped (idempotent)",
        role: "write",
        request: None,
        response: "StopJobResponse",
        query: &[],
    },
    Route {
        method: "get",
        path: "/v1/jobs/{id}/status",
        operation: "GetJobStatus",
        summary: "Where the job stands",
        role: "read",
        request: None,
        response: "GetJobStatusResponse",
        query: &[],
    },
    Route {
        method: "get",
        path: "/v1/jobs/{id}/metrics",
        operation: "QueryMetrics",
        summary: "Rolled-up check results over a time range: a point per bucket with data, and a summary",
        role: "read",
        request: None,
        response: "QueryMetricsResponse",
        query: METRICS_QUERY,
    },
    Route {
        method: "get",
        path: "/v1/job-summaries",
        operation: "ListJobSummaries",
        summary: "A page of jobs, each with its status, its last day's uptime and its last hour's response times",
        role: "read",
        request: None,
        response: "ListJobSummariesResponse",
        query: LIST_QUERY,
    },
    Route {
        method: "get",
        path: "/v1/alert-rules",
        operation: "ListAlertRules",
        summary: "List alert rules by name, a page at a time",
        role: "read",
        request: None,
        response: "ListAlertRulesResponse",
        query: PAGE_QUERY,
    },
    Route {
        method: "post",
        path: "/v1/alert-rules",
        operation: "CreateAlertRule",
        summary: "Create an alert rule (body: the AlertRule); unset fields get the documented defaults",
        role: "write",
        request: Some("AlertRule"),
        response: "CreateAlertRuleResponse",
        query: &[],
    },
    Route {
        method: "get",
        path: "/v1/alert-rules/{id}",
        operation: "GetAlertRule",
        summary: "Get one alert rule",
        role: "read",
        request: None,
        response: "GetAlertRuleResponse",
        query: &[],
    },
    Route {
        method: "patch",
        path: "/v1/alert-rules/{id}",
        operation: "UpdateAlertRule",
        summary: "Change an alert rule: the body carries version and the fields to change (they form the mask unless updateMask is given)",
        role: "write",
        request: Some("AlertRule"),
        response: "UpdateAlertRuleResponse",
        query: &[("updateMask", "string", "comma-separated fields to change")],
    },
    Route {
        method: "delete",
        path: "/v1/alert-rules/{id}",
        operation: "DeleteAlertRule",
        summary: "Delete an alert rule; its incidents stay, with the rule's name",
        role: "write",
        request: None,
        response: "DeleteAlertRuleResponse",
        query: &[("version", "integer", "delete only at this version")],
    },
    Route {
        method: "get",
        path: "/v1/silences",
        operation: "ListSilences",
        summary: "List silences, latest end first",
        role: "read",
        request: None,
        response: "ListSilencesResponse",
        query: SILENCES_QUERY,
    },
    Route {
        method: "post",
        path: "/v1/silences",
        operation: "CreateSilence",
        summary: "Create a silence or maintenance window (body: the Silence); created_by is the token's name",
        role: "write",
        request: Some("Silence"),
        response: "CreateSilenceResponse",
        query: &[],
    },
    Route {
        method: "get",
        path: "/v1/silences/{id}",
        operation: "GetSilence",
        summary: "Get one silence, with whether it is active now",
        role: "read",
        request: None,
        response: "GetSilenceResponse",
        query: &[],
    },
    Route {
        method: "patch",
        path: "/v1/silences/{id}",
        operation: "UpdateSilence",
        summary: "Change a silence (set endTime to now to end it): version and the fields to change",
        role: "write",
        request: Some("Silence"),
        response: "UpdateSilenceResponse",
        query: &[("updateMask", "string", "comma-separated fields to change")],
    },
    Route {
        method: "delete",
        path: "/v1/silences/{id}",
        operation: "DeleteSilence",
        summary: "Delete a silence",
        role: "write",
        request: None,
        response: "DeleteSilenceResponse",
        query: &[("version", "integer", "delete only at this version")],
    },
    Route {
        method: "get",
        path: "/v1/notification-channels",
        operation: "ListNotificationChannels",
        summary: "List notification channels by name, a page at a time (secrets shown as ***)",
        role: "read",
        request: None,
        response: "ListNotificationChannelsResponse",
        query: PAGE_QUERY,
    },
    Route {
        method: "post",
        path: "/v1/notification-channels",
        operation: "CreateNotificationChannel",
        summary: "Create a notification channel (body: the NotificationChannel with one of webhook, slack, discord, teams, telegram, pagerduty, email; pagerduty is never grouped)",
        role: "write",
        request: Some("NotificationChannel"),
        response: "CreateNotificationChannelResponse",
        query: &[],
    },
    Route {
        method: "get",
        path: "/v1/notification-channels/{id}",
        operation: "GetNotificationChannel",
        summary: "Get one notification channel (secrets shown as ***)",
        role: "read",
        request: None,
        response: "GetNotificationChannelResponse",
        query: &[],
    },
    Route {
        method: "patch",
        path: "/v1/notification-channels/{id}",
        operation: "UpdateNotificationChannel",
        summary: "Change a notification channel: version and the fields to change; *** keeps a stored secret (webhook secrets, Slack/Discord/Teams URL, Telegram bot token, PagerDuty routing key, email password) while the URL's origin (email: host and port) stays",
        role: "write",
        request: Some("NotificationChannel"),
        response: "UpdateNotificationChannelResponse",
        query: &[("updateMask", "string", "comma-separated fields to change")],
    },
    Route {
        method: "delete",
        path: "/v1/notification-channels/{id}",
        operation: "DeleteNotificationChannel",
        summary: "Delete a notification channel and its pending deliveries",
        role: "write",
        request: None,
        response: "DeleteNotificationChannelResponse",
        query: &[("version", "integer", "delete only at this version")],
    },
    Route {
        method: "post",
        path: "/v1/notification-channels/{id}/test",
        operation: "TestNotificationChannel",
        summary: "Send a test message now (PagerDuty: an info trigger with dedup key monitor-test:<name>; email: a test email) and answer with the far end's status (email: the SMTP reply code) and the start of its answer (email: the server's last reply)",
        role: "write",
        request: None,
        response: "TestNotificationChannelResponse",
        query: &[],
    },
    Route {
        method: "get",
        path: "/v1/notification-deliveries",
        operation: "ListNotificationDeliveries",
        summary: "List the deliveries of an incident's notifications or to a channel, newest first, each with its attempts",
        role: "read",
        request: None,
        response: "ListNotificationDeliveriesResponse",
        query: DELIVERIES_QUERY,
    },
    Route {
        method: "get",
        path: "/v1/incidents",
        operation: "ListIncidents",
        summary: "List incidents: open ones first, then by opening time, newest first",
        role: "read",
        request: None,
        response: "ListIncidentsResponse",
        query: INCIDENTS_QUERY,
    },
    Route {
        method: "get",
        path: "/v1/incidents/{id}",
        operation: "GetIncident",
        summary: "Get one incident with its timeline",
        role: "read",
        request: None,
        response: "GetIncidentResponse",
        query: &[],
    },
    Route {
        method: "post",
        path: "/v1/incidents/{id}/acknowledge",
        operation: "AcknowledgeIncident",
        summary: "Acknowledge an open incident (reminders stop); optional body {\"comment\": ...}; changed is false if it already was",
        role: "write",
        request: Some("AcknowledgeIncidentRequest"),
        response: "AcknowledgeIncidentResponse",
        query: &[],
    },
    Route {
        method: "post",
        path: "/v1/incidents/{id}/resolve",
        operation: "ResolveIncident",
        summary: "Resolve an incident by hand; optional body {\"comment\": ...}; changed is false if it already was",
        role: "write",
        request: Some("ResolveIncidentRequest"),
        response: "ResolveIncidentResponse",
        query: &[],
    },
    Route {
        method: "get",
        path: "/v1/info",
        operation: "GetServerInfo",
        summary: "Server name, version, uptime and job counts",
        role: "read",
        request: None,
        response: "GetServerInfoResponse",
        query: &[],
    },
    Route {
        method: "post",
        path: "/v1/admin/reset",
        operation: "ResetDatabase",
        summary: "Delete every job and all metrics (needs confirm: true)",
        role: "admin",
        request: Some("ResetDatabaseRequest"),
        response: "ResetDatabaseResponse",
        query: &[],
    },
    Route {
        method: "get",
        path: "/",
        operation: "LegacyInfo",
        summary: "Proof-of-concept alias of /v1/info",
        role: "read",
        request: None,
        response: "GetServerInfoResponse",
        query: &[],
    },
    Route {
        method: "get",
        path: "/job",
        operation: "LegacyListJobs",
        summary: "Proof-of-concept alias of GET /v1/jobs",
        role: "read",
        request: None,
        response: "ListJobsResponse",
        query: LIST_QUERY,
    },
    Route {
        method: "get",
        path: "/job/{id}",
        operation: "LegacyGetJob",
        summary: "Proof-of-concept alias of GET /v1/jobs/{id}",
        role: "read",
        request: None,
        response: "GetJobResponse",
        query: &[],
    },
    Route {
        method: "post",
        path: "/job/{id}/start",
        operation: "LegacyStartJob",
        summary: "Proof-of-concept alias of POST /v1/jobs/{id}/start (GET also accepted)",
        role: "write",
        request: None,
        response: "StartJobResponse",
        query: &[],
    },
    Route {
        method: "post",
        path: "/job/{id}/stop",
        operation: "LegacyStopJob",
        summary: "Proof-of-concept alias of POST /v1/jobs/{id}/stop (GET also accepted)",
        role: "write",
        request: None,
        response: "StopJobResponse",
        query: &[],
    },
    Route {
        method: "post",
        path: "/db/init",
        operation: "LegacyDbInit",
        summary: "Proof-of-concept database reset; admin only, disabled without an admin token",
        role: "admin",
        request: None,
        response: "ResetDatabaseResponse",
        query: &[],
    },
];

/// Every (method, path) the document lists, for tests.
pub fn documented_routes() -> Vec<(&'static str, &'static str)> {
    ROUTES.iter().map(|r| (r.method, r.path)).collect()
}

fn scalar_schema(field: &FieldDescriptorProto) -> Value {
    match field.r#type() {
        Type::Double | Type::Float => json!({"type": "number"}),
        Type::Int64 | Type::Sint64 | Type::Sfixed64 => json!({"type": "string", "format": "int64"}),
        Type::Uint64 | Type::Fixed64 => json!({"type": "string", "format": "uint64"}),
        Type::Int32 | Type::Sint32 | Type::Sfixed32 => json!({"type": "integer", "format": "int32"}),
        Type::Uint32 | Type::Fixed32 => json!({"type": "integer", "format": "uint32"}),
        Type::Bool => json!({"type": "boolean"}),
        Type::String => json!({"type": "string"}),
        Type::Bytes => json!({"type": "string", "format": "byte"}),
        Type::Enum | Type::Message | Type::Group => type_ref(field.type_name()),
    }
}

fn type_ref(type_name: &str) -> Value {
    match type_name {
        ".google.protobuf.Duration" => {
            json!({"type": "string", "example": "30s", "description": "seconds with an s suffix"})
        }
        ".google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
        ".google.protobuf.FieldMask" => json!({"type": "string", "example": "name,interval"}),
        other => json!({"$ref": format!("#/components/schemas/{}", other.trim_start_matches(".monitor.v1."))}),
    }
}

fn message_schema(message: &DescriptorProto) -> Value {
    let mut properties = Map::new();
    for field in &message.field {
        let map_entry = message.nested_type.iter().find(|n| {
            field.type_name().ends_with(&format!(".{}", n.name())) && n.options.as_ref().is_some_and(|o| o.map_entry())
        });
        let schema = if let Some(entry) = map_entry {
            json!({"type": "object", "additionalProperties": scalar_schema(&entry.field[1])})
        } else if field.label() == Label::Repeated {
            json!({"type": "array", "items": scalar_schema(field)})
        } else {
            scalar_schema(field)
        };
        properties.insert(field.json_name().to_owned(), schema);
    }
    json!({"type": "object", "properties": properties, "additionalProperties": false})
}

/// Builds the document from the encoded descriptor set of `monitor.v1`.
pub fn document(descriptors: &[u8]) -> Value {
    let set = FileDescriptorSet::decode(descriptors).expect("the compiled descriptor set decodes");
    let mut schemas = Map::new();
    for file in set.file.iter().filter(|f| f.package() == "monitor.v1") {
        for message in &file.message_type {
            schemas.insert(message.name().to_owned(), message_schema(message));
        }
        for enumeration in &file.enum_type {
            let values: Vec<_> = enumeration.value.iter().map(|v| v.name().to_owned()).collect();
            schemas.insert(enumeration.name().to_owned(), json!({"type": "string", "enum": values}));
        }
    }
    schemas.insert(
        "Status".into(),
        json!({
            "type": "object",
            "description": "google.rpc.Status: every error, with field violations for INVALID_ARGUMENT",
            "properties": {
                "code": {"type": "integer", "description": "gRPC status code"},
                "message": {"type": "string"},
                "details": {"type": "array", "items": {"type": "object", "properties": {
                    "@type": {"type": "string"},
                    "fieldViolations": {"type": "array", "items": {"type": "object", "properties": {
                        "field": {"type": "string"}, "description": {"type": "string"}}}}
                }}}
            }
        }),
    );
    let mut paths = Map::new();
    for route in ROUTES {
        let mut parameters: Vec<Value> = Vec::new();
        if route.path.contains("{id}") {
            parameters.push(
                json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}),
            );
        }
        for (name, kind, description) in route.query {
            parameters.push(json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": kind}}));
        }
        let success = if CREATES.contains(&route.operation) {
            "201"
        } else {
            "200"
        };
        let ok_schema = if route.response.is_empty() {
            json!({"type": "object", "properties": {"status": {"type": "string"}, "checks": {"type": "object"}}})
        } else {
            type_ref(&format!(".monitor.v1.{}", route.response))
        };
        let mut operation = json!({
            "operationId": route.operation,
            "summary": route.summary,
            "description": format!("Needs a token with the {} role when tokens are configured.", route.role),
            "parameters": parameters,
            "responses": {
                success: {"description": "OK", "content": {"application/json": {"schema": ok_schema}}},
                "default": {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}}}
            }
        });
        if let Some(request) = route.request {
            // Acknowledge and resolve take an optional body.
            let required = !request.ends_with("IncidentRequest");
            operation["requestBody"] = json!({"required": required, "content": {"application/json": {"schema": type_ref(&format!(".monitor.v1.{request}"))}}});
        }
        if route.role != "public" {
            operation["security"] = json!([{"bearer": []}]);
        }
        let entry = paths.entry(route.path).or_insert_with(|| json!({}));
        entry[route.method] = operation;
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "monitor REST gateway", "version": env!("CARGO_PKG_VERSION"),
                 "description": "JSON over the monitor.v1 gRPC contract (canonical proto3 JSON mapping)."},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_follow_the_proto3_json_mapping() {
        let doc = document(monitor_proto::FILE_DESCRIPTOR_SET);
        let job = &doc["components"]["schemas"]["Job"]["properties"];
        assert_eq!(job["version"]["type"], "string", "int64 is a string");
        assert_eq!(job["interval"]["example"], "30s");
        assert_eq!(job["labels"]["additionalProperties"]["type"], "string");
        assert_eq!(job["desiredState"]["$ref"], "#/components/schemas/JobState");
        assert_eq!(job["http"]["$ref"], "#/components/schemas/HttpCheck");
        let http = &doc["components"]["schemas"]["HttpCheck"]["properties"];
        assert_eq!(http["headers"]["type"], "array");
        assert_eq!(http["body"]["format"], "byte");
        assert!(doc["paths"]["/v1/jobs/{id}"]["patch"]["requestBody"].is_object());
        let point = &doc["components"]["schemas"]["MetricPoint"]["properties"];
        assert_eq!(point["rtMin"]["type"], "number");
        assert_eq!(point["rtCount"]["format"], "int64");
        assert_eq!(point["statusCounts"]["additionalProperties"]["format"], "int64");
        let metrics = &doc["paths"]["/v1/jobs/{id}/metrics"]["get"];
        assert_eq!(metrics["operationId"], "QueryMetrics");
        assert_eq!(
            metrics["parameters"].as_array().unwrap().len(),
            6,
            "id and five query parameters"
        );
        assert_eq!(
            doc["paths"]["/v1/alert-rules"]["post"]["responses"]["201"]["description"],
            "OK"
        );
        assert_eq!(
            doc["paths"]["/v1/incidents/{id}/acknowledge"]["post"]["requestBody"]["required"],
            false
        );
        assert_eq!(
            doc["paths"]["/v1/incidents"]["get"]["parameters"]
                .as_array()
                .unwrap()
                .len(),
            5
        );
        let rule = &doc["components"]["schemas"]["AlertRule"]["properties"];
        assert_eq!(rule["severity"]["$ref"], "#/components/schemas/Severity");
        assert_eq!(rule["flapWindow"]["example"], "30s");
        // Every $ref points at a schema that exists.
        let text = doc.to_string();
        for part in text.split("#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap();
            assert!(doc["components"]["schemas"][name].is_object(), "missing schema {name}");
        }
    }
}
