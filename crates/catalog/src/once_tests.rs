//! `Command::Once`: a request retried after a lost answer runs once and gets the same answer.

use super::*;

fn create(name: &str) -> Command {
    Command::CreateStream {
        name: name.to_string(),
        shard_count: Some(1),
        mode: StreamMode::Provisioned,
        tags: BTreeMap::new(),
        now_ms: 5_000,
    }
}

fn once(id: u64, command: Command) -> Command {
    Command::Once {
        id,
        command: Box::new(command),
    }
}

#[test]
fn a_retried_request_gets_the_first_answer_and_changes_nothing() {
    let mut c = Catalog::new(CatalogConfig::default());
    let first = c.apply(&once(7, create("s"))).expect("created");
    assert!(matches!(first, Outcome::StreamCreated { .. }), "{first:?}");
    let before = c.snapshot().expect("snapshot");
    // The retry: the same id answers as the first run did, where running it again would be
    // refused (the stream exists).
    assert_eq!(c.apply(&once(7, create("s"))), Ok(first.clone()));
    assert!(matches!(
        c.apply(&once(8, create("s"))),
        Err(CatalogError::ResourceInUse(_))
    ));
    let after_retry = Catalog::restore(CatalogConfig::default(), &before).expect("restore");
    assert_eq!(
        after_retry.state().streams(),
        c.state().streams(),
        "the retry changed the streams"
    );
    // A refusal is remembered too, and the snapshot carries the answers: a voter restored
    // from it answers a retry alike.
    let mut restored = Catalog::restore(CatalogConfig::default(), &c.snapshot().unwrap()).unwrap();
    assert_eq!(restored.apply(&once(7, create("s"))), Ok(first));
    assert!(matches!(
        restored.apply(&once(8, create("other"))),
        Err(CatalogError::ResourceInUse(_))
    ));
}

#[test]
fn only_the_last_answers_are_remembered() {
    let mut c = Catalog::new(CatalogConfig::default());
    for id in 0..(ONCE_REMEMBERED_MAX as u64 + 10) {
        let _ = c.apply(&once(id, create(&format!("s{id}"))));
    }
    assert_eq!(c.state().once.len(), ONCE_REMEMBERED_MAX);
    // Id 0 was forgotten: running it again is a new request (refused, the stream exists).
    assert!(matches!(
        c.apply(&once(0, create("s0"))),
        Err(CatalogError::ResourceInUse(_))
    ));
    // A nested id is refused.
    assert!(matches!(
        c.apply(&once(1 << 40, once(1 << 41, create("x")))),
        Err(CatalogError::InvalidArgument(_))
    ));
}
