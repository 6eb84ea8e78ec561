//! [`WebhookListener`]: a run's events posted as JSON to a URL, off the units' critical path.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flamingock_core::listener::{ListenerError, RunEvent, RunListener};
use tokio::sync::{mpsc, oneshot};

/// What the delivery task is given: an event to post, or a request to say when every event
/// before it has been dealt with.
enum Job {
    Post(RunEvent),
    Flush(oneshot::Sender<()>),
}

/// Posts every [`RunEvent`] as JSON (`{"event": "unit_finished", ...}`) to a URL, one request per
/// event, in the order they happened.
///
/// Events are handed to a task of the listener's own, so a slow or unreachable receiver never
/// holds a unit up; a post that fails (no connection, a timeout, a 5xx, 408 or 429) is tried
/// again, with a doubling pause, up to [`retries`](Self::retries) more times, then logged and
/// given up (other 4xx answers are not retried: sending the same again will not help). When the
/// run ends it waits for the queue to drain (at most 30 s), so a process that exits right after
/// its run loses no event. The URL and header values are not logged (they may hold a secret);
/// the log names the receiver by its host.
///
/// ```no_run
/// use flamingock::{Flamingock, WebhookListener};
///
/// # async fn run() -> Result<(), flamingock::Error> {
/// let hook = WebhookListener::new("https://hooks.example.com/flamingock")?
///     .header("Authorization", "Bearer s3cr3t")?;
/// flamingock::run!(Flamingock::builder().listener(hook)).await?;
/// # Ok(()) }
/// ```
pub struct WebhookListener {
    shared: Arc<Shared>,
    /// The delivery task's queue, started with the first event on the runtime of its run (and
    /// again if that runtime has ended since).
    worker: Mutex<Option<Worker>>,
}

#[derive(Clone)]
struct Shared {
    url: reqwest::Url,
    headers: reqwest::header::HeaderMap,
    client: reqwest::Client,
    retries: u32,
    first_pause: Duration,
}

struct Worker {
    queue: mpsc::UnboundedSender<Job>,
    task: tokio::task::JoinHandle<()>,
}

impl WebhookListener {
    /// A listener posting to `url` (`http://` or `https://`), with a 10 s timeout per request
    /// and 3 retries. A URL that does not parse, or of another scheme, is refused.
    pub fn new(url: &str) -> Result<Self, crate::Error> {
        let parsed = reqwest::Url::parse(url).map_err(|error| {
            crate::Error::Config(format!("the webhook URL does not parse: {error}"))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(crate::Error::Config(format!(
                "the webhook URL must be http:// or https:// with a host, not {}://...",
                parsed.scheme()
            )));
        }
        Ok(Self {
            shared: Arc::new(Shared {
                url: parsed,
                headers: reqwest::header::HeaderMap::new(),
                client: http_client(Duration::from_secs(10))?,
                retries: 3,
                first_pause: Duration::from_millis(200),
            }),
            worker: Mutex::new(None),
        })
    }

    /// Sends this header with every post (an `Authorization` token, say). Its value is never
    /// logged. A name or value HTTP does not allow is refused.
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, crate::Error> {
        let header = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| crate::Error::Config(format!("{name:?} is not an HTTP header name")))?;
        let mut value = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
            crate::Error::Config(format!(
                "the value of webhook header {name} is not a valid HTTP header value \
                 (visible ASCII only, no line breaks)"
            ))
        })?;
        value.set_sensitive(true);
        self.shared_mut().headers.insert(header, value);
        Ok(self)
    }

    /// How long one post may take before it counts as failed (10 s by default).
    pub fn timeout(mut self, timeout: Duration) -> Result<Self, crate::Error> {
        self.shared_mut().client = http_client(timeout)?;
        Ok(self)
    }

    /// How many times a failed post is tried again (3 by default; 0: once only), the first
    /// after `first_pause` (200 ms by default), each pause twice the one before.
    pub fn retries(mut self, retries: u32, first_pause: Duration) -> Self {
        let shared = self.shared_mut();
        shared.retries = retries;
        shared.first_pause = first_pause;
        self
    }

    /// The settings, to change (for the events sent from now on).
    fn shared_mut(&mut self) -> &mut Shared {
        Arc::make_mut(&mut self.shared)
    }

    /// The queue of a running delivery task, started on the current runtime if there is none
    /// (or the one there was ended with its runtime).
    fn queue(&self) -> Result<mpsc::UnboundedSender<Job>, ListenerError> {
        let mut worker = self
            .worker
            .lock()
            .map_err(|_| "the webhook listener's state is poisoned")?;
        if let Some(running) = worker.as_ref().filter(|w| !w.task.is_finished()) {
            return Ok(running.queue.clone());
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "the webhook listener needs a tokio runtime to post from")?;
        let (queue, jobs) = mpsc::unbounded_channel();
        let task = runtime.spawn(deliver(Arc::clone(&self.shared), jobs));
        *worker = Some(Worker {
            queue: queue.clone(),
            task,
        });
        Ok(queue)
    }
}

/// The HTTP client posts go through: `timeout` per request, and no redirects followed (a
/// redirect would carry the headers, a secret among them, to wherever it points).
fn http_client(timeout: Duration) -> Result<reqwest::Client, crate::Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|error| crate::Error::Config(format!("the webhook's HTTP client: {error}")))
}

impl std::fmt::Debug for WebhookListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookListener({})", self.shared.receiver())
    }
}

#[async_trait::async_trait]
impl RunListener for WebhookListener {
    fn on_event(&self, event: &RunEvent) -> Result<(), ListenerError> {
        self.queue()?
            .send(Job::Post(event.clone()))
            .map_err(|_| "the webhook's delivery task has stopped".into())
    }

    async fn flush(&self) {
        let Ok(queue) = self.queue() else {
            return;
        };
        let (done, delivered) = oneshot::channel();
        if queue.send(Job::Flush(done)).is_ok() {
            let _ = delivered.await;
        }
    }
}

impl Shared {
    /// The receiver as logs name it: scheme, host and port, no path, query or credentials.
    fn receiver(&self) -> String {
        let host = self.url.host_str().unwrap_or("?");
        match self.url.port() {
            Some(port) => format!("{}://{host}:{port}", self.url.scheme()),
            None => format!("{}://{host}", self.url.scheme()),
        }
    }

    /// Posts one event, trying again on failures worth it. `Err`: given up, and why.
    async fn post(&self, body: &[u8]) -> Result<(), String> {
        let mut pause = self.first_pause;
        let mut tries_left = self.retries;
        loop {
            let sent = self
                .client
                .post(self.url.clone())
                .headers(self.headers.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_vec())
                .send()
                .await;
            let (retry, why) = match sent {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => {
                    let status = response.status();
                    let worth_it = status.is_server_error()
                        || status == reqwest::StatusCode::REQUEST_TIMEOUT
                        || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
                    (worth_it, format!("answered {status}"))
                }
                // Without the URL: it may hold a secret.
                Err(error) => (true, error.without_url().to_string()),
            };
            if !retry || tries_left == 0 {
                return Err(why);
            }
            tracing::debug!(receiver = %self.receiver(), %why, "webhook post failed; trying again");
            tokio::time::sleep(pause).await;
            pause = pause.saturating_mul(2);
            tries_left -= 1;
        }
    }
}

/// The delivery task: posts the events in order until the listener is dropped.
async fn deliver(shared: Arc<Shared>, mut jobs: mpsc::UnboundedReceiver<Job>) {
    while let Some(job) = jobs.recv().await {
        match job {
            Job::Post(event) => {
                let body = match serde_json::to_vec(&event) {
                    Ok(body) => body,
                    Err(error) => {
                        tracing::warn!(event = event.name(), %error, "webhook event not serialisable");
                        continue;
                    }
                };
                if let Err(why) = shared.post(&body).await {
                    tracing::warn!(
                        receiver = %shared.receiver(),
                        event = event.name(),
                        retries = shared.retries,
                        %why,
                        "webhook post given up"
                    );
                }
            }
            Job::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}
