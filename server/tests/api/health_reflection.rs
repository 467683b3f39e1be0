//! `grpc.health.v1` follows the database; reflection answers on v1 and v1alpha.

use std::time::Duration;

use monitor_proto::v1::ListJobsRequest;
use monitor_store::testing::{base_url, with_database};
use monitor_testkit::server::TestServer;
use tokio_stream::StreamExt as _;
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

async fn status_of(server: &TestServer, service: &str) -> ServingStatus {
    let response = HealthClient::new(server.channel.clone())
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner();
    ServingStatus::try_from(response.status).unwrap()
}

#[tokio::test]
async fn health_follows_the_database_down_and_back_up() {
    let server = TestServer::start().await;
    server.wait_health("", ServingStatus::Serving).await;
    server
        .wait_health("monitor.v1.JobService", ServingStatus::Serving)
        .await;
    let ready: serde_json::Value = reqwest::get(server.url("/readyz")).await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ready");

    // Take this test's database away, then bring it back.
    let admin_url = with_database(&base_url(), "postgres");
    let admin = monitor_store::connect(&admin_url, 1).unwrap();
    let mut conn = admin.get().await.unwrap();
    use monitor_store::diesel_async::RunQueryDsl as _;
    let name = server.db.name().to_owned();
    diesel::sql_query(format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap();
    server.wait_health("", ServingStatus::NotServing).await;
    server
        .wait_health("monitor.v1.JobService", ServingStatus::NotServing)
        .await;
    let err = server
        .jobs
        .clone()
        .list_jobs(ListJobsRequest::default())
        .await
        .unwrap_err();
    assert!(matches!(err.code(), Code::Unavailable | Code::Internal), "{err:?}");

    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    server.wait_health("", ServingStatus::Serving).await;
}

#[tokio::test]
async fn unreachable_database_is_not_serving_and_unavailable() {
    let dead = monitor_store::connect("postgres://postgres@127.0.0.1:1/none", 2).unwrap();
    let server = TestServer::builder().pool(dead).start().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(status_of(&server, "").await, ServingStatus::NotServing);
    let err = server
        .jobs
        .clone()
        .list_jobs(ListJobsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("database is unavailable"), "{}", err.message());
    let err = HealthClient::new(server.channel.clone())
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_our_services() {
    use tonic_reflection::pb::{v1, v1alpha};
    let server = TestServer::start().await;

    let mut client = v1::server_reflection_client::ServerReflectionClient::new(server.channel.clone());
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        responses.next().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list");
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    for want in [
        "monitor.v1.JobService",
        "monitor.v1.AdminService",
        "grpc.health.v1.Health",
    ] {
        assert!(names.iter().any(|n| n == want), "v1 lists {want}: {names:?}");
    }

    let mut client = v1alpha::server_reflection_client::ServerReflectionClient::new(server.channel.clone());
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol("monitor.v1.JobService".into()),
        ),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let response = responses.next().await.unwrap().unwrap().message_response;
    assert!(
        matches!(response, Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(ref f)) if !f.file_descriptor_proto.is_empty()),
        "{response:?}"
    );
}

#[tokio::test]
async fn graceful_shutdown_stops_the_listener() {
    let server = TestServer::start().await;
    let addr = server.addr;
    server.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed after shutdown"
    );
}
