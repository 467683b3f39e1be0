//! Compiles `monitor/v1/*.proto` with protox (pure Rust, so no `protoc` has to
//! be installed), then generates prost messages, tonic clients and servers,
//! pbjson serde impls (canonical proto3 JSON) and the encoded descriptor set
//! that server reflection serves.

use std::{env, fs, path::PathBuf};

use prost::Message;

const PROTOS: &[&str] = &[
    "monitor/v1/job.proto",
    "monitor/v1/job_service.proto",
    "monitor/v1/admin_service.proto",
    "monitor/v1/check_result.proto",
    "monitor/v1/worker_service.proto",
    "monitor/v1/alert.proto",
    "monitor/v1/alert_service.proto",
    "monitor/v1/notification.proto",
    "monitor/v1/notification_service.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let descriptors = protox::compile(PROTOS, ["."])?;
    let encoded = descriptors.encode_to_vec();
    fs::write(out_dir.join("monitor_descriptor.bin"), &encoded)?;

    tonic_prost_build::configure()
        // The generated `connect` constructor would clash with the
        // WorkerService.Connect RPC; clients use `new(channel)` instead.
        .build_transport(false)
        // Their Debug impls hide secrets (src/secret.rs).
        .skip_debug([
            ".monitor.v1.HttpCheck",
            ".monitor.v1.HttpHeader",
            ".monitor.v1.Socks5Proxy",
            ".monitor.v1.GrpcHealthCheck",
            ".monitor.v1.WebSocketCheck",
            ".monitor.v1.WebhookChannel",
            ".monitor.v1.WebhookHeader",
            ".monitor.v1.SlackChannel",
            ".monitor.v1.DiscordChannel",
            ".monitor.v1.TeamsChannel",
            ".monitor.v1.TelegramChannel",
            ".monitor.v1.PagerDutyChannel",
        ])
        .compile_well_known_types(true)
        .extern_path(".google.protobuf.Timestamp", "crate::wkt::Timestamp")
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds(descriptors)?;

    pbjson_build::Builder::new()
        .register_descriptors(&encoded)?
        .extern_path(".google.protobuf.Timestamp", "crate::wkt::Timestamp")
        .build(&[".monitor"])?;
    Ok(())
}
