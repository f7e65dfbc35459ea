//! Request paths: value patterns, and matrix parameters (`/cart;jsessionid=…`).
//!
//! A path is not made of `key=value` pairs: `/users/7/password` names a resource, and the
//! segment after `password` or `token` is as often an action (`/token/refresh`) as a secret, so
//! segments are left to the value patterns. Matrix parameters are pairs, and servlet
//! containers put the session id in one.

use super::form::percent_decode_levels;
use super::redactor::Rules;

/// See [`Redactor::redact_path`](super::Redactor::redact_path).
pub(super) fn redact_path(rules: &Rules, path: &str) -> String {
    let path = rules.values.redact(path);
    if !path.contains(';') {
        return path.into_owned();
    }
    redact_matrix(rules, &path)
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
