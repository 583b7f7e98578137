//! `env_file = "env"` in the config: the secrets file the systemd unit loads (`EnvironmentFile=`), read by
//! ctwatch itself for the `*_env` variables (`url_env`, `token_env`, `secret_env`, `key_env`) that the
//! environment lacks — so `ctwatch notify test --config /etc/ctwatch/config.toml` sees what the service sees.
//!
//! Variables already in the environment win (the service gets them from systemd and never needs to read the
//! file, which its dynamic user could not). The file is read only when a needed variable is missing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Parse `KEY=value` lines as systemd's `EnvironmentFile=` does for the common cases: blank lines and lines
/// starting with `#` or `;` are ignored, an optional `export ` prefix is accepted, the value may be wrapped
/// in single or double quotes. A line without `=` is an error naming the line.
pub fn parse(text: &str, source: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            bail!("{source}:{}: expected KEY=value", n + 1);
        };
        let key = key.trim();
        let valid = !key.is_empty()
            && !key.starts_with(|c: char| c.is_ascii_digit())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            bail!("{source}:{}: {key:?} is not a variable name", n + 1);
        }
        let value = value.trim();
        let unquoted = [('"', '"'), ('\'', '\'')]
            .iter()
            .find_map(|(a, b)| {
                (value.len() >= 2 && value.starts_with(*a) && value.ends_with(*b))
                    .then(|| &value[1..value.len() - 1])
            })
            .unwrap_or(value);
        out.push((key.to_string(), unquoted.to_string()));
    }
    Ok(out)
}

/// The `env_file` a config file names (relative to the file) and every variable its `*_env` keys name.
/// `None` when the file cannot be read or parsed (the command reports that itself, with line and key).
pub fn wanted(config: &Path) -> Option<(Option<PathBuf>, BTreeSet<String>)> {
    let text = std::fs::read_to_string(config).ok()?;
    let value: toml::Value = toml::from_str(&text).ok()?;
    let env_file = value.get("env_file").and_then(|v| v.as_str()).map(|p| {
        let p = Path::new(p);
        if p.is_relative() {
            config.parent().unwrap_or(Path::new("")).join(p)
        } else {
            p.to_path_buf()
        }
    });
    let mut vars = BTreeSet::new();
    collect_env_names(&value, &mut vars);
    Some((env_file, vars))
}

fn collect_env_names(value: &toml::Value, out: &mut BTreeSet<String>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                match v {
                    toml::Value::String(s) if k.ends_with("_env") => {
                        out.insert(s.clone());
                    }
                    _ => collect_env_names(v, out),
                }
            }
        }
        toml::Value::Array(a) => a.iter().for_each(|v| collect_env_names(v, out)),
        _ => {}
    }
}

/// The variables of `file` to add to an environment that lacks some of `wanted`: only missing ones, and only
/// those the config names. `Ok(empty)` without reading the file when nothing is missing.
pub fn missing_from(
    file: &Path,
    wanted: &BTreeSet<String>,
    is_set: impl Fn(&str) -> bool,
) -> Result<Vec<(String, String)>> {
    let missing: Vec<&String> = wanted.iter().filter(|v| !is_set(v)).collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let names = missing
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let text = std::fs::read_to_string(file).with_context(|| {
        format!(
            "env_file {}: cannot read it for {names} (run as a user who can read it, e.g. root, or set the \
             variables yourself)",
            file.display()
        )
    })?;
    Ok(parse(&text, &file.display().to_string())?
        .into_iter()
        .filter(|(k, _)| missing.contains(&k))
        .collect())
}

static CONSULTED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// The env_file this process was pointed at, for error messages about unset variables (" (nor in env_file
/// /etc/ctwatch/env)"); empty when there is none.
pub fn unset_hint() -> String {
    CONSULTED
        .get()
        .map(|p| format!(" (nor in env_file {})", p.display()))
        .unwrap_or_default()
}

/// Called by `main` before any thread exists: put the missing variables of the config's `env_file` into the
/// process environment. `config` is the file the command will read (`None`: the command reads no config).
pub fn load_for(config: Option<&Path>) -> Result<()> {
    let Some(config) = config else {
        return Ok(());
    };
    let Some((Some(file), wanted)) = wanted(config) else {
        return Ok(());
    };
    let _ = CONSULTED.set(file.clone());
    let add = missing_from(&file, &wanted, |v| std::env::var_os(v).is_some())?;
    for (k, v) in add {
        // SAFETY: main calls this before starting the runtime or any other thread.
        unsafe { std::env::set_var(k, v) };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_style_lines() {
        let vars = parse(
            "# secrets\n\nCTWATCH_DISCORD_URL=https://discord.test/api/webhooks/1/x\n; old\n\
             export A_B='quoted value'\nC=\"dq\"\nEMPTY=\n",
            "env",
        )
        .unwrap();
        assert_eq!(
            vars,
            [
                (
                    "CTWATCH_DISCORD_URL".into(),
                    "https://discord.test/api/webhooks/1/x".into()
                ),
                ("A_B".into(), "quoted value".into()),
                ("C".into(), "dq".into()),
                ("EMPTY".into(), String::new()),
            ]
        );
        let err = parse("GOOD=1\nnot a line\n", "/etc/ctwatch/env").unwrap_err();
        assert_eq!(err.to_string(), "/etc/ctwatch/env:2: expected KEY=value");
        assert!(parse("1X=2\n", "env").is_err());
    }

    #[test]
    fn only_missing_wanted_variables_and_no_read_when_none_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.toml");
        std::fs::write(
            &cfg,
            "env_file = \"env\"\n[[sinks]]\nname = \"d\"\ntype = \"discord\"\nurl_env = \"D_URL\"\n\
             [api]\n[[api.keys]]\nname = \"k\"\nkey_env = \"K\"\n",
        )
        .unwrap();
        let (file, wanted) = wanted(&cfg).unwrap();
        let file = file.unwrap();
        assert_eq!(file, dir.path().join("env"));
        assert_eq!(wanted, ["D_URL".to_string(), "K".to_string()].into());
        // Nothing missing: the file (absent here) is not read.
        assert!(missing_from(&file, &wanted, |_| true).unwrap().is_empty());
        // Missing and unreadable: the error names the file and the variables.
        let err = format!("{:#}", missing_from(&file, &wanted, |_| false).unwrap_err());
        assert!(
            err.contains("env_file") && err.contains("D_URL, K"),
            "{err}"
        );
        std::fs::write(
            &file,
            "D_URL=https://x.test/\nK=secret-key-123456\nOTHER=1\n",
        )
        .unwrap();
        let got = missing_from(&file, &wanted, |v| v == "K").unwrap();
        assert_eq!(got, [("D_URL".to_string(), "https://x.test/".to_string())]);
    }
}
