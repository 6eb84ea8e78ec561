//! The request body limit, as a layer: a body over [`MAX_BODY_BYTES`] is refused with `413` and
//! an [`ErrorReply`](flamingock_client::wire::ErrorReply), whether it says its length or comes
//! chunked. Before answering, the rest of the body is read and dropped (a bounded amount, for a
//! bounded time): a server that answers and closes while the client is still sending makes the
//! client's system reset the connection, and the client then sees a broken connection instead
//! of the refusal.

use std::pin::Pin;
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::{CONNECTION, CONTENT_LENGTH};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::MAX_BODY_BYTES;
use crate::error::ServerError;

/// How much of a refused body is read and dropped at most before the refusal is sent.
const DRAIN_BYTES: usize = 64 * MAX_BODY_BYTES;
/// How long a refused body is read at most before the refusal is sent.
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// Reads the request's body (at most [`MAX_BODY_BYTES`]) and hands the request on with it, or
/// refuses it with `413`.
pub async fn limit_body(request: Request, next: Next) -> Response {
    let (parts, mut body) = request.into_parts();
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    let mut over = declared.is_some_and(|length| length > MAX_BODY_BYTES as u64);
    let mut kept: Vec<u8> = Vec::new();
    if !over {
        loop {
            match next_data(&mut body).await {
                None => break,
                Some(Ok(data)) if kept.len() + data.len() <= MAX_BODY_BYTES => {
                    kept.extend_from_slice(&data)
                }
                Some(Ok(_)) => {
                    over = true;
                    break;
                }
                Some(Err(error)) => {
                    return ServerError::Invalid(format!("the body could not be read: {error}"))
                        .into_response();
                }
            }
        }
    }
    if over {
        drain(&mut body).await;
        let mut refusal = ServerError::TooLarge(format!("the body is over {MAX_BODY_BYTES} bytes"))
            .into_response();
        refusal
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        return refusal;
    }
    next.run(Request::from_parts(parts, Body::from(kept))).await
}

/// Reads and drops what is left of a refused body, within [`DRAIN_BYTES`] and [`DRAIN_TIME`].
async fn drain(body: &mut Body) {
    let read = async {
        let mut dropped = 0;
        while let Some(Ok(data)) = next_data(body).await {
            dropped += data.len();
            if dropped > DRAIN_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, read).await;
}

/// The body's next piece of data (trailers skipped), `None` at its end.
async fn next_data(body: &mut Body) -> Option<Result<Bytes, axum::Error>> {
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await?;
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    return Some(Ok(data));
                }
            }
            Err(error) => return Some(Err(error)),
        }
    }
}
