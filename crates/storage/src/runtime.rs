//! Building the tokio runtime with explicit, small thread limits (design rule R1): tokio's
//! default blocking pool grows to 512 threads, which is exactly the kind of silent, load-driven
//! thread growth Levee forbids. Storage reads run on the blocking pool, so its cap bounds them.

use std::io;

/// Default cap on tokio's blocking pool (file reads, fsyncs outside the log writer).
pub const BLOCKING_THREADS_MAX_DEFAULT: usize = 16;
/// How long an idle blocking thread lingers before it exits.
pub const BLOCKING_THREAD_KEEP_ALIVE_MS: u64 = 10_000;

/// A multi-threaded runtime with `worker_threads` workers and at most `blocking_threads_max`
/// blocking threads.
pub fn build(
    worker_threads: usize,
    blocking_threads_max: usize,
) -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads.max(1))
        .max_blocking_threads(blocking_threads_max.max(1))
        .thread_keep_alive(std::time::Duration::from_millis(
            BLOCKING_THREAD_KEEP_ALIVE_MS,
        ))
        .thread_name("levee-rt")
        .enable_all()
        .build()
}
