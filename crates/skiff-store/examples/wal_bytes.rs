//! How many bytes the WAL takes per written row, by page size and key order.
//!
//! `cargo run --release -p skiff-store --example wal_bytes -- [ROWS_PER_COMMIT] [SIZE] [in-order|random] [PAGE_SIZE] [EXISTING] [UPDATES]`
//!
//! Opens a [`SqliteStore`] once in a temporary directory so that the database has the store's
//! own schema and page size, closes it, then writes to the file directly with rusqlite as the
//! store's writer does (`BEGIN IMMEDIATE`, one `INSERT` into the log per write, `COMMIT`, WAL,
//! `synchronous=FULL`, no checkpoint): first EXISTING rows in one transaction, checkpointed
//! away, then 50 commits of ROWS_PER_COMMIT rows of SIZE bytes, a fraction UPDATES of them new
//! revisions of keys written recently. Then it reads the WAL's frame headers and reports
//! frames (pages) per commit, bytes per commit and bytes per row, and how often page 1 (whose
//! header holds the file's size) was among them. Keys are `…/bench-pod-0000001` in order, or
//! a ReplicaSet's pod names (`…/web-6d4cf56db6-xxxxx`) with random suffixes.

use std::path::Path;

use rusqlite::{params, Connection};
use skiff_store::sqlite::{SqliteOptions, SqliteStore};

const COMMITS: usize = 50;

fn arg<T: std::str::FromStr>(i: usize, default: T) -> T {
    std::env::args()
        .nth(i)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// xorshift64: enough randomness for key suffixes, reproducible from run to run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn key(i: usize, random: bool, rng: &mut Rng) -> String {
    if !random {
        return format!("/registry/pods/default/bench-pod-{i:07}");
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let suffix: String = (0..5)
        .map(|_| ALPHABET[(rng.next() % ALPHABET.len() as u64) as usize] as char)
        .collect();
    format!("/registry/pods/default/web-6d4cf56db6-{suffix}")
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let per_commit: usize = arg(1, 12);
    let size: usize = arg(2, 2700);
    let random = arg::<String>(3, "in-order".into()) == "random";
    let page_size: u32 = arg(4, 16 * 1024);
    let existing: usize = arg(5, 20_000);
    let updates: f64 = arg(6, 0.0);

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("state.db");
    let opts = SqliteOptions {
        page_size,
        ..Default::default()
    };
    drop(SqliteStore::open(&path, opts)?);

    let conn = Connection::open(&path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let value = vec![b'x'; size];
    let mut keys = Vec::new();
    let mut rev: i64 = conn.query_row("SELECT COALESCE(MAX(rev), 0) FROM log", [], |r| r.get(0))?;
    let insert = "INSERT INTO log(rev, key, create_rev, prev_rev, value, deleted) \
                  VALUES (?1, ?2, ?3, NULL, ?4, 0)";
    // Prepared once, as the writer does.
    let mut stmt = conn.prepare(insert)?;
    conn.execute_batch("BEGIN IMMEDIATE")?;
    for i in 0..existing {
        rev += 1;
        let k = key(i, random, &mut rng);
        stmt.execute(params![rev, k, rev, value])?;
        keys.push(k);
    }
    conn.execute_batch("COMMIT")?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;

    for c in 0..COMMITS {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        for j in 0..per_commit {
            rev += 1;
            let update = (rng.next() % 1000) as f64 / 1000.0 < updates && !keys.is_empty();
            let k = if update {
                let recent = keys.len().min(2000);
                keys[keys.len() - 1 - (rng.next() as usize % recent)].clone()
            } else {
                let k = key(existing + c * per_commit + j, random, &mut rng);
                keys.push(k.clone());
                k
            };
            stmt.execute(params![rev, k, rev, value])?;
        }
        conn.execute_batch("COMMIT")?;
    }
    report(&path.with_extension("db-wal"), page_size, per_commit)
}

/// Reads the WAL's frame headers: each is the page number and, for a commit's last frame,
/// the database size after it.
fn report(wal: &Path, page_size: u32, per_commit: usize) -> Result<()> {
    let bytes = std::fs::read(wal)?;
    let frame = page_size as usize + 24;
    let (mut frames, mut commits, mut page_one) = (0usize, 0usize, 0usize);
    for f in bytes.get(32..).unwrap_or_default().chunks_exact(frame) {
        let page = u32::from_be_bytes(f[0..4].try_into()?);
        let commit = u32::from_be_bytes(f[4..8].try_into()?);
        frames += 1;
        page_one += usize::from(page == 1);
        commits += usize::from(commit != 0);
    }
    if commits == 0 {
        return Err("no commit in the WAL".into());
    }
    let per_commit_bytes = (frames * page_size as usize) as f64 / commits as f64;
    println!(
        "{frames} frames in {commits} commits: {:.1} frames a commit, {:.0} KiB a commit, \
         {:.1} KiB a row; page 1 in {page_one} of them",
        frames as f64 / commits as f64,
        per_commit_bytes / 1024.0,
        per_commit_bytes / per_commit as f64 / 1024.0,
    );
    Ok(())
}
