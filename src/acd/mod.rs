//! The ACD: queues of agents and the order in which their seats are offered a call.
//!
//! The call model rings seats; the ACD decides, for a queue, which seats and in which order,
//! from who is logged in where, how long each agent has been available and how many calls
//! each has taken. It has no IO and no clock: the driver tells it when agents become
//! available and answer calls, and asks for an order before the call model rings.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use switchboard_driver_api::ChannelId;

/// How a queue picks among its available agents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueueStrategy {
    /// The agent available for the longest time first.
    #[default]
    LongestIdle,
    /// Each agent in turn, starting after the one who took the last call.
    RoundRobin,
    /// Every available agent at once.
    RingAll,
    /// The agent who has answered the fewest calls first (ties: longest idle).
    FewestCalls,
    /// The highest skill level first (ties: longest idle).
    Skill,
}

/// One queue, as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    pub name: String,
    pub strategy: QueueStrategy,
    /// Member agents with their skill level (1 lowest, 9 highest).
    pub members: Vec<(String, u8)>,
    /// A call that waits this long moves to the queue named.
    pub overflow: Option<(Duration, String)>,
    /// A new call finding this many calls waiting goes to the queue named.
    pub max_waiting: Option<(usize, String)>,
}

/// Queue state kept between calls.
#[derive(Debug, Default)]
pub struct Acd {
    queues: Vec<QueueConfig>,
    /// When each agent last became available.
    available_since: HashMap<String, Instant>,
    answered: HashMap<String, u32>,
    /// Per queue, the member who took the last call (round robin).
    last: Vec<Option<usize>>,
}

impl Acd {
    pub fn new(queues: Vec<QueueConfig>) -> Acd {
        let last = vec![None; queues.len()];
        Acd { queues, available_since: HashMap::new(), answered: HashMap::new(), last }
    }

    pub fn queues(&self) -> &[QueueConfig] {
        &self.queues
    }

    /// The agent became available for calls (logged in idle, or back from a call).
    pub fn available(&mut self, agent: &str, now: Instant) {
        self.available_since.insert(agent.to_string(), now);
    }

    /// The agent answered a call of queue `queue` (if it came from one).
    pub fn answered(&mut self, agent: &str, queue: Option<usize>) {
        *self.answered.entry(agent.to_string()).or_default() += 1;
        if let Some(q) = queue {
            if let Some(pos) = self.queues.get(q).and_then(|c| c.members.iter().position(|(a, _)| a == agent))
            {
                self.last[q] = Some(pos);
            }
        }
    }

    /// The seats to offer a call of queue `q`, best first: the members logged in on a seat
    /// (`seat_of`), ordered by the queue's strategy. Availability is checked by the call
    /// model when it rings.
    pub fn order(&self, q: usize, seat_of: &HashMap<String, ChannelId>) -> Vec<ChannelId> {
        let Some(queue) = self.queues.get(q) else { return Vec::new() };
        let far_past = |a: &str| self.available_since.get(a).copied();
        let mut members: Vec<(usize, &str, u8, ChannelId)> = queue
            .members
            .iter()
            .enumerate()
            .filter_map(|(i, (a, level))| seat_of.get(a).map(|s| (i, a.as_str(), *level, *s)))
            .collect();
        // Longest idle: the earliest "available since" first; never seen counts as longest.
        let idle_key = |a: &str| far_past(a);
        match queue.strategy {
            QueueStrategy::LongestIdle | QueueStrategy::RingAll => {
                members.sort_by_key(|m| (idle_key(m.1), m.0));
            }
            QueueStrategy::FewestCalls => {
                members.sort_by_key(|m| (self.answered.get(m.1).copied().unwrap_or(0), idle_key(m.1), m.0));
            }
            QueueStrategy::Skill => {
                members.sort_by_key(|m| (std::cmp::Reverse(m.2), idle_key(m.1), m.0));
            }
            QueueStrategy::RoundRobin => {
                let start = self.last[q].map_or(0, |l| l + 1);
                let n = queue.members.len().max(1);
                members.sort_by_key(|m| (m.0 + n - start % n) % n);
            }
        }
        members.into_iter().map(|m| m.3).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acd(strategy: QueueStrategy) -> (Acd, HashMap<String, ChannelId>, Instant) {
        let q = QueueConfig {
            name: "sales".into(),
            strategy,
            members: vec![("a".into(), 3), ("b".into(), 9), ("c".into(), 5)],
            overflow: None,
            max_waiting: None,
        };
        let seats =
            [("a", 10), ("b", 11), ("c", 12)].iter().map(|(a, s)| (a.to_string(), ChannelId(*s))).collect();
        (Acd::new(vec![q]), seats, Instant::now())
    }

    fn ports(v: Vec<ChannelId>) -> Vec<u16> {
        v.into_iter().map(|c| c.0).collect()
    }

    #[test]
    fn longest_idle_first() {
        let (mut acd, seats, t0) = acd(QueueStrategy::LongestIdle);
        acd.available("a", t0 + Duration::from_secs(5));
        acd.available("b", t0 + Duration::from_secs(1));
        acd.available("c", t0 + Duration::from_secs(3));
        assert_eq!(ports(acd.order(0, &seats)), vec![11, 12, 10]);
    }

    #[test]
    fn skill_then_idle_and_fewest_calls() {
        let (mut acd, seats, t0) = acd(QueueStrategy::Skill);
        acd.available("a", t0);
        assert_eq!(ports(acd.order(0, &seats)), vec![11, 12, 10]);
        let (mut acd, seats, _) = self::acd(QueueStrategy::FewestCalls);
        acd.answered("a", Some(0));
        acd.answered("b", Some(0));
        acd.answered("b", Some(0));
        assert_eq!(ports(acd.order(0, &seats)), vec![12, 10, 11]);
    }

    #[test]
    fn round_robin_continues_after_the_last_agent_and_skips_absent_ones() {
        let (mut acd, mut seats, _) = acd(QueueStrategy::RoundRobin);
        assert_eq!(ports(acd.order(0, &seats)), vec![10, 11, 12]);
        acd.answered("b", Some(0));
        assert_eq!(ports(acd.order(0, &seats)), vec![12, 10, 11]);
        seats.remove("c");
        assert_eq!(ports(acd.order(0, &seats)), vec![10, 11]);
    }
}
