//! [`AuditContext`]: what handlers and inner middleware add to the record of their request.
//!
//! The layer puts one `AuditContext` into the request's extensions (and, with
//! [`context_on_response`](crate::AuditLayerBuilder::context_on_response), into the response's once
//! the inner service has answered). Anything set through it lands in the request's row, even when
//! the handler fails afterwards, because the row is only finished when the response ends. What is
//! set after that (from a task that kept the handle) is ignored.
//!
//! # Example
//!
//! ```
//! use axum::{Extension, Router, routing::post};
//! use tower_audit::AuditContext;
//!
//! async fn transfer(Extension(audit): Extension<AuditContext>) -> &'static str {
//!     audit.set_user("alice");
//!     audit.set_tenant("acme");
//!     audit.set_action("transfer");
//!     audit.set_resource("account/42");
//!     audit.insert_extra("amount", 125);
//!     "ok"
//! }
//!
//! let app: Router = Router::new().route("/transfer", post(transfer));
//! # let _ = app;
//! ```
//!
//! Where no `AuditContext` is present (the request was not audited), `Extension<AuditContext>`
//! rejects; use `Option<Extension<AuditContext>>` in handlers that also run un-audited.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use crate::body::Capture;
use crate::record::RequestFacts;

/// A cheap handle (one `Arc`) to the audit record of the current request.
///
/// Obtain it from the request extensions (`req.extensions().get::<AuditContext>()`, or axum's
/// `Extension<AuditContext>` extractor) or from the response extensions. Every setter may be called
/// any number of times; the last value wins.
#[derive(Clone)]
pub struct AuditContext {
    pub(crate) shared: Arc<RequestShared>,
}

impl std::fmt::Debug for AuditContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditContext")
            .field("fields", &*lock(&self.shared.fields))
            .field("skipped", &self.is_skipped())
            .finish()
    }
}

/// The state one request shares between the layer, its body wrappers, its `AuditContext`s and,
/// once finished, its record.
#[derive(Debug)]
pub(crate) struct RequestShared {
    pub(crate) fields: Mutex<ContextFields>,
    pub(crate) capture: Mutex<Capture>,
    skip: AtomicBool,
    /// The record was finished: later settings are not its record's and are ignored. A flag
    /// rather than a field behind the lock: finishing stores it without taking the lock.
    sealed: AtomicBool,
    /// What the layer learned when the request arrived; never changed after. Kept here rather
    /// than in an allocation of its own: the record takes this `Arc` to the writer.
    pub(crate) facts: RequestFacts,
    /// The context of an audit layer outside this one, which this one's took the place of in
    /// the request's extensions: what is set here is set there too.
    outer: OnceLock<AuditContext>,
}

impl RequestShared {
    #[inline]
    pub(crate) fn new(capture: Capture, facts: RequestFacts) -> Arc<Self> {
        Arc::new(Self {
            fields: Mutex::new(ContextFields::default()),
            capture: Mutex::new(capture),
            skip: AtomicBool::new(false),
            sealed: AtomicBool::new(false),
            facts,
            outer: OnceLock::new(),
        })
    }

    pub(crate) fn is_skipped(&self) -> bool {
        self.skip.load(Ordering::Relaxed)
    }

    /// Takes `outer`, the context this request's replaced in its extensions (an audit layer
    /// outside this one), as the one its settings go to as well.
    pub(crate) fn nest_in(&self, outer: AuditContext) {
        let _ = self.outer.set(outer);
    }

    /// Ignores what is set from now on: called when the record is finished. A setter that holds
    /// the lock already may still land; one that takes it after the writer has taken the
    /// fields sees the flag (the queue orders this store before the writer's take).
    pub(crate) fn seal_fields(&self) {
        self.sealed.store(true, Ordering::Release);
    }
}

/// What handlers set; moved into the record when it is finished.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct ContextFields {
    pub(crate) user_id: Option<String>,
    pub(crate) tenant_id: Option<String>,
    pub(crate) action: Option<String>,
    pub(crate) resource: Option<String>,
    pub(crate) extra: Option<serde_json::Map<String, serde_json::Value>>,
}

impl AuditContext {
    pub(crate) fn new(shared: Arc<RequestShared>) -> Self {
        Self { shared }
    }

    /// Applies `set` unless the record is finished already.
    fn update(&self, set: impl FnOnce(&mut ContextFields)) {
        let mut fields = lock(&self.shared.fields);
        if !self.shared.sealed.load(Ordering::Acquire) {
            set(&mut fields);
        }
    }

    /// Applies `set` with `value` here and in the contexts of the audit layers outside this one
    /// (two layers on one request, each with its own writer: found by a probe, the outer row
    /// was anonymous and kept requests the handler skipped).
    fn set_everywhere<T: Clone>(&self, value: T, set: impl Fn(&mut ContextFields, T)) {
        let mut outer = self.shared.outer.get();
        while let Some(context) = outer {
            context.update(|fields| set(fields, value.clone()));
            outer = context.shared.outer.get();
        }
        self.update(|fields| set(fields, value));
    }

    /// Adds a field to this record's `extra` alone: a note of this layer's own.
    pub(crate) fn note_extra(&self, key: &str, value: serde_json::Value) {
        self.update(|fields| {
            fields
                .extra
                .get_or_insert_with(serde_json::Map::new)
                .insert(key.to_owned(), value);
        });
    }

    /// Sets the authenticated principal (`user_id` column). An empty user names no one: it
    /// leaves the user set before (by [`identify`](crate::AuditLayerBuilder::identify) or
    /// another middleware) or a verified token's in the row.
    pub fn set_user(&self, user_id: impl Into<String>) {
        let user_id = user_id.into();
        if user_id.is_empty() {
            return;
        }
        self.set_everywhere(user_id, |fields, user_id| fields.user_id = Some(user_id));
    }

    /// Sets the tenant (`tenant_id` column). An empty tenant names none, and leaves the one
    /// set before, as an empty user does.
    pub fn set_tenant(&self, tenant_id: impl Into<String>) {
        let tenant_id = tenant_id.into();
        if tenant_id.is_empty() {
            return;
        }
        self.set_everywhere(tenant_id, |fields, tenant_id| {
            fields.tenant_id = Some(tenant_id);
        });
    }

    /// Sets what the request did in domain terms, such as `order.create` (`action` column).
    pub fn set_action(&self, action: impl Into<String>) {
        self.set_everywhere(action.into(), |fields, action| fields.action = Some(action));
    }

    /// Sets what the request acted on, such as `order/17` (`resource` column).
    pub fn set_resource(&self, resource: impl Into<String>) {
        self.set_everywhere(resource.into(), |fields, resource| {
            fields.resource = Some(resource);
        });
    }

    /// Adds a free-form field to the `extra` JSON object of the row.
    ///
    /// Values pass through the same redaction as request bodies before they are stored. The
    /// writer owns two keys:
    /// [`REQUEST_BODY_ALTERED`](crate::entity::audit_log::REQUEST_BODY_ALTERED), whose note
    /// replaces a field of that name, and, with the `integrity` feature, `chain_replaced`
    /// (`integrity::CHAIN_REPLACED`), which is left out of the row.
    pub fn insert_extra(&self, key: impl Into<String>, value: impl Into<serde_json::Value>) {
        self.set_everywhere((key.into(), value.into()), |fields, (key, value)| {
            fields
                .extra
                .get_or_insert_with(serde_json::Map::new)
                .insert(key, value);
        });
    }

    /// The user set so far, if any: here, or else by an audit layer outside this one (its
    /// [`identify`](crate::AuditLayerBuilder::identify)).
    pub fn user(&self) -> Option<String> {
        let own = lock(&self.shared.fields).user_id.clone();
        own.or_else(|| self.shared.outer.get().and_then(AuditContext::user))
    }

    /// The tenant set so far, if any: here, or else by an audit layer outside this one.
    pub fn tenant(&self) -> Option<String> {
        let own = lock(&self.shared.fields).tenant_id.clone();
        own.or_else(|| self.shared.outer.get().and_then(AuditContext::tenant))
    }

    /// Marks the request so that no row is written for it (health probes, noisy polling), by
    /// this audit layer and by any outside it.
    pub fn skip(&self) {
        let mut context = Some(self);
        while let Some(current) = context {
            current.shared.skip.store(true, Ordering::Relaxed);
            context = current.shared.outer.get();
        }
    }

    /// Whether [`skip`](Self::skip) was called.
    pub fn is_skipped(&self) -> bool {
        self.shared.is_skipped()
    }
}

/// Locks a mutex, ignoring poisoning: the data behind our mutexes stays consistent even if a
/// handler panicked while holding the lock, and a panic here would be a panic in the request path.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
