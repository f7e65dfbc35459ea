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
    use std::collections::HashMap;
    use std::fmt;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};

    use super::Identity;
    use crate::context::lock;

    /// Reads the user (`sub`) and, optionally, the tenant from a bearer JWT that it **verifies**
    /// with a configured key; an unverified token never names anyone.
    ///
    /// Verification runs in the background writer, off the request path (or, while the database
    /// is away and records go to the journal, where the record is journaled: the token itself
    /// is never written anywhere). A request whose token fails verification is recorded with no
    /// user (unless the application set one) and the reason under `identity_error` in the row's
    /// `extra`; so is one whose verified token has no user claim (a non-empty string or an
    /// integer of at most 64 bits), or whose user claim is another number (`1.0`, `1e30`:
    /// stored rounded, two such numbers would name the same user), an array, an object or a
    /// boolean. A tenant claim of those kinds names no tenant: the user stands, and the row
    /// says why. A token whose header names critical extensions (`crit`) is rejected: none is
    /// understood (RFC 7515 §4.1.11). One key verifies every token, whatever its `kid`.
    ///
    /// The writer keeps the verdicts of the tokens it saw lately (256 to 512 of them, of at
    /// most 4 KiB), so a client's token is verified once for all its requests; while more than
    /// half the queue's capacity waits, a token not seen lately is not verified at all unless
    /// its key is an HMAC secret (the row says so): a flood of new tokens, which a bogus RS256
    /// signature makes at no cost, must not slow the writer until the queue drops records.
    ///
    /// | check | default | set with |
    /// | --- | --- | --- |
    /// | signature and algorithm | HS256 ([`hs256`](Self::hs256)) or RS256 ([`rs256_pem`](Self::rs256_pem)) | [`new`](Self::new) |
    /// | `exp`: required, and not past when the **request arrived** (60 s of leeway) | on | [`new`](Self::new)'s [`Validation`] |
    /// | `nbf`: not in the future when the request arrived | off | [`new`](Self::new)'s [`Validation`] |
    /// | `aud`: a token that has one must name this service | no audience named: such tokens are rejected | [`audience`](Self::audience) |
    /// | `iss` | not checked | [`new`](Self::new)'s [`Validation`] |
    ///
    /// Times are checked against the request's arrival, not the moment the writer gets to the
    /// record: a record that waited in the queue or the journal through a database outage keeps
    /// the user its token named when it was used.
    ///
    /// An HMAC secret must be at least as long as the algorithm's hash (RFC 7518 §3.2: 32 bytes
    /// for HS256, 48 for HS384, 64 for HS512): [`build`](crate::AuditLayerBuilder::build) refuses
    /// a shorter one with [`Error::Config`](crate::Error::Config), as anyone who guessed it could
    /// sign a token naming any user.
    ///
    /// ```
    /// use tower_audit::JwtIdentity;
    ///
    /// let jwt = JwtIdentity::hs256(b"32 random bytes from your vault!")
    ///     .audience(["https://api.example.com"])
    ///     .tenant_claim("org");
    /// # let _ = jwt;
    /// ```
    pub struct JwtIdentity {
        key: DecodingKey,
        /// The caller's checks, with `exp` and `nbf` left to [`Times`]: `jsonwebtoken` compares
        /// them with the clock when it decodes, which is when the writer gets to the record.
        validation: Validation,
        times: Times,
        user_claim: String,
        tenant_claim: Option<String>,
        /// What the tokens seen lately verified to, and whether the writer is behind.
        verdicts: Verdicts,
    }

    impl Clone for JwtIdentity {
        /// A clone verifies anew: it may be given other checks than the tokens seen were
        /// verified under.
        fn clone(&self) -> Self {
            Self {
                key: self.key.clone(),
                validation: self.validation.clone(),
                times: self.times,
                user_claim: self.user_claim.clone(),
                tenant_claim: self.tenant_claim.clone(),
                verdicts: Verdicts::default(),
            }
        }
    }

    /// A token's claims once its signature and its checks other than the times passed
    /// (those depend on when the request arrived), or why it was rejected.
    type Verdict = Result<Arc<serde_json::Map<String, serde_json::Value>>, String>;

    /// The verdicts of the tokens seen lately, in two generations of at most
    /// [`VERDICTS_PER_GENERATION`]: a token found in either is not verified again, and one found
    /// in the older moves to the newer; when the newer is full, it becomes the older and the
    /// older is let go. A client's token is sent with each of its requests, and an RS256 or
    /// ES256 signature costs the writer 100 to 500 µs where the rest of a row costs some 10.
    ///
    /// Tokens are the keys, whole (a shorter hash of them could be made to collide), and only
    /// those of at most [`MAX_CACHED_TOKEN`] bytes are kept: at most 2 × 256 × 4 KiB, 2 MiB.
    #[derive(Default)]
    struct Verdicts {
        generations: Mutex<[HashMap<Box<str>, Verdict>; 2]>,
        /// The writer's queue holds more than half its capacity: a token not seen lately is
        /// not verified (see [`JwtIdentity::set_behind`]).
        behind: AtomicBool,
    }

    const VERDICTS_PER_GENERATION: usize = 256;
    const MAX_CACHED_TOKEN: usize = 4096;

    impl Verdicts {
        fn get(&self, token: &str) -> Option<Verdict> {
            let mut generations = lock(&self.generations);
            let [newer, older] = &mut *generations;
            if let Some(verdict) = newer.get(token) {
                return Some(verdict.clone());
            }
            let (token, verdict) = older.remove_entry(token)?;
            Self::insert_into(&mut generations, token, verdict.clone());
            Some(verdict)
        }

        fn insert(&self, token: &str, verdict: Verdict) {
            if token.len() <= MAX_CACHED_TOKEN {
                Self::insert_into(&mut lock(&self.generations), token.into(), verdict);
            }
        }

        fn insert_into(
            generations: &mut [HashMap<Box<str>, Verdict>; 2],
            token: Box<str>,
            verdict: Verdict,
        ) {
            if generations[0].len() >= VERDICTS_PER_GENERATION {
                generations.swap(0, 1);
                generations[0].clear();
            }
            generations[0].insert(token, verdict);
        }
    }

    /// The time checks of a [`Validation`], made against the request's arrival.
    #[derive(Clone, Copy, Debug)]
    struct Times {
        exp: bool,
        nbf: bool,
        leeway: u64,
        reject_expiring_in_less_than: u64,
    }

    impl Times {
        fn take_from(validation: &mut Validation) -> Self {
            let times = Self {
                exp: validation.validate_exp,
                nbf: validation.validate_nbf,
                leeway: validation.leeway,
                reject_expiring_in_less_than: validation.reject_tokens_expiring_in_less_than,
            };
            validation.validate_exp = false;
            validation.validate_nbf = false;
            validation.reject_tokens_expiring_in_less_than = 0;
            times
        }

        /// `jsonwebtoken`'s rules (`validation.rs`), with the arrival's Unix time for the clock.
        ///
        /// A NumericDate may have a fraction (RFC 7519 §2; PyJWT's `time.time()`, JavaScript's
        /// `Date.now() / 1000`): any finite number from 0 to below 2^64 is a time, as
        /// `jsonwebtoken` takes it, and is compared as it is rather than rounded.
        fn check(
            self,
            claims: &serde_json::Map<String, serde_json::Value>,
            arrived: i64,
        ) -> Result<(), String> {
            /// 2^64, exactly: the first number `jsonwebtoken` does not take as a time.
            const TOO_LATE: f64 = 18_446_744_073_709_551_616.0;
            // Exact: Unix seconds are far below 2^53.
            let (arrived, leeway, reject) = (
                u64::try_from(arrived).unwrap_or(0) as f64,
                self.leeway as f64,
                self.reject_expiring_in_less_than as f64,
            );
            let time = |name: &str, checked: bool| match claims.get(name) {
                None => Ok(None),
                Some(value) => match value.as_f64().filter(|at| (0.0..TOO_LATE).contains(at)) {
                    Some(at) => Ok(Some(at)),
                    None if checked => Err(format!("token rejected: malformed `{name}` claim")),
                    None => Ok(None),
                },
            };
            if !self.exp && !self.nbf {
                // As `jsonwebtoken`: no time check at all.
                return Ok(());
            }
            let exp = time("exp", self.exp)?;
            if let Some(exp) = exp {
                if exp < reject {
                    return Err("token rejected: InvalidToken".to_owned());
                }
                if self.exp && exp - reject < (arrived - leeway).max(0.0) {
                    return Err(
                        "token rejected: ExpiredSignature (expired before the request arrived)"
                            .to_owned(),
                    );
                }
            }
            if let Some(nbf) = time("nbf", self.nbf)?
                && self.nbf
                && nbf > arrived + leeway
            {
                return Err(
                    "token rejected: ImmatureSignature (not yet valid when the request arrived)"
                        .to_owned(),
                );
            }
            Ok(())
        }
    }

    impl fmt::Debug for JwtIdentity {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("JwtIdentity")
                .field("algorithms", &self.validation.algorithms)
                .field("audience", &self.validation.aud)
                .field("times", &self.times)
                .field("user_claim", &self.user_claim)
                .field("tenant_claim", &self.tenant_claim)
                .finish_non_exhaustive()
        }
    }

    impl JwtIdentity {
        /// Verifies with `key` under `validation` (which names the accepted algorithms).
        ///
        /// `validation`'s `exp` and `nbf` checks (with its `leeway` and
        /// `reject_tokens_expiring_in_less_than`) are made against the time the request arrived.
        pub fn new(key: DecodingKey, mut validation: Validation) -> Self {
            let times = Times::take_from(&mut validation);
            Self {
                key,
                validation,
                times,
                user_claim: "sub".into(),
                tenant_claim: None,
                verdicts: Verdicts::default(),
            }
        }

        /// HMAC-SHA256 tokens signed with `secret`, which must hold at least 32 bytes (RFC 7518
        /// §3.2); [`build`](crate::AuditLayerBuilder::build) refuses a shorter one.
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

        /// The audiences this service answers to: a token with an `aud` claim names its user
        /// only if the claim holds one of them.
        ///
        /// Identity providers (Auth0, Keycloak, Entra ID, Google) put an `aud` in every token.
        /// Without this setting such tokens are rejected (`token rejected: InvalidAudience` under
        /// `identity_error`), as RFC 7519 asks of a service that does not know its own audience.
        /// Tokens without `aud` are accepted either way; make the claim required through
        /// [`new`](Self::new)'s [`Validation`].
        #[must_use]
        pub fn audience<I, A>(mut self, audiences: I) -> Self
        where
            I: IntoIterator<Item = A>,
            A: ToString,
        {
            let audiences: Vec<String> = audiences.into_iter().map(|a| a.to_string()).collect();
            self.validation.set_audience(&audiences);
            self.validation.validate_aud = true;
            self
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

        /// Why the key cannot be used, checked when the layer is built: an HMAC secret shorter
        /// than the hash of an algorithm it verifies (RFC 7518 §3.2), which anyone could guess
        /// and then sign tokens naming any user. The rule is the RFC's, per algorithm, rather
        /// than one 32-byte floor: that is what "a key of the same size as the hash output"
        /// asks, and what PyJWT and jose4j check.
        pub(crate) fn weak_key(&self) -> Option<String> {
            if self.key.family() != AlgorithmFamily::Hmac {
                return None;
            }
            let len = self.key.try_get_as_bytes().map_or(0, <[u8]>::len);
            let (algorithm, needed) = self
                .validation
                .algorithms
                .iter()
                .filter_map(|&algorithm| Some((algorithm, hmac_key_bytes(algorithm)?)))
                .max_by_key(|&(_, needed)| needed)?;
            (len < needed).then(|| {
                format!(
                    "the JWT secret holds {len} bytes; {algorithm:?} needs at least {needed} \
                     (RFC 7518 §3.2), or anyone could guess it and sign tokens naming any user"
                )
            })
        }

        /// The claim that names the user.
        pub(crate) fn user_claim_name(&self) -> &str {
            &self.user_claim
        }

        /// Whether the writer is behind: its queue holds more than half its capacity. Then a
        /// token not seen lately ([`Verdicts`]) is not verified unless its key is an HMAC
        /// secret, and its row says so: a flood of requests with new tokens (a bogus RS256
        /// signature costs no key, and its check 150 µs) would otherwise slow the writer until
        /// the queue dropped records.
        pub(crate) fn set_behind(&self, behind: bool) {
            self.verdicts.behind.store(behind, Ordering::Relaxed);
        }

        /// The identity in a verified `Authorization: Bearer` token of a request that arrived at
        /// `arrived` (Unix seconds), with what keeps a verified token from naming a tenant
        /// (its tenant claim is no string or integer); `Err` says why the token names no one.
        ///
        /// `authorization` is the header's value as the record kept it: a valid header value, so
        /// with no control character but tab.
        pub(crate) fn identify(
            &self,
            authorization: &[u8],
            arrived: i64,
        ) -> Result<(Identity, Option<String>), String> {
            let value = std::str::from_utf8(authorization)
                .ok()
                .filter(|value| value.is_ascii())
                .ok_or_else(|| "authorization header is not ASCII".to_owned())?;
            let token = bearer_token(value)
                .ok_or_else(|| "authorization is not a bearer token".to_owned())?;
            let claims = match self.verdicts.get(token) {
                Some(verdict) => verdict?,
                // An HMAC costs the writer some 2 µs, a row's fifth: verified all the same.
                None if self.verdicts.behind.load(Ordering::Relaxed)
                    && self.key.family() != AlgorithmFamily::Hmac =>
                {
                    return Err("token not verified: the writer was behind, and had not \
                                seen this token lately"
                        .to_owned());
                }
                None => {
                    let verdict = self.verify(token);
                    self.verdicts.insert(token, verdict.clone());
                    verdict?
                }
            };
            self.times.check(&claims, arrived)?;
            let user_id = claim(&claims, &self.user_claim)?;
            let (tenant_id, note) = match self.tenant_claim.as_deref().map(|c| claim(&claims, c)) {
                None => (None, None),
                Some(Ok(tenant)) => (tenant, None),
                Some(Err(reason)) => (None, Some(reason)),
            };
            Ok((Identity { user_id, tenant_id }, note))
        }

        /// The token's claims if its signature and the checks other than its times pass.
        fn verify(&self, token: &str) -> Verdict {
            // A misconfigured crypto provider panics inside jsonwebtoken; the writer must not.
            let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                // RFC 7515 §4.1.11: a token whose header names extensions that must be
                // understood (`crit`) is rejected by a recipient that understands none;
                // `jsonwebtoken` reads the header and ignores the list.
                if jsonwebtoken::decode_header(token).is_ok_and(|header| header.crit.is_some()) {
                    return Ok(Err(
                        "token rejected: its header names extensions that must \
                                   be understood (`crit`), and none is"
                            .to_owned(),
                    ));
                }
                jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
                    token,
                    &self.key,
                    &self.validation,
                )
                .map(Ok)
            }))
            .map_err(|_| "token verification panicked".to_owned())?
            .map_err(|error| rejection(&error))?;
            Ok(Arc::new(decoded?.claims))
        }
    }

    /// The user or tenant a verified token's claim `name` names. An empty claim names no one:
    /// `""` is no user to look up. Nor does a number that is not an integer held exactly: `1.0`,
    /// or one past 64 bits, read as the nearest double, so that distinct numbers would be
    /// stored as one; nor an array, object or boolean (a list of groups is no tenant), which
    /// is said rather than passed over.
    fn claim(
        claims: &serde_json::Map<String, serde_json::Value>,
        name: &str,
    ) -> Result<Option<String>, String> {
        use serde_json::Value;
        let kind = match claims.get(name) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(s)) => return Ok(Some(s.clone()).filter(|s| !s.is_empty())),
            Some(Value::Number(n)) if n.is_u64() || n.is_i64() => return Ok(Some(n.to_string())),
            Some(Value::Number(_)) => "a number that is not a 64-bit integer",
            Some(Value::Bool(_)) => "a boolean",
            Some(Value::Array(_)) => "an array",
            Some(Value::Object(_)) => "an object",
        };
        Err(format!(
            "token verified, but its `{name}` claim is {kind}, which names no one"
        ))
    }

    /// The least an HMAC secret for `algorithm` must hold, in bytes: its hash's output (RFC 7518
    /// §3.2). `None` for an algorithm that is not HMAC.
    fn hmac_key_bytes(algorithm: Algorithm) -> Option<usize> {
        match algorithm {
            Algorithm::HS256 => Some(32),
            Algorithm::HS384 => Some(48),
            Algorithm::HS512 => Some(64),
            _ => None,
        }
    }

    /// The most of a rejection's reason stored under `identity_error`, in bytes: the reasons
    /// written here are under 100; the rest is what a library's message might quote.
    const REASON_BYTES: usize = 255;

    /// Why `jsonwebtoken` rejected a token, quoting none of it. Its JSON errors quote what the
    /// token's header held (`unknown variant `<any text>``: a bogus `alg` the sender chose, as
    /// long as the header), and its Base64 errors a byte of it; those are stated by kind and
    /// position only. Every other message is the library's own text, cut to [`REASON_BYTES`].
    fn rejection(error: &jsonwebtoken::errors::Error) -> String {
        use jsonwebtoken::errors::ErrorKind;
        let reason = match error.kind() {
            ErrorKind::Json(json) => format!(
                "token rejected: JSON error: {:?} error at line {} column {}",
                json.classify(),
                json.line(),
                json.column()
            ),
            ErrorKind::Base64(_) => "token rejected: Base64 error: not base64url".to_owned(),
            ErrorKind::Utf8(_) => "token rejected: UTF-8 error".to_owned(),
            _ => format!("token rejected: {error}"),
        };
        cut_reason(reason)
    }

    /// At most [`REASON_BYTES`] of `reason`, cut on a character boundary, with the crate's
    /// truncation note.
    fn cut_reason(mut reason: String) -> String {
        if reason.len() <= REASON_BYTES {
            return reason;
        }
        let total = reason.len();
        reason.truncate(reason.floor_char_boundary(REASON_BYTES));
        reason.push_str(&format!(" …[truncated, {total} bytes total]"));
        reason
    }

    /// The token of a `Bearer` credential. The scheme is case-insensitive (RFC 9110 §11.1) and
    /// may be followed by more than one space.
    fn bearer_token(value: &str) -> Option<&str> {
        let (scheme, token) = value.split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        const SECRET: &[u8] = b"a long random secret of 32 bytes";
        const NOW: i64 = 1_800_000_000;

        fn token(claims: &serde_json::Value) -> String {
            let key = jsonwebtoken::EncodingKey::from_secret(SECRET);
            jsonwebtoken::encode(&jsonwebtoken::Header::default(), claims, &key).expect("token")
        }

        fn user(jwt: &JwtIdentity, header: &str, arrived: i64) -> Result<Option<String>, String> {
            jwt.identify(header.as_bytes(), arrived)
                .map(|(identity, _)| identity.user_id)
        }

        /// Base64url without padding, as JWTs are written.
        fn b64url(bytes: &[u8]) -> String {
            crate::test_util::base64url(bytes, false)
        }

        /// Found by review: `jsonwebtoken`'s message for a bogus `alg` quotes it whole, so a
        /// sender could write any text (a copy of a real token's signature and claims, 8 KiB
        /// of it) into `identity_error`.
        #[test]
        fn a_rejection_quotes_nothing_of_the_token() {
            let jwt = JwtIdentity::hs256(SECRET);
            let real = token(&serde_json::json!({"sub": "alice", "exp": NOW + 60}));
            let mut parts = real.split('.').skip(1);
            let (claims, signature) = (parts.next().unwrap(), parts.next().unwrap());
            let alg = format!("{signature}.{claims}{}", "A".repeat(8 << 10));
            let header = b64url(
                serde_json::json!({"alg": alg, "typ": "JWT"})
                    .to_string()
                    .as_bytes(),
            );
            let forged = format!("Bearer {header}.{claims}.{signature}");
            let reason = jwt.identify(forged.as_bytes(), NOW).unwrap_err();
            assert!(
                reason.starts_with("token rejected: JSON error: Data error at line 1 column "),
                "{reason}"
            );
            assert!(reason.len() <= REASON_BYTES, "{reason}");
            for part in [&signature[..8], &claims[..8], "AAAA"] {
                assert!(!reason.contains(part), "{part} in {reason}");
            }
            // A byte that is not base64url is not quoted either.
            let reason = jwt.identify(b"Bearer e%J.e%J.sig", NOW).unwrap_err();
            assert_eq!(reason, "token rejected: Base64 error: not base64url");
        }

        /// Found by a probe: a flood of requests with new tokens (a bogus RS256 signature
        /// costs its sender nothing, its check the writer 150 µs) slowed the writer until
        /// the queue dropped records. A token seen lately is not verified again, and while
        /// the writer is behind, one not seen lately is not verified at all; the times of a
        /// token seen before are still checked against each request's arrival.
        #[test]
        fn tokens_seen_lately_are_not_verified_again_and_none_while_behind() {
            let jwt = JwtIdentity::hs256(SECRET);
            let seen = format!(
                "Bearer {}",
                token(&serde_json::json!({ "sub": "alice", "exp": NOW }))
            );
            assert_eq!(user(&jwt, &seen, NOW), Ok(Some("alice".into())));
            let forged = format!("{}x", &seen[..seen.len() - 1]);
            let rejected = user(&jwt, &forged, NOW).expect_err("forged");
            jwt.set_behind(true);
            assert_eq!(user(&jwt, &seen, NOW), Ok(Some("alice".into())));
            let expired = user(&jwt, &seen, NOW + 61).expect_err("expired");
            assert!(expired.contains("ExpiredSignature"), "{expired}");
            assert_eq!(user(&jwt, &forged, NOW), Err(rejected));
            // An HMAC is cheap: verified while behind too.
            let new = format!(
                "Bearer {}",
                token(&serde_json::json!({ "sub": "bob", "exp": NOW }))
            );
            assert_eq!(user(&jwt, &new, NOW), Ok(Some("bob".into())));
            // An RS256 signature is not, unless seen lately.
            let rs256 =
                JwtIdentity::rs256_pem(include_bytes!("../tests/fixtures/jwt_rs256_public.pem"))
                    .expect("public key");
            let private = jsonwebtoken::EncodingKey::from_rsa_pem(include_bytes!(
                "../tests/fixtures/jwt_rs256_private.pem"
            ))
            .expect("private key");
            let signed = |sub: &str| {
                let claims = serde_json::json!({ "sub": sub, "exp": NOW });
                let header = jsonwebtoken::Header::new(Algorithm::RS256);
                let token = jsonwebtoken::encode(&header, &claims, &private).expect("token");
                format!("Bearer {token}")
            };
            let (dave, erin) = (signed("dave"), signed("erin"));
            assert_eq!(user(&rs256, &dave, NOW), Ok(Some("dave".into())));
            rs256.set_behind(true);
            assert_eq!(user(&rs256, &dave, NOW), Ok(Some("dave".into())));
            assert_eq!(
                user(&rs256, &erin, NOW),
                Err(
                    "token not verified: the writer was behind, and had not seen this token \
                     lately"
                        .into()
                )
            );
            // A clone may be given other checks: it verifies anew.
            let clone = jwt.clone().audience(["https://api.example.com"]);
            clone.set_behind(false);
            let audience = format!(
                "Bearer {}",
                token(&serde_json::json!({ "sub": "carol", "exp": NOW, "aud": "other" }))
            );
            assert!(user(&jwt, &audience, NOW).is_err());
            jwt.set_behind(false);
            assert!(user(&clone, &audience, NOW).is_err());
            // Two generations: a token used again is kept, as many new ones come.
            for n in 0..3 * VERDICTS_PER_GENERATION {
                let other = token(&serde_json::json!({ "sub": format!("u{n}"), "exp": NOW }));
                user(&jwt, &format!("Bearer {other}"), NOW).expect("verified");
                if n % 100 == 0 {
                    user(&jwt, &seen, NOW).expect("verified");
                }
            }
            jwt.set_behind(true);
            assert_eq!(user(&jwt, &seen, NOW), Ok(Some("alice".into())));
            let sizes = lock(&jwt.verdicts.generations).each_ref().map(HashMap::len);
            assert!(
                sizes.iter().all(|&n| n <= VERDICTS_PER_GENERATION),
                "{sizes:?}"
            );
        }

        /// Found by a probe: RFC 7515 §4.1.11 asks that a token whose header names critical
        /// extensions the recipient does not understand be rejected; `jsonwebtoken` ignores
        /// the list.
        #[test]
        fn a_token_with_critical_extensions_is_rejected() {
            let jwt = JwtIdentity::hs256(SECRET);
            let key = jsonwebtoken::EncodingKey::from_secret(SECRET);
            let claims = serde_json::json!({ "sub": "alice", "exp": NOW });
            for crit in [
                vec!["exp-policy".to_owned()],
                vec!["b64".to_owned()],
                vec![],
            ] {
                let header = jsonwebtoken::Header {
                    crit: Some(crit.clone()),
                    ..jsonwebtoken::Header::default()
                };
                let signed = jsonwebtoken::encode(&header, &claims, &key).expect("token");
                let reason = user(&jwt, &format!("Bearer {signed}"), NOW).expect_err("crit");
                assert!(reason.contains("`crit`"), "{crit:?}: {reason}");
            }
        }

        /// Found by a probe: a tenant claim that is an array, an object or a boolean (a list
        /// of groups) named no tenant and said nothing; a number that is not an integer
        /// rejected the token, its user with it. The user stands, and the row says why there
        /// is no tenant.
        #[test]
        fn a_tenant_claim_of_another_kind_keeps_the_user_and_says_why() {
            let jwt = JwtIdentity::hs256(SECRET).tenant_claim("org");
            let identify = |org: serde_json::Value| {
                let claims = serde_json::json!({ "sub": "alice", "org": org, "exp": NOW });
                jwt.identify(format!("Bearer {}", token(&claims)).as_bytes(), NOW)
                    .expect("verified")
            };
            for (org, kind) in [
                (serde_json::json!(["a", "b"]), "an array"),
                (serde_json::json!({"id": "a"}), "an object"),
                (serde_json::json!(true), "a boolean"),
                (
                    serde_json::json!(2.5),
                    "a number that is not a 64-bit integer",
                ),
            ] {
                let (identity, note) = identify(org.clone());
                assert_eq!(identity.user_id.as_deref(), Some("alice"), "{org}");
                assert_eq!(identity.tenant_id, None, "{org}");
                assert_eq!(
                    note,
                    Some(format!(
                        "token verified, but its `org` claim is {kind}, which names no one"
                    )),
                    "{org}"
                );
            }
            for (org, tenant) in [
                (serde_json::json!("acme"), Some("acme")),
                (serde_json::json!(42), Some("42")),
                (serde_json::json!(""), None),
                (serde_json::Value::Null, None),
            ] {
                let (identity, note) = identify(org.clone());
                assert_eq!(identity.tenant_id.as_deref(), tenant, "{org}");
                assert_eq!(note, None, "{org}");
            }
        }

        #[test]
        fn long_reasons_are_cut_with_a_note() {
            let reason = format!("{}\u{e9}tail", "r".repeat(REASON_BYTES - 1));
            assert_eq!(
                cut_reason(reason.clone()),
                format!(
                    "{} …[truncated, {} bytes total]",
                    "r".repeat(REASON_BYTES - 1),
                    reason.len()
                )
            );
            let short = "token rejected: InvalidSignature".to_owned();
            assert_eq!(cut_reason(short.clone()), short);
        }

        #[test]
        fn identify_says_why_a_header_names_no_one() {
            let jwt = JwtIdentity::hs256(SECRET);
            let reason = |value: &[u8]| jwt.identify(value, NOW).err();
            // UTF-8 that is not ASCII, and obs-text that is not UTF-8.
            for value in [&b"Bearer t\xc3\xa9"[..], b"Bearer t\xe9"] {
                assert_eq!(
                    reason(value).as_deref(),
                    Some("authorization header is not ASCII")
                );
            }
            for value in [
                &b"Basic YWxpY2U6c2VjcmV0"[..],
                b"Bearer",
                b"Bearer   ",
                b"Bearertoken",
            ] {
                assert_eq!(
                    reason(value).as_deref(),
                    Some("authorization is not a bearer token"),
                    "{value:?}"
                );
            }
            let rejected = reason(b"Bearer not.a.jwt").expect("rejected");
            assert!(rejected.starts_with("token rejected: "), "{rejected}");
        }

        /// RFC 9110: the scheme is case-insensitive.
        #[test]
        fn the_bearer_scheme_is_read_in_any_case() {
            let jwt = JwtIdentity::hs256(SECRET);
            let token = token(&serde_json::json!({ "sub": "alice", "exp": NOW + 600 }));
            for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
                let header = format!("{scheme} {token}");
                assert_eq!(
                    user(&jwt, &header, NOW),
                    Ok(Some("alice".into())),
                    "{scheme}"
                );
            }
            let spaced = format!("Bearer   {token}");
            assert_eq!(user(&jwt, &spaced, NOW), Ok(Some("alice".into())));
        }

        #[test]
        fn expiry_and_not_before_are_checked_against_the_arrival() {
            let jwt = JwtIdentity::hs256(SECRET);
            let expiring = token(&serde_json::json!({ "sub": "alice", "exp": NOW }));
            let header = format!("Bearer {expiring}");
            // Within the default 60 s of leeway, then past it.
            assert_eq!(user(&jwt, &header, NOW + 60), Ok(Some("alice".into())));
            let late = user(&jwt, &header, NOW + 61).expect_err("expired");
            assert!(late.contains("ExpiredSignature"), "{late}");
            // Used long ago, when it was valid: still names its user.
            assert_eq!(user(&jwt, &header, NOW - 86_400), Ok(Some("alice".into())));

            // `exp` stays required.
            let forever = format!("Bearer {}", token(&serde_json::json!({ "sub": "alice" })));
            let missing = user(&jwt, &forever, NOW).expect_err("no exp");
            assert!(missing.contains("exp"), "{missing}");

            let mut validation = Validation::new(Algorithm::HS256);
            validation.validate_nbf = true;
            validation.leeway = 0;
            let strict = JwtIdentity::new(DecodingKey::from_secret(SECRET), validation);
            let later = token(&serde_json::json!({ "sub": "alice", "exp": NOW + 600, "nbf": NOW }));
            let header = format!("Bearer {later}");
            let early = user(&strict, &header, NOW - 1).expect_err("not yet valid");
            assert!(early.contains("ImmatureSignature"), "{early}");
            assert_eq!(user(&strict, &header, NOW), Ok(Some("alice".into())));
            assert!(user(&strict, &header, NOW + 601).is_err());
        }

        /// Found by a probe: `"exp": 1796654971.5` (PyJWT with `time.time()`, JavaScript's
        /// `Date.now() / 1000`) was a malformed claim; RFC 7519's NumericDate may have a fraction.
        #[test]
        fn times_with_a_fraction_are_times() {
            let mut validation = Validation::new(Algorithm::HS256);
            validation.validate_nbf = true;
            let jwt = JwtIdentity::new(DecodingKey::from_secret(SECRET), validation);
            #[allow(clippy::cast_precision_loss, reason = "exact below 2^53")]
            let now = NOW as f64;
            let header = |claims| format!("Bearer {}", token(&claims));
            let fractional = header(serde_json::json!({
                "sub": "alice", "exp": now + 0.5, "nbf": now - 0.25
            }));
            assert_eq!(user(&jwt, &fractional, NOW), Ok(Some("alice".into())));
            // Compared as they are, with the 60 s of leeway: not rounded either way.
            assert_eq!(user(&jwt, &fractional, NOW + 60), Ok(Some("alice".into())));
            let late = user(&jwt, &fractional, NOW + 61).expect_err("expired");
            assert!(late.contains("ExpiredSignature"), "{late}");
            let early = user(&jwt, &fractional, NOW - 61).expect_err("not yet valid");
            assert!(early.contains("ImmatureSignature"), "{early}");
            // Still no time: negative, past 2^64, not a number (`jsonwebtoken` finds the
            // required `exp` missing first; the nbf it does not require is malformed).
            for at in [
                serde_json::json!(-1.5),
                serde_json::json!(-1),
                serde_json::json!(1.9e19),
                serde_json::json!("1800000000"),
            ] {
                let bad = header(serde_json::json!({ "sub": "alice", "exp": at }));
                let reason = user(&jwt, &bad, NOW).expect_err("no exp");
                assert!(reason.contains("exp"), "{at}: {reason}");
                let bad = header(serde_json::json!({ "sub": "alice", "exp": now, "nbf": at }));
                assert_eq!(
                    user(&jwt, &bad, NOW),
                    Err("token rejected: malformed `nbf` claim".to_owned()),
                    "{at}"
                );
            }
        }

        #[test]
        fn a_token_with_an_audience_names_its_user_once_the_audience_is_ours() {
            let with_audience = token(&serde_json::json!({
                "sub": "alice", "exp": NOW + 600, "aud": ["https://api.example.com", "other"]
            }));
            let header = format!("Bearer {with_audience}");
            let unnamed = user(&JwtIdentity::hs256(SECRET), &header, NOW).expect_err("no audience");
            assert!(unnamed.contains("InvalidAudience"), "{unnamed}");

            let ours = JwtIdentity::hs256(SECRET).audience(["https://api.example.com"]);
            assert_eq!(user(&ours, &header, NOW), Ok(Some("alice".into())));
            let theirs = JwtIdentity::hs256(SECRET).audience(["https://billing.example.com"]);
            let rejected = user(&theirs, &header, NOW).expect_err("another audience");
            assert!(rejected.contains("InvalidAudience"), "{rejected}");

            // A token without `aud` is accepted either way.
            let plain = format!(
                "Bearer {}",
                token(&serde_json::json!({ "sub": "bob", "exp": NOW + 600 }))
            );
            assert_eq!(user(&ours, &plain, NOW), Ok(Some("bob".into())));
        }
    }
}
