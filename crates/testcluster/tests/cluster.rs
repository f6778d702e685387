//! End-to-end checks of the test cluster itself: each test starts its own control plane
//! and asserts what the API server reads back. Without the binaries (tools/k8s/build.sh)
//! each test prints `SKIPPED: ...` and passes, unless `MLPLANE_REQUIRE_CLUSTER=1`.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use mlplane_testcluster::{node_ready, GpuNode, Options, TestCluster, GPU, K8S_VERSION};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

const ONLY_API: Options = Options {
    kwok: false,
    scheduler: false,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_comes_up_and_answers_as_v1_34() -> Result {
    let t = Instant::now();
    let Some(cluster) = TestCluster::start_with_or_skip("cluster_comes_up", ONLY_API)? else {
        return Ok(());
    };
    eprintln!(
        "etcd + kube-apiserver ready in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let client = cluster.client().await?;

    let version = client.apiserver_version().await?;
    assert_eq!(version.git_version, K8S_VERSION);
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "34")
    );

    let readyz = client
        .request_text(http::Request::get("/readyz").body(Vec::new())?)
        .await?;
    assert_eq!(readyz.trim(), "ok");

    // The API server makes its system namespaces itself; a new one is stored in etcd.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let ns = namespaces.get(name).await?;
        assert_eq!(ns.metadata.name.as_deref(), Some(name));
    }
    let created: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "e2e-up", "labels": { "purpose": "test" } }
    }))?;
    namespaces.create(&PostParams::default(), &created).await?;
    let read = namespaces.get("e2e-up").await?;
    let labels = read.metadata.labels.unwrap_or_default();
    assert_eq!(labels.get("purpose").map(String::as_str), Some("test"));
    assert!(read.metadata.uid.is_some_and(|u| !u.is_empty()));

    // The kubeconfig names this server and the admin token.
    let kubeconfig = std::fs::read_to_string(cluster.kubeconfig_path())?;
    assert!(kubeconfig.contains(&format!("server: {}", cluster.server_url())));
    assert!(kubeconfig.contains(cluster.token()));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_kwok_gpu_nodes_turn_ready() -> Result {
    let options = Options {
        kwok: true,
        scheduler: false,
    };
    let Some(cluster) = TestCluster::start_with_or_skip("thousand_nodes", options)? else {
        return Ok(());
    };
    let client = cluster.client().await?;
    let nodes: Vec<GpuNode> = (0..1000)
        .map(|i| GpuNode::new(format!("gpu-{i:04}"), 8).label("pool", format!("p{}", i % 4)))
        .collect();
    let t = Instant::now();
    cluster.create_nodes(&client, &nodes).await?;
    let created = t.elapsed();
    let ready = cluster
        .wait_nodes_ready(&client, 1000, Duration::from_secs(120))
        .await?;
    eprintln!(
        "1000 nodes created in {:.1} s, all Ready after {:.1} s",
        created.as_secs_f64(),
        t.elapsed().as_secs_f64()
    );

    // Read back from the API server: every node is Ready, with 8 GPUs allocatable.
    let listed: Api<Node> = Api::all(client.clone());
    let all = listed
        .list(&ListParams::default().labels("mlplane.test/kwok=true"))
        .await?
        .items;
    assert_eq!(ready.len(), 1000);
    assert_eq!(all.len(), 1000);
    for node in &all {
        let name = node.metadata.name.as_deref().unwrap_or("?");
        assert!(node_ready(node), "{name} is not Ready");
        let status = node.status.as_ref().expect("status");
        for list in [&status.allocatable, &status.capacity] {
            let gpus = list.as_ref().and_then(|r| r.get(GPU)).map(|q| q.0.as_str());
            assert_eq!(gpus, Some("8"), "{name}: {GPU}");
        }
        let pool = node.metadata.labels.as_ref().and_then(|l| l.get("pool"));
        assert!(
            pool.is_some_and(|p| p.starts_with('p')),
            "{name}: pool label"
        );
    }
    let p3 = listed
        .list(&ListParams::default().labels("pool=p3"))
        .await?;
    assert_eq!(p3.items.len(), 250);
    Ok(())
}

fn gpu_pod(name: &str, gpus: u32) -> Result<Pod> {
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": { "name": name },
        "spec": {
            "schedulerName": "default-scheduler",
            "containers": [{
                "name": "main",
                "image": "registry.invalid/train:1",
                "resources": {
                    "requests": { "cpu": "1", "memory": "1Gi", GPU: gpus.to_string() },
                    "limits": { GPU: gpus.to_string() }
                }
            }]
        }
    }))?)
}

/// Polls the pod every 200 ms until `done` holds, for at most `timeout`; the error shows
/// the pod's last status and the tail of kube-scheduler's log.
async fn wait_pod(
    cluster: &TestCluster,
    pods: &Api<Pod>,
    name: &str,
    timeout: Duration,
    done: impl Fn(&Pod) -> bool,
) -> Result<Pod> {
    let start = Instant::now();
    let step = Duration::from_millis(200);
    let mut last = None;
    for _ in 0..(timeout.as_millis() / step.as_millis() + 1) {
        let pod = pods.get(name).await?;
        if done(&pod) {
            return Ok(pod);
        }
        last = Some(pod);
        if start.elapsed() >= timeout {
            break;
        }
        tokio::time::sleep(step).await;
    }
    Err(format!(
        "pod {name} not as expected after {timeout:?}: {:?}\nkube-scheduler log:\n{}",
        last.map(|p| p.status),
        cluster.log_tail("kube-scheduler")
    )
    .into())
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

async fn small_gpu_cluster(test: &str) -> Result<Option<(TestCluster, Client)>> {
    let Some(cluster) = TestCluster::start_or_skip(test)? else {
        return Ok(None);
    };
    let client = cluster.client().await?;
    let nodes = [
        GpuNode::new("cpu-0", 0),
        GpuNode::new("cpu-1", 0),
        GpuNode::new("gpu-small", 2).label("gpu-model", "A10"),
        GpuNode::new("gpu-big", 8).label("gpu-model", "H200"),
    ];
    cluster.create_nodes(&client, &nodes).await?;
    cluster
        .wait_nodes_ready(&client, nodes.len(), Duration::from_secs(60))
        .await?;
    Ok(Some((cluster, client)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_scheduler_binds_a_gpu_pod_where_the_gpus_are_and_kwok_runs_it() -> Result {
    let Some((cluster, client)) = small_gpu_cluster("scheduler_binds").await? else {
        return Ok(());
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &gpu_pod("train-4", 4)?)
        .await?;
    let t = Instant::now();
    let pod = wait_pod(&cluster, &pods, "train-4", Duration::from_secs(60), |p| {
        phase(p) == "Running"
    })
    .await?;
    eprintln!(
        "pod bound and Running after {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // Only gpu-big has 4 free GPUs.
    let node_name = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    assert_eq!(node_name.as_deref(), Some("gpu-big"));
    let node = Api::<Node>::all(client.clone()).get("gpu-big").await?;
    let allocatable = node.status.and_then(|s| s.allocatable).unwrap_or_default();
    let gpus: u32 = allocatable
        .get(GPU)
        .map(|q| q.0.parse())
        .transpose()?
        .unwrap_or(0);
    assert!(gpus >= 4, "gpu-big has {gpus} {GPU}");

    let status = pod.status.expect("status");
    let scheduled = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "PodScheduled")
        .expect("PodScheduled condition");
    assert_eq!(scheduled.status, "True");
    // kwok fakes the container as running and gives the pod an IP.
    let containers = status.container_statuses.unwrap_or_default();
    assert_eq!(containers.len(), 1);
    assert!(containers[0].ready);
    assert!(containers[0]
        .state
        .as_ref()
        .and_then(|s| s.running.as_ref())
        .is_some());
    assert!(status.pod_ip.is_some_and(|ip| !ip.is_empty()));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_wanting_more_gpus_than_any_node_has_stays_pending_unschedulable() -> Result {
    let Some((cluster, client)) = small_gpu_cluster("unschedulable").await? else {
        return Ok(());
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &gpu_pod("train-16", 16)?)
        .await?;
    let unschedulable = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.type_ == "PodScheduled"
                        && c.status == "False"
                        && c.reason.as_deref() == Some("Unschedulable")
                })
            })
    };
    let pod = wait_pod(
        &cluster,
        &pods,
        "train-16",
        Duration::from_secs(60),
        unschedulable,
    )
    .await?;
    let condition = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"))
        .expect("PodScheduled condition");
    let message = condition.message.as_deref().unwrap_or("");
    assert!(
        message.contains(&format!("Insufficient {GPU}")),
        "message: {message}"
    );
    assert!(
        message.starts_with("0/4 nodes are available"),
        "message: {message}"
    );

    // Still Pending and unbound a while later.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pod = pods.get("train-16").await?;
    assert_eq!(phase(&pod), "Pending");
    assert_eq!(pod.spec.and_then(|s| s.node_name), None);
    Ok(())
}

#[test]
fn drop_stops_every_process_and_frees_the_ports() -> Result {
    // Outside any runtime: start and drop are synchronous.
    let Some(cluster) = TestCluster::start_or_skip("drop_stops")? else {
        return Ok(());
    };
    let pids = cluster.pids();
    let names: Vec<&str> = pids.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["etcd", "kube-apiserver", "kwok", "kube-scheduler"]);
    let ports = cluster.ports().to_vec();
    let dir = cluster.dir().to_path_buf();
    for (name, pid) in &pids {
        assert!(alive(*pid), "{name} ({pid}) should run");
    }
    let api = SocketAddr::from((Ipv4Addr::LOCALHOST, ports[2]));
    assert!(TcpStream::connect_timeout(&api, Duration::from_secs(1)).is_ok());

    let t = Instant::now();
    drop(cluster);
    eprintln!("cluster stopped in {:.1} s", t.elapsed().as_secs_f64());
    for (name, pid) in &pids {
        assert!(!alive(*pid), "{name} ({pid}) still runs");
    }
    for port in ports {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
        assert!(TcpListener::bind(addr).is_ok(), "port {port} still taken");
    }
    assert!(!dir.exists(), "{} still there", dir.display());
    Ok(())
}

/// True when a process with this PID exists (ours were reaped on drop, so a stopped one
/// is gone from /proc).
fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}
