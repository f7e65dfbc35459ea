//! Who made the request: a pluggable extractor on the layer, and (feature `jwt`) a verified
//! bearer token.
//!
//! Three sources fill `user_id` and `tenant_id`, the later winning:
//!
//! 1. a [`JwtIdentity`] (feature `jwt`), checked in the background writer — the request path only
//!    keeps the `Authorization` header — and used only when nothing else named the user;
//! 2. the [`identify`](crate::AuditLayerBuilder::identify) function, run when the request arrives
//!    with its head (headers, and extensions an outer auth layer may have filled);
//! 3. [`AuditContext`](crate::AuditContext) setters called by inner middleware and handlers.
//!
//! # Example
//!
//! ```
//! use tower_audit::Identity;
//!
//! // Trust a header set by an authenticating gateway in front of the service.
//! let identify = |parts: &http::request::Parts| Identity {
//!     user_id: parts.headers.get("x-user").and_then(|v| v.to_str().ok()).map(Into::into),
//!     tenant_id: parts.headers.get("x-tenant").and_then(|v| v.to_str().ok()).map(Into::into),
//! };
//! # let _ = identify;
//! ```

/// The user and tenant of a request, as an extractor finds them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// The authenticated principal.
    pub user_id: Option<String>,
    /// The tenant.
    pub tenant_id: Option<String>,
}

#[cfg(feature = "jwt")]
pub use jwt::JwtIdentity;

#[cfg(feature = "jwt")]
mod jwt {
    use std::fmt;

    use jsonwebtoken::{Algorithm, DecodingKey, Validation};

    use super::Identity;

    /// Reads the user (`sub`) and, optionally, the tenant from a bearer JWT that it **verifies**
    /// with a configured key; an unverified token never names anyone.
    ///
    /// Verification runs in the background writer, off the request path. A request whose token
    /// fails verification is recorded with no user (unless the application set one) and the
    /// reason under `identity_error` in the row's `extra`. Expiry (`exp`) is required and checked,
    /// as `jsonwebtoken`'s [`Validation`] does by default; pass your own `Validation` to
    /// [`new`](Self::new) to check the issuer or audience too.
    ///
    /// ```
    /// use tower_audit::JwtIdentity;
    ///
    /// let jwt = JwtIdentity::hs256(b"a long random secret").tenant_claim("org");
    /// # let _ = jwt;
    /// ```
    #[derive(Clone)]
    pub struct JwtIdentity {
        key: DecodingKey,
        validation: Validation,
        user_claim: String,
        tenant_claim: Option<String>,
    }

    impl fmt::Debug for JwtIdentity {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("JwtIdentity")
                .field("algorithms", &self.validation.algorithms)
                .field("user_claim", &self.user_claim)
                .field("tenant_claim", &self.tenant_claim)
                .finish_non_exhaustive()
        }
    }

    impl JwtIdentity {
        /// Verifies with `key` under `validation` (which names the accepted algorithms).
        pub fn new(key: DecodingKey, validation: Validation) -> Self {
            Self {
                key,
                validation,
                user_claim: "sub".into(),
                tenant_claim: None,
            }
        }

        /// HMAC-SHA256 tokens signed with `secret`.
        pub fn hs256(secret: &[u8]) -> Self {
            Self::new(
                DecodingKey::from_secret(secret),
                Validation::new(Algorithm::HS256),
            )
        }

        /// RSA-SHA256 tokens, checked against a PEM public key.
        ///
        /// # Errors
        ///
        /// When `pem` is not an RSA public key.
        pub fn rs256_pem(pem: &[u8]) -> Result<Self, jsonwebtoken::errors::Error> {
            Ok(Self::new(
                DecodingKey::from_rsa_pem(pem)?,
                Validation::new(Algorithm::RS256),
            ))
        }

        /// The claim that names the user (default `sub`).
        #[must_use]
        pub fn user_claim(mut self, claim: impl Into<String>) -> Self {
            self.user_claim = claim.into();
            self
        }

        /// The claim that names the tenant (default: none).
        #[must_use]
        pub fn tenant_claim(mut self, claim: impl Into<String>) -> Self {
            self.tenant_claim = Some(claim.into());
            self
        }

        /// The identity in a verified `Authorization: Bearer` token; `Err` says why not.
        ///
        /// `authorization` is the header's value as the record kept it: a valid header value, so
        /// with no control character but tab.
        pub(crate) fn identify(&self, authorization: &[u8]) -> Result<Identity, String> {
            let value = std::str::from_utf8(authorization)
                .ok()
                .filter(|value| value.is_ascii())
                .ok_or_else(|| "authorization header is not ASCII".to_owned())?;
            let token = value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
                .ok_or_else(|| "authorization is not a bearer token".to_owned())?
                .trim();
            // A misconfigured crypto provider panics inside jsonwebtoken; the writer must not.
            let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
                    token,
                    &self.key,
                    &self.validation,
                )
            }))
            .map_err(|_| "token verification panicked".to_owned())?
            .map_err(|error| format!("token rejected: {error}"))?;
            let claim = |name: &str| {
                decoded.claims.get(name).and_then(|v| match v {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
            };
            Ok(Identity {
                user_id: claim(&self.user_claim),
                tenant_id: self.tenant_claim.as_deref().and_then(claim),
            })
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn identify_says_why_a_header_names_no_one() {
            let jwt = JwtIdentity::hs256(b"a long random secret");
            let reason = |value: &[u8]| jwt.identify(value).err();
            // UTF-8 that is not ASCII, and obs-text that is not UTF-8.
            for value in [&b"Bearer t\xc3\xa9"[..], b"Bearer t\xe9"] {
                assert_eq!(
                    reason(value).as_deref(),
                    Some("authorization header is not ASCII")
                );
            }
            assert_eq!(
                reason(b"Basic YWxpY2U6c2VjcmV0").as_deref(),
                Some("authorization is not a bearer token")
            );
            let rejected = reason(b"Bearer not.a.jwt").expect("rejected");
            assert!(rejected.starts_with("token rejected: "), "{rejected}");
        }
    }
}
