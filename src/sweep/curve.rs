//! `curve-v1`: the synthetic learning curves of the shared early-termination
//! benchmark (`shared/bench/curves.py`), ported bit for bit so benchmarks and
//! tests in Rust see exactly the curves Optuna's reference numbers came from.
//! The noise comes from SHA-256 of a text key, so it is identical in any language.

use sha2::{Digest, Sha256};

/// Epochs per curve.
pub const EPOCHS: usize = 20;
const NOISE_SIGMA: f64 = 0.005;

/// The curve's hyperparameters (lr log-uniform [1e-4, 1e-1], momentum
/// [0, 0.99], dropout [0, 0.5]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurveParams {
    pub lr: f64,
    pub momentum: f64,
    pub dropout: f64,
}

/// Asymptote A(θ).
pub fn final_accuracy(p: CurveParams) -> f64 {
    let l = p.lr.log10();
    (0.95
        - 0.08 * (l + 2.0).powi(2)
        - 0.5 * (p.dropout - 0.2).powi(2)
        - 0.2 * (p.momentum - 0.9).powi(2))
    .max(0.10)
}

/// τ(θ) in epochs: high learning rates learn fast.
pub fn time_constant(lr: f64) -> f64 {
    (1.5 * (0.1 / lr).powf(0.35)).clamp(1.0, 15.0)
}

/// The curve without noise at `epoch` (1-based).
pub fn noiseless(p: CurveParams, epoch: usize) -> f64 {
    final_accuracy(p) * (1.0 - (-(epoch as f64) / time_constant(p.lr)).exp())
}

/// y(θ, epoch) for a seed: noiseless curve plus deterministic Box–Muller noise.
pub fn value(p: CurveParams, epoch: usize, seed: u64) -> f64 {
    let bits = |x: f64| format!("{:016x}", x.to_bits());
    let key = format!(
        "curve-v1|{seed}|{epoch}|dropout={}|lr={}|momentum={}",
        bits(p.dropout),
        bits(p.lr),
        bits(p.momentum)
    );
    let h = Sha256::digest(key.as_bytes());
    let word = |i: usize| u64::from_be_bytes(h[i..i + 8].try_into().unwrap_or([0; 8]));
    let u1 = (word(0) >> 11) as f64 * 2f64.powi(-53);
    let u2 = (word(8) >> 11) as f64 * 2f64.powi(-53);
    let noise =
        NOISE_SIGMA * (-2.0 * (1.0 - u1).ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    noiseless(p, epoch) + noise
}

/// The whole curve, epochs 1..=EPOCHS.
pub fn curve(p: CurveParams, seed: u64) -> Vec<f64> {
    (1..=EPOCHS).map(|e| value(p, e, seed)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The port must reproduce the Python reference bit for bit.
    #[test]
    fn curve_port_matches_python_reference() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/sweep/curves_reference.json"
        );
        let text = std::fs::read_to_string(path).expect("reference file");
        let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
        let points = doc["points"].as_array().expect("points");
        assert_eq!(points.len(), 8);
        for point in points {
            let f = |k: &str| point["params"][k].as_f64().expect("param");
            let p = CurveParams {
                lr: f("lr"),
                momentum: f("momentum"),
                dropout: f("dropout"),
            };
            let seed = point["seed"].as_u64().expect("seed");
            let want: Vec<f64> = point["curve"]
                .as_array()
                .expect("curve")
                .iter()
                .filter_map(|v| v.as_f64())
                .collect();
            assert_eq!(curve(p, seed), want, "{p:?} seed {seed}");
        }
    }
}
