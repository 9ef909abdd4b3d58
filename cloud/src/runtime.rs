//! The process-wide I/O runtime behind the blocking [`crate::Store`] API.
//!
//! Every remote request runs on this one multi-threaded tokio runtime, so connection pools
//! outlive any caller's runtime and the blocking API is safe from rayon workers, plain threads,
//! `spawn_blocking` tasks and (through `block_in_place`) async code on a multi-threaded runtime.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Handle, Runtime, RuntimeFlavor};

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The shared I/O runtime (created on first use).
pub fn io_runtime() -> &'static Runtime {
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .thread_name("geobutton-io")
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("cannot start the I/O runtime: {e}"))
    })
}

/// Runs `fut` on the I/O runtime and blocks the calling thread until it completes.
pub fn block_on<T: Send + 'static>(fut: impl Future<Output = T> + Send + 'static) -> T {
    let handle = io_runtime().spawn(fut);
    let wait = move || match futures::executor::block_on(handle) {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("I/O task cancelled: {e}"),
    };
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(wait)
        }
        _ => wait(),
    }
}
