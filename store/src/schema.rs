// @generated automatically by Diesel CLI.

diesel::table! {
    alert_rules (id) {
        id -> Uuid,
        name -> Text,
        job_ids -> Array<Nullable<Uuid>>,
        label_selector -> Jsonb,
        failure_threshold -> Int4,
        success_threshold -> Int4,
        min_failing_locations -> Int4,
        min_failing_percent -> Int4,
        no_data -> Bool,
        severity -> Text,
        channel_ids -> Array<Nullable<Uuid>>,
        repeat_interval_ms -> Int8,
        notify_on_resolve -> Bool,
        flap_threshold -> Int4,
        flap_window_ms -> Int8,
        enabled -> Bool,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    alert_state (rule_id, job_id) {
        rule_id -> Uuid,
        job_id -> Uuid,
        partition -> Int4,
        state -> Jsonb,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    assignment_lease (singleton) {
        singleton -> Bool,
        held_until -> Timestamptz,
        updated_at -> Timestamptz,
        epochs_reserved -> Int8,
    }
}

diesel::table! {
    consumer_offsets (group_id, topic, partition) {
        group_id -> Text,
        topic -> Text,
        partition -> Int4,
        next_offset -> Int8,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    incident_events (id) {
        id -> Int8,
        incident_id -> Uuid,
        at -> Timestamptz,
        kind -> Text,
        location -> Text,
        detail -> Text,
        actor -> Text,
    }
}

diesel::table! {
    incidents (id) {
        id -> Uuid,
        rule_id -> Nullable<Uuid>,
        rule_name -> Text,
        job_id -> Uuid,
        job_name -> Text,
        severity -> Text,
        cause -> Text,
        opened_at -> Timestamptz,
        acknowledged_at -> Nullable<Timestamptz>,
        acknowledged_by -> Nullable<Text>,
        resolved_at -> Nullable<Timestamptz>,
        resolved_by -> Nullable<Text>,
        failing_locations -> Array<Nullable<Text>>,
        first_failure -> Nullable<Jsonb>,
        detected_check_end -> Nullable<Timestamptz>,
        silenced -> Bool,
        flapping -> Bool,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    job_metrics (job_id, location, granularity, dt) {
        job_id -> Uuid,
        location -> Text,
        granularity -> Text,
        dt -> Timestamptz,
        rt_min -> Nullable<Float8>,
        rt_max -> Nullable<Float8>,
        rt_sum -> Float8,
        rt_count -> Int8,
        rt_histogram -> Jsonb,
        checks -> Int8,
        passed -> Int8,
        data -> Jsonb,
        errors -> Jsonb,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    jobs (id) {
        id -> Uuid,
        name -> Text,
        labels -> Jsonb,
        check_kind -> Text,
        check_spec -> Jsonb,
        interval_ms -> Int8,
        timeout_ms -> Int8,
        desired_state -> Text,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        state_changed_at -> Timestamptz,
        locations -> Jsonb,
    }
}

diesel::table! {
    notification_channels (id) {
        id -> Uuid,
        name -> Text,
        kind -> Text,
        settings -> Jsonb,
        enabled -> Bool,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        group_wait_ms -> Int4,
    }
}

diesel::table! {
    notification_deliveries (id) {
        id -> Int8,
        outbox_id -> Int8,
        channel_id -> Uuid,
        attempt -> Int4,
        at -> Timestamptz,
        http_status -> Nullable<Int4>,
        error -> Text,
        duration_ms -> Int8,
        outcome -> Text,
        reply -> Text,
    }
}

diesel::table! {
    notification_outbox (id) {
        id -> Int8,
        dedup_key -> Text,
        incident_id -> Uuid,
        event -> Text,
        channel_ids -> Array<Nullable<Uuid>>,
        created_at -> Timestamptz,
        due_at -> Timestamptz,
    }
}

diesel::table! {
    outbox_deliveries (outbox_id, channel_id) {
        outbox_id -> Int8,
        channel_id -> Uuid,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        delivered_at -> Nullable<Timestamptz>,
        given_up_at -> Nullable<Timestamptz>,
        last_error -> Text,
        created_at -> Timestamptz,
        batch_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    silences (id) {
        id -> Uuid,
        job_ids -> Array<Nullable<Uuid>>,
        label_selector -> Jsonb,
        starts_at -> Timestamptz,
        ends_at -> Timestamptz,
        recurrence -> Nullable<Jsonb>,
        comment -> Text,
        created_by -> Text,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(alert_state -> alert_rules (rule_id));
diesel::joinable!(incident_events -> incidents (incident_id));
diesel::joinable!(incidents -> alert_rules (rule_id));
diesel::joinable!(notification_deliveries -> notification_channels (channel_id));
diesel::joinable!(notification_deliveries -> notification_outbox (outbox_id));
diesel::joinable!(notification_outbox -> incidents (incident_id));
diesel::joinable!(outbox_deliveries -> notification_channels (channel_id));
diesel::joinable!(outbox_deliveries -> notification_outbox (outbox_id));

diesel::allow_tables_to_appear_in_same_query!(
    alert_rules,
    alert_state,
    assignment_lease,
    consumer_offsets,
    incident_events,
    incidents,
    job_metrics,
    jobs,
    notification_channels,
    notification_deliveries,
    notification_outbox,
    outbox_deliveries,
    silences,
);
