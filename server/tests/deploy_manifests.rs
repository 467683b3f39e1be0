//! Static checks of the deployment files: `Dockerfile`, `deploy/compose.yaml`
//! and the Kubernetes manifests in `deploy/k8s/`.
//!
//! Nothing here talks to Docker or a cluster. The checks parse every YAML
//! document under `deploy/` and cross-check what a schema cannot: that every
//! environment variable set for one of our programs is one that program reads
//! (collected from the `env = "..."` attributes and `env::var("...")` calls in
//! its sources), that secret, config map and volume references resolve, that
//! the probes point at the right paths and ports, that the worker healthchecks
//! ask `/readyz` and that compose builds Dockerfile targets that exist.
//! `scripts/validate-deploy` adds a schema check.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

use serde::Deserialize as _;
use serde_norway::Value;

/// Default of KAFKA_TOPIC_PARTITIONS: more aggregators (or alert evaluators)
/// than this sit idle.
const DEFAULT_TOPIC_PARTITIONS: i64 = 6;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the server crate lives in the workspace")
        .to_path_buf()
}

fn files_under(dir: &Path, keep: &dyn Fn(&Path) -> bool, out: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|err| panic!("reading {}: {err}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            files_under(&path, keep, out);
        } else if keep(&path) {
            out.push(path);
        }
    }
    out.sort();
}

fn is_yaml(path: &Path) -> bool {
    matches!(path.extension().and_then(|ext| ext.to_str()), Some("yaml" | "yml"))
}

/// One parsed YAML document and where it came from.
struct Doc {
    origin: String,
    value: Value,
}

/// Every non-empty document of every YAML file under `dir`.
fn load_yaml_dir(dir: &Path) -> Vec<Doc> {
    let mut files = Vec::new();
    files_under(dir, &is_yaml, &mut files);
    assert!(!files.is_empty(), "no YAML files under {}", dir.display());
    files.iter().flat_map(|file| load_yaml_file(file)).collect()
}

fn load_yaml_file(file: &Path) -> Vec<Doc> {
    let text = fs::read_to_string(file).unwrap_or_else(|err| panic!("reading {}: {err}", file.display()));
    let name = file.strip_prefix(repo_root()).unwrap_or(file).display().to_string();
    let mut docs = Vec::new();
    for (index, document) in serde_norway::Deserializer::from_str(&text).enumerate() {
        let value = Value::deserialize(document).unwrap_or_else(|err| panic!("{name}, document {index}: {err}"));
        if !value.is_null() {
            docs.push(Doc {
                origin: format!("{name}#{index}"),
                value,
            });
        }
    }
    docs
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(value, |value, key| value.get(*key))?.as_str()
}

fn seq<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value.get(key).and_then(Value::as_sequence).map_or(&[], Vec::as_slice)
}

fn map_keys(value: Option<&Value>) -> BTreeSet<String> {
    value
        .and_then(Value::as_mapping)
        .map(|mapping| {
            mapping
                .keys()
                .filter_map(|key| key.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Which of our programs an image or Dockerfile target runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Program {
    Server,
    Worker,
    Mock,
}

impl Program {
    fn crate_dir(self) -> &'static str {
        match self {
            Program::Server => "server",
            Program::Worker => "worker",
            Program::Mock => "mock",
        }
    }

    fn from_target(target: &str) -> Option<Self> {
        match target {
            "server" => Some(Program::Server),
            "worker" => Some(Program::Worker),
            "mock" => Some(Program::Mock),
            _ => None,
        }
    }

    /// `registry.example.com/monitor-server:0.1.0` runs the server.
    fn from_image(image: &str) -> Option<Self> {
        let last = image.rsplit('/').next().unwrap_or(image);
        let name = last.split([':', '@']).next().unwrap_or(last);
        match name {
            "monitor-server" => Some(Program::Server),
            "monitor-worker" => Some(Program::Worker),
            "monitor-mock" => Some(Program::Mock),
            _ => None,
        }
    }
}

/// The environment variables each program reads: clap's `env = "..."`
/// attributes and direct `env::var("...")` calls in its sources, plus
/// RUST_LOG (read by tracing's `EnvFilter::try_from_default_env`).
fn env_vars_read() -> BTreeMap<Program, BTreeSet<String>> {
    let mut all = BTreeMap::new();
    for program in [Program::Server, Program::Worker, Program::Mock] {
        let mut sources = Vec::new();
        let src = repo_root().join(program.crate_dir()).join("src");
        files_under(
            &src,
            &|path| path.extension().is_some_and(|ext| ext == "rs"),
            &mut sources,
        );
        let mut names = BTreeSet::from(["RUST_LOG".to_owned()]);
        for source in sources {
            let text = fs::read_to_string(&source).expect("reading a source file");
            for marker in ["env = \"", "env::var(\"", "env::var_os(\""] {
                for (at, _) in text.match_indices(marker) {
                    let rest = &text[at + marker.len()..];
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                        .collect();
                    if !name.is_empty() && rest[name.len()..].starts_with('"') {
                        names.insert(name);
                    }
                }
            }
        }
        all.insert(program, names);
    }
    // A broken scan must fail loudly instead of accepting nothing.
    for (program, name) in [
        (Program::Server, "DATABASE_URL"),
        (Program::Server, "MONITOR_LISTEN"),
        (Program::Server, "MONITOR_NO_MIGRATE"),
        (Program::Worker, "KAFKA_BROKERS"),
        (Program::Worker, "MONITOR_WORKER_TOKEN"),
        (Program::Worker, "KAFKA_CA_FILE"),
        (Program::Mock, "MOCK_LISTEN"),
    ] {
        assert!(
            all[&program].contains(name),
            "the source scan missed {name} of {program:?}"
        );
    }
    all
}

fn dockerfile_targets() -> BTreeSet<String> {
    let text = fs::read_to_string(repo_root().join("Dockerfile")).expect("reading Dockerfile");
    text.lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                [from, _image, as_, name] if from.eq_ignore_ascii_case("FROM") && as_.eq_ignore_ascii_case("AS") => {
                    Some((*name).to_owned())
                }
                _ => None,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Kubernetes

struct Cluster {
    objects: Vec<Doc>,
    kustomization: Option<Doc>,
    secrets: BTreeMap<String, BTreeSet<String>>,
    config_maps: BTreeMap<String, BTreeSet<String>>,
}

fn cluster() -> Cluster {
    let mut objects = Vec::new();
    let mut kustomization = None;
    for doc in load_yaml_dir(&repo_root().join("deploy/k8s")) {
        if str_at(&doc.value, &["kind"]) == Some("Kustomization") {
            assert!(kustomization.is_none(), "{}: a second Kustomization", doc.origin);
            kustomization = Some(doc);
        } else {
            objects.push(doc);
        }
    }
    let mut secrets = BTreeMap::new();
    let mut config_maps = BTreeMap::new();
    for doc in &objects {
        let name = str_at(&doc.value, &["metadata", "name"]).unwrap_or_default().to_owned();
        let (data, extra) = match str_at(&doc.value, &["kind"]) {
            Some("Secret") => ("data", "stringData"),
            Some("ConfigMap") => ("data", "binaryData"),
            _ => continue,
        };
        let mut keys = map_keys(doc.value.get(data));
        keys.extend(map_keys(doc.value.get(extra)));
        let table = if extra == "stringData" {
            &mut secrets
        } else {
            &mut config_maps
        };
        assert!(
            table.insert(name.clone(), keys).is_none(),
            "{}: {name} defined twice",
            doc.origin
        );
    }
    Cluster {
        objects,
        kustomization,
        secrets,
        config_maps,
    }
}

/// The pod spec of a workload, if the object is one.
fn pod_spec(object: &Value) -> Option<&Value> {
    match str_at(object, &["kind"])? {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            object.get("spec")?.get("template")?.get("spec")
        }
        "CronJob" => object
            .get("spec")?
            .get("jobTemplate")?
            .get("spec")?
            .get("template")?
            .get("spec"),
        _ => None,
    }
}

fn env_value<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    seq(container, "env")
        .iter()
        .find(|var| str_at(var, &["name"]) == Some(name))
        .and_then(|var| str_at(var, &["value"]))
}

fn workload<'a>(cluster: &'a Cluster, kind: &str, name: &str) -> &'a Value {
    &cluster
        .objects
        .iter()
        .find(|doc| {
            str_at(&doc.value, &["kind"]) == Some(kind) && str_at(&doc.value, &["metadata", "name"]) == Some(name)
        })
        .unwrap_or_else(|| panic!("deploy/k8s defines no {kind} {name}"))
        .value
}

fn first_container(object: &Value) -> &Value {
    seq(pod_spec(object).expect("a workload"), "containers")
        .first()
        .expect("a container")
}

#[test]
fn every_kubernetes_object_is_named_and_in_the_namespace() {
    let cluster = cluster();
    let namespaces: BTreeSet<&str> = cluster
        .objects
        .iter()
        .filter(|doc| str_at(&doc.value, &["kind"]) == Some("Namespace"))
        .filter_map(|doc| str_at(&doc.value, &["metadata", "name"]))
        .collect();
    assert!(namespaces.contains("monitor"), "no Namespace monitor");
    let mut seen = BTreeSet::new();
    for doc in &cluster.objects {
        for field in [&["apiVersion"][..], &["kind"], &["metadata", "name"]] {
            let value = str_at(&doc.value, field).unwrap_or_default();
            assert!(!value.is_empty(), "{}: {} missing", doc.origin, field.join("."));
        }
        let kind = str_at(&doc.value, &["kind"]).unwrap_or_default();
        let name = str_at(&doc.value, &["metadata", "name"]).unwrap_or_default();
        if kind != "Namespace" {
            let namespace = str_at(&doc.value, &["metadata", "namespace"]);
            assert!(
                namespace.is_some_and(|ns| namespaces.contains(ns)),
                "{}: {kind} {name} is in namespace {namespace:?}, not one defined in deploy/k8s",
                doc.origin
            );
        }
        assert!(seen.insert((kind, name)), "{}: {kind} {name} defined twice", doc.origin);
    }
}

#[test]
fn kustomization_lists_existing_files() {
    let cluster = cluster();
    let kustomization = cluster.kustomization.expect("deploy/k8s/kustomization.yaml");
    let dir = repo_root().join("deploy/k8s");
    let listed: BTreeSet<&str> = seq(&kustomization.value, "resources")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(!listed.is_empty(), "the kustomization lists no resources");
    for resource in &listed {
        assert!(
            dir.join(resource).is_file(),
            "kustomization.yaml lists {resource}, which does not exist"
        );
    }
    // Every manifest is applied, except the example secrets (made with kubectl).
    let mut files = Vec::new();
    files_under(&dir, &is_yaml, &mut files);
    for file in files {
        let name = file.strip_prefix(&dir).expect("under deploy/k8s").display().to_string();
        if name != "kustomization.yaml" && name != "secrets.example.yaml" {
            assert!(
                listed.contains(name.as_str()),
                "deploy/k8s/{name} is not in kustomization.yaml"
            );
        }
    }
    for doc in load_yaml_file(&dir.join("secrets.example.yaml")) {
        assert_eq!(
            str_at(&doc.value, &["kind"]),
            Some("Secret"),
            "{}: only Secrets belong here",
            doc.origin
        );
    }
}

#[test]
fn workloads_have_pinned_images_limits_non_root_and_known_env() {
    let cluster = cluster();
    let env_read = env_vars_read();
    let mut workloads = 0;
    for doc in &cluster.objects {
        let Some(spec) = pod_spec(&doc.value) else { continue };
        workloads += 1;
        let origin = &doc.origin;
        if let Some(labels) = doc
            .value
            .get("spec")
            .and_then(|spec| spec.get("selector"))
            .and_then(|s| s.get("matchLabels"))
        {
            let template_labels = doc.value["spec"]["template"]["metadata"]["labels"]
                .as_mapping()
                .cloned()
                .unwrap_or_default();
            for (key, value) in labels.as_mapping().expect("matchLabels is a mapping") {
                assert_eq!(
                    template_labels.get(key),
                    Some(value),
                    "{origin}: selector {key:?} does not match the template"
                );
            }
        }
        let pod_non_root = spec["securityContext"]["runAsNonRoot"].as_bool() == Some(true);
        // Volumes and what they reference.
        let mut volumes = BTreeMap::new();
        for volume in seq(spec, "volumes") {
            let name = str_at(volume, &["name"]).expect("a volume has a name").to_owned();
            let (table, source, kind) = if let Some(secret) = str_at(volume, &["secret", "secretName"]) {
                (&cluster.secrets, secret, "secret")
            } else if let Some(config_map) = str_at(volume, &["configMap", "name"]) {
                (&cluster.config_maps, config_map, "configMap")
            } else {
                volumes.insert(name, (String::new(), BTreeSet::new()));
                continue;
            };
            let keys = table
                .get(source)
                .unwrap_or_else(|| panic!("{origin}: volume {name} uses {kind} {source}, not defined in deploy/k8s"));
            let items = seq(&volume[kind], "items");
            let mut files = BTreeSet::new();
            for item in items {
                let key = str_at(item, &["key"]).unwrap_or_default();
                assert!(
                    keys.contains(key),
                    "{origin}: volume {name}: {kind} {source} has no key {key}"
                );
                files.insert(str_at(item, &["path"]).unwrap_or(key).to_owned());
            }
            if items.is_empty() {
                files.clone_from(keys);
            }
            volumes.insert(name, (source.to_owned(), files));
        }
        let containers = seq(spec, "containers");
        assert!(!containers.is_empty(), "{origin}: no containers");
        for container in containers.iter().chain(seq(spec, "initContainers")) {
            let name = str_at(container, &["name"]).unwrap_or_default();
            assert!(!name.is_empty(), "{origin}: a container without a name");
            let image = str_at(container, &["image"]).unwrap_or_default();
            let last = image.rsplit('/').next().unwrap_or_default();
            assert!(
                !image.is_empty() && (last.contains(':') || last.contains('@')),
                "{origin}: container {name}: image {image:?} is not pinned to a tag"
            );
            assert!(
                !image.ends_with(":latest"),
                "{origin}: container {name}: image {image} uses latest"
            );
            for bound in ["requests", "limits"] {
                for resource in ["cpu", "memory"] {
                    assert!(
                        !container["resources"][bound][resource].is_null(),
                        "{origin}: container {name}: resources.{bound}.{resource} missing"
                    );
                }
            }
            assert!(
                pod_non_root || container["securityContext"]["runAsNonRoot"].as_bool() == Some(true),
                "{origin}: container {name} may run as root"
            );
            assert_eq!(
                container["securityContext"]["allowPrivilegeEscalation"].as_bool(),
                Some(false),
                "{origin}: container {name}: allowPrivilegeEscalation must be false"
            );
            let program = Program::from_image(image);
            let mut names = BTreeSet::new();
            for var in seq(container, "env") {
                let var_name = str_at(var, &["name"]).unwrap_or_default();
                assert!(
                    names.insert(var_name),
                    "{origin}: container {name}: {var_name} set twice"
                );
                if let Some(program) = program {
                    assert!(
                        env_read[&program].contains(var_name),
                        "{origin}: container {name}: {program:?} does not read {var_name}"
                    );
                }
                let value_from = &var["valueFrom"];
                if let Some(secret) = str_at(value_from, &["secretKeyRef", "name"]) {
                    let key = str_at(value_from, &["secretKeyRef", "key"]).unwrap_or_default();
                    let keys = cluster
                        .secrets
                        .get(secret)
                        .unwrap_or_else(|| panic!("{origin}: {var_name}: no Secret {secret}"));
                    assert!(
                        keys.contains(key),
                        "{origin}: {var_name}: Secret {secret} has no key {key}"
                    );
                }
                if let Some(config_map) = str_at(value_from, &["configMapKeyRef", "name"]) {
                    let key = str_at(value_from, &["configMapKeyRef", "key"]).unwrap_or_default();
                    let keys = cluster
                        .config_maps
                        .get(config_map)
                        .unwrap_or_else(|| panic!("{origin}: {var_name}: no ConfigMap {config_map}"));
                    assert!(
                        keys.contains(key),
                        "{origin}: {var_name}: ConfigMap {config_map} has no key {key}"
                    );
                }
            }
            for source in seq(container, "envFrom") {
                if let Some(secret) = str_at(source, &["secretRef", "name"]) {
                    assert!(
                        cluster.secrets.contains_key(secret),
                        "{origin}: envFrom: no Secret {secret}"
                    );
                }
                if let Some(config_map) = str_at(source, &["configMapRef", "name"]) {
                    assert!(
                        cluster.config_maps.contains_key(config_map),
                        "{origin}: envFrom: no ConfigMap {config_map}"
                    );
                }
            }
            // Files named by *_FILE variables exist in a mounted volume.
            for var in seq(container, "env") {
                let var_name = str_at(var, &["name"]).unwrap_or_default();
                let Some(path) = str_at(var, &["value"]).filter(|_| var_name.ends_with("_FILE")) else {
                    continue;
                };
                let (dir, file) = path.rsplit_once('/').expect("an absolute path");
                let mount = seq(container, "volumeMounts")
                    .iter()
                    .find(|mount| str_at(mount, &["mountPath"]).map(|p| p.trim_end_matches('/')) == Some(dir))
                    .unwrap_or_else(|| panic!("{origin}: {var_name}={path}: nothing is mounted at {dir}"));
                assert_eq!(
                    mount["readOnly"].as_bool(),
                    Some(true),
                    "{origin}: {dir} must be mounted read-only"
                );
                let volume = str_at(mount, &["name"]).unwrap_or_default();
                let (_, files) = &volumes[volume];
                assert!(
                    files.contains(file),
                    "{origin}: {var_name}={path}: volume {volume} has no file {file}"
                );
            }
            for mount in seq(container, "volumeMounts") {
                let volume = str_at(mount, &["name"]).unwrap_or_default();
                assert!(
                    volumes.contains_key(volume),
                    "{origin}: container {name} mounts undefined volume {volume}"
                );
            }
        }
    }
    assert!(
        workloads >= 4,
        "expected the migrate Job and three Deployments, found {workloads} workloads"
    );
}

#[test]
fn kafka_certificates_are_mounted_from_one_secret() {
    let cluster = cluster();
    let expected: BTreeSet<String> = ["ca.pem", "service.cert", "service.key"].map(str::to_owned).into();
    assert_eq!(
        cluster.secrets.get("monitor-kafka-certs"),
        Some(&expected),
        "Secret monitor-kafka-certs"
    );
    for name in ["monitor-probe", "monitor-aggregator", "monitor-alert"] {
        let deployment = workload(&cluster, "Deployment", name);
        let container = first_container(deployment);
        for (var, file) in [
            ("KAFKA_CA_FILE", "ca.pem"),
            ("KAFKA_CERT_FILE", "service.cert"),
            ("KAFKA_KEY_FILE", "service.key"),
        ] {
            let value = env_value(container, var).unwrap_or_else(|| panic!("{name}: {var} not set"));
            assert!(
                value.ends_with(&format!("/{file}")),
                "{name}: {var}={value} should name {file}"
            );
        }
        let volume = seq(pod_spec(deployment).expect("pod spec"), "volumes")
            .iter()
            .find(|volume| str_at(volume, &["secret", "secretName"]) == Some("monitor-kafka-certs"));
        assert!(volume.is_some(), "{name}: monitor-kafka-certs is not mounted");
    }
}

#[test]
fn server_migrate_job_and_worker_roles() {
    let cluster = cluster();
    let server = workload(&cluster, "Deployment", "monitor-server");
    let container = first_container(server);
    assert_eq!(
        Program::from_image(str_at(container, &["image"]).unwrap_or_default()),
        Some(Program::Server)
    );
    assert_eq!(
        str_at(container, &["readinessProbe", "httpGet", "path"]),
        Some("/readyz")
    );
    assert_eq!(
        str_at(container, &["livenessProbe", "httpGet", "path"]),
        Some("/healthz")
    );
    assert_eq!(
        env_value(container, "MONITOR_NO_MIGRATE"),
        Some("true"),
        "the Job migrates"
    );
    assert_eq!(env_value(container, "MONITOR_LISTEN"), Some("0.0.0.0:8080"));
    assert!(
        seq(container, "ports")
            .iter()
            .any(|port| port["containerPort"].as_i64() == Some(8080)),
        "the server container exposes 8080"
    );
    // The jobs file comes from the ConfigMap and is valid JSON with jobs.
    let jobs_file = env_value(container, "MONITOR_JOBS_FILE").expect("MONITOR_JOBS_FILE");
    assert!(jobs_file.ends_with("/jobs.json"), "MONITOR_JOBS_FILE={jobs_file}");
    let jobs = cluster
        .objects
        .iter()
        .find(|doc| {
            str_at(&doc.value, &["kind"]) == Some("ConfigMap")
                && str_at(&doc.value, &["metadata", "name"]) == Some("monitor-jobs")
        })
        .and_then(|doc| str_at(&doc.value, &["data", "jobs.json"]))
        .expect("ConfigMap monitor-jobs with jobs.json");
    let jobs: serde_json::Value = serde_json::from_str(jobs).expect("jobs.json in the ConfigMap is JSON");
    assert!(
        jobs["jobs"].as_array().is_some_and(|jobs| !jobs.is_empty()),
        "the ConfigMap's jobs.json has no jobs"
    );

    let service = workload(&cluster, "Service", "monitor-server");
    let selector = service["spec"]["selector"]
        .as_mapping()
        .expect("the Service selects pods");
    let labels = server["spec"]["template"]["metadata"]["labels"]
        .as_mapping()
        .expect("pod labels");
    for (key, value) in selector {
        assert_eq!(
            labels.get(key),
            Some(value),
            "Service monitor-server selects {key:?}={value:?}"
        );
    }
    assert!(
        seq(&service["spec"], "ports")
            .iter()
            .any(|port| port["port"].as_i64() == Some(8080))
    );

    let migrate = workload(&cluster, "Job", "monitor-migrate");
    let container = first_container(migrate);
    assert_eq!(
        Program::from_image(str_at(container, &["image"]).unwrap_or_default()),
        Some(Program::Server)
    );
    let args: Vec<&str> = seq(container, "args").iter().filter_map(Value::as_str).collect();
    assert_eq!(args, ["migrate"]);

    for (name, role) in [
        ("monitor-probe", "probe"),
        ("monitor-aggregator", "aggregate"),
        ("monitor-alert", "alert"),
    ] {
        let deployment = workload(&cluster, "Deployment", name);
        let container = first_container(deployment);
        assert_eq!(
            Program::from_image(str_at(container, &["image"]).unwrap_or_default()),
            Some(Program::Worker)
        );
        let args: Vec<&str> = seq(container, "args").iter().filter_map(Value::as_str).collect();
        assert_eq!(args, [role], "{name}");
        assert_worker_telemetry(name, deployment, container);
        // Probes in a cluster check public sites: nothing blocked is opened.
        assert_eq!(env_value(container, "MONITOR_WORKER_ALLOW_NET"), None, "{name}");
    }
    for name in ["monitor-aggregator", "monitor-alert"] {
        let replicas = workload(&cluster, "Deployment", name)["spec"]["replicas"].as_i64();
        assert!(
            replicas.is_some_and(|n| (1..=DEFAULT_TOPIC_PARTITIONS).contains(&n)),
            "{name} replicas ({replicas:?}) must not exceed the topic's partitions"
        );
    }

    let hpa = workload(&cluster, "HorizontalPodAutoscaler", "monitor-probe");
    assert_eq!(str_at(hpa, &["apiVersion"]), Some("autoscaling/v2"));
    assert_eq!(str_at(hpa, &["spec", "scaleTargetRef", "kind"]), Some("Deployment"));
    let target = str_at(hpa, &["spec", "scaleTargetRef", "name"]).unwrap_or_default();
    workload(&cluster, "Deployment", target);
    assert!(
        seq(&hpa["spec"], "metrics")
            .iter()
            .any(|metric| str_at(metric, &["resource", "name"]) == Some("cpu")),
        "the HPA scales on CPU"
    );
}

/// A worker's telemetry port: MONITOR_METRICS_LISTEN binds every interface on
/// a port the container declares, liveness asks `/healthz` and readiness
/// `/readyz` on that port, and the pod is annotated for Prometheus to scrape
/// `/metrics` there.
fn assert_worker_telemetry(name: &str, deployment: &Value, container: &Value) {
    let listen = env_value(container, "MONITOR_METRICS_LISTEN")
        .unwrap_or_else(|| panic!("{name}: MONITOR_METRICS_LISTEN is not set, so no /metrics, /healthz or /readyz"));
    let (host, port) = listen
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("{name}: MONITOR_METRICS_LISTEN={listen} is not host:port"));
    assert!(
        ["0.0.0.0", "[::]"].contains(&host),
        "{name}: MONITOR_METRICS_LISTEN={listen} must bind every interface for the kubelet and Prometheus to reach it"
    );
    let port: i64 = port
        .parse()
        .unwrap_or_else(|_| panic!("{name}: MONITOR_METRICS_LISTEN={listen}: bad port"));
    let declared = seq(container, "ports")
        .iter()
        .find(|declared| declared["containerPort"].as_i64() == Some(port))
        .unwrap_or_else(|| panic!("{name}: the container does not declare port {port}"));
    let port_name = str_at(declared, &["name"]);
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let http_get = &container[probe]["httpGet"];
        assert_eq!(str_at(http_get, &["path"]), Some(path), "{name}: {probe} path");
        let target = &http_get["port"];
        assert!(
            target.as_i64() == Some(port) || (target.as_str().is_some() && target.as_str() == port_name),
            "{name}: {probe} asks port {target:?}, not the telemetry port {port} ({port_name:?})"
        );
    }
    let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(
        str_at(annotations, &["prometheus.io/scrape"]),
        Some("true"),
        "{name}: pod annotation prometheus.io/scrape"
    );
    assert_eq!(
        str_at(annotations, &["prometheus.io/port"]),
        Some(port.to_string().as_str()),
        "{name}: pod annotation prometheus.io/port"
    );
    assert!(
        str_at(annotations, &["prometheus.io/path"]).is_none_or(|path| path == "/metrics"),
        "{name}: pod annotation prometheus.io/path"
    );
}

// ---------------------------------------------------------------------------
// Compose

fn compose_env(service: &Value) -> BTreeMap<String, String> {
    match service.get("environment") {
        Some(Value::Mapping(vars)) => vars
            .iter()
            .map(|(key, value)| {
                let value = match value {
                    Value::String(text) => text.clone(),
                    Value::Null => String::new(),
                    other => serde_norway::to_string(other).expect("a scalar").trim().to_owned(),
                };
                (key.as_str().expect("env names are strings").to_owned(), value)
            })
            .collect(),
        Some(Value::Sequence(vars)) => vars
            .iter()
            .map(|var| {
                let var = var.as_str().expect("env entries are strings");
                let (key, value) = var.split_once('=').unwrap_or((var, ""));
                (key.to_owned(), value.to_owned())
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn compose_command(service: &Value) -> Vec<String> {
    match service.get("command") {
        Some(Value::Sequence(words)) => words.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        Some(Value::String(line)) => line.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn compose_builds_existing_targets_and_sets_known_env() {
    let deploy = repo_root().join("deploy");
    let docs = load_yaml_file(&deploy.join("compose.yaml"));
    assert_eq!(docs.len(), 1, "compose.yaml is one document");
    let compose = &docs[0].value;
    let services = compose["services"].as_mapping().expect("compose services");
    let targets = dockerfile_targets();
    for target in ["server", "worker", "mock"] {
        assert!(
            targets.contains(target),
            "the Dockerfile has no target {target} ({targets:?})"
        );
    }
    let env_read = env_vars_read();
    let names: BTreeSet<&str> = services.keys().filter_map(Value::as_str).collect();

    // Images built by some service.
    let mut built = BTreeMap::new();
    for (name, service) in services {
        let name = name.as_str().expect("service names are strings");
        let Some(build) = service.get("build") else { continue };
        let context = deploy.join(str_at(build, &["context"]).unwrap_or("."));
        let dockerfile = str_at(build, &["dockerfile"]).unwrap_or("Dockerfile");
        assert!(
            context.join(dockerfile).is_file(),
            "{name}: no {dockerfile} in {}",
            context.display()
        );
        let target = str_at(build, &["target"]).unwrap_or_else(|| panic!("{name}: build without a target"));
        assert!(
            targets.contains(target),
            "{name}: the Dockerfile has no target {target}"
        );
        if let Some(image) = str_at(service, &["image"]) {
            built.insert(image.to_owned(), target.to_owned());
        }
    }

    let mut ours = BTreeMap::<Program, Vec<&str>>::new();
    for (name, service) in services {
        let name = name.as_str().expect("service names are strings");
        let image = str_at(service, &["image"]);
        let target = str_at(service, &["build", "target"])
            .map(str::to_owned)
            .or_else(|| image.and_then(|image| built.get(image).cloned()));
        assert!(image.is_some() || target.is_some(), "{name}: neither image nor build");
        let program = target
            .as_deref()
            .and_then(Program::from_target)
            .or_else(|| image.and_then(Program::from_image));
        if let (Some(program), None) = (program, &target) {
            panic!("{name}: uses an image of {program:?} ({image:?}) that no service builds");
        }
        for (dependency, condition) in match service.get("depends_on") {
            Some(Value::Sequence(list)) => list
                .iter()
                .filter_map(Value::as_str)
                .map(|d| (d, "service_started"))
                .collect(),
            Some(Value::Mapping(map)) => map
                .iter()
                .map(|(d, spec)| {
                    (
                        d.as_str().unwrap_or_default(),
                        str_at(spec, &["condition"]).unwrap_or("service_started"),
                    )
                })
                .collect(),
            _ => Vec::new(),
        } {
            assert!(
                names.contains(dependency),
                "{name} depends on unknown service {dependency}"
            );
            assert!(
                ["service_started", "service_healthy", "service_completed_successfully"].contains(&condition),
                "{name}: unknown depends_on condition {condition}"
            );
            if condition == "service_healthy" {
                assert!(
                    !services[dependency]["healthcheck"].is_null(),
                    "{name} waits for {dependency} to be healthy, which has no healthcheck"
                );
            }
        }
        for volume in seq(service, "volumes").iter().filter_map(Value::as_str) {
            if let Some(relative) = volume.strip_prefix("./") {
                let host = relative.split(':').next().unwrap_or_default();
                assert!(
                    deploy.join(host).exists(),
                    "{name}: bind mount ./{host} does not exist under deploy/"
                );
            }
        }
        let Some(program) = program else { continue };
        ours.entry(program).or_default().push(name);
        for var in compose_env(service).keys() {
            assert!(
                env_read[&program].contains(var),
                "compose service {name}: {program:?} does not read {var}"
            );
        }
    }
    assert_eq!(ours.get(&Program::Server).map(Vec::len), Some(1), "one server service");
    assert_eq!(ours.get(&Program::Mock).map(Vec::len), Some(1), "one mock service");

    let server_name = ours[&Program::Server][0];
    let server = &services[server_name];
    let env = compose_env(server);
    assert_eq!(env.get("MONITOR_LISTEN").map(String::as_str), Some("0.0.0.0:8080"));
    assert!(
        !env.contains_key("MONITOR_NO_MIGRATE"),
        "compose's server applies the migrations at start"
    );
    let healthcheck = serde_norway::to_string(&server["healthcheck"]["test"]).expect("healthcheck");
    assert!(
        healthcheck.contains("/readyz"),
        "the server healthcheck asks /readyz: {healthcheck}"
    );
    let jobs_file = env.get("MONITOR_JOBS_FILE").expect("the server imports a jobs file");
    let mounted = seq(server, "volumes")
        .iter()
        .filter_map(Value::as_str)
        .find_map(|volume| {
            let mut parts = volume.split(':');
            let (host, container) = (parts.next()?, parts.next()?);
            (container == jobs_file).then(|| deploy.join(host))
        });
    if let Some(host) = mounted {
        let jobs: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&host).expect("reading the jobs file")).expect("jobs JSON");
        let urls: Vec<&str> = jobs["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .filter_map(|job| job["http"]["url"].as_str())
            .collect();
        assert!(!urls.is_empty(), "no jobs in {}", host.display());
        for url in urls {
            assert!(
                !url.contains("127.0.0.1") && !url.contains("localhost"),
                "{url}: a worker container cannot reach the mock there"
            );
        }
    }

    // Two probe workers with distinct ids and locations, and an aggregator.
    let workers = &ours[&Program::Worker];
    let role = |name: &str| compose_command(&services[name]).first().cloned().unwrap_or_default();
    let probes: Vec<&str> = workers.iter().copied().filter(|name| role(name) == "probe").collect();
    assert!(probes.len() >= 2, "at least two probe workers: {probes:?}");
    let ids: BTreeSet<String> = probes
        .iter()
        .filter_map(|name| compose_env(&services[*name]).get("MONITOR_WORKER_ID").cloned())
        .collect();
    assert_eq!(ids.len(), probes.len(), "probe workers need distinct MONITOR_WORKER_ID");
    let labels: BTreeSet<String> = probes
        .iter()
        .filter_map(|name| compose_env(&services[*name]).get("MONITOR_WORKER_LABELS").cloned())
        .collect();
    assert_eq!(labels.len(), probes.len(), "probe workers need distinct locations");
    assert!(workers.iter().any(|name| role(name) == "aggregate"), "an aggregator");
    assert!(workers.iter().any(|name| role(name) == "alert"), "an alert evaluator");
    // The probes open the mock's pinned address on the compose network (a
    // private one, blocked by default) and nothing more.
    let mock = &services[ours[&Program::Mock][0]];
    let mock_address = str_at(mock, &["networks", "default", "ipv4_address"]).expect("the mock's address is pinned");
    let subnet = str_at(&compose["networks"]["default"]["ipam"]["config"][0], &["subnet"]).expect("a fixed subnet");
    let subnet: ipnet::IpNet = subnet.parse().expect("the subnet is a CIDR");
    assert!(
        subnet.contains(&mock_address.parse::<std::net::IpAddr>().expect("an IP address")),
        "the mock's {mock_address} is outside {subnet}"
    );
    for name in &probes {
        assert_eq!(
            compose_env(&services[*name])
                .get("MONITOR_WORKER_ALLOW_NET")
                .map(String::as_str),
            Some(format!("{mock_address}/32").as_str()),
            "{name} opens exactly the mock"
        );
    }
    for name in workers {
        assert!(
            ["probe", "aggregate", "alert"].contains(&role(name).as_str()),
            "{name}: monitor-worker needs probe, aggregate or alert"
        );
        // Healthy = /readyz answers 200 on the worker's telemetry port.
        let listen = compose_env(&services[*name])
            .get("MONITOR_METRICS_LISTEN")
            .cloned()
            .unwrap_or_else(|| panic!("{name}: MONITOR_METRICS_LISTEN is not set"));
        let port = listen.rsplit_once(':').map(|(_, port)| port).unwrap_or_default();
        assert!(port.parse::<u16>().is_ok(), "{name}: MONITOR_METRICS_LISTEN={listen}");
        let healthcheck = serde_norway::to_string(&services[*name]["healthcheck"]["test"]).expect("healthcheck");
        assert!(
            healthcheck.contains("/readyz") && healthcheck.contains(&format!("127.0.0.1/{port}")),
            "{name}: the healthcheck asks /readyz on port {port}: {healthcheck}"
        );
    }
}
