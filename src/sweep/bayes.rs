//! Bayesian sampling: a Gaussian process over the normalized space and
//! expected improvement, for `choice`, `uniform` and `quniform`.
//!
//! - The first [`initial_random`] suggestions are random (the GP needs data).
//! - `uniform`/`quniform` map to `[0, 1]`; `quniform` candidates are rounded
//!   to their grid *before* the GP sees them, so it models the values the
//!   script really gets. `choice` is one-hot encoded (categorical: no order is
//!   assumed between values), its dimensions sharing one length-scale.
//! - Running trials are "kriging believers": they enter the GP with its own
//!   predicted mean, which collapses the uncertainty there, so concurrent
//!   suggestions spread out instead of piling onto the same spot.
//! - EI is maximized over random candidates plus local perturbations of the
//!   best observed points and of the best candidates (shrinking steps).

use super::Goal;
use super::gp::{Gp, Hyper, Layout, expected_improvement};
use super::rng::{SweepRng, index, standard_normal, unit};
use super::sampler::{History, RandomSampler, Sampler, TrialState, cardinality};
use super::space::{Expression, Parameter, config_key, number, quantize};
use serde_json::Value;
use std::collections::HashSet;

/// Random suggestions before the GP takes over: one more than the number of
/// parameters, at least 3.
pub fn initial_random(parameters: usize) -> usize {
    (parameters + 1).max(3)
}

const RANDOM_CANDIDATES: usize = 512;
const PERTURB_PER_POINT: usize = 48;
const TOP_POINTS: usize = 5;
const REFINE_STEPS: [f64; 3] = [0.05, 0.015, 0.004];
/// Exploration margin of EI, in units of the standardized metric.
const XI: f64 = 0.01;

pub struct BayesianSampler {
    space: Vec<Parameter>,
    goal: Goal,
    layout: Layout,
    cardinality: Option<u64>,
    fallback: RandomSampler,
    /// Last fitted hyperparameters: a warm start for the next fit.
    warm: Option<Hyper>,
}

/// A candidate in sampler coordinates: per parameter a category index
/// (`choice`) or a position `u ∈ [0, 1]` (`uniform`, `quniform`).
type Raw = Vec<f64>;

impl BayesianSampler {
    pub fn new(space: &[Parameter], goal: Goal) -> Self {
        let mut group_of_dim = Vec::new();
        for (g, p) in space.iter().enumerate() {
            let dims = match &p.expression {
                Expression::Choice(values) => values.len(),
                _ => 1,
            };
            group_of_dim.extend(std::iter::repeat_n(g, dims));
        }
        Self {
            space: space.to_vec(),
            goal,
            layout: Layout {
                group_of_dim,
                groups: space.len(),
            },
            cardinality: cardinality(space),
            fallback: RandomSampler::new(space),
            warm: None,
        }
    }

    /// The values a raw point stands for (what the script receives).
    fn decode(&self, raw: &[f64]) -> Vec<Value> {
        self.space
            .iter()
            .zip(raw)
            .map(|(p, &r)| match &p.expression {
                Expression::Choice(values) => values[(r as usize).min(values.len() - 1)].clone(),
                Expression::Uniform { min, max } => number(min + r * (max - min)),
                Expression::QUniform { min, max, q } => quantize(min + r * (max - min), *q),
                _ => Value::Null,
            })
            .collect()
    }

    /// Raw coordinates of given values; `None` if a value is not in the space
    /// (a trial from an edited hdconfig, say).
    fn raw_of(&self, values: &[Value]) -> Option<Raw> {
        self.space
            .iter()
            .zip(values)
            .map(|(p, v)| match &p.expression {
                Expression::Choice(options) => {
                    options.iter().position(|o| o == v).map(|i| i as f64)
                }
                Expression::Uniform { min, max } | Expression::QUniform { min, max, .. } => {
                    let x = v.as_f64()?;
                    Some(if max > min {
                        (x - min) / (max - min)
                    } else {
                        0.0
                    })
                }
                _ => None,
            })
            .collect()
    }

    /// GP features of raw coordinates: one-hot for choices, positions as is.
    fn features(&self, raw: &[f64]) -> Vec<f64> {
        let mut f = Vec::with_capacity(self.layout.group_of_dim.len());
        for (p, &r) in self.space.iter().zip(raw) {
            match &p.expression {
                Expression::Choice(values) => {
                    f.extend((0..values.len()).map(|i| if i == r as usize { 1.0 } else { 0.0 }))
                }
                _ => f.push(r),
            }
        }
        f
    }

    /// Rounds quniform positions to their grid, so features match reality.
    fn snap(&self, raw: Raw) -> (Raw, Vec<Value>) {
        let values = self.decode(&raw);
        let snapped = self.raw_of(&values).unwrap_or(raw);
        (snapped, values)
    }

    fn random_raw(&self, rng: &mut SweepRng) -> Raw {
        self.space
            .iter()
            .map(|p| match &p.expression {
                Expression::Choice(values) => index(rng, values.len()) as f64,
                _ => unit(rng),
            })
            .collect()
    }

    fn perturb(&self, raw: &[f64], step: f64, rng: &mut SweepRng) -> Raw {
        let flip = 1.0 / self.space.len() as f64;
        self.space
            .iter()
            .zip(raw)
            .map(|(p, &r)| match &p.expression {
                Expression::Choice(values) if unit(rng) < flip => index(rng, values.len()) as f64,
                Expression::Choice(_) => r,
                _ => (r + step * standard_normal(rng)).clamp(0.0, 1.0),
            })
            .collect()
    }
}

/// Observations the GP learns from: raw points and the metric turned into
/// "higher is better".
struct Data {
    raw: Vec<Raw>,
    y: Vec<f64>,
    pending: Vec<Raw>,
    seen: HashSet<String>,
}

impl BayesianSampler {
    fn collect(&self, history: &History) -> Data {
        let mut data = Data {
            raw: vec![],
            y: vec![],
            pending: vec![],
            seen: HashSet::new(),
        };
        for t in &history.trials {
            data.seen.insert(config_key(&t.values));
            let Some(raw) = self.raw_of(&t.values) else {
                continue;
            };
            match (t.state, t.metric) {
                (TrialState::Running, _) => data.pending.push(raw),
                (_, Some(m)) if m.is_finite() => {
                    data.raw.push(raw);
                    data.y
                        .push(if self.goal == Goal::Maximize { m } else { -m });
                }
                _ => {}
            }
        }
        data
    }

    /// The GP on standardized observations, with pending trials believed at
    /// their predicted mean.
    fn model(&mut self, data: &Data, rng: &mut SweepRng) -> Option<(Gp, f64)> {
        let mean = data.y.iter().sum::<f64>() / data.y.len() as f64;
        let var = data.y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / data.y.len() as f64;
        let scale = if var > 1e-24 { var.sqrt() } else { 1.0 };
        let y: Vec<f64> = data.y.iter().map(|v| (v - mean) / scale).collect();
        let x: Vec<Vec<f64>> = data.raw.iter().map(|r| self.features(r)).collect();
        let gp = Gp::fit(&self.layout, &x, &y, self.warm.as_ref(), rng)?;
        self.warm = Some(gp.hyper.clone());
        let best = y.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if data.pending.is_empty() {
            return Some((gp, best));
        }
        let mut x_all = x;
        let mut y_all = y;
        for p in &data.pending {
            let f = self.features(p);
            y_all.push(gp.predict(&f).0);
            x_all.push(f);
        }
        let believer = Gp::condition(&self.layout, gp.hyper.clone(), &x_all, &y_all)?;
        Some((believer, best))
    }

    /// The unseen candidate with the highest expected improvement.
    fn maximize_ei(
        &self,
        gp: &Gp,
        best: f64,
        data: &Data,
        rng: &mut SweepRng,
    ) -> Option<Vec<Value>> {
        let mut scored: Vec<(f64, Raw, Vec<Value>)> = Vec::new();
        let consider = |raw: Raw, scored: &mut Vec<(f64, Raw, Vec<Value>)>| {
            let (raw, values) = self.snap(raw);
            if data.seen.contains(&config_key(&values)) {
                return;
            }
            let (m, sd) = gp.predict(&self.features(&raw));
            scored.push((expected_improvement(m, sd, best, XI), raw, values));
        };
        for _ in 0..RANDOM_CANDIDATES {
            let raw = self.random_raw(rng);
            consider(raw, &mut scored);
        }
        let mut order: Vec<usize> = (0..data.y.len()).collect();
        order.sort_by(|&a, &b| data.y[b].total_cmp(&data.y[a]));
        for &i in order.iter().take(TOP_POINTS) {
            for _ in 0..PERTURB_PER_POINT {
                let raw = self.perturb(&data.raw[i], 0.1, rng);
                consider(raw, &mut scored);
            }
        }
        for step in REFINE_STEPS {
            scored.sort_by(|a, b| b.0.total_cmp(&a.0));
            scored.truncate(64);
            let seeds: Vec<Raw> = scored
                .iter()
                .take(TOP_POINTS)
                .map(|s| s.1.clone())
                .collect();
            for s in &seeds {
                for _ in 0..PERTURB_PER_POINT / 2 {
                    let raw = self.perturb(s, step, rng);
                    consider(raw, &mut scored);
                }
            }
        }
        scored
            .into_iter()
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|s| s.2)
    }
}

impl Sampler for BayesianSampler {
    fn suggest(&mut self, history: &History, rng: &mut SweepRng) -> Option<Vec<Value>> {
        let data = self.collect(history);
        if let Some(card) = self.cardinality
            && data.seen.len() as u64 >= card
        {
            return None;
        }
        let warmup = history.trials.len() < initial_random(self.space.len()) || data.y.len() < 2;
        if !warmup
            && let Some((gp, best)) = self.model(&data, rng)
            && let Some(values) = self.maximize_ei(&gp, best, &data, rng)
        {
            return Some(values);
        }
        self.fallback.suggest(history, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::rng::seeded;

    fn param(name: &str, expression: Expression) -> Parameter {
        Parameter {
            name: name.into(),
            expression,
        }
    }

    /// Sequential sweep: suggest, evaluate `f`, record, `n` times.
    fn optimize(space: &[Parameter], goal: Goal, n: usize, f: impl Fn(&[Value]) -> f64) -> History {
        let mut sampler = BayesianSampler::new(space, goal);
        let mut rng = seeded(7);
        let mut history = History::default();
        for _ in 0..n {
            let values = sampler.suggest(&history, &mut rng).expect("suggestion");
            let metric = f(&values);
            let i = history.push_running(values);
            history.trials[i].state = TrialState::Completed;
            history.trials[i].metric = Some(metric);
        }
        history
    }

    #[test]
    fn finds_the_peak_of_a_smooth_function_on_the_quniform_grid() {
        let space = [param(
            "x",
            Expression::QUniform {
                min: 0.0,
                max: 10.0,
                q: 0.5,
            },
        )];
        let h = optimize(&space, Goal::Maximize, 12, |v| {
            -(v[0].as_f64().unwrap_or(0.0) - 3.3).powi(2)
        });
        for t in &h.trials {
            let x = t.values[0].as_f64().expect("number");
            assert_eq!((x * 2.0).fract(), 0.0, "{x} not on the 0.5 grid");
        }
        let best = h
            .trials
            .iter()
            .filter_map(|t| t.metric)
            .fold(f64::NEG_INFINITY, f64::max);
        assert!(
            (best + 0.04).abs() < 1e-9,
            "should find x = 3.5, best {best}"
        );
        let keys: HashSet<String> = h.trials.iter().map(|t| config_key(&t.values)).collect();
        assert_eq!(keys.len(), h.trials.len(), "never repeats a configuration");
    }

    #[test]
    fn minimize_goal_is_mirrored() {
        let space = [param(
            "x",
            Expression::Uniform {
                min: -2.0,
                max: 2.0,
            },
        )];
        let h = optimize(&space, Goal::Minimize, 14, |v| {
            (v[0].as_f64().unwrap_or(0.0) - 1.0).powi(2)
        });
        let best = h
            .trials
            .iter()
            .filter_map(|t| t.metric)
            .fold(f64::INFINITY, f64::min);
        assert!(best < 1e-3, "best {best}");
    }

    #[test]
    fn learns_which_category_is_good() {
        let names = ["sgd", "adam", "rmsprop"].map(Value::from).to_vec();
        let space = [
            param("opt", Expression::Choice(names)),
            param("x", Expression::Uniform { min: 0.0, max: 1.0 }),
        ];
        let h = optimize(&space, Goal::Maximize, 20, |v| {
            let bonus = if v[0] == "adam" { 1.0 } else { 0.0 };
            bonus - (v[1].as_f64().unwrap_or(0.0) - 0.5).powi(2)
        });
        let late_adam = h.trials[10..]
            .iter()
            .filter(|t| t.values[0] == "adam")
            .count();
        assert!(
            late_adam >= 8,
            "only {late_adam} of the last 10 used the good category"
        );
    }

    #[test]
    fn pending_trials_push_concurrent_suggestions_apart() {
        let space = [
            param("x", Expression::Uniform { min: 0.0, max: 1.0 }),
            param("y", Expression::Uniform { min: 0.0, max: 1.0 }),
        ];
        let mut h = optimize(&space, Goal::Maximize, 6, |v| {
            -(v[0].as_f64().unwrap_or(0.0) - 0.3).powi(2)
                - (v[1].as_f64().unwrap_or(0.0) - 0.6).powi(2)
        });
        let mut sampler = BayesianSampler::new(&space, Goal::Maximize);
        let mut rng = seeded(3);
        let mut suggestions = Vec::new();
        for _ in 0..3 {
            let values = sampler.suggest(&h, &mut rng).expect("suggestion");
            h.push_running(values.clone());
            suggestions.push(values);
        }
        let point = |v: &Vec<Value>| (v[0].as_f64().unwrap_or(0.0), v[1].as_f64().unwrap_or(0.0));
        for i in 0..3 {
            for j in 0..i {
                let (a, b) = (point(&suggestions[i]), point(&suggestions[j]));
                let d = ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt();
                assert!(d > 0.01, "suggestions {i} and {j} coincide: {a:?} {b:?}");
            }
        }
    }

    #[test]
    fn stops_when_an_all_choice_space_is_exhausted() {
        let space = [param(
            "a",
            Expression::Choice(vec![Value::from(1), Value::from(2), Value::from(3)]),
        )];
        let h = optimize(&space, Goal::Maximize, 3, |v| v[0].as_f64().unwrap_or(0.0));
        let mut sampler = BayesianSampler::new(&space, Goal::Maximize);
        assert!(sampler.suggest(&h, &mut seeded(1)).is_none());
    }
}
