//! [`ResponseFuture`]: waits for the inner service and wraps its response body.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::request::Parts;
use http::{Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::AuditContext;
use crate::body::{PreRead, RequestBody, ResponseBody};
use crate::record::PendingRecord;

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
        PreReading {
            service: Option<S>,
            parts: Option<Parts>,
            body: Option<PreRead<B>>,
            #[pin]
            deadline: tokio::time::Sleep,
        },
        Calling {
            #[pin]
            future: S::Future,
        },
    }
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<RequestBody<B>>>,
    B: Body,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::PreReading { .. } => "reading the request body",
            State::Calling { .. } => "waiting for the service",
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
{
    pub(crate) fn called(future: S::Future, pending: Option<PendingRecord>) -> Self {
        Self {
            state: State::Calling { future },
            pending,
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
            state: State::PreReading {
                service: Some(service),
                parts: Some(parts),
                body: Some(body),
                deadline: tokio::time::sleep(timeout),
            },
            pending: Some(pending),
        }
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
                StateProj::PreReading {
                    service,
                    parts,
                    body,
                    deadline,
                } => {
                    let (Some(pending), Some(pre_read)) = (this.pending.as_ref(), body.as_mut())
                    else {
                        panic!("ResponseFuture polled after completion");
                    };
                    let shared = pending.shared().clone();
                    if pre_read.poll_read(cx, &shared).is_pending()
                        && deadline.poll(cx).is_pending()
                    {
                        return Poll::Pending;
                    }
                    let (Some(mut service), Some(parts), Some(pre_read)) =
                        (service.take(), parts.take(), body.take())
                    else {
                        panic!("ResponseFuture polled after completion");
                    };
                    let request =
                        Request::from_parts(parts, RequestBody::replaying(pre_read, shared));
                    let future = service.call(request);
                    this.state.set(State::Calling { future });
                }
                StateProj::Calling { future } => {
                    let result = ready!(future.poll(cx));
                    let mut pending = this.pending.take();
                    return Poll::Ready(match result {
                        Ok(response) => {
                            let (mut parts, body) = response.into_parts();
                            if let Some(pending) = &mut pending {
                                pending.set_response(parts.status.as_u16(), &parts.headers);
                                // For outer layers and services that cannot reach the request.
                                parts
                                    .extensions
                                    .insert(AuditContext::new(pending.shared().clone()));
                                if let Some(id) = pending.take_echo_request_id() {
                                    let name = pending.layer().config.request_id_header.clone();
                                    parts.headers.entry(name).or_insert(id);
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
            }
        }
    }
}
