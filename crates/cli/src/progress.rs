//! A one-line progress display on a terminal.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use repovault_core::Progress;
use repovault_reporter::human_bytes;
use tokio::task::JoinHandle;

/// Redraws `[done/planned] …` on stderr until dropped, when stderr is a terminal.
pub struct ProgressLine {
    task: Option<JoinHandle<()>>,
}

impl ProgressLine {
    pub fn start(progress: Arc<Progress>) -> Self {
        if !std::io::stderr().is_terminal() {
            return ProgressLine { task: None };
        }
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_millis(250));
            loop {
                ticks.tick().await;
                let s = progress.snapshot();
                let mut err = std::io::stderr().lock();
                let _ = write!(
                    err,
                    "\r\x1b[2K[{}/{}] {} ok, {} failed, {} stored",
                    s.done,
                    s.planned,
                    s.done - s.failed,
                    s.failed,
                    human_bytes(s.bytes_stored)
                );
                let _ = err.flush();
            }
        });
        ProgressLine { task: Some(task) }
    }
}

impl Drop for ProgressLine {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            eprint!("\r\x1b[2K");
        }
    }
}
