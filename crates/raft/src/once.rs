//! Request ids for forwarded control calls: a front-end retries a call whose answer it lost (a
//! voter died mid-call) with the same id, and the catalog runs each command of it at most once
//! ([`levee_catalog::Command::Once`]).
//!
//! The control listener runs a call's handler inside [`scope`]; every command the handler
//! executes there ([`crate::CatalogRaft::execute`]) is wrapped with an id derived from the
//! call's id and the command's position in the call, so a retried call's commands get the same
//! ids in the same order. Commands run outside a scope (the node's own timers) are not wrapped.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use levee_catalog::Command;

tokio::task_local! {
    static CALL: Call;
}

struct Call {
    id: u64,
    commands: AtomicU64,
}

/// Runs `fut` (a control call's handler) as the call `id`. An `id` of 0 means "no id".
pub async fn scope<F: Future>(id: u64, fut: F) -> F::Output {
    if id == 0 {
        return fut.await;
    }
    CALL.scope(
        Call {
            id,
            commands: AtomicU64::new(0),
        },
        fut,
    )
    .await
}

/// `cmd` wrapped in [`Command::Once`] with the next id of the current call, if there is one.
pub fn wrap(cmd: Command) -> Command {
    if matches!(cmd, Command::Once { .. }) {
        return cmd;
    }
    CALL.try_with(|call| {
        let n = call.commands.fetch_add(1, Ordering::Relaxed);
        // The n-th command of the call: a fixed, well-mixed function of (call id, n).
        call.id
            .wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .rotate_left(17)
            ^ n
    })
    .ok()
    .map_or(cmd.clone(), |id| Command::Once {
        id,
        command: Box::new(cmd),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd() -> Command {
        Command::FinishDeleteStream { name: "s".into() }
    }

    #[tokio::test]
    async fn commands_in_a_call_get_distinct_ids_that_repeat_on_a_retry() {
        let ids = || async {
            scope(42, async {
                (0..3)
                    .map(|_| match wrap(cmd()) {
                        Command::Once { id, .. } => id,
                        other => panic!("not wrapped: {other:?}"),
                    })
                    .collect::<Vec<_>>()
            })
            .await
        };
        let first = ids().await;
        assert_eq!(first, ids().await, "a retry gets the same ids");
        let distinct: std::collections::BTreeSet<_> = first.iter().collect();
        assert_eq!(distinct.len(), 3, "{first:?}");
        // Outside a call, and for id 0, nothing is wrapped.
        assert_eq!(wrap(cmd()), cmd());
        assert_eq!(scope(0, async { wrap(cmd()) }).await, cmd());
    }
}
