//! The dashboard at `/dashboard`: pages rendered on the server, usable without JavaScript (links
//! and `<form method=post>`), for people who sign in with a reader, operator or admin token.
//!
//! - `html`: escaping and the page frame; `view`: what the pages compute from the audit and the
//!   plans; `pages`: the overview, a scope, a run, a unit and its fix; `export`: CSV and JSON.
//! - Here: the router (its own body limit and timeout, apart from `/v1`'s), sign-in and
//!   sign-out, the signed-in [`Viewer`] as an extractor, and [`PageError`], every failure as an
//!   HTML page with its status.
//!
//! Sessions live in the server's database ([`crate::sessions`]); every form carries the
//! session's CSRF secret, checked before anything is read from the form's other fields.

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use flamingock_client::wire::Role;
use serde::Deserialize;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::api::AppState;
use crate::error::ServerError;
use crate::sessions::{self, Session};
use crate::tokens;

mod export;
pub mod html;
mod pages;
mod view;

use html::{Frame, Html};

/// The largest form the dashboard reads (a fix's reason fits many times).
pub const MAX_FORM_BYTES: usize = 64 * 1024;
/// How long one page may take before the server answers `503`.
const PAGE_TIMEOUT: Duration = Duration::from_secs(30);
/// The session cookie.
pub const SESSION_COOKIE: &str = "flamingock_session";
/// The cookie that ties the sign-in form to the browser that loaded it (its CSRF check).
pub const SIGN_IN_COOKIE: &str = "flamingock_sign_in";

/// The dashboard's router, layered on its own (its limits are not the API's).
pub fn router(state: AppState) -> Router {
    let scope = "/dashboard/{service}/{environment}";
    Router::new()
        .route("/dashboard", get(pages::overview))
        .route("/dashboard/sign-in", get(sign_in_page).post(sign_in))
        .route("/dashboard/sign-out", post(sign_out))
        .route(scope, get(pages::scope))
        .route(&format!("{scope}/export"), get(export::export))
        .route(&format!("{scope}/runs/{{execution_id}}"), get(pages::run))
        .route(&format!("{scope}/units/{{change_id}}"), get(pages::unit))
        .route(
            &format!("{scope}/units/{{change_id}}/fix"),
            post(pages::fix),
        )
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(RequestBodyLimitLayer::new(MAX_FORM_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            PAGE_TIMEOUT,
        ))
        .layer(TraceLayer::new_for_http())
        // Outermost: the trace layer sees the session cookie only as "Sensitive".
        .layer(SetSensitiveRequestHeadersLayer::new([COOKIE]))
        .with_state(state)
}

/// A dashboard failure, shown as a page with its status; nothing was written.
#[derive(Debug)]
pub enum PageError {
    /// No live session: to the sign-in page.
    SignIn,
    /// Any other failure.
    Page {
        /// The reply's status.
        status: StatusCode,
        /// What went wrong and what to do.
        message: String,
    },
}

impl PageError {
    /// `400`: a request the dashboard refuses.
    pub fn bad_request(message: impl Into<String>) -> Self {
        PageError::Page {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// `403`: not for this person's token.
    pub fn forbidden(message: impl Into<String>) -> Self {
        PageError::Page {
            status: StatusCode::FORBIDDEN,
            message: message.into(),
        }
    }

    /// `404`: nothing of that name.
    pub fn not_found(message: impl Into<String>) -> Self {
        PageError::Page {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }
}

/// A form the dashboard could not read: `413` when it is over [`MAX_FORM_BYTES`], `400`
/// otherwise.
pub fn form_error(rejection: axum::extract::rejection::FormRejection) -> PageError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return PageError::Page {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!("the form is over {MAX_FORM_BYTES} bytes; nothing was recorded"),
        };
    }
    PageError::bad_request(format!("the form is unreadable: {}", rejection.body_text()))
}

impl From<ServerError> for PageError {
    fn from(error: ServerError) -> Self {
        let status = error.status();
        if status.is_server_error() {
            tracing::warn!(%status, error = %flamingock_core::model::error_chain(&error), "a dashboard page failed");
        }
        PageError::Page {
            status,
            message: error.public_message(),
        }
    }
}

impl From<flamingock_core::StoreError> for PageError {
    fn from(error: flamingock_core::StoreError) -> Self {
        ServerError::from(error).into()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::SignIn => redirect("/dashboard/sign-in", HeaderMap::new()),
            PageError::Page { status, message } => {
                let title = status.canonical_reason().unwrap_or("Error");
                let mut body = Html::new();
                body.raw("<p class=\"problem\">")
                    .text(&message)
                    .raw("</p><p><a href=\"/dashboard\">Back to the overview</a></p>");
                let frame = Frame {
                    title,
                    viewer: None,
                    csrf: None,
                };
                page_response(status, html::page(&frame, &body.into_string()))
            }
        }
    }
}

/// An HTML reply: never cached, never framed, no script or outside resource allowed.
pub fn page_response(status: StatusCode, markup: String) -> Response {
    let mut response = (status, markup).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(headers);
    response
}

/// The headers every dashboard reply carries.
fn secure_headers(headers: &mut HeaderMap) {
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
}

/// `303 See Other` to `location`, with `headers` (cookies) besides.
pub fn redirect(location: &str, mut headers: HeaderMap) -> Response {
    secure_headers(&mut headers);
    match HeaderValue::from_str(location) {
        Ok(value) => {
            headers.insert(LOCATION, value);
            (StatusCode::SEE_OTHER, headers).into_response()
        }
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, headers).into_response(),
    }
}

/// The signed-in person of a request, from the session cookie.
#[derive(Debug, Clone)]
pub struct Viewer(pub Session);

impl Viewer {
    /// What the header shows: role and scope.
    pub fn label(&self) -> String {
        let caller = &self.0.caller;
        match &caller.scope {
            Some(scope) => format!(
                "{} of {}/{}",
                caller.role,
                scope.service(),
                scope.environment()
            ),
            None => format!("{} of every service", caller.role),
        }
    }

    /// Whether the person may record fixes (operator or admin).
    pub fn may_fix(&self) -> bool {
        matches!(self.0.caller.role, Role::Operator | Role::Admin)
    }

    /// Refuses a form whose CSRF secret is not this session's.
    pub fn check_csrf(&self, sent: Option<&str>) -> Result<(), PageError> {
        match sent {
            Some(sent) if sessions::same_secret(sent, &self.0.csrf) => Ok(()),
            _ => Err(PageError::forbidden(
                "this form is not one the dashboard gave this session (its CSRF token is missing or wrong); nothing was recorded: reload the page and send it again",
            )),
        }
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let Some(id) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(PageError::SignIn);
        };
        match sessions::find(&state.db, id).await? {
            Some(session) => Ok(Viewer(session)),
            None => Err(PageError::SignIn),
        }
    }
}

/// A `Set-Cookie` value for the dashboard's path, `Secure` when the request came over HTTPS
/// (directly or, behind a proxy, as `X-Forwarded-Proto` says).
fn set_cookie(request: &HeaderMap, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let https = request
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').next().unwrap_or("").trim() == "https");
    let secure = if https { "; Secure" } else { "" };
    let text = format!(
        "{name}={value}; HttpOnly; SameSite=Strict; Path=/dashboard; Max-Age={max_age}{secure}"
    );
    // Values are base64url secrets or empty: always a valid header.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The sign-in form's fields.
#[derive(Debug, Default, Deserialize)]
pub struct SignInForm {
    token: Option<String>,
    csrf: Option<String>,
}

async fn sign_in_page(headers: HeaderMap) -> Result<Response, PageError> {
    let secret = sessions::random_secret()?;
    let mut body = Html::new();
    body.raw("<form class=\"sign-in\" method=\"post\" action=\"/dashboard/sign-in\">")
        .hidden("csrf", &secret)
        .raw("<p class=\"muted\">Paste a reader, operator or admin token (an admin makes one with <code>flamingock-server token create --role reader --service S --environment E</code>). Runner tokens are for services' runs and cannot sign in.</p>")
        .raw("<label>Token<input type=\"password\" name=\"token\" autocomplete=\"off\" required></label>")
        .raw("<button type=\"submit\">Sign in</button></form>");
    let frame = Frame {
        title: "Sign in",
        viewer: None,
        csrf: None,
    };
    let mut response = page_response(StatusCode::OK, html::page(&frame, &body.into_string()));
    response.headers_mut().append(
        SET_COOKIE,
        set_cookie(&headers, SIGN_IN_COOKIE, &secret, 3600),
    );
    Ok(response)
}

async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<SignInForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form.map_err(form_error)?;
    let expected = cookie(&headers, SIGN_IN_COOKIE);
    let matches = match (expected, form.csrf.as_deref()) {
        (Some(expected), Some(sent)) => sessions::same_secret(expected, sent),
        _ => false,
    };
    if !matches {
        return Err(PageError::forbidden(
            "this sign-in form is not one the dashboard gave this browser (its CSRF token is missing or wrong): open the sign-in page again",
        ));
    }
    let token = form.token.as_deref().map(str::trim).unwrap_or("");
    if token.is_empty() {
        return Err(PageError::bad_request("paste a token to sign in"));
    }
    let caller = match tokens::authenticate(&state.db, token).await {
        Ok(caller) => caller,
        Err(ServerError::Unauthorized(_)) => {
            return Err(PageError::Page {
                status: StatusCode::UNAUTHORIZED,
                message: "the token is not known to this server, or it was revoked".to_owned(),
            });
        }
        Err(other) => return Err(other.into()),
    };
    if caller.role == Role::Runner {
        return Err(PageError::forbidden(format!(
            "token {} is a runner token: those are for services' runs, not for people; sign in with a reader, operator or admin token",
            caller.token_id
        )));
    }
    let (id, session) = sessions::open(&state.db, &caller).await?;
    tracing::info!(token = %caller.token_id, role = %caller.role, "dashboard sign-in");
    let mut cookies = HeaderMap::new();
    cookies.append(
        SET_COOKIE,
        set_cookie(
            &headers,
            SESSION_COOKIE,
            &id,
            (session.expires_at - chrono::Utc::now()).num_seconds(),
        ),
    );
    cookies.append(SET_COOKIE, set_cookie(&headers, SIGN_IN_COOKIE, "", 0));
    Ok(redirect("/dashboard", cookies))
}

/// The fields of a form that carries only its CSRF secret.
#[derive(Debug, Default, Deserialize)]
pub struct CsrfForm {
    csrf: Option<String>,
}

async fn sign_out(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form.map_err(form_error)?;
    viewer.check_csrf(form.csrf.as_deref())?;
    sessions::close(&state.db, &viewer.0.id_hash).await?;
    let mut cookies = HeaderMap::new();
    cookies.append(SET_COOKIE, set_cookie(&headers, SESSION_COOKIE, "", 0));
    Ok(redirect("/dashboard/sign-in", cookies))
}
