//! Turns measured outcomes into report sections: the tables, the goals from the issue and
//! whether each was met, and the ratios to the baselines, stated as measured.

use std::time::Duration;

use crate::report::{verdict, Section, Table};
use crate::scenarios::create::CreateOutcome;
use crate::scenarios::reads::ListOutcome;
use crate::scenarios::watch::WatchOutcome;
use crate::sqlite::InsertRun;
use crate::stats::{fmt_count, fmt_duration, fmt_mib, fmt_opt, fmt_rate, median, rate, Samples};

/// Goal: creates per second.
pub(crate) const GOAL_CREATES_PER_SEC: f64 = 20_000.0;
/// Goal: creates per second over SQLite's one-row-per-transaction rate.
pub(crate) const GOAL_RATIO_TO_SQLITE: f64 = 4.0;
/// Goal: p50 of a list of 10,000 pods.
pub(crate) const GOAL_LIST_P50: Duration = Duration::from_millis(100);
/// Goal: p99 of watch delivery.
pub(crate) const GOAL_WATCH_P99: Duration = Duration::from_millis(10);
/// Goal: idle resident memory.
pub(crate) const GOAL_IDLE_RSS: u64 = 50 * 1024 * 1024;
/// Goal: start to ready on a fresh data directory.
pub(crate) const GOAL_READY: Duration = Duration::from_millis(300);

/// One create run and how it was driven.
pub(crate) struct CreateRow {
    pub label: String,
    /// A baseline server's run (no goal applies), not Skiff's.
    pub baseline: bool,
    pub outcome: Result<CreateOutcome, String>,
}

/// Section 1: pod create throughput beside raw SQLite.
pub(crate) fn create_section(
    total: u64,
    clients: usize,
    runs: &[CreateRow],
    sqlite: &[(String, Result<InsertRun, String>)],
) -> Section {
    let body_bytes = runs
        .iter()
        .find_map(|r| r.outcome.as_ref().ok().map(|o| o.body_bytes))
        .unwrap_or(0);
    let mut table = Table::new(&["what", "count", "rate", "p50", "p99", "goal"]);
    let mut notes = Vec::new();
    let mut best_rate: Option<f64> = None;
    let mut best_baseline: Option<f64> = None;
    for run in runs {
        match &run.outcome {
            Ok(o) => {
                let r = rate(o.created, o.elapsed);
                let best = if run.baseline {
                    &mut best_baseline
                } else {
                    &mut best_rate
                };
                *best = Some(best.map_or(r, |b: f64| b.max(r)));
                let goal = if run.baseline {
                    String::new()
                } else {
                    format!(
                        "≥ {} — {}",
                        fmt_rate(GOAL_CREATES_PER_SEC),
                        verdict(r >= GOAL_CREATES_PER_SEC)
                    )
                };
                table.row(vec![
                    run.label.clone(),
                    fmt_count(o.created),
                    fmt_rate(r),
                    fmt_opt(o.latency.p50()),
                    fmt_opt(o.latency.p99()),
                    goal,
                ]);
                if let Some(cpu) = o.cpu {
                    let per = |d: Duration| d / (o.created.max(1) as u32);
                    let wall = o.elapsed.as_secs_f64().max(1e-9);
                    let idle = cpu.machine_idle.map_or(String::new(), |idle| {
                        format!(
                            "; the machine's cores were idle (or waiting for I/O) {:.0} % of it",
                            idle * 100.0
                        )
                    });
                    notes.push(format!(
                        "{}: the server used {:.1} s of CPU ({} per request, {:.2} cores on \
                         average) and the load generator {:.1} s ({} per request, {:.2} cores) \
                         in {:.1} s{idle}.",
                        run.label,
                        cpu.server.as_secs_f64(),
                        fmt_duration(per(cpu.server)),
                        cpu.server.as_secs_f64() / wall,
                        cpu.client.as_secs_f64(),
                        fmt_duration(per(cpu.client)),
                        cpu.client.as_secs_f64() / wall,
                        wall
                    ));
                }
                if o.errors > 0 {
                    notes.push(format!(
                        "{}: {} requests failed; the first: {}",
                        run.label,
                        o.errors,
                        o.first_error.as_deref().unwrap_or("?")
                    ));
                }
            }
            Err(e) => notes.push(format!("{}: not measured: {e}", run.label)),
        }
    }
    let mut one_row_rates = Vec::new();
    for (when, run) in sqlite {
        match run {
            Ok(s) => {
                let r = s.rows_per_sec();
                if s.rows_per_txn == 1 {
                    one_row_rates.push((when.clone(), r));
                }
                let txn = if s.rows_per_txn == 1 {
                    "1 row per transaction".to_string()
                } else {
                    format!("{} rows per transaction", s.rows_per_txn)
                };
                table.row(vec![
                    format!("baseline: raw SQLite INSERT, {txn}, {when}"),
                    fmt_count(s.rows),
                    fmt_rate(r),
                    String::new(),
                    String::new(),
                    String::new(),
                ]);
            }
            Err(e) => notes.push(format!("SQLite baseline {when}: not measured: {e}")),
        }
    }
    let fastest_base = one_row_rates.iter().map(|(_, r)| *r).fold(0.0, f64::max);
    if let (Some(best), true) = (best_rate, fastest_base > 0.0) {
        let ratios: Vec<String> = one_row_rates
            .iter()
            .filter(|(_, r)| *r > 0.0)
            .map(|(when, r)| format!("**{:.2}×** ({when})", best / r))
            .collect();
        let worst = best / fastest_base;
        notes.push(format!(
            "Skiff's best create rate over raw SQLite's one-row-per-transaction rate: {}. \
             Goal ≥ {GOAL_RATIO_TO_SQLITE}×, judged against the faster baseline: {}. The disk's \
             fsync rate varies from run to run, which is why the baseline is measured both \
             before and after the Skiff runs.",
            ratios.join(", "),
            verdict(worst >= GOAL_RATIO_TO_SQLITE)
        ));
    }
    if let (Some(best), Some(ceiling)) = (best_rate, best_baseline) {
        notes.push(format!(
            "Skiff's best create rate is {:.0} % of the do-nothing nginx's best rate; the goal of \
             {}/s is {:.0} % of it.",
            100.0 * best / ceiling,
            fmt_count(GOAL_CREATES_PER_SEC as u64),
            100.0 * GOAL_CREATES_PER_SEC / ceiling,
        ));
    }
    Section {
        title: "1. Pod create throughput".into(),
        method: format!(
            "{} pods of {body_bytes} bytes of JSON (one container with image, ports, env, \
             resources, probe, labels) POSTed to `/api/v1/namespaces/default/pods` with unique \
             names by {clients} concurrent clients, on a fresh server, one request in flight \
             per client. The load generator is built like wrk or h2load, on one thread of its \
             own: over HTTP/1.1 each client keeps its own TLS connection, writes pre-built request \
             bytes and frames the response itself; over h2 the clients are streams of one \
             connection driven by the `h2` crate. Every response must be 201 and is read to its \
             end. Latency is per request, from send to the end of the response. Two baselines are \
             measured in the same run. nginx, started by the harness with one worker per core \
             and the Skiff server's certificate, answers every request of the same load with \
             201 and the bytes Skiff stored for the first pod: it parses and stores nothing, so \
             its rate is what TLS, HTTP and loopback TCP alone allow here, with the same load \
             generator on the same cores, a ceiling for any server that answers a create. The \
             SQLite baseline inserts the same bytes into a fresh database on the same file \
             system with the server's durability (`journal_mode=WAL`, `synchronous=FULL`), \
             from one thread.",
            fmt_count(total)
        ),
        table: Some(table),
        notes,
        error: None,
    }
}

/// Section 2: get and list latency.
pub(crate) fn reads_section(
    pods: u64,
    get: Result<Samples, String>,
    list: Result<ListOutcome, String>,
) -> Section {
    let mut table = Table::new(&["what", "requests", "p50", "p99", "max", "goal"]);
    let mut notes = Vec::new();
    match &get {
        Ok(s) => table.row(vec![
            "GET one pod (HTTP/1.1, one connection, sequential)".into(),
            fmt_count(s.len() as u64),
            fmt_opt(s.p50()),
            fmt_opt(s.p99()),
            fmt_opt(s.max()),
            String::new(),
        ]),
        Err(e) => notes.push(format!("GET: not measured: {e}")),
    }
    match &list {
        Ok(l) => {
            let p50 = l.latency.p50();
            table.row(vec![
                format!(
                    "LIST {} pods, JSON ({})",
                    fmt_count(l.items as u64),
                    fmt_mib(l.body_bytes as u64)
                ),
                fmt_count(l.latency.len() as u64),
                fmt_opt(p50),
                fmt_opt(l.latency.p99()),
                fmt_opt(l.latency.max()),
                format!(
                    "p50 ≤ {} — {}",
                    fmt_duration(GOAL_LIST_P50),
                    verdict(p50.is_some_and(|p| p <= GOAL_LIST_P50))
                ),
            ]);
            if l.items as u64 != pods {
                notes.push(format!(
                    "The list returned {} items; {} were created.",
                    l.items, pods
                ));
            }
        }
        Err(e) => notes.push(format!("LIST: not measured: {e}")),
    }
    Section {
        title: "2. Get and list latency".into(),
        method: format!(
            "On a server holding {} pods in `default`: a single pod fetched by name over and \
             over on one keep-alive connection, and the whole namespace listed \
             (`GET /api/v1/namespaces/default/pods`, whole body read) one request at a time.",
            fmt_count(pods)
        ),
        table: Some(table),
        notes,
        error: None,
    }
}

/// Section 3: watch delivery latency.
pub(crate) fn watch_section(interval: Duration, outcome: Result<WatchOutcome, String>) -> Section {
    let mut section = Section {
        title: "3. Watch delivery latency".into(),
        ..Default::default()
    };
    let o = match outcome {
        Ok(o) => o,
        Err(e) => {
            section.error = Some(e);
            return section;
        }
    };
    section.method = format!(
        "{} watchers of one namespace's ConfigMaps (`?watch=true&resourceVersion=…`), each on its \
         own HTTP/1.1 connection; one writer PATCHes a ConfigMap {} times, one every {}. Each \
         event carries its sequence number; latency is per event per watcher, from the write's \
         HTTP response (and, second row, from its request start) to the watcher receiving the \
         event line.",
        fmt_count(o.watchers as u64),
        o.updates,
        fmt_duration(interval)
    );
    let mut table = Table::new(&["what", "events", "p50", "p99", "max", "goal"]);
    let p99 = o.from_response.p99();
    table.row(vec![
        "write response → watcher receipt".into(),
        fmt_count(o.from_response.len() as u64),
        fmt_opt(o.from_response.p50()),
        fmt_opt(p99),
        fmt_opt(o.from_response.max()),
        format!(
            "p99 ≤ {} — {}",
            fmt_duration(GOAL_WATCH_P99),
            verdict(p99.is_some_and(|p| p <= GOAL_WATCH_P99))
        ),
    ]);
    table.row(vec![
        "write request start → watcher receipt".into(),
        fmt_count(o.from_request.len() as u64),
        fmt_opt(o.from_request.p50()),
        fmt_opt(o.from_request.p99()),
        fmt_opt(o.from_request.max()),
        String::new(),
    ]);
    table.row(vec![
        "first watcher's receipt → each watcher's receipt (fan-out)".into(),
        fmt_count(o.fan_out.len() as u64),
        fmt_opt(o.fan_out.p50()),
        fmt_opt(o.fan_out.p99()),
        fmt_opt(o.fan_out.max()),
        String::new(),
    ]);
    table.row(vec![
        "baseline: the write itself (PATCH round trip)".into(),
        fmt_count(o.write_latency.len() as u64),
        fmt_opt(o.write_latency.p50()),
        fmt_opt(o.write_latency.p99()),
        fmt_opt(o.write_latency.max()),
        String::new(),
    ]);
    section.table = Some(table);
    section.notes.push(format!(
        "{} of {} watchers connected in {}; {} of {} expected events delivered ({} before the \
         write's response arrived, counted as 0).",
        o.connected,
        o.watchers,
        fmt_duration(o.connect_elapsed),
        fmt_count(o.delivered),
        fmt_count(o.expected),
        fmt_count(o.before_response)
    ));
    section.notes.push(
        "Events often reach the watchers before the writer's own response does, so the \
         first row is mostly 0; the second row bounds delivery from above (it includes the \
         write's durable commit), and the fan-out row is what serving many watchers adds."
            .into(),
    );
    section
}

/// Memory figures for section 4.
pub(crate) struct MemoryFigures {
    pub idle: Result<crate::process::Memory, String>,
    pub loaded: Result<crate::process::Memory, String>,
    pub pods: u64,
}

/// Section 4: resident memory.
pub(crate) fn memory_section(m: &MemoryFigures) -> Section {
    let mut table = Table::new(&["what", "VmRSS", "VmHWM (peak)", "goal"]);
    let mut notes = Vec::new();
    match &m.idle {
        Ok(mem) => table.row(vec![
            "idle, 2 s after ready, fresh data directory".into(),
            fmt_mib(mem.rss),
            fmt_mib(mem.peak_rss),
            format!(
                "≤ {} — {}",
                fmt_mib(GOAL_IDLE_RSS),
                verdict(mem.rss <= GOAL_IDLE_RSS)
            ),
        ]),
        Err(e) => notes.push(format!("idle: not measured: {e}")),
    }
    match &m.loaded {
        Ok(mem) => table.row(vec![
            format!(
                "holding {} pods (after the reads and watch benchmarks)",
                fmt_count(m.pods)
            ),
            fmt_mib(mem.rss),
            fmt_mib(mem.peak_rss),
            String::new(),
        ]),
        Err(e) => notes.push(format!("loaded: not measured: {e}")),
    }
    Section {
        title: "4. Memory".into(),
        method: "Resident memory of the server process, from `/proc/<pid>/status`.".into(),
        table: Some(table),
        notes,
        error: None,
    }
}

/// Section 5: start to ready.
pub(crate) fn startup_section(
    fresh: Result<Vec<Duration>, String>,
    existing: Result<Vec<Duration>, String>,
    pods: u64,
) -> Section {
    let mut table = Table::new(&["data directory", "runs", "median", "min", "max", "goal"]);
    let mut notes = Vec::new();
    let row = |label: String, v: &[Duration], goal: String| {
        vec![
            label,
            v.len().to_string(),
            fmt_opt(median(v)),
            fmt_opt(v.iter().min().copied()),
            fmt_opt(v.iter().max().copied()),
            goal,
        ]
    };
    match &fresh {
        Ok(v) => {
            let m = median(v);
            table.row(row(
                "fresh (creates the cluster CA and certificates)".into(),
                v,
                format!(
                    "≤ {} — {}",
                    fmt_duration(GOAL_READY),
                    verdict(m.is_some_and(|m| m <= GOAL_READY))
                ),
            ));
        }
        Err(e) => notes.push(format!("fresh: not measured: {e}")),
    }
    match &existing {
        Ok(v) => table.row(row(
            format!("existing, holding {} pods", fmt_count(pods)),
            v,
            String::new(),
        )),
        Err(e) => notes.push(format!("existing: not measured: {e}")),
    }
    Section {
        title: "5. Start to ready".into(),
        method: "From spawning `skiff server --disable-agent` to the first 200 from `GET /readyz` \
                 (polled every 2 ms with the admin client certificate, as soon as the kubeconfig \
                 appears)."
            .into(),
        table: Some(table),
        notes,
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(created: u64, secs: u64) -> CreateOutcome {
        CreateOutcome {
            created,
            errors: 0,
            first_error: None,
            elapsed: Duration::from_secs(secs),
            latency: Samples::new(vec![Duration::from_millis(3); created as usize]),
            body_bytes: 1000,
            cpu: Some(crate::scenarios::create::CpuUse {
                server: Duration::from_millis(600),
                client: Duration::from_millis(300),
                machine_idle: Some(0.125),
            }),
        }
    }

    #[test]
    fn create_section_states_the_ratio_to_sqlite() {
        let runs = [CreateRow {
            label: "Skiff, HTTP/1.1".into(),
            baseline: false,
            outcome: Ok(outcome(3000, 1)),
        }];
        let one = |rows| InsertRun {
            rows_per_txn: 1,
            rows,
            elapsed: Duration::from_secs(1),
        };
        let sqlite = [
            ("before".to_string(), Ok(one(1000))),
            (
                "before".to_string(),
                Ok(InsertRun {
                    rows_per_txn: 64,
                    rows: 50_000,
                    elapsed: Duration::from_secs(1),
                }),
            ),
            ("after".to_string(), Ok(one(500))),
        ];
        let s = create_section(3000, 64, &runs, &sqlite);
        let t = s.table.unwrap();
        assert_eq!(t.rows.len(), 4);
        assert_eq!(t.rows[0][2], "3,000/s");
        assert!(t.rows[0][5].contains("not met"));
        assert_eq!(t.rows[2][2], "50,000/s");
        assert!(t.rows[3][0].ends_with(", after"));
        assert!(
            s.notes[0].contains("0.6 s of CPU (200 µs per request, 0.60 cores"),
            "{}",
            s.notes[0]
        );
        assert!(
            s.notes[0].ends_with(
                "in 1.0 s; the machine's cores were idle (or waiting for I/O) 12 % of it."
            ),
            "{}",
            s.notes[0]
        );
        let note = &s.notes[1];
        assert!(
            note.contains("**3.00×** (before), **6.00×** (after)"),
            "{note}"
        );
        // Judged against the faster baseline (1,000/s): 3× < 4×.
        assert!(note.contains("not met"), "{note}");
    }

    #[test]
    fn a_baseline_server_has_no_goal_and_bounds_the_rate() {
        let runs = [
            CreateRow {
                label: "Skiff, HTTP/1.1".into(),
                baseline: false,
                outcome: Ok(outcome(3000, 1)),
            },
            CreateRow {
                label: "baseline: nginx, HTTP/1.1".into(),
                baseline: true,
                outcome: Ok(outcome(25_000, 1)),
            },
            CreateRow {
                label: "baseline: nginx, h2".into(),
                baseline: true,
                outcome: Err("nginx not found".into()),
            },
        ];
        let s = create_section(3000, 64, &runs, &[]);
        let t = s.table.unwrap();
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.rows[1][2], "25,000/s");
        assert_eq!(t.rows[1][5], "", "a baseline has no goal");
        assert!(s
            .notes
            .iter()
            .any(|n| n == "baseline: nginx, h2: not measured: nginx not found"));
        // Skiff's best (3,000/s) is 12 % of nginx's; the goal (20,000/s) is 80 % of it.
        assert!(
            s.notes.iter().any(|n| n
                == "Skiff's best create rate is 12 % of the do-nothing nginx's best rate; the \
                    goal of 20,000/s is 80 % of it."),
            "{:#?}",
            s.notes
        );
    }

    #[test]
    fn failed_parts_say_why() {
        let s = reads_section(10, Err("HTTP 404".into()), Err("refused".into()));
        assert_eq!(s.table.unwrap().rows.len(), 0);
        assert_eq!(s.notes.len(), 2);
        let w = watch_section(Duration::from_millis(50), Err("boom".into()));
        assert_eq!(w.error.as_deref(), Some("boom"));
    }

    #[test]
    fn startup_uses_the_median() {
        let ms = |v: u64| Duration::from_millis(v);
        let s = startup_section(Ok(vec![ms(200), ms(100), ms(900)]), Ok(vec![ms(400)]), 10);
        let t = s.table.unwrap();
        assert_eq!(t.rows[0][2], "200 ms");
        assert!(t.rows[0][5].contains("✅"));
        assert_eq!(t.rows[1][1], "1");
    }
}
