//! The login page (an API key, once) and logout.

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::html;
use serde::Deserialize;

use super::Viewer;
use super::layout::{self, page};
use crate::api::ApiState;
use crate::api::session::{self, same_token};

#[derive(Deserialize)]
pub(crate) struct Next {
    next: Option<String>,
}

/// Only same-site paths: `/x`, never `//host` or `/\host`.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") => {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

fn login_page(status: StatusCode, next: &str, error: Option<&str>) -> Response {
    let body = html! {
        section.card.narrow.login {
            h1 { "Log in" }
            p.muted { "Enter one of the API keys configured in " code { "[[api.keys]]" } ". The console keeps a session cookie; the key itself is not stored in the browser." }
            @if let Some(e) = error { div.notice.bad role="alert" { (e) } }
            form method="post" action="/login" {
                input type="hidden" name="next" value=(next);
                label for="key" { "API key" }
                input id="key" type="password" name="key" autocomplete="current-password" required autofocus;
                button.button type="submit" { "Log in" }
            }
        }
    };
    layout::html_response(status, page("Log in", "", None, body))
}

pub(crate) async fn form(State(state): State<Arc<ApiState>>, Query(q): Query<Next>) -> Response {
    let next = safe_next(q.next.as_deref());
    if state.keys.is_empty() {
        return Redirect::to(&next).into_response();
    }
    login_page(StatusCode::OK, &next, None)
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    key: String,
    next: Option<String>,
}

pub(crate) async fn submit(
    State(state): State<Arc<ApiState>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return login_page(
            StatusCode::BAD_REQUEST,
            "/",
            Some("The form was incomplete."),
        );
    };
    let next = safe_next(form.next.as_deref());
    if state.keys.is_empty() {
        return Redirect::to(&next).into_response();
    }
    if super::pages::cross_site(&headers) {
        return login_page(
            StatusCode::FORBIDDEN,
            &next,
            Some("Cross-site login refused."),
        );
    }
    let client = crate::api::stream::peer_ip(peer);
    match state.keys.admit(
        Some(form.key.trim().as_bytes()),
        client,
        tokio::time::Instant::now(),
    ) {
        Ok(Some(name)) => {
            let token = state.sessions.open(name, tokio::time::Instant::now());
            tracing::info!(key = name, "console: session opened");
            let mut resp = Redirect::to(&next).into_response();
            if let Ok(v) = session::set_cookie(&token).parse() {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        Ok(None) => Redirect::to(&next).into_response(),
        Err(e) => login_page(StatusCode::UNAUTHORIZED, &next, Some(&e.message)),
    }
}

#[derive(Deserialize)]
pub(crate) struct LogoutForm {
    csrf: String,
}

pub(crate) async fn logout(
    State(state): State<Arc<ApiState>>,
    Extension(v): Extension<Viewer>,
    headers: HeaderMap,
    form: Result<Form<LogoutForm>, FormRejection>,
) -> Response {
    let ok = form.is_ok_and(|Form(f)| same_token(&f.csrf, &v.csrf));
    if !ok {
        return layout::error_page(
            StatusCode::FORBIDDEN,
            "Request refused",
            "Stale form; reload and retry.",
        );
    }
    if let Some(t) = session::token(&headers) {
        state.sessions.close(&t);
    }
    let mut resp = Redirect::to("/login").into_response();
    if let Ok(v) = session::clear_cookie().parse() {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_is_same_site_only() {
        assert_eq!(safe_next(Some("/events?kind=probe")), "/events?kind=probe");
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil.example",
            "javascript:alert(1)",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
