//! HTTP side of a growing log: admission (rate limit, random 5xx), latency, then the RFC 6962 or static-ct
//! endpoint, with bytes counted per client.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use super::{GrowingLog, Kind};
use crate::tiled::parse_tile_path;
use ctwatch::ct::merkle::Hash;
use ctwatch::ctlog::static_ct::TILE_WIDTH;

/// Serve `log` on 127.0.0.1 (random port). Returns the base URL (ending in '/') and the server task.
pub async fn serve(log: Arc<GrowingLog>) -> std::io::Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    let app = Router::new().fallback(dispatch).with_state(log);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((format!("http://{addr}/"), task))
}

/// An answer before it becomes a response (so that its size can be counted).
struct Answer {
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
}

fn answer(status: StatusCode, body: impl Into<Vec<u8>>) -> Answer {
    Answer {
        status,
        content_type: "text/plain; charset=utf-8",
        body: body.into(),
    }
}

fn ok(content_type: &'static str, body: Vec<u8>) -> Answer {
    Answer {
        status: StatusCode::OK,
        content_type,
        body,
    }
}

/// The first word of the User-Agent (`ctwatch/0.1 (...)` -> `ctwatch`): who is asking, for limits and counters.
fn client_of(headers: &HeaderMap) -> String {
    let ua = headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown");
    ua.split(['/', ' ']).next().unwrap_or("unknown").to_string()
}

async fn dispatch(State(log): State<Arc<GrowingLog>>, headers: HeaderMap, uri: Uri) -> Response {
    let client = client_of(&headers);
    if !log.take_token(&client) {
        log.count(&client, |c| {
            c.requests += 1;
            c.rate_limited += 1;
        });
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            "rate limit exceeded",
        )
            .into_response();
    }
    if log.knobs.error_rate > 0.0 && log.random() < log.knobs.error_rate {
        log.count(&client, |c| {
            c.requests += 1;
            c.server_errors += 1;
        });
        return (StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable").into_response();
    }
    let path = uri.path().trim_start_matches('/');
    let fetching = path == "ct/v1/get-entries" || path.starts_with("tile/data/");
    let _fetching = fetching.then(|| Fetching::start(&log, &client));
    if path == "ct/v1/get-sth" || path == "checkpoint" {
        log.count(&client, |c| {
            c.heads_during_fetch += u64::from(c.fetching > 0)
        });
    }
    tokio::time::sleep(log.latency()).await;
    let query = parse_query(uri.query().unwrap_or(""));
    let a = match log.kind {
        Kind::Rfc6962 => rfc6962(&log, path, &query),
        Kind::Tiled => tiled(&log, path),
    };
    log.count(&client, |c| {
        c.requests += 1;
        c.bytes += a.body.len() as u64;
    });
    (a.status, [("content-type", a.content_type)], a.body).into_response()
}

/// An entries request in flight (also when the client gives up on it).
struct Fetching<'a> {
    log: &'a GrowingLog,
    client: &'a str,
}

impl<'a> Fetching<'a> {
    fn start(log: &'a GrowingLog, client: &'a str) -> Fetching<'a> {
        log.count(client, |c| c.fetching += 1);
        Fetching { log, client }
    }
}

impl Drop for Fetching<'_> {
    fn drop(&mut self) {
        self.log.count(self.client, |c| c.fetching -= 1);
    }
}

fn parse_query(q: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn num(q: &HashMap<String, String>, k: &str) -> Option<u64> {
    q.get(k)?.parse().ok()
}

fn rfc6962(log: &GrowingLog, path: &str, q: &HashMap<String, String>) -> Answer {
    match path {
        "ct/v1/get-sth" => ok(
            "application/json",
            log.head.read().unwrap().signed.as_bytes().to_vec(),
        ),
        "ct/v1/get-entries" => match (num(q, "start"), num(q, "end")) {
            (Some(start), Some(end)) => get_entries(log, start, end),
            _ => answer(StatusCode::BAD_REQUEST, "start and end required"),
        },
        "ct/v1/get-sth-consistency" => {
            let (Some(first), Some(second)) = (num(q, "first"), num(q, "second")) else {
                return answer(StatusCode::BAD_REQUEST, "first and second required");
            };
            let head = log.head.read().unwrap();
            if first == 0 || first > second || second > head.published {
                return answer(StatusCode::BAD_REQUEST, "bad sizes");
            }
            let proof = head.tree.consistency_proof(first, second);
            json_hashes("consistency", &proof, None)
        }
        "ct/v1/get-proof-by-hash" => proof_by_hash(log, q),
        _ => answer(StatusCode::NOT_FOUND, "not found"),
    }
}

fn get_entries(log: &GrowingLog, start: u64, end: u64) -> Answer {
    let size = log.published();
    if start > end || start >= size {
        return answer(StatusCode::BAD_REQUEST, "bad range");
    }
    let page = match log.knobs.page_cap {
        0 => 256,
        n => n.min(256),
    } as u64;
    let end = end.min(size - 1).min(start + page - 1) + 1;
    let stamps = log.entry_timestamps(start, end);
    let mut body = String::with_capacity((end - start) as usize * 8192);
    body.push_str("{\"entries\":[");
    for (i, ts) in (start..end).zip(stamps) {
        let e = log
            .catalog
            .rfc6962(log.catalog.template_of(i), log.uid_base + i, ts);
        if i > start {
            body.push(',');
        }
        body.push_str("{\"leaf_input\":\"");
        B64.encode_string(&e.leaf_input, &mut body);
        body.push_str("\",\"extra_data\":\"");
        B64.encode_string(&e.extra_data, &mut body);
        body.push_str("\"}");
    }
    body.push_str("]}");
    ok("application/json", body.into_bytes())
}

fn proof_by_hash(log: &GrowingLog, q: &HashMap<String, String>) -> Answer {
    let hash = q
        .get("hash")
        .and_then(|h| B64.decode(h).ok())
        .and_then(|b| Hash::try_from(b.as_slice()).ok());
    let (Some(hash), Some(size)) = (hash, num(q, "tree_size")) else {
        return answer(StatusCode::BAD_REQUEST, "hash and tree_size required");
    };
    let head = log.head.read().unwrap();
    let Some(&index) = head.by_hash.get(&hash) else {
        return answer(StatusCode::NOT_FOUND, "no such leaf");
    };
    if index >= size || size > head.published {
        return answer(StatusCode::BAD_REQUEST, "leaf not in tree");
    }
    let path = head.tree.inclusion_proof(index, size);
    json_hashes("audit_path", &path, Some(index))
}

fn json_hashes(field: &str, hashes: &[Hash], leaf_index: Option<u64>) -> Answer {
    let list: Vec<String> = hashes.iter().map(|h| B64.encode(h)).collect();
    let mut v = serde_json::json!({ field: list });
    if let Some(i) = leaf_index {
        v["leaf_index"] = i.into();
    }
    ok("application/json", v.to_string().into_bytes())
}

fn tiled(log: &GrowingLog, path: &str) -> Answer {
    if path == "checkpoint" {
        let note = log.head.read().unwrap().signed.as_bytes().to_vec();
        return ok("text/plain; charset=utf-8", note);
    }
    if let Some(hex_fp) = path.strip_prefix("issuer/") {
        let fp: Option<[u8; 32]> = hex::decode(hex_fp).ok().and_then(|b| b.try_into().ok());
        return match fp.and_then(|fp| log.catalog.issuers.get(&fp)) {
            Some(der) => ok("application/pkix-cert", der.clone()),
            None => answer(StatusCode::NOT_FOUND, "no such issuer"),
        };
    }
    if let Some(rest) = path.strip_prefix("tile/data/") {
        return data_tile(log, rest);
    }
    if let Some((level, rest)) = path.strip_prefix("tile/").and_then(|r| r.split_once('/'))
        && let Ok(level) = level.parse::<u32>()
    {
        return hash_tile(log, level, rest);
    }
    answer(StatusCode::NOT_FOUND, "not found")
}

fn data_tile(log: &GrowingLog, rest: &str) -> Answer {
    let Some((index, width)) = parse_tile_path(rest) else {
        return answer(StatusCode::NOT_FOUND, "not found");
    };
    let first = index * TILE_WIDTH;
    if first + width > log.published() {
        return answer(StatusCode::NOT_FOUND, "not found");
    }
    let stamps = log.entry_timestamps(first, first + width);
    let mut body = Vec::with_capacity(width as usize * 4096);
    for (i, ts) in (first..first + width).zip(stamps) {
        let (leaf, _) = log
            .catalog
            .tile_leaf(log.catalog.template_of(i), log.uid_base + i, ts, i);
        body.extend_from_slice(&leaf);
    }
    ok("application/octet-stream", body)
}

fn hash_tile(log: &GrowingLog, level: u32, rest: &str) -> Answer {
    let Some((index, width)) = parse_tile_path(rest) else {
        return answer(StatusCode::NOT_FOUND, "not found");
    };
    let head = log.head.read().unwrap();
    if level > 7 || (index * TILE_WIDTH + width) << (8 * level) > head.published {
        return answer(StatusCode::NOT_FOUND, "not found");
    }
    let mut body = Vec::with_capacity(width as usize * 32);
    for i in 0..width {
        match head.tree.full_subtree(8 * level, index * TILE_WIDTH + i) {
            Some(h) => body.extend_from_slice(&h),
            None => return answer(StatusCode::NOT_FOUND, "not found"),
        }
    }
    ok("application/octet-stream", body)
}
