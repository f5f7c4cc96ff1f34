//! The backend conformance suite against [`SqliteStore`], one test per check.

use skiff_store::conformance;

macro_rules! conformance_tests {
    ($($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let dir = super::tempdir();
                conformance::$check(super::open(dir.path())).await;
            }
        )*
    };
}

conformance_tests!(
    create_get_update_delete,
    revisions_are_contiguous,
    list_prefix_limit_start_after,
    count_prefix,
    read_at_exact_revision,
    read_at_compacted_or_future_revision,
    watch_replays_then_follows,
    watch_filters_by_prefix,
    concurrent_watchers_see_same_sequence,
    watch_from_compacted_revision,
    watch_drop_is_clean,
    concurrent_compare_and_swap,
    large_values_rejected,
);

/// `run_all` itself works with a constructor (the way another backend will call it), also
/// through `Arc<dyn Store>`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_through_dyn_store() {
    let dirs = parking_lot::Mutex::new(Vec::new());
    conformance::run_all(|| {
        let dir = super::tempdir();
        let store: skiff_store::DynStore = super::open(dir.path());
        dirs.lock().push(dir);
        async move { store }
    })
    .await;
}
