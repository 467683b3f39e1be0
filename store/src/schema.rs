// @generated automatically by Diesel CLI.

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

diesel::allow_tables_to_appear_in_same_query!(assignment_lease, consumer_offsets, job_metrics, jobs,);
