//! A real Kubernetes control plane for end-to-end tests, on this machine, without Docker.
//!
//! [`TestCluster::start_or_skip`] starts etcd and kube-apiserver (and, by default, kwok
//! and the upstream kube-scheduler) as child processes on free loopback ports, with all
//! their state in a fresh temporary directory, and waits until the API server's
//! `/readyz` answers `ok`. Dropping the [`TestCluster`] stops every process it started
//! by PID (SIGTERM, then SIGKILL after a bounded wait) and deletes the directory.
//!
//! ```no_run
//! # async fn t() -> Result<(), mlplane_testcluster::Error> {
//! use mlplane_testcluster::{GpuNode, TestCluster};
//! let Some(cluster) = TestCluster::start_or_skip("my test")? else { return Ok(()) };
//! let client = cluster.client().await?;
//! cluster.create_nodes(&client, &[GpuNode::new("gpu-0", 8)]).await?;
//! # Ok(()) }
//! ```
//!
//! The binaries come from `tools/k8s/build.sh`, which builds them into
//! `$MLPLANE_K8S_BIN` (default `$HOME/.cache/mlplane/k8s-v1.34.4`). When they are
//! missing the cluster is skipped: `start_or_skip` writes `SKIPPED: <reason>` to stderr
//! and returns `Ok(None)`, unless `MLPLANE_REQUIRE_CLUSTER=1`, where a skip is
//! [`Error::Required`].
//!
//! **Every process listens on 127.0.0.1 only, and every wait is bounded in both the
//! number of tries and the time.** A process that exits during start-up is reported with
//! the tail of its log.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, NodeStatus};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

/// The Kubernetes release the binaries are built from (`tools/k8s/go.mod`).
pub const K8S_VERSION: &str = "v1.34.4";
/// The extended resource of a GPU.
pub const GPU: &str = "nvidia.com/gpu";
/// The label every node made by [`TestCluster::create_nodes`] carries, with value `true`.
pub const NODE_LABEL: &str = "mlplane.test/kwok";
/// The annotation by which kwok picks the nodes it manages.
pub const KWOK_ANNOTATION: &str = "kwok.x-k8s.io/node";

const BINARIES: [&str; 4] = ["etcd", "kube-apiserver", "kwok", "kube-scheduler"];
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(100);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const LOG_TAIL_LINES: usize = 30;
const START_ATTEMPTS: usize = 3;

/// What can go wrong starting or using a test cluster.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The cluster could not start and `MLPLANE_REQUIRE_CLUSTER=1` asks for one.
    #[error("MLPLANE_REQUIRE_CLUSTER=1 but no test cluster for {test}: {reason}")]
    Required { test: String, reason: String },
    #[error("{what} ({path}): {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("could not start {binary}: {source}")]
    Spawn { binary: PathBuf, source: io::Error },
    #[error("{name} exited during start-up with {status}; last lines of {log}:\n{tail}")]
    Exited {
        name: &'static str,
        status: ExitStatus,
        log: PathBuf,
        tail: String,
    },
    #[error("timed out after {secs} s waiting for {what}{}", log_suffix(.tail))]
    Timeout {
        what: String,
        secs: u64,
        tail: String,
    },
    #[error("openssl could not make the service-account key: {0}")]
    Openssl(String),
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        source: kube::config::KubeconfigError,
    },
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

fn log_suffix(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!("; last log lines:\n{tail}")
    }
}

/// Which components to run besides etcd and kube-apiserver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// kwok: makes nodes annotated `kwok.x-k8s.io/node=fake` Ready and runs their pods.
    pub kwok: bool,
    /// The upstream kube-scheduler (`schedulerName: default-scheduler`).
    pub scheduler: bool,
}

impl Default for Options {
    /// Both kwok and kube-scheduler.
    fn default() -> Self {
        Options {
            kwok: true,
            scheduler: true,
        }
    }
}

/// Where the binaries are: `$MLPLANE_K8S_BIN`, else `$HOME/.cache/mlplane/k8s-v1.34.4`.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MLPLANE_K8S_BIN").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
    Path::new(&home)
        .join(".cache/mlplane")
        .join(format!("k8s-{K8S_VERSION}"))
}

/// A child process the cluster started; stopped by PID on drop of the cluster.
#[derive(Debug)]
struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Ok while running; the exit as an error otherwise.
    fn check_running(&mut self) -> Result<(), Error> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(Error::Exited {
                name: self.name,
                status,
                log: self.log.clone(),
                tail: tail(&self.log),
            }),
            Err(source) => Err(Error::Io {
                what: "waiting for a child",
                path: self.log.clone(),
                source,
            }),
        }
    }

    /// SIGTERM, wait up to `STOP_TIMEOUT`, then SIGKILL and reap.
    fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) on the PID of our own child, not yet reaped (try_wait said it
        // is running), so the PID cannot have been reused.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running control plane. Drop stops it.
#[derive(Debug)]
pub struct TestCluster {
    // Field order matters: processes stop (Drop of TestCluster) before the directory goes.
    procs: Vec<Proc>,
    ports: Vec<u16>,
    api_port: u16,
    kubeconfig: PathBuf,
    token: String,
    dir: tempfile::TempDir,
}

impl TestCluster {
    /// Starts a cluster with kwok and kube-scheduler ([`Options::default`]), or returns
    /// `Ok(None)` after writing `SKIPPED: <reason>` to stderr when the binaries are not
    /// built. With `MLPLANE_REQUIRE_CLUSTER=1` a skip is [`Error::Required`].
    pub fn start_or_skip(test: &str) -> Result<Option<TestCluster>, Error> {
        Self::start_with_or_skip(test, Options::default())
    }

    /// [`TestCluster::start_or_skip`] with a choice of components.
    pub fn start_with_or_skip(test: &str, options: Options) -> Result<Option<TestCluster>, Error> {
        let bin = bin_dir();
        let missing: Vec<&str> = BINARIES
            .iter()
            .copied()
            .filter(|b| !bin.join(b).is_file())
            .collect();
        let reason = if !missing.is_empty() {
            Some(format!(
                "{} not found in {} (build them with tools/k8s/build.sh, which needs Go)",
                missing.join(", "),
                bin.display()
            ))
        } else if Command::new("openssl")
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| !s.success())
            .unwrap_or(true)
        {
            Some("openssl not found (it makes the service-account signing key)".to_string())
        } else {
            None
        };
        if let Some(reason) = reason {
            if std::env::var("MLPLANE_REQUIRE_CLUSTER").as_deref() == Ok("1") {
                return Err(Error::Required {
                    test: test.to_string(),
                    reason,
                });
            }
            eprintln!("SKIPPED: {test}: {reason}");
            return Ok(None);
        }
        // A chosen port can be taken by another process before the server binds it;
        // then start again on fresh ports, at most three times in all.
        for _ in 1..START_ATTEMPTS {
            match Self::start(&bin, options) {
                Err(Error::Exited { tail, .. }) if tail.contains("address already in use") => {}
                other => return other.map(Some),
            }
        }
        Self::start(&bin, options).map(Some)
    }

    /// Starts the cluster from the binaries in `bin`; errors instead of skipping.
    pub fn start(bin: &Path, options: Options) -> Result<TestCluster, Error> {
        let dir = tempfile::Builder::new()
            .prefix("mlplane-testcluster-")
            .tempdir()
            .map_err(|source| Error::Io {
                what: "creating the cluster directory",
                path: std::env::temp_dir(),
                source,
            })?;
        let root = dir.path().to_path_buf();
        let token = random_token(&root)?;
        let ports = free_ports(3)?;
        let (etcd_port, peer_port, api_port) = (ports[0], ports[1], ports[2]);
        let mut cluster = TestCluster {
            procs: Vec::new(),
            ports: ports.clone(),
            api_port,
            kubeconfig: root.join("kubeconfig"),
            token,
            dir,
        };

        // etcd: one member, loopback, data in the temp dir, no fsync (tests only).
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        cluster.spawn(
            "etcd",
            bin,
            &[
                "--name=test".into(),
                format!("--data-dir={}", root.join("etcd").display()),
                format!("--listen-client-urls={etcd_url}"),
                format!("--advertise-client-urls={etcd_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=test={peer_url}"),
                "--unsafe-no-fsync=true".into(),
                "--log-level=warn".into(),
            ],
        )?;

        // kube-apiserver: static token for an admin in system:masters, RBAC, its own
        // self-signed serving certificate, a service-account key made with openssl.
        let token_file = root.join("tokens.csv");
        write(
            &token_file,
            &format!("{},admin,admin,system:masters\n", cluster.token),
        )?;
        let sa_key = root.join("sa.key");
        openssl_key(&sa_key)?;
        let cert_dir = root.join("certs");
        cluster.spawn(
            "kube-apiserver",
            bin,
            &[
                format!("--etcd-servers={etcd_url}"),
                "--bind-address=127.0.0.1".into(),
                "--advertise-address=127.0.0.1".into(),
                format!("--secure-port={api_port}"),
                format!("--cert-dir={}", cert_dir.display()),
                format!("--token-auth-file={}", token_file.display()),
                "--authorization-mode=Node,RBAC".into(),
                format!("--service-account-key-file={}", sa_key.display()),
                format!("--service-account-signing-key-file={}", sa_key.display()),
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
                "--service-cluster-ip-range=10.96.0.0/16".into(),
                // No controller-manager makes the `default` ServiceAccount or lifts the
                // not-ready taint, so those admission plugins are off.
                "--disable-admission-plugins=ServiceAccount,TaintNodesByCondition".into(),
                // Endpoints may not hold a loopback address: no `kubernetes` endpoint.
                "--endpoint-reconciler-type=none".into(),
                "--profiling=false".into(),
                "--v=1".into(),
            ],
        )?;
        let ca = cert_dir.join("apiserver.crt");
        cluster.wait_for("the API server's serving certificate", || {
            Ok(fs::metadata(&ca).map(|m| m.len() > 0).unwrap_or(false))
        })?;
        write(
            &cluster.kubeconfig,
            &kubeconfig_yaml(api_port, &ca, &cluster.token),
        )?;
        cluster.wait_ready()?;

        if options.kwok {
            let config = root.join("kwok.yaml");
            write(&config, KWOK_CONFIG)?;
            let kubeconfig = cluster.kubeconfig.display().to_string();
            cluster.spawn(
                "kwok",
                bin,
                &[
                    format!("--config={}", config.display()),
                    format!("--kubeconfig={kubeconfig}"),
                    format!("--manage-nodes-with-annotation-selector={KWOK_ANNOTATION}=fake"),
                    "--node-lease-duration-seconds=40".into(),
                ],
            )?;
        }
        if options.scheduler {
            let kubeconfig = cluster.kubeconfig.display().to_string();
            cluster.spawn(
                "kube-scheduler",
                bin,
                &[
                    format!("--kubeconfig={kubeconfig}"),
                    format!("--authentication-kubeconfig={kubeconfig}"),
                    format!("--authorization-kubeconfig={kubeconfig}"),
                    "--leader-elect=false".into(),
                    // No HTTPS endpoint: nothing listens but the API server and etcd.
                    "--secure-port=0".into(),
                    "--v=2".into(),
                ],
            )?;
        }
        // A component that fails on its flags exits at once: catch that here.
        std::thread::sleep(Duration::from_millis(200));
        for p in &mut cluster.procs {
            p.check_running()?;
        }
        Ok(cluster)
    }

    /// The kubeconfig (admin token, the API server's CA), for kubectl and Go clients.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The API server's URL, `https://127.0.0.1:<port>`.
    pub fn server_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.api_port)
    }

    /// The admin's bearer token (group `system:masters`).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The cluster's temporary directory (logs `<component>.log`, etcd data, certificates).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The PIDs of the running components, in start order, with their names.
    pub fn pids(&self) -> Vec<(&'static str, u32)> {
        self.procs.iter().map(|p| (p.name, p.child.id())).collect()
    }

    /// The loopback ports the cluster chose: etcd client, etcd peer, API server.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// The tail of a component's log (`etcd`, `kube-apiserver`, `kwok`, `kube-scheduler`).
    pub fn log_tail(&self, name: &str) -> String {
        tail(&self.dir.path().join(format!("{name}.log")))
    }

    /// A kube client on the admin's kubeconfig. Call it inside a tokio runtime.
    pub async fn client(&self) -> Result<Client, Error> {
        client_for(&self.kubeconfig).await
    }

    /// Creates the nodes (labelled `mlplane.test/kwok=true` and annotated for kwok), 32
    /// requests at a time.
    pub async fn create_nodes(&self, client: &Client, nodes: &[GpuNode]) -> Result<(), Error> {
        let api: Api<Node> = Api::all(client.clone());
        futures::stream::iter(nodes.iter().map(|n| {
            let api = api.clone();
            async move { api.create(&PostParams::default(), &n.to_node()).await }
        }))
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await?;
        Ok(())
    }

    /// Waits until at least `count` nodes labelled `mlplane.test/kwok=true` report the
    /// condition `Ready=True`, for at most `timeout`; returns the nodes as last listed.
    pub async fn wait_nodes_ready(
        &self,
        client: &Client,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<Node>, Error> {
        let api: Api<Node> = Api::all(client.clone());
        let params = ListParams::default().labels(&format!("{NODE_LABEL}=true"));
        let start = Instant::now();
        let step = Duration::from_millis(250);
        let tries = timeout.as_millis() / step.as_millis() + 1;
        let mut ready = 0;
        for _ in 0..tries {
            let nodes = api.list(&params).await?.items;
            ready = nodes.iter().filter(|n| node_ready(n)).count();
            if ready >= count {
                return Ok(nodes);
            }
            if start.elapsed() >= timeout {
                break;
            }
            tokio::time::sleep(step).await;
        }
        Err(Error::Timeout {
            what: format!("{count} Ready nodes ({ready} Ready)"),
            secs: timeout.as_secs(),
            tail: self.log_tail("kwok"),
        })
    }

    fn spawn(&mut self, name: &'static str, bin: &Path, args: &[String]) -> Result<(), Error> {
        let binary = bin.join(name);
        let log = self.dir.path().join(format!("{name}.log"));
        let out = fs::File::create(&log).map_err(|source| Error::Io {
            what: "creating a log",
            path: log.clone(),
            source,
        })?;
        let err = out.try_clone().map_err(|source| Error::Io {
            what: "creating a log",
            path: log.clone(),
            source,
        })?;
        let child = Command::new(&binary)
            .args(args)
            .current_dir(self.dir.path())
            // kwok reads ~/.kwok; keep every component away from the developer's home.
            .env("HOME", self.dir.path())
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|source| Error::Spawn { binary, source })?;
        self.procs.push(Proc { name, child, log });
        Ok(())
    }

    /// Polls `done` every `POLL` until true, for at most `READY_TIMEOUT`; fails early when
    /// a component exits.
    fn wait_for(
        &mut self,
        what: &str,
        mut done: impl FnMut() -> Result<bool, Error>,
    ) -> Result<(), Error> {
        let start = Instant::now();
        let tries = READY_TIMEOUT.as_millis() / POLL.as_millis() + 1;
        for _ in 0..tries {
            for p in &mut self.procs {
                p.check_running()?;
            }
            if done()? {
                return Ok(());
            }
            if start.elapsed() >= READY_TIMEOUT {
                break;
            }
            std::thread::sleep(POLL);
        }
        Err(Error::Timeout {
            what: what.to_string(),
            secs: READY_TIMEOUT.as_secs(),
            tail: self.log_tail("kube-apiserver"),
        })
    }

    /// Waits until `GET /readyz` says `ok`. The checks run on a thread of their own with
    /// their own runtime, so this works inside and outside a tokio runtime; this thread
    /// meanwhile watches that no component exits.
    fn wait_ready(&mut self) -> Result<(), Error> {
        let kubeconfig = self.kubeconfig.clone();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let stop = Arc::new(AtomicBool::new(false));
        let stop_checker = Arc::clone(&stop);
        // Ok(true): ready; Ok(false): told to stop or out of time.
        let checker = std::thread::spawn(move || -> Result<bool, Error> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|source| Error::Io {
                    what: "starting a tokio runtime",
                    path: kubeconfig.clone(),
                    source,
                })?;
            rt.block_on(async {
                let client = client_for(&kubeconfig).await?;
                let start = Instant::now();
                let tries = READY_TIMEOUT.as_millis() / POLL.as_millis() + 1;
                for _ in 0..tries {
                    if stop_checker.load(Ordering::Relaxed) || start.elapsed() >= READY_TIMEOUT {
                        break;
                    }
                    let req = http::Request::get("/readyz")
                        .body(Vec::new())
                        .expect("a valid request");
                    let answer =
                        tokio::time::timeout(Duration::from_secs(5), client.request_text(req))
                            .await;
                    if matches!(&answer, Ok(Ok(body)) if body.trim() == "ok") {
                        return Ok(true);
                    }
                    let _ = tx.send(format!("{answer:?}"));
                    tokio::time::sleep(POLL).await;
                }
                Ok(false)
            })
        });
        let mut last = String::new();
        let waited = self.wait_for("the API server's /readyz", || {
            while let Ok(answer) = rx.try_recv() {
                last = answer;
            }
            Ok(checker.is_finished())
        });
        stop.store(true, Ordering::Relaxed);
        let checked = checker.join().unwrap_or(Ok(false));
        let timeout = |tail: String| Error::Timeout {
            what: format!("the API server's /readyz (last answer: {last})"),
            secs: READY_TIMEOUT.as_secs(),
            tail,
        };
        match (waited, checked) {
            (Ok(()), Ok(true)) => Ok(()),
            (Ok(()), Err(e)) => Err(e),
            (Ok(()), Ok(false)) | (Err(Error::Timeout { .. }), _) => {
                Err(timeout(self.log_tail("kube-apiserver")))
            }
            (Err(e), _) => Err(e),
        }
    }
}

impl Drop for TestCluster {
    /// Stops the components in reverse start order, each by PID: SIGTERM, then SIGKILL
    /// after at most 10 s; every one is reaped before the directory is deleted.
    fn drop(&mut self) {
        for p in self.procs.iter_mut().rev() {
            p.stop();
        }
    }
}

/// A fake node for kwok, with CPU, memory, GPUs (`nvidia.com/gpu`) and labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuNode {
    pub name: String,
    /// Kubernetes quantity, e.g. `"64"`.
    pub cpu: String,
    /// Kubernetes quantity, e.g. `"512Gi"`.
    pub memory: String,
    /// Whole GPUs in capacity and allocatable; 0 leaves `nvidia.com/gpu` out.
    pub gpus: u32,
    /// Pod limit.
    pub pods: u32,
    pub labels: BTreeMap<String, String>,
}

impl GpuNode {
    /// A node with 64 CPUs, 512Gi memory, 110 pods and `gpus` GPUs.
    pub fn new(name: impl Into<String>, gpus: u32) -> Self {
        GpuNode {
            name: name.into(),
            cpu: "64".into(),
            memory: "512Gi".into(),
            gpus,
            pods: 110,
            labels: BTreeMap::new(),
        }
    }

    /// Adds a label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// The Node object: status capacity = allocatable (nodes may set status on create).
    pub fn to_node(&self) -> Node {
        let mut labels = self.labels.clone();
        labels.insert(NODE_LABEL.into(), "true".into());
        labels.insert("kubernetes.io/hostname".into(), self.name.clone());
        labels.insert("kubernetes.io/os".into(), "linux".into());
        labels.insert("type".into(), "kwok".into());
        let mut resources = BTreeMap::from([
            ("cpu".to_string(), Quantity(self.cpu.clone())),
            ("memory".to_string(), Quantity(self.memory.clone())),
            ("pods".to_string(), Quantity(self.pods.to_string())),
        ]);
        if self.gpus > 0 {
            resources.insert(GPU.into(), Quantity(self.gpus.to_string()));
        }
        Node {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                labels: Some(labels),
                annotations: Some(BTreeMap::from([(
                    KWOK_ANNOTATION.to_string(),
                    "fake".to_string(),
                )])),
                ..ObjectMeta::default()
            },
            status: Some(NodeStatus {
                capacity: Some(resources.clone()),
                allocatable: Some(resources),
                ..NodeStatus::default()
            }),
            ..Node::default()
        }
    }
}

/// True when the node has the condition `Ready` with status `True`.
pub fn node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn client_for(kubeconfig: &Path) -> Result<Client, Error> {
    let err = |source| Error::Kubeconfig {
        path: kubeconfig.to_path_buf(),
        source,
    };
    let kc = Kubeconfig::read_from(kubeconfig).map_err(err)?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(err)?;
    Ok(Client::try_from(config)?)
}

/// kwok's configuration: more parallel node and pod updates than its default of 4, so a
/// thousand nodes turn Ready in seconds.
const KWOK_CONFIG: &str = "\
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options:
  nodePlayStageParallelism: 16
  nodeLeaseParallelism: 16
  podPlayStageParallelism: 16
";

fn kubeconfig_yaml(port: u16, ca: &Path, token: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: mlplane-test
  cluster:
    server: https://127.0.0.1:{port}
    certificate-authority: {ca}
users:
- name: admin
  user:
    token: {token}
contexts:
- name: mlplane-test
  context:
    cluster: mlplane-test
    user: admin
    namespace: default
current-context: mlplane-test
",
        ca = ca.display()
    )
}

/// `n` distinct free loopback ports. The listeners close before the servers bind them,
/// so another process could take one in between; a server that then fails to bind is
/// reported as [`Error::Exited`], and
/// [`TestCluster::start_with_or_skip`] starts again on fresh ports.
fn free_ports(n: usize) -> Result<Vec<u16>, Error> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| Error::Io {
            what: "choosing a free port",
            path: PathBuf::from("127.0.0.1:0"),
            source,
        })?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| Error::Io {
            what: "choosing a free port",
            path: PathBuf::from("127.0.0.1:0"),
            source,
        })
}

/// 32 hex digits from /dev/urandom.
fn random_token(dir: &Path) -> Result<String, Error> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|source| Error::Io {
            what: "reading /dev/urandom for the admin token",
            path: dir.to_path_buf(),
            source,
        })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn openssl_key(path: &Path) -> Result<(), Error> {
    let out = Command::new("openssl")
        .args(["genrsa", "-out"])
        .arg(path)
        .arg("2048")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Openssl(e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Openssl(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    fs::write(path, text).map_err(|source| Error::Io {
        what: "writing",
        path: path.to_path_buf(),
        source,
    })
}

/// The last `LOG_TAIL_LINES` lines of a log, or "" when it cannot be read.
fn tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}
