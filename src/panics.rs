//! Panics in the sanitizer's readings and the writer's conversion, caught without their
//! message reaching stderr.
//!
//! A panic's message can quote the value being read: slicing a string out of bounds says
//! "byte index 12 is not a char boundary; it is inside … of `<the first 256 characters>`", and
//! a route's body function may print its input. The default panic hook writes that message to
//! stderr, and stderr is often kept as a log: a password in a body would leave through it.
//!
//! So [`catch`] runs its closure with a thread-local mark set, and a panic hook, installed the
//! first time [`catch`] runs, keeps only the panic's place (file, line, column) while the mark
//! is set, for the caller to log. Every other panic goes to the hook that was there before, as
//! it came. In a build with `panic = "abort"`, where nothing can be caught, the hook prints the
//! place alone before the process aborts.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe, PanicHookInfo};
use std::sync::Once;

thread_local! {
    /// How many [`catch`]es are running on this thread.
    static QUIET: Cell<u32> = const { Cell::new(0) };
    /// Where the last panic inside a [`catch`] on this thread happened, noted by the hook.
    static SITE: RefCell<Option<String>> = const { RefCell::new(None) };
}

static INSTALL: Once = Once::new();

/// A panic [`catch`] caught.
#[derive(Debug)]
pub(crate) struct Caught {
    /// Where it happened (`src/sanitize/json.rs:120:5`), or a sentence saying its message went
    /// to a panic hook set after this crate's.
    pub(crate) at: String,
}

/// Runs `f`, catching a panic in it. Its message is never printed or handed to another panic
/// hook; its place is in [`Caught::at`].
pub(crate) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, Caught> {
    // A hook cannot be set while this thread panics (a drop during unwinding); the caught
    // panic's message then goes where the hook sends it, which the result says.
    if !INSTALL.is_completed() && !std::thread::panicking() {
        INSTALL.call_once(install);
    }
    QUIET.with(|quiet| quiet.set(quiet.get() + 1));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|quiet| quiet.set(quiet.get() - 1));
    if result.is_ok() {
        // A panic that `f` caught itself (a library's own `catch_unwind`) noted its place too:
        // left there, it would stand for the next caught panic's, and hide that a hook set
        // after this crate's saw that one's message.
        SITE.with(|site| site.borrow_mut().take());
    }
    result.map_err(|_payload| {
        // The payload may quote the value too: it is dropped unread.
        match SITE.with(RefCell::take) {
            Some(at) => Caught { at },
            None => {
                // A hook set after this crate's replaced it and saw the message. Wrap that
                // one too, so the next panic stays quiet.
                if !std::thread::panicking() {
                    install();
                }
                Caught {
                    at: "unknown: a panic hook set after tower-audit's received the message"
                        .to_owned(),
                }
            }
        }
    })
}

/// Wraps the current panic hook in one that keeps quiet inside [`catch`].
fn install() {
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info: &PanicHookInfo<'_>| {
        // While the thread's locals are torn down, nothing runs inside `catch`.
        if QUIET.try_with(Cell::get).unwrap_or(0) > 0 {
            let at = info.location().map_or_else(
                || "unknown".to_owned(),
                |place| format!("{}:{}:{}", place.file(), place.line(), place.column()),
            );
            // Built with `panic = "abort"`, nothing catches it: the process ends after this
            // hook, and this line is all that says why.
            if cfg!(panic = "abort") {
                eprintln!(
                    "tower-audit: a panic at {at} while making a request's audit row (its \
                     message is withheld: it may quote the request's values); the process aborts"
                );
            }
            let _ = SITE.try_with(|site| site.replace(Some(at)));
        } else {
            previous(info);
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A caught panic gives its place, and the thread's mark is undone after it, caught or not.
    #[test]
    fn a_caught_panic_gives_its_place() {
        let caught = catch(|| -> u8 { panic!("a bug, made by the test") }).expect_err("caught");
        assert!(caught.at.starts_with("src/panics.rs:"), "{}", caught.at);
        assert_eq!(QUIET.with(Cell::get), 0);
        assert_eq!(catch(|| 7).expect("no panic"), 7);
        assert_eq!(QUIET.with(Cell::get), 0);
        // Nested: the inner one catches, the outer one sees a value.
        let nested = catch(|| catch(|| -> u8 { panic!("inner") }).is_err());
        assert!(nested.expect("the outer one does not panic"));
        assert_eq!(QUIET.with(Cell::get), 0);
    }
}
