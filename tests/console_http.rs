//! The console over plain HTTP: security headers, the key-less console's Host check (DNS rebinding), CSRF on the
//! re-queue action, escaping of hostile names in every page that shows them. (tests/console_browser.rs drives the
//! same pages in a real browser.)

mod common;
mod console_support;

use console_support::{XSS_IMG, XSS_SCRIPT, entries, start};
use ctwatch::api::ApiConfig;

async fn get(url: &str, host: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(url);
    if let Some(h) = host {
        req = req.header("host", h);
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_host_check_csrf_and_escaping() {
    let c = start(ApiConfig::default(), entries(), 1026, false).await;
    c.wait_verified(1026).await;

    let resp = get(&c.url("/"), None).await;
    assert_eq!(resp.status(), 200);
    let h = resp.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");

    // A DNS-rebinding page (Host: attacker's name resolving to 127.0.0.1) cannot read the key-less console.
    let resp = get(
        &c.url("/search?q=evil.example"),
        Some("rebind.attacker.example:8080"),
    )
    .await;
    assert_eq!(resp.status(), 403);
    assert!(
        get(&c.url("/"), Some("localhost:8080"))
            .await
            .status()
            .is_success()
    );

    // Hostile names are escaped wherever they appear.
    for path in ["/search?q=evil.example", "/events?item=evil.example"] {
        let body = get(&c.url(path), None).await.text().await.unwrap();
        assert!(
            body.contains("&lt;script&gt;alert(1)&lt;/script&gt;.evil.example"),
            "{path}"
        );
        assert!(
            !body.contains(XSS_SCRIPT),
            "{path}: raw <script> name in the page"
        );
        assert!(
            !body.contains(XSS_IMG),
            "{path}: raw <img> name in the page"
        );
        assert!(!body.contains("<img"), "{path}");
    }

    // The re-queue action needs the page's CSRF token.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let forged = client
        .post(c.url("/outbox/requeue"))
        .form(&[("csrf", "0".repeat(64)), ("sink", String::new())])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let page = get(&c.url("/outbox"), None).await.text().await.unwrap();
    let token = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let cross = client
        .post(c.url("/outbox/requeue"))
        .header("sec-fetch-site", "cross-site")
        .form(&[("csrf", token.clone()), ("sink", String::new())])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403, "a cross-site form post is refused");
    let ok = client
        .post(c.url("/outbox/requeue"))
        .form(&[("csrf", token), ("sink", "webhook:ops".to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    assert!(
        ok.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/outbox?sink=webhook%3Aops&requeued=")
    );

    // Unknown certificates and bad identifiers are a 404 page, not an error.
    assert_eq!(
        get(&c.url(&format!("/cert/{}", "0".repeat(64))), None)
            .await
            .status(),
        404
    );
    assert_eq!(get(&c.url("/cert/not-hex"), None).await.status(), 404);
    c.stop().await;
}
