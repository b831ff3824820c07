//! What a pool writes to its in-flight recorder: opening, each exhaustion
//! once (and the return after it), look-aside growth, overruns, closing;
//! into its own recorder or its owner's journal.

use dmf_buffer_pool::{BufferPool, BufferPoolConfig, SinkPool};
use dmf_sim::{Sim, SimConfig};
use dmf_wdf::recorder::Journal;

fn lines(journal: &Journal<Sim>) -> Vec<String> {
    let mut text = String::new();
    journal.recorder().write_to(&mut text).unwrap();
    text.lines()
        .map(|l| {
            l.split_once(' ')
                .unwrap()
                .1
                .split_once(' ')
                .unwrap()
                .1
                .to_owned()
        })
        .collect()
}

#[test]
fn each_exhaustion_is_recorded_once_and_so_is_the_recovery() {
    let sim = Sim::new(SimConfig::manual());
    let pool = BufferPool::new(&sim, BufferPoolConfig::new(1, 8)).unwrap();
    assert_eq!(pool.journal().recorder().name(), "BufferPool");
    let held = pool.get().unwrap();
    for _ in 0..5 {
        assert!(pool.get().is_err());
    }
    drop(held);
    let held = pool.get().unwrap();
    assert!(pool.get().is_err());
    drop(held);
    assert_eq!(
        lines(pool.journal()),
        [
            "DEBUG - BufferPool: source pool opened buffer_count=1 buffer_size=8 context_size=0 look_aside=false timers=false",
            "DEBUG - BufferPool: exhausted buffer_count=1",
            "DEBUG - BufferPool: a buffer is back after exhaustion",
            "DEBUG - BufferPool: exhausted buffer_count=1",
            "DEBUG - BufferPool: a buffer is back after exhaustion",
        ]
    );
}

#[test]
fn look_aside_growth_and_overruns_go_to_the_owners_journal() {
    let sim = Sim::new(SimConfig::manual());
    let owner = Journal::new(&sim, format_args!("CRT"));
    let pool = BufferPool::new_in(
        &sim,
        BufferPoolConfig::new(1, 8).with_look_aside(true),
        owner.about(3 << 32 | 1),
    )
    .unwrap();
    let a = pool.get().unwrap();
    let mut b = pool.get().unwrap();
    let raw = b.raw_buffer();
    // SAFETY: the guard byte lies inside the buffer's block, which we own.
    unsafe { raw.as_ptr().add(raw.len()).write(0xEE) };
    assert!(pool.put(b).is_err());
    drop(a);
    drop(pool);
    let got = lines(&owner);
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(got[0].starts_with("DEBUG Target#1.3 BufferPool: source pool opened"));
    assert_eq!(
        got[1],
        "DEBUG Target#1.3 BufferPool: look-aside grew extra=1"
    );
    assert_eq!(
        got[2],
        "ERROR Target#1.3 BufferPool: overrun, guards repaired data=true context=false overruns=1"
    );
    assert_eq!(
        got[3],
        "DEBUG Target#1.3 BufferPool: source pool closed still_out=0"
    );
    assert!(sim.leak_check(std::time::Duration::from_secs(5)).is_ok());
}

#[test]
fn sinks_record_overruns_and_closing() {
    let sim = Sim::new(SimConfig::manual());
    let pool = BufferPool::new(&sim, BufferPoolConfig::new(2, 8)).unwrap();
    let sink = SinkPool::new(&sim);
    let mut b = pool.get().unwrap();
    let raw = b.raw_buffer();
    // SAFETY: as above.
    unsafe { raw.as_ptr().add(raw.len()).write(0xEE) };
    assert!(sink.put(b).is_err());
    sink.put(pool.get().unwrap()).unwrap();
    drop(sink);
    let dump = sim.recorder_dump();
    assert!(dump.contains("== BufferPool sink (dropped) =="), "{dump}");
    assert!(
        dump.contains("ERROR - BufferPool: overrun in a sink, guards repaired data=true context=false signature=false overruns=1"),
        "{dump}"
    );
    assert!(
        dump.contains("DEBUG - BufferPool: sink closed returned=2"),
        "{dump}"
    );
}
