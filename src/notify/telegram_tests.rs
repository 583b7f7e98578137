use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use super::*;
use crate::notify::digest::digest;
use crate::notify::sample::fixtures;

/// What Telegram shows for an HTML text: tags dropped, the three entities decoded. Written independently of
/// `escape_html` so that the round trip checks it.
fn rendered(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn balanced(part: &str) -> bool {
    ["b", "code", "i"].iter().all(|t| {
        part.matches(&format!("<{t}>")).count() == part.matches(&format!("</{t}>")).count()
    })
}

fn render(payloads: &[Value]) -> Vec<String> {
    let refs: Vec<&Value> = payloads.iter().collect();
    lines(&digest(&refs, "new_certificate|google.com", 10))
}

#[test]
fn names_with_html_characters_survive() {
    // No real certificate has such a name: this is the real cloudflare payload with one name added.
    let mut p = fixtures::cloudflare();
    let evil = "a_b<script>&amp;x.cloudflare-dns.com";
    p["matched"][0]["name"] = json!(evil);
    p["dns_names"][0] = json!(evil);
    let l = render(&[p]);
    assert_eq!(
        l[0],
        "<b>New certificate: a_b&lt;script&gt;&amp;amp;x.cloudflare-dns.com</b>"
    );
    assert_eq!(
        l[1],
        "Matched: <code>a_b&lt;script&gt;&amp;amp;x.cloudflare-dns.com</code> via <code>cloudflare-dns.com</code>"
    );
    let text = split(&l, MESSAGE_MAX);
    assert_eq!(text.len(), 1);
    let shown = rendered(&text[0]);
    assert!(
        shown.starts_with(&format!(
            "New certificate: {evil}\nMatched: {evil} via cloudflare-dns.com\n"
        )),
        "{shown}"
    );
    assert!(shown.lines().any(|line| line == evil));
    assert!(balanced(&text[0]));
}

#[test]
fn the_google_certificate_is_split_on_line_boundaries() {
    let p = fixtures::google();
    let l = render(std::slice::from_ref(&p));
    assert_eq!(l[0], "<b>New certificate: *.google.com</b>");
    assert_eq!(
        l[1],
        "Matched: <code>*.google.com</code> via <code>google.com</code>"
    );
    assert_eq!(
        l[9],
        "Issuer: CN=GTS CA 1C3, O=Google Trust Services LLC, C=US"
    );
    assert_eq!(l[10], "Valid: 2021-09-13T01:38:37Z .. 2021-11-20T01:38:36Z");
    assert_eq!(l[11], "Seen in: Sample log #1234 (x509)");
    assert_eq!(l[13], "Names (129):");
    assert_eq!(l.len(), 14 + 129);
    let total: usize = l.iter().map(|x| utf16_len(x) + 1).sum();
    assert!(
        total > MESSAGE_MAX,
        "the test needs a message over the limit ({total})"
    );
    let parts = split(&l, MESSAGE_MAX);
    assert_eq!(parts.len(), 2);
    for part in &parts {
        assert!(utf16_len(part) <= MESSAGE_MAX);
        assert!(balanced(part), "{part}");
    }
    // Nothing lost, nothing reordered, cut between two lines.
    assert_eq!(parts.join("\n"), l.join("\n"));
    let first_lines = parts[0].lines().count();
    assert_eq!(parts[0].lines().last(), Some(l[first_lines - 1].as_str()));
    assert_eq!(parts[1].lines().next(), Some(l[first_lines].as_str()));
}

#[test]
fn split_packs_greedily() {
    let l: Vec<String> = ["aaa", "bbb", "ccc", "dd"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(split(&l, 7), ["aaa\nbbb", "ccc\ndd"]);
    assert_eq!(split(&l, 6), ["aaa", "bbb", "ccc\ndd"]);
    assert_eq!(split(&l, 100), ["aaa\nbbb\nccc\ndd"]);
}

#[test]
fn an_overlong_line_loses_its_tags_and_keeps_entities_whole() {
    let line = format!("<code>{}</code>", "a&amp;b&lt;".repeat(1000));
    let parts = split(&[line], 100);
    assert!(parts.len() > 100);
    for p in &parts {
        assert!(utf16_len(p) <= 100);
        assert!(!p.contains('<'));
        // Every '&' starts a whole entity.
        for (i, _) in p.match_indices('&') {
            assert!(
                p[i..].starts_with("&amp;") || p[i..].starts_with("&lt;"),
                "{p}"
            );
        }
    }
    assert_eq!(rendered(&parts.concat()), "a&b<".repeat(1000));
}

#[test]
fn a_group_shows_the_first_events_and_a_count() {
    let google = fixtures::google();
    let payloads: Vec<Value> = (0..200).map(|_| google.clone()).collect();
    let l = render(&payloads);
    assert_eq!(l[0], "<b>200 new certificates: google.com</b>");
    assert_eq!(
        l[1],
        "• <code>*.google.com</code> (+128 names), issuer GTS CA 1C3"
    );
    assert_eq!(l.len(), 12);
    assert_eq!(l[11], "… and 190 more");
    assert_eq!(split(&l, MESSAGE_MAX).len(), 1);
}

#[test]
fn chat_ids_parse_and_serialize_as_telegram_expects() {
    assert_eq!(
        "-1001234567890".parse::<ChatId>(),
        Ok(ChatId::Id(-1001234567890))
    );
    assert_eq!(
        "@ct_alerts".parse::<ChatId>(),
        Ok(ChatId::Username("@ct_alerts".into()))
    );
    assert!("ct_alerts".parse::<ChatId>().is_err());
    assert_eq!(json!(ChatId::Id(-5)), json!(-5));
    assert_eq!(json!(ChatId::Username("@c".into())), json!("@c"));
}

fn reply(status: u16, body: Value) -> Reply {
    Reply {
        status,
        headers: HeaderMap::new(),
        body: body.to_string(),
    }
}

#[test]
fn answers_are_read() {
    assert!(matches!(
        read_answer(&reply(200, json!({"ok": true, "result": {}}))),
        Answer::Sent
    ));
    let migrated = json!({"ok": false, "error_code": 400, "description": "Bad Request: group chat was upgraded to a supergroup chat",
        "parameters": {"migrate_to_chat_id": -1001234}});
    assert!(matches!(
        read_answer(&reply(400, migrated)),
        Answer::Migrated(-1001234)
    ));
    let slow = json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 3", "parameters": {"retry_after": 3}});
    let Answer::Failed(e) = read_answer(&reply(429, slow)) else {
        panic!()
    };
    assert_eq!(e.retry_after, Some(Duration::from_secs(3)));
    assert_eq!(
        e.message,
        "Telegram answered HTTP 429: Too Many Requests: retry after 3"
    );
    let kicked = json!({"ok": false, "error_code": 403, "description": "Forbidden: bot was kicked from the group chat"});
    let Answer::Failed(e) = read_answer(&reply(403, kicked)) else {
        panic!()
    };
    assert!(e.gone);
    let bad =
        json!({"ok": false, "error_code": 400, "description": "Bad Request: can't parse entities"});
    let Answer::Failed(e) = read_answer(&reply(400, bad)) else {
        panic!()
    };
    assert!(e.permanent && !e.gone);
    let Answer::Failed(e) = read_answer(&reply(502, json!(null))) else {
        panic!()
    };
    assert!(!e.permanent);
}
