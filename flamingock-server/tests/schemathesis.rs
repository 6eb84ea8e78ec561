//! The API against its own OpenAPI document: schemathesis (from PyPI) generates requests from
//! `/v1/openapi.json` and sends them to a real server process on SQLite, once with an admin token
//! and once with a runner token of one scope; no reply may be a 5xx, and every reply must match
//! the schema its status documents. Bounded in examples and time. Without schemathesis installed
//! (`pip install 'schemathesis>=4,<5'`; `.ci/run` installs it) the test says SKIPPED, and fails
//! under `FLAMINGOCK_REQUIRE_SERVERS=1`.

mod common;

use std::process::{Command, Stdio};

use common::{Server, fresh, http, token};
use flamingock_testkit::Backend;

/// Examples per operation and phase.
const MAX_EXAMPLES: &str = "25";
/// The time budget of one schemathesis run, in seconds.
const MAX_TIME_SECS: &str = "25";
/// A fixed seed, so that a failure in CI is the same failure on a developer's machine
/// (`FLAMINGOCK_SCHEMATHESIS_SEED` picks another).
const SEED: &str = "20261202";

/// The schemathesis command (`st`, or its long name), if installed.
fn schemathesis() -> Option<&'static str> {
    ["st", "schemathesis"].into_iter().find(|program| {
        Command::new(program)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    })
}

/// Runs schemathesis against the server at `base` with `token`; panics with its report on any failure.
fn run_schemathesis(
    program: &str,
    base: &str,
    token: &str,
    who: &str,
    filter: &[&str],
    operations: usize,
) {
    let work = tempfile::tempdir().expect("a work directory");
    let seed = std::env::var("FLAMINGOCK_SCHEMATHESIS_SEED").unwrap_or_else(|_| SEED.to_owned());
    let output = Command::new(program)
        .current_dir(work.path())
        .args([
            "run",
            &format!("{base}/v1/openapi.json"),
            "--header",
            &format!("Authorization: Bearer {token}"),
            "--checks",
            "not_a_server_error,response_schema_conformance,content_type_conformance",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            MAX_EXAMPLES,
            "--max-time",
            MAX_TIME_SECS,
            // One worker: hypothesis's source inspection is not thread-safe (it fails with
            // "AST constructor recursion depth mismatch" under several).
            "--workers",
            "1",
            "--seed",
            &seed,
            "--generation-database",
            "none",
            "--no-color",
        ])
        .args(filter)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("schemathesis runs");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis with the {who} token found failures (seed {seed}):\n{report}"
    );
    // It ran, and it tested every operation the document lists.
    assert!(
        report.contains(&format!("Tested: {operations}")),
        "schemathesis with the {who} token did not test every operation:\n{report}"
    );
    // No token in its report (it filters the header; the server's own log is checked elsewhere).
    assert!(
        !report.contains(token),
        "schemathesis's report shows the token"
    );
}

/// Panics unless `token` still lists the tokens (the runs before it did not revoke it).
async fn assert_token_works(base: &str, token: &str) {
    let status = http()
        .get(format!("{base}/v1/tokens"))
        .bearer_auth(token)
        .send()
        .await
        .expect("the server answers")
        .status();
    assert_eq!(
        status,
        reqwest::StatusCode::OK,
        "the admin token stopped working"
    );
}

/// [`run_schemathesis`] off the async runtime.
async fn run(
    program: &'static str,
    base: &str,
    token: &str,
    who: &'static str,
    filter: &'static [&'static str],
    operations: usize,
) {
    let (base, token) = (base.to_owned(), token.to_owned());
    tokio::task::spawn_blocking(move || {
        run_schemathesis(program, &base, &token, who, filter, operations)
    })
    .await
    .expect("the schemathesis run finishes");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_keeps_to_its_own_openapi_document_under_generated_requests() {
    let Some(program) = schemathesis() else {
        flamingock_testkit::skip(
            "schemathesis is not installed (pip install 'schemathesis>=4,<5'); the API was not checked against its OpenAPI document",
        );
        return;
    };
    let Some(db) = fresh(Backend::Sqlite, "server_schemathesis").await else {
        return;
    };
    let log = tempfile::NamedTempFile::new().expect("a log file");
    let server = Server::start_logged(&db.url, log.path());
    let admin = token(&db.url, "admin", None);
    let runner = token(&db.url, "runner", Some(("orders", "prod")));
    // One scope with its tables, so that reads find something to read.
    let response = http()
        .post(format!(
            "{}/v1/services/orders/environments/prod/initialize",
            server.base
        ))
        .bearer_auth(&admin)
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), reqwest::StatusCode::NO_CONTENT);

    // Revoking comes last: schemathesis finds the admin token's own id in the token list and
    // revokes it, after which every call it makes is a 401 that tests nothing.
    const NOT_REVOKE: &[&str] = &["--exclude-path-regex", "/revoke$"];
    const ONLY_REVOKE: &[&str] = &["--include-path-regex", "/revoke$"];
    run(program, &server.base, &runner, "runner", NOT_REVOKE, 15).await;
    run(program, &server.base, &admin, "admin", NOT_REVOKE, 15).await;
    assert_token_works(&server.base, &admin).await;
    run(program, &server.base, &admin, "admin", ONLY_REVOKE, 1).await;

    let log = std::fs::read_to_string(log.path()).expect("the server's log");
    for secret in [&admin, &runner] {
        assert!(
            !log.contains(secret.as_str()),
            "the server's log shows a token"
        );
    }
    drop(server);
}
