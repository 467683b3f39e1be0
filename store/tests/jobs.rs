//! The `jobs` queries against a real PostgreSQL, one fresh database per test.

use monitor_store::{
    StoreError,
    models::job::{self, JobFields, JobFilter, STATE_RUNNING, STATE_STOPPED},
    testing::TestDb,
};
use serde_json::json;

fn fields(name: &str) -> JobFields {
    JobFields {
        name: name.to_owned(),
        labels: json!({"team": "web"}),
        check_kind: "http".to_owned(),
        check_spec: json!({"url": "http://127.0.0.1:8081/website_mock"}),
        interval_ms: 10_000,
        timeout_ms: 5_000,
        desired_state: STATE_STOPPED.to_owned(),
        locations: json!([]),
    }
}

#[tokio::test]
async fn insert_get_and_find_by_name() {
    let db = TestDb::new().await;
    let mut conn = db.pool().get().await.unwrap();
    let created = job::insert(&mut conn, &fields("a")).await.unwrap();
    assert_eq!(created.version, 1);
    assert_eq!(created.name, "a");
    assert_eq!(job::get(&mut conn, created.id).await.unwrap(), created);
    assert_eq!(job::find_by_name(&mut conn, "a").await.unwrap(), Some(created));
    assert_eq!(job::find_by_name(&mut conn, "b").await.unwrap(), None);
}

#[tokio::test]
async fn duplicate_name_is_a_unique_violation() {
    let db = TestDb::new().await;
    let mut conn = db.pool().get().await.unwrap();
    job::insert(&mut conn, &fields("a")).await.unwrap();
    let err = job::insert(&mut conn, &fields("a")).await.unwrap_err();
    assert!(
        matches!(err, StoreError::UniqueViolation { ref constraint } if constraint == "jobs_name_key"),
        "{err:?}"
    );
}

#[tokio::test]
async fn database_constraints_back_up_validation() {
    let db = TestDb::new().await;
    let mut conn = db.pool().get().await.unwrap();
    let mut bad = fields("a");
    bad.timeout_ms = bad.interval_ms + 1;
    assert!(matches!(
        job::insert(&mut conn, &bad).await,
        Err(StoreError::Database(_))
    ));
    let mut bad = fields("b");
    bad.desired_state = "paused".into();
    assert!(matches!(
        job::insert(&mut conn, &bad).await,
        Err(StoreError::Database(_))
    ));
}

#[tokio::test]
async fn update_checks_version_and_bumps_it() {
    let db = TestDb::new().await;
    let mut conn = db.pool().get().await.unwrap();
    let created = job::insert(&mut conn, &fields("a")).await.unwrap();
    let mut changed = fields("a2");
    changed.interval_ms = 20_000;
    let updated = job::update(&mut conn, created.id, 1, &changed).await.unwrap();
    assert_eq!(updated.version, 2);
    assert_eq!(updated.name, "a2");
    assert_eq!(updated.interval_ms, 20_000);
    assert_eq!(
        updated.state_changed_at, created.state_changed_at,
        "state did not change"
    );
    let stale = job::update(&mut conn, created.id, 1, &changed).await.unwrap_err();
    assert!(matches!(stale, StoreError::VersionConflict { current: 2 }), "{stale:?}");
    let missing = job::update(&mut conn, uuid::Uuid::now_v7(), 1, &changed)
        .await
        .unwrap_err();
    assert!(matches!(missing, StoreError::NotFound), "{missing:?}");
}

#[tokio::test]
async fn set_desired_state_is_idempotent() {
    let db = TestDb::new().await;
    let mut conn = db.pool().get().await.unwrap();
    let created = job::insert(&mut conn, &fields("a")).await.unwrap();
    let started = job::set_desired_state(&mut conn, created.id, STATE_RUNNING)
        .await
        .unwrap();
    assert!(started.changed);
    assert_eq!(started.job.version, 2);
    assert!(started.job.state_changed_at >= created.state_changed_at);
    let again = job::set_desired_state(&mut conn, created.id, STATE_RUNNING)
        .await
        .unwrap();
    assert!(!again.changed);
    assert_eq!(again.job, started.job);
    let missing = job::set_desired_state(&mut conn, uuid::Uuid::now_v7(), STATE_RUNNING).await;
    assert!(matches!(missing, Err(StoreError::NotFound)));
}

#[tokio::test]
async fn delete_with_and_without_version() {
    let db = TestDb::new().await;
    let mut conn = db.pool().get().await.unwrap();
    let a = job::insert(&mut conn, &fields("a")).await.unwrap();
    let b = job::insert(&mut conn, &fields("b")).await.unwrap();
    assert!(matches!(
        job::delete(&mut conn, a.id, Some(7)).await,
        Err(StoreError::VersionConflict { current: 1 })
    ));
    job::delete(&mut conn, a.id, Some(1)).await.unwrap();
    job::delete(&mut conn, b.id, None).await.unwrap();
    assert!(matches!(
        job::delete(&mut conn, b.id, None).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(job::get(&mut conn, b.id).await, Err(StoreError::NotFound)));
}

#[tokio::test]
async fn list_pages_in_creation_order_and_filters() {
    let db = TestDb::new().await;
    let mut conn = db.pool().get().await.unwrap();
    let mut ids = Vec::new();
    for i in 0..7 {
        let mut f = fields(&format!("job_{i}%"));
        if i % 2 == 0 {
            f.labels = json!({"team": "db", "env": "prod"});
            f.desired_state = STATE_RUNNING.into();
        }
        ids.push(job::insert(&mut conn, &f).await.unwrap().id);
    }
    let all = JobFilter::default();
    let first = job::list(&mut conn, &all, None, 3).await.unwrap();
    let second = job::list(&mut conn, &all, Some(first[2].id), 3).await.unwrap();
    let third = job::list(&mut conn, &all, Some(second[2].id), 3).await.unwrap();
    let listed: Vec<_> = first.iter().chain(&second).chain(&third).map(|j| j.id).collect();
    assert_eq!(listed, ids);
    assert_eq!(job::count(&mut conn, &all).await.unwrap(), 7);

    let running = JobFilter {
        desired_state: Some(STATE_RUNNING.into()),
        ..Default::default()
    };
    assert_eq!(job::count(&mut conn, &running).await.unwrap(), 4);
    let prod = JobFilter {
        labels: Some(json!({"env": "prod"})),
        ..Default::default()
    };
    assert_eq!(job::list(&mut conn, &prod, None, 100).await.unwrap().len(), 4);
    let none = JobFilter {
        labels: Some(json!({"env": "dev"})),
        ..Default::default()
    };
    assert_eq!(job::count(&mut conn, &none).await.unwrap(), 0);
    // LIKE metacharacters in the search text match literally.
    let by_name = JobFilter {
        name_contains: Some("B_3%".into()),
        ..Default::default()
    };
    let found = job::list(&mut conn, &by_name, None, 100).await.unwrap();
    assert_eq!(found.iter().map(|j| j.name.as_str()).collect::<Vec<_>>(), ["job_3%"]);
    let underscore_is_literal = JobFilter {
        name_contains: Some("b_".into()),
        ..Default::default()
    };
    assert_eq!(job::count(&mut conn, &underscore_is_literal).await.unwrap(), 7);
    let no_match = JobFilter {
        name_contains: Some("jo%3".into()),
        ..Default::default()
    };
    assert_eq!(job::count(&mut conn, &no_match).await.unwrap(), 0);

    let counts = job::counts(&mut conn).await.unwrap();
    assert_eq!((counts.running, counts.stopped), (4, 3));
    assert_eq!(job::delete_all(&mut conn).await.unwrap(), 7);
    assert_eq!(job::count(&mut conn, &all).await.unwrap(), 0);
}

#[tokio::test]
async fn migrations_are_idempotent_and_ping_reports_outage() {
    let db = TestDb::new().await;
    assert!(
        monitor_store::migrations::run_pending(&db.url)
            .await
            .unwrap()
            .is_empty()
    );
    monitor_store::pool::ping(&db.pool()).await.unwrap();
    let dead = monitor_store::connect("postgres://postgres@127.0.0.1:1/nothing", 1).unwrap();
    assert!(matches!(
        monitor_store::pool::ping(&dead).await,
        Err(StoreError::Unavailable(_))
    ));
}
