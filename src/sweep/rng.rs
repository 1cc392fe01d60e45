//! The sweep's randomness: ChaCha8 seeded from a `u64`. ChaCha's output and the
//! conversions below are fully specified, so a seed gives the same sweep on
//! every platform and release of azml.

use rand::{Rng, SeedableRng};

/// The generator every sampler takes.
pub type SweepRng = rand_chacha::ChaCha8Rng;

/// The generator for `--seed N`.
pub fn seeded(seed: u64) -> SweepRng {
    SweepRng::seed_from_u64(seed)
}

/// Uniform in `[0, 1)` with 53 random bits.
pub fn unit(rng: &mut SweepRng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A standard normal draw (Box–Muller; `1 - u` keeps the log finite).
pub fn standard_normal(rng: &mut SweepRng) -> f64 {
    let u1 = unit(rng);
    let u2 = unit(rng);
    (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Uniform integer in `[0, n)` (`n > 0`), unbiased (Lemire's method), the same
/// on 32- and 64-bit targets.
pub fn below(rng: &mut SweepRng, n: u64) -> u64 {
    if n <= 1 {
        return 0;
    }
    let threshold = n.wrapping_neg() % n;
    loop {
        let wide = u128::from(rng.next_u64()) * u128::from(n);
        if (wide as u64) >= threshold {
            return (wide >> 64) as u64;
        }
    }
}

/// A uniformly chosen index into a slice of length `len` (`len > 0`).
pub fn index(rng: &mut SweepRng, len: usize) -> usize {
    below(rng, len as u64) as usize
}
