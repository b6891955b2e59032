//! Turns a panic inside the storage engine into an error. redb can panic on a
//! file whose pages are damaged in ways its checks do not catch; a damaged
//! file must give a clear error, not a crash.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// Set while a guarded call runs: the hook records the panic instead of printing it.
    static CAUGHT: RefCell<Option<Option<String>>> = const { RefCell::new(None) };
}

/// Installs (once) a panic hook that stays silent for guarded calls and
/// defers to the previous hook otherwise.
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let guarded = CAUGHT.with(|c| {
                let mut c = c.borrow_mut();
                match c.as_mut() {
                    Some(slot) => {
                        let msg = info
                            .payload()
                            .downcast_ref::<&str>()
                            .map(|s| (*s).to_owned())
                            .or_else(|| info.payload().downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "unknown panic".to_owned());
                        let at = info
                            .location()
                            .map(|l| format!(" at {}:{}", l.file(), l.line()))
                            .unwrap_or_default();
                        *slot = Some(format!("{msg}{at}"));
                        true
                    }
                    None => false,
                }
            });
            if !guarded {
                previous(info);
            }
        }));
    });
}

/// Runs `f`, returning `Err(description)` if it panics.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_panic_hook();
    let outer = CAUGHT.with(|c| c.borrow_mut().replace(None));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    let caught = CAUGHT.with(|c| std::mem::replace(&mut *c.borrow_mut(), outer));
    result.map_err(|_| {
        caught
            .flatten()
            .unwrap_or_else(|| "the storage engine failed".to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_with_its_message() {
        let err = catch(|| -> u32 { panic!("page 7 is garbage") }).expect_err("caught");
        assert!(err.contains("page 7 is garbage"), "{err}");
        assert_eq!(catch(|| 5), Ok(5));
    }

    #[test]
    fn nested_guards_restore_the_outer_state() {
        let outer = catch(|| {
            let inner = catch(|| -> () { panic!("inner") });
            assert!(inner.is_err());
            panic!("outer")
        });
        let err: String = outer.map(|_: ()| ()).expect_err("outer caught");
        assert!(err.contains("outer"), "{err}");
    }
}
