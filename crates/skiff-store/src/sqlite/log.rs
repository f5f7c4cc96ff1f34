//! The on-disk revision log: schema, connection setup and the SQL behind every read and write.
//!
//! One row per revision in `log` (`rev` is the global revision and the rowid). A deletion is a
//! tombstone row (`deleted = 1`, empty value) whose `prev_rev` names the row it deleted, so the
//! deleted value is read from there. `meta` persists the compaction point. The current revision
//! is the newest row's: compaction only removes rows below the compaction point, which is at
//! most the current revision, so the row of the current revision always stays and the revision
//! never goes backwards across restarts. (`meta.current_rev`, which older versions updated on
//! every commit, is still read as a lower bound.)
//! Like etcd's MVCC store, the newest row of a key at or below a revision is its value there.
//!
//! There is no index on `key`: which revisions each key has is kept in memory (the store's
//! `History`, rebuilt from one pass over the log at open), and rows are read by revision. An
//! index on `(key, rev)` put each write's entry on a leaf page of its own wherever the key
//! sorts, so that every commit wrote one more whole page to the WAL (and the checkpoint copied
//! it again) per key written; databases made with one have it dropped at open.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension};

use super::{revision_at, Entry, History};
use crate::{Event, EventKind, KeyValue, Revision, StoreError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log (
    rev INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    create_rev INTEGER NOT NULL,
    prev_rev INTEGER,
    value BLOB NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0
);
DROP INDEX IF EXISTS log_key_rev;
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta(name, value) VALUES ('schema_version', 1);
INSERT OR IGNORE INTO meta(name, value) VALUES ('current_rev', 0);
INSERT OR IGNORE INTO meta(name, value) VALUES ('compact_rev', 0);
INSERT OR IGNORE INTO meta(name, value) VALUES ('compact_done', 0);
";

/// Maps an SQLite error to the store's error, naming what was being done.
pub(crate) fn backend(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("sqlite: {what}: {e}"))
}

/// Which connection is being opened; they get different pragmas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The single writer: durable commits, no automatic checkpoints on commit.
    Writer,
    /// Reads at an exact revision and log catch-up for watchers.
    Reader,
    /// Runs passive WAL checkpoints in the background.
    Checkpointer,
}

/// Opens the writer's connection; a new database gets pages of `page_size` bytes (an existing
/// one keeps its own: SQLite cannot change the page size of a WAL database).
pub(crate) fn open_writer(path: &Path, page_size: u32) -> rusqlite::Result<Connection> {
    open(path, Role::Writer, Some(page_size))
}

pub(crate) fn open_connection(path: &Path, role: Role) -> rusqlite::Result<Connection> {
    open(path, role, None)
}

fn open(path: &Path, role: Role, page_size: Option<u32>) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    if let Some(size) = page_size {
        // Only takes effect before the database's first page is written (journal_mode=WAL
        // writes it), and is ignored for an existing database.
        conn.pragma_update(None, "page_size", size)?;
    }
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    if role == Role::Writer {
        // Checkpoints run on their own connection (PASSIVE), never inside a writer's commit.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        conn.execute_batch(SCHEMA)?;
    }
    Ok(conn)
}

/// What the database says at open.
pub(crate) struct Loaded {
    pub index: BTreeMap<String, Entry>,
    pub history: History,
    pub current: Revision,
    pub compacted: Revision,
    pub compact_done: Revision,
}

pub(crate) fn meta(conn: &Connection, name: &str) -> rusqlite::Result<i64> {
    conn.query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
        r.get(0)
    })
}

pub(crate) fn set_meta(conn: &Connection, name: &str, value: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE meta SET value = ?2 WHERE name = ?1")?
        .execute(params![name, value])?;
    Ok(())
}

/// Rebuilds the index of live keys, every key's revisions and the revision counters from the
/// database, in one pass over the log in revision order (its rowid: no sort, no index): each
/// row is a key's newest so far, so the index ends with the newest of each live key.
pub(crate) fn load(conn: &Connection) -> rusqlite::Result<Loaded> {
    let max_rev: Option<i64> = conn.query_row("SELECT max(rev) FROM log", [], |r| r.get(0))?;
    let compacted = meta(conn, "compact_rev")?;
    let current = meta(conn, "current_rev")?
        .max(max_rev.unwrap_or(0))
        .max(compacted);
    let compact_done = meta(conn, "compact_done")?;
    let mut history = History::new();
    let mut index = BTreeMap::new();
    let mut stmt =
        conn.prepare("SELECT rev, key, create_rev, value, deleted FROM log ORDER BY rev")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let rev: i64 = r.get(0)?;
        let deleted = r.get::<_, i64>(4)? != 0;
        let key = r.get_ref(1)?.as_str()?;
        let entry = if deleted { -rev } else { rev };
        match history.get_mut(key) {
            Some(revs) => revs.push(entry),
            None => {
                history.insert(key.to_owned(), vec![entry]);
            }
        }
        if deleted {
            index.remove(key);
            continue;
        }
        let live = Entry {
            value: Bytes::copy_from_slice(r.get_ref(3)?.as_blob()?),
            create_revision: r.get(2)?,
            mod_revision: rev,
        };
        match index.get_mut(key) {
            Some(slot) => *slot = live,
            None => {
                index.insert(key.to_owned(), live);
            }
        }
    }
    drop(rows);
    Ok(Loaded {
        index,
        history,
        current,
        compacted,
        compact_done,
    })
}

/// Appends one row to the log: `(rev, key, create_rev, prev_rev, value, deleted)`. The writer
/// prepares it once per batch and checks every row in memory first (see `writer`).
pub(crate) const APPEND: &str = "INSERT INTO log(rev, key, create_rev, prev_rev, value, deleted) \
                                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/// Removes, among rows with `lo <= rev < hi`, those superseded by a newer row of the same key
/// at or below `point` (by `history`, every key's revisions), and tombstones. Steps must run in
/// increasing `rev` order so that no tombstone goes before the rows it hides. Returns the rows
/// removed, for the caller to take out of `history` once committed.
pub(crate) fn compact_range(
    conn: &Connection,
    lo: Revision,
    hi: Revision,
    point: Revision,
    history: &History,
) -> rusqlite::Result<Vec<(String, Revision)>> {
    let mut rows = Vec::new();
    {
        let mut scan =
            conn.prepare_cached("SELECT rev, key, deleted FROM log WHERE rev >= ?1 AND rev < ?2")?;
        let mut found = scan.query(params![lo, hi])?;
        while let Some(r) = found.next()? {
            let rev: i64 = r.get(0)?;
            let deleted: i64 = r.get(2)?;
            let key = r.get_ref(1)?.as_str()?;
            let superseded = deleted != 0
                || history.get(key).is_some_and(|revs| {
                    let newer = revs.partition_point(|r| r.abs() <= rev);
                    revs.get(newer).is_some_and(|r| r.abs() <= point)
                });
            if superseded {
                rows.push((key.to_owned(), rev));
            }
        }
    }
    let mut delete = conn.prepare_cached("DELETE FROM log WHERE rev = ?1")?;
    for (_, rev) in &rows {
        delete.execute([rev])?;
    }
    Ok(rows)
}

/// The row of revision `rev`: its create revision and value; `None` once compacted away.
fn row(conn: &Connection, rev: Revision) -> rusqlite::Result<Option<(Revision, Bytes)>> {
    conn.prepare_cached("SELECT create_rev, value FROM log WHERE rev = ?1")?
        .query_row([rev], |r| {
            Ok((r.get(0)?, Bytes::from(r.get::<_, Vec<u8>>(1)?)))
        })
        .optional()
}

/// The value of `key` at revision `mod_rev`, read by its revision (which the caller found in
/// the history); `None` if the row is gone (compacted meanwhile).
pub(crate) fn get_at(
    conn: &Connection,
    key: &str,
    mod_rev: Revision,
) -> rusqlite::Result<Option<KeyValue>> {
    Ok(
        row(conn, mod_rev)?.map(|(create_revision, value)| KeyValue {
            key: key.to_owned(),
            mod_revision: mod_rev,
            create_revision,
            value,
        }),
    )
}

/// The rows of `keys` (each with the revision it has at the revision listed), read in one
/// transaction; `Err` with the revision of a row that is gone (compacted meanwhile).
pub(crate) fn rows_at(
    conn: &Connection,
    keys: Vec<(String, Revision)>,
) -> rusqlite::Result<Result<Vec<KeyValue>, Revision>> {
    let tx = conn.unchecked_transaction()?;
    let mut items = Vec::with_capacity(keys.len());
    for (key, mod_rev) in keys {
        match row(&tx, mod_rev)? {
            Some((create_revision, value)) => items.push(KeyValue {
                key,
                mod_revision: mod_rev,
                create_revision,
                value,
            }),
            None => return Ok(Err(mod_rev)),
        }
    }
    tx.finish()?;
    Ok(Ok(items))
}

/// Keys under `prefix` (strictly after `start_after`) with a value at revision `rev`, by
/// `history`, at most `limit` (0: all), each with the revision of that value; the flag says
/// more keys follow.
pub(crate) fn list_at(
    history: &History,
    prefix: &str,
    start_after: Option<&str>,
    limit: usize,
    rev: Revision,
) -> (Vec<(String, Revision)>, bool) {
    let lower = match start_after {
        Some(s) if s >= prefix => Bound::Excluded(s),
        _ => Bound::Included(prefix),
    };
    let mut keys = Vec::new();
    for (key, revs) in history.range::<str, _>((lower, Bound::Unbounded)) {
        if !key.starts_with(prefix) {
            break;
        }
        let Some(mod_rev) = revision_at(revs, rev).filter(|r| *r > 0) else {
            continue;
        };
        if limit > 0 && keys.len() == limit {
            return (keys, true);
        }
        keys.push((key.clone(), mod_rev));
    }
    (keys, false)
}

/// One log row as a watch reads it: revision, key, create revision, value, tombstone flag and
/// the previous row's value.
type LogRow = (Revision, String, Revision, Vec<u8>, bool, Option<KeyValue>);

/// Events under `prefix` with `after < rev <= upto`, at most `limit`, with previous values.
/// Returns them and the revision scanned up to (the cursor to continue from).
pub(crate) fn events_between(
    conn: &Connection,
    prefix: &str,
    after: Revision,
    upto: Revision,
    limit: usize,
) -> Result<(Vec<Arc<Event>>, Revision), StoreError> {
    let read = || -> rusqlite::Result<Vec<LogRow>> {
        let mut stmt = conn.prepare_cached(
            "SELECT l.rev, l.key, l.create_rev, l.value, l.deleted, p.rev, p.create_rev, p.value
             FROM log l LEFT JOIN log p ON p.rev = l.prev_rev
             WHERE l.rev > ?1 AND l.rev <= ?2 AND substr(l.key, 1, ?3) = ?4
             ORDER BY l.rev LIMIT ?5",
        )?;
        let rows = stmt.query_map(
            params![
                after,
                upto,
                prefix.chars().count() as i64,
                prefix,
                limit as i64
            ],
            |r| {
                let key: String = r.get(1)?;
                let prev_rev: Option<i64> = r.get(5)?;
                let prev = match prev_rev {
                    Some(p) => Some(KeyValue {
                        key: key.clone(),
                        mod_revision: p,
                        create_revision: r.get(6)?,
                        value: Bytes::from(r.get::<_, Vec<u8>>(7)?),
                    }),
                    None => None,
                };
                Ok((
                    r.get(0)?,
                    key,
                    r.get(2)?,
                    r.get(3)?,
                    r.get::<_, i64>(4)? != 0,
                    prev,
                ))
            },
        )?;
        rows.collect()
    };
    let rows = read().map_err(|e| backend("reading the log for a watch", e))?;
    let scanned = if rows.len() == limit {
        rows.last().map_or(upto, |r| r.0)
    } else {
        upto
    };
    let mut events = Vec::with_capacity(rows.len());
    for (rev, key, create_rev, value, deleted, prev) in rows {
        let event = if deleted {
            let Some(prev) = prev else {
                return Err(StoreError::Backend(format!(
                    "sqlite: tombstone of {key} at revision {rev} has no previous row"
                )));
            };
            Event {
                kind: EventKind::Delete,
                kv: KeyValue {
                    mod_revision: rev,
                    ..prev.clone()
                },
                prev: Some(prev),
            }
        } else {
            Event {
                kind: EventKind::Put,
                kv: KeyValue {
                    key,
                    value: Bytes::from(value),
                    create_revision: create_rev,
                    mod_revision: rev,
                },
                prev,
            }
        };
        events.push(Arc::new(event));
    }
    Ok((events, scanned))
}

/// Counts rows in the log (for tests and stats).
pub(crate) fn row_count(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT count(*) FROM log", [], |r| r.get(0))
}
