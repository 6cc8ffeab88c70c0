//! Real repovault processes: spawned with a test's environment, their stderr kept in
//! a file for the failure message, stopped with real signals.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::{TOKEN, bin};

pub struct Proc {
    pub name: String,
    child: tokio::process::Child,
    log: PathBuf,
}

impl Proc {
    /// Starts binary `bin_name` with `args`, the test token and `env`, in `dir`
    /// (where its log goes).
    pub fn spawn(
        name: &str,
        bin_name: &str,
        args: &[&str],
        env: &[(String, String)],
        dir: &Path,
    ) -> Proc {
        let mut all = vec![
            ("GITHUB_TOKEN".to_owned(), TOKEN.to_owned()),
            ("RUST_LOG".to_owned(), "info".to_owned()),
        ];
        all.extend_from_slice(env);
        Self::spawn_program(name, &bin(bin_name), args, &all, dir)
    }

    /// Starts `program` with `args` and exactly `env` (plus PATH and HOME, so git works).
    pub fn spawn_program(
        name: &str,
        program: &Path,
        args: &[&str],
        env: &[(String, String)],
        dir: &Path,
    ) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let stderr = std::fs::File::create(&log).unwrap();
        let stdout = std::fs::File::create(dir.join(format!("{name}.out"))).unwrap();
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::var("HOME").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
        Proc {
            name: name.into(),
            child,
            log,
        }
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id().expect("still running") as i32)
    }

    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).unwrap();
    }

    pub async fn wait(&mut self) -> ExitStatus {
        self.child.wait().await.unwrap()
    }

    /// What the process wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// What the process wrote to stdout.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.log.with_extension("out")).unwrap_or_default()
    }

    /// Peak resident memory so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}
