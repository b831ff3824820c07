//! Deterministic pseudo-random numbers (SplitMix64).
//!
//! Every random choice the simulator makes (completion latency, fault
//! injection, the delays of the built-in devices) comes from a [`SplitMix64`]
//! stream derived from [`SimConfig::seed`](crate::SimConfig::seed), so a run is
//! reproducible from its seed as far as thread scheduling allows. Independent
//! streams (one per fault point, one per device, one for latency) keep one
//! source of randomness from perturbing another.

/// The SplitMix64 generator (Steele, Lea, Flood 2014): tiny, fast, and good
/// enough for simulation.
///
/// ```
/// use dmf_sim::SplitMix64;
/// let mut a = SplitMix64::new(42);
/// let mut b = SplitMix64::new(42);
/// assert_eq!(a.next_u64(), b.next_u64());
/// let x = a.range_inclusive(0, 5000);
/// assert!(x <= 5000);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub const fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// An independent stream number `stream` derived from `seed`.
    pub fn derive(seed: u64, stream: u64) -> Self {
        let mut mixer = SplitMix64::new(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        SplitMix64::new(mixer.next_u64() ^ stream)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniformly distributed value in `lo..=hi` (DMF's
    /// `TestsUtility_GenerateRandomNumber` is inclusive too). Returns `lo` if
    /// `hi <= lo`.
    pub fn range_inclusive(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        let span = hi - lo;
        if span == u64::MAX {
            return self.next_u64();
        }
        let n = span + 1;
        // Rejection sampling removes the modulo bias.
        let zone = u64::MAX - (u64::MAX % n) - 1;
        loop {
            let v = self.next_u64();
            if v <= zone {
                return lo + v % n;
            }
        }
    }

    /// `true` with probability `per_million / 1_000_000`.
    pub fn chance_per_million(&mut self, per_million: u32) -> bool {
        if per_million == 0 {
            return false;
        }
        if per_million >= 1_000_000 {
            return true;
        }
        self.range_inclusive(0, 999_999) < u64::from(per_million)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproducible_and_streams_differ() {
        let mut a = SplitMix64::derive(7, 1);
        let mut b = SplitMix64::derive(7, 1);
        let mut c = SplitMix64::derive(7, 2);
        let va: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let vb: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let vc: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(va, vb);
        assert_ne!(va, vc);
    }

    #[test]
    fn range_is_inclusive_and_bounded() {
        let mut r = SplitMix64::new(1);
        let mut seen_lo = false;
        let mut seen_hi = false;
        for _ in 0..10_000 {
            let v = r.range_inclusive(3, 6);
            assert!((3..=6).contains(&v));
            seen_lo |= v == 3;
            seen_hi |= v == 6;
        }
        assert!(seen_lo && seen_hi);
        assert_eq!(r.range_inclusive(5, 5), 5);
        assert_eq!(r.range_inclusive(9, 2), 9);
    }

    #[test]
    fn chance_extremes() {
        let mut r = SplitMix64::new(3);
        assert!(!r.chance_per_million(0));
        assert!(r.chance_per_million(1_000_000));
        let hits = (0..100_000)
            .filter(|_| r.chance_per_million(500_000))
            .count();
        assert!((45_000..55_000).contains(&hits), "{hits}");
    }
}
