//! The alert evaluator against the real broker and PostgreSQL: results are
//! produced to a fresh topic (or by a real probe checking the mock), and
//! the incidents, timelines and notification intents it commits are
//! compared with what the rules say, after crashes too. Waiting is on the
//! evaluator's stored offsets (its flush commits them with what it decided),
//! never on time.

mod common;

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, QueryDsl, SelectableHelper};
use monitor_proto::v1::{CheckOutcome, CheckResult, HttpResult, check_result::Detail};
use monitor_store::{
    diesel_async::RunQueryDsl,
    models::{
        consumer_offsets,
        incident::{FirstFailure, IncidentEventRow, IncidentRow},
        job::{self, JobFields, STATE_RUNNING},
    },
    schema::{incident_events, incidents, notification_outbox},
    testing::TestDb,
};
use monitor_testkit::{
    fresh,
    kafka::{create_topic, producer, shared_brokers},
    mock::MockServer,
    server::TestServer,
    wait_until,
};
use monitor_worker::alert::{
    AlertArgs, Evaluator,
    catalog::{JobInfo, Rule},
    evaluate::{self, AlertState, Effect, Observed, Subject},
};
use prost::Message as _;
use rdkafka::producer::FutureRecord;
use tokio::sync::watch;
use uuid::Uuid;

/// A topic, a group and a database of one test.
struct Setup {
    db: Arc<TestDb>,
    topic: String,
    group: String,
}

impl Setup {
    async fn new(partitions: i32) -> Setup {
        let topic = fresh("alert-checks");
        create_topic(&shared_brokers(), &topic, partitions, 1).await;
        Setup {
            db: Arc::new(TestDb::new().await),
            topic,
            group: fresh("alert"),
        }
    }

    fn flags(&self) -> Vec<String> {
        [
            "--database-url",
            &self.db.url,
            "--kafka-brokers",
            &shared_brokers(),
            "--kafka-topic",
            &self.topic,
            "--group-id",
            &self.group,
            "--flush-interval-ms",
            "50",
            "--reload-interval-ms",
            "300",
            "--tick-interval-ms",
            "200",
            "--session-timeout-ms",
            "6000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// An evaluator in this process; stops when the sender flips to true.
    fn evaluator(&self, extra: &[&str]) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
        let flags = std::iter::once("alert".to_string())
            .chain(self.flags())
            .chain(extra.iter().map(|s| s.to_string()));
        let args = AlertArgs::from_flags(flags).unwrap();
        let evaluator = Evaluator::new(args, self.db.pool()).unwrap();
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            evaluator.run(stopped).await.unwrap();
        });
        (stop, task)
    }

    async fn job(&self, name: &str, locations: &[&str]) -> Uuid {
        let pool = self.db.pool();
        let mut conn = pool.get().await.unwrap();
        let fields = JobFields {
            name: name.into(),
            labels: serde_json::json!({"team": "shop"}),
            check_kind: "http".into(),
            check_spec: serde_json::json!({"url": "http://shop.example/"}),
            interval_ms: 10_000,
            timeout_ms: 1_000,
            desired_state: STATE_RUNNING.into(),
            locations: serde_json::json!(locations),
        };
        job::insert(&mut conn, &fields).await.unwrap().id
    }

    /// A rule over every job; `set` is SQL assignments over the defaults
    /// (`failure_threshold = 3, ...`). No data is off unless `set` says so.
    async fn rule(&self, name: &str, set: &str) -> Uuid {
        let id = Uuid::now_v7();
        let pool = self.db.pool();
        let mut conn = pool.get().await.unwrap();
        diesel::sql_query(format!(
            "INSERT INTO alert_rules (id, name, no_data, channel_ids) VALUES ('{id}', '{name}', false, '{{{}}}')",
            Uuid::from_u128(42)
        ))
        .execute(&mut conn)
        .await
        .unwrap();
        if !set.is_empty() {
            diesel::sql_query(format!("UPDATE alert_rules SET {set} WHERE id = '{id}'"))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        id
    }

    /// Waits until the stored state of `job` (its only rule) satisfies `want`.
    async fn wait_state(&self, job: Uuid, what: &str, want: impl Fn(&AlertState) -> bool) {
        use monitor_store::schema::alert_state;
        let pool = self.db.pool();
        wait_until(what, Duration::from_secs(30), || async {
            let mut conn = pool.get().await.unwrap();
            let stored: Vec<serde_json::Value> = alert_state::table
                .filter(alert_state::job_id.eq(job))
                .select(alert_state::state)
                .load(&mut conn)
                .await
                .unwrap();
            let states: Vec<AlertState> = stored.into_iter().map(|s| serde_json::from_value(s).unwrap()).collect();
            match states.iter().any(&want) {
                true => Ok(()),
                false => Err(format!("{states:?}")),
            }
        })
        .await;
    }

    async fn sql(&self, statement: &str) {
        let pool = self.db.pool();
        let mut conn = pool.get().await.unwrap();
        diesel::sql_query(statement).execute(&mut conn).await.unwrap();
    }

    /// Produces `results` and waits until the evaluator has committed what
    /// it decided on them (its stored offsets reach the topic's ends).
    async fn evaluate(&self, results: &[CheckResult]) {
        let ends = self.produce(results).await;
        self.wait_accounted(&ends).await;
    }

    async fn produce(&self, results: &[CheckResult]) -> HashMap<i32, i64> {
        let producer = producer(&shared_brokers());
        let mut ends: HashMap<i32, i64> = HashMap::new();
        let mut pending = Vec::new();
        for result in results {
            let value = result.encode_to_vec();
            let record = FutureRecord::to(&self.topic)
                .key(result.job_id.as_bytes())
                .payload(&value);
            pending.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
        }
        for delivery in pending {
            let delivered = delivery.await.unwrap().unwrap();
            let end = ends.entry(delivered.partition).or_default();
            *end = (*end).max(delivered.offset + 1);
        }
        ends
    }

    async fn wait_accounted(&self, ends: &HashMap<i32, i64>) {
        let pool = self.db.pool();
        let partitions: Vec<i32> = ends.keys().copied().collect();
        wait_until("the evaluator's stored offsets", Duration::from_secs(60), || async {
            let mut conn = pool.get().await.unwrap();
            let stored = consumer_offsets::stored_offsets(&mut conn, &self.group, &self.topic, &partitions)
                .await
                .unwrap();
            match ends.iter().all(|(p, end)| stored.get(p) == Some(end)) {
                true => Ok(()),
                false => Err(format!("stored {stored:?}, ends {ends:?}")),
            }
        })
        .await;
    }

    async fn incidents(&self) -> Vec<IncidentRow> {
        let pool = self.db.pool();
        let mut conn = pool.get().await.unwrap();
        incidents::table
            .order((incidents::opened_at, incidents::id))
            .select(IncidentRow::as_select())
            .load(&mut conn)
            .await
            .unwrap()
    }

    /// (dedup key, event) of every notification intent, in write order.
    async fn outbox(&self) -> Vec<(String, String)> {
        let pool = self.db.pool();
        let mut conn = pool.get().await.unwrap();
        notification_outbox::table
            .order(notification_outbox::id)
            .select((notification_outbox::dedup_key, notification_outbox::event))
            .load(&mut conn)
            .await
            .unwrap()
    }

    async fn timeline(&self, incident: Uuid) -> Vec<String> {
        let pool = self.db.pool();
        let mut conn = pool.get().await.unwrap();
        let rows: Vec<IncidentEventRow> = incident_events::table
            .filter(incident_events::incident_id.eq(incident))
            .order(incident_events::id)
            .select(IncidentEventRow::as_select())
            .load(&mut conn)
            .await
            .unwrap();
        rows.into_iter()
            .map(|e| {
                if e.location.is_empty() {
                    e.kind
                } else {
                    format!("{}@{}", e.kind, e.location)
                }
            })
            .collect()
    }
}

/// When the test started, to the second: results are placed before it, so
/// none is in the future and each test's times are fixed.
static START: std::sync::LazyLock<DateTime<Utc>> =
    std::sync::LazyLock::new(|| DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap());

/// `seconds` before the test started.
fn ago(seconds: i64) -> DateTime<Utc> {
    *START - chrono::Duration::seconds(seconds)
}

/// One HTTP result of `job` at `location`, passed or failed (status 500).
fn result(job: Uuid, location: &str, passed: bool, start: DateTime<Utc>) -> CheckResult {
    CheckResult {
        schema_version: monitor_proto::SCHEMA_VERSION,
        check_id: Uuid::now_v7().to_string(),
        job_id: job.to_string(),
        job_version: 1,
        worker_id: format!("probe-{location}"),
        epoch: 1,
        location: location.to_owned(),
        scheduled_time: Some(start.into()),
        start_time: Some(start.into()),
        duration: Some(monitor_proto::duration::from_millis(120)),
        outcome: if passed {
            CheckOutcome::Ok as i32
        } else {
            CheckOutcome::AssertionFailed as i32
        },
        error: if passed {
            String::new()
        } else {
            "status 500 is not accepted".into()
        },
        assertions: vec![],
        detail: Some(Detail::Http(HttpResult {
            status_code: if passed { 200 } else { 500 },
            ..Default::default()
        })),
    }
}

/// Results of `job` at `location` following `pattern` ('F' failed, 'P'
/// passed), one per second starting `from` seconds ago.
fn run(job: Uuid, location: &str, pattern: &str, from: i64) -> Vec<CheckResult> {
    pattern
        .chars()
        .enumerate()
        .map(|(i, c)| result(job, location, c == 'P', ago(from - i as i64)))
        .collect()
}

fn events(outbox: &[(String, String)]) -> Vec<&str> {
    outbox.iter().map(|(_, event)| event.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_third_failure_opens_and_the_second_pass_resolves() {
    let setup = Setup::new(1).await;
    let job = setup.job("shop", &[]).await;
    setup.rule("shop down", "").await;
    let (stop, task) = setup.evaluator(&[]);
    setup.evaluate(&run(job, "", "FF", 100)).await;
    assert!(setup.incidents().await.is_empty(), "two failures open nothing");
    setup.evaluate(&run(job, "", "F", 98)).await;
    let opened = setup.incidents().await;
    assert_eq!(opened.len(), 1, "the third failure opens one incident");
    let incident = &opened[0];
    assert_eq!((incident.cause.as_str(), incident.resolved_at), ("down", None));
    let first: FirstFailure = serde_json::from_value(incident.first_failure.clone().unwrap()).unwrap();
    assert_eq!((first.status_code, first.start_time), (500, ago(100)));
    assert_eq!(first.outcome, "CHECK_OUTCOME_ASSERTION_FAILED");
    // Detected by the third check, which ended 120 ms after it started.
    assert_eq!(
        incident.detected_check_end,
        Some(ago(98) + chrono::Duration::milliseconds(120))
    );
    assert_eq!(
        setup.outbox().await,
        [(format!("{}:opened", incident.id), "opened".into())]
    );
    setup.evaluate(&run(job, "", "FP", 97)).await;
    assert_eq!(
        setup.incidents().await[0].resolved_at,
        None,
        "one pass does not resolve"
    );
    setup.evaluate(&run(job, "", "P", 95)).await;
    let resolved = &setup.incidents().await[0];
    assert_eq!(
        resolved.resolved_at,
        Some(ago(95) + chrono::Duration::milliseconds(120))
    );
    assert_eq!(resolved.resolved_by.as_deref(), Some("evaluator"));
    assert_eq!(events(&setup.outbox().await), ["opened", "resolved"]);
    assert_eq!(
        setup.timeline(resolved.id).await,
        ["opened", "location_recovered", "resolved"]
    );
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_two_locations_must_fail() {
    let setup = Setup::new(2).await;
    let job = setup.job("shop", &["eu", "us"]).await;
    setup.rule("both down", "min_failing_locations = 2").await;
    let (stop, task) = setup.evaluator(&[]);
    setup.evaluate(&run(job, "eu", "FFFF", 100)).await;
    assert!(
        setup.incidents().await.is_empty(),
        "one failing location of two is not down"
    );
    setup.evaluate(&run(job, "us", "FFF", 100)).await;
    let opened = setup.incidents().await;
    assert_eq!(opened.len(), 1);
    assert_eq!(
        opened[0].failing_locations,
        [Some("eu".to_string()), Some("us".to_string())]
    );
    let first: FirstFailure = serde_json::from_value(opened[0].first_failure.clone().unwrap()).unwrap();
    assert_eq!((first.location.as_str(), first.start_time), ("eu", ago(100)));
    setup.evaluate(&run(job, "us", "PP", 97)).await;
    let resolved = &setup.incidents().await[0];
    assert!(
        resolved.resolved_at.is_some(),
        "one location back is one of two failing: up"
    );
    assert_eq!(
        setup.timeline(resolved.id).await,
        ["opened", "location_recovered@us", "resolved"]
    );
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_keeps_the_incident_quiet_and_its_end_tells_once() {
    let setup = Setup::new(1).await;
    let job = setup.job("shop", &[]).await;
    setup.rule("shop down", "").await;
    setup
        .sql(&format!(
            "INSERT INTO silences (id, job_ids, starts_at, ends_at, comment) \
             VALUES ('{}', '{{{job}}}', now() - interval '1 minute', now() + interval '1 hour', 'deploy')",
            Uuid::now_v7()
        ))
        .await;
    let (stop, task) = setup.evaluator(&[]);
    setup.evaluate(&run(job, "", "FFF", 100)).await;
    let opened = setup.incidents().await;
    assert_eq!(opened.len(), 1, "a silenced incident still opens");
    assert!(opened[0].silenced);
    assert!(setup.outbox().await.is_empty(), "nothing is sent while silenced");
    // The window ends (as if its end had come): one "opened" goes out.
    setup.sql("UPDATE silences SET ends_at = now()").await;
    let id = opened[0].id;
    wait_until(
        "the notification after the silence",
        Duration::from_secs(30),
        || async {
            match setup.outbox().await.as_slice() {
                [] => Err("nothing yet".to_string()),
                [(key, event)] if key == &format!("{id}:opened") && event == "opened" => Ok(()),
                other => Err(format!("unexpected {other:?}")),
            }
        },
    )
    .await;
    // And only one: later flushes add nothing.
    setup.evaluate(&run(job, "", "F", 97)).await;
    assert_eq!(setup.outbox().await.len(), 1);
    assert_eq!(setup.timeline(id).await, ["opened", "silenced", "unsilenced"]);
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_job_is_told_once() {
    let setup = Setup::new(1).await;
    let job = setup.job("shop", &[]).await;
    setup
        .rule(
            "flappy",
            "failure_threshold = 1, success_threshold = 1, flap_threshold = 3, flap_window_ms = 3600000",
        )
        .await;
    let (stop, task) = setup.evaluator(&[]);
    setup.evaluate(&run(job, "", "FPFPFPFP", 100)).await;
    let all = setup.incidents().await;
    assert_eq!(all.len(), 4, "each down episode is an incident");
    assert!(all.iter().all(|i| i.resolved_at.is_some()));
    // Changes 1-3 are told, the 4th starts flapping (told once), then quiet.
    assert_eq!(
        events(&setup.outbox().await),
        ["opened", "resolved", "opened", "flapping"]
    );
    assert!(all[1].flapping && !all[0].flapping);
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_and_hand_resolves_made_in_the_database_are_followed() {
    let setup = Setup::new(1).await;
    let job = setup.job("shop", &[]).await;
    setup.rule("shop down", "repeat_interval_ms = 3600000").await;
    let (stop, task) = setup.evaluator(&[]);
    setup.evaluate(&run(job, "", "FFF", 100)).await;
    let id = setup.incidents().await[0].id;
    // Acknowledged (as AcknowledgeIncident does): the evaluator's state says so.
    setup
        .sql(&format!(
            "UPDATE incidents SET acknowledged_at = now(), acknowledged_by = 'ops' WHERE id = '{id}'"
        ))
        .await;
    setup
        .wait_state(job, "the acknowledgement", |state| {
            state.open.as_ref().is_some_and(|open| open.acknowledged)
        })
        .await;
    // Resolved by hand (as ResolveIncident does): the counters start again.
    setup
        .sql(&format!(
            "UPDATE incidents SET resolved_at = now(), resolved_by = 'ops' WHERE id = '{id}'"
        ))
        .await;
    setup
        .wait_state(job, "the hand resolve", |state| state.open.is_none())
        .await;
    setup.evaluate(&run(job, "", "FF", 90)).await;
    assert_eq!(
        setup.incidents().await.len(),
        1,
        "two failures after the hand resolve are below the threshold"
    );
    setup.evaluate(&run(job, "", "F", 88)).await;
    let all = setup.incidents().await;
    assert_eq!(all.len(), 2, "the third one after it opens a new incident");
    assert_eq!(all[0].resolved_by.as_deref(), Some("ops"));
    assert_eq!(events(&setup.outbox().await), ["opened", "opened"]);
    stop.send(true).unwrap();
    task.await.unwrap();
}

/// A deterministic mix of runs of failures and passes, `n` long, for the
/// `seed`-th job and location (runs of 1 to 6, so thresholds are crossed
/// both ways many times).
fn pattern(seed: u64, n: usize) -> String {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut out = String::new();
    let mut failing = seed.is_multiple_of(2);
    while out.len() < n {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let run = 1 + (x >> 33) as usize % 6;
        out.extend(std::iter::repeat_n(if failing { 'F' } else { 'P' }, run));
        failing = !failing;
    }
    out.truncate(n);
    out
}

/// (rule, job, opened at, resolved at, first failure's check) of an incident.
type Episode = (Uuid, Uuid, DateTime<Utc>, Option<DateTime<Utc>>, Option<String>);

/// What one uninterrupted pass of the evaluator's decisions over `results`
/// (in topic order per job) opens and resolves, and the notifications it
/// asks for by event.
fn one_pass(
    rules: &[Rule],
    jobs: &HashMap<Uuid, JobInfo>,
    results: &[CheckResult],
) -> (Vec<Episode>, HashMap<String, usize>) {
    let mut states: HashMap<(Uuid, Uuid), AlertState> = HashMap::new();
    let mut episodes: HashMap<Uuid, Episode> = HashMap::new();
    let mut notifications: HashMap<String, usize> = HashMap::new();
    for result in results {
        let job = &jobs[&Uuid::parse_str(&result.job_id).unwrap()];
        let start = result.start_time.unwrap();
        let start = DateTime::from_timestamp(start.seconds, start.nanos as u32).unwrap();
        let passed = result.outcome == CheckOutcome::Ok as i32;
        let observed = Observed {
            location: result.location.clone(),
            start,
            end: start + chrono::Duration::milliseconds(120),
            failure: (!passed).then(|| FirstFailure {
                check_id: result.check_id.clone(),
                worker_id: result.worker_id.clone(),
                location: result.location.clone(),
                start_time: start,
                outcome: String::new(),
                status_code: 0,
                error: String::new(),
            }),
        };
        for rule in rules {
            let state = states.entry((rule.id, job.id)).or_default();
            let subject = Subject {
                rule,
                job,
                silenced: false,
            };
            for effect in evaluate::on_result(subject, state, &observed) {
                match effect {
                    Effect::Open(new) => {
                        let check = new.first_failure.map(|f| f.check_id);
                        episodes.insert(new.id, (rule.id, job.id, new.opened_at, None, check));
                    }
                    Effect::Resolve { incident, at, .. } => episodes.get_mut(&incident).unwrap().3 = Some(at),
                    Effect::Notify { event, .. } => *notifications.entry(event.to_string()).or_default() += 1,
                    _ => {}
                }
            }
        }
    }
    let mut episodes: Vec<Episode> = episodes.into_values().collect();
    episodes.sort();
    (episodes, notifications)
}

/// A stream whose incidents are known: 24 jobs (half in two locations),
/// two rules, 60 checks per job and location in runs of failures and
/// passes, cut into twelve slices; and what one uninterrupted pass of the
/// decisions opens, resolves and notifies over it.
struct KnownStream {
    slices: Vec<Vec<CheckResult>>,
    expected: Vec<Episode>,
    expected_notifications: HashMap<String, usize>,
}

impl KnownStream {
    async fn new(setup: &Setup) -> KnownStream {
        let mut job_ids = Vec::new();
        for i in 0..24usize {
            let locations: &[&str] = if i.is_multiple_of(2) { &[] } else { &["eu", "us"] };
            job_ids.push((setup.job(&format!("job-{i}"), locations).await, locations));
        }
        setup.rule("any location", "").await;
        setup
            .rule(
                "two locations",
                "min_failing_locations = 2, failure_threshold = 2, success_threshold = 1",
            )
            .await;
        let checks = 60;
        let mut slices: Vec<Vec<CheckResult>> = vec![Vec::new(); 12];
        for (i, (job, locations)) in job_ids.iter().enumerate() {
            let locations: Vec<&str> = if locations.is_empty() {
                vec![""]
            } else {
                locations.to_vec()
            };
            for (l, location) in locations.iter().enumerate() {
                let seq = run(*job, location, &pattern((i * 3 + l) as u64, checks), 1_000);
                for (k, result) in seq.into_iter().enumerate() {
                    slices[k * 12 / checks].push(result);
                }
            }
        }
        let pool = setup.db.pool();
        let mut conn = pool.get().await.unwrap();
        let rules = monitor_store::models::alert_rule::load_enabled(&mut conn)
            .await
            .unwrap();
        let rules: Vec<Rule> = rules.iter().map(|r| Rule::from_row(r).unwrap()).collect();
        let jobs: HashMap<Uuid, JobInfo> = job::load_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|j| (j.id, JobInfo::from_row(j, Duration::from_secs(60)).unwrap()))
            .collect();
        let (expected, expected_notifications) = one_pass(&rules, &jobs, &slices.concat());
        assert!(
            expected.len() > 50,
            "the stream opens many incidents ({})",
            expected.len()
        );
        assert!(expected.iter().any(|e| e.3.is_none()) && expected.iter().any(|e| e.3.is_some()));
        KnownStream {
            slices,
            expected,
            expected_notifications,
        }
    }

    /// The stored incidents and outbox equal the uninterrupted pass.
    async fn assert_exact(&self, setup: &Setup, log: &str) {
        let expected = &self.expected;
        let expected_notifications = &self.expected_notifications;
        let stored: Vec<Episode> = {
            let mut got: Vec<Episode> = setup
                .incidents()
                .await
                .into_iter()
                .map(|i| {
                    let check = i
                        .first_failure
                        .map(|f| serde_json::from_value::<FirstFailure>(f).unwrap().check_id);
                    (i.rule_id.unwrap(), i.job_id, i.opened_at, i.resolved_at, check)
                })
                .collect();
            got.sort();
            got
        };
        assert_eq!(stored.len(), expected.len(), "incidents: {log}");
        assert_eq!(&stored, expected);
        let mut notifications: HashMap<String, usize> = HashMap::new();
        for (_, event) in setup.outbox().await {
            *notifications.entry(event).or_default() += 1;
        }
        assert_eq!(&notifications, expected_notifications);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evaluator_killed_mid_stream_opens_nothing_twice_and_misses_no_resolve() {
    let setup = Setup::new(4).await;
    let stream = KnownStream::new(&setup).await;
    let flags = setup.flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut ends = HashMap::new();
    let mut slices = stream.slices.iter();
    for _ in 0..3 {
        // Three slices evaluated and committed, then killed while the
        // fourth is produced and read: mid-stream by construction.
        let evaluator = common::spawn_worker("alert", &flags);
        for _ in 0..3 {
            ends.extend(setup.produce(slices.next().unwrap()).await);
            setup.wait_accounted(&ends).await;
        }
        ends.extend(setup.produce(slices.next().unwrap()).await);
        evaluator.kill_9().await;
    }
    assert!(slices.next().is_none());
    let mut last = common::spawn_worker("alert", &flags);
    // Its signal handler is in place once it serves /readyz.
    last.wait_ready(200, "ready").await;
    setup.wait_accounted(&ends).await;
    let log = last.terminate().await;
    stream.assert_exact(&setup, &log).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_evaluator_takes_its_share_and_a_killed_one_loses_nothing() {
    let setup = Setup::new(4).await;
    let stream = KnownStream::new(&setup).await;
    let flags = setup.flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut ends = HashMap::new();
    let mut slices = stream.slices.iter();
    let first = common::spawn_worker("alert", &flags);
    for _ in 0..3 {
        ends.extend(setup.produce(slices.next().unwrap()).await);
        setup.wait_accounted(&ends).await;
    }
    // A second member joins: the partitions are split (the first flushes
    // what it gives up) while slices keep coming.
    let second = common::spawn_worker("alert", &flags);
    wait_until("the second member's share", Duration::from_secs(60), || async {
        let log = second.log();
        match log
            .lines()
            .any(|l| l.contains("partitions assigned") && !l.contains("assigned=[]"))
        {
            true => Ok(()),
            false => Err(log),
        }
    })
    .await;
    for _ in 0..4 {
        ends.extend(setup.produce(slices.next().unwrap()).await);
        setup.wait_accounted(&ends).await;
    }
    // The first is killed mid-slice: the second takes its partitions over
    // once its session expires, from the stored state.
    ends.extend(setup.produce(slices.next().unwrap()).await);
    first.kill_9().await;
    for slice in slices {
        ends.extend(setup.produce(slice).await);
    }
    setup.wait_accounted(&ends).await;
    let log = second.terminate().await;
    stream.assert_exact(&setup, &log).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_probe_opens_a_down_incident_and_its_death_a_no_data_one() {
    let setup = Setup::new(1).await;
    let server = TestServer::builder().database(setup.db.clone()).start().await;
    let mock = MockServer::start(&[]).await;
    let failing = server
        .create(monitor_testkit::jobs::running_http_job(
            "broken",
            &mock.url("/status/500"),
            1,
        ))
        .await;
    let healthy = server
        .create(monitor_testkit::jobs::running_http_job(
            "fine",
            &mock.url("/website_mock"),
            1,
        ))
        .await;
    setup.rule("anything down", "no_data = true").await;
    let (stop, task) = setup.evaluator(&["--no-data-min-ms", "3000"]);
    let probe = common::spawn_worker(
        "probe",
        &[
            "--server",
            &format!("http://{}", server.addr),
            "--worker-id",
            "probe-1",
            "--kafka-brokers",
            &shared_brokers(),
            "--kafka-topic",
            &setup.topic,
            "--allow-net",
            "127.0.0.0/8",
        ],
    );
    let down = wait_until("the down incident", Duration::from_secs(60), || async {
        let all = setup.incidents().await;
        match all.iter().find(|i| i.job_id.to_string() == failing.id) {
            Some(incident) => Ok(incident.clone()),
            None => Err(format!("{all:?}")),
        }
    })
    .await;
    assert_eq!(down.cause, "down");
    assert_eq!(down.job_name, "broken");
    let first: FirstFailure = serde_json::from_value(down.first_failure.clone().unwrap()).unwrap();
    assert_eq!((first.status_code, first.worker_id.as_str()), (500, "probe-1"));
    assert_eq!(first.outcome, "CHECK_OUTCOME_ASSERTION_FAILED");
    assert!(
        setup
            .incidents()
            .await
            .iter()
            .all(|i| i.job_id.to_string() != healthy.id),
        "the healthy job has no incident"
    );
    probe.kill_9().await;
    // No result from either job any more: the healthy one opens a no-data
    // incident, the broken one's incident records the missing data.
    let silent = wait_until("the no-data incident", Duration::from_secs(60), || async {
        let all = setup.incidents().await;
        match all.iter().find(|i| i.job_id.to_string() == healthy.id) {
            Some(incident) => Ok(incident.clone()),
            None => Err(format!("{all:?}")),
        }
    })
    .await;
    assert_eq!((silent.cause.as_str(), silent.first_failure.clone()), ("no_data", None));
    wait_until(
        "the broken job's data_missing event",
        Duration::from_secs(30),
        || async {
            let timeline = setup.timeline(down.id).await;
            match timeline.iter().any(|e| e == "data_missing") {
                true => Ok(()),
                false => Err(format!("{timeline:?}")),
            }
        },
    )
    .await;
    assert_eq!(setup.incidents().await.len(), 2, "one incident per job, none twice");
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_never_seen_are_placed_where_the_producer_puts_their_results() {
    // The evaluator owns a silent job's no-data condition by the partition
    // its results would be on: the probes' producer's (librdkafka default)
    // partitioner, reproduced by `partition_of`.
    let topic = fresh("placement");
    create_topic(&shared_brokers(), &topic, 6, 1).await;
    let producer = producer(&shared_brokers());
    for _ in 0..200 {
        let key = Uuid::now_v7().to_string();
        let record = FutureRecord::to(&topic).key(key.as_bytes()).payload("x");
        let delivered = producer.send(record, Duration::from_secs(10)).await.unwrap();
        assert_eq!(
            delivered.partition,
            monitor_worker::alert::partition_of(key.as_bytes(), 6),
            "{key}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_messages_are_skipped_and_their_offsets_stored() {
    let setup = Setup::new(1).await;
    let job = setup.job("shop", &[]).await;
    setup.rule("shop down", "").await;
    let (stop, task) = setup.evaluator(&[]);
    let producer = producer(&shared_brokers());
    let record = FutureRecord::to(&setup.topic)
        .key("garbage")
        .payload("not a CheckResult");
    let delivered = producer.send(record, Duration::from_secs(10)).await.unwrap();
    // A partition holding only a refused message still moves on.
    setup
        .wait_accounted(&HashMap::from([(delivered.partition, delivered.offset + 1)]))
        .await;
    let mut unknown = result(Uuid::now_v7(), "", false, ago(50));
    unknown.schema_version = 99;
    setup.evaluate(&[unknown]).await;
    setup.evaluate(&run(job, "", "FFF", 40)).await;
    assert_eq!(setup.incidents().await.len(), 1, "the valid results still count");
    stop.send(true).unwrap();
    task.await.unwrap();
}
