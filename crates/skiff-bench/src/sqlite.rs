//! The datastore baseline: raw SQLite (rusqlite, bundled) inserts of the very bytes the API
//! benchmark posts, with the server's durability (WAL, `synchronous=FULL`), on the same file
//! system. One row per transaction is what a store without group commit can do; 64 rows per
//! transaction is what group commit of 64 concurrent writers can reach at best.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use rusqlite::{params, Connection};

/// One baseline run.
#[derive(Debug, Clone)]
pub(crate) struct InsertRun {
    pub rows_per_txn: usize,
    pub rows: u64,
    pub elapsed: Duration,
}

impl InsertRun {
    pub(crate) fn rows_per_sec(&self) -> f64 {
        crate::stats::rate(self.rows, self.elapsed)
    }
}

/// Inserts `bodies` (cycling) into a fresh database at `path`, `rows_per_txn` rows per
/// transaction, until `max_rows` rows or `max_time` has passed (checked per transaction).
pub(crate) fn insert_run(
    path: &Path,
    bodies: &[Bytes],
    rows_per_txn: usize,
    max_rows: u64,
    max_time: Duration,
) -> anyhow::Result<InsertRun> {
    anyhow::ensure!(!bodies.is_empty() && rows_per_txn > 0, "nothing to insert");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let mut conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    anyhow::ensure!(mode.eq_ignore_ascii_case("wal"), "journal_mode is {mode}");
    conn.execute_batch(
        "PRAGMA synchronous=FULL;
         CREATE TABLE kv (
             revision INTEGER PRIMARY KEY,
             key TEXT NOT NULL UNIQUE,
             value BLOB NOT NULL
         );",
    )?;
    let started = Instant::now();
    let mut rows = 0u64;
    while rows < max_rows && started.elapsed() < max_time {
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached("INSERT INTO kv (key, value) VALUES (?1, ?2)")?;
            for _ in 0..rows_per_txn {
                if rows >= max_rows {
                    break;
                }
                let body = &bodies[(rows as usize) % bodies.len()];
                let key = format!("/registry/pods/default/bench-{rows:06}");
                stmt.execute(params![key, body.as_ref()])?;
                rows += 1;
            }
        }
        tx.commit()?;
    }
    Ok(InsertRun {
        rows_per_txn,
        rows,
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_in_batches_and_stops_at_the_row_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.db");
        let bodies = vec![Bytes::from_static(b"{}"), Bytes::from_static(b"{\"a\":1}")];
        let run = insert_run(&path, &bodies, 64, 100, Duration::from_secs(30)).unwrap();
        assert_eq!(run.rows, 100);
        assert_eq!(run.rows_per_txn, 64);
        let conn = Connection::open(&path).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM kv", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 100);
        // A second run starts from an empty database.
        let again = insert_run(&path, &bodies, 1, 3, Duration::from_secs(30)).unwrap();
        assert_eq!(again.rows, 3);
    }
}
