// @generated automatically by Diesel CLI.

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
