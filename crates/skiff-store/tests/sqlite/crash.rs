//! Crash durability: a child process (this test binary, re-executed) writes keys
//! concurrently and prints each acknowledged one; it is killed with SIGKILL mid-way, and every
//! acknowledged key must be in the reopened store, with gapless revisions.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use skiff_store::conformance::next_events;
use skiff_store::{ReadAt, Store};

const DIR_ENV: &str = "SKIFF_STORE_CRASH_DIR";

/// The child: does nothing unless started by `acknowledged_writes_survive_kill_9`.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let s = super::open(std::path::Path::new(&dir));
        let tasks: Vec<_> = (0..16)
            .map(|t| {
                let s = s.clone();
                tokio::spawn(async move {
                    // Bounded, in case the parent dies without killing us.
                    let end = Instant::now() + Duration::from_secs(30);
                    let mut i = 0;
                    while Instant::now() < end {
                        let key = format!("/crash/{t}/{i}");
                        let rev = s.create(&key, Bytes::from(vec![b'x'; 512])).await.unwrap();
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "ack {key} {rev}").unwrap();
                        out.flush().unwrap();
                        i += 1;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = super::tempdir();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash::crash_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start child");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = Vec::new();
    while acked.len() < 2000 {
        let line = lines.next().expect("child ended early").unwrap();
        if let Some(rest) = line.strip_prefix("ack ") {
            acked.push(rest.to_owned());
        }
    }
    child.kill().expect("kill -9 the child");
    child.wait().unwrap();
    // Everything printed before the kill was acknowledged too.
    for line in lines {
        if let Some(rest) = line.unwrap().strip_prefix("ack ") {
            acked.push(rest.to_owned());
        }
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let s = super::open(dir.path());
        let current = s.current_revision();
        assert!(current >= acked.len() as i64);
        for a in &acked {
            let (key, rev) = a.split_once(' ').unwrap();
            let rev: i64 = rev.parse().unwrap();
            let kv = s.get(key, ReadAt::Latest).await.unwrap().0;
            let kv = kv.unwrap_or_else(|| panic!("acknowledged {key} at {rev} lost"));
            assert_eq!(kv.mod_revision, rev);
        }
        let mut w = s.watch("", 0).await.unwrap();
        let ev = next_events(&mut w, current as usize).await;
        let revs: Vec<_> = ev.iter().map(|e| e.revision()).collect();
        assert_eq!(
            revs,
            (1..=current).collect::<Vec<_>>(),
            "revisions are gapless"
        );
        assert_eq!(s.count("/crash/").await.unwrap(), current as usize);
        eprintln!("crash: {} acknowledged, {} durable", acked.len(), current);
    });
}
