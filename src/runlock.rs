//! One writer per database: `ctwatch run` holds an advisory lock on a file next to the database
//! (`ctwatch.db` -> `ctwatch.db.lock`) for as long as it runs.
//!
//! Two daemons on one database would tail the same logs side by side with conflicting positions, and overlapping
//! cron runs would pile up. The lock is an OS file lock (`flock` on Unix, `LockFileEx` on Windows, through
//! `std::fs::File::try_lock`): the kernel releases it when the process exits, however it exits (a crash or
//! SIGKILL leaves no stale lock to clean up). The file holds the owner's pid, for the message a second `run`
//! prints. Readers (`search`, `logs`, `report`, `outbox` listing) never touch the lock file, so a running daemon
//! never blocks them.
//!
//! A PostgreSQL database (`--db postgres://...`) takes no lock file: several instances share it by design, each
//! log owned by one of them through the database itself ([`RunLock::acquire_for`]).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum RunLockError {
    #[error("another ctwatch ({}) is running on {}", pid_text(*.pid), .db.display())]
    Held { pid: Option<u32>, db: PathBuf },
    #[error("cannot use the lock file {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn pid_text(pid: Option<u32>) -> String {
    match pid {
        Some(p) => format!("pid {p}"),
        None => "pid unknown".to_string(),
    }
}

/// The held lock; dropping it (or exiting) releases it.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    path: PathBuf,
}

impl RunLock {
    /// The lock file of the database at `db`.
    pub fn path_for(db: &Path) -> PathBuf {
        let mut name = db.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// The lock for `db` when it is a SQLite file ([`RunLock::acquire`]); None for a PostgreSQL URL, which
    /// several instances share.
    pub fn acquire_for(db: &Path) -> Result<Option<RunLock>, RunLockError> {
        if crate::store::postgres_url(db).is_some() {
            return Ok(None);
        }
        Self::acquire(db).map(Some)
    }

    /// Take the lock of `db` without waiting, or say who holds it. Creates the database directory if needed.
    pub fn acquire(db: &Path) -> Result<RunLock, RunLockError> {
        let path = Self::path_for(db);
        let io = |source| RunLockError::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(RunLockError::Held {
                    pid: read_pid(&mut file),
                    db: db.to_path_buf(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.sync_data().map_err(io)?;
        Ok(RunLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The pid the holder wrote (it may be mid-write: then unknown).
fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_url_takes_no_lock_file() {
        let url = Path::new("postgres://ctwatch@127.0.0.1/ctwatch");
        assert!(RunLock::acquire_for(url).unwrap().is_none());
        assert!(RunLock::acquire_for(url).unwrap().is_none());
    }

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_freed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("sub").join("ctwatch.db");
        let first = RunLock::acquire(&db).unwrap();
        assert_eq!(first.path(), dir.path().join("sub").join("ctwatch.db.lock"));
        let err = RunLock::acquire(&db).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "another ctwatch (pid {}) is running on {}",
                std::process::id(),
                db.display()
            )
        );
        drop(first);
        let again = RunLock::acquire(&db).unwrap();
        drop(again);
    }
}
