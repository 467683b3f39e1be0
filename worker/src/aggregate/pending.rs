//! The rollups consumed but not yet flushed: how one `CheckResult` is added
//! to the rollups of every granularity and location ([`add_to`], plain
//! maths over values), and [`Pending`], those rollups per partition, so the
//! share of a revoked or fenced partition can be dropped alone.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, TimeZone, Utc};
use monitor_core::granularity::Granularity;
use monitor_proto::{
    duration::as_millis_f64,
    v1::{CheckOutcome, CheckResult, check_result::Detail},
};
use monitor_store::rollup::{Rollup, RollupKey};
use uuid::Uuid;

use super::config::RtField;

/// A pending rollup's key: cheap to build and hash for every message (the
/// location is interned, the granularity an index); turned into a
/// [`RollupKey`] once per row at flush time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PendingKey {
    /// The job whose checks these are.
    pub job_id: Uuid,
    /// Interned location name ("" over all locations).
    pub location: Arc<str>,
    /// Index into the configured granularities.
    pub granularity: usize,
    /// Bucket start, milliseconds since the Unix epoch.
    pub dt_ms: i64,
}

impl PendingKey {
    /// The stored row's key, with the granularity's label.
    pub fn to_rollup_key(&self, granularities: &[Granularity]) -> RollupKey {
        RollupKey {
            job_id: self.job_id,
            location: self.location.to_string(),
            granularity: granularities[self.granularity].label().to_owned(),
            dt: Utc.timestamp_millis_opt(self.dt_ms).single().unwrap_or_default(),
        }
    }
}

/// Interned location names, so a message allocates none.
#[derive(Debug, Default)]
pub struct Locations(HashMap<Box<str>, Arc<str>>);

impl Locations {
    fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(found) = self.0.get(name) {
            return found.clone();
        }
        let interned: Arc<str> = Arc::from(name);
        self.0.insert(name.into(), interned.clone());
        interned
    }
}

/// Adds one result to the rollups of every granularity, overall and (when
/// the check ran for a location) per location.
pub fn add_to(
    rollups: &mut HashMap<PendingKey, Rollup>,
    locations: &mut Locations,
    granularities: &[Granularity],
    rt_field: RtField,
    job_id: Uuid,
    start: DateTime<Utc>,
    result: &CheckResult,
) {
    let outcome = CheckOutcome::try_from(result.outcome).unwrap_or(CheckOutcome::Unspecified);
    let answered = matches!(outcome, CheckOutcome::Ok | CheckOutcome::AssertionFailed);
    let rt = if answered {
        match rt_field {
            RtField::Duration => result.duration.as_ref().map(as_millis_f64),
            RtField::FirstByte => own_time(result.detail.as_ref()).map(as_millis_f64),
        }
    } else {
        None
    };
    let status = match &result.detail {
        Some(Detail::Http(http)) if http.status_code > 0 => Some(http.status_code),
        Some(Detail::Websocket(websocket)) if websocket.status_code > 0 => Some(websocket.status_code),
        _ => None,
    };
    let counts = answer_counts(result.detail.as_ref());
    let error = (outcome != CheckOutcome::Ok).then(|| outcome.as_str_name());
    let overall = locations.get("");
    let own = (!result.location.is_empty()).then(|| locations.get(&result.location));
    let start_ms = start.timestamp_millis();
    for (index, granularity) in granularities.iter().enumerate() {
        let dt_ms = granularity.bucket_start_ms(start_ms);
        for location in std::iter::once(&overall).chain(own.as_ref()) {
            let key = PendingKey {
                job_id,
                location: location.clone(),
                granularity: index,
                dt_ms,
            };
            let rollup = rollups.entry(key).or_default();
            rollup.add(rt, outcome == CheckOutcome::Ok, status, error);
            for (name, n) in &counts {
                rollup.count(name, *n);
            }
        }
    }
}

/// The kind's own measure of a response (`--rt-field first-byte`): HTTP
/// first byte, TCP connect, DNS query, ICMP average round trip, TLS
/// handshake, gRPC call, WebSocket reply (or upgrade), SSH banner, SOCKS5
/// handshake.
fn own_time(detail: Option<&Detail>) -> Option<&pbjson_types::Duration> {
    match detail? {
        Detail::Http(http) => http.first_byte_time.as_ref(),
        Detail::Tcp(tcp) => tcp.connect_time.as_ref(),
        Detail::Dns(dns) => dns.query_time.as_ref(),
        Detail::Icmp(icmp) => icmp.avg_rtt.as_ref(),
        Detail::Tls(tls) => tls.handshake_time.as_ref(),
        Detail::GrpcHealth(grpc) => grpc.response_time.as_ref(),
        Detail::Websocket(websocket) => websocket.reply_time.as_ref().or(websocket.connect_time.as_ref()),
        Detail::Ssh(ssh) => ssh.banner_time.as_ref(),
        Detail::Socks5(socks5) => socks5.handshake_time.as_ref(),
    }
}

/// Answer counters besides the HTTP status (see `Rollup::status`): the DNS
/// response code, the gRPC health status, ICMP echoes sent and lost.
fn answer_counts(detail: Option<&Detail>) -> Vec<(&str, i64)> {
    match detail {
        Some(Detail::Dns(dns)) if !dns.rcode.is_empty() => vec![(dns.rcode.as_str(), 1)],
        Some(Detail::GrpcHealth(grpc)) if !grpc.status.is_empty() => vec![(grpc.status.as_str(), 1)],
        Some(Detail::Icmp(icmp)) if icmp.sent > 0 => vec![
            ("icmp_sent", i64::from(icmp.sent)),
            ("icmp_lost", i64::from(icmp.sent.saturating_sub(icmp.received))),
        ],
        _ => Vec::new(),
    }
}

/// The rollups consumed since the last flush taken, per partition.
#[derive(Debug, Default)]
pub struct Pending {
    /// Rollups per partition: a revoked or fenced partition's are dropped alone.
    partitions: HashMap<i32, HashMap<PendingKey, Rollup>>,
    /// Rollups over all partitions: the back-pressure limit counts them.
    keys: usize,
    /// Location names, interned once for all messages.
    locations: Locations,
}

impl Pending {
    /// How many rollups are pending over all partitions.
    pub fn keys(&self) -> usize {
        self.keys
    }

    /// Adds one result read from `partition` (see [`add_to`]).
    pub fn add(
        &mut self,
        partition: i32,
        granularities: &[Granularity],
        rt_field: RtField,
        job_id: Uuid,
        start: DateTime<Utc>,
        result: &CheckResult,
    ) {
        let rollups = self.partitions.entry(partition).or_default();
        let before = rollups.len();
        add_to(
            rollups,
            &mut self.locations,
            granularities,
            rt_field,
            job_id,
            start,
            result,
        );
        self.keys += rollups.len() - before;
    }

    /// Takes the rollups of the `wanted` partitions, merged by stored row.
    pub fn take(&mut self, wanted: impl Fn(i32) -> bool, granularities: &[Granularity]) -> Vec<(RollupKey, Rollup)> {
        let mut merged: HashMap<RollupKey, Rollup> = HashMap::new();
        for (_, rollups) in self.partitions.iter_mut().filter(|(p, _)| wanted(**p)) {
            self.keys = self.keys.saturating_sub(rollups.len());
            for (key, rollup) in rollups.drain() {
                merged
                    .entry(key.to_rollup_key(granularities))
                    .or_default()
                    .merge(&rollup);
            }
        }
        merged.into_iter().collect()
    }

    /// Drops the rollups of `partitions`.
    pub fn forget(&mut self, partitions: &[i32]) {
        for partition in partitions {
            if let Some(rollups) = self.partitions.remove(partition) {
                self.keys = self.keys.saturating_sub(rollups.len());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::decode::tests::result;

    #[test]
    fn results_land_in_the_bucket_of_their_start_per_location_and_overall() {
        let job = Uuid::now_v7();
        let grans = vec![Granularity::parse("1m").unwrap(), Granularity::parse("1h").unwrap()];
        let mut pending = HashMap::new();
        let mut names = Locations::default();
        let t = Utc.with_ymd_and_hms(2026, 11, 27, 10, 1, 30).unwrap();
        add_to(
            &mut pending,
            &mut names,
            &grans,
            RtField::Duration,
            job,
            t,
            &result(job, "eu", CheckOutcome::Ok, 20, 200, t),
        );
        let t2 = t + chrono::Duration::seconds(45);
        add_to(
            &mut pending,
            &mut names,
            &grans,
            RtField::Duration,
            job,
            t2,
            &result(job, "us", CheckOutcome::Timeout, 1000, 0, t2),
        );
        let rollups: HashMap<RollupKey, Rollup> = pending
            .iter()
            .map(|(k, v)| (k.to_rollup_key(&grans), v.clone()))
            .collect();
        // 2 locations + overall, in 2 minute buckets and 1 hour bucket.
        let minute = |loc: &str, m: u32| RollupKey {
            job_id: job,
            location: loc.into(),
            granularity: "1m".into(),
            dt: Utc.with_ymd_and_hms(2026, 11, 27, 10, m, 0).unwrap(),
        };
        assert_eq!(rollups[&minute("", 1)].checks, 1);
        assert_eq!(rollups[&minute("eu", 1)].rt_min, Some(20.0));
        assert_eq!(rollups[&minute("", 2)].errors["CHECK_OUTCOME_TIMEOUT"], 1);
        assert_eq!(rollups[&minute("", 2)].rt_count, 0, "a timeout has no response time");
        let hour = RollupKey {
            job_id: job,
            location: String::new(),
            granularity: "1h".into(),
            dt: Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap(),
        };
        assert_eq!((rollups[&hour].checks, rollups[&hour].passed), (2, 1));
        assert_eq!(rollups[&hour].status["200"], 1);
        // Minutes: overall and eu at 10:01, overall and us at 10:02; hour: overall, eu, us.
        assert_eq!(rollups.len(), 4 + 3);
    }
}
