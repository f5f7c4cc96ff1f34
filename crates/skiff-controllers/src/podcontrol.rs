//! Creating and deleting a controller's pods with upstream's events (`RealPodControl`):
//! `SuccessfulCreate` / `FailedCreate` (`Created pod: NAME`, `Error creating: …`) and
//! `SuccessfulDelete` / `FailedDelete`. Deletes carry the pod's uid as a precondition, so a
//! pod replaced under the same name is never deleted by mistake; a pod already gone (404) or
//! replaced (409) is not an error.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use skiff_core::ApiError;
use skiff_runtime::client::{revision_of, Created};
use skiff_runtime::events::Recorder;
use skiff_runtime::{Client, Object};

/// Records one pod create's result against `owner`: the event, the newest revision written,
/// and the first error. Returns whether the pod was created.
pub fn record_create<K: Object>(
    recorder: &Recorder,
    owner: &K,
    result: Result<Created, ApiError>,
    newest: &mut i64,
    failed: &mut Option<ApiError>,
) -> bool {
    match result {
        Ok(p) => {
            *newest = (*newest).max(p.revision);
            recorder.normal(
                owner,
                "SuccessfulCreate",
                format!("Created pod: {}", p.name),
            );
            true
        }
        Err(e) => {
            recorder.warning(
                owner,
                "FailedCreate",
                format!("Error creating: {}", e.message),
            );
            failed.get_or_insert(e);
            false
        }
    }
}

/// Deletes `victims` concurrently; returns the newest revision written (pods left in their
/// grace period) and the first error.
pub async fn delete_pods<K: Object>(
    client: &Client,
    recorder: &Recorder,
    owner: &K,
    victims: &[Arc<Pod>],
) -> (i64, Option<ApiError>) {
    let results = futures::future::join_all(victims.iter().map(|p| {
        let ns = p.metadata.namespace.as_deref();
        let name = p.metadata.name.as_deref().unwrap_or("");
        let uid = p.metadata.uid.as_deref().unwrap_or("");
        client.delete_uid::<Pod>(ns, name, uid)
    }))
    .await;
    let (mut newest, mut failed) = (0, None);
    for (p, r) in victims.iter().zip(results) {
        let name = p.metadata.name.as_deref().unwrap_or("");
        match r {
            Ok(left) => {
                if let Some(l) = left {
                    newest = newest.max(revision_of(&l));
                }
                recorder.normal(owner, "SuccessfulDelete", format!("Deleted pod: {name}"));
            }
            Err(e) if e.code == 404 || e.code == 409 => {}
            Err(e) => {
                recorder.warning(
                    owner,
                    "FailedDelete",
                    format!("Error deleting: {}", e.message),
                );
                failed.get_or_insert(e);
            }
        }
    }
    (newest, failed)
}
