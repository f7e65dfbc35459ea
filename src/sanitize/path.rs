//! Request paths: value patterns, and matrix parameters (`/cart;jsessionid=…`).
//!
//! A path is not made of `key=value` pairs: `/users/7/password` names a resource, and the
//! segment after `password` or `token` is as often an action (`/token/refresh`) as a secret, so
//! segments are left to the value patterns. Matrix parameters are pairs, and servlet
//! containers put the session id in one.

use std::borrow::Cow;

use super::form::{has_escape, percent_decode_levels};
use super::redactor::Rules;

/// `path` with each segment that a placeholder of `route` (the matched template,
/// `/reset/{token}`) names with a sensitive key replaced: the application says there what the
/// segment is, and a reset or invite token in a path is a working credential (found by a probe:
/// `/reset/8f14e45f…` was stored as sent, its route `/reset/{token}`). A catch-all
/// (`{*secret}`) takes the rest of the path. Segments of literal text (`/token/refresh`) are
/// left to the value patterns. `None` when nothing is replaced, or the path does not line up
/// with the route (one that is no template of it).
pub(super) fn redact_route_params(rules: &Rules, path: &str, route: &str) -> Option<String> {
    if !route.contains('{') {
        return None;
    }
    let mut buf = String::new();
    let mut out = String::with_capacity(path.len());
    let mut replaced = false;
    let mut segments = path.split('/');
    for (i, template) in route.split('/').enumerate() {
        let name = template
            .strip_prefix('{')
            .and_then(|rest| rest.strip_suffix('}'));
        if let Some(rest) = name.and_then(|name| name.strip_prefix('*')) {
            // The catch-all takes the rest of the path, whatever its slashes.
            let tail: Vec<&str> = segments.by_ref().collect();
            if i > 0 {
                out.push('/');
            }
            if rules.keys.is_sensitive(rest, &mut buf) && !tail.concat().is_empty() {
                out.push_str(&rules.replacement);
                replaced = true;
            } else {
                out.push_str(&tail.join("/"));
            }
            return replaced.then_some(out);
        }
        let segment = segments.next()?;
        if i > 0 {
            out.push('/');
        }
        match name {
            Some(name) if !segment.is_empty() && rules.keys.is_sensitive(name, &mut buf) => {
                out.push_str(&rules.replacement);
                replaced = true;
            }
            _ => out.push_str(segment),
        }
    }
    // A path longer than its route (a trailing slash the router let through) keeps the rest.
    for segment in segments {
        out.push('/');
        out.push_str(segment);
    }
    replaced.then_some(out)
}

/// See [`Redactor::redact_path`](super::Redactor::redact_path).
pub(super) fn redact_path(rules: &Rules, path: &str) -> String {
    // A CONNECT's target is an authority, which hyper takes with a userinfo
    // (`alice:password@host:443`): its password is a URL's, which the value patterns find only
    // after a `//`.
    let authority;
    let userinfo = (!path.starts_with('/'))
        .then(|| path.rfind('@'))
        .flatten()
        .and_then(|at| Some((path[..at].find(':')?, at)));
    let path = match userinfo {
        Some((colon, at)) => {
            authority = format!("{}{}{}", &path[..=colon], rules.replacement, &path[at..]);
            authority.as_str()
        }
        None => path,
    };
    let mut path = rules.values.redact(path);
    if has_escape(&path) {
        path = redact_encoded_segments(rules, &path).into();
    }
    if !path.contains(';') {
        return path.into_owned();
    }
    redact_matrix(rules, &path)
}

/// `path` with each segment whose percent-decoded text (once, or again while it holds escapes,
/// as a query's values are read) holds what the value patterns take for a secret replaced
/// whole: a card number sent as `4111%201111%201111%201111`, a URL and its password encoded
/// into one segment (`/proxy/https%3A%2F%2Fann%3Apw%40db…`).
fn redact_encoded_segments(rules: &Rules, path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        let secret = has_escape(segment)
            && percent_decode_levels(segment)
                .any(|decoded| matches!(rules.values.redact(&decoded), Cow::Owned(_)));
        out.push_str(if secret { &rules.replacement } else { segment });
    }
    out
}

/// `path` (or a URL up to its query) with the value of each matrix parameter named by a
/// sensitive key replaced.
pub(super) fn redact_matrix(rules: &Rules, path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut keybuf = String::new();
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        let mut params = segment.split(';');
        out.push_str(params.next().unwrap_or_default());
        for param in params {
            out.push(';');
            match param.split_once('=') {
                Some((key, value))
                    if !value.is_empty()
                        && percent_decode_levels(key)
                            .any(|key| rules.keys.is_sensitive(&key, &mut keybuf)) =>
                {
                    out.push_str(key);
                    out.push('=');
                    out.push_str(&rules.replacement);
                }
                _ => out.push_str(param),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::Redactor;

    #[test]
    fn matrix_parameters_and_value_patterns() {
        let r = Redactor::default();
        assert_eq!(
            r.redact_path("/cart;jsessionid=0F3A9B;v=2/items"),
            "/cart;jsessionid=[REDACTED];v=2/items"
        );
        assert_eq!(
            r.redact_path("/a;Pass%77ord=x;token=/b;token"),
            "/a;Pass%77ord=[REDACTED];token=/b;token"
        );
        // A key encoded twice, as a query's.
        assert_eq!(
            r.redact_path("/a;pass%2577ord=x/b"),
            "/a;pass%2577ord=[REDACTED]/b"
        );
        assert_eq!(
            r.redact_path("/cards/4111111111111111/charge"),
            "/cards/[REDACTED]/charge"
        );
        // Found by a probe: a CONNECT's target kept its password.
        assert_eq!(
            r.redact_path("alice:s3cretPass@example.com:443"),
            "alice:[REDACTED]@example.com:443"
        );
        for authority in ["example.com:443", "alice@example.com:443", "*"] {
            assert_eq!(r.redact_path(authority), authority);
        }
        // Found by a probe: encoded, the same values passed.
        for (path, redacted) in [
            (
                "/cards/4111%201111%201111%201111/charge",
                "/cards/[REDACTED]/charge",
            ),
            (
                "/proxy/https%3A%2F%2Fann%3AhunterP2%40db.example.com%2F",
                "/proxy/[REDACTED]",
            ),
            (
                "/connections/postgres%253A%252F%252Fapp%253AhunterP3%2540db%2Fapp/test",
                "/connections/[REDACTED]/test",
            ),
            ("/files/report%202026.pdf", "/files/report%202026.pdf"),
        ] {
            assert_eq!(r.redact_path(path), redacted, "{path}");
        }
        // Segments named like keys are resources and actions, not pairs.
        for path in [
            "/users/7/password",
            "/token/refresh",
            "/api;x=1/secret/abc",
            "",
        ] {
            assert_eq!(r.redact_path(path), path);
        }
    }
}
