//! Per-process scratch space that survives nothing: each worker process works in its
//! own `repovault-worker-<pid>` directory and, on start, removes those of processes
//! that no longer exist (killed before they could clean up).

use std::io;
use std::path::{Path, PathBuf};

const PREFIX: &str = "repovault-worker-";

/// Creates this process's work dir under `base` and removes dead processes' ones.
pub fn claim_work_dir(base: &Path) -> io::Result<PathBuf> {
    std::fs::create_dir_all(base)?;
    for entry in std::fs::read_dir(base)?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        let alive = Path::new("/proc").join(pid).exists();
        if !alive && pid.parse::<u32>().is_ok() {
            tracing::info!(dir = %entry.path().display(), "removing the work dir of a process that is gone");
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let mine = base.join(format!("{PREFIX}{}", std::process::id()));
    std::fs::create_dir_all(&mine)?;
    Ok(mine)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_dirs_of_dead_processes_only() {
        let base = tempfile::tempdir().unwrap();
        // PIDs above the kernel's maximum (4194304) never exist.
        let dead = base.path().join(format!("{PREFIX}99999999"));
        std::fs::create_dir_all(dead.join("leftover.git")).unwrap();
        let other = base.path().join("unrelated");
        std::fs::create_dir(&other).unwrap();
        let mine = claim_work_dir(base.path()).unwrap();
        assert!(mine.exists() && mine.ends_with(format!("{PREFIX}{}", std::process::id())));
        assert!(!dead.exists());
        assert!(other.exists());
        // Our own directory survives a second claim.
        std::fs::write(mine.join("f"), "x").unwrap();
        claim_work_dir(base.path()).unwrap();
        assert!(mine.join("f").exists());
    }
}
