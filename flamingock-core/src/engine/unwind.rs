//! Turns a panic inside a change unit into an error, so that its failure is audited like any other.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::inject::{BoxError, UnitFuture};

/// Polls a unit's future, catching a panic from any poll.
pub(super) struct CatchUnwind<'s> {
    inner: UnitFuture<'s>,
}

impl<'s> CatchUnwind<'s> {
    pub(super) fn new(inner: UnitFuture<'s>) -> Self {
        Self { inner }
    }
}

impl Future for CatchUnwind<'_> {
    type Output = Result<(), BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // The future is dropped right after a panic and never polled again, so no broken
        // invariant inside it can be observed: asserting unwind safety is sound here.
        match catch_unwind(AssertUnwindSafe(|| self.inner.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a non-string panic payload".to_owned());
                Poll::Ready(Err(format!("the change unit panicked: {message}").into()))
            }
        }
    }
}
