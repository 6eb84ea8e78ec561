//! A reply lost on the wire: a proxy between the client and a real server forwards an append and
//! drops the server's answer. The client retries under the same row name, and the server records
//! the row once.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::{Server, fresh, token};
use flamingock::{ChangeContext, ChangeUnit, Flamingock};
use flamingock_testkit::Backend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub mod lossy {
    use super::*;

    #[flamingock::change_unit(id = "announce", order = "1", author = "ana", transactional = false)]
    pub mod announce {
        use super::*;
        #[execution]
        pub fn execute(context: &ChangeContext) {
            assert_eq!(context.change_id, "announce");
        }
    }
}

/// Forwards everything to `upstream`, except the reply to the first request whose line starts
/// with `drop_request`: the connection is closed instead, after the server answered.
struct ReplyDropper {
    address: String,
    dropped: Arc<AtomicUsize>,
}

async fn reply_dropper(upstream: String, drop_request: &'static str) -> ReplyDropper {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let address = listener.local_addr().expect("an address").to_string();
    let armed = Arc::new(AtomicBool::new(true));
    let dropped = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&dropped);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            let armed = Arc::clone(&armed);
            let dropped = Arc::clone(&counter);
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let drop_next_reply = Arc::new(AtomicBool::new(false));
                let flag = Arc::clone(&drop_next_reply);
                let requests = tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match client_read.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        if buf[..n].starts_with(drop_request.as_bytes())
                            && armed.swap(false, Ordering::SeqCst)
                        {
                            flag.store(true, Ordering::SeqCst);
                        }
                        if server_write.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match server_read.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if drop_next_reply.load(Ordering::SeqCst) {
                        // The server answered; the client never hears it.
                        dropped.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                    if client_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                requests.abort();
            });
        }
    });
    ReplyDropper { address, dropped }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_whose_reply_is_lost_is_retried_and_recorded_once() {
    let Some(db) = fresh(Backend::Sqlite, "server_reply_loss").await else {
        return;
    };
    let server = Server::start(&db.url);
    let proxy = reply_dropper(
        server.listen.clone(),
        "POST /v1/services/orders/environments/prod/entries ",
    )
    .await;
    let runner = token(&db.url, "runner", Some(("orders", "prod")));
    let units: Vec<&'static ChangeUnit> = ChangeUnit::registered()
        .filter(|unit| unit.source.module_path.contains("::lossy::"))
        .collect();
    let report = Flamingock::builder()
        .database_url(format!("http://{}/orders/prod", proxy.address))
        .token(runner.clone())
        .build()
        .await
        .expect("the engine")
        .run(units)
        .await
        .expect("the run succeeds despite the lost reply");
    assert_eq!(report.applied(), ["announce"], "{report}");
    assert_eq!(
        proxy.dropped.load(Ordering::SeqCst),
        1,
        "a reply was dropped"
    );
    let store = flamingock_client::HttpAuditStore::new(&server.url("orders", "prod"), runner)
        .expect("a store");
    let rows = flamingock::AuditStore::entries(&store).await.expect("rows");
    let states: Vec<&str> = rows.iter().map(|r| r.state.as_str()).collect();
    assert_eq!(states, ["STARTED", "APPLIED"], "{rows:?}");
    db.drop_database().await;
}
