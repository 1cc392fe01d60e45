//! `curve-v1`: the synthetic learning curves of the shared early-termination
//! benchmark (`shared/bench/curves.py`), ported bit for bit so benchmarks and
//! tests in Rust see exactly the curves Optuna's reference numbers came from.
//! Needs SHA-256 for its noise; a 60-line one lives here rather than a new
//! dependency, checked against the FIPS 180-2 test vectors.

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
    let h = sha256(key.as_bytes());
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

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// SHA-256 of `data` (FIPS 180-4).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks_exact(64) {
        compress(&mut h, block);
    }
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

fn compress(h: &mut [u32; 8], block: &[u8]) {
    let mut w = [0u32; 64];
    for (i, bytes) in block.chunks_exact(4).enumerate() {
        w[i] = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    }
    for i in 16..64 {
        let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
        let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16]
            .wrapping_add(s0)
            .wrapping_add(w[i - 7])
            .wrapping_add(s1);
    }
    let mut v = *h;
    for i in 0..64 {
        let s1 = v[4].rotate_right(6) ^ v[4].rotate_right(11) ^ v[4].rotate_right(25);
        let ch = (v[4] & v[5]) ^ (!v[4] & v[6]);
        let t1 = v[7]
            .wrapping_add(s1)
            .wrapping_add(ch)
            .wrapping_add(K[i])
            .wrapping_add(w[i]);
        let s0 = v[0].rotate_right(2) ^ v[0].rotate_right(13) ^ v[0].rotate_right(22);
        let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
        let t2 = s0.wrapping_add(maj);
        v = [
            t1.wrapping_add(t2),
            v[0],
            v[1],
            v[2],
            v[3].wrapping_add(t1),
            v[4],
            v[5],
            v[6],
        ];
    }
    for (x, y) in h.iter_mut().zip(v) {
        *x = x.wrapping_add(y);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn sha256_matches_fips_test_vectors() {
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(&sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&sha256(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
    }

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
