//! Start-up configuration: flags with `MOCK_*` environment fallbacks.
//!
//! Every value is parsed into its domain type here, so a bad setting stops
//! the mock before it listens, with clap naming the flag.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser};
use monitor_core::process::LogFormat;

use crate::draw::{DrawPlan, StatusWeights};
use crate::limits::{BodySizeRange, LatencyRange};
use crate::socks5::Socks5Login;

/// The whole command line of `monitor-mock`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "monitor-mock",
    version,
    about = "A fake website with predictable, seeded results for testing the monitor."
)]
pub struct Config {
    /// Address for plain HTTP/1.1 and HTTP/2 (prior knowledge).
    #[arg(long, env = "MOCK_LISTEN", default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,

    /// Address for HTTPS with a self-signed certificate; off when unset.
    #[arg(long, env = "MOCK_TLS_LISTEN")]
    pub tls_listen: Option<SocketAddr>,

    /// Address for the gRPC health service over plaintext HTTP/2; off when unset.
    #[arg(long, env = "MOCK_GRPC_LISTEN")]
    pub grpc_listen: Option<SocketAddr>,

    /// Address for the gRPC health service over TLS (the self-signed
    /// certificate of --tls-listen); off when unset.
    #[arg(long, env = "MOCK_GRPC_TLS_LISTEN")]
    pub grpc_tls_listen: Option<SocketAddr>,

    /// Port of the DNS responder (zone mock.test., UDP and TCP) on the
    /// address of --listen; 0 = off.
    #[arg(long, env = "MOCK_DNS_PORT", default_value_t = 0)]
    pub dns_port: u16,

    /// Address of the SSH-like banner listener; off when unset.
    #[arg(long, env = "MOCK_SSH_LISTEN")]
    pub ssh_listen: Option<SocketAddr>,

    /// Address of the SOCKS5 proxy (an open proxy: keep it on loopback);
    /// off when unset.
    #[arg(long, env = "MOCK_SOCKS5_LISTEN")]
    pub socks5_listen: Option<SocketAddr>,

    #[command(flatten)]
    pub socks5: Socks5Config,

    /// Log format: `text` for people, `json` (one object per line) for log
    /// collectors. The same variable as the server's and the workers'.
    #[arg(long, env = "MONITOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(flatten)]
    pub tls: TlsConfig,

    #[command(flatten)]
    pub mock: MockConfig,
}

/// How the mock answers: everything `run` needs besides its listeners.
#[derive(Debug, Clone, Args)]
pub struct MockConfig {
    /// Seed of every draw: the same seed gives the same answers.
    #[arg(long, env = "MOCK_SEED", default_value_t = 1, allow_hyphen_values = true)]
    pub seed: u64,

    /// Status codes of /website_mock and their weights, CODE:WEIGHT,...
    #[arg(long, env = "MOCK_CODES", default_value = "200:70,404:20,500:10")]
    pub codes: StatusWeights,

    /// Latency of /website_mock in ms: N, MIN..=MAX or MIN..MAX (at most 300000).
    #[arg(long, env = "MOCK_LATENCY_MS", default_value = "0..=50", allow_hyphen_values = true)]
    pub latency_ms: LatencyRange,

    /// Body size of /website_mock in bytes: N, MIN..=MAX or MIN..MAX (at most 16 MiB).
    #[arg(
        long,
        env = "MOCK_BODY_BYTES",
        default_value = "64..=2048",
        allow_hyphen_values = true
    )]
    pub body_bytes: BodySizeRange,

    /// How long shutdown waits for requests in flight before dropping them.
    #[arg(
        long,
        env = "MOCK_SHUTDOWN_GRACE_MS",
        default_value_t = 5000,
        allow_hyphen_values = true
    )]
    pub shutdown_grace_ms: u64,
}

impl MockConfig {
    /// What `/website_mock` draws from.
    pub fn plan(&self) -> DrawPlan {
        DrawPlan {
            statuses: self.codes.clone(),
            latency_ms: self.latency_ms,
            body_bytes: self.body_bytes,
        }
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}

/// The login the SOCKS5 proxy requires (used only with `--socks5-listen`).
#[derive(Debug, Clone, Args)]
pub struct Socks5Config {
    /// User name the proxy requires (RFC 1929); no authentication when unset.
    #[arg(long, env = "MOCK_SOCKS5_USER")]
    pub socks5_user: Option<String>,

    /// Password of that user (empty when unset).
    #[arg(long, env = "MOCK_SOCKS5_PASSWORD", requires = "socks5_user")]
    pub socks5_password: Option<String>,
}

impl Socks5Config {
    /// The login to require, if any.
    pub fn login(&self) -> Option<Socks5Login> {
        self.socks5_user.as_ref().map(|user| Socks5Login {
            user: user.clone(),
            password: self.socks5_password.clone().unwrap_or_default(),
        })
    }
}

/// The certificate of the TLS listeners (used only with `--tls-listen` or
/// `--grpc-tls-listen`).
#[derive(Debug, Clone, Args)]
pub struct TlsConfig {
    /// Start of the certificate's validity, in days from now (negative = past).
    #[arg(
        long,
        env = "MOCK_TLS_NOT_BEFORE_DAYS",
        default_value_t = -1,
        allow_negative_numbers = true,
        value_parser = clap::value_parser!(i64).range(-36_500..=36_500)
    )]
    pub tls_not_before_days: i64,

    /// End of the certificate's validity, in days from now; negative makes it expired.
    #[arg(
        long,
        env = "MOCK_TLS_NOT_AFTER_DAYS",
        default_value_t = 365,
        allow_negative_numbers = true,
        value_parser = clap::value_parser!(i64).range(-36_500..=36_500)
    )]
    pub tls_not_after_days: i64,

    /// Host names and IP addresses the certificate is for, comma-separated.
    #[arg(
        long,
        env = "MOCK_TLS_SAN",
        value_delimiter = ',',
        default_value = "localhost,127.0.0.1,::1"
    )]
    pub tls_san: Vec<String>,

    /// Also write the certificate (PEM) to this file, for clients to trust.
    #[arg(long, env = "MOCK_TLS_CERT_OUT")]
    pub tls_cert_out: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(std::iter::once("monitor-mock").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_parse() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.listen, "127.0.0.1:8081".parse().unwrap());
        assert_eq!(config.tls_listen, None);
        assert_eq!((config.grpc_listen, config.grpc_tls_listen), (None, None));
        assert_eq!(config.dns_port, 0);
        assert_eq!(config.mock.codes.to_string(), "200:70,404:20,500:10");
        assert_eq!(config.mock.latency_ms.to_string(), "0..=50");
        assert_eq!(config.tls.tls_san, ["localhost", "127.0.0.1", "::1"]);
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.ssh_listen, None);
        assert_eq!(config.socks5_listen, None);
        assert_eq!(config.socks5.login(), None);
    }

    #[test]
    fn the_socks5_login_needs_a_user() {
        let config = parse(&[
            "--socks5-listen=127.0.0.1:1080",
            "--socks5-user=u",
            "--socks5-password=p",
        ])
        .unwrap();
        assert_eq!(config.socks5_listen, Some("127.0.0.1:1080".parse().unwrap()));
        assert_eq!(
            config.socks5.login(),
            Some(Socks5Login {
                user: "u".into(),
                password: "p".into()
            })
        );
        assert_eq!(
            parse(&["--socks5-user=u"]).unwrap().socks5.login().unwrap().password,
            ""
        );
        let error = parse(&["--socks5-password=p"]).unwrap_err().to_string();
        assert!(error.contains("--socks5-user"), "{error}");
    }

    #[test]
    fn log_format_parses() {
        assert_eq!(parse(&["--log-format", "json"]).unwrap().log_format, LogFormat::Json);
        assert_eq!(parse(&["--log-format=text"]).unwrap().log_format, LogFormat::Text);
    }

    #[test]
    fn flags_parse_into_domain_types() {
        let config = parse(&[
            "--seed=9",
            "--codes=503:1",
            "--latency-ms=5..10",
            "--body-bytes=0",
            "--tls-not-before-days=-30",
            "--tls-not-after-days",
            "-2",
        ])
        .unwrap();
        assert_eq!(config.mock.seed, 9);
        assert_eq!(config.mock.plan().latency_ms.to_string(), "5..=9");
        assert_eq!(config.mock.plan().body_bytes.max(), 0);
        assert_eq!(config.tls.tls_not_before_days, -30);
        assert_eq!(config.tls.tls_not_after_days, -2);
    }

    #[test]
    fn bad_flags_are_refused_with_the_flag_named() {
        for (args, flag) in [
            (&["--codes", "200:0"][..], "--codes"),
            (&["--codes", "nonsense"], "--codes"),
            (&["--codes", "700:1"], "--codes"),
            (&["--latency-ms", "0..=300001"], "--latency-ms"),
            (&["--latency-ms", "-1..5"], "--latency-ms"),
            (&["--body-bytes", "99999999"], "--body-bytes"),
            (&["--seed", "-4"], "--seed"),
            (&["--listen", "nowhere"], "--listen"),
            (&["--tls-listen", "1.2.3.4"], "--tls-listen"),
            (&["--ssh-listen", "nowhere"], "--ssh-listen"),
            (&["--socks5-listen", "1080"], "--socks5-listen"),
            (&["--grpc-listen", "localhost"], "--grpc-listen"),
            (&["--grpc-tls-listen", ":50052"], "--grpc-tls-listen"),
            (&["--tls-not-after-days", "99999"], "--tls-not-after-days"),
            (&["--shutdown-grace-ms", "soon"], "--shutdown-grace-ms"),
            (&["--log-format", "yaml"], "--log-format"),
            (&["--log-format", ""], "--log-format"),
            (&["--dns-port", "65536"], "--dns-port"),
        ] {
            let error = parse(args).unwrap_err().to_string();
            assert!(error.contains(flag), "{args:?}: {error}");
        }
    }
}
