//! The ServiceAccount controller: a `default` ServiceAccount in every namespace, recreated
//! when deleted.

use std::time::Duration;

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, DeleteParams};
use skiff_testkit::TestServer;

use crate::{eventually, namespace};

#[tokio::test]
async fn every_namespace_gets_a_default_service_account() {
    let server = TestServer::start_with(|_| {}).await.unwrap();
    let client = server.client().await.unwrap();
    // The system namespaces made at bootstrap have one too.
    let kube_system: Api<ServiceAccount> = Api::namespaced(client.clone(), "kube-system");
    eventually(Duration::from_secs(10), "kube-system/default", || async {
        kube_system.get("default").await.ok()
    })
    .await;
    namespace(&client, "team-a").await;
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "team-a");
    let first = eventually(Duration::from_secs(10), "team-a/default", || async {
        sas.get("default").await.ok()
    })
    .await;
    sas.delete("default", &DeleteParams::default())
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "a new team-a/default", || async {
        let sa = sas.get("default").await.ok()?;
        (sa.metadata.uid != first.metadata.uid).then_some(())
    })
    .await;
}
