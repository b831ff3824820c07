//! DMF's BufferPool test (`Dmf_Tests_BufferPool.c`): a source pool
//! of 16 buffers of 32 bytes with an 8-byte context, timers and look-aside,
//! a sink, worker threads doing BP-1..BP-4 and the BP-5 timer callback,
//! validating signature, CRC and parameters (BP-V) everywhere.

use std::sync::Arc;

use dmf_buffer_pool::{
    BufferPool, BufferPoolConfig, EnumerationDisposition, ExpiryCallback, PoolBuffer, SinkPool,
};
use dmf_sim::{Sim, SplitMix64};

use super::stats::Stats;

const SIZE: usize = 32;
const CONTEXT: usize = 8;
const SIGNATURE: u32 = u32::from_le_bytes(*b"GISB");
/// DMF: `sink.count() >= 24` skips BP-1.
const SINK_LIMIT: usize = 24;

/// CRC-16/CCITT-FALSE.
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The pools of the scenario.
pub(crate) struct BpScenario {
    pub(crate) source: BufferPool<Sim>,
    pub(crate) sink: SinkPool<Sim>,
    expiry: Arc<dyn ExpiryCallback<Sim>>,
    stats: Arc<Stats>,
}

/// BP-V on a guard.
fn validate(stats: &Stats, source: &BufferPool<Sim>, b: &PoolBuffer<Sim>, where_: &str) {
    let ctx = b.context();
    let signature = u32::from_le_bytes([ctx[0], ctx[1], ctx[2], ctx[3]]);
    let crc = u16::from_le_bytes([ctx[4], ctx[5]]);
    if b.buffer_size() != SIZE || b.context_size() != CONTEXT {
        stats.violation(format!(
            "bp {where_}: sizes {} / {} (expected {SIZE} / {CONTEXT})",
            b.buffer_size(),
            b.context_size()
        ));
    }
    if signature != SIGNATURE || crc != crc16(b.data()) {
        stats.violation(format!(
            "bp {where_}: signature {signature:#x} crc {crc:#x} (expected {SIGNATURE:#x}, {:#x})",
            crc16(b.data())
        ));
    }
    match source.parameters(b) {
        Ok(p) if p.buffer_size == SIZE && p.context_size == CONTEXT && p.data == b.data_ptr() => {}
        Ok(p) => stats.violation(format!(
            "bp {where_}: parameters {p:?} do not match the buffer"
        )),
        Err(s) => stats.violation(format!("bp {where_}: parameters failed with {s}")),
    }
    if let Err(o) = b.check_guards() {
        stats.violation(format!("bp {where_}: {o}"));
    }
}

impl BpScenario {
    pub(crate) fn new(sim: &Sim, stats: Arc<Stats>) -> dmf_wdf::Result<Self> {
        let source = BufferPool::new(
            sim,
            BufferPoolConfig::new(16, SIZE as u32)
                .with_context_size(CONTEXT as u32)
                .with_timers(true)
                .with_look_aside(true),
        )?;
        let sink = SinkPool::new(sim);
        // BP-5: validate and send home. The callback owns nothing but the
        // statistics (the source is reached through the buffer's home).
        let expiry: Arc<dyn ExpiryCallback<Sim>> = {
            let stats = Arc::clone(&stats);
            Arc::new(move |_sink: &SinkPool<Sim>, b: PoolBuffer<Sim>| {
                let ctx = b.context();
                let signature = u32::from_le_bytes([ctx[0], ctx[1], ctx[2], ctx[3]]);
                let crc = u16::from_le_bytes([ctx[4], ctx[5]]);
                if signature != SIGNATURE || crc != crc16(b.data()) {
                    stats.violation(format!(
                        "bp timer callback: signature {signature:#x} crc {crc:#x}"
                    ));
                }
                match b.put_home() {
                    Ok(()) => stats.op("bp.5.expired"),
                    Err(o) => stats.violation(format!("bp timer callback: {o}")),
                }
            })
        };
        Ok(BpScenario {
            source,
            sink,
            expiry,
            stats,
        })
    }

    /// One random action (BP-1..BP-4).
    pub(crate) fn action(&self, rng: &mut SplitMix64) {
        let stats = &self.stats;
        match rng.range_inclusive(0, 3) {
            0 => {
                // BP-1 acquire.
                if self.sink.count() >= SINK_LIMIT {
                    stats.op("bp.1.sink_full");
                    return;
                }
                let mut b = match self.source.get() {
                    Ok(b) => b,
                    Err(s) => {
                        stats.status("bp", s);
                        return;
                    }
                };
                let (data, ctx) = b.split_mut();
                for (i, x) in data.iter_mut().enumerate() {
                    *x = i as u8;
                }
                let crc = crc16(data);
                ctx[..4].copy_from_slice(&SIGNATURE.to_le_bytes());
                ctx[4..6].copy_from_slice(&crc.to_le_bytes());
                validate(stats, &self.source, &b, "acquire");
                let r = match rng.range_inclusive(0, 2) {
                    0 => self.sink.put(b).map_err(|o| o.status()),
                    1 => self.sink.put_at_head(b).map_err(|o| o.status()),
                    _ => {
                        let ms = rng.range_inclusive(1, 100);
                        self.sink
                            .put_with_timer(b, ms, Arc::clone(&self.expiry))
                            .map_err(|e| e.status())
                    }
                };
                stats.result("bp", &r);
                stats.op("bp.1.acquire");
            }
            1 => {
                // BP-2 return.
                match self.sink.get() {
                    Ok(b) => {
                        validate(stats, &self.source, &b, "return");
                        let r = self.source.put(b).map_err(|e| e.status());
                        stats.result("bp", &r);
                    }
                    // Empty is fine.
                    Err(s) => stats.status("bp", s),
                }
                stats.op("bp.2.return");
            }
            2 => {
                // BP-3 enumerate with one disposition for every buffer.
                let d = EnumerationDisposition::ALL[rng.range_inclusive(0, 6) as usize];
                let mut bad = 0usize;
                let removed = self.sink.enumerate(|e| {
                    let ctx = e.context();
                    let signature = u32::from_le_bytes([ctx[0], ctx[1], ctx[2], ctx[3]]);
                    let crc = u16::from_le_bytes([ctx[4], ctx[5]]);
                    if signature != SIGNATURE || crc != crc16(e.data()) || !e.is_from(&self.source)
                    {
                        bad += 1;
                    }
                    d
                });
                if bad > 0 {
                    stats.violation(format!("bp enumerate: {bad} buffer(s) failed validation"));
                }
                if let Some(b) = removed {
                    validate(stats, &self.source, &b, "enumerate");
                    let r = self.source.put(b).map_err(|e| e.status());
                    stats.result("bp", &r);
                }
                stats.op("bp.3.enumerate");
            }
            _ => {
                // BP-4 count (two workers can each pass the check once).
                let n = self.sink.count();
                if n > SINK_LIMIT + 2 {
                    stats.violation(format!("bp count: sink holds {n} > {}", SINK_LIMIT + 2));
                }
                stats.op("bp.4.count");
            }
        }
    }

    /// A one-line state for progress and dumps.
    pub(crate) fn describe(&self) -> String {
        format!(
            "source free {} in use {} allocated {}, sink {}",
            self.source.count(),
            self.source.buffers_in_use(),
            self.source.buffers_allocated(),
            self.sink.count()
        )
    }

    /// Empties the sink and checks every buffer came home.
    pub(crate) fn finish(&self) -> Result<(), String> {
        // A buffer whose timer is firing is skipped by `get`: its handler
        // sends it home; retry until the sink is empty.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            while let Ok(b) = self.sink.get() {
                validate(&self.stats, &self.source, &b, "drain");
                drop(b);
            }
            if self.sink.count() == 0 || std::time::Instant::now() > deadline {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let in_use = self.source.buffers_in_use();
        if in_use != 0 || self.sink.count() != 0 {
            return Err(format!(
                "buffer pool: {in_use} buffer(s) still in use after the drain ({})",
                self.describe()
            ));
        }
        if self.source.overruns_detected() != 0 {
            return Err(format!(
                "buffer pool: {} overrun(s) detected",
                self.source.overruns_detected()
            ));
        }
        Ok(())
    }
}
