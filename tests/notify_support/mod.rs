//! A notification receiver on 127.0.0.1 for the sink tests: records every request (path, headers, body, time)
//! and answers from a script — a status with a body and headers, a hang (the client times out), or, once
//! stopped, nothing at all (connection refused).
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// How the receiver answers one request.
#[derive(Clone, Debug)]
pub enum Answer {
    Status(u16, String, Vec<(&'static str, String)>),
    /// Never answer (until the receiver is dropped).
    Hang,
}

impl Answer {
    pub fn ok() -> Answer {
        Answer::Status(200, "ok".into(), vec![])
    }
    pub fn status(code: u16, body: &str) -> Answer {
        Answer::Status(code, body.into(), vec![])
    }
    pub fn json(code: u16, body: Value) -> Answer {
        Answer::Status(
            code,
            body.to_string(),
            vec![("content-type", "application/json".into())],
        )
    }
}

/// One recorded request.
#[derive(Clone, Debug)]
pub struct Request {
    pub at: Instant,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// The status we answered (None: hung).
    pub answered: Option<u16>,
}

impl Request {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

#[derive(Default)]
struct Inner {
    requests: Mutex<Vec<Request>>,
    script: Mutex<VecDeque<Answer>>,
    fallback: Mutex<Option<Answer>>,
    arrived: tokio::sync::Notify,
}

pub struct Receiver {
    pub addr: std::net::SocketAddr,
    inner: Arc<Inner>,
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = inner
        .script
        .lock()
        .unwrap()
        .pop_front()
        .or_else(|| inner.fallback.lock().unwrap().clone())
        .unwrap_or_else(Answer::ok);
    let answered = match &answer {
        Answer::Status(code, ..) => Some(*code),
        Answer::Hang => None,
    };
    inner.requests.lock().unwrap().push(Request {
        at: Instant::now(),
        path: uri.path().to_string(),
        headers,
        body: body.to_vec(),
        answered,
    });
    inner.arrived.notify_waiters();
    match answer {
        Answer::Status(code, body, headers) => {
            let mut resp = (StatusCode::from_u16(code).unwrap(), body).into_response();
            for (k, v) in headers {
                resp.headers_mut().insert(k, v.parse().unwrap());
            }
            resp
        }
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}

impl Receiver {
    /// Start on a free port; answers 200 "ok" unless scripted.
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let r = Receiver {
            addr,
            inner: Arc::new(Inner::default()),
            server: Mutex::new(None),
        };
        r.serve(listener);
        r
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let app = Router::new()
            .fallback(handle)
            .with_state(self.inner.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        *self.server.lock().unwrap() = Some(task);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers for the next requests, in order; then the fallback.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.inner.script.lock().unwrap().extend(answers);
    }

    /// The answer once the script is used up (default: 200 "ok").
    pub fn fallback(&self, answer: Answer) {
        *self.inner.fallback.lock().unwrap() = Some(answer);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.inner.requests.lock().unwrap().clone()
    }

    /// Wait until at least `n` requests arrived (or panic after `within`).
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Request> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.inner.arrived.notified();
            let got = self.requests();
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "{} request(s) after {within:?}, wanted {n}",
                    self.requests().len()
                );
            }
        }
    }

    /// Stop listening: new connections are refused ("the target went away").
    pub fn stop(&self) {
        if let Some(t) = self.server.lock().unwrap().take() {
            t.abort();
        }
    }

    /// Listen again on the same port.
    pub async fn restart(&self) {
        self.stop();
        tokio::task::yield_now().await;
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Real certificate payloads (tests/fixtures/notify).
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/notify/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The events ctwatch queues for `der` against `watchlist`.
pub fn events(der: &[u8], watchlist: &str, index: u64) -> Vec<ctwatch::event::Event> {
    ctwatch::notify::sample::certificate_events_for(
        der,
        watchlist,
        index,
        1_700_000_000_000 + index,
    )
    .unwrap()
}

/// The 129-SAN `*.google.com` certificate.
pub fn google_der() -> Vec<u8> {
    ctwatch::notify::sample::pem_certificates(&fixture("google_com_fullchain.pem")).remove(2)
}

/// Five distinct real certificates' events, each from its own watch item.
pub fn five_events() -> Vec<ctwatch::event::Event> {
    let mut out = Vec::new();
    out.extend(events(&google_der(), "google.com lookalike=off", 1));
    out.extend(events(
        &fixture("cloudflare-dns_ee.der"),
        "cloudflare-dns.com lookalike=off",
        2,
    ));
    out.extend(events(
        &fixture("letsencrypt_org_E8_leaf.der"),
        "letsencrypt.org lookalike=off",
        3,
    ));
    out.extend(events(
        &fixture("navigli_idx281_max-24-sans.der"),
        "basetool.com lookalike=off",
        4,
    ));
    out.extend(events(&google_der(), "=*.google.com", 5));
    assert_eq!(out.len(), 5);
    out
}
