//! An HTTP proxy between a client and a real server that loses the server's replies to chosen
//! requests: the request is forwarded whole, the server does the work and answers, and the
//! client's connection is closed instead of the answer reaching it (the HTTP side of the
//! reply-loss matrix; `flamingock_tests::reply_loss` is the SQL wire side).
//!
//! A [`Loss`] picks requests by their request line (`"POST /v1/.../entries "`) and, optionally,
//! a piece of their body (`"\"state\":\"APPLIED\""`), and says how many of them lose their
//! reply (the first one, or every one: the client's retries too). After the first lost reply
//! the proxy may also refuse every request until [`ReplyDropper::release`], so that the client
//! cannot read the outcome either.
//!
//! It reads requests with a `Content-Length` body (what the client sends), and relies on HTTP/1.1
//! clients waiting for a reply before they send the next request on a connection: once a chosen
//! request is forwarded, whatever the server sends on that connection is its reply.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};

/// Which replies are lost.
#[derive(Debug, Clone)]
pub struct Loss {
    request_line: String,
    body_contains: Option<String>,
    /// How many matching requests lose their reply.
    times: usize,
    refuse_after: bool,
}

impl Loss {
    /// The reply to the first request whose request line starts with `request_line` (method,
    /// space, path: `"POST /v1/services/orders/environments/prod/entries "`).
    pub fn first(request_line: impl Into<String>) -> Loss {
        Loss {
            request_line: request_line.into(),
            body_contains: None,
            times: 1,
            refuse_after: false,
        }
    }

    /// Only requests whose body contains `text`.
    pub fn with_body(mut self, text: impl Into<String>) -> Loss {
        self.body_contains = Some(text.into());
        self
    }

    /// Every matching request loses its reply, retries included.
    pub fn every_time(mut self) -> Loss {
        self.times = usize::MAX;
        self
    }

    /// After the first lost reply, every request is refused (its connection closed before it
    /// reaches the server) until [`ReplyDropper::release`]: the client cannot read what became
    /// of its write.
    pub fn then_refuse_everything(mut self) -> Loss {
        self.refuse_after = true;
        self
    }

    fn matches(&self, head: &str, body: &[u8]) -> bool {
        head.starts_with(&self.request_line)
            && self.body_contains.as_ref().is_none_or(|text| {
                body.windows(text.len().max(1))
                    .any(|window| window == text.as_bytes())
            })
    }
}

#[derive(Default)]
struct State {
    loss: Option<Loss>,
    /// Replies lost since arming.
    lost: usize,
    refusing: bool,
    /// Request lines of every request that reached the server, in order.
    forwarded: Vec<String>,
}

/// A running proxy; it stops with the test's runtime.
pub struct ReplyDropper {
    /// `127.0.0.1:<port>`.
    pub address: String,
    state: Arc<Mutex<State>>,
    dropped: Arc<AtomicUsize>,
}

impl ReplyDropper {
    /// Listens on a free port and forwards everything to `upstream` (`host:port`) until armed.
    pub async fn start(upstream: &str) -> ReplyDropper {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let address = listener.local_addr().expect("an address").to_string();
        let state = Arc::new(Mutex::new(State::default()));
        let dropped = Arc::new(AtomicUsize::new(0));
        let upstream = upstream.to_owned();
        let (shared, counter) = (Arc::clone(&state), Arc::clone(&dropped));
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if lock(&shared).refusing {
                    drop(client);
                    continue;
                }
                tokio::spawn(relay(
                    client,
                    upstream.clone(),
                    Arc::clone(&shared),
                    Arc::clone(&counter),
                ));
            }
        });
        ReplyDropper {
            address,
            state,
            dropped,
        }
    }

    /// A proxy that loses the reply to the first request starting with `request_line`.
    pub async fn dropping(upstream: &str, request_line: &str) -> ReplyDropper {
        let proxy = Self::start(upstream).await;
        proxy.arm(Loss::first(request_line));
        proxy
    }

    /// Arms `loss` (replacing any armed one).
    pub fn arm(&self, loss: Loss) {
        let mut state = lock(&self.state);
        state.loss = Some(loss);
        state.lost = 0;
    }

    /// Forwards everything again: disarms, and ends a refusal.
    pub fn release(&self) {
        let mut state = lock(&self.state);
        state.loss = None;
        state.refusing = false;
    }

    /// The audit store URL of `service`/`environment` through the proxy.
    pub fn url(&self, service: &str, environment: &str) -> String {
        format!("http://{}/{service}/{environment}", self.address)
    }

    /// How many replies the server sent that the client never got.
    pub fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }

    /// The request lines that reached the server, in order.
    pub fn forwarded(&self) -> Vec<String> {
        lock(&self.state).forwarded.clone()
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// One client connection: requests read whole and forwarded (or refused), replies relayed
/// unless the request they answer was chosen.
async fn relay(
    client: TcpStream,
    upstream: String,
    state: Arc<Mutex<State>>,
    dropped: Arc<AtomicUsize>,
) {
    let Ok(server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let drop_reply = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&drop_reply);
    let requests = tokio::spawn(async move {
        let mut pending = Vec::new();
        loop {
            let Some((head, request, body_at)) = read_request(&mut client_read, &mut pending).await
            else {
                return;
            };
            let body = &request[body_at..];
            {
                let mut state = lock(&state);
                if state.refusing {
                    // Closed before it reaches the server: nothing is done.
                    return;
                }
                let chosen = match &state.loss {
                    Some(loss) if loss.matches(&head, body) => {
                        let (times, refuse) = (loss.times, loss.refuse_after);
                        state.lost += 1;
                        if state.lost >= times {
                            state.loss = None;
                        }
                        if refuse {
                            state.refusing = true;
                        }
                        true
                    }
                    _ => false,
                };
                state
                    .forwarded
                    .push(head.lines().next().unwrap_or_default().to_owned());
                if chosen {
                    flag.store(true, Ordering::SeqCst);
                }
            }
            if server_write.write_all(&request).await.is_err() {
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
        if drop_reply.load(Ordering::SeqCst) {
            // The server answered; the client never hears it.
            dropped.fetch_add(1, Ordering::SeqCst);
            break;
        }
        if client_write.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    requests.abort();
}

/// Reads one whole request (head and `Content-Length` body) from `from`, `pending` holding what
/// was read past the previous one. Returns its head (through the blank line) as text, and the
/// request's bytes and where its body starts in them; `None` when the client is gone.
async fn read_request(
    from: &mut OwnedReadHalf,
    pending: &mut Vec<u8>,
) -> Option<(String, Vec<u8>, usize)> {
    let mut buf = vec![0u8; 64 * 1024];
    let head_end = loop {
        if let Some(at) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = from.read(&mut buf).await.ok().filter(|n| *n > 0)?;
        pending.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&pending[..head_end]).into_owned();
    let length = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while pending.len() < head_end + length {
        let n = from.read(&mut buf).await.ok().filter(|n| *n > 0)?;
        pending.extend_from_slice(&buf[..n]);
    }
    let request: Vec<u8> = pending.drain(..head_end + length).collect();
    Some((head, request, head_end))
}
