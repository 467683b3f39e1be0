//! The `monitor.v1` contract shared by the server, the workers and tests.
//!
//! Messages come from prost, clients and servers from tonic, and the serde
//! impls from pbjson, so JSON uses the canonical proto3 mapping (the same field
//! names and formats grpcurl prints). [`FILE_DESCRIPTOR_SET`] feeds server
//! reflection. [`secret`] is the one home of what counts as a secret and
//! how it is hidden.
//!
//! Rules of the wire format live here too, once for every binary:
//! [`SCHEMA_VERSION`] of the `CheckResult`s on the results topic,
//! [`duration`] (protobuf `Duration` to and from milliseconds and std),
//! [`wkt`] (`Timestamp` with the canonical JSON form) and [`keepalive`]
//! (the worker stream's HTTP/2 pings).

/// Version 1 of the monitor API.
pub mod v1 {
    #![allow(clippy::all, missing_docs, rust_2018_idioms)]
    tonic::include_proto!("monitor.v1");
    include!(concat!(env!("OUT_DIR"), "/monitor.v1.serde.rs"));
}

/// Encoded `FileDescriptorSet` of every `monitor.v1` file and its imports.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/monitor_descriptor.bin"));

/// The `CheckResult.schema_version` probes write and results-topic
/// consumers read; a consumer refuses (dead-letters) any other.
pub const SCHEMA_VERSION: u32 = 1;

pub use pbjson_types;

pub mod duration;
pub mod keepalive;
pub mod secret;
pub mod wkt;
