use super::*;

/// Polls `cond` every 10 ms for up to 10 s.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn a_directory_means_its_txt_files_sorted() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["b.txt", "a.txt", "notes.md", "c.txt.bak"] {
        std::fs::write(dir.path().join(name), "example.com\n").unwrap();
    }
    std::fs::create_dir(dir.path().join("sub.txt")).unwrap();
    let files = watchlist_files(dir.path()).unwrap();
    let names: Vec<_> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_str().unwrap())
        .collect();
    assert_eq!(names, ["a.txt", "b.txt"]);
    let missing = watchlist_files(&dir.path().join("nope")).unwrap_err();
    assert_eq!(missing.line, 0);
    assert!(missing.message.starts_with("cannot open"), "{missing}");
}

#[test]
fn fingerprint_changes_with_edits_and_new_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "example.com\n").unwrap();
    let first = fingerprint(dir.path());
    assert_eq!(first.len(), 1);
    std::fs::write(dir.path().join("a.txt"), "example.com\nexample.org\n").unwrap();
    let second = fingerprint(dir.path());
    assert_ne!(first, second);
    std::fs::write(dir.path().join("b.txt"), "").unwrap();
    assert_eq!(fingerprint(dir.path()).len(), 2);
}

#[tokio::test]
async fn reloads_on_change_and_keeps_the_old_list_when_the_new_one_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "example.com\n").unwrap();
    let handle = WatchlistHandle::new(Watchlist::load(dir.path()).unwrap());
    let (stop, shutdown) = watch::channel(false);
    let task = handle.spawn_reloader(
        dir.path().to_path_buf(),
        Duration::from_millis(20),
        shutdown,
    );
    assert_eq!(handle.get().len(), 1);

    let mut receiver = handle.subscribe();
    std::fs::write(dir.path().join("b.txt"), "=www.example.org\n").unwrap();
    eventually("the new file to be picked up", || handle.get().len() == 2).await;
    assert!(receiver.has_changed().unwrap());
    assert_eq!(receiver.borrow_and_update().len(), 2);

    std::fs::write(dir.path().join("a.txt"), "example.com\nbad..name\n").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        handle.get().len(),
        2,
        "an invalid edit must keep the previous list"
    );

    std::fs::write(
        dir.path().join("a.txt"),
        "example.com\n~paypal\n*.example.net\n",
    )
    .unwrap();
    eventually("the fixed file to be picked up", || handle.get().len() == 4).await;

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("reloader stops on shutdown")
        .unwrap();
}

#[tokio::test]
async fn reloads_on_sighup_even_without_a_file_change() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("list.txt");
    std::fs::write(&file, "example.com\n").unwrap();
    let handle = WatchlistHandle::new(Watchlist::load(&file).unwrap());
    let (_stop, shutdown) = watch::channel(false);
    // An hour between polls: only the signal can trigger the reload within the test.
    let task = handle.spawn_reloader(file.clone(), Duration::from_secs(3600), shutdown);
    let before = handle.generation();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status();
    assert!(status.unwrap().success());
    eventually("a reload after SIGHUP", || handle.generation() > before).await;
    assert_eq!(handle.get().len(), 1);
    assert_eq!(handle.get().sources(), [file]);
    task.abort();
}

#[tokio::test]
async fn dropping_the_shutdown_sender_stops_the_reloader() {
    let dir = tempfile::tempdir().unwrap();
    let handle = WatchlistHandle::new(Watchlist::parse_str("x", "").unwrap());
    let (stop, shutdown) = watch::channel(false);
    let task = handle.spawn_reloader(
        dir.path().to_path_buf(),
        Duration::from_millis(10),
        shutdown,
    );
    drop(stop);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("reloader stops")
        .unwrap();
}
