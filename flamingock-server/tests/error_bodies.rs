//! Every error reply of the server is an `ErrorReply` (`{code, error}`) with `application/json`,
//! the replies of its layers and of the router too: a request over the time limit (`503`), a
//! body over 1 MiB with or without `Content-Length` (`413`), an unknown path (`404`), a wrong
//! method (`405`).

mod common;

use std::time::Duration;

use common::{Server, fresh, http, token};
use flamingock_client::wire::{ErrorReply, Role};
use flamingock_server::{AppState, ServerDb};
use flamingock_testkit::Backend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The reply is an `ErrorReply` of `status` and `code`, as JSON; returns its message.
async fn assert_error_reply(response: reqwest::Response, status: u16, code: &str) -> String {
    assert_eq!(response.status().as_u16(), status, "{response:?}");
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.expect("a body");
    assert!(
        content_type.starts_with("application/json"),
        "{content_type:?}: {text}"
    );
    let reply: ErrorReply =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not an ErrorReply ({e}): {text}"));
    assert_eq!(reply.code, code, "{text}");
    assert!(!reply.error.is_empty(), "{text}");
    reply.error
}

const ENTRIES: &str = "/v1/services/orders/environments/prod/entries";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_path_and_a_wrong_method_answer_error_replies() {
    let Some(db) = fresh(Backend::Sqlite, "errors_route").await else {
        return;
    };
    let server = Server::start(&db.url);
    let runner = token(&db.url, "runner", Some(("orders", "prod")));
    let client = http();
    let unknown = client
        .get(format!("{}/v1/no-such-thing", server.base))
        .bearer_auth(&runner)
        .send()
        .await
        .expect("a reply");
    assert_error_reply(unknown, 404, "not_found").await;
    let outside = client
        .get(format!("{}/favicon.ico", server.base))
        .send()
        .await
        .expect("a reply");
    assert_error_reply(outside, 404, "not_found").await;
    // `entries` takes GET and POST.
    let wrong = client
        .put(format!("{}{ENTRIES}", server.base))
        .bearer_auth(&runner)
        .send()
        .await
        .expect("a reply");
    let allow = wrong
        .headers()
        .get(reqwest::header::ALLOW)
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let message = assert_error_reply(wrong, 405, "method_not_allowed").await;
    assert!(message.contains("method"), "{message}");
    let allow = allow.expect("the 405 says which methods are allowed");
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    let wrong = client
        .delete(format!("{}/v1/now", server.base))
        .bearer_auth(&runner)
        .send()
        .await
        .expect("a reply");
    assert_error_reply(wrong, 405, "method_not_allowed").await;
    drop(server);
    db.drop_database().await;
}

/// A body of `size` bytes of JSON-looking text (a string that never ends before the limit).
fn big_body(size: usize) -> Vec<u8> {
    let mut body = b"{\"request_id\":\"".to_vec();
    body.resize(size, b'x');
    body
}

/// What a raw HTTP/1.1 exchange answered: status, headers (lower-case names) and body.
struct RawReply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl RawReply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `head` then `body` in chunks of chunked transfer coding (no `Content-Length`), and reads
/// the reply. The server may answer and close before the whole body is sent.
async fn chunked_post(address: &str, head: &str, body: &[u8]) -> RawReply {
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let (mut read, mut write) = stream.split();
    let send = async {
        write.write_all(head.as_bytes()).await?;
        for chunk in body.chunks(64 * 1024) {
            write
                .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await?;
            write.write_all(chunk).await?;
            write.write_all(b"\r\n").await?;
        }
        write.write_all(b"0\r\n\r\n").await?;
        Ok::<(), std::io::Error>(())
    };
    let mut received = Vec::new();
    let receive = async {
        let _ =
            tokio::time::timeout(Duration::from_secs(20), read.read_to_end(&mut received)).await;
    };
    let (_, ()) = tokio::join!(send, receive);
    let text = String::from_utf8_lossy(&received).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no reply: {text:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    RawReply {
        status,
        headers,
        body: body.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_answers_413_as_an_error_reply_with_or_without_a_length() {
    let Some(db) = fresh(Backend::Sqlite, "errors_size").await else {
        return;
    };
    let server = Server::start(&db.url);
    let runner = token(&db.url, "runner", Some(("orders", "prod")));
    let body = big_body(flamingock_server::api::MAX_BODY_BYTES + 100 * 1024);
    // With a Content-Length: refused before it is read.
    let sized = http()
        .post(format!("{}{ENTRIES}", server.base))
        .bearer_auth(&runner)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.clone())
        .send()
        .await
        .expect("a reply");
    assert_error_reply(sized, 413, "too_large").await;
    // Chunked, no Content-Length: refused once the limit is read (an append, the lock, the
    // tables).
    for path in [
        ENTRIES.to_owned(),
        "/v1/services/orders/environments/prod/locks/flamingock/acquire".to_owned(),
        "/v1/services/orders/environments/prod/initialize".to_owned(),
    ] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {runner}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            server.listen
        );
        let reply = chunked_post(&server.listen, &head, &body).await;
        assert_eq!(reply.status, 413, "{path}: {}", reply.body);
        assert!(
            reply
                .header("content-type")
                .is_some_and(|t| t.starts_with("application/json")),
            "{path}: {:?}",
            reply.headers
        );
        let error: ErrorReply = serde_json::from_str(&reply.body)
            .unwrap_or_else(|e| panic!("{path}: not an ErrorReply ({e}): {}", reply.body));
        assert_eq!(error.code, "too_large", "{path}: {}", reply.body);
    }
    // Nothing was written: the scope was never initialized.
    let unit_states = http()
        .get(format!(
            "{}/v1/services/orders/environments/prod/unit-states",
            server.base
        ))
        .bearer_auth(&runner)
        .send()
        .await
        .expect("a reply");
    assert_error_reply(unit_states, 404, "no_audit_table").await;
    drop(server);
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_time_limit_answers_503_as_an_error_reply() {
    let Some(fresh_db) = fresh(Backend::Sqlite, "errors_timeout").await else {
        return;
    };
    let db = ServerDb::open(&fresh_db.url).await.expect("the database");
    let token = flamingock_server::tokens::create(&db, Role::Runner, Some("orders"), Some("prod"))
        .await
        .expect("a token")
        .token;
    let ServerDb::Sqlite(pool) = &db else {
        unreachable!("a SQLite URL")
    };
    // The server's one SQLite connection, held here: every request waits for it.
    let held = pool.acquire().await.expect("the connection");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let address = listener.local_addr().expect("an address");
    let router = flamingock_server::api::router_with_timeout(
        AppState { db: db.clone() },
        Duration::from_millis(300),
    );
    let serving = tokio::spawn(async move { axum::serve(listener, router).await });
    let slow = http()
        .get(format!("http://{address}/v1/now"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("a reply");
    let message = assert_error_reply(slow, 503, "timeout").await;
    assert!(message.contains("cut short"), "{message}");
    drop(held);
    // The connection free again, the same request is served.
    let now = http()
        .get(format!("http://{address}/v1/now"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("a reply");
    assert_eq!(now.status().as_u16(), 200);
    serving.abort();
    fresh_db.drop_database().await;
}
