//! A panic in the sanitizer never hands its message, which can quote the value it read, to the
//! process's panic hook (whose default prints it on stderr). Its own test binary: it sets the
//! process's panic hook, which no other test may race.

use std::panic::PanicHookInfo;
use std::sync::{Arc, Mutex};

use tower_audit::sanitize::{BodyInput, Redactor};

/// The messages a [`recording_hook`] was given.
type Seen = Arc<Mutex<Vec<String>>>;

/// What `seen` holds now, its lock released: an assertion failing while it is held would
/// deadlock in the hook.
fn messages(seen: &Seen) -> Vec<String> {
    seen.lock().expect("messages").clone()
}

/// A panic hook, as `std::panic::set_hook` takes it.
type Hook = Box<dyn Fn(&PanicHookInfo<'_>) + Send + Sync>;

/// A panic hook that keeps each message it is given.
fn recording_hook() -> (Seen, Hook) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&seen);
    let hook = Box::new(move |info: &PanicHookInfo<'_>| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        eprintln!("panicked: {message}");
        keep.lock().expect("messages").push(message);
    });
    (seen, hook)
}

#[test]
fn a_panic_in_the_sanitizer_keeps_its_message_from_the_panic_hook() {
    // A route's body function that quotes its input in its panic, as a string sliced out of
    // bounds in the sanitizer would (`… of `<the string>``).
    let redactor = Redactor::builder()
        .route_body_fn("/login", |body: &BodyInput<'_>| {
            panic!("cannot read {}", String::from_utf8_lossy(body.bytes))
        })
        // A body function that catches a panic of its own, as a library it calls may.
        .route_body_fn("/caught-inside", |_body: &BodyInput<'_>| {
            let _ = std::panic::catch_unwind(|| panic!("caught inside"));
            Some("{}".to_owned())
        })
        .build();
    let body = BodyInput {
        route: Some("/login"),
        ..BodyInput::new(Some("application/json"), br#"{"password":"hunter2"}"#)
    };
    let failed = Some("[REDACTED] …[the sanitizer failed on this body]".to_owned());

    // The application's hook, set before the crate's first reading.
    let (seen, hook) = recording_hook();
    std::panic::set_hook(hook);
    assert_eq!(redactor.redact_body(&body), failed);
    // Every other panic still reaches the application's hook, as it came.
    let outside = std::panic::catch_unwind(|| panic!("a panic of the application's"));
    assert!(outside.is_err());
    assert_eq!(messages(&seen), ["a panic of the application's"]);

    // A hook set after the crate's replaces it: the next panic's message reaches it (the crate
    // cannot know before), and the crate then wraps that hook too.
    let (later, hook) = recording_hook();
    std::panic::set_hook(hook);
    assert_eq!(redactor.redact_body(&body), failed);
    assert_eq!(messages(&later).len(), 1);
    assert_eq!(redactor.redact_body(&body), failed);
    assert_eq!(redactor.redact_body(&body), failed);
    assert_eq!(messages(&later).len(), 1, "wrapped again");
    let outside = std::panic::catch_unwind(|| panic!("another of the application's"));
    assert!(outside.is_err());
    assert_eq!(
        messages(&later).last().map(String::as_str),
        Some("another of the application's")
    );

    // A panic caught inside a reading leaves no place behind it for the next caught panic: a
    // hook set after that reading is still noticed at the first panic that reaches it.
    let inside = BodyInput {
        route: Some("/caught-inside"),
        ..BodyInput::new(Some("application/json"), b"{}")
    };
    assert_eq!(redactor.redact_body(&inside), Some("{}".to_owned()));
    let (third, hook) = recording_hook();
    std::panic::set_hook(hook);
    assert_eq!(redactor.redact_body(&body), failed);
    assert_eq!(redactor.redact_body(&body), failed);
    assert_eq!(messages(&third).len(), 1, "wrapped again after the first");

    assert!(
        messages(&seen)
            .iter()
            .all(|message| !message.contains("hunter2"))
    );
    // The panic caught inside stayed quiet too.
    for hook in [&seen, &later, &third] {
        assert!(
            messages(hook)
                .iter()
                .all(|message| message != "caught inside")
        );
    }
    let _ = std::panic::take_hook();
}
