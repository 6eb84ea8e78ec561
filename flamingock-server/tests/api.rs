//! The API against a real server process: every role against every endpoint (allowed, or 401/403
//! with nothing written), a retried append recorded once, fenced appends, bad names and bodies.

mod common;

use common::{Server, fresh, http, token};
use flamingock_client::wire::{AppendRequest, WireFence};
use flamingock_core::{AuditEntry, AuditState, RecoveryStrategy, TxStrategy};
use flamingock_testkit::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SCOPE: &str = "v1/services/orders/environments/prod";

fn entry(change_id: &str, state: AuditState) -> AuditEntry {
    AuditEntry {
        id: 0,
        execution_id: "0190e0d2-0000-7000-8000-000000000001".to_owned(),
        change_id: change_id.to_owned(),
        author: "ana".to_owned(),
        change_order: "1".to_owned(),
        stage: "default".to_owned(),
        state,
        created_at: None,
        execution_ms: None,
        hostname: "test".to_owned(),
        runner_id: "runner-1".to_owned(),
        target_system: "default".to_owned(),
        tx_strategy: TxStrategy::NonTransactional,
        recovery_strategy: RecoveryStrategy::ManualIntervention,
        app_name: None,
        app_version: None,
        source: "tests::api".to_owned(),
        checksum: None,
        error: None,
        metadata: None,
        system_version: None,
    }
}

fn append_body(state: AuditState, fence: Option<&str>) -> Value {
    serde_json::to_value(AppendRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        entry: entry("unit-a", state),
        fence: fence.map(|owner| WireFence {
            key: "flamingock".to_owned(),
            owner: owner.to_owned(),
        }),
    })
    .expect("json")
}

fn plan_body() -> Value {
    json!({"plan": {
        "execution_id": "0190e0d2-0000-7000-8000-000000000002",
        "runner_id": "runner-1",
        "hostname": "test",
        "app_name": "orders",
        "app_version": "1.0.0",
        "units": [{
            "change_id": "unit-a", "order": "1", "author": "ana", "stage": "default",
            "target_system": "default", "tx_strategy": "NON_TX",
            "recovery_strategy": "manual_intervention", "run_always": false,
            "checksum": "abc", "system_version": null, "out_of_range": false
        }]
    }})
}

struct Api {
    server: Server,
    client: reqwest::Client,
    admin: String,
}

impl Api {
    async fn call(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}/{path}", self.server.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        let text = response.text().await.expect("a body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// What a refused call must not change: the audit rows, the lock, the tokens, the plan.
    async fn state(&self) -> (Value, Value, usize, Value) {
        let admin = Some(self.admin.as_str());
        let (_, rows) = self
            .call(admin, Method::GET, &format!("{SCOPE}/entries"), None)
            .await;
        let (_, lock) = self
            .call(
                admin,
                Method::GET,
                &format!("{SCOPE}/locks/flamingock"),
                None,
            )
            .await;
        let (_, tokens) = self.call(admin, Method::GET, "v1/tokens", None).await;
        let tokens = tokens["tokens"].as_array().map_or(0, Vec::len);
        let (_, plan) = self
            .call(admin, Method::GET, &format!("{SCOPE}/plan"), None)
            .await;
        (rows["entries"].clone(), lock["lock"].clone(), tokens, plan)
    }
}

async fn api(hint: &str) -> Option<(Api, flamingock_testkit::FreshDb)> {
    let db = fresh(Backend::Sqlite, hint).await?;
    let server = Server::start(&db.url);
    let admin = token(&db.url, "admin", None);
    let api = Api {
        server,
        client: http(),
        admin,
    };
    let (status, body) = api
        .call(
            Some(&api.admin),
            Method::POST,
            &format!("{SCOPE}/initialize"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    Some((api, db))
}

/// One endpoint: how to call it, and which roles may.
struct Endpoint {
    name: &'static str,
    method: Method,
    path: String,
    body: fn() -> Option<Value>,
    allowed: &'static [&'static str],
}

const ALL: &[&str] = &["reader", "runner", "operator", "admin"];
const LOCKERS: &[&str] = &["runner", "operator", "admin"];

fn endpoints(revocable: &str) -> Vec<Endpoint> {
    let lock = format!("{SCOPE}/locks/flamingock");
    vec![
        Endpoint {
            name: "now",
            method: Method::GET,
            path: "v1/now".into(),
            body: || None,
            allowed: ALL,
        },
        Endpoint {
            name: "initialize",
            method: Method::POST,
            path: format!("{SCOPE}/initialize"),
            body: || Some(json!({})),
            allowed: LOCKERS,
        },
        Endpoint {
            name: "check",
            method: Method::POST,
            path: format!("{SCOPE}/initialize"),
            body: || Some(json!({"read_only": true})),
            allowed: ALL,
        },
        Endpoint {
            name: "unit states",
            method: Method::GET,
            path: format!("{SCOPE}/unit-states"),
            body: || None,
            allowed: ALL,
        },
        Endpoint {
            name: "entries",
            method: Method::GET,
            path: format!("{SCOPE}/entries"),
            body: || None,
            allowed: ALL,
        },
        Endpoint {
            name: "history",
            method: Method::POST,
            path: format!("{SCOPE}/history"),
            body: || Some(json!({"newest_first": true, "limit": 5})),
            allowed: ALL,
        },
        Endpoint {
            name: "append a run's row",
            method: Method::POST,
            path: format!("{SCOPE}/entries"),
            body: || Some(append_body(AuditState::Started, None)),
            allowed: &["runner", "admin"],
        },
        Endpoint {
            name: "append a fix",
            method: Method::POST,
            path: format!("{SCOPE}/entries"),
            body: || Some(append_body(AuditState::ManualMarkedAsApplied, None)),
            allowed: &["operator", "admin"],
        },
        Endpoint {
            name: "report a plan",
            method: Method::PUT,
            path: format!("{SCOPE}/plan"),
            body: || Some(plan_body()),
            allowed: &["runner", "admin"],
        },
        Endpoint {
            name: "read the plan",
            method: Method::GET,
            path: format!("{SCOPE}/plan"),
            body: || None,
            allowed: ALL,
        },
        Endpoint {
            name: "read the lock",
            method: Method::GET,
            path: lock.clone(),
            body: || None,
            allowed: ALL,
        },
        Endpoint {
            name: "acquire",
            method: Method::POST,
            path: format!("{lock}/acquire"),
            body: || Some(json!({"owner": "probe", "hostname": "h", "lease_ms": 60000})),
            allowed: LOCKERS,
        },
        Endpoint {
            name: "extend",
            method: Method::POST,
            path: format!("{lock}/extend"),
            body: || Some(json!({"owner": "probe", "lease_ms": 60000})),
            allowed: LOCKERS,
        },
        Endpoint {
            name: "release",
            method: Method::POST,
            path: format!("{lock}/release"),
            body: || Some(json!({"owner": "probe"})),
            allowed: LOCKERS,
        },
        Endpoint {
            name: "force release",
            method: Method::DELETE,
            path: lock,
            body: || None,
            allowed: &["operator", "admin"],
        },
        Endpoint {
            name: "list tokens",
            method: Method::GET,
            path: "v1/tokens".into(),
            body: || None,
            allowed: &["admin"],
        },
        Endpoint {
            name: "create a token",
            method: Method::POST,
            path: "v1/tokens".into(),
            body: || Some(json!({"role": "reader", "service": "orders", "environment": "prod"})),
            allowed: &["admin"],
        },
        Endpoint {
            name: "revoke a token",
            method: Method::POST,
            path: format!("v1/tokens/{revocable}/revoke"),
            body: || None,
            allowed: &["admin"],
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_against_every_endpoint_is_allowed_or_refused_with_nothing_written() {
    let Some((api, db)) = api("server_roles").await else {
        return;
    };
    let scoped = Some(("orders", "prod"));
    let callers: Vec<(&str, String)> = vec![
        ("reader", token(&db.url, "reader", scoped)),
        ("runner", token(&db.url, "runner", scoped)),
        ("operator", token(&db.url, "operator", scoped)),
        ("admin", api.admin.clone()),
    ];
    let other_scope = token(&db.url, "runner", Some(("orders", "staging")));
    let other_admin = token(&db.url, "admin", Some(("billing", "prod")));
    let (_, created) = api
        .call(
            Some(&api.admin),
            Method::POST,
            "v1/tokens",
            Some(json!({"role": "reader", "service": "orders", "environment": "prod"})),
        )
        .await;
    let revocable = created["info"]["id"].as_str().expect("an id").to_owned();
    let revoked = created["token"].as_str().expect("a token").to_owned();
    let (status, _) = api
        .call(
            Some(&api.admin),
            Method::POST,
            &format!("v1/tokens/{revocable}/revoke"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    for endpoint in endpoints(&revocable) {
        for (role, token) in &callers {
            let before = api.state().await;
            let (status, body) = api
                .call(
                    Some(token),
                    endpoint.method.clone(),
                    &endpoint.path,
                    (endpoint.body)(),
                )
                .await;
            if endpoint.allowed.contains(role) {
                assert!(
                    status.is_success(),
                    "{role} on {}: {status} {body}",
                    endpoint.name
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{role} on {}: {body}",
                    endpoint.name
                );
                assert_eq!(body["code"], "forbidden", "{body}");
                assert_eq!(
                    api.state().await,
                    before,
                    "{role} on {} wrote something",
                    endpoint.name
                );
            }
        }
        let refusals: [(&str, Option<&str>, StatusCode); 5] = [
            ("no token", None, StatusCode::UNAUTHORIZED),
            (
                "an unknown token",
                Some("fks_not-a-token"),
                StatusCode::UNAUTHORIZED,
            ),
            ("a revoked token", Some(&revoked), StatusCode::UNAUTHORIZED),
            (
                "another environment's runner",
                Some(&other_scope),
                StatusCode::FORBIDDEN,
            ),
            (
                "another service's admin",
                Some(&other_admin),
                StatusCode::FORBIDDEN,
            ),
        ];
        for (who, token, expected) in refusals {
            let expected = match (who, endpoint.name) {
                // The clock is any valid token's; a scoped admin manages its own scope's tokens.
                ("another environment's runner" | "another service's admin", "now") => {
                    StatusCode::OK
                }
                ("another service's admin", "list tokens") => StatusCode::OK,
                _ => expected,
            };
            let before = api.state().await;
            let (status, body) = api
                .call(
                    token,
                    endpoint.method.clone(),
                    &endpoint.path,
                    (endpoint.body)(),
                )
                .await;
            assert_eq!(status, expected, "{who} on {}: {body}", endpoint.name);
            if !status.is_success() {
                assert_eq!(
                    api.state().await,
                    before,
                    "{who} on {} wrote something",
                    endpoint.name
                );
                assert!(!body["error"].as_str().unwrap_or("").is_empty(), "{body}");
            }
        }
    }
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_append_sent_twice_leaves_one_row() {
    let Some((api, db)) = api("server_idempotent").await else {
        return;
    };
    let runner = token(&db.url, "runner", Some(("orders", "prod")));
    let body = append_body(AuditState::Started, None);
    let path = format!("{SCOPE}/entries");
    let (status, first) = api
        .call(Some(&runner), Method::POST, &path, Some(body.clone()))
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["written"], true);
    let (status, second) = api
        .call(Some(&runner), Method::POST, &path, Some(body.clone()))
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["written"], false);
    let (rows, _, _, _) = api.state().await;
    let rows = rows.as_array().expect("rows").clone();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["metadata"]["request_id"], body["request_id"]);
    // Another name is another row.
    let (status, _) = api
        .call(
            Some(&runner),
            Method::POST,
            &path,
            Some(append_body(AuditState::Applied, None)),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(api.state().await.0.as_array().map(Vec::len), Some(2));
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_append_is_written_only_under_the_callers_lease() {
    let Some((api, db)) = api("server_fence").await else {
        return;
    };
    let runner = token(&db.url, "runner", Some(("orders", "prod")));
    let path = format!("{SCOPE}/entries");
    let (status, body) = api
        .call(
            Some(&runner),
            Method::POST,
            &path,
            Some(append_body(AuditState::Started, Some("runner-1"))),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "lock_lost");
    assert_eq!(api.state().await.0.as_array().map(Vec::len), Some(0));
    let lock = format!("{SCOPE}/locks/flamingock");
    let (status, taken) = api
        .call(
            Some(&runner),
            Method::POST,
            &format!("{lock}/acquire"),
            Some(json!({"owner": "runner-1", "hostname": "h", "lease_ms": 60000})),
        )
        .await;
    assert_eq!(
        (status, taken["acquired"].clone()),
        (StatusCode::OK, Value::Bool(true))
    );
    let (status, held) = api
        .call(
            Some(&runner),
            Method::POST,
            &format!("{lock}/acquire"),
            Some(json!({"owner": "runner-2", "hostname": "h2", "lease_ms": 60000})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(held["acquired"], false);
    assert_eq!(held["holder"]["owner"], "runner-1");
    let (status, body) = api
        .call(
            Some(&runner),
            Method::POST,
            &path,
            Some(append_body(AuditState::Started, Some("runner-1"))),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = api
        .call(
            Some(&runner),
            Method::POST,
            &path,
            Some(append_body(AuditState::Started, Some("runner-2"))),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(api.state().await.0.as_array().map(Vec::len), Some(1));
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_names_bodies_and_sizes_are_refused_with_nothing_written() {
    let Some((api, db)) = api("server_bad_input").await else {
        return;
    };
    let admin = Some(api.admin.as_str());
    let before = api.state().await;
    let (status, body) = api
        .call(
            admin,
            Method::POST,
            "v1/services/Orders/environments/prod/initialize",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("lowercase letters"),
        "{body}"
    );
    let (status, _) = api
        .call(
            admin,
            Method::POST,
            &format!("{SCOPE}/entries"),
            Some(json!({"entry": "not a row"})),
        )
        .await;
    assert!(status.is_client_error(), "{status}");
    let mut huge = append_body(AuditState::Failed, None);
    huge["entry"]["error"] = Value::String("x".repeat(2 * 1024 * 1024));
    let (status, _) = api
        .call(admin, Method::POST, &format!("{SCOPE}/entries"), Some(huge))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, body) = api
        .call(
            admin,
            Method::POST,
            &format!("{SCOPE}/locks/flamingock/acquire"),
            Some(json!({"owner": "o", "hostname": "h", "lease_ms": 0})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = api.call(admin, Method::GET, "v2/anything", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = api
        .call(
            admin,
            Method::POST,
            "v1/tokens",
            Some(json!({"role": "runner"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("--service"),
        "{body}"
    );
    assert_eq!(api.state().await, before);
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_appears_in_the_servers_log() {
    let Some(db) = fresh(Backend::Sqlite, "server_log").await else {
        return;
    };
    let dir = tempfile::tempdir().expect("a directory");
    let log = dir.path().join("server.log");
    let server = Server::start_logged(&db.url, &log);
    let admin = token(&db.url, "admin", None);
    let runner = token(&db.url, "runner", Some(("orders", "prod")));
    let api = Api {
        server,
        client: http(),
        admin: admin.clone(),
    };
    let (_, created) = api
        .call(
            Some(&admin),
            Method::POST,
            "v1/tokens",
            Some(json!({"role": "reader", "service": "orders", "environment": "prod"})),
        )
        .await;
    let created = created["token"].as_str().expect("a token").to_owned();
    // Successes, refusals, a scope with no tables yet and a bad token.
    api.call(
        Some(&runner),
        Method::POST,
        &format!("{SCOPE}/initialize"),
        Some(json!({})),
    )
    .await;
    api.call(Some(&runner), Method::GET, "v1/tokens", None)
        .await;
    api.call(
        Some(&created),
        Method::GET,
        "v1/services/orders/environments/dev/entries",
        None,
    )
    .await;
    api.call(
        Some(&admin),
        Method::GET,
        "v1/services/orders/environments/dev/entries",
        None,
    )
    .await;
    api.call(Some("fks_guessed"), Method::GET, "v1/now", None)
        .await;
    drop(api);
    let text = std::fs::read_to_string(&log).expect("the log");
    assert!(
        text.contains("created a token"),
        "the log is captured: {text}"
    );
    for secret in [&admin, &runner, &created, &"fks_guessed".to_owned()] {
        assert!(
            !text.contains(secret.as_str()),
            "a token in the log: {text}"
        );
    }
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_endpoint_and_is_served_without_a_token() {
    let Some((api, db)) = api("server_openapi").await else {
        return;
    };
    let (status, doc) = api.call(None, Method::GET, "v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    let mut operations: Vec<String> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("an item")
                .keys()
                .map(move |method| format!("{} {path}", method.to_uppercase()))
        })
        .collect();
    operations.sort();
    let scope = "/v1/services/{service}/environments/{environment}";
    let mut expected: Vec<String> = [
        "GET /v1/now".to_owned(),
        format!("POST {scope}/initialize"),
        format!("GET {scope}/unit-states"),
        format!("GET {scope}/entries"),
        format!("POST {scope}/entries"),
        format!("POST {scope}/history"),
        format!("PUT {scope}/plan"),
        format!("GET {scope}/plan"),
        format!("GET {scope}/locks/{{key}}"),
        format!("DELETE {scope}/locks/{{key}}"),
        format!("POST {scope}/locks/{{key}}/acquire"),
        format!("POST {scope}/locks/{{key}}/extend"),
        format!("POST {scope}/locks/{{key}}/release"),
        "GET /v1/tokens".to_owned(),
        "POST /v1/tokens".to_owned(),
        "POST /v1/tokens/{id}/revoke".to_owned(),
    ]
    .into();
    expected.sort();
    assert_eq!(operations, expected);
    // Every one of them answers as the document says it exists (401 without a token, not 404).
    for operation in &expected {
        let (method, path) = operation.split_once(' ').expect("method and path");
        let path = path
            .replace("{service}", "orders")
            .replace("{environment}", "prod")
            .replace("{key}", "flamingock")
            .replace("{id}", "x");
        let method = Method::from_bytes(method.as_bytes()).expect("a method");
        let (status, body) = api
            .call(None, method, path.trim_start_matches('/'), Some(json!({})))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{operation}: {body}");
    }
    assert!(doc["components"]["schemas"]["AppendRequest"]["properties"]["request_id"].is_object());
    // Every body is described: each reply with content names a schema, every error reply is an
    // ErrorReply, every operation takes the bearer token declared in the components.
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer",
        "{doc}"
    );
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("an item") {
            let name = format!("{} {path}", method.to_uppercase());
            if name != "GET /v1/openapi.json" {
                assert!(
                    operation["security"][0].get("bearer").is_some(),
                    "{name} declares no bearer token"
                );
            }
            let responses = operation["responses"].as_object().expect("responses");
            for status in ["400", "401", "403", "404", "500", "503"] {
                let schema = &responses
                    .get(status)
                    .unwrap_or_else(|| panic!("{name} documents no {status}"))["content"]["application/json"]
                    ["schema"]["$ref"];
                assert_eq!(schema, "#/components/schemas/ErrorReply", "{name} {status}");
            }
            for (status, response) in responses {
                if status == "204" {
                    assert!(response.get("content").is_none(), "{name} 204 has a body");
                    continue;
                }
                let schema = &response["content"]["application/json"]["schema"];
                assert!(schema.is_object(), "{name} {status} has no schema");
            }
            if let Some(body) = operation.get("requestBody") {
                let schema = &body["content"]["application/json"]["schema"]["$ref"];
                assert!(schema.is_string(), "{name}: the request body has no schema");
            }
        }
    }
    // The core types the wire carries are described field by field, not as bare objects.
    for (schema, fields) in [
        (
            "AuditEntry",
            &["id", "change_id", "state", "tx_strategy", "metadata"][..],
        ),
        (
            "UnitState",
            &["change_id", "state", "tries", "checksum"][..],
        ),
        ("WireLockInfo", &["key", "owner", "expires_at"][..]),
        ("TokenInfo", &["id", "prefix", "role"][..]),
        ("ErrorReply", &["code", "error"][..]),
        (
            "RunPlan",
            &["execution_id", "runner_id", "hostname", "units"][..],
        ),
        (
            "PlanUnit",
            &["change_id", "order", "checksum", "stage", "system_version"][..],
        ),
        ("PlanReply", &["plan", "reported_at", "hostname"][..]),
    ] {
        for field in fields {
            assert!(
                schemas[schema]["properties"][field].is_object(),
                "{schema}.{field} is not described: {}",
                schemas[schema]
            );
        }
    }
    assert_eq!(
        schemas["EntriesReply"]["properties"]["entries"]["items"]["$ref"],
        "#/components/schemas/AuditEntry"
    );
    assert_eq!(
        schemas["UnitStatesReply"]["properties"]["units"]["items"]["$ref"],
        "#/components/schemas/UnitState"
    );
    assert_eq!(
        schemas["AuditState"]["enum"].as_array().map(Vec::len),
        Some(AuditState::ALL.len())
    );
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_is_not_the_json_an_endpoint_takes_is_an_error_reply_and_writes_nothing() {
    let Some((api, db)) = api("server_bad_json").await else {
        return;
    };
    let before = api.state().await;
    let url = format!("{}/{SCOPE}/entries", api.server.base);
    for (content_type, body) in [
        ("application/json", "{not json".to_owned()),
        ("application/json", r#"{"request_id": "x"}"#.to_owned()),
        ("text/plain", "{}".to_owned()),
    ] {
        let response = api
            .client
            .post(&url)
            .bearer_auth(&api.admin)
            .header("content-type", content_type)
            .body(body.clone())
            .send()
            .await
            .expect("the server answers");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let reply: Value = response.json().await.expect("an ErrorReply");
        assert_eq!(reply["code"], "invalid", "{reply}");
        assert!(
            reply["error"].as_str().is_some_and(|e| e.contains("JSON")),
            "{reply}"
        );
    }
    let too_large = format!(r#"{{"request_id": "{}"}}"#, "x".repeat(2 * 1024 * 1024));
    let response = api
        .client
        .post(&url)
        .bearer_auth(&api.admin)
        .header("content-type", "application/json")
        .body(too_large)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(api.state().await, before, "a refused body wrote something");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn copies_of_one_append_sent_at_once_to_two_servers_leave_one_row() {
    let Some(db) = fresh(Backend::Postgres, "server_dup").await else {
        return;
    };
    let servers = [Server::start(&db.url), Server::start(&db.url)];
    let runner = token(&db.url, "runner", Some(("orders", "prod")));
    let client = http();
    let init = client
        .post(format!("{}/{SCOPE}/initialize", servers[0].base))
        .bearer_auth(&runner)
        .json(&json!({}))
        .send()
        .await
        .expect("initialize");
    assert_eq!(init.status(), StatusCode::NO_CONTENT);
    let body = append_body(AuditState::Started, None);
    let sends = (0..8).map(|n| {
        client
            .post(format!("{}/{SCOPE}/entries", servers[n % 2].base))
            .bearer_auth(&runner)
            .json(&body)
            .send()
    });
    let mut written = 0;
    for reply in futures_join(sends).await {
        let reply = reply.expect("an answer");
        assert_eq!(reply.status(), StatusCode::OK);
        let reply: Value = reply.json().await.expect("json");
        written += usize::from(reply["written"] == true);
    }
    assert_eq!(written, 1);
    let rows: Value = client
        .get(format!("{}/{SCOPE}/entries", servers[1].base))
        .bearer_auth(&runner)
        .send()
        .await
        .expect("entries")
        .json()
        .await
        .expect("json");
    assert_eq!(rows["entries"].as_array().map(Vec::len), Some(1), "{rows}");
    drop(servers);
    db.drop_database().await;
}

/// Runs every future at once (spawned), in order of the results.
async fn futures_join<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.expect("no panic"));
    }
    out
}
