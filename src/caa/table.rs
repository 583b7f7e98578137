//! Which CAA issuer domains stand for which CA: `assets/caa_identifiers.csv` (compiled in; its header says where
//! the data comes from), plus rows a user adds with `--caa-ca-table FILE` (private or missing CAs, tests).

use std::path::Path;

/// The built-in table.
pub const BUILTIN: &str = include_str!("../../assets/caa_identifiers.csv");

/// CA identity -> CAA identifiers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaTable {
    /// (normalised match, issuer domains), in order: the first match wins.
    rows: Vec<(String, Vec<String>)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}:{line}: {message} (expected `match,domain domain ...`)")]
pub struct TableError {
    pub source_name: String,
    pub line: usize,
    pub message: String,
}

/// Letters and digits only, lower-case ("Let's Encrypt" -> "letsencrypt").
fn normalise(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

impl CaTable {
    /// The built-in table.
    pub fn builtin() -> CaTable {
        CaTable::parse("assets/caa_identifiers.csv", BUILTIN)
            .expect("the built-in CAA table parses")
    }

    /// Parses rows; `#` lines and blank lines are skipped.
    pub fn parse(source_name: &str, text: &str) -> Result<CaTable, TableError> {
        let mut rows = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |message: &str| TableError {
                source_name: source_name.to_string(),
                line: i + 1,
                message: message.to_string(),
            };
            let (m, domains) = line.split_once(',').ok_or_else(|| err("no comma"))?;
            let m = normalise(m);
            let domains: Vec<String> = domains
                .split_whitespace()
                .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
                .collect();
            if m.is_empty() || domains.is_empty() {
                return Err(err("empty match or no domain"));
            }
            rows.push((m, domains));
        }
        Ok(CaTable { rows })
    }

    /// Reads a user table; its rows are consulted before the built-in ones.
    pub fn with_file(mut self, path: &Path) -> anyhow::Result<CaTable> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading CAA table {}: {e}", path.display()))?;
        let mut extra = CaTable::parse(&path.display().to_string(), &text)?;
        extra.rows.append(&mut self.rows);
        self.rows = extra.rows;
        Ok(self)
    }

    /// The CAA identifiers of the CA named in `issuer_dn` (its O and CN are compared); `None` when unknown.
    pub fn domains_for(&self, issuer_dn: &str) -> Option<&[String]> {
        let parts: Vec<String> = issuer_dn
            .split(',')
            .map(str::trim)
            .filter_map(|p| p.strip_prefix("O=").or_else(|| p.strip_prefix("CN=")))
            .map(normalise)
            .collect();
        self.rows
            .iter()
            .find(|(m, _)| parts.iter().any(|p| p.contains(m.as_str())))
            .map(|(_, d)| d.as_slice())
    }
}
