//! [`ResponseFuture`]: waits for room (under `Block`), reads a small body ahead, calls the inner
//! service and wraps its response body.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use http::request::Parts;
use http::{Request, Response, StatusCode};
use http_body::Body;
use pin_project_lite::pin_project;
use tokio::sync::{AcquireError, OwnedSemaphorePermit};
use tower_service::Service;

use crate::AuditContext;
use crate::body::{PreRead, RequestBody, ResponseBody};
use crate::layer::Shared;
use crate::record::PendingRecord;

type Acquire =
    Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send + 'static>>;

pin_project! {
    /// Response future of [`Audit`](crate::Audit).
    ///
    /// Dropping it before the response is ready finishes the request's record as cancelled.
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<RequestBody<B>>>,
        B: Body,
    {
        #[pin]
        state: State<S, B>,
        pending: Option<PendingRecord>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<RequestBody<B>>>,
        B: Body,
    {
        // The rare states are boxed: the common one, `Calling`, stays small to move.
        WaitingForRoom {
            waiting: Box<Waiting<S, B>>,
        },
        PreReading {
            reading: Box<Reading<S, B>>,
        },
        Calling {
            #[pin]
            future: S::Future,
        },
        Rejected,
    }
}

/// A request waiting for room in the queue (`Overflow::Block`).
struct Waiting<S, B> {
    service: Option<S>,
    parts: Option<Parts>,
    body: Option<B>,
    acquire: Acquire,
    pre_read_timeout: Option<Duration>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    #[allow(dead_code, reason = "held for its Drop, which counts the wait")]
    clock: WaitClock,
}

/// Counts a request's wait for room in the writer's stats: the wait when it begins, its length
/// when it ends, with room, at the timeout or with the request dropped.
struct WaitClock {
    since: Instant,
    layer: Arc<Shared>,
}

impl WaitClock {
    fn start(layer: Arc<Shared>) -> Self {
        layer.intake.channel().count_blocked();
        Self {
            since: Instant::now(),
            layer,
        }
    }
}

impl Drop for WaitClock {
    fn drop(&mut self) {
        let waited = self.since.elapsed();
        self.layer.intake.channel().add_blocked_time(waited);
    }
}

/// A small body still arriving, read within a bounded wait before the service runs.
struct Reading<S, B: Body> {
    service: Option<S>,
    parts: Option<Parts>,
    body: Option<PreRead<B>>,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<RequestBody<B>>>,
    B: Body,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::WaitingForRoom { .. } => "waiting for room in the audit queue",
            State::PreReading { .. } => "reading the request body",
            State::Calling { .. } => "waiting for the service",
            State::Rejected => "rejected: the audit queue is full",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .field("record", &self.pending)
            .finish()
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<RequestBody<B>>>,
    B: Body,
    B::Error: fmt::Display,
{
    pub(crate) fn called(future: S::Future, pending: Option<PendingRecord>) -> Self {
        Self {
            state: State::Calling { future },
            pending,
        }
    }

    pub(crate) fn rejected() -> Self {
        Self {
            state: State::Rejected,
            pending: None,
        }
    }

    pub(crate) fn pre_read(
        service: S,
        parts: Parts,
        body: PreRead<B>,
        pending: PendingRecord,
        timeout: Duration,
    ) -> Self {
        Self {
            state: pre_reading(service, parts, body, timeout),
            pending: Some(pending),
        }
    }

    pub(crate) fn wait_for_room(
        service: S,
        parts: Parts,
        body: B,
        pending: PendingRecord,
        acquire: Acquire,
        timeout: Duration,
        pre_read_timeout: Option<Duration>,
    ) -> Self {
        let clock = WaitClock::start(pending.layer_handle());
        Self {
            state: State::WaitingForRoom {
                waiting: Box::new(Waiting {
                    service: Some(service),
                    parts: Some(parts),
                    body: Some(body),
                    acquire,
                    pre_read_timeout,
                    deadline: Box::pin(tokio::time::sleep(timeout)),
                    clock,
                }),
            },
            pending: Some(pending),
        }
    }
}

fn pre_reading<S, B>(service: S, parts: Parts, body: PreRead<B>, timeout: Duration) -> State<S, B>
where
    S: Service<Request<RequestBody<B>>>,
    B: Body,
    B::Error: fmt::Display,
{
    State::PreReading {
        reading: Box::new(Reading {
            service: Some(service),
            parts: Some(parts),
            body: Some(body),
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }),
    }
}

const POLLED_AFTER_COMPLETION: &str = "ResponseFuture polled after completion";

/// Sets the request's id on the response. An id the service set on it itself is kept, as
/// tower-http's `PropagateRequestId` keeps it; when it differs from the row's, the row notes it
/// under `extra.response_request_id`, so that the id the client was given finds the row.
fn echo_request_id(headers: &mut http::HeaderMap, id: http::HeaderValue, pending: &PendingRecord) {
    let name = pending.layer().config.request_id_header.clone();
    match headers.entry(name) {
        http::header::Entry::Vacant(vacant) => {
            vacant.insert(id);
        }
        http::header::Entry::Occupied(own) => {
            if own.get() != id
                && let Some(shared) = pending.shared()
            {
                AuditContext::new(Arc::clone(shared)).note_extra(
                    RESPONSE_REQUEST_ID,
                    String::from_utf8_lossy(own.get().as_bytes())
                        .into_owned()
                        .into(),
                );
            }
        }
    }
}

/// The `extra` key of an id the service answered with in place of the row's.
const RESPONSE_REQUEST_ID: &str = "response_request_id";

/// Finishes the record it holds when dropped, which only a panic unwinding through the poll it
/// guards does (the poll forgets it otherwise): the record's own drop, while the thread
/// panics, says the service panicked.
struct FinishOnUnwind<'a>(&'a mut Option<PendingRecord>);

impl Drop for FinishOnUnwind<'_> {
    fn drop(&mut self) {
        drop(self.0.take());
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<RequestBody<B>>, Response = Response<ResBody>>,
    S::Error: fmt::Display,
    B: Body,
    B::Error: fmt::Display,
    ResBody: Body,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::WaitingForRoom { waiting } => {
                    let Waiting {
                        service,
                        parts,
                        body,
                        acquire,
                        pre_read_timeout,
                        deadline,
                        clock: _,
                    } = &mut **waiting;
                    let pending = this.pending.as_mut().expect(POLLED_AFTER_COMPLETION);
                    match acquire.as_mut().poll(cx) {
                        Poll::Ready(Ok(permit)) => pending.set_permit(permit),
                        // Closed semaphore, or no room in time: go on; the record is dropped
                        // and counted if the queue is still full when it is finished.
                        Poll::Ready(Err(_)) => {}
                        Poll::Pending => {
                            if deadline.as_mut().poll(cx).is_pending() {
                                return Poll::Pending;
                            }
                        }
                    }
                    let (Some(mut service), Some(parts), Some(body)) =
                        (service.take(), parts.take(), body.take())
                    else {
                        panic!("{POLLED_AFTER_COMPLETION}");
                    };
                    let next = match *pre_read_timeout {
                        Some(timeout) => pre_reading(service, parts, PreRead::new(body), timeout),
                        None => {
                            let shared = pending.shared().cloned();
                            let request =
                                Request::from_parts(parts, RequestBody::new(body, shared));
                            State::Calling {
                                future: service.call(request),
                            }
                        }
                    };
                    this.state.set(next);
                }
                StateProj::PreReading { reading } => {
                    let Reading {
                        service,
                        parts,
                        body,
                        deadline,
                    } = &mut **reading;
                    // The record is finished only once the service has answered.
                    let (Some(shared), Some(pre_read)) = (
                        this.pending
                            .as_ref()
                            .and_then(PendingRecord::shared)
                            .cloned(),
                        body.as_mut(),
                    ) else {
                        panic!("{POLLED_AFTER_COMPLETION}");
                    };
                    if pre_read.poll_read(cx, &shared).is_pending()
                        && deadline.as_mut().poll(cx).is_pending()
                    {
                        return Poll::Pending;
                    }
                    let (Some(mut service), Some(parts), Some(pre_read)) =
                        (service.take(), parts.take(), body.take())
                    else {
                        panic!("{POLLED_AFTER_COMPLETION}");
                    };
                    let request =
                        Request::from_parts(parts, RequestBody::replaying(pre_read, Some(shared)));
                    let future = service.call(request);
                    this.state.set(State::Calling { future });
                }
                StateProj::Calling { future } => {
                    // A panic in the service unwinds through this poll. A panic layer outside
                    // this one that catches it drops this future only afterwards, when nothing
                    // is unwinding any more: the record is finished as the panic's on the way.
                    let unwinding = FinishOnUnwind(&mut *this.pending);
                    let polled = future.poll(cx);
                    std::mem::forget(unwinding);
                    let result = ready!(polled);
                    let mut pending = this.pending.take();
                    return Poll::Ready(match result {
                        Ok(response) => {
                            let (mut parts, body) = response.into_parts();
                            if let Some(pending) = &mut pending {
                                pending.set_response(
                                    parts.status.as_u16(),
                                    &parts.headers,
                                    body.size_hint().exact(),
                                    body.is_end_stream(),
                                );
                                // For outer layers and services that cannot reach the request.
                                if pending.layer().config.context_on_response
                                    && let Some(shared) = pending.shared()
                                {
                                    parts.extensions.insert(AuditContext::new(shared.clone()));
                                }
                                if let Some(id) = pending.take_echo_request_id() {
                                    echo_request_id(&mut parts.headers, id, pending);
                                }
                            }
                            Ok(Response::from_parts(
                                parts,
                                ResponseBody::new(body, pending),
                            ))
                        }
                        Err(error) => {
                            if let Some(pending) = &mut pending {
                                pending.finish_err(format!("service error: {error}"));
                            }
                            Err(error)
                        }
                    });
                }
                StateProj::Rejected => {
                    let mut response = Response::new(ResponseBody::empty());
                    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                    response.headers_mut().insert(
                        http::header::RETRY_AFTER,
                        http::HeaderValue::from_static("1"),
                    );
                    return Poll::Ready(Ok(response));
                }
            }
        }
    }
}
