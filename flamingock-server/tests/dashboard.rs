//! The dashboard over HTTP against a real server process: sign-in and sessions, CSRF, roles and
//! scopes, the pages' content, filters and paging, exports, and fixes recorded as the CLI
//! records them; every refused request writes nothing.

mod common;

use common::{Server, Visitor, fresh, http, seed_blocked, token};
use flamingock_testkit::Backend;
use reqwest::StatusCode;
use serde_json::Value;

/// Every row of a scope, oldest first, read through the API.
async fn rows(server: &Server, admin: &str, service: &str, environment: &str) -> Vec<Value> {
    let reply: Value = http()
        .get(format!(
            "{}/v1/services/{service}/environments/{environment}/entries",
            server.base
        ))
        .bearer_auth(admin)
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("json");
    reply["entries"].as_array().cloned().unwrap_or_default()
}

/// A server on a fresh database of `backend`, its admin token, and `orders/prod` seeded with a
/// blocked unit.
async fn seeded(
    backend: Backend,
    hint: &str,
) -> Option<(Server, String, flamingock_testkit::FreshDb)> {
    let db = fresh(backend, hint).await?;
    let server = Server::start(&db.url);
    let admin = token(&db.url, "admin", None);
    let runner = token(&db.url, "runner", Some(("orders", "prod")));
    seed_blocked(&server, &runner, "orders", "prod").await;
    Some((server, admin, db))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_gives_a_strict_http_only_session_cookie_and_signing_out_ends_the_session() {
    let Some((server, admin, db)) = seeded(Backend::Sqlite, "dash_session").await else {
        return;
    };
    let mut visitor = Visitor::new(&server.base);
    let first = visitor.get("/dashboard").await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    assert_eq!(first.location(), "/dashboard/sign-in");

    let signed = visitor.sign_in(&admin).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    assert_eq!(signed.location(), "/dashboard");
    let cookie = signed
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("flamingock_session="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/dashboard"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    assert!(!cookie.contains(&admin), "the cookie is not the token");

    let overview = visitor.get("/dashboard").await;
    assert_eq!(overview.status, StatusCode::OK, "{}", overview.body);
    assert!(overview.body.contains("orders"), "{}", overview.body);
    assert_eq!(
        overview.headers["cache-control"], "no-store",
        "pages are never cached"
    );
    assert!(
        overview.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );

    // The same session works on a second server on the same database (no state in memory).
    let other = Server::start(&db.url);
    let mut elsewhere = Visitor::new(&other.base);
    elsewhere.cookies = visitor.cookies.clone();
    assert_eq!(elsewhere.get("/dashboard").await.status, StatusCode::OK);

    let csrf = visitor.csrf().await;
    let out = visitor
        .post("/dashboard/sign-out", &[("csrf", &csrf)])
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let after = elsewhere.get("/dashboard").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER, "the session ended");
    assert_eq!(after.location(), "/dashboard/sign-in");

    // Behind a TLS proxy, the cookie is Secure.
    let mut proxied = Visitor::new(&server.base);
    let page = proxied.get("/dashboard/sign-in").await;
    let csrf = page.hidden("csrf").expect("a CSRF field");
    let reply = proxied
        .send_with(
            proxied
                .client
                .post(format!("{}/dashboard/sign-in", server.base))
                .header("x-forwarded-proto", "https")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(common::form_body(&[("token", &admin), ("csrf", &csrf)])),
        )
        .await;
    assert!(
        reply
            .set_cookies()
            .iter()
            .any(|c| c.starts_with("flamingock_session=") && c.contains("; Secure")),
        "{:?}",
        reply.set_cookies()
    );
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_unknown_and_revoked_tokens_get_no_session_and_a_forged_sign_in_is_refused() {
    let Some((server, admin, db)) = seeded(Backend::Sqlite, "dash_refusals").await else {
        return;
    };
    let runner = token(&db.url, "runner", Some(("orders", "prod")));
    let mut visitor = Visitor::new(&server.base);
    let refused = visitor.sign_in(&runner).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(refused.body.contains("runner token"), "{}", refused.body);
    assert!(
        !visitor
            .cookies
            .iter()
            .any(|(n, _)| n == "flamingock_session")
    );

    let unknown = visitor.sign_in("fks_not-a-token").await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED, "{}", unknown.body);
    let empty = visitor.sign_in("").await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST, "{}", empty.body);

    // A sign-in form posted from elsewhere: no sign-in cookie, or one that does not match.
    let mut forger = Visitor::new(&server.base);
    let forged = forger
        .post(
            "/dashboard/sign-in",
            &[("token", &admin), ("csrf", "guess")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    assert!(
        !forger
            .cookies
            .iter()
            .any(|(n, _)| n == "flamingock_session")
    );

    // A session whose token is revoked stops working at once.
    let (_, created) = {
        let reply: Value = http()
            .post(format!("{}/v1/tokens", server.base))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"role": "operator", "service": "orders", "environment": "prod"}))
            .send()
            .await
            .expect("the server answers")
            .json()
            .await
            .expect("json");
        ((), reply)
    };
    let operator = created["token"].as_str().expect("a token");
    let id = created["info"]["id"].as_str().expect("an id");
    let mut person = Visitor::new(&server.base);
    assert_eq!(person.sign_in(operator).await.status, StatusCode::SEE_OTHER);
    assert_eq!(person.get("/dashboard").await.status, StatusCode::OK);
    let csrf = person.csrf().await;
    let revoked = http()
        .post(format!("{}/v1/tokens/{id}/revoke", server.base))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(revoked.status(), StatusCode::OK);
    let page = person.get("/dashboard/orders/prod").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), "/dashboard/sign-in");
    let before = rows(&server, &admin, "orders", "prod").await;
    let fix = person
        .post(
            "/dashboard/orders/prod/units/backfill-emails/fix",
            &[
                ("csrf", &csrf),
                ("resolution", "applied"),
                ("name", "Ana"),
                ("reason", "checked"),
                ("seen", "FAILED"),
            ],
        )
        .await;
    assert_eq!(fix.status, StatusCode::SEE_OTHER, "{}", fix.body);
    assert_eq!(fix.location(), "/dashboard/sign-in");
    assert_eq!(rows(&server, &admin, "orders", "prod").await, before);
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_counts_applied_pending_and_blocked_units_and_a_scoped_reader_sees_only_its_scope()
 {
    let Some((server, admin, db)) = seeded(Backend::Sqlite, "dash_overview").await else {
        return;
    };
    let billing = token(&db.url, "runner", Some(("billing", "staging")));
    seed_blocked(&server, &billing, "billing", "staging").await;
    let mut visitor = Visitor::new(&server.base);
    visitor.sign_in(&admin).await;
    let overview = visitor.get("/dashboard").await;
    assert_eq!(overview.status, StatusCode::OK);
    let body = &overview.body;
    assert!(
        body.contains("billing") && body.contains("orders"),
        "{body}"
    );
    // orders/prod: 1 applied, 1 pending (add-index; the blocked one is not counted as pending),
    // 1 blocked, 1 failed; the row is highlighted.
    let row = body
        .split("<tr")
        .find(|r| r.contains("/dashboard/orders/prod"))
        .expect("the orders row");
    let cells: Vec<&str> = row
        .split("<td")
        .skip(1)
        .map(|c| {
            c.split('>')
                .nth(1)
                .unwrap_or("")
                .split('<')
                .next()
                .unwrap_or("")
        })
        .collect();
    assert!(row.starts_with(" class=\"alert\""), "{row}");
    assert_eq!(cells[2..6], ["1", "1", "1", "1"], "{row}");

    let reader = token(&db.url, "reader", Some(("orders", "prod")));
    let mut scoped = Visitor::new(&server.base);
    scoped.sign_in(&reader).await;
    let own = scoped.get("/dashboard").await;
    assert!(own.body.contains("/dashboard/orders/prod"), "{}", own.body);
    assert!(!own.body.contains("billing"), "{}", own.body);
    let other = scoped.get("/dashboard/billing/staging").await;
    assert_eq!(other.status, StatusCode::FORBIDDEN, "{}", other.body);
    let export = scoped
        .get("/dashboard/billing/staging/export?format=json")
        .await;
    assert_eq!(export.status, StatusCode::FORBIDDEN);

    // The scope page: every unit with its state; the blocked one marked and linked.
    let page = scoped.get("/dashboard/orders/prod").await;
    assert_eq!(page.status, StatusCode::OK);
    for expected in [
        "create-clients",
        "backfill-emails",
        "add-index",
        "BLOCKED",
        "PENDING",
        "NOT RUN",
        "1.0.0",
        "/dashboard/orders/prod/units/backfill-emails",
    ] {
        assert!(page.body.contains(expected), "{expected}: {}", page.body);
    }
    // The unit page: its error, escaped, and no fix form for a reader.
    let unit = scoped
        .get("/dashboard/orders/prod/units/backfill-emails")
        .await;
    assert_eq!(unit.status, StatusCode::OK);
    assert!(
        unit.body
            .contains("the mail service answered 503, with &quot;quotes&quot;, commas"),
        "{}",
        unit.body
    );
    assert!(
        !unit.body.contains("Record the fix"),
        "a reader gets no fix form"
    );
    // A run's timeline: the rows of the seeding run, in time order.
    let execution = rows(&server, &admin, "orders", "prod").await[0]["execution_id"]
        .as_str()
        .expect("an execution id")
        .to_owned();
    let run = scoped
        .get(&format!("/dashboard/orders/prod/runs/{execution}"))
        .await;
    assert_eq!(run.status, StatusCode::OK);
    let started = run.body.find("STARTED").expect("a STARTED row");
    let failed = run.body.find(">FAILED<").expect("a FAILED row");
    assert!(started < failed, "time order");
    db.drop_database().await;
}

/// A form's fields, owned.
type Fields = Vec<(String, String)>;

/// Borrowed form fields.
fn refs(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// The fix flow on `backend`: refusals first (each writes nothing), then the fix.
async fn fix_flow(backend: Backend, hint: &str) {
    let Some((server, admin, db)) = seeded(backend, hint).await else {
        return;
    };
    let unit = "/dashboard/orders/prod/units/backfill-emails";
    let fix = format!("{unit}/fix");
    let reader = token(&db.url, "reader", Some(("orders", "prod")));
    let operator = token(&db.url, "operator", Some(("orders", "prod")));
    let before = rows(&server, &admin, "orders", "prod").await;

    let mut reading = Visitor::new(&server.base);
    reading.sign_in(&reader).await;
    let csrf = reading.csrf().await;
    let good = |csrf: &str| {
        vec![
            ("csrf".to_owned(), csrf.to_owned()),
            ("resolution".to_owned(), "applied".to_owned()),
            ("name".to_owned(), "Ana Pérez".to_owned()),
            (
                "reason".to_owned(),
                "checked the mail table: all backfilled".to_owned(),
            ),
            ("seen".to_owned(), "FAILED".to_owned()),
        ]
    };
    let fields = |pairs: &[(String, String)]| -> Vec<(String, String)> { pairs.to_vec() };
    let as_refs = refs;
    let refused = reading.post(&fix, &as_refs(&good(&csrf))).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(
        refused.body.contains("operator or admin"),
        "{}",
        refused.body
    );

    let mut person = Visitor::new(&server.base);
    person.sign_in(&operator).await;
    let page = person.get(unit).await;
    assert!(page.body.contains("Record the fix"), "{}", page.body);
    let csrf = page.hidden("csrf").expect("the CSRF field");
    assert_eq!(page.hidden("seen").as_deref(), Some("FAILED"));
    let with = |key: &str, value: &str| {
        let mut pairs = fields(&good(&csrf));
        pairs.retain(|(k, _)| k != key);
        pairs.push((key.to_owned(), value.to_owned()));
        pairs
    };
    let without = |key: &str| {
        let mut pairs = fields(&good(&csrf));
        pairs.retain(|(k, _)| k != key);
        pairs
    };
    let cases: Vec<(&str, Fields, StatusCode)> = vec![
        ("no CSRF token", without("csrf"), StatusCode::FORBIDDEN),
        (
            "another session's CSRF token",
            with("csrf", "forged"),
            StatusCode::FORBIDDEN,
        ),
        ("no reason", with("reason", "  "), StatusCode::BAD_REQUEST),
        ("no name", without("name"), StatusCode::BAD_REQUEST),
        (
            "no resolution",
            without("resolution"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "a resolution that is none",
            with("resolution", "deleted"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "a state the page never shows",
            with("seen", "DONE"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "a state that is no longer the unit's",
            with("seen", "STARTED"),
            StatusCode::CONFLICT,
        ),
    ];
    for (what, pairs, status) in cases {
        let reply = person.post(&fix, &as_refs(&pairs)).await;
        assert_eq!(reply.status, status, "{what}: {}", reply.body);
        assert!(
            reply.body.contains("class=\"problem\""),
            "{what}: an error page"
        );
        assert_eq!(
            rows(&server, &admin, "orders", "prod").await,
            before,
            "{what} wrote something"
        );
    }
    let unknown = person
        .post(
            "/dashboard/orders/prod/units/no-such-unit/fix",
            &as_refs(&good(&csrf)),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);

    let done = person.post(&fix, &as_refs(&good(&csrf))).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert!(done.location().starts_with(unit), "{}", done.location());
    let after = rows(&server, &admin, "orders", "prod").await;
    assert_eq!(after.len(), before.len() + 1);
    let row = after.last().expect("the fix's row");
    assert_eq!(row["state"], "MANUAL_MARKED_AS_APPLIED");
    assert_eq!(row["change_id"], "backfill-emails");
    assert_eq!(row["author"], "Ana Pérez");
    assert_eq!(row["metadata"]["resolved_by"], "Ana Pérez");
    assert_eq!(
        row["metadata"]["reason"],
        "checked the mail table: all backfilled"
    );
    assert_eq!(row["metadata"]["unit_author"], "bob");
    assert_eq!(row["metadata"]["manual"], true);
    let page = person.get(done.location()).await;
    assert!(
        page.body.contains("Recorded MANUAL_MARKED_AS_APPLIED"),
        "{}",
        page.body
    );
    assert!(page.body.contains("fixed by Ana Pérez"), "{}", page.body);
    // The same form sent again: the state it was decided on is gone, so nothing is recorded.
    let again = person.post(&fix, &as_refs(&good(&csrf))).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert_eq!(rows(&server, &admin, "orders", "prod").await, after);
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_fix_is_recorded_with_name_and_reason_and_refused_forms_write_nothing_on_sqlite()
 {
    fix_flow(Backend::Sqlite, "dash_fix").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_fix_is_recorded_with_name_and_reason_and_refused_forms_write_nothing_on_postgres()
 {
    fix_flow(Backend::Postgres, "dash_fix").await;
}

/// Appends `count` rows of unit `change_id` by `author` through the API.
async fn append_rows(server: &Server, runner: &str, change_id: &str, author: &str, count: usize) {
    for n in 0..count {
        let entry = serde_json::json!({
            "request_id": uuid::Uuid::new_v4().to_string(),
            "entry": {
                "id": 0, "execution_id": format!("0190e0d2-0000-7000-8000-{n:012}"),
                "change_id": change_id, "author": author, "change_order": "9", "stage": "default",
                "state": "STARTED", "created_at": null, "execution_ms": null, "hostname": "h",
                "runner_id": "r", "target_system": "default", "tx_strategy": "NON_TX",
                "recovery_strategy": "always_retry", "app_name": null, "app_version": null,
                "source": "tests", "checksum": null,
                "error": if n == 0 { Some("=HYPERLINK(\"x\"), then\na second line") } else { None },
                "metadata": null, "system_version": null
            },
            "fence": null
        });
        let reply = http()
            .post(format!(
                "{}/v1/services/orders/environments/prod/entries",
                server.base
            ))
            .bearer_auth(runner)
            .json(&entry)
            .send()
            .await
            .expect("the server answers");
        assert_eq!(reply.status(), StatusCode::OK);
    }
}

/// The row ids a history page shows, in page order.
fn page_ids(body: &str) -> Vec<i64> {
    body.split("<tr><td class=\"num\">")
        .skip(1)
        .filter_map(|r| r.split('<').next()?.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_filters_pages_and_exports_as_the_cli_does_and_bad_input_is_a_clear_4xx() {
    let Some((server, admin, db)) = seeded(Backend::Sqlite, "dash_history").await else {
        return;
    };
    let runner = token(&db.url, "runner", Some(("orders", "prod")));
    append_rows(&server, &runner, "bulk", "carol", 70).await;
    let all = rows(&server, &admin, "orders", "prod").await;
    let total = all.len();
    assert!(total > 70);
    let mut visitor = Visitor::new(&server.base);
    visitor.sign_in(&admin).await;

    // Newest first, 50 a page; older, then newer again.
    let first = visitor.get("/dashboard/orders/prod").await;
    let ids = page_ids(&first.body);
    let newest = all.last().unwrap()["id"].as_i64().unwrap();
    assert_eq!(ids.len(), 50);
    assert_eq!(ids[0], newest);
    assert!(ids.windows(2).all(|w| w[0] > w[1]));
    let older = format!("after={}", ids[49]);
    assert!(first.body.contains(&older), "an older link");
    assert!(!first.body.contains("Newer"), "no newer page of the newest");
    let second = visitor
        .get(&format!("/dashboard/orders/prod?{older}"))
        .await;
    let second_ids = page_ids(&second.body);
    assert_eq!(second_ids.len(), total - 50);
    assert_eq!(second_ids[0], ids[49] - 1);
    assert!(!second.body.contains("Older"), "the oldest page");
    let back = visitor
        .get(&format!("/dashboard/orders/prod?before={}", second_ids[0]))
        .await;
    assert_eq!(page_ids(&back.body), ids);

    // Filters: author, state, a date range; the pager keeps them.
    let bob = visitor.get("/dashboard/orders/prod?author=bob").await;
    let bob_ids = page_ids(&bob.body);
    let expected: Vec<i64> = all
        .iter()
        .rev()
        .filter(|r| r["author"] == "bob")
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(bob_ids, expected);
    let failed = visitor.get("/dashboard/orders/prod?state=FAILED").await;
    assert_eq!(page_ids(&failed.body).len(), 1);
    let carol = visitor.get("/dashboard/orders/prod?author=carol").await;
    assert!(
        carol.body.contains("author=carol&amp;after="),
        "{}",
        carol.body
    );
    let future = visitor.get("/dashboard/orders/prod?from=2999-01-01").await;
    assert!(page_ids(&future.body).is_empty());
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let day = visitor
        .get(&format!(
            "/dashboard/orders/prod?from={today}&to={today}&author=carol"
        ))
        .await;
    assert_eq!(page_ids(&day.body).len(), 50);

    // Exports: CSV quoted as RFC 4180, formulas kept text; JSON the rows themselves.
    let csv = visitor
        .get("/dashboard/orders/prod/export?format=csv&author=carol")
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        csv.headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("orders-prod-history.csv")
    );
    let mut lines = csv.body.split("\r\n");
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("id,created_at,execution_id,change_id")
    );
    assert!(
        csv.body
            .contains(",\"'=HYPERLINK(\"\"x\"\"), then\na second line\","),
        "{}",
        csv.body
    );
    assert_eq!(csv.body.matches(",carol,").count(), 70);
    let json = visitor
        .get("/dashboard/orders/prod/export?format=json&author=bob")
        .await;
    let exported: Vec<Value> = serde_json::from_str(&json.body).expect("a JSON array");
    let bobs: Vec<&Value> = all.iter().filter(|r| r["author"] == "bob").collect();
    assert_eq!(exported.len(), bobs.len());
    assert_eq!(&exported[0], bobs[0]);

    // Bad input: a clear page with a 4xx, never a 500.
    for (path, status) in [
        (
            "/dashboard/orders/prod?from=yesterday",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/dashboard/orders/prod?from=2026-12-03&to=2026-12-01",
            StatusCode::BAD_REQUEST,
        ),
        ("/dashboard/orders/prod?after=abc", StatusCode::BAD_REQUEST),
        ("/dashboard/orders/prod?after=-5", StatusCode::BAD_REQUEST),
        (
            "/dashboard/orders/prod?after=1&before=2",
            StatusCode::BAD_REQUEST,
        ),
        ("/dashboard/orders/prod?state=DONE", StatusCode::BAD_REQUEST),
        (
            "/dashboard/orders/prod/export?format=xml",
            StatusCode::BAD_REQUEST,
        ),
        ("/dashboard/orders/prod/export", StatusCode::BAD_REQUEST),
        ("/dashboard/Orders/prod", StatusCode::BAD_REQUEST),
        ("/dashboard/nobody/prod", StatusCode::NOT_FOUND),
        (
            "/dashboard/nobody/prod/export?format=csv",
            StatusCode::NOT_FOUND,
        ),
        (
            "/dashboard/orders/prod/units/nothing",
            StatusCode::NOT_FOUND,
        ),
        ("/dashboard/orders/prod/runs/nothing", StatusCode::NOT_FOUND),
    ] {
        let reply = visitor.get(path).await;
        assert_eq!(reply.status, status, "{path}: {}", reply.body);
        assert!(
            reply.body.contains("class=\"problem\""),
            "{path}: {}",
            reply.body
        );
    }
    assert_eq!(rows(&server, &admin, "orders", "prod").await.len(), total);
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_form_is_refused_with_413_and_the_api_keeps_its_own_limits() {
    let Some((server, admin, db)) = seeded(Backend::Sqlite, "dash_limits").await else {
        return;
    };
    let mut visitor = Visitor::new(&server.base);
    visitor.sign_in(&admin).await;
    let csrf = visitor.csrf().await;
    let before = rows(&server, &admin, "orders", "prod").await;
    let reason = "x".repeat(200 * 1024);
    let reply = visitor
        .post(
            "/dashboard/orders/prod/units/backfill-emails/fix",
            &[
                ("csrf", &csrf),
                ("resolution", "applied"),
                ("name", "Ana"),
                ("reason", &reason),
                ("seen", "FAILED"),
            ],
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.body
    );
    assert_eq!(rows(&server, &admin, "orders", "prod").await, before);
    db.drop_database().await;
}
