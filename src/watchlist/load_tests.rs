//! Loading: files and directories, error reports, summaries, sharing.

use super::*;

#[test]
fn a_watchlist_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Watchlist>();
    assert_send_sync::<WatchlistHandle>();
}

#[test]
fn errors_from_all_files_print_file_line_message_and_hint() {
    let err = Watchlist::from_sources(&[
        ("a.txt".into(), "ok.com\nbad..com\n".into()),
        ("b.txt".into(), "/(/\nexample.com colour=red\n".into()),
    ])
    .unwrap_err();
    let lines: Vec<String> = err.to_string().lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        lines[0].starts_with(
            "a.txt:2: invalid domain in 'bad..com': 'bad..com' has an empty label (hint: "
        ),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("b.txt:1: invalid regex /(/: "),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with("b.txt:2: unknown option 'colour=red' (hint: one item per line"),
        "{}",
        lines[2]
    );
}

#[test]
fn load_reads_a_directory_and_summarizes_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.txt"),
        "example.com issuers=digicert\n=www.example.org\n!dev.example.com\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.txt"),
        "~paypal\nexample.com issuers=digicert\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("ignored.md"), "not a watchlist ((\n").unwrap();
    let wl = Watchlist::load(dir.path()).unwrap();
    assert_eq!(wl.len(), 5);
    assert_eq!(wl.sources().len(), 2);
    let a = dir.path().join("a.txt").display().to_string();
    let b = dir.path().join("b.txt").display().to_string();
    let expected = format!(
        "{a}: 1 domain, 1 exact, 1 exclusion (1 with issuers=)\n{b}: 1 domain, 1 keyword (1 with issuers=)\n\
         5 items in 2 file(s)\nwarning: {b}:2: 'example.com' repeats {a}:1\n"
    );
    assert_eq!(check(dir.path()).unwrap(), expected);
}

#[test]
fn load_reports_unreadable_and_non_utf8_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("latin1.txt"),
        b"example.com\nb\xfccher.de\n",
    )
    .unwrap();
    let err = Watchlist::load(dir.path()).unwrap_err();
    assert_eq!(err.0.len(), 1);
    assert_eq!(err.0[0].line, 2);
    assert_eq!(err.0[0].message, "not valid UTF-8");
    let missing = check(&dir.path().join("missing.txt")).unwrap_err();
    assert!(missing.to_string().contains("cannot open"), "{missing}");
}
