//! `WebhookListener` against a local HTTP receiver: a run's events posted as JSON, in order, each
//! once, the first retried through two failures; a receiver that is not there slows no unit and
//! fails no run; bad URLs and headers refused before anything runs.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use flamingock::WebhookListener;
use flamingock_tests::TestDb;
use serde_json::Value;

mod units {
    use flamingock::prelude::*;

    #[change_unit(id = "hook-a", order = "1", author = "ana", transactional = false)]
    mod a {
        #[execution]
        pub fn execute() {}
    }

    #[change_unit(id = "hook-b", order = "2", author = "ana", transactional = false)]
    mod b {
        #[execution]
        pub fn execute() {}
    }
}

/// What the receiver saw: every request's body and headers, and how many it refused.
#[derive(Default)]
struct Seen {
    bodies: Vec<Value>,
    authorizations: Vec<Option<String>>,
    refused: usize,
}

/// An HTTP receiver on a free port that answers 503 to its first `refuse_first` posts.
async fn receiver(refuse_first: usize) -> (String, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let state = seen.clone();
    let app = axum::Router::new().route(
        "/hooks/flamingock",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, axum::Json(body): axum::Json<Value>| {
                let state = state.clone();
                async move {
                    let mut seen = state.lock().unwrap();
                    if seen.refused < refuse_first {
                        seen.refused += 1;
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                    seen.bodies.push(body);
                    seen.authorizations.push(
                        headers
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned),
                    );
                    StatusCode::NO_CONTENT
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/flamingock", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_posted_in_order_once_the_first_after_two_failures() {
    let (url, seen) = receiver(2).await;
    let db = TestDb::sqlite();
    let hook = WebhookListener::new(&url)
        .unwrap()
        .header("Authorization", "Bearer not-logged")
        .unwrap()
        .retries(3, Duration::from_millis(20));
    let report = flamingock::run!(db.builder("webhook::units").listener(hook))
        .await
        .unwrap();
    assert_eq!(report.applied(), ["hook-a", "hook-b"]);

    // The run waited for its events to be delivered before it returned.
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.refused, 2,
        "the first post was refused twice, then retried"
    );
    let events: Vec<(&str, &str)> = seen
        .bodies
        .iter()
        .map(|body| {
            let unit = body["change_id"]
                .as_str()
                .or(body["unit"]["change_id"].as_str())
                .unwrap_or("");
            (body["event"].as_str().unwrap_or("?"), unit)
        })
        .collect();
    assert_eq!(
        events,
        [
            ("run_started", ""),
            ("unit_started", "hook-a"),
            ("unit_finished", "hook-a"),
            ("unit_started", "hook-b"),
            ("unit_finished", "hook-b"),
            ("run_finished", ""),
        ]
    );
    assert_eq!(seen.bodies[2]["unit"]["outcome"], "applied");
    assert_eq!(
        seen.bodies[0]["execution_id"].as_str(),
        Some(report.execution_id.as_str())
    );
    assert!(
        seen.authorizations
            .iter()
            .all(|a| a.as_deref() == Some("Bearer not-logged")),
        "{:?}",
        seen.authorizations
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_is_not_there_fails_no_run() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hook = WebhookListener::new(&format!("http://127.0.0.1:{port}/hook"))
        .unwrap()
        .retries(2, Duration::from_millis(10));
    let db = TestDb::sqlite();
    let started = Instant::now();
    let report = flamingock::run!(db.builder("webhook::units").listener(hook))
        .await
        .expect("the run does not depend on its listeners");
    assert_eq!(report.applied(), ["hook-a", "hook-b"]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "gave up within its retries: {:?}",
        started.elapsed()
    );
}

#[test]
fn bad_urls_and_headers_are_refused() {
    for url in ["not a url", "ftp://example.com/hook", "file:///tmp/hook"] {
        let error = WebhookListener::new(url).expect_err(url).to_string();
        assert!(error.contains("webhook URL"), "{url}: {error}");
    }
    let hook = WebhookListener::new("https://example.com/hook").unwrap();
    let error = hook
        .header("Authorization", "Bearer\nsecretvalue")
        .expect_err("a newline in a header value")
        .to_string();
    assert!(error.contains("Authorization"), "{error}");
    assert!(
        !error.contains("secretvalue"),
        "the value is not repeated: {error}"
    );
    let debug = format!(
        "{:?}",
        WebhookListener::new("https://user:pw@example.com:8443/hook?token=t").unwrap()
    );
    assert_eq!(debug, "WebhookListener(https://example.com:8443)");
}
