//! Thread scheduling priority (the store's writer first, and the server's other threads).
//!
//! Like a database's WAL writer, the store's writer is on the path of every write but needs
//! little CPU; at the default priority, under load it spends much of its time runnable but
//! waiting for a core behind the API server's threads. Linux gives each thread its own nice
//! value (`setpriority(PRIO_PROCESS, tid, ..)`, see setpriority(2)): a lower one weighs more in
//! the fair scheduler, so the writer runs as soon as it wakes. Raising priority needs root or
//! `CAP_SYS_NICE`; without it the thread keeps its priority and a debug line says so. The
//! server's other thread groups use the same call (skiff-runtime's `threads`).

/// Gives the calling thread the nice value `nice`; `false` (and the default priority kept)
/// when the process may not. `what` names the thread in the log line.
pub fn set_own_nice(nice: i32, what: &str) -> bool {
    let tid = rustix::thread::gettid();
    match rustix::process::setpriority_process(Some(tid), nice) {
        Ok(()) => {
            tracing::debug!(
                tid = tid.as_raw_nonzero().get(),
                nice,
                "{what} thread priority set"
            );
            true
        }
        Err(e) => {
            tracing::debug!(
                error = %std::io::Error::from(e),
                "{what} thread keeps the default priority (raising it needs CAP_SYS_NICE)"
            );
            false
        }
    }
}

/// The nice value of this process's thread `tid`, from procfs (field 19 of its `stat`).
pub fn nice_of(tid: &str) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(16)?.parse().ok()
}

/// The ids of this process's threads named `name`.
#[cfg(test)]
pub(crate) fn threads_named(name: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    dir.flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .map(|t| t.file_name().to_string_lossy().into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::sqlite::{SqliteOptions, SqliteStore};
    use crate::Store;

    /// The nice value threads start with here (the main thread's).
    fn inherited() -> i32 {
        nice_of(&std::process::id().to_string()).unwrap()
    }

    /// May this process raise a thread's priority? (Root or `CAP_SYS_NICE`.)
    fn may_raise() -> bool {
        std::thread::spawn(|| set_own_nice(-1, "test"))
            .join()
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_thread_runs_at_the_configured_nice_value() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(
            &dir.path().join("s.db"),
            SqliteOptions {
                writer_nice: Some(-3),
                ..SqliteOptions::default()
            },
        )
        .unwrap();
        // Once a write is answered the writer has set its priority. (Other tests' stores
        // have writers too, at the default -10.)
        store.create("/a", Bytes::new()).await.unwrap();
        let nices: Vec<_> = threads_named("skiff-store-wri")
            .iter()
            .filter_map(|t| nice_of(t))
            .collect();
        if may_raise() {
            assert!(nices.contains(&-3), "{nices:?}");
        } else {
            assert!(nices.iter().all(|&n| n == inherited()), "{nices:?}");
        }
        // The other threads keep theirs.
        let checkpoint = threads_named("skiff-store-che");
        assert!(checkpoint.iter().all(|t| nice_of(t) == Some(inherited())));
    }

    #[test]
    fn the_nice_value_is_read_from_procfs() {
        std::thread::spawn(|| {
            let tid = std::fs::read_link("/proc/thread-self")
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let base = inherited();
            assert_eq!(nice_of(&tid), Some(base));
            // Lowering one's own priority is always allowed.
            assert!(set_own_nice(base + 1, "test"));
            assert_eq!(nice_of(&tid), Some(base + 1));
        })
        .join()
        .unwrap();
    }
}
