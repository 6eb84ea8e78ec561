//! The dashboard in a real browser: headless Chromium driven through chromedriver (Debian's
//! `chromium` and `chromium-driver`) by fantoccini, against the server binary. A person signs
//! in, sees the overview, opens a scope and its blocked unit, records a fix with name and
//! reason, and sees it in the history. With `FLAMINGOCK_SAVE_SCREENSHOTS=1` each page is saved
//! under `docs/screenshots/` (the README shows them).

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Server, fresh, http, seed_blocked, token};
use fantoccini::{Client, ClientBuilder, Locator};
use flamingock_core::testing::UnitBuilder;
use flamingock_testkit::Backend;

/// The first of `names` found on the `PATH`.
fn program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// chromedriver on a port of its own; killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver(chromedriver: &PathBuf) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = http()
            .get(format!("{}/status", driver.url))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            return driver;
        }
        assert!(Instant::now() < deadline, "chromedriver did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn browser(driver: &Driver, chromium: &PathBuf, profile: &std::path::Path) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({
            "binary": chromium,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-dev-shm-usage",
                "--disable-gpu",
                "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a browser session")
}

/// Saves the page as `docs/screenshots/<name>.png` when asked to.
async fn screenshot(client: &Client, name: &str) {
    if std::env::var("FLAMINGOCK_SAVE_SCREENSHOTS").as_deref() != Ok("1") {
        return;
    }
    let png = client.screenshot().await.expect("a screenshot");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
    std::fs::create_dir_all(&dir).expect("the screenshot folder");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("the screenshot is saved");
}

/// A scope whose units all applied.
async fn seed_applied(server: &Server, runner: &str, service: &str, environment: &str) {
    let store = flamingock_client::HttpAuditStore::new(&server.url(service, environment), runner)
        .expect("a store");
    let units = [
        UnitBuilder::new(format!("{service}-schema"), "1", "dana")
            .transactional(false)
            .execute_sync(|_| Ok(()))
            .build(),
        UnitBuilder::new(format!("{service}-seed"), "2", "dana")
            .transactional(false)
            .execute_sync(|_| Ok(()))
            .build(),
    ];
    flamingock_core::Engine::new(Arc::new(store))
        .run(units)
        .await
        .expect("the units apply");
}

/// The page's HTML.
async fn source(client: &Client) -> String {
    client.source().await.expect("the page source")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_opens_a_blocked_unit_records_a_fix_and_sees_it_in_the_history() {
    let (Some(chromedriver), Some(chromium)) = (
        program(&["chromedriver"]),
        program(&["chromium", "chromium-browser"]),
    ) else {
        flamingock_testkit::skip(
            "chromium or chromedriver is not installed (apt-get install chromium chromium-driver); the dashboard was not tested in a browser",
        );
        return;
    };
    let Some(db) = fresh(Backend::Sqlite, "dash_browser").await else {
        return;
    };
    let server = Server::start(&db.url);
    let admin = token(&db.url, "admin", None);
    let orders = token(&db.url, "runner", Some(("orders", "prod")));
    seed_blocked(&server, &orders, "orders", "prod").await;
    for (service, environment) in [("orders", "staging"), ("billing", "prod")] {
        let runner = token(&db.url, "runner", Some((service, environment)));
        seed_applied(&server, &runner, service, environment).await;
    }

    let driver = start_driver(&chromedriver).await;
    let profile = tempfile::tempdir().expect("a browser profile");
    let client = browser(&driver, &chromium, profile.path()).await;
    let base = &server.base;

    // Signed out: the dashboard sends the person to the sign-in page.
    client
        .goto(&format!("{base}/dashboard"))
        .await
        .expect("the dashboard loads");
    assert_eq!(
        client.current_url().await.expect("a url").path(),
        "/dashboard/sign-in"
    );
    screenshot(&client, "sign-in").await;
    client
        .find(Locator::Css("input[name=token]"))
        .await
        .expect("the token field")
        .send_keys(&admin)
        .await
        .expect("typing");
    client
        .find(Locator::Css("form.sign-in button[type=submit]"))
        .await
        .expect("the sign-in button")
        .click()
        .await
        .expect("signing in");

    // The overview: the three scopes; the blocked one highlighted.
    let orders_link = client
        .wait()
        .for_element(Locator::Css("a[href=\"/dashboard/orders/prod\"]"))
        .await
        .expect("the overview lists orders/prod");
    let overview = source(&client).await;
    assert!(
        overview.contains("billing") && overview.contains("staging"),
        "{overview}"
    );
    assert!(
        overview.contains("class=\"alert\""),
        "the blocked scope is highlighted"
    );
    screenshot(&client, "overview").await;
    orders_link.click().await.expect("opening the scope");

    // The scope: its units and history; the blocked unit marked.
    let unit_link = client
        .wait()
        .for_element(Locator::Css(
            "a[href=\"/dashboard/orders/prod/units/backfill-emails\"]",
        ))
        .await
        .expect("the blocked unit's link");
    assert!(source(&client).await.contains("BLOCKED"));
    screenshot(&client, "scope").await;
    unit_link.click().await.expect("opening the unit");

    // The blocked unit: its error and the fix form.
    client
        .wait()
        .for_element(Locator::Css("form.fix"))
        .await
        .expect("the fix form");
    let unit = source(&client).await;
    assert!(unit.contains("the mail service answered 503"), "{unit}");
    screenshot(&client, "blocked-unit").await;
    client
        .find(Locator::Css("input[name=resolution][value=applied]"))
        .await
        .expect("the applied choice")
        .click()
        .await
        .expect("choosing");
    client
        .find(Locator::Css("input[name=name]"))
        .await
        .expect("the name field")
        .send_keys("Ana Pérez")
        .await
        .expect("typing");
    client
        .find(Locator::Css("textarea[name=reason]"))
        .await
        .expect("the reason field")
        .send_keys("checked the mail table: every address is backfilled")
        .await
        .expect("typing");
    client
        .find(Locator::Css("form.fix button[type=submit]"))
        .await
        .expect("the fix button")
        .click()
        .await
        .expect("recording the fix");
    client
        .wait()
        .for_element(Locator::Css("p.note"))
        .await
        .expect("the fix is confirmed");
    let fixed = source(&client).await;
    assert!(
        fixed.contains("Recorded MANUAL_MARKED_AS_APPLIED"),
        "{fixed}"
    );

    // The history shows the fix, with who and why.
    client
        .goto(&format!(
            "{base}/dashboard/orders/prod?state=MANUAL_MARKED_AS_APPLIED"
        ))
        .await
        .expect("the filtered history");
    let history = source(&client).await;
    assert!(
        history.contains("fixed by Ana Pérez: checked the mail table: every address is backfilled"),
        "{history}"
    );
    screenshot(&client, "history-after-fix").await;
    client.close().await.expect("the browser closes");

    let rows: serde_json::Value = http()
        .get(format!(
            "{base}/v1/services/orders/environments/prod/entries"
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("json");
    let last = rows["entries"]
        .as_array()
        .and_then(|rows| rows.last())
        .expect("rows")
        .clone();
    assert_eq!(last["state"], "MANUAL_MARKED_AS_APPLIED");
    assert_eq!(last["metadata"]["resolved_by"], "Ana Pérez");
    drop(driver);
    db.drop_database().await;
}
