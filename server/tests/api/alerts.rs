//! AlertService over gRPC, REST and grpcurl: rules and silences end to end
//! with every validated field refused (and nothing stored), version
//! conflicts, access, and acknowledging and resolving incidents inserted
//! straight into the database (no evaluator runs in these tests), with
//! their timeline and notification outbox rows.

use std::collections::HashMap;

use chrono::{TimeDelta, Utc};
use diesel::{ExpressionMethods, QueryDsl};
use monitor_proto::{
    duration,
    v1::{
        AcknowledgeIncidentRequest, AlertRule, CreateAlertRuleRequest, CreateSilenceRequest, DeleteAlertRuleRequest,
        DeleteSilenceRequest, GetAlertRuleRequest, GetIncidentRequest, GetSilenceRequest, IncidentState,
        ListAlertRulesRequest, ListIncidentsRequest, ListSilencesRequest, ResolveIncidentRequest, Severity, Silence,
        UpdateAlertRuleRequest, UpdateSilenceRequest, WeeklyRecurrence, alert_service_client::AlertServiceClient,
    },
};
use monitor_server::{auth::Tokens, server::ServerOptions};
use monitor_store::{
    DbPool,
    diesel_async::RunQueryDsl,
    models::{
        incident::{self, IncidentRow, OutboxRow},
        notification_channel,
    },
    schema::incidents,
};
use monitor_testkit::server::{ADMIN_TOKEN, AuthedChannel, READ_TOKEN, TestServer, WRITE_TOKEN};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tonic::Code;
use uuid::Uuid;

use crate::harness::violated_fields;

/// The test tokens, the write one named `alice`, the read one `grafana`,
/// the admin one unnamed (so `admin#3`).
fn named_tokens() -> Tokens {
    Tokens::parse(
        "tests",
        &format!("read/grafana:{READ_TOKEN},write/alice:{WRITE_TOKEN},admin:{ADMIN_TOKEN}"),
    )
    .unwrap()
}

async fn server_with_named_tokens() -> TestServer {
    TestServer::builder()
        .options(ServerOptions {
            tokens: named_tokens(),
            ..ServerOptions::default()
        })
        .start()
        .await
}

fn rule(name: &str) -> AlertRule {
    AlertRule {
        name: name.into(),
        ..Default::default()
    }
}

/// A webhook channel written straight into the database (rules must name
/// channels that exist).
async fn insert_channel(pool: &DbPool, name: &str) -> Uuid {
    let fields = notification_channel::ChannelFields {
        name: name.into(),
        kind: "webhook".into(),
        settings: json!({"url": "https://hooks.example.com/in"}),
        enabled: true,
        group_wait_ms: 0,
    };
    notification_channel::insert(&mut pool.get().await.unwrap(), &fields)
        .await
        .unwrap()
        .id
}

async fn create_rule(alerts: &mut AlertServiceClient<AuthedChannel>, rule: AlertRule) -> AlertRule {
    alerts
        .create_alert_rule(CreateAlertRuleRequest { rule: Some(rule) })
        .await
        .expect("CreateAlertRule")
        .into_inner()
        .rule
        .unwrap()
}

async fn rule_count(alerts: &mut AlertServiceClient<AuthedChannel>) -> i64 {
    alerts
        .list_alert_rules(ListAlertRulesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .total_size
}

#[tokio::test]
async fn rules_round_trip_with_defaults_paging_masks_and_versions() {
    let server = TestServer::start().await;
    let mut alerts = server.alerts_as(None);
    let created = create_rule(&mut alerts, rule("b web down")).await;
    assert_eq!(created.version, 1);
    assert_eq!(
        (
            created.failure_threshold,
            created.success_threshold,
            created.min_failing_locations
        ),
        (3, 2, 1),
        "defaults are stored"
    );
    assert_eq!(created.severity, Severity::Critical as i32);
    assert_eq!(created.flap_window, Some(duration::from_millis(600_000)));
    assert_eq!(
        (created.no_data, created.notify_on_resolve, created.enabled),
        (Some(true), Some(true), Some(true))
    );
    let got = alerts
        .get_alert_rule(GetAlertRuleRequest { id: created.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .rule
        .unwrap();
    assert_eq!(got, created);

    let job = Uuid::now_v7().to_string();
    let channel = insert_channel(&server.pool, "web hook").await.to_string();
    create_rule(
        &mut alerts,
        AlertRule {
            job_ids: vec![job.clone()],
            channel_ids: vec![channel.clone()],
            label_selector: HashMap::from([("team".into(), "web".into())]),
            severity: Severity::Warning as i32,
            repeat_interval: Some(duration::from_millis(3_600_000)),
            ..rule("a selected")
        },
    )
    .await;
    create_rule(&mut alerts, rule("c third")).await;

    // By name, two at a time.
    let first = alerts
        .list_alert_rules(ListAlertRulesRequest {
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.total_size, 3);
    let names: Vec<_> = first.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["a selected", "b web down"]);
    assert_eq!(first.rules[0].job_ids, [job]);
    assert_eq!(first.rules[0].channel_ids, [channel]);
    let second = alerts
        .list_alert_rules(ListAlertRulesRequest {
            page_size: 2,
            page_token: first.next_page_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.rules.len(), 1);
    assert_eq!(second.rules[0].name, "c third");
    assert!(second.next_page_token.is_empty());
    let forged = alerts
        .list_alert_rules(ListAlertRulesRequest {
            page_size: 2,
            page_token: "bm9wZQ".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&forged), ["page_token"]);

    // A masked update changes only what it names.
    let renamed = alerts
        .update_alert_rule(UpdateAlertRuleRequest {
            rule: Some(AlertRule {
                id: created.id.clone(),
                version: 1,
                name: "b renamed".into(),
                failure_threshold: 9,
                ..Default::default()
            }),
            update_mask: Some(pbjson_types::FieldMask {
                paths: vec!["name".into()],
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .rule
        .unwrap();
    assert_eq!((renamed.name.as_str(), renamed.version), ("b renamed", 2));
    assert_eq!(renamed.failure_threshold, 3);
    // A change that changes nothing keeps the version.
    let same = alerts
        .update_alert_rule(UpdateAlertRuleRequest {
            rule: Some(renamed.clone()),
            update_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .rule
        .unwrap();
    assert_eq!(same.version, 2);
    // A stale version is refused, and so is an unknown mask path.
    let stale = alerts
        .update_alert_rule(UpdateAlertRuleRequest {
            rule: Some(AlertRule {
                version: 1,
                ..renamed.clone()
            }),
            update_mask: None,
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted, "{stale:?}");
    assert!(stale.message().contains("version 2"), "{}", stale.message());
    let bad_mask = alerts
        .update_alert_rule(UpdateAlertRuleRequest {
            rule: Some(renamed.clone()),
            update_mask: Some(pbjson_types::FieldMask {
                paths: vec!["version".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&bad_mask), ["update_mask.paths[0]"]);
    let taken = alerts
        .update_alert_rule(UpdateAlertRuleRequest {
            rule: Some(AlertRule {
                name: "c third".into(),
                ..renamed.clone()
            }),
            update_mask: None,
        })
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists, "{taken:?}");

    let duplicate = alerts
        .create_alert_rule(CreateAlertRuleRequest {
            rule: Some(rule("c third")),
        })
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), Code::AlreadyExists);
    assert!(duplicate.message().contains("\"c third\""), "{}", duplicate.message());

    let wrong_version = alerts
        .delete_alert_rule(DeleteAlertRuleRequest {
            id: created.id.clone(),
            version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(wrong_version.code(), Code::Aborted);
    alerts
        .delete_alert_rule(DeleteAlertRuleRequest {
            id: created.id.clone(),
            version: 2,
        })
        .await
        .unwrap();
    let gone = alerts
        .get_alert_rule(GetAlertRuleRequest { id: created.id.clone() })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    let malformed = alerts
        .get_alert_rule(GetAlertRuleRequest { id: "rule-1".into() })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&malformed), ["id"]);
    assert_eq!(rule_count(&mut alerts).await, 2);
}

#[tokio::test]
async fn every_invalid_rule_field_is_named_and_nothing_is_stored() {
    let server = TestServer::start().await;
    let mut alerts = server.alerts_as(None);
    create_rule(&mut alerts, rule("taken")).await;
    let id = Uuid::now_v7().to_string();
    let ms = duration::from_millis;
    let cases: Vec<(AlertRule, &str, &str)> = vec![
        (rule(""), "rule.name", "must not be empty"),
        (rule(&"n".repeat(129)), "rule.name", "at most 128"),
        (
            AlertRule {
                job_ids: vec!["job-1".into()],
                ..rule("x")
            },
            "rule.job_ids[0]",
            "not a UUID",
        ),
        (
            AlertRule {
                job_ids: vec![id.clone(), id.clone()],
                ..rule("x")
            },
            "rule.job_ids[1]",
            "listed twice",
        ),
        (
            AlertRule {
                job_ids: vec![id.clone(); 1001],
                ..rule("x")
            },
            "rule.job_ids",
            "at most 1000",
        ),
        (
            AlertRule {
                channel_ids: (0..21).map(|_| Uuid::now_v7().to_string()).collect(),
                ..rule("x")
            },
            "rule.channel_ids",
            "at most 20",
        ),
        (
            AlertRule {
                channel_ids: vec!["slack".into()],
                ..rule("x")
            },
            "rule.channel_ids[0]",
            "not a UUID",
        ),
        (
            AlertRule {
                label_selector: HashMap::from([("bad key".into(), "v".into())]),
                ..rule("x")
            },
            "rule.label_selector[\"bad key\"]",
            "key must be",
        ),
        (
            AlertRule {
                label_selector: HashMap::from([("team".into(), "v".repeat(257))]),
                ..rule("x")
            },
            "rule.label_selector[\"team\"]",
            "at most 256",
        ),
        (
            AlertRule {
                failure_threshold: 101,
                ..rule("x")
            },
            "rule.failure_threshold",
            "1 to 100",
        ),
        (
            AlertRule {
                success_threshold: 101,
                ..rule("x")
            },
            "rule.success_threshold",
            "1 to 100",
        ),
        (
            AlertRule {
                min_failing_locations: 65,
                ..rule("x")
            },
            "rule.min_failing_locations",
            "1 to 64",
        ),
        (
            AlertRule {
                min_failing_percent: 101,
                ..rule("x")
            },
            "rule.min_failing_percent",
            "0 to 100",
        ),
        (
            AlertRule {
                min_failing_percent: 50,
                min_failing_locations: 2,
                ..rule("x")
            },
            "rule.min_failing_percent",
            "together with min_failing_locations",
        ),
        (
            AlertRule {
                severity: 7,
                ..rule("x")
            },
            "rule.severity",
            "not a severity",
        ),
        (
            AlertRule {
                repeat_interval: Some(ms(30_000)),
                ..rule("x")
            },
            "rule.repeat_interval",
            "1 min",
        ),
        (
            AlertRule {
                repeat_interval: Some(ms(8 * 86_400_000)),
                ..rule("x")
            },
            "rule.repeat_interval",
            "7 days",
        ),
        (
            AlertRule {
                repeat_interval: Some(pbjson_types::Duration { seconds: -60, nanos: 0 }),
                ..rule("x")
            },
            "rule.repeat_interval",
            "negative",
        ),
        (
            AlertRule {
                flap_threshold: 1,
                ..rule("x")
            },
            "rule.flap_threshold",
            "2 to 100",
        ),
        (
            AlertRule {
                flap_window: Some(ms(25 * 3_600_000)),
                ..rule("x")
            },
            "rule.flap_window",
            "24 h",
        ),
        (
            AlertRule {
                flap_window: Some(ms(1_000)),
                ..rule("x")
            },
            "rule.flap_window",
            "1 min",
        ),
    ];
    for (bad, field, says) in cases {
        let err = alerts
            .create_alert_rule(CreateAlertRuleRequest { rule: Some(bad) })
            .await
            .unwrap_err();
        assert_eq!(violated_fields(&err), [field], "{err:?}");
        assert!(err.message().contains(says), "{field}: {}", err.message());
    }
    let missing = alerts
        .create_alert_rule(CreateAlertRuleRequest { rule: None })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&missing), ["rule"]);
    let taken = alerts
        .create_alert_rule(CreateAlertRuleRequest {
            rule: Some(rule("taken")),
        })
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists);
    assert_eq!(rule_count(&mut alerts).await, 1, "nothing was stored");
}

fn silence_for(hours: i64) -> Silence {
    let now = Utc::now();
    Silence {
        start_time: Some(now.into()),
        end_time: Some((now + TimeDelta::hours(hours)).into()),
        label_selector: HashMap::from([("team".into(), "web".into())]),
        comment: "deploy".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn silences_record_their_creator_and_list_current_ones_unless_asked() {
    let server = server_with_named_tokens().await;
    let mut alerts = server.alerts_as(Some(WRITE_TOKEN));
    let created = alerts
        .create_silence(CreateSilenceRequest {
            silence: Some(silence_for(2)),
        })
        .await
        .unwrap()
        .into_inner()
        .silence
        .unwrap();
    assert_eq!(created.created_by, "alice");
    assert!(created.active);
    assert_eq!(created.version, 1);
    let now = Utc::now();
    let weekly = alerts
        .create_silence(CreateSilenceRequest {
            silence: Some(Silence {
                start_time: Some((now + TimeDelta::days(1)).into()),
                end_time: Some((now + TimeDelta::days(30)).into()),
                recurrence: Some(WeeklyRecurrence {
                    days: vec!["sun".into()],
                    start: "02:00".into(),
                    duration: Some(duration::from_millis(7_200_000)),
                    time_zone: "Europe/Berlin".into(),
                }),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .silence
        .unwrap();
    assert!(!weekly.active, "it starts tomorrow");
    assert_eq!(weekly.recurrence.as_ref().unwrap().time_zone, "Europe/Berlin");

    // Latest end first; two per page.
    let listed = alerts
        .list_silences(ListSilencesRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 2);
    assert_eq!(listed.silences[0].id, weekly.id);
    let rest = alerts
        .list_silences(ListSilencesRequest {
            page_size: 1,
            page_token: listed.next_page_token,
            include_expired: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.silences[0].id, created.id);

    // Ending it now (an update may set an end that is already past) expires it.
    let ended = alerts
        .update_silence(UpdateSilenceRequest {
            silence: Some(Silence {
                id: created.id.clone(),
                version: 1,
                end_time: Some(Utc::now().into()),
                ..Default::default()
            }),
            update_mask: Some(pbjson_types::FieldMask {
                paths: vec!["end_time".into()],
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .silence
        .unwrap();
    assert_eq!((ended.version, ended.active), (2, false));
    assert_eq!(ended.comment, "deploy", "unmasked fields are kept");
    let current = alerts
        .list_silences(ListSilencesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(current.total_size, 1);
    let all = alerts
        .list_silences(ListSilencesRequest {
            include_expired: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.total_size, 2);

    let stale = alerts
        .update_silence(UpdateSilenceRequest {
            silence: Some(Silence {
                version: 1,
                ..ended.clone()
            }),
            update_mask: None,
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    alerts
        .delete_silence(DeleteSilenceRequest {
            id: ended.id.clone(),
            version: 0,
        })
        .await
        .unwrap();
    let gone = alerts
        .get_silence(GetSilenceRequest { id: ended.id })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
}

#[tokio::test]
async fn every_invalid_silence_field_is_named_and_nothing_is_stored() {
    let server = TestServer::start().await;
    let mut alerts = server.alerts_as(None);
    let now = Utc::now();
    let at = |delta: TimeDelta| Some((now + delta).into());
    let weekly = |days: &[&str], start: &str, ms: Option<i64>, zone: &str| Silence {
        recurrence: Some(WeeklyRecurrence {
            days: days.iter().map(|d| d.to_string()).collect(),
            start: start.into(),
            duration: ms.map(duration::from_millis),
            time_zone: zone.into(),
        }),
        ..silence_for(2)
    };
    let cases: Vec<(Silence, &str, &str)> = vec![
        (
            Silence {
                end_time: None,
                ..silence_for(2)
            },
            "silence.end_time",
            "is required",
        ),
        (
            Silence {
                end_time: at(TimeDelta::hours(-1)),
                ..silence_for(2)
            },
            "silence.end_time",
            "after start_time",
        ),
        (
            Silence {
                start_time: at(TimeDelta::hours(-5)),
                end_time: at(TimeDelta::hours(-1)),
                ..silence_for(2)
            },
            "silence.end_time",
            "in the past",
        ),
        (
            Silence {
                end_time: at(TimeDelta::days(401)),
                ..silence_for(2)
            },
            "silence.end_time",
            "400 days",
        ),
        (
            Silence {
                comment: "c".repeat(1025),
                ..silence_for(2)
            },
            "silence.comment",
            "1024",
        ),
        (
            Silence {
                job_ids: vec!["web".into()],
                ..silence_for(2)
            },
            "silence.job_ids[0]",
            "not a UUID",
        ),
        (
            Silence {
                label_selector: HashMap::from([("_x".into(), "v".into())]),
                ..silence_for(2)
            },
            "silence.label_selector[\"_x\"]",
            "key must be",
        ),
        (
            weekly(&[], "02:00", Some(3_600_000), ""),
            "silence.recurrence.days",
            "at least one day",
        ),
        (
            weekly(&["sunday"], "02:00", Some(3_600_000), ""),
            "silence.recurrence.days",
            "not a day",
        ),
        (
            weekly(&["sun"], "2am", Some(3_600_000), ""),
            "silence.recurrence.start",
            "HH:MM",
        ),
        (
            weekly(&["sun"], "02:00", Some(8 * 86_400_000), ""),
            "silence.recurrence.duration",
            "7 days",
        ),
        (
            weekly(&["sun"], "02:00", Some(3_600_000), "Atlantis/Capital"),
            "silence.recurrence.time_zone",
            "IANA",
        ),
    ];
    for (bad, field, says) in cases {
        let err = alerts
            .create_silence(CreateSilenceRequest { silence: Some(bad) })
            .await
            .unwrap_err();
        assert_eq!(violated_fields(&err), [field], "{err:?}");
        assert!(err.message().contains(says), "{field}: {}", err.message());
    }
    let listed = alerts
        .list_silences(ListSilencesRequest {
            include_expired: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 0, "nothing was stored");
}

/// An open incident of `rule_id` (if any) for a fresh job, opened
/// `minutes_ago`, inserted as the evaluator would.
async fn insert_incident(pool: &DbPool, rule_id: Option<&str>, minutes_ago: i64) -> Uuid {
    let opened_at = Utc::now() - TimeDelta::minutes(minutes_ago);
    let row = IncidentRow {
        id: Uuid::now_v7(),
        rule_id: rule_id.map(|id| Uuid::parse_str(id).unwrap()),
        rule_name: "web down".into(),
        job_id: Uuid::now_v7(),
        job_name: "web".into(),
        severity: "critical".into(),
        cause: "down".into(),
        opened_at,
        acknowledged_at: None,
        acknowledged_by: None,
        resolved_at: None,
        resolved_by: None,
        failing_locations: vec![Some("eu".into())],
        first_failure: Some(json!({
            "check_id": "check-1", "worker_id": "probe-eu-1", "location": "eu",
            "start_time": opened_at, "outcome": "CHECK_OUTCOME_CONNECT", "status_code": 0,
            "error": "connection refused"
        })),
        detected_check_end: Some(opened_at),
        silenced: false,
        flapping: false,
        updated_at: opened_at,
    };
    let mut conn = pool.get().await.unwrap();
    diesel::insert_into(incidents::table)
        .values(&row)
        .execute(&mut conn)
        .await
        .unwrap();
    row.id
}

async fn outbox(pool: &DbPool, id: Uuid) -> Vec<OutboxRow> {
    incident::outbox(&mut pool.get().await.unwrap(), id).await.unwrap()
}

#[tokio::test]
async fn acknowledging_and_resolving_by_hand_record_who_the_timeline_and_one_notification_each() {
    let server = server_with_named_tokens().await;
    let mut alice = server.alerts_as(Some(WRITE_TOKEN));
    let channel = insert_channel(&server.pool, "web hook").await;
    let rule = create_rule(
        &mut alice,
        AlertRule {
            channel_ids: vec![channel.to_string()],
            ..rule("web down")
        },
    )
    .await;
    let id = insert_incident(&server.pool, Some(&rule.id), 5).await;

    let acknowledged = alice
        .acknowledge_incident(AcknowledgeIncidentRequest {
            id: id.to_string(),
            comment: "looking".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(acknowledged.changed);
    let incident = acknowledged.incident.unwrap();
    assert_eq!(incident.state, IncidentState::Acknowledged as i32);
    assert_eq!(incident.acknowledged_by, "alice");
    assert!(incident.acknowledge_time.is_some());
    let event = &incident.timeline[0];
    assert_eq!(
        (event.kind.as_str(), event.actor.as_str(), event.detail.as_str()),
        ("acknowledged", "alice", "looking")
    );
    // Twice: nothing changes, no second event.
    let again = alice
        .acknowledge_incident(AcknowledgeIncidentRequest {
            id: id.to_string(),
            comment: "again".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!again.changed);
    assert_eq!(again.incident.unwrap().timeline.len(), 1);

    // The admin token has no name: it is called by role and position.
    let mut admin = server.alerts_as(Some(ADMIN_TOKEN));
    let resolved = admin
        .resolve_incident(ResolveIncidentRequest {
            id: id.to_string(),
            comment: "fixed the LB".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(resolved.changed);
    let incident = resolved.incident.unwrap();
    assert_eq!(incident.state, IncidentState::Resolved as i32);
    assert_eq!(incident.resolved_by, "admin#3");
    let downtime = incident.downtime.unwrap();
    assert!((299..=400).contains(&downtime.seconds), "{downtime:?}");
    let second = admin
        .resolve_incident(ResolveIncidentRequest {
            id: id.to_string(),
            comment: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!second.changed);
    let late = alice
        .acknowledge_incident(AcknowledgeIncidentRequest {
            id: id.to_string(),
            comment: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition, "{late:?}");
    assert!(late.message().contains("admin#3"), "{}", late.message());

    let timeline = admin
        .get_incident(GetIncidentRequest { id: id.to_string() })
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap()
        .timeline;
    let kinds: Vec<_> = timeline
        .iter()
        .map(|e| (e.kind.as_str(), e.actor.as_str(), e.detail.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("acknowledged", "alice", "looking"),
            ("resolved", "admin#3", "fixed the LB")
        ]
    );
    let sent: Vec<_> = outbox(&server.pool, id)
        .await
        .into_iter()
        .map(|row| (row.event, row.dedup_key, row.channel_ids))
        .collect();
    assert_eq!(
        sent,
        [
            (
                "acknowledged".to_owned(),
                format!("{id}:acknowledged"),
                vec![Some(channel)]
            ),
            ("resolved".to_owned(), format!("{id}:resolved"), vec![Some(channel)]),
        ],
        "exactly one notification per event"
    );

    let unknown = alice
        .acknowledge_incident(AcknowledgeIncidentRequest {
            id: Uuid::now_v7().to_string(),
            comment: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let malformed = alice
        .resolve_incident(ResolveIncidentRequest {
            id: "incident-1".into(),
            comment: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&malformed), ["id"]);
    let long = alice
        .acknowledge_incident(AcknowledgeIncidentRequest {
            id: insert_incident(&server.pool, None, 1).await.to_string(),
            comment: "c".repeat(1025),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&long), ["comment"]);
}

#[tokio::test]
async fn a_resolve_notifies_only_when_the_rule_asks_or_is_gone_and_never_twice() {
    let server = TestServer::start().await;
    let mut alerts = server.alerts_as(None);
    let quiet = create_rule(
        &mut alerts,
        AlertRule {
            notify_on_resolve: Some(false),
            ..rule("quiet")
        },
    )
    .await;
    let id = insert_incident(&server.pool, Some(&quiet.id), 2).await;
    let resolved = alerts
        .resolve_incident(ResolveIncidentRequest {
            id: id.to_string(),
            comment: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resolved.incident.unwrap().resolved_by, "anonymous", "dev mode");
    assert!(outbox(&server.pool, id).await.is_empty());

    // The rule was deleted since: the resolve still tells (nobody in
    // particular; the dispatcher decides), and the evaluator's later
    // resolve with the same key adds nothing.
    let orphan = insert_incident(&server.pool, None, 2).await;
    let mut conn = server.pool.get().await.unwrap();
    let evaluator_first = incident::enqueue(
        &mut conn,
        &incident::NewOutboxEntry {
            dedup_key: incident::dedup_key(orphan, "resolved"),
            incident_id: orphan,
            event: "resolved".into(),
            channel_ids: Vec::new(),
        },
    )
    .await
    .unwrap();
    assert!(evaluator_first);
    alerts
        .resolve_incident(ResolveIncidentRequest {
            id: orphan.to_string(),
            comment: String::new(),
        })
        .await
        .unwrap();
    let rows = outbox(&server.pool, orphan).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].dedup_key, format!("{orphan}:resolved"));
}

#[tokio::test]
async fn incidents_list_open_first_then_newest_with_filters_and_pages() {
    let server = TestServer::start().await;
    let mut alerts = server.alerts_as(None);
    let rule = create_rule(&mut alerts, rule("web down")).await;
    let old_open = insert_incident(&server.pool, Some(&rule.id), 60).await;
    let resolved = insert_incident(&server.pool, Some(&rule.id), 5).await;
    let new_open = insert_incident(&server.pool, None, 30).await;
    let acknowledged = insert_incident(&server.pool, None, 40).await;
    {
        let mut conn = server.pool.get().await.unwrap();
        diesel::update(incidents::table.find(resolved))
            .set(incidents::resolved_at.eq(Utc::now()))
            .execute(&mut conn)
            .await
            .unwrap();
        diesel::update(incidents::table.find(acknowledged))
            .set(incidents::acknowledged_at.eq(Utc::now()))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = alerts
            .list_incidents(ListIncidentsRequest {
                page_size: 3,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.total_size, 4);
        seen.extend(page.incidents.iter().map(|i| Uuid::parse_str(&i.id).unwrap()));
        assert!(page.incidents.iter().all(|i| i.timeline.is_empty()));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, [new_open, acknowledged, old_open, resolved]);

    let only = |state: IncidentState, job_id: String, rule_id: String| ListIncidentsRequest {
        state: state as i32,
        job_id,
        rule_id,
        ..Default::default()
    };
    let ids = |response: monitor_proto::v1::ListIncidentsResponse| -> Vec<Uuid> {
        response
            .incidents
            .iter()
            .map(|i| Uuid::parse_str(&i.id).unwrap())
            .collect()
    };
    let open = alerts
        .list_incidents(only(IncidentState::Open, String::new(), String::new()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(open), [new_open, old_open]);
    let acked = alerts
        .list_incidents(only(IncidentState::Acknowledged, String::new(), String::new()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(acked), [acknowledged]);
    let of_rule = alerts
        .list_incidents(only(IncidentState::Unspecified, String::new(), rule.id.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(of_rule), [old_open, resolved]);
    let job_id = alerts
        .get_incident(GetIncidentRequest {
            id: new_open.to_string(),
        })
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap()
        .job_id;
    let of_job = alerts
        .list_incidents(only(IncidentState::Unspecified, job_id, String::new()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(of_job), [new_open]);
    let bad = alerts
        .list_incidents(only(IncidentState::Unspecified, "web".into(), String::new()))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&bad), ["job_id"]);
}

#[tokio::test]
async fn rules_silences_and_incidents_over_rest() {
    let server = server_with_named_tokens().await;
    let http = reqwest::Client::new();
    let auth = format!("Bearer {WRITE_TOKEN}");
    let created = http
        .post(server.url("/v1/alert-rules"))
        .header("authorization", &auth)
        .json(
            &json!({"name": "web down", "failureThreshold": 5, "repeatInterval": "3600s",
                      "labelSelector": {"team": "web"}, "severity": "SEVERITY_WARNING"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let rule: Value = created.json().await.unwrap();
    let rule = &rule["rule"];
    assert_eq!(rule["failureThreshold"], 5);
    assert_eq!(rule["successThreshold"], 2);
    assert_eq!(rule["repeatInterval"], "3600s");
    assert_eq!(rule["version"], "1");
    let id = rule["id"].as_str().unwrap().to_owned();

    let patched = http
        .patch(server.url(&format!("/v1/alert-rules/{id}")))
        .header("authorization", &auth)
        .json(&json!({"version": "1", "enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::OK);
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(patched["rule"]["enabled"], false);
    assert_eq!(patched["rule"]["failureThreshold"], 5, "unnamed fields kept");
    let stale = http
        .patch(server.url(&format!("/v1/alert-rules/{id}")))
        .header("authorization", &auth)
        .json(&json!({"version": "1", "enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::CONFLICT);
    let invalid = http
        .post(server.url("/v1/alert-rules"))
        .header("authorization", &auth)
        .json(&json!({"name": "x", "flapThreshold": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), StatusCode::BAD_REQUEST);
    let invalid: Value = invalid.json().await.unwrap();
    assert_eq!(
        invalid["details"][0]["fieldViolations"][0]["field"],
        "rule.flap_threshold"
    );
    let listed: Value = http
        .get(server.url("/v1/alert-rules?pageSize=10"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["totalSize"], "1");

    let end = (Utc::now() + TimeDelta::hours(1)).to_rfc3339();
    let silence = http
        .post(server.url("/v1/silences"))
        .header("authorization", &auth)
        .json(&json!({"endTime": end, "comment": "deploy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(silence.status(), StatusCode::CREATED);
    let silence: Value = silence.json().await.unwrap();
    assert_eq!(silence["silence"]["createdBy"], "alice");
    assert_eq!(silence["silence"]["active"], true);
    let silence_id = silence["silence"]["id"].as_str().unwrap();
    let listed: Value = http
        .get(server.url("/v1/silences?includeExpired=true"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["silences"][0]["id"], silence_id);
    let deleted = http
        .delete(server.url(&format!("/v1/silences/{silence_id}?version=2")))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::CONFLICT);

    let incident = insert_incident(&server.pool, Some(&id), 3).await;
    // Acknowledge without a body, resolve with a comment.
    let acknowledged = http
        .post(server.url(&format!("/v1/incidents/{incident}/acknowledge")))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(acknowledged.status(), StatusCode::OK);
    let acknowledged: Value = acknowledged.json().await.unwrap();
    assert_eq!(acknowledged["changed"], true);
    assert_eq!(acknowledged["incident"]["acknowledgedBy"], "alice");
    assert_eq!(acknowledged["incident"]["state"], "INCIDENT_STATE_ACKNOWLEDGED");
    let open: Value = http
        .get(server.url("/v1/incidents?state=acknowledged"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(open["incidents"][0]["id"], incident.to_string());
    assert_eq!(open["incidents"][0]["firstFailure"]["outcome"], "CHECK_OUTCOME_CONNECT");
    let bad_state = http
        .get(server.url("/v1/incidents?state=sleeping"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(bad_state.status(), StatusCode::BAD_REQUEST);
    for round in [true, false] {
        let resolved = http
            .post(server.url(&format!("/v1/incidents/{incident}/resolve")))
            .header("authorization", &auth)
            .json(&json!({"comment": "rolled back"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resolved.status(), StatusCode::OK);
        let resolved: Value = resolved.json().await.unwrap();
        // proto3 JSON leaves `false` out.
        assert_eq!(resolved["changed"].as_bool().unwrap_or(false), round);
    }
    let late = http
        .post(server.url(&format!("/v1/incidents/{incident}/acknowledge")))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(late.status(), StatusCode::BAD_REQUEST, "FAILED_PRECONDITION is 400");
    let late: Value = late.json().await.unwrap();
    assert_eq!(late["code"], Code::FailedPrecondition as i32);
    let detail: Value = http
        .get(server.url(&format!("/v1/incidents/{incident}")))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let timeline = detail["incident"]["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), 2);
    assert_eq!(timeline[1]["detail"], "rolled back");
    let resolves = outbox(&server.pool, incident)
        .await
        .into_iter()
        .filter(|row| row.event == "resolved")
        .count();
    assert_eq!(resolves, 1);
}

#[tokio::test]
async fn reading_needs_read_and_changing_needs_write() {
    let server = server_with_named_tokens().await;
    let mut reader = server.alerts_as(Some(READ_TOKEN));
    let mut nobody = server.alerts_as(None);
    let mut writer = server.alerts_as(Some(WRITE_TOKEN));
    let rule_id = create_rule(&mut writer, rule("web down")).await.id;
    let incident = insert_incident(&server.pool, Some(&rule_id), 1).await.to_string();

    assert_eq!(rule_count(&mut reader).await, 1);
    let denied = reader
        .create_alert_rule(CreateAlertRuleRequest {
            rule: Some(rule("mine")),
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let denied = reader
        .acknowledge_incident(AcknowledgeIncidentRequest {
            id: incident.clone(),
            comment: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let refused = nobody
        .list_incidents(ListIncidentsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);

    let http = reqwest::Client::new();
    let ack = |token: Option<&str>| {
        let mut request = http.post(server.url(&format!("/v1/incidents/{incident}/acknowledge")));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        request.send()
    };
    assert_eq!(ack(None).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(ack(Some(READ_TOKEN)).await.unwrap().status(), StatusCode::FORBIDDEN);
    let listed = http
        .get(server.url("/v1/incidents"))
        .header("authorization", format!("Bearer {READ_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    let got = writer
        .get_incident(GetIncidentRequest { id: incident })
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    assert_eq!(got.state, IncidentState::Open as i32, "nothing was acknowledged");
}

#[tokio::test]
async fn grpcurl_lists_and_calls_the_alert_service() {
    let server = TestServer::start().await;
    let describe = crate::grpcurl::grpcurl(&server, &["describe monitor.v1.AlertService"]).await;
    assert!(describe.success, "{}", describe.stderr);
    assert!(
        describe.stdout.contains("rpc AcknowledgeIncident"),
        "{}",
        describe.stdout
    );
    let created = crate::grpcurl::call(
        &server,
        "monitor.v1.AlertService/CreateAlertRule",
        r#"{"rule": {"name": "from grpcurl", "flapThreshold": 3}}"#,
    )
    .await;
    assert_eq!(created["rule"]["flapThreshold"], 3);
    assert_eq!(created["rule"]["flapWindow"], "600s");
    let listed = crate::grpcurl::call(
        &server,
        "monitor.v1.AlertService/ListIncidents",
        r#"{"state": "INCIDENT_STATE_OPEN"}"#,
    )
    .await;
    assert_eq!(listed, json!({}), "no incidents (proto3 JSON leaves zero values out)");
}
