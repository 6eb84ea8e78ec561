//! A TCP proxy in front of a database server that a test can cut: every open connection is
//! dropped and new ones are refused, as when the network to the audit store fails mid-run.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy; dropping it stops it.
pub struct Proxy {
    /// The address to connect to instead of the server.
    pub addr: SocketAddr,
    cut: Arc<CutSwitch>,
    task: tokio::task::JoinHandle<()>,
}

/// Cuts the proxy's connections; cheap to clone into a change unit as a dependency.
#[derive(Clone)]
pub struct ProxyCut(Arc<CutSwitch>);

struct CutSwitch {
    cut: AtomicBool,
    signal: watch::Sender<bool>,
}

impl ProxyCut {
    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.0.cut.store(true, Ordering::SeqCst);
        let _ = self.0.signal.send(true);
    }
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (signal, _) = watch::channel(false);
        let cut = Arc::new(CutSwitch {
            cut: AtomicBool::new(false),
            signal,
        });
        let switch = cut.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if switch.cut.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let mut cut_signal = switch.signal.subscribe();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut_signal.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Proxy { addr, cut, task }
    }

    /// A handle that cuts this proxy.
    pub fn cutter(&self) -> ProxyCut {
        ProxyCut(self.cut.clone())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
