//! Which database a command uses, and how the read-only commands open it.
//!
//! Every command finds the database the same way: `--db` (or `CTWATCH_DB`), else `db =` in the config file
//! (`--config`, `CTWATCH_CONFIG`, or `~/.config/ctwatch/config.toml` when it exists), else
//! `~/.local/share/ctwatch/ctwatch.db`. So `ctwatch logs --config /etc/ctwatch/config.toml` shows the service's
//! state. The read-only commands (`search`, `logs`, `outbox`, `report`) never create a file or directory: a
//! mistyped path is an error that says where the daemon's database is.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::cli::DbArg;
use crate::store::Store;

/// The config file installed by `scripts/install.sh`: named in hints when another database was asked for.
pub const INSTALLED_CONFIG: &str = "/etc/ctwatch/config.toml";

/// `--config FILE` for commands that only need the config file's `db`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConfigArg {
    /// Config file whose `db` is used when --db is not given. Default: ~/.config/ctwatch/config.toml if it
    /// exists.
    #[arg(long, env = "CTWATCH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The config file a command reads: the explicit one, else the default one when it exists.
pub fn config_file(explicit: Option<&Path>) -> Option<PathBuf> {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| crate::config::default_config_path().filter(|p| p.exists()))
}

/// The database path: `--db`/`CTWATCH_DB`, else the config's `[store] url` or `db`, else the default path. A
/// `postgres://` URL rides in the same `PathBuf` ([`crate::store::postgres_url`] tells).
pub fn resolve(db: &DbArg, config: &ConfigArg) -> Result<PathBuf> {
    if let Some(p) = &db.db {
        return Ok(p.clone());
    }
    if let Some(file) = config_file(config.config.as_deref()) {
        let cfg = crate::config::load(&file)?;
        if let Some(p) = cfg.database() {
            return Ok(p);
        }
    }
    Ok(crate::cli::default_db_path())
}

/// Open the database of a read-only command: it must exist; nothing is created or migrated.
pub fn open_read_only(db: &DbArg, config: &ConfigArg) -> Result<Store> {
    let path = resolve(db, config)?;
    require_existing(&path)?;
    Store::open_read_only(&path).with_context(|| format!("opening database {}", path.display()))
}

/// Open an existing database to change it (`outbox retry`/`drop`, `logs rewind`): never creates one.
pub fn open_existing(db: &DbArg, config: &ConfigArg) -> Result<Store> {
    let path = resolve(db, config)?;
    require_existing(&path)?;
    Store::open(&path).with_context(|| format!("opening database {}", path.display()))
}

fn require_existing(path: &Path) -> Result<()> {
    // A PostgreSQL database is checked by connecting (its schema must be there for the read-only open).
    if path.is_file() || crate::store::postgres_url(path).is_some() {
        return Ok(());
    }
    let installed = crate::config::load(Path::new(INSTALLED_CONFIG))
        .ok()
        .and_then(|c| c.db);
    anyhow::bail!(
        "no database at {} ({})",
        path.display(),
        hint(path, installed.as_deref())
    )
}

/// Where to look instead: the service's database when the installed config names another one.
fn hint(missing: &Path, installed_db: Option<&Path>) -> String {
    match installed_db {
        Some(db) if db != missing && db.is_file() => format!(
            "the daemon's is {}: use --config {INSTALLED_CONFIG} or --db {}",
            db.display(),
            db.display()
        ),
        Some(db) if db == missing => "the service creates it when it first starts, and so does \
                                      `ctwatch run --once --config ...`"
            .to_string(),
        _ => "`ctwatch run` creates it; for the daemon's, give its config with --config or its database with --db"
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hint_points_at_the_daemons_database() {
        let dir = tempfile::tempdir().unwrap();
        let daemon = dir.path().join("ctwatch.db");
        std::fs::write(&daemon, b"").unwrap();
        let typo = dir.path().join("ctwatsh.db");
        assert_eq!(
            hint(&typo, Some(&daemon)),
            format!(
                "the daemon's is {0}: use --config /etc/ctwatch/config.toml or --db {0}",
                daemon.display()
            )
        );
        assert!(hint(&typo, Some(&typo)).starts_with("the service creates it"));
        assert!(hint(&typo, None).starts_with("`ctwatch run` creates it"));
    }
}
