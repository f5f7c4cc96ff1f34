//! What one create costs the SQLite store, next to raw SQLite inserting the same bytes.
//!
//! `[WRITERS=64] [WORK_US=µs] [COMMIT_DELAY_US=µs] [WRITER_NICE=n] [PAGE_SIZE=4096] [WAL_RESTART=bytes|0] [RANDOM_KEYS=1] cargo run --release -p skiff-store --example write_cost -- [N] [store|raw|both] [SIZE]`
//!
//! The store part opens a [`SqliteStore`] in a temporary directory and makes N creates of
//! SIZE-byte values (1024 by default) from WRITERS concurrent tasks (so batches form as they
//! do in the server; fewer writers show the per-commit cost). The raw part inserts the same
//! keys and bytes with rusqlite the way the benchmark's baseline does (WAL,
//! `synchronous=FULL`, 64 rows per transaction) on its own thread. With `WORK_US`, each
//! writer spins that long on the CPU before every create, as the API server works on a request
//! before it reaches the store: then the writers compete with the store's threads for the
//! runtime's two workers as in the server, and the report's "busy" figure (process CPU over
//! wall time, of 2 cores) shows how much CPU the commit pipeline leaves idle. Each reports wall
//! time, rate, and CPU time per row of the threads that do the work (from
//! `/proc/self/task/*/schedstat`), so the two can be compared in one run. Under
//! `valgrind --tool=callgrind --separate-threads=yes` the per-thread instruction counts are
//! the repeatable figures.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use skiff_store::sqlite::{SqliteOptions, SqliteStore};
use skiff_store::Store;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Concurrent writers (env `WRITERS`, 64 by default: the benchmark's client count).
fn writers() -> usize {
    std::env::var("WRITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

/// CPU each writer spends before every create (env `WORK_US`, none by default).
fn work() -> Duration {
    Duration::from_micros(
        std::env::var("WORK_US")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    )
}

/// Work of about `iters` loop rounds that the optimizer cannot remove.
fn churn(iters: u64) -> u64 {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..iters {
        x = std::hint::black_box(x.rotate_left(7) ^ i).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    }
    x
}

/// Loop rounds per microsecond of this machine, measured once (before any load starts).
fn rounds_per_us() -> u64 {
    static ROUNDS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *ROUNDS.get_or_init(|| {
        let mut best = u64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            churn(1_000_000);
            best = best.min(t.elapsed().as_nanos() as u64);
        }
        (1_000_000_000 / best.max(1)).max(1)
    })
}

/// Spends about `d` of CPU (a fixed amount of work, so a preempted writer still does all of it).
fn spin(d: Duration) {
    if !d.is_zero() {
        std::hint::black_box(churn(rounds_per_us() * d.as_micros() as u64));
    }
}

/// The store's options, from the environment: `PAGE_SIZE` for the new database, and
/// `WAL_RESTART` (bytes; 0 lets the WAL grow until writes pause).
fn options() -> SqliteOptions {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let mut opts = SqliteOptions::default();
    if let Some(size) = env("PAGE_SIZE") {
        opts.page_size = size as u32;
    }
    if let Some(us) = env("COMMIT_DELAY_US") {
        opts.commit_delay = Duration::from_micros(us);
    }
    if let Ok(nice) = std::env::var("WRITER_NICE") {
        // A nice value, or "off" to leave the writer's priority alone.
        opts.writer_nice = nice.parse().ok();
    }
    if let Some(bytes) = env("WAL_RESTART") {
        opts.wal_restart_bytes = (bytes > 0).then_some(bytes);
    }
    opts
}

/// CPU time (ns) of this process's threads, by name.
fn thread_cpu() -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for t in dir.flatten() {
        let p = t.path();
        let name = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        let ns = std::fs::read_to_string(p.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        out.push((name.trim().to_owned(), ns));
    }
    out
}

/// CPU time (ns) of the calling thread.
fn own_cpu() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn cpu_of(threads: &[(String, u64)], prefix: &str) -> u64 {
    threads
        .iter()
        .filter(|(n, _)| n.starts_with(prefix))
        .map(|(_, ns)| ns)
        .sum()
}

fn process_cpu() -> Duration {
    // utime + stime in clock ticks (fields 14 and 15 of /proc/self/stat).
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn body(i: usize, size: usize) -> Bytes {
    let mut v = format!(
        "{{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{{\"name\":\"bench-{i:06}\",\"namespace\":\"default\"}},\"spec\":{{"
    )
    .into_bytes();
    while v.len() + 23 < size {
        v.extend_from_slice(b"\"x\":\"0123456789abcdef\",");
    }
    v.extend_from_slice(b"\"z\":1}}");
    Bytes::from(v)
}

/// Names as the API benchmark makes them: one counter shared by all writers. With
/// `RANDOM_KEYS=1`, names in no particular order instead (as a ReplicaSet's pods get random
/// suffixes), so the key index is written at scattered pages.
fn key(i: usize) -> String {
    if std::env::var_os("RANDOM_KEYS").is_some() {
        let h = (i as u64 ^ 0x9e37_79b9_7f4a_7c15).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        return format!("/registry/pods/default/web-{:016x}", h ^ (h >> 31));
    }
    format!("/registry/pods/default/bench-{i:06}")
}

fn per_row(ns: u64, rows: usize) -> f64 {
    ns as f64 / 1000.0 / rows as f64
}

fn run_store(dir: &Path, n: usize, size: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rounds_per_us();
    let store = SqliteStore::open(&dir.join("state.db"), options()).unwrap();
    let per = n / writers();
    let bodies: Arc<Vec<Bytes>> = Arc::new((0..writers()).map(|i| body(i, size)).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let cpu0 = thread_cpu();
    let p0 = process_cpu();
    let t = Instant::now();
    let mut latencies = Vec::with_capacity(n);
    rt.block_on(async {
        let tasks: Vec<_> = (0..writers())
            .map(|w| {
                let store = store.clone();
                let bodies = bodies.clone();
                let next = next.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::with_capacity(per);
                    for _ in 0..per {
                        spin(work());
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let t0 = Instant::now();
                        store.create(&key(i), bodies[w].clone()).await.unwrap();
                        latencies.push(t0.elapsed());
                    }
                    latencies
                })
            })
            .collect();
        for t in tasks {
            latencies.extend(t.await.unwrap());
        }
    });
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let wall = t.elapsed();
    let cpu1 = thread_cpu();
    let p1 = process_cpu();
    let rows = per * writers();
    let d = |p: &str| cpu_of(&cpu1, p).saturating_sub(cpu_of(&cpu0, p));
    let stats = store.stats();
    let wal = std::fs::metadata(dir.join("state.db-wal")).map_or(0, |m| m.len());
    let db = std::fs::metadata(dir.join("state.db")).map_or(0, |m| m.len());
    println!(
        "store: {rows} creates in {:.3}s = {:.0}/s; process cpu {:.1} µs/create, busy {:.2} of 2 cores; writer {:.1} µs, checkpointer {:.1} µs per create; {} commits, largest batch {}, {} checkpoints, wal {} KiB (at most {} frames, started over {} times; {} writer checkpoints, longest {:?}), db {} KiB; latency p50 {:?} p99 {:?} max {:?}",
        wall.as_secs_f64(),
        rows as f64 / wall.as_secs_f64(),
        (p1 - p0).as_secs_f64() * 1e6 / rows as f64,
        (p1 - p0).as_secs_f64() / wall.as_secs_f64(),
        per_row(d("skiff-store-wri"), rows),
        per_row(d("skiff-store-che"), rows),
        stats.commits,
        stats.largest_batch,
        stats.checkpoints,
        wal / 1024,
        stats.wal_max_frames,
        stats.wal_restarts,
        stats.writer_checkpoints,
        stats.writer_checkpoint_max,
        db / 1024,
        pct(0.5),
        pct(0.99),
        latencies.last().copied().unwrap_or_default(),
    );
    drop(store);
}

fn run_raw(dir: &Path, n: usize, size: usize) {
    let path = dir.join("raw.db");
    let per = n / writers();
    let rows = per * writers();
    let t = Instant::now();
    let cpu = std::thread::Builder::new()
        .name("raw-sqlite".into())
        .spawn(move || {
            let c0 = own_cpu();
            let mut conn = rusqlite::Connection::open(&path).unwrap();
            let _: String = conn
                .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
                .unwrap();
            conn.execute_batch(
                "PRAGMA synchronous=FULL;
                 CREATE TABLE kv (revision INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, value BLOB NOT NULL);",
            )
            .unwrap();
            let bodies: Vec<Bytes> = (0..writers()).map(|i| body(i, size)).collect();
            let mut r = 0;
            while r < rows {
                let tx = conn.transaction().unwrap();
                {
                    let mut stmt = tx
                        .prepare_cached("INSERT INTO kv (key, value) VALUES (?1, ?2)")
                        .unwrap();
                    for _ in 0..64 {
                        if r >= rows {
                            break;
                        }
                        stmt.execute(rusqlite::params![key(r), bodies[r % writers()].as_ref()])
                            .unwrap();
                        r += 1;
                    }
                }
                tx.commit().unwrap();
            }
            own_cpu() - c0
        })
        .unwrap()
        .join()
        .unwrap();
    let wall = t.elapsed();
    println!(
        "raw:   {rows} rows in {:.3}s = {:.0}/s ({:.1} µs wall, {:.1} µs cpu per row)",
        wall.as_secs_f64(),
        rows as f64 / wall.as_secs_f64(),
        wall.as_secs_f64() * 1e6 / rows as f64,
        per_row(cpu, rows),
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let mode = args.next().unwrap_or_else(|| "both".into());
    let size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1024);
    let dir = tempfile::tempdir_in(
        std::env::var("WRITE_COST_DIR")
            .unwrap_or_else(|_| std::env::temp_dir().display().to_string()),
    )
    .unwrap();
    if mode == "store" || mode == "both" {
        run_store(dir.path(), n, size);
    }
    if mode == "raw" || mode == "both" {
        run_raw(dir.path(), n, size);
    }
}
