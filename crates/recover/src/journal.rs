//! The journal: every object a restore created in the target, with its new number or
//! id, one JSON line each, flushed to disk before the next object is created. A rerun
//! reads it back and skips what it lists; the one object a kill can leave created but
//! unlisted is found in the target by its key (see `recover::adopt`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "kebab-case")]
pub enum Entry {
    /// What the journal is of: its first line. A rerun with another source, backup
    /// or target is refused.
    Of {
        source: String,
        backup: String,
        target: String,
    },
    /// The repository is about to be created: a rerun that finds it knows it is ours.
    Creating,
    /// The target repository: made by this restore, or found empty (or allowed with
    /// `--into-existing`).
    Repository {
        created: bool,
    },
    /// A step finished whole.
    Done {
        step: String,
    },
    Label {
        name: String,
    },
    Milestone {
        old: u64,
        new: u64,
    },
    /// An issue or pull request (`pull`: recreated as a pull request) by number, or a
    /// placeholder that keeps numbers (`old` a number the backup lacks).
    Issue {
        old: u64,
        new: u64,
        pull: bool,
    },
    /// Closed as it was.
    Closed {
        old: u64,
    },
    /// Sent to the Issue Import API as import `id`: a rerun asks how it went rather
    /// than sending it again.
    Importing {
        old: u64,
        id: u64,
    },
    /// A comment (issue comment, review or review comment) by its original id,
    /// prefixed by what it was (`c`, `r`, `rc`).
    Comment {
        old: String,
        new: u64,
    },
    Release {
        old: u64,
        new: u64,
    },
    Asset {
        old: u64,
        new: u64,
    },
}

/// What the journal holds, indexed.
#[derive(Debug, Default)]
pub struct Journal {
    path: PathBuf,
    pub of: Option<(String, String, String)>,
    pub creating: bool,
    pub repository: Option<bool>,
    pub done: BTreeSet<String>,
    pub labels: BTreeSet<String>,
    pub milestones: BTreeMap<u64, u64>,
    /// Old number → (new number, recreated as a pull request).
    pub issues: BTreeMap<u64, (u64, bool)>,
    pub closed: BTreeSet<u64>,
    pub importing: BTreeMap<u64, u64>,
    pub comments: BTreeMap<String, u64>,
    pub releases: BTreeMap<u64, u64>,
    pub assets: BTreeMap<u64, u64>,
    /// Entries read back (a rerun) or written by this process.
    pub entries: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("journal {}, line {line}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

impl Journal {
    /// The journal at `path`: read back when it exists (a rerun), else empty.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let mut journal = Journal {
            path: path.to_owned(),
            ..Journal::default()
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(journal),
            Err(source) => {
                return Err(JournalError::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        // A kill can cut the last line short: it is dropped (what it recorded is found
        // again in the target), and the file cut back so the next line starts clean.
        let whole = text.rfind('\n').map_or(0, |end| end + 1);
        if whole < text.len() {
            let io = |source| JournalError::Io {
                path: path.to_owned(),
                source,
            };
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(io)?;
            file.set_len(whole as u64)
                .and_then(|()| file.sync_data())
                .map_err(io)?;
        }
        for (i, line) in text[..whole].lines().enumerate() {
            match serde_json::from_str::<Entry>(line) {
                Ok(entry) => journal.apply(entry),
                Err(e) => {
                    return Err(JournalError::Invalid {
                        path: path.to_owned(),
                        line: i + 1,
                        message: e.to_string(),
                    });
                }
            }
        }
        Ok(journal)
    }

    fn apply(&mut self, entry: Entry) {
        self.entries += 1;
        match entry {
            Entry::Of {
                source,
                backup,
                target,
            } => self.of = Some((source, backup, target)),
            Entry::Creating => self.creating = true,
            Entry::Repository { created } => self.repository = Some(created),
            Entry::Done { step } => {
                self.done.insert(step);
            }
            Entry::Label { name } => {
                self.labels.insert(name);
            }
            Entry::Milestone { old, new } => {
                self.milestones.insert(old, new);
            }
            Entry::Issue { old, new, pull } => {
                self.issues.insert(old, (new, pull));
            }
            Entry::Closed { old } => {
                self.closed.insert(old);
            }
            Entry::Importing { old, id } => {
                self.importing.insert(old, id);
            }
            Entry::Comment { old, new } => {
                self.comments.insert(old, new);
            }
            Entry::Release { old, new } => {
                self.releases.insert(old, new);
            }
            Entry::Asset { old, new } => {
                self.assets.insert(old, new);
            }
        }
    }

    /// Appends `entry` and makes it durable before returning.
    pub fn record(&mut self, entry: Entry) -> Result<(), JournalError> {
        let io = |source| JournalError::Io {
            path: self.path.clone(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        let mut line = serde_json::to_vec(&entry).expect("entries serialise");
        line.push(b'\n');
        file.write_all(&line).map_err(io)?;
        file.sync_data().map_err(io)?;
        self.apply(entry);
        Ok(())
    }

    pub fn is_done(&self, step: &str) -> bool {
        self.done.contains(step)
    }

    /// Checks the journal is of `source`'s backup `backup` restored into `target`, and
    /// says so on its first line when it is new.
    pub fn belongs_to(
        &mut self,
        source: &str,
        backup: &str,
        target: &str,
    ) -> Result<(), JournalError> {
        let wanted = (source.to_owned(), backup.to_owned(), target.to_owned());
        match &self.of {
            Some(of) if *of == wanted => Ok(()),
            Some((s, b, t)) => Err(JournalError::Invalid {
                path: self.path.clone(),
                line: 1,
                message: format!(
                    "it records restoring {s} ({b}) into {t}, not {source} ({backup}) into {target}: give another --journal, or remove it to start again"
                ),
            }),
            None if self.entries > 0 => Err(JournalError::Invalid {
                path: self.path.clone(),
                line: 1,
                message: "it does not say what it is of".into(),
            }),
            None => self.record(Entry::Of {
                source: wanted.0,
                backup: wanted.1,
                target: wanted.2,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rerun_reads_back_what_was_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let mut journal = Journal::open(&path).unwrap();
        journal.record(Entry::Repository { created: true }).unwrap();
        journal
            .record(Entry::Issue {
                old: 3,
                new: 3,
                pull: true,
            })
            .unwrap();
        journal
            .record(Entry::Comment {
                old: "c:7".into(),
                new: 70,
            })
            .unwrap();
        journal
            .record(Entry::Done {
                step: "labels".into(),
            })
            .unwrap();
        let again = Journal::open(&path).unwrap();
        assert_eq!(again.repository, Some(true));
        assert_eq!(again.issues.get(&3), Some(&(3, true)));
        assert_eq!(again.comments.get("c:7"), Some(&70));
        assert!(again.is_done("labels"));
        assert_eq!(again.entries, 4);
    }

    #[test]
    fn a_last_line_cut_short_by_a_kill_is_dropped_and_the_next_starts_clean() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        std::fs::write(
            &path,
            "{\"entry\":\"label\",\"name\":\"bug\"}\n{\"entry\":\"lab",
        )
        .unwrap();
        let mut journal = Journal::open(&path).unwrap();
        assert!(journal.labels.contains("bug"));
        journal
            .record(Entry::Label {
                name: "docs".into(),
            })
            .unwrap();
        let again = Journal::open(&path).unwrap();
        assert!(again.labels.contains("bug") && again.labels.contains("docs"));
        std::fs::write(
            &path,
            "{\"entry\":\"lab\n{\"entry\":\"label\",\"name\":\"bug\"}\n",
        )
        .unwrap();
        let err = Journal::open(&path).unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn a_journal_of_another_restore_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let mut journal = Journal::open(&path).unwrap();
        journal.belongs_to("acme/api", "k1", "new/api").unwrap();
        let mut again = Journal::open(&path).unwrap();
        again.belongs_to("acme/api", "k1", "new/api").unwrap();
        let err = again
            .belongs_to("acme/api", "k2", "new/api")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not acme/api (k2)"), "{err}");
    }
}
