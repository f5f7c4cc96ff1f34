//! Durability across a crash: concurrent writers against the real `skiff` binary, which is
//! killed with SIGKILL mid-run. After a restart on the same data directory every write the
//! server acknowledged is there (at least as new as acknowledged), and resourceVersions carry
//! on upward from the highest one any client saw.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Server;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};

async fn client(server: &Server) -> Client {
    let kc = Kubeconfig::read_from(server.kubeconfig_path()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

fn cm(name: &str, n: u64) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {"test": "durability"}},
        "data": {"n": n.to_string()}
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_concurrent_writes_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api: Api<ConfigMap> = Api::namespaced(client(&server).await, "default");

    // name -> (last acknowledged value of data.n, its resourceVersion)
    let acked: Arc<Mutex<BTreeMap<String, (u64, i64)>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..16 {
        let api = api.clone();
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            // Each writer creates objects and rewrites the newest one, until the server dies.
            for i in 0u64.. {
                let name = format!("w{w}-{i}");
                let Ok(created) = api.create(&PostParams::default(), &cm(&name, 0)).await else {
                    return;
                };
                let rv: i64 = created
                    .metadata
                    .resource_version
                    .clone()
                    .unwrap()
                    .parse()
                    .unwrap();
                acked.lock().unwrap().insert(name.clone(), (0, rv));
                let mut cur = created;
                for n in 1..=3u64 {
                    cur.data = Some([("n".to_string(), n.to_string())].into());
                    let Ok(updated) = api.replace(&name, &PostParams::default(), &cur).await else {
                        return;
                    };
                    let rv: i64 = updated
                        .metadata
                        .resource_version
                        .clone()
                        .unwrap()
                        .parse()
                        .unwrap();
                    acked.lock().unwrap().insert(name.clone(), (n, rv));
                    cur = updated;
                }
            }
        }));
    }
    // Let the writers run, then pull the plug while requests are in flight.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill9();
    for w in writers {
        let _ = tokio::time::timeout(Duration::from_secs(30), w).await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 16,
        "writers made progress before the crash: {}",
        acked.len()
    );
    let max_rv = acked.values().map(|(_, rv)| *rv).max().unwrap();

    let server = Server::start(dir.path(), &[]);
    let api: Api<ConfigMap> = Api::namespaced(client(&server).await, "default");
    let list = api
        .list(&ListParams::default().labels("test=durability"))
        .await
        .unwrap();
    let stored: BTreeMap<String, (u64, i64)> = list
        .items
        .iter()
        .map(|c| {
            let n = c.data.as_ref().unwrap()["n"].parse().unwrap();
            let rv = c
                .metadata
                .resource_version
                .as_ref()
                .unwrap()
                .parse()
                .unwrap();
            (c.metadata.name.clone().unwrap(), (n, rv))
        })
        .collect();
    for (name, (n, rv)) in &acked {
        let Some((sn, srv)) = stored.get(name) else {
            panic!("acknowledged object {name} (rv {rv}) lost in the crash");
        };
        assert!(sn >= n, "{name}: acknowledged n={n}, stored n={sn}");
        assert!(srv >= rv, "{name}: acknowledged rv {rv}, stored rv {srv}");
    }
    let list_rv: i64 = list.metadata.resource_version.unwrap().parse().unwrap();
    assert!(
        list_rv >= max_rv,
        "list rv {list_rv} is behind an acknowledged rv {max_rv}"
    );
    let after = api
        .create(&PostParams::default(), &cm("after-crash", 0))
        .await
        .unwrap();
    let after_rv: i64 = after.metadata.resource_version.unwrap().parse().unwrap();
    assert!(
        after_rv > max_rv,
        "resourceVersion went backwards: {after_rv} <= {max_rv}"
    );
    eprintln!(
        "{} acknowledged objects survived SIGKILL; max rv {max_rv}",
        acked.len()
    );
}
