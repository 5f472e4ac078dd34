//! `levee admin voters`: shows and changes the control plane's Raft voters through any voter's
//! control listener (the change itself runs on the leader; a voter that does not lead names it
//! and the command asks the leader).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use levee_raft::cluster::{post, Membership, MembershipAnswer, MembershipChange};

/// How long the command looks for a leader (an election takes about one election timeout).
const LEADER_WAIT_MS: u64 = 15_000;

pub async fn run(control: SocketAddr, change: MembershipChange) -> anyhow::Result<()> {
    let pool = levee_rpc::Pool::new(levee_rpc::PoolConfig {
        connections_max: 4,
        ..levee_rpc::PoolConfig::default()
    });
    let mut target = control;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(LEADER_WAIT_MS);
    while tokio::time::Instant::now() < deadline {
        let answer: MembershipAnswer = match post(&pool, target, "membership", &change).await {
            Ok(a) => a,
            // A leader named by a voter that has not noticed it died: ask the first voter
            // again once it had time to elect another.
            Err(e) if target != control => {
                tracing::debug!(%target, error = ?e, "the named leader did not answer");
                target = control;
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
            Err(e) => anyhow::bail!("asking the voter at {target}: {e:?}"),
        };
        match answer {
            MembershipAnswer::Done(m) => {
                print(&m);
                return Ok(());
            }
            MembershipAnswer::Failed(e) => anyhow::bail!("the leader refused: {e}"),
            // Even `show` asks the leader: its view of the voters is the authoritative one.
            MembershipAnswer::NotLeader {
                leader: Some((_, addr)),
            } => {
                target = addr
                    .parse()
                    .with_context(|| format!("the leader's address {addr:?}"))?;
                // Voters with stale views may name each other for a moment.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            MembershipAnswer::NotLeader { .. } => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
    anyhow::bail!("no leader answered (is a majority of the voters up?)")
}

fn print(m: &Membership) {
    println!(
        "leader: {}",
        m.leader.map_or("none".into(), |l| l.to_string())
    );
    for (id, addr) in &m.voters {
        let lead = if m.leader == Some(*id) {
            " (leader)"
        } else {
            ""
        };
        println!("voter {id} {addr}{lead}");
    }
    for (id, addr) in &m.learners {
        println!("learner {id} {addr}");
    }
}
