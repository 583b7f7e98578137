//! A structured view of watchlist files for the web console: every item per file with its kind and tags, and the
//! errors and warnings `ctwatch watchlist check` would print.

use std::collections::BTreeMap;
use std::path::Path;

use super::parse::{self, pattern_kind};
use super::{Watchlist, WatchlistError};

/// One item as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemView {
    pub line: usize,
    pub text: String,
    pub kind: &'static str,
    pub tags: Vec<String>,
    /// The item carries an `issuers=` policy.
    pub policy: bool,
}

/// One file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileView {
    pub source: String,
    pub items: Vec<ItemView>,
    pub kinds: BTreeMap<&'static str, usize>,
}

/// Every file under `path` and what `watchlist check` says about them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inspection {
    pub files: Vec<FileView>,
    /// Errors (the watchlist would be refused; the daemon keeps the previous one).
    pub errors: Vec<WatchlistError>,
    pub warnings: Vec<WatchlistError>,
}

/// Read and check the watchlist at `path` (a file or a directory of `*.txt`).
pub fn inspect(path: &Path) -> Inspection {
    let mut out = Inspection::default();
    match Watchlist::load(path) {
        Ok(list) => out.warnings = list.warnings().to_vec(),
        Err(errs) => out.errors = errs.0,
    }
    let files = super::reload::watchlist_files(path).unwrap_or_default();
    for file in files {
        let source = file.display().to_string();
        let Ok(text) = std::fs::read_to_string(&file) else {
            out.files.push(FileView {
                source,
                ..Default::default()
            });
            continue;
        };
        let parsed = parse::parse_file(&text);
        let mut view = FileView {
            source,
            ..Default::default()
        };
        for item in parsed.items {
            let kind = pattern_kind(&item.pattern);
            *view.kinds.entry(kind).or_default() += 1;
            view.items.push(ItemView {
                line: item.line,
                text: item.text,
                kind,
                tags: item.tags,
                policy: !item.issuers.is_empty(),
            });
        }
        out.files.push(view);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_kinds_errors_and_warnings() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.txt"),
            "@acme\nexample.com issuers=letsencrypt\n~paypal\n=host.example.org\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("b.txt"), "/unclosed\n").unwrap();
        let got = inspect(dir.path());
        assert_eq!(got.files.len(), 2);
        let a = &got.files[0];
        assert_eq!(a.items.len(), 3);
        assert_eq!(a.items[0].kind, "domain");
        assert!(a.items[0].policy);
        assert_eq!(a.items[0].tags, ["acme"]);
        assert_eq!(a.kinds.get("keyword"), Some(&1));
        assert_eq!(got.errors.len(), 1, "{:?}", got.errors);
        assert!(got.errors[0].source.ends_with("b.txt"));
        assert_eq!(got.errors[0].line, 1);
    }
}
