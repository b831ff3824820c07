//! Property test: random sequences of gets, puts (tail, head, into the sink,
//! with timers), enumerations with every disposition, foreign puts and clock
//! advances, checked step by step against a model of DMF's lists. No buffer
//! is ever lost or duplicated; order, counts and expiries match the model.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use dmf_buffer_pool::{
    BufferPool, BufferPoolConfig, EnumerationDisposition as D, ExpiryCallback, PoolBuffer,
    PutError, SinkPool,
};
use dmf_sim::{Sim, SimConfig};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    SourceGet,
    SourcePut { pick: usize, at_head: bool },
    ForeignPut { pick: usize },
    SinkPut { pick: usize, at_head: bool },
    SinkPutTimer { pick: usize, ms: u64 },
    SinkGet,
    Enumerate { disposition: usize, target: usize },
    Advance { ms: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::SourceGet),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(pick, at_head)| Op::SourcePut { pick, at_head }),
        1 => any::<usize>().prop_map(|pick| Op::ForeignPut { pick }),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(pick, at_head)| Op::SinkPut { pick, at_head }),
        3 => (any::<usize>(), 0u64..30).prop_map(|(pick, ms)| Op::SinkPutTimer { pick, ms }),
        2 => Just(Op::SinkGet),
        3 => (0usize..7, 0usize..6).prop_map(|(disposition, target)| Op::Enumerate { disposition, target }),
        2 => (0u64..20).prop_map(|ms| Op::Advance { ms }),
    ]
}

/// A buffer in the model sink: id and, if armed, (deadline ms, arming seq,
/// duration ms).
type Entry = (usize, Option<(u64, u64, u64)>);

#[derive(Default)]
struct Model {
    source: VecDeque<usize>,
    sink: VecDeque<Entry>,
    extra: usize,
    now: u64,
    seq: u64,
}

impl Model {
    fn arm(&mut self, deadline: u64, ms: u64) -> Option<(u64, u64, u64)> {
        self.seq += 1;
        Some((deadline, self.seq, ms))
    }

    /// A buffer comes home (look-aside frees it if the pool grew).
    fn home(&mut self, id: usize, at_head: bool) {
        if self.extra > 0 {
            self.extra -= 1;
        } else if at_head {
            self.source.push_front(id);
        } else {
            self.source.push_back(id);
        }
    }
}

fn id(b: &PoolBuffer<Sim>) -> usize {
    b.data_ptr().as_ptr() as usize
}

fn run(ops: Vec<Op>, count: u32, look_aside: bool) -> Result<(), TestCaseError> {
    let sim = Sim::new(SimConfig::manual());
    let config = BufferPoolConfig::new(count, 16)
        .with_context_size(4)
        .with_timers(true)
        .with_look_aside(look_aside);
    let source = BufferPool::new(&sim, config).unwrap();
    let other = BufferPool::new(&sim, BufferPoolConfig::new(1, 16)).unwrap();
    let sink = SinkPool::new(&sim);
    let expired: Arc<Mutex<Vec<usize>>> = Arc::default();
    let log = expired.clone();
    let on_expiry: Arc<dyn ExpiryCallback<Sim>> =
        Arc::new(move |_: &SinkPool<Sim>, b: PoolBuffer<Sim>| {
            log.lock().unwrap().push(id(&b));
        });
    let mut m = Model::default();
    // The initial list order is allocation order: learn it by draining.
    let initial: Vec<_> = std::iter::from_fn(|| source.get().ok())
        .take(count as usize)
        .collect();
    for b in initial {
        m.source.push_back(id(&b));
        drop(b);
    }
    let mut held: Vec<PoolBuffer<Sim>> = Vec::new();

    for op in ops {
        match op {
            Op::SourceGet => match source.get() {
                Ok(b) => {
                    match m.source.pop_front() {
                        Some(expected) => prop_assert_eq!(id(&b), expected),
                        None => {
                            prop_assert!(look_aside);
                            m.extra += 1;
                        }
                    }
                    prop_assert!(b.data().iter().all(|&x| x == 0));
                    held.push(b);
                }
                Err(_) => prop_assert!(m.source.is_empty() && !look_aside),
            },
            Op::SourcePut { pick, at_head } if !held.is_empty() => {
                let mut b = held.swap_remove(pick % held.len());
                b.data_mut()[0] = 1;
                let i = id(&b);
                if at_head {
                    source.put_at_head(b).unwrap();
                } else {
                    drop(b);
                }
                m.home(i, at_head);
            }
            Op::ForeignPut { pick } if !held.is_empty() => {
                let b = held.swap_remove(pick % held.len());
                match other.put(b) {
                    Err(PutError::ForeignBuffer(b)) => held.push(b),
                    other => prop_assert!(false, "foreign put accepted: {other:?}"),
                }
            }
            Op::SinkPut { pick, at_head } if !held.is_empty() => {
                let b = held.swap_remove(pick % held.len());
                let i = id(&b);
                if at_head {
                    sink.put_at_head(b).unwrap();
                    m.sink.push_front((i, None));
                } else {
                    sink.put(b).unwrap();
                    m.sink.push_back((i, None));
                }
            }
            Op::SinkPutTimer { pick, ms } if !held.is_empty() => {
                let b = held.swap_remove(pick % held.len());
                let i = id(&b);
                sink.put_with_timer(b, ms, on_expiry.clone()).unwrap();
                let t = m.arm(m.now + ms, ms);
                m.sink.push_back((i, t));
            }
            Op::SinkGet => match sink.get() {
                Ok(b) => {
                    let (expected, _) = m.sink.pop_front().unwrap();
                    prop_assert_eq!(id(&b), expected);
                    held.push(b);
                }
                Err(_) => prop_assert!(m.sink.is_empty()),
            },
            Op::Enumerate {
                disposition,
                target,
            } => {
                // `target` picks the entry that gets `disposition`; the
                // others get Continue.
                let d = D::ALL[disposition];
                let mut visited = Vec::new();
                let removed = sink.enumerate(|e| {
                    visited.push((id_of(e.data_ptr()), e.remaining_ms()));
                    if visited.len() == target + 1 {
                        d
                    } else {
                        D::ContinueEnumeration
                    }
                });
                // Apply to the model.
                let mut k = 0;
                let mut model_removed = None;
                while k < m.sink.len() {
                    let (i, t) = m.sink[k];
                    prop_assert_eq!(visited.get(k).map(|v| v.0), Some(i));
                    prop_assert_eq!(visited[k].1, t.map(|(dl, _, _)| dl - m.now));
                    let this = if k == target {
                        d
                    } else {
                        D::ContinueEnumeration
                    };
                    match this {
                        D::ContinueEnumeration | D::StopEnumeration => {
                            if let Some((dl, _, ms)) = t {
                                m.sink[k].1 = m.arm(dl, ms);
                            }
                        }
                        D::RemoveAndStopEnumeration => {
                            model_removed = Some(m.sink.remove(k).unwrap().0);
                            break;
                        }
                        D::StopTimerAndStopEnumeration | D::StopTimerAndContinueEnumeration => {
                            m.sink[k].1 = None;
                        }
                        D::ResetTimerAndStopEnumeration | D::ResetTimerAndContinueEnumeration => {
                            if let Some((_, _, ms)) = t {
                                m.sink[k].1 = m.arm(m.now + ms, ms);
                            }
                        }
                    }
                    if this.stops() {
                        break;
                    }
                    k += 1;
                }
                prop_assert_eq!(
                    visited.len(),
                    (k + 1).min(m.sink.len() + usize::from(model_removed.is_some()))
                );
                prop_assert_eq!(removed.as_ref().map(id), model_removed);
                if let Some(b) = removed {
                    held.push(b);
                }
            }
            Op::Advance { ms } => {
                let to = m.now + ms;
                sim.advance(ms);
                let mut due: Vec<(u64, u64, usize)> = m
                    .sink
                    .iter()
                    .filter_map(|&(i, t)| {
                        t.filter(|&(dl, _, _)| dl <= to)
                            .map(|(dl, s, _)| (dl, s, i))
                    })
                    .collect();
                due.sort_unstable();
                let fired: Vec<usize> = std::mem::take(&mut *expired.lock().unwrap());
                prop_assert_eq!(&fired, &due.iter().map(|d| d.2).collect::<Vec<_>>());
                for (_, _, i) in due {
                    m.sink.retain(|e| e.0 != i);
                    m.home(i, false);
                }
                m.now = to;
            }
            _ => {}
        }
        prop_assert_eq!(source.count(), m.source.len());
        prop_assert_eq!(sink.count(), m.sink.len());
        prop_assert_eq!(
            source.buffers_allocated(),
            m.source.len() + m.sink.len() + held.len(),
            "every live buffer is in exactly one place"
        );
    }
    // No duplicates anywhere.
    let mut all: Vec<usize> = m
        .source
        .iter()
        .copied()
        .chain(m.sink.iter().map(|e| e.0))
        .chain(held.iter().map(id))
        .collect();
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    prop_assert_eq!(all.len(), n);
    drop(held);
    drop(sink);
    prop_assert_eq!(source.count(), count as usize);
    prop_assert_eq!(source.buffers_allocated(), count as usize);
    drop((source, other, on_expiry));
    sim.run_until_idle();
    // Buffers with timers freed by look-aside are freed by the pool's reaper
    // work item.
    prop_assert!(sim.wait_quiescent(std::time::Duration::from_secs(10)));
    prop_assert!(sim.counters().is_clean(), "{}", sim.counters());
    Ok(())
}

fn id_of(p: std::ptr::NonNull<u8>) -> usize {
    p.as_ptr() as usize
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn no_buffer_is_lost_or_duplicated(ops in proptest::collection::vec(op(), 1..120), count in 1u32..6, look_aside in any::<bool>()) {
        run(ops, count, look_aside)?;
    }
}
