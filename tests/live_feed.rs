//! The certstream-compatible live feed: /stream/full, /stream/lite, /stream/domains (WebSocket) and /stream/sse,
//! against a daemon tailing a fake log on 127.0.0.1; and the real certstream Python client from PyPI.

mod common;
mod console_support;

use std::time::Duration;

use console_support::{KEY, XSS_IMG, XSS_SCRIPT, entries, keyed_api, start};
use ctwatch::api::ApiConfig;
use ctwatch::api::stream::StreamConfig;
use ctwatch_fakelog as fakelog;
use futures::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str) -> Ws {
    let url = url.replace("http://", "ws://");
    tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket handshake")
        .0
}

/// Read certificate_update messages (skipping heartbeats) until `n` arrived.
async fn read_updates(ws: &mut Ws, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while out.len() < n {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} messages arrived", out.len()))
            .expect("stream ended")
            .expect("websocket error");
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["message_type"] != "heartbeat" {
                out.push(v);
            }
        }
    }
    out
}

/// Wait until `n` clients are connected (so that nothing published afterwards is missed).
async fn wait_clients(c: &console_support::Console, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while c.registry.feed.clients() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "clients did not subscribe"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_lite_and_domains_streams_carry_every_verified_entry() {
    let c = start(ApiConfig::default(), entries(), 0, false).await;
    let mut full = connect(&c.url("/stream/full")).await;
    let mut lite = connect(&c.url("/stream/lite?tag=acme")).await;
    let mut domains = connect(&c.url("/stream/domains?watchlist=1")).await;
    wait_clients(&c, 3).await;
    c.log.publish(1026);

    let all = read_updates(&mut full, 1026).await;
    for (i, m) in all.iter().enumerate() {
        assert_eq!(m["message_type"], "certificate_update");
        let d = &m["data"];
        assert_eq!(d["cert_index"], i as u64, "in log order");
        assert_eq!(d["verified"], true);
        assert_eq!(d["tbs_sha256"].as_str().unwrap().len(), 64);
        assert!(d["leaf_cert"]["as_der"].as_str().unwrap().len() > 100);
        assert!(
            d["cert_link"]
                .as_str()
                .unwrap()
                .contains(&format!("/ct/v1/get-entries?start={i}&end={i}"))
        );
        assert_eq!(d["source"]["type"], "rfc6962");
        assert!(d["seen"].as_f64().unwrap() > 1.7e9);
    }
    assert_eq!(all[0]["data"]["update_type"], "PrecertLogEntry");
    assert_eq!(all[1025]["data"]["update_type"], "X509LogEntry");
    assert_eq!(all[1024]["data"]["leaf_cert"]["all_domains"][0], XSS_SCRIPT);
    let matched = all
        .iter()
        .filter(|m| !m["data"]["matches"].as_array().unwrap().is_empty())
        .count();
    assert_eq!(
        matched,
        61 + 2,
        "61 navigli matches (as certspotter finds) + the 2 evil.example certificates"
    );

    // Only what matched an item tagged acme, without DER.
    let acme_count = all
        .iter()
        .filter(|m| {
            m["data"]["matches"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["tags"][0] == "acme")
        })
        .count();
    assert!(acme_count > 0);
    let acme = read_updates(&mut lite, acme_count).await;
    for m in &acme {
        assert!(m["data"]["leaf_cert"].get("as_der").is_none());
        assert!(m["data"].get("chain").is_none());
        assert!(m["data"]["matches"].to_string().contains("\"acme\""));
    }
    let dns = read_updates(&mut domains, 63).await;
    assert!(dns.iter().all(|m| m["message_type"] == "dns_entries"));
    assert_eq!(dns[62]["data"][0], XSS_IMG);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_unverified_is_streamed() {
    let c = start(ApiConfig::default(), entries(), 0, false).await;
    // Entry 5 is served tampered: its batch does not hash to the signed root and must never be streamed.
    c.log.set_faults(fakelog::Faults {
        tamper_index: Some(5),
        ..Default::default()
    });
    let mut full = connect(&c.url("/stream/lite")).await;
    wait_clients(&c, 1).await;
    c.log.publish(1026);
    let got = tokio::time::timeout(Duration::from_secs(3), read_updates(&mut full, 1)).await;
    assert!(
        got.is_err(),
        "a batch that failed verification was streamed: {got:?}"
    );
    assert_eq!(c.verified(), 0);
    c.log.set_faults(fakelog::Faults::default());
    let got = read_updates(&mut full, 1026).await;
    assert_eq!(got[5]["data"]["cert_index"], 5);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_dropped_with_a_reason_while_a_fast_one_keeps_up() {
    let n = 8000;
    let many = fakelog::synthesize(&common::navigli_entries(), n);
    let api = ApiConfig {
        stream: StreamConfig {
            client_buffer_messages: 1024,
            send_timeout_secs: 2,
            ..StreamConfig::default()
        },
        ..ApiConfig::default()
    };
    let c = start(api, many, 0, false).await;
    let mut slow = connect(&c.url("/stream/full")).await;
    // A client that reads, but slowly (about 300 messages/s).
    let slow_reader = tokio::spawn(async move {
        let mut received = 0;
        loop {
            match tokio::time::timeout(Duration::from_secs(60), slow.next()).await {
                Ok(Some(Ok(Message::Close(Some(frame))))) => {
                    return (Some((frame.code, frame.reason.to_string())), received);
                }
                Ok(Some(Ok(Message::Text(_)))) => received += 1,
                Ok(Some(Ok(_))) => {}
                other => {
                    eprintln!("slow client: stream ended without a close frame: {other:?}");
                    return (None, received);
                }
            }
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    });
    let mut fast = connect(&c.url("/stream/lite")).await;
    wait_clients(&c, 2).await;
    c.log.publish(n as u64);
    let got = read_updates(&mut fast, n).await;
    assert_eq!(got.last().unwrap()["data"]["cert_index"], n as u64 - 1);
    let (reason, received) = slow_reader.await.unwrap();
    let (code, text) = reason.expect("the slow client got a close frame");
    assert_eq!(code, CloseCode::Policy);
    assert!(text.contains("too slow"), "{text}");
    assert!(
        received < n,
        "the slow client was dropped before the end ({received} messages)"
    );
    assert_eq!(c.verified(), n as u64, "the tailer was never slowed down");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_streams_the_same_messages() {
    let c = start(ApiConfig::default(), entries(), 1024, false).await;
    c.wait_verified(1024).await;
    let mut resp = reqwest::get(c.url("/stream/sse?format=domains&tag=lab"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    wait_clients(&c, 1).await;
    c.log.publish(1026);
    let mut body = String::new();
    while !body.contains(XSS_IMG) {
        let chunk = tokio::time::timeout(Duration::from_secs(30), resp.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        body.push_str(&String::from_utf8_lossy(&chunk));
    }
    let first: Value =
        serde_json::from_str(body.lines().find_map(|l| l.strip_prefix("data: ")).unwrap()).unwrap();
    assert_eq!(first["message_type"], "dns_entries");
    assert_eq!(
        first["data"][0], XSS_SCRIPT,
        "only entries after connecting, filtered by tag"
    );
    let bad = reqwest::get(c.url("/stream/sse?format=xml")).await.unwrap();
    assert_eq!(bad.status(), 400);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_client_limits() {
    let mut api = keyed_api();
    api.stream.max_clients_per_key = 1;
    let c = start(api, entries(), 0, false).await;
    let ws = |path: &str| c.url(path).replace("http://", "ws://");
    let err = tokio_tungstenite::connect_async(ws("/stream/full"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    let err = tokio_tungstenite::connect_async(ws("/stream/full?key=wrong-key-0123456789"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    let mut ok = connect(&c.url(&format!("/stream/lite?key={KEY}"))).await;
    let err = tokio_tungstenite::connect_async(ws(&format!("/stream/domains?key={KEY}")))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("503"), "{err}");
    wait_clients(&c, 1).await;
    c.log.publish(1);
    assert_eq!(read_updates(&mut ok, 1).await[0]["data"]["cert_index"], 0);
    drop(ok);
    // The place is freed when the client goes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio_tungstenite::connect_async(ws(&format!("/stream/domains?key={KEY}"))).await {
            Ok(_) => break,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("the key's place was not released: {e}"),
        }
    }
    c.stop().await;
}

/// The real certstream client from PyPI (installed by scripts/install-test-deps.sh into target/certstream-venv).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certstream_python_client_receives_verified_certificates() {
    let python =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/certstream-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/install-test-deps.sh (.ci/run does)",
        python.display()
    );
    let c = start(ApiConfig::default(), entries(), 0, false).await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/live_feed/certstream_client.py");
    let mut child = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(c.url("/stream/full").replace("http://", "ws://"))
        .arg("1026")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let open = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(open.as_deref(), Some("OPEN"));
    wait_clients(&c, 1).await;
    c.log.publish(1026);
    let json = tokio::time::timeout(Duration::from_secs(90), lines.next_line())
        .await
        .expect("the certstream client did not receive everything")
        .unwrap()
        .unwrap();
    let got: Vec<Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(got.len(), 1026);
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m["cert_index"], i as u64);
        assert_eq!(m["verified"], true);
        assert_eq!(m["has_der"], true);
    }
    assert_eq!(got[1024]["all_domains"][0], XSS_SCRIPT);
    assert_eq!(got[1025]["update_type"], "X509LogEntry");
    // The tbs_sha256 the client saw is the identity ctwatch stored for the matched certificate.
    let stored = c.env.store.search("evil.example", 10).unwrap();
    assert!(
        stored
            .iter()
            .any(|r| r.tbs_sha256 == got[1024]["tbs_sha256"].as_str().unwrap())
    );
    let _ = child.wait().await;
    c.stop().await;
}
