use serde_json::{Value, json};

use super::*;
use crate::notify::digest::digest;
use crate::notify::sample::fixtures;

fn render(payloads: &[Value], max: usize) -> Value {
    let refs: Vec<&Value> = payloads.iter().collect();
    let key = "new_certificate|google.com";
    message(&digest(&refs, key, max), "ctwatch")
}

fn assert_within_limits(msg: &Value) {
    assert_eq!(msg["allowed_mentions"], json!({"parse": []}));
    let embeds = msg["embeds"].as_array().unwrap();
    assert!(embeds.len() <= 10);
    for e in embeds {
        assert!(char_len(e["title"].as_str().unwrap()) <= TITLE_MAX);
        assert!(char_len(e["description"].as_str().unwrap()) <= DESCRIPTION_MAX);
        let fields = e["fields"].as_array().unwrap();
        assert!(fields.len() <= 25);
        for f in fields {
            assert!(char_len(f["name"].as_str().unwrap()) <= FIELD_NAME_MAX);
            let v = f["value"].as_str().unwrap();
            assert!(!v.is_empty() && char_len(v) <= FIELD_VALUE_MAX, "{v}");
        }
        assert!(
            embed_text_len(e) <= EMBED_TOTAL_MAX,
            "{}",
            embed_text_len(e)
        );
    }
}

#[test]
fn the_129_san_google_certificate_fits_discords_limits() {
    let p = fixtures::google();
    let sans: Vec<&str> = p["dns_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(sans.len(), 129);
    let msg = render(std::slice::from_ref(&p), 10);
    assert_within_limits(&msg);
    let e = &msg["embeds"][0];
    assert_eq!(e["title"], r"New certificate: \*.google.com");
    assert_eq!(e["color"], 0x3498DB);
    assert_eq!(e["timestamp"], "2021-09-13T01:38:37.000Z");
    let fields: Vec<(&str, &str)> = e["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["value"].as_str().unwrap()))
        .collect();
    let names: Vec<&str> = fields.iter().map(|f| f.0).collect();
    assert_eq!(
        names,
        ["Matched", "Issuer", "Valid", "Seen in", "TBS SHA-256"]
    );
    // The 8 SANs under google.com, in certificate order (openssl x509 -ext subjectAltName).
    let matched: Vec<&str> = fields[0].1.lines().collect();
    assert_eq!(matched.len(), 8);
    assert_eq!(matched[0], "`*.google.com` via `google.com`");
    assert_eq!(matched[1], "`*.appengine.google.com` via `google.com`");
    assert_eq!(
        fields[1].1,
        "CN=GTS CA 1C3, O=Google Trust Services LLC, C=US"
    );
    assert_eq!(fields[2].1, "2021-09-13T01:38:37Z .. 2021-11-20T01:38:36Z");
    assert_eq!(fields[3].1, "Sample log #1234 (x509)");
    assert_eq!(
        fields[4].1,
        format!("`{}`", p["tbs_sha256"].as_str().unwrap())
    );
    assert_eq!(
        e["footer"]["text"],
        "cert SHA-256 7a0bd4ce2d7dbc8a4c6af16dcd1ef87602adb79dd4ebd23eaa41a248fff0085d"
    );
    // All 129 names fit in the description (4096), in certificate order.
    let lines: Vec<&str> = e["description"].as_str().unwrap().lines().collect();
    assert_eq!(lines[0], "**129 names**");
    assert_eq!(lines.len(), 130, "{lines:?}");
    for (line, san) in lines[1..].iter().zip(&sans) {
        assert_eq!(*line, format!("`{san}`"));
    }
}

#[test]
fn names_that_do_not_fit_are_counted() {
    // The same certificate with its names made long (real names, each repeated as labels): the description
    // must stop before 4096 characters and say how many names are left out.
    let mut p = fixtures::google();
    let long: Vec<Value> = p["dns_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            json!(format!(
                "{0}.{0}.{0}",
                n.as_str().unwrap().trim_start_matches("*.")
            ))
        })
        .collect();
    p["dns_names"] = json!(long);
    let msg = render(&[p], 10);
    assert_within_limits(&msg);
    let lines: Vec<&str> = msg["embeds"][0]["description"]
        .as_str()
        .unwrap()
        .lines()
        .collect();
    let shown = lines.len() - 2;
    assert!(shown > 10 && shown < 129, "{shown}");
    assert_eq!(
        *lines.last().unwrap(),
        format!("… and {} more", 129 - shown)
    );
}

#[test]
fn a_burst_is_one_summary_with_the_first_names_and_a_count() {
    let google = fixtures::google();
    let cloudflare = fixtures::cloudflare();
    let payloads: Vec<Value> = (0..200)
        .map(|i| {
            if i % 2 == 0 {
                google.clone()
            } else {
                cloudflare.clone()
            }
        })
        .collect();
    let msg = render(&payloads, 10);
    assert_within_limits(&msg);
    let e = &msg["embeds"][0];
    assert_eq!(e["title"], "200 new certificates: google.com");
    let lines: Vec<&str> = e["description"].as_str().unwrap().lines().collect();
    assert_eq!(lines.len(), 11);
    assert_eq!(lines[0], "• `*.google.com` (+128 names), issuer GTS CA 1C3");
    assert_eq!(
        lines[1],
        "• `cloudflare-dns.com` (+10 names), issuer DigiCert TLS Hybrid ECC SHA384 2020 CA1"
    );
    assert_eq!(lines[10], "… and 190 more");
    assert_eq!(e["footer"]["text"], "200 events · group new_certificate");
}

#[test]
fn names_cannot_format_or_mention() {
    let mut p = fixtures::cloudflare();
    p["matched"][0]["name"] = json!("a_b<&>`x`@everyone.cloudflare-dns.com");
    p["issuer"] = json!("CN=*Evil* [CA](http://x)");
    let msg = render(&[p], 10);
    let e = &msg["embeds"][0];
    assert_eq!(
        e["title"],
        r"New certificate: a\_b\<&\>\`x\`@everyone.cloudflare-dns.com"
    );
    assert_eq!(
        e["fields"][0]["value"],
        "`a_b<&>ˋxˋ@everyone.cloudflare-dns.com` via `cloudflare-dns.com`\n`*.cloudflare-dns.com` via `cloudflare-dns.com`"
    );
    assert_eq!(
        escape_markdown("# title\n- item #3 - x"),
        "\\# title\n\\- item #3 - x"
    );
    assert_eq!(e["fields"][1]["value"], r"CN=\*Evil\* \[CA\](http://x)");
    assert_eq!(msg["allowed_mentions"], json!({"parse": []}));
}

#[test]
fn a_test_message_is_plain() {
    let p = crate::notify::test_event_payload(0);
    let msg = message(&digest(&[&p], "test|", 10), "ctwatch");
    let e = &msg["embeds"][0];
    assert_eq!(e["title"], "ctwatch test notification");
    assert_eq!(
        e["description"],
        "If you can read this, ctwatch can reach this channel."
    );
    assert_eq!(e["color"], 0x2ECC71);
    assert_eq!(e["timestamp"], "1970-01-01T00:00:00Z");
}
