//! Private Apache Kafka for tests that stop, kill or misconfigure a broker
//! (the shared broker at `KAFKA_BROKERS` is never stopped).
//!
//! Each node is a KRaft combined broker+controller, the same jars
//! `scripts/kafka/run` starts (`.tools/kafka/libs`, fetched from Maven
//! Central by `scripts/lib.sh`'s `ensure_kafka`; `KAFKA_LIBS` overrides the
//! place). Data lives in a temporary directory the cluster owns, so
//! [`KafkaCluster::kill`] (SIGKILL, no goodbye) and [`KafkaCluster::restart`]
//! keep every topic, message and committed offset, as a real broker restart
//! does. A three-node cluster has a static controller quorum, replication
//! factor 3 and `min.insync.replicas=2`.
//!
//! With [`KafkaOptions::secure`] each node also has an `SSL` listener that
//! requires a client certificate and a `SASL_SSL` listener with
//! SCRAM-SHA-512, and [`TlsFiles`] holds what a managed Kafka service hands
//! out: `ca.pem`, `service.cert`, `service.key`; plus a CA that signed
//! nothing, for the wrong-CA case.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use base64::Engine as _;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rdkafka::{
    ClientConfig,
    consumer::{BaseConsumer, Consumer as _},
};
use tokio::process::{Child, Command};

use crate::free_port;

/// The SCRAM-SHA-512 user every secure node knows.
pub const SCRAM_USER: &str = "monitor";
/// That user's password.
pub const SCRAM_PASSWORD: &str = "scram-password-for-tests-0001";

/// What kind of cluster to start.
#[derive(Debug, Clone, Copy)]
pub struct KafkaOptions {
    /// Nodes, each a broker and a controller voter: 1 or 3.
    pub nodes: u32,
    /// Adds the SSL and SASL_SSL listeners (see the module's header).
    pub secure: bool,
}

impl Default for KafkaOptions {
    fn default() -> Self {
        KafkaOptions {
            nodes: 1,
            secure: false,
        }
    }
}

/// The certificate files of a secure cluster, in the layout managed Kafka
/// services use.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA that signed the brokers' and the client's certificates.
    pub ca: PathBuf,
    /// The client certificate (PEM), signed by `ca`.
    pub cert: PathBuf,
    /// The client's private key (PKCS#8 PEM).
    pub key: PathBuf,
    /// A CA that signed nothing here: trusting it must fail the handshake.
    pub other_ca: PathBuf,
}

/// One node's ports and process.
#[derive(Debug)]
struct Node {
    id: u32,
    /// PLAINTEXT: clients of plaintext tests, and the brokers among themselves.
    plain: u16,
    /// The KRaft controller listener.
    controller: u16,
    /// SSL with a required client certificate (secure clusters).
    ssl: u16,
    /// SASL_SSL with SCRAM-SHA-512 (secure clusters).
    sasl: u16,
    /// The running JVM, if any.
    child: Option<Child>,
}

/// Private Kafka nodes; killed when dropped.
#[derive(Debug)]
pub struct KafkaCluster {
    options: KafkaOptions,
    nodes: Vec<Node>,
    tls: Option<TlsFiles>,
    /// Data, configuration and logs of every node.
    dir: tempfile::TempDir,
}

impl KafkaCluster {
    /// Starts a cluster and waits until every broker is in the metadata.
    pub async fn start(options: KafkaOptions) -> KafkaCluster {
        let mut cluster = KafkaCluster::reserve(options);
        for id in cluster.ids() {
            cluster.spawn(id);
        }
        cluster.wait_brokers(options.nodes as usize).await;
        cluster
    }

    /// A single plaintext broker.
    pub async fn single() -> KafkaCluster {
        KafkaCluster::start(KafkaOptions::default()).await
    }

    /// Ports, configuration and formatted storage, with nothing running yet
    /// ([`Self::restart`] starts a node; clients see a broker that is not there).
    pub fn reserve(options: KafkaOptions) -> KafkaCluster {
        assert!(matches!(options.nodes, 1 | 3), "1 or 3 nodes, not {}", options.nodes);
        let dir = tempfile::tempdir().expect("a temporary directory");
        let nodes = (1..=options.nodes)
            .map(|id| Node {
                id,
                plain: free_port(),
                controller: free_port(),
                ssl: free_port(),
                sasl: free_port(),
                child: None,
            })
            .collect();
        let tls = options.secure.then(|| write_certificates(dir.path()));
        let cluster = KafkaCluster {
            options,
            nodes,
            tls,
            dir,
        };
        cluster.format();
        cluster
    }

    fn ids(&self) -> Vec<u32> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    fn node(&self, id: u32) -> &Node {
        self.nodes.iter().find(|n| n.id == id).expect("a node of this cluster")
    }

    fn node_mut(&mut self, id: u32) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .expect("a node of this cluster")
    }

    /// Plaintext bootstrap servers, every node.
    pub fn bootstrap(&self) -> String {
        self.list(|n| n.plain)
    }

    /// The SSL listeners (client certificate required).
    pub fn ssl_bootstrap(&self) -> String {
        assert!(self.options.secure, "a secure cluster has SSL listeners");
        self.list(|n| n.ssl)
    }

    /// The SASL_SSL listeners (SCRAM-SHA-512).
    pub fn sasl_bootstrap(&self) -> String {
        assert!(self.options.secure, "a secure cluster has SASL_SSL listeners");
        self.list(|n| n.sasl)
    }

    fn list(&self, port: impl Fn(&Node) -> u16) -> String {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", port(n)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The certificate files of a secure cluster.
    pub fn tls(&self) -> &TlsFiles {
        self.tls.as_ref().expect("a secure cluster has certificates")
    }

    /// The nodes' logs, for a failure message.
    pub fn logs(&self) -> String {
        self.ids()
            .iter()
            .map(|id| {
                let log = std::fs::read_to_string(self.log_path(*id)).unwrap_or_default();
                format!("--- node {id} ---\n{log}")
            })
            .collect()
    }

    fn node_dir(&self, id: u32) -> PathBuf {
        self.dir.path().join(format!("node-{id}"))
    }

    fn log_path(&self, id: u32) -> PathBuf {
        self.dir.path().join(format!("node-{id}.log"))
    }

    /// Writes each node's server.properties and formats its storage with
    /// one cluster id (and the SCRAM user on secure clusters).
    fn format(&self) {
        let cluster_id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uuid::Uuid::now_v7().as_bytes());
        for node in &self.nodes {
            let dir = self.node_dir(node.id);
            std::fs::create_dir_all(dir.join("log")).expect("creating the node's directory");
            let properties = dir.join("server.properties");
            std::fs::write(&properties, self.properties(node, &dir)).expect("writing server.properties");
            let mut format = java();
            format.args(["kafka.tools.StorageTool", "format", "-t", &cluster_id, "-c"]);
            format.arg(&properties);
            if self.options.secure {
                format.args([
                    "--add-scram",
                    &format!("SCRAM-SHA-512=[name={SCRAM_USER},password={SCRAM_PASSWORD}]"),
                ]);
            }
            let formatted = format.output().expect("running kafka.tools.StorageTool");
            assert!(
                formatted.status.success(),
                "formatting node {}: {}{}",
                node.id,
                String::from_utf8_lossy(&formatted.stdout),
                String::from_utf8_lossy(&formatted.stderr)
            );
        }
    }

    fn properties(&self, node: &Node, dir: &Path) -> String {
        let n = self.options.nodes;
        let isr = n.min(2);
        let voters = self
            .nodes
            .iter()
            .map(|v| format!("{}@127.0.0.1:{}", v.id, v.controller))
            .collect::<Vec<_>>()
            .join(",");
        let mut listeners = vec![
            format!("PLAINTEXT://127.0.0.1:{}", node.plain),
            format!("CONTROLLER://127.0.0.1:{}", node.controller),
        ];
        let mut advertised = vec![format!("PLAINTEXT://127.0.0.1:{}", node.plain)];
        if self.options.secure {
            for (name, port) in [("SSL", node.ssl), ("SASL_SSL", node.sasl)] {
                listeners.push(format!("{name}://127.0.0.1:{port}"));
                advertised.push(format!("{name}://127.0.0.1:{port}"));
            }
        }
        let mut text = format!(
            "process.roles=broker,controller\n\
             node.id={id}\n\
             listeners={listeners}\n\
             advertised.listeners={advertised}\n\
             controller.listener.names=CONTROLLER\n\
             inter.broker.listener.name=PLAINTEXT\n\
             listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL\n\
             controller.quorum.voters={voters}\n\
             log.dirs={log}\n\
             num.partitions=1\n\
             default.replication.factor={n}\n\
             min.insync.replicas={isr}\n\
             offsets.topic.replication.factor={n}\n\
             offsets.topic.num.partitions=10\n\
             transaction.state.log.replication.factor={n}\n\
             transaction.state.log.min.isr={isr}\n\
             share.coordinator.state.topic.replication.factor={n}\n\
             share.coordinator.state.topic.min.isr={isr}\n\
             group.initial.rebalance.delay.ms=0\n",
            id = node.id,
            listeners = listeners.join(","),
            advertised = advertised.join(","),
            log = dir.join("log").display(),
        );
        if let Some(tls) = &self.tls {
            text.push_str(&format!(
                "ssl.keystore.type=PEM\n\
                 ssl.keystore.location={keystore}\n\
                 ssl.truststore.type=PEM\n\
                 ssl.truststore.location={ca}\n\
                 listener.name.ssl.ssl.client.auth=required\n\
                 sasl.enabled.mechanisms=SCRAM-SHA-512\n\
                 listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=\
                 org.apache.kafka.common.security.scram.ScramLoginModule required;\n",
                keystore = self.dir.path().join("broker.pem").display(),
                ca = tls.ca.display(),
            ));
        }
        text
    }

    fn spawn(&mut self, id: u32) {
        let properties = self.node_dir(id).join("server.properties");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(id))
            .expect("opening the node's log");
        let mut java = Command::from(java());
        let child = java
            .arg("kafka.Kafka")
            .arg(&properties)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cloning a file handle"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("starting java (OpenJDK 17)");
        self.node_mut(id).child = Some(child);
    }

    /// Kills node `id` with SIGKILL and waits until it is gone.
    pub async fn kill(&mut self, id: u32) {
        let mut child = self.node_mut(id).child.take().expect("the node runs");
        child.start_kill().expect("sending SIGKILL");
        child.wait().await.expect("waiting for the killed node");
    }

    /// Starts node `id` again on its ports and data, and waits until it is
    /// back in the cluster's metadata.
    pub async fn restart(&mut self, id: u32) {
        assert!(self.node(id).child.is_none(), "node {id} runs already");
        self.spawn(id);
        self.wait_brokers(self.running()).await;
    }

    fn running(&self) -> usize {
        self.nodes.iter().filter(|n| n.child.is_some()).count()
    }

    /// Suspends node `id` (SIGSTOP: sockets stay open, nothing answers).
    pub fn freeze(&self, id: u32) {
        self.signal(id, "-STOP");
    }

    /// Lets a frozen node go on (SIGCONT).
    pub fn thaw(&self, id: u32) {
        self.signal(id, "-CONT");
    }

    fn signal(&self, id: u32, signal: &str) {
        let pid = self.node(id).child.as_ref().and_then(Child::id).expect("the node runs");
        let sent = std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("running kill");
        assert!(sent.success(), "kill {signal} {pid}");
    }

    /// The node that leads `partition` of `topic` now.
    pub async fn leader(&self, topic: &str, partition: i32) -> u32 {
        let (bootstrap, topic_name) = (self.bootstrap(), topic.to_owned());
        let leader = tokio::task::spawn_blocking(move || {
            let metadata = plain_consumer(&bootstrap)
                .fetch_metadata(Some(&topic_name), Duration::from_secs(10))
                .expect("metadata");
            metadata
                .topics()
                .iter()
                .flat_map(|t| t.partitions())
                .find(|p| p.id() == partition)
                .map(|p| p.leader())
        })
        .await
        .expect("the metadata task");
        let leader = leader.unwrap_or_else(|| panic!("{topic} has no partition {partition}"));
        u32::try_from(leader).unwrap_or_else(|_| panic!("{topic}/{partition} has no leader ({leader})"))
    }

    /// Waits until the metadata lists `count` live brokers.
    async fn wait_brokers(&self, count: usize) {
        let bootstrap = self.bootstrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let bootstrap = bootstrap.clone();
            let seen = tokio::task::spawn_blocking(move || {
                plain_consumer(&bootstrap)
                    .fetch_metadata(None, Duration::from_secs(2))
                    .map(|m| m.brokers().len())
                    .unwrap_or(0)
            })
            .await
            .unwrap_or(0);
            if seen == count {
                return;
            }
            for node in &self.nodes {
                if let Some(child) = &node.child {
                    assert!(child.id().is_some(), "node {} exited:\n{}", node.id, self.logs());
                }
            }
            assert!(
                Instant::now() < deadline,
                "Kafka did not show {count} brokers within 120 s (saw {seen}):\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// A metadata-only client on plaintext.
fn plain_consumer(bootstrap: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("allow.auto.create.topics", "false")
        .set("log_level", "0")
        .create()
        .expect("a Kafka metadata client")
}

/// Apache Kafka's jars: `KAFKA_LIBS`, else the repository's `.tools/kafka/libs`.
fn libs() -> PathBuf {
    let libs = std::env::var_os("KAFKA_LIBS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/kafka/libs"));
    assert!(
        libs.join(".pom.sha256").is_file(),
        "Apache Kafka's jars are not in {}: run `source scripts/lib.sh && ensure_kafka` (scripts/test does) or set KAFKA_LIBS",
        libs.display()
    );
    libs
}

/// `java` with Kafka's classpath, a heap for a small test machine, and the
/// quiet log configuration of scripts/kafka.
fn java() -> std::process::Command {
    let mut java = std::process::Command::new("java");
    java.arg("-cp")
        .arg(format!("{}/*", libs().display()))
        .args(["-Xms128m", "-Xmx512m", "-XX:+UseG1GC", "-XX:TieredStopAtLevel=1"])
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../scripts/kafka/log4j2.properties")
                .display()
        ));
    java
}

/// A CA, a broker certificate for 127.0.0.1 and localhost, a client
/// certificate, and an unrelated CA, written under `dir`; the broker's key
/// and chain go to `broker.pem` (Kafka's PEM keystore).
fn write_certificates(dir: &Path) -> TlsFiles {
    fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.distinguished_name.push(DnType::CommonName, name);
        CertifiedIssuer::self_signed(params, KeyPair::generate().expect("a key")).expect("a CA certificate")
    }
    let authority = ca("monitor test CA");
    let other = ca("a CA that signed nothing here");
    let leaf = |names: Vec<String>, common_name: &str| {
        let mut params = CertificateParams::new(names).expect("certificate parameters");
        params.distinguished_name.push(DnType::CommonName, common_name);
        let key = KeyPair::generate().expect("a key");
        let cert = params.signed_by(&key, &authority).expect("a signed certificate");
        (cert.pem(), key.serialize_pem())
    };
    let (broker_cert, broker_key) = leaf(vec!["127.0.0.1".into(), "localhost".into()], "kafka");
    let (client_cert, client_key) = leaf(vec!["monitor-worker".into()], "monitor-worker");
    let files = TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("service.cert"),
        key: dir.join("service.key"),
        other_ca: dir.join("other-ca.pem"),
    };
    let write = |path: &Path, text: &str| std::fs::write(path, text).expect("writing a certificate file");
    write(&files.ca, &authority.pem());
    write(&files.other_ca, &other.pem());
    write(&files.cert, &client_cert);
    write(&files.key, &client_key);
    write(
        &dir.join("broker.pem"),
        &format!("{broker_key}{broker_cert}{}", authority.pem()),
    );
    files
}
