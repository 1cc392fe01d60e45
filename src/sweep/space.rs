//! Search-space types shared by the hdconfig model and the samplers.

/// One of v1's ten parameter expressions. Bounds are as written in the hdconfig
/// (for the `log*` forms, `min`/`max` are in log space, as v1 documents).
#[derive(Debug, Clone, PartialEq)]
pub enum Expression {
    Choice(Vec<serde_json::Value>),
    RandInt { upper: i64 },
    Uniform { min: f64, max: f64 },
    QUniform { min: f64, max: f64, q: f64 },
    LogUniform { min: f64, max: f64 },
    QLogUniform { min: f64, max: f64, q: f64 },
    Normal { mu: f64, sigma: f64 },
    QNormal { mu: f64, sigma: f64, q: f64 },
    LogNormal { mu: f64, sigma: f64 },
    QLogNormal { mu: f64, sigma: f64, q: f64 },
}

/// A named parameter as the training script receives it (`--lr`, `penalty`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    pub name: String,
    pub expression: Expression,
}

impl Parameter {
    /// The flag the script receives the value after: `--name` for a bare
    /// name; names already starting with `-` are kept (v1). Local and Azure
    /// sweeps both pass it, so a script sees the same argv on either.
    pub fn flag(&self) -> String {
        if self.name.starts_with('-') {
            self.name.clone()
        } else {
            format!("--{}", self.name)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SamplingKind {
    Random,
    Grid,
    Bayesian,
}

use super::rng::{SweepRng, below, index, standard_normal, unit};
use serde_json::Value;

impl Expression {
    /// The v1 name (`choice`, `quniform`, …) used in messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Expression::Choice(_) => "choice",
            Expression::RandInt { .. } => "randint",
            Expression::Uniform { .. } => "uniform",
            Expression::QUniform { .. } => "quniform",
            Expression::LogUniform { .. } => "loguniform",
            Expression::QLogUniform { .. } => "qloguniform",
            Expression::Normal { .. } => "normal",
            Expression::QNormal { .. } => "qnormal",
            Expression::LogNormal { .. } => "lognormal",
            Expression::QLogNormal { .. } => "qlognormal",
        }
    }

    /// Draw one value with v1 semantics. `choice` returns the user's value as
    /// written, `randint` an integer in `[0, upper)`, the `q*` forms
    /// `round(x / q) · q` printed cleanly (see [`quantize`]).
    pub fn sample(&self, rng: &mut SweepRng) -> Value {
        match self {
            Expression::Choice(values) => match values.len() {
                0 => Value::Null,
                n => values[index(rng, n)].clone(),
            },
            Expression::RandInt { upper } => Value::from(below(rng, (*upper).max(1) as u64) as i64),
            Expression::Uniform { min, max } => number(uniform(rng, *min, *max)),
            Expression::QUniform { min, max, q } => quantize(uniform(rng, *min, *max), *q),
            Expression::LogUniform { min, max } => number(uniform(rng, *min, *max).exp()),
            Expression::QLogUniform { min, max, q } => quantize(uniform(rng, *min, *max).exp(), *q),
            Expression::Normal { mu, sigma } => number(mu + sigma * standard_normal(rng)),
            Expression::QNormal { mu, sigma, q } => quantize(mu + sigma * standard_normal(rng), *q),
            Expression::LogNormal { mu, sigma } => {
                number((mu + sigma * standard_normal(rng)).exp())
            }
            Expression::QLogNormal { mu, sigma, q } => {
                quantize((mu + sigma * standard_normal(rng)).exp(), *q)
            }
        }
    }

    /// Every value the expression can produce, when that set is finite:
    /// `choice` (each value once, in the order written), `randint`, and the
    /// bounded quantized forms `quniform`/`qloguniform` (so random sampling
    /// never repeats them either and stops when they are used up); `None` for
    /// the continuous and unbounded forms.
    pub fn finite_values(&self) -> Option<Vec<Value>> {
        match self {
            Expression::Choice(values) => {
                let mut distinct: Vec<Value> = Vec::with_capacity(values.len());
                for v in values {
                    if !distinct.contains(v) {
                        distinct.push(v.clone());
                    }
                }
                Some(distinct)
            }
            Expression::RandInt { upper } => Some((0..(*upper).max(1)).map(Value::from).collect()),
            Expression::QUniform { min, max, q } => quantized_steps(min / q, max / q, *q),
            Expression::QLogUniform { min, max, q } => {
                quantized_steps(min.exp() / q, max.exp() / q, *q)
            }
            _ => None,
        }
    }
}

/// Quantized spaces with more values than this are sampled as continuous.
const MAX_ENUMERATED_STEPS: f64 = 1_000_000.0;

/// The values `round(x / q) · q` takes for `x / q` in `[lo, hi]`.
fn quantized_steps(lo: f64, hi: f64, q: f64) -> Option<Vec<Value>> {
    let (first, last) = (lo.round(), hi.round());
    let count = last - first + 1.0;
    if !count.is_finite() || !(1.0..=MAX_ENUMERATED_STEPS).contains(&count) {
        return None;
    }
    Some(
        (0..count as i64)
            .map(|i| quantize((first + i as f64) * q, q))
            .collect(),
    )
}

fn uniform(rng: &mut SweepRng, min: f64, max: f64) -> f64 {
    min + (max - min) * unit(rng)
}

/// A float as JSON; non-finite values (an overflowing `lognormal`) become null
/// rather than a panic.
pub(crate) fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// `round(x / q) · q` without float noise: `0.30000000000000004` is printed as
/// `0.3` because the result is rounded to the number of decimals `q` has.
/// An integral `q` gives a JSON integer, so scripts can `int(arg)` it.
pub fn quantize(x: f64, q: f64) -> Value {
    if q.is_nan() || q <= 0.0 || !x.is_finite() {
        return number(x);
    }
    let steps = (x / q).round();
    let decimals = decimals_of(q);
    if decimals == 0 && (steps * q).abs() < 9.0e15 {
        return Value::from((steps * q) as i64);
    }
    let raw = steps * q;
    let clean = format!("{raw:.decimals$}").parse::<f64>().unwrap_or(raw);
    number(clean)
}

/// How many decimal digits `q` needs (0.25 → 2, 5 → 0); at most 15.
fn decimals_of(q: f64) -> usize {
    (0..=15)
        .find(|&d| {
            let scaled = q * 10f64.powi(d as i32);
            (scaled - scaled.round()).abs() <= 1e-9 * scaled.abs().max(1.0)
        })
        .unwrap_or(15)
}

/// Canonical text of a configuration, used to detect repeats.
pub fn config_key(values: &[Value]) -> String {
    serde_json::to_string(values).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::rng::seeded;

    #[test]
    fn bare_names_get_double_dash_and_dashed_names_stay() {
        let flag = |name: &str| {
            Parameter {
                name: name.into(),
                expression: Expression::Choice(vec![]),
            }
            .flag()
        };
        assert_eq!(flag("lr"), "--lr");
        assert_eq!(flag("--penalty"), "--penalty");
        assert_eq!(flag("-k"), "-k");
    }

    fn draws(e: &Expression, n: usize, seed: u64) -> Vec<f64> {
        let mut rng = seeded(seed);
        (0..n)
            .map(|_| e.sample(&mut rng).as_f64().expect("number"))
            .collect()
    }

    fn mean(xs: &[f64]) -> f64 {
        xs.iter().sum::<f64>() / xs.len() as f64
    }

    fn sd(xs: &[f64]) -> f64 {
        let m = mean(xs);
        (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / xs.len() as f64).sqrt()
    }

    #[test]
    fn choice_keeps_user_values_and_types() {
        let values = vec![
            Value::from(0.5),
            Value::from(1),
            Value::from("adam"),
            Value::Bool(true),
        ];
        let e = Expression::Choice(values.clone());
        let mut rng = seeded(3);
        let mut hits = [0usize; 4];
        for _ in 0..4000 {
            let v = e.sample(&mut rng);
            let i = values
                .iter()
                .position(|x| *x == v)
                .expect("one of the choices");
            hits[i] += 1;
        }
        // Each ~1000; 6 sigma of a binomial(4000, 1/4) is ~165.
        assert!(hits.iter().all(|&h| (835..1165).contains(&h)), "{hits:?}");
    }

    #[test]
    fn randint_is_integer_in_zero_to_upper_exclusive() {
        let e = Expression::RandInt { upper: 5 };
        let mut rng = seeded(1);
        let mut seen = [0usize; 5];
        for _ in 0..5000 {
            let v = e.sample(&mut rng);
            let i = v.as_i64().expect("JSON integer");
            assert!((0..5).contains(&i));
            seen[i as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 850), "{seen:?}");
    }

    #[test]
    fn uniform_stays_in_bounds_with_right_moments() {
        let xs = draws(&Expression::Uniform { min: 2.0, max: 6.0 }, 20000, 7);
        assert!(xs.iter().all(|x| (2.0..6.0).contains(x)));
        assert!((mean(&xs) - 4.0).abs() < 0.05, "mean {}", mean(&xs));
        // sd of U(2,6) = 4/√12 ≈ 1.1547
        assert!((sd(&xs) - 1.1547).abs() < 0.03);
    }

    #[test]
    fn quniform_rounds_to_multiples_of_q_without_float_noise() {
        let e = Expression::QUniform {
            min: 0.0,
            max: 1.0,
            q: 0.1,
        };
        let mut rng = seeded(11);
        for _ in 0..2000 {
            let v = e.sample(&mut rng);
            let text = v.to_string();
            assert!(text.len() <= 3, "clean decimal, got {text}");
            let x = v.as_f64().expect("number");
            assert!((x * 10.0 - (x * 10.0).round()).abs() < 1e-9);
        }
        assert_eq!(quantize(0.30000000000000004, 0.1).to_string(), "0.3");
        assert_eq!(quantize(0.26, 0.05).to_string(), "0.25");
    }

    #[test]
    fn quniform_with_integral_q_gives_json_integers() {
        let e = Expression::QUniform {
            min: 16.0,
            max: 128.0,
            q: 16.0,
        };
        let mut rng = seeded(2);
        for _ in 0..500 {
            let v = e.sample(&mut rng);
            let i = v.as_i64().expect("integer, not 32.0");
            assert_eq!(i % 16, 0);
            assert!((16..=128).contains(&i));
        }
    }

    #[test]
    fn loguniform_bounds_are_in_log_space() {
        let xs = draws(
            &Expression::LogUniform {
                min: (1e-4f64).ln(),
                max: (1e-1f64).ln(),
            },
            20000,
            5,
        );
        assert!(xs.iter().all(|x| (1e-4..1e-1).contains(x)));
        // log10 uniform on [-4, -1]: a third of the mass per decade.
        let below_1e3 = xs.iter().filter(|&&x| x < 1e-3).count() as f64 / xs.len() as f64;
        assert!((below_1e3 - 1.0 / 3.0).abs() < 0.015, "{below_1e3}");
        let logs: Vec<f64> = xs.iter().map(|x| x.ln()).collect();
        assert!((mean(&logs) - ((1e-4f64).ln() + (1e-1f64).ln()) / 2.0).abs() < 0.05);
    }

    #[test]
    fn qloguniform_is_quantized_exponential() {
        let e = Expression::QLogUniform {
            min: 0.0,
            max: (100f64).ln(),
            q: 1.0,
        };
        let mut rng = seeded(8);
        for _ in 0..2000 {
            let x = e.sample(&mut rng).as_i64().expect("integer");
            assert!((1..=100).contains(&x), "{x}");
        }
    }

    #[test]
    fn normal_has_mu_and_sigma() {
        let xs = draws(
            &Expression::Normal {
                mu: 3.0,
                sigma: 2.0,
            },
            40000,
            9,
        );
        assert!((mean(&xs) - 3.0).abs() < 0.04, "{}", mean(&xs));
        assert!((sd(&xs) - 2.0).abs() < 0.04, "{}", sd(&xs));
    }

    #[test]
    fn qnormal_rounds_normal_draws() {
        let e = Expression::QNormal {
            mu: 0.0,
            sigma: 10.0,
            q: 2.0,
        };
        let mut rng = seeded(4);
        let xs: Vec<f64> = (0..10000)
            .map(|_| e.sample(&mut rng).as_i64().expect("int") as f64)
            .collect();
        assert!(xs.iter().all(|x| x % 2.0 == 0.0));
        assert!((sd(&xs) - 10.0).abs() < 0.4);
    }

    #[test]
    fn lognormal_is_exp_of_normal() {
        let xs = draws(
            &Expression::LogNormal {
                mu: 1.0,
                sigma: 0.5,
            },
            40000,
            10,
        );
        assert!(xs.iter().all(|&x| x > 0.0));
        let logs: Vec<f64> = xs.iter().map(|x| x.ln()).collect();
        assert!((mean(&logs) - 1.0).abs() < 0.01);
        assert!((sd(&logs) - 0.5).abs() < 0.01);
    }

    #[test]
    fn qlognormal_is_quantized_and_positive_or_zero() {
        let e = Expression::QLogNormal {
            mu: 2.0,
            sigma: 0.5,
            q: 0.5,
        };
        let mut rng = seeded(12);
        for _ in 0..2000 {
            let x = e.sample(&mut rng).as_f64().expect("number");
            assert!(
                x >= 0.0 && (x * 2.0 - (x * 2.0).round()).abs() < 1e-9,
                "{x}"
            );
        }
    }

    #[test]
    fn same_seed_same_draws_other_seed_different() {
        let e = Expression::Uniform { min: 0.0, max: 1.0 };
        assert_eq!(draws(&e, 50, 42), draws(&e, 50, 42));
        assert_ne!(draws(&e, 50, 42), draws(&e, 50, 43));
    }

    /// Pins the generator: a change here changes every user's seeded sweep.
    #[test]
    fn seeded_stream_is_stable_across_releases() {
        let got = draws(&Expression::RandInt { upper: 1000 }, 6, 0);
        let again = draws(&Expression::RandInt { upper: 1000 }, 6, 0);
        assert_eq!(got, again);
        assert_eq!(got, PINNED_RANDINT_SEED0.to_vec());
    }

    const PINNED_RANDINT_SEED0: [f64; 6] = [709.0, 465.0, 699.0, 60.0, 879.0, 549.0];
}
