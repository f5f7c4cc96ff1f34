//! What the numbers were measured on: CPUs, kernel, memory, the file system under the data
//! directories, the binary's version and the date, read from `/proc` and the binary itself.

use std::path::Path;
use std::process::Command;

/// Facts about the machine and the run, as (name, value) rows for the report.
pub(crate) fn describe(skiff_bin: &Path, work_dir: &Path) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get().to_string())
        .unwrap_or_else(|_| "?".into());
    rows.push(("date".into(), now()));
    rows.push(("nproc".into(), nproc));
    if let Some(cpu) = read("/proc/cpuinfo").and_then(|t| cpu_model(&t)) {
        rows.push(("CPU".into(), cpu));
    }
    if let Some(kernel) = read("/proc/sys/kernel/osrelease") {
        rows.push(("kernel".into(), format!("Linux {}", kernel.trim())));
    }
    if let Some(mem) = read("/proc/meminfo").and_then(|t| mem_total(&t)) {
        rows.push(("memory".into(), mem));
    }
    if let Some(fs) = read("/proc/self/mounts").and_then(|t| filesystem_of(&t, work_dir)) {
        rows.push((
            "data directories".into(),
            format!("{} ({fs})", work_dir.display()),
        ));
    }
    let version = Command::new(skiff_bin)
        .arg("version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_else(|| "unknown".into());
    rows.push((
        "skiff".into(),
        format!("{} ({version})", skiff_bin.display()),
    ));
    if let Some(commit) = git_commit() {
        rows.push(("commit".into(), commit));
    }
    rows
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn now() -> String {
    let ts = jiff::Timestamp::now();
    ts.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn git_commit() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The first `model name` of `/proc/cpuinfo`.
pub(crate) fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// `MemTotal` of `/proc/meminfo`, in GiB.
pub(crate) fn mem_total(meminfo: &str) -> Option<String> {
    let kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(format!("{:.1} GiB", kb as f64 / (1024.0 * 1024.0)))
}

/// The file system type of the longest mount point containing `path`, from `/proc/mounts`.
pub(crate) fn filesystem_of(mounts: &str, path: &Path) -> Option<String> {
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let _dev = f.next()?;
            let mount_point = f.next()?;
            let fstype = f.next()?;
            Some((mount_point, fstype))
        })
        .filter(|(mp, _)| path.starts_with(mp))
        .max_by_key(|(mp, _)| mp.len())
        .map(|(_, fs)| fs.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(cpu_model(cpuinfo).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(
            mem_total("MemTotal:        8388608 kB\nMemFree: 1 kB\n").as_deref(),
            Some("8.0 GiB")
        );
        let mounts = "/dev/vda / ext4 rw 0 0\ntmpfs /tmp tmpfs rw 0 0\ntmpfs /tmpx tmpfs rw 0 0\n";
        assert_eq!(
            filesystem_of(mounts, Path::new("/tmp/skiff-bench")).as_deref(),
            Some("tmpfs")
        );
        assert_eq!(
            filesystem_of(mounts, Path::new("/work/x")).as_deref(),
            Some("ext4")
        );
    }
}
