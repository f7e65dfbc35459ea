//! Body wrappers: [`RequestBody`] tees what the handler reads, [`ResponseBody`] counts what goes out
//! and finishes the record when the response ends.
//!
//! Neither wrapper changes a frame: data, trailers, `size_hint` and `is_end_stream` pass through,
//! so streaming uploads, server-sent events and gRPC streams behave as without the layer.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::context::{RequestShared, lock};
use crate::grpc::{GrpcFrames, Protocol};
use crate::record::PendingRecord;

/// The capped copy of a request body, filled as the body is read.
///
/// Memory is bounded by `cap` whatever the size of the body: past the cap only the count grows.
#[derive(Debug, Default)]
pub(crate) struct Capture {
    buf: BytesMut,
    cap: usize,
    total: u64,
    truncated: bool,
    ended: bool,
    error: Option<String>,
    /// Counts the messages of a gRPC request; `None` for other requests.
    grpc: Option<GrpcFrames>,
    /// The record was finished: what the body does after that is not its record's.
    sealed: bool,
    /// The request's `Content-Length`, when it had one below 4 GiB; 0 when not (a body of
    /// length 0 has ended when the request arrives). Four bytes, where padding was: a queued
    /// record's size is bounded (see `a_queued_record_stays_within_its_documented_size`).
    declared: u32,
}

/// What was captured of a request body by the time its record was finished.
#[derive(Debug, Default, Clone)]
pub(crate) struct CapturedBody {
    /// At most `max_body_bytes` of the body, from its start.
    pub(crate) bytes: Bytes,
    /// Bytes the handler (or the pre-read) took from the body in all.
    pub(crate) total: u64,
    /// `bytes` is only a prefix: the body was longer than the cap, or was not read to its end.
    pub(crate) truncated: bool,
    /// gRPC messages the handler read, for a gRPC request.
    pub(crate) grpc_messages: Option<u64>,
}

impl Capture {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap,
            ..Self::default()
        }
    }

    /// Counts the gRPC messages of the body as it is read: from their prefixes, decoded from
    /// base64 first for gRPC-Web's text form.
    pub(crate) fn count_grpc_messages(&mut self, protocol: Protocol) {
        self.grpc = Some(match protocol {
            Protocol::Native | Protocol::Web => GrpcFrames::default(),
            Protocol::WebText => GrpcFrames::web_text_request(),
        });
    }

    /// Drops the message count [`count_grpc_messages`](Self::count_grpc_messages) started.
    pub(crate) fn forget_grpc_messages(&mut self) {
        self.grpc = None;
    }

    fn push<D: Buf>(&mut self, data: &D) {
        if self.sealed {
            return;
        }
        if let Some(frames) = &mut self.grpc {
            frames.push_buf(data);
        }
        let len = data.remaining();
        self.total += len as u64;
        // Every byte the `Content-Length` announced: whole, though over HTTP/2 its end comes in
        // an empty frame of its own that a reader stopping at the length never polls.
        if self.read_to_its_length() {
            self.ended = true;
        }
        let mut room = self.cap - self.buf.len();
        // After a gap (a `Buf` of more slices than are copied) nothing more is kept: the kept
        // bytes stay a prefix of the body.
        if room == 0 || self.truncated {
            self.truncated |= len > 0;
            return;
        }
        let spare = self.buf.capacity() - self.buf.len();
        if spare < len.min(room) {
            self.grow(len.min(room));
        }
        // A `Buf` may be split into several slices; copy them without consuming the frame.
        let mut slices = [IoSlice::new(&[]); 8];
        let n = data.chunks_vectored(&mut slices);
        let mut copied = 0;
        for slice in &slices[..n] {
            let take = slice.len().min(room);
            self.buf.extend_from_slice(&slice[..take]);
            room -= take;
            copied += take;
            if room == 0 {
                break;
            }
        }
        if copied < len {
            self.truncated = true;
        }
    }

    /// Makes room for `more` bytes, doubling as a `Vec` grows but never past the cap: `BytesMut`
    /// would double a buffer of 33 KiB to 66 under a cap of 64, and hold twice the bytes the
    /// queue's budget counted.
    fn grow(&mut self, more: usize) {
        let needed = self.buf.len() + more;
        let capacity = (self.buf.capacity() * 2).clamp(needed, self.cap.max(needed));
        let mut grown = BytesMut::with_capacity(capacity);
        grown.extend_from_slice(&self.buf);
        self.buf = grown;
    }

    /// Bytes of memory the kept body holds (its buffer's capacity, at most the cap), which the
    /// queue's budget is charged.
    pub(crate) fn kept(&self) -> usize {
        self.buf.capacity()
    }

    /// Lets go of the kept bytes, when the queue's body budget is spent: the record keeps the
    /// body's size, and its row says that the body was not captured.
    pub(crate) fn shed(&mut self) {
        self.buf = BytesMut::new();
        self.truncated = true;
    }

    /// Marks the body as read to its end (or as one that had ended before anyone read it).
    pub(crate) fn set_ended(&mut self) {
        // A body that failed is cut where it failed, whatever its reader polls after the error
        // (hyper's ends a failed body: a handler that reads on gets `None`).
        if !self.sealed && self.error.is_none() {
            self.ended = true;
        }
    }

    /// Notes the request's `Content-Length`: a body read to that length is whole, though its
    /// end was not polled. Over HTTP/2 a client that streams a body sends its end in an empty
    /// frame of its own, which a handler that stops at the announced length never reads (and
    /// until it is read, the body does not say it has ended).
    pub(crate) fn declare_len(&mut self, len: u64) {
        self.declared = u32::try_from(len).unwrap_or(0);
    }

    /// Whether every byte the request's `Content-Length` announced was read.
    fn read_to_its_length(&self) -> bool {
        self.declared != 0 && u64::from(self.declared) == self.total
    }

    fn set_error(&mut self, error: String) {
        if !self.sealed {
            self.error = Some(error);
        }
    }

    /// Freezes the capture when the record is finished, and returns the body's error. The
    /// capture stays in the request's shared state, where the writer takes it: the record that
    /// goes through the queue stays small.
    pub(crate) fn seal(&mut self) -> Option<&str> {
        self.sealed = true;
        self.error.as_deref()
    }

    /// Hands out what was captured; called once, by the writer, after [`seal`](Self::seal).
    pub(crate) fn take(&mut self) -> CapturedBody {
        CapturedBody {
            bytes: std::mem::take(&mut self.buf).freeze(),
            total: self.total,
            // A body nobody read to its end is only a prefix of what the client sent.
            truncated: self.truncated || !self.ended,
            grpc_messages: self.grpc.as_ref().and_then(if self.ended {
                GrpcFrames::messages
            } else {
                GrpcFrames::messages_so_far
            }),
        }
    }
}

#[cfg(test)]
impl Capture {
    /// A capture of `bytes` read to their end, keeping at most `cap` of them.
    pub(crate) fn read_to_end(bytes: &[u8], cap: usize) -> Self {
        let mut capture = Self::new(cap);
        capture.push(&bytes);
        capture.set_ended();
        capture
    }
}

pin_project! {
    /// The request body as the inner service sees it: the client's body, unchanged, with a capped
    /// copy taken as it is read. Its error is the client body's, boxed (an `axum::Error` is
    /// unwrapped: axum boxes this body's error again, and a body limit's 413 depends on the
    /// wrappers it finds).
    ///
    /// When the layer pre-read a small JSON or form body (so that a handler that rejects the request
    /// without reading it still leaves the body in the record), the frames read ahead are replayed
    /// first, then the rest of the body streams as usual.
    pub struct RequestBody<B: Body> {
        #[pin]
        body: Source<B>,
        replay: Replay<Ahead<B::Data>>,
        replay_error: Option<B::Error>,
        ended: bool,
        shared: Option<Arc<RequestShared>>,
    }

    impl<B: Body> PinnedDrop for RequestBody<B> {
        // A body's end may arrive after its last frame was read (HTTP/2's END_STREAM in an
        // empty frame of its own), and a service may stop reading there (tonic at a message it
        // refuses): the body was captured whole all the same. Only a body dropped before its
        // end was polled pays for the look.
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if *this.ended || this.replay_error.is_some() || !this.replay.is_empty() {
                return;
            }
            if let Some(shared) = this.shared.as_ref()
                && this.body.as_ref().get_ref().is_end_stream()
            {
                lock(&shared.capture).set_ended();
            }
        }
    }
}

pin_project! {
    #[project = SourceProj]
    enum Source<B> {
        Inline { #[pin] body: B },
        // Pre-read bodies are boxed so the response future can poll them and then move them.
        Boxed { body: Pin<Box<B>> },
    }
}

impl<B: Body> Source<B> {
    fn is_end_stream(&self) -> bool {
        match self {
            Source::Inline { body } => body.is_end_stream(),
            Source::Boxed { body } => body.is_end_stream(),
        }
    }
}

impl<B: Body> std::fmt::Debug for RequestBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBody")
            .field("body", &std::any::type_name::<B>())
            .field("replay_frames", &self.replay.iter().count())
            .field("ended", &self.ended)
            .field("audited", &self.shared.is_some())
            .finish()
    }
}

impl<B: Body> RequestBody<B> {
    pub(crate) fn new(body: B, shared: Option<Arc<RequestShared>>) -> Self {
        Self {
            body: Source::Inline { body },
            replay: Replay::Empty,
            replay_error: None,
            ended: false,
            shared,
        }
    }

    pub(crate) fn replaying(pre_read: PreRead<B>, shared: Option<Arc<RequestShared>>) -> Self {
        Self {
            body: Source::Boxed {
                body: pre_read.body,
            },
            replay: pre_read.frames,
            replay_error: pre_read.error,
            ended: pre_read.ended,
            shared,
        }
    }
}

/// The error of a [`RequestBody`]: the client body's own error, boxed.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Boxes a body's error. axum wraps a body's error in an `axum::Error` each time it boxes a body
/// of another type, this one included, and looks through only two such wrappers for a body
/// limit's error to answer 413: unwrapped here, the layer adds no wrapper of its own.
#[cfg(feature = "axum")]
fn boxed_error(error: impl Into<BoxError>) -> BoxError {
    match error.into().downcast::<axum::Error>() {
        Ok(wrapper) => wrapper.into_inner(),
        Err(error) => error,
    }
}

#[cfg(not(feature = "axum"))]
fn boxed_error(error: impl Into<BoxError>) -> BoxError {
    error.into()
}

impl<B> Body for RequestBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        // Replayed frames were captured while they were pre-read.
        if let Some(frame) = this.replay.pop() {
            return Poll::Ready(Some(Ok(frame.into_frame())));
        }
        if let Some(error) = this.replay_error.take() {
            return Poll::Ready(Some(Err(boxed_error(error))));
        }
        if *this.ended {
            return Poll::Ready(None);
        }
        let polled = match this.body.as_mut().project() {
            SourceProj::Inline { body } => ready!(body.poll_frame(cx)),
            SourceProj::Boxed { body } => ready!(body.as_mut().poll_frame(cx)),
        };
        let polled = polled.map(|frame| frame.map_err(boxed_error));
        if let Some(shared) = this.shared {
            let mut capture = lock(&shared.capture);
            match &polled {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        capture.push(data);
                    }
                    // The body's end may come with its last frame (a `Content-Length` used up,
                    // HTTP/2's END_STREAM, trailers): whoever read that frame read the body
                    // whole, though it may never poll the end (a handler streaming the body back
                    // as its response, whose end finishes the record at that frame).
                    if frame.is_trailers() || this.body.as_ref().get_ref().is_end_stream() {
                        capture.set_ended();
                    }
                }
                Some(Err(error)) => capture.set_error(format!("request body error: {error}")),
                None => capture.set_ended(),
            }
        }
        if polled.is_none() {
            *this.ended = true;
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        if !self.replay.is_empty() || self.replay_error.is_some() {
            return false;
        }
        self.ended || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let rest = match &self.body {
            Source::Inline { body } => body.size_hint(),
            Source::Boxed { body } => body.size_hint(),
        };
        if self.ended {
            return SizeHint::with_exact(replayed_len(&self.replay));
        }
        let replayed = replayed_len(&self.replay);
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + replayed);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + replayed);
        }
        hint
    }
}

fn replayed_len<D: Buf>(frames: &Replay<Ahead<D>>) -> u64 {
    frames
        .iter()
        .filter_map(Ahead::data_ref)
        .map(|d| d.remaining() as u64)
        .sum()
}

/// A frame read ahead. Data stays as it came; any other frame (trailers, rare in a small body) is
/// boxed, so that the request body, which the handler's future holds and moves, stays small.
#[derive(Debug)]
pub(crate) enum Ahead<D> {
    Data(D),
    Other(Box<Frame<D>>),
}

impl<D> Ahead<D> {
    fn new(frame: Frame<D>) -> Self {
        match frame.into_data() {
            Ok(data) => Self::Data(data),
            Err(frame) => Self::Other(Box::new(frame)),
        }
    }

    fn into_frame(self) -> Frame<D> {
        match self {
            Self::Data(data) => Frame::data(data),
            Self::Other(frame) => *frame,
        }
    }

    fn data_ref(&self) -> Option<&D> {
        match self {
            Self::Data(data) => Some(data),
            // `new` puts every data frame in `Data`.
            Self::Other(_) => None,
        }
    }
}

/// Frames read ahead, replayed in order. A small body usually arrives in one frame, which is kept
/// without the allocation a `VecDeque` makes on its first push.
#[derive(Debug)]
pub(crate) enum Replay<F> {
    Empty,
    One(F),
    Many(VecDeque<F>),
}

impl<F> Replay<F> {
    fn push(&mut self, frame: F) {
        match self {
            Self::Empty => *self = Self::One(frame),
            Self::Many(frames) => frames.push_back(frame),
            Self::One(_) => {
                if let Self::One(first) = std::mem::replace(self, Self::Empty) {
                    *self = Self::Many(VecDeque::from([first, frame]));
                }
            }
        }
    }

    fn pop(&mut self) -> Option<F> {
        match self {
            Self::Empty => None,
            Self::One(_) => match std::mem::replace(self, Self::Empty) {
                Self::One(frame) => Some(frame),
                _ => None,
            },
            Self::Many(frames) => frames.pop_front(),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Self::Empty => true,
            Self::One(_) => false,
            Self::Many(frames) => frames.is_empty(),
        }
    }

    fn iter(&self) -> impl Iterator<Item = &F> {
        let (one, many) = match self {
            Self::Empty => (None, None),
            Self::One(frame) => (Some(frame), None),
            Self::Many(frames) => (None, Some(frames.iter())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }
}

/// A small body read ahead of the inner service, within a bounded wait.
pub(crate) struct PreRead<B: Body> {
    pub(crate) body: Pin<Box<B>>,
    pub(crate) frames: Replay<Ahead<B::Data>>,
    pub(crate) error: Option<B::Error>,
    pub(crate) ended: bool,
    /// Every byte its `Content-Length` announced was read, its end not yet: over HTTP/2 that
    /// end comes in an empty frame of its own, which a client streaming both ways may send only
    /// once it has the response. The handler reads it, not the pre-read.
    read_to_its_length: bool,
}

impl<B> PreRead<B>
where
    B: Body,
    B::Error: std::fmt::Display,
{
    pub(crate) fn new(body: B) -> Self {
        Self {
            body: Box::pin(body),
            frames: Replay::Empty,
            error: None,
            ended: false,
            read_to_its_length: false,
        }
    }

    /// Reads frames until the body ends or fails, or every byte its `Content-Length` announced
    /// is read; `Pending` while more may come.
    pub(crate) fn poll_read(&mut self, cx: &mut Context<'_>, shared: &RequestShared) -> Poll<()> {
        loop {
            if self.ended || self.read_to_its_length || self.error.is_some() {
                return Poll::Ready(());
            }
            match ready!(self.body.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => {
                    let mut capture = lock(&shared.capture);
                    if let Some(data) = frame.data_ref() {
                        capture.push(data);
                    }
                    self.frames.push(Ahead::new(frame));
                    if self.body.is_end_stream() {
                        self.ended = true;
                        capture.set_ended();
                    } else {
                        self.read_to_its_length = capture.read_to_its_length();
                    }
                }
                Some(Err(error)) => {
                    lock(&shared.capture).set_error(format!("request body error: {error}"));
                    self.error = Some(error);
                }
                None => {
                    self.ended = true;
                    lock(&shared.capture).set_ended();
                }
            }
        }
    }
}

pin_project! {
    /// The response body as the client receives it: the inner body, unchanged, with its end (or
    /// its failure, or an early drop) finishing the request's audit record.
    pub struct ResponseBody<B> {
        // Declared first so that it drops first: the record is submitted before the inner body
        // (and whatever the handler streams from) goes away.
        pending: Option<PendingRecord>,
        #[pin]
        inner: Outgoing<B>,
    }
}

pin_project! {
    #[project = OutgoingProj]
    enum Outgoing<B> {
        Inner { #[pin] body: B },
        // A response the layer made itself (503 under the `Reject` policy).
        Empty,
    }
}

impl<B> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("inner", &std::any::type_name::<B>())
            .field("finished", &self.pending.is_none())
            .finish()
    }
}

impl<B: Body> ResponseBody<B> {
    /// The empty body of a response the layer produced itself.
    pub(crate) fn empty() -> Self {
        Self {
            inner: Outgoing::Empty,
            pending: None,
        }
    }

    pub(crate) fn new(inner: B, mut pending: Option<PendingRecord>) -> Self {
        // hyper never polls a body that says it is empty: finish its record now, before the
        // client can see the response complete. With the context on the response, outer layers
        // may still enrich the record: it is finished when the body is polled or dropped (by
        // HTTP/1 before the response's head is written; by HTTP/2 once the response is queued,
        // so a client may see the response before its record is queued).
        if inner.is_end_stream()
            && let Some(record) = &mut pending
            && !record.layer().config.context_on_response
        {
            // Its length checked: HTTP/2 announces a `Content-Length` as the service set it.
            record.finish_at_end();
            pending = None;
        }
        Self {
            inner: Outgoing::Inner { body: inner },
            pending,
        }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body,
    B::Error: std::fmt::Display,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let OutgoingProj::Inner { mut body } = this.inner.as_mut().project() else {
            return Poll::Ready(None);
        };
        let polled = ready!(body.as_mut().poll_frame(cx));
        if let Some(record) = this.pending {
            match &polled {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        record.add_response_data(data);
                    } else if let Some(trailers) = frame.trailers_ref() {
                        record.on_trailers(trailers);
                        // Trailers are a body's last frame: servers stop polling after them
                        // (hyper's HTTP/2 drops a body then), whether or not it says it has
                        // ended. A body short of its length, or past it, failed even so.
                        record.finish_at_end();
                    }
                }
                Some(Err(error)) => {
                    record.finish_err(format!("response body error: {error}"));
                }
                None => record.finish_at_end(),
            }
            // Callers stop polling once the body says it has ended.
            if body.is_end_stream() {
                record.finish_at_end();
            }
            if record.is_finished() {
                *this.pending = None;
            }
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Outgoing::Inner { body } => body.is_end_stream(),
            Outgoing::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Outgoing::Inner { body } => body.size_hint(),
            Outgoing::Empty => SizeHint::with_exact(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gRPC-Web text request's messages are counted past the capture cap, as a binary one's
    /// are; a body not read to its end keeps the count of what was read.
    #[test]
    fn web_text_request_messages_are_counted_past_the_cap() {
        // An empty message, base64, on a line of its own.
        let text = b"AAAAAAA=\r\n".repeat(1_000);
        let mut capture = Capture::new(64);
        capture.count_grpc_messages(Protocol::WebText);
        for chunk in text.chunks(7) {
            capture.push(&chunk);
        }
        capture.set_ended();
        let body = capture.take();
        assert_eq!((body.grpc_messages, body.truncated), (Some(1_000), true));
        let mut unfinished = Capture::new(64);
        unfinished.count_grpc_messages(Protocol::WebText);
        unfinished.push(&&text[..25]);
        assert_eq!(unfinished.take().grpc_messages, Some(2));
    }

    /// A body read in small frames grows its copy as a `Vec` would, but never past the cap, and
    /// what the queue's budget is charged is the memory the copy holds (found by a probe: a body
    /// of the cap plus one byte held twice the cap).
    #[test]
    fn the_copy_holds_no_more_than_the_cap_and_is_charged_what_it_holds() {
        const CAP: usize = 64 * 1024;
        for (sent, frame) in [(CAP + 1, 1024), (CAP - 1, 3 * 1024), (40 * 1024 + 7, 1000)] {
            let body = vec![b'x'; sent];
            let mut capture = Capture::new(CAP);
            for chunk in body.chunks(frame) {
                capture.push(&chunk);
            }
            let held = capture.buf.capacity();
            assert!(
                held <= CAP,
                "{sent} bytes in frames of {frame}: {held} held"
            );
            assert_eq!(capture.kept(), held, "{sent}: charged");
            capture.set_ended();
            let body = capture.take();
            assert_eq!(body.bytes.len(), sent.min(CAP));
            assert_eq!(body.truncated, sent > CAP);
        }
        // A body in one frame takes just its length.
        let mut whole = Capture::new(CAP);
        whole.push(&&[b'y'; 291][..]);
        assert_eq!((whole.buf.capacity(), whole.kept()), (291, 291));
    }

    /// Found by a probe: a handler that polled its body again after an error got `None` from
    /// hyper, which marked the body ended, so a body cut by a connection error was stored as
    /// whole.
    #[test]
    fn a_body_that_failed_is_cut_however_it_is_read_after() {
        let mut capture = Capture::new(64);
        capture.push(&&b"{\"a\":1234"[..]);
        capture.set_error("connection reset".into());
        capture.set_ended();
        assert!(capture.take().truncated);
    }

    #[test]
    fn replay_gives_back_frames_in_order() {
        for count in 0..5_u8 {
            let mut replay = Replay::Empty;
            for frame in 0..count {
                replay.push(frame);
            }
            assert_eq!(replay.is_empty(), count == 0);
            assert_eq!(
                replay.iter().copied().collect::<Vec<_>>(),
                (0..count).collect::<Vec<_>>()
            );
            for frame in 0..count {
                assert_eq!(replay.pop(), Some(frame), "{count} frames");
            }
            assert_eq!(replay.pop(), None);
            assert!(replay.is_empty());
        }
        // One frame is kept without a queue.
        let mut replay = Replay::Empty;
        replay.push(7_u8);
        assert!(matches!(replay, Replay::One(7)));
    }

    /// axum's wrapper comes off a body's error, and only that one: what is under it, and any
    /// other error, is handed on as it was.
    #[cfg(feature = "axum")]
    #[test]
    fn a_body_error_loses_only_axums_wrapper() {
        #[derive(Debug)]
        struct Limit;
        impl std::fmt::Display for Limit {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("length limit exceeded")
            }
        }
        impl std::error::Error for Limit {}

        let unwrapped = boxed_error(axum::Error::new(Limit));
        assert!(unwrapped.is::<Limit>(), "{unwrapped:?}");
        assert_eq!(unwrapped.to_string(), "length limit exceeded");
        let twice = boxed_error(axum::Error::new(axum::Error::new(Limit)));
        assert!(twice.is::<axum::Error>(), "{twice:?}");
        let other = boxed_error(std::io::Error::other("reset"));
        assert_eq!(other.to_string(), "reset");
        assert!(other.is::<std::io::Error>());
    }
}
