//! Samplers: where the next configuration comes from. Every sampler reads the
//! sweep so far from a [`History`] (the driver records each suggestion as a
//! trial before asking again), so restarting from a stored history continues
//! the same sweep.

use super::bayes::BayesianSampler;
use super::rng::{SweepRng, below};
use super::space::{Expression, Parameter, SamplingKind, config_key};
use super::{Goal, SweepError};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// Where a trial (one child run) is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrialState {
    Running,
    Completed,
    Canceled,
    Failed,
}

/// One suggested configuration and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    /// One value per parameter, in `parameter_space` order.
    pub values: Vec<Value>,
    pub state: TrialState,
    /// The trial's primary metric by v1's best-run rule, once it logged one.
    pub metric: Option<f64>,
}

/// All trials of a sweep, in suggestion order, with the set of configurations
/// tried so far kept up to date: rebuilding it for every suggestion made a
/// sweep's sampling O(N²).
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Grow with [`History::push_running`] and shrink with
    /// [`History::truncate`]; a trial's values never change once pushed.
    pub trials: Vec<Trial>,
    /// `config_key` of each trial, parallel to `trials`.
    keys: Vec<String>,
    /// How many trials have each configuration.
    seen: HashMap<String, usize>,
}

impl PartialEq for History {
    fn eq(&self, other: &Self) -> bool {
        self.trials == other.trials
    }
}

impl History {
    /// Record a new running trial (what the driver does with each suggestion).
    pub fn push_running(&mut self, values: Vec<Value>) -> usize {
        self.sync_keys();
        self.remember(config_key(&values));
        self.trials.push(Trial {
            values,
            state: TrialState::Running,
            metric: None,
        });
        self.trials.len() - 1
    }

    /// Forget every trial from `len` on (a prepared child that never started).
    pub fn truncate(&mut self, len: usize) {
        self.sync_keys();
        for key in self.keys.drain(len.min(self.keys.len())..) {
            if let Some(count) = self.seen.get_mut(&key) {
                *count -= 1;
                if *count == 0 {
                    self.seen.remove(&key);
                }
            }
        }
        self.trials.truncate(len);
    }

    /// Whether some trial already has this configuration.
    pub fn has_tried(&self, values: &[Value]) -> bool {
        let key = config_key(values);
        if self.keys_in_sync() {
            self.seen.contains_key(&key)
        } else {
            self.trials.iter().any(|t| config_key(&t.values) == key)
        }
    }

    /// Number of distinct configurations tried.
    pub fn distinct(&self) -> usize {
        if self.keys_in_sync() {
            self.seen.len()
        } else {
            let keys: HashSet<String> = self.trials.iter().map(|t| config_key(&t.values)).collect();
            keys.len()
        }
    }

    fn keys_in_sync(&self) -> bool {
        self.keys.len() == self.trials.len()
    }

    fn remember(&mut self, key: String) {
        *self.seen.entry(key.clone()).or_default() += 1;
        self.keys.push(key);
    }

    /// Catch up with trials pushed or removed through the public field.
    fn sync_keys(&mut self) {
        if self.keys.len() > self.trials.len() {
            self.keys.clear();
            self.seen.clear();
        }
        for i in self.keys.len()..self.trials.len() {
            let key = config_key(&self.trials[i].values);
            self.remember(key);
        }
    }
}

/// A strategy for the next configuration. `None` means the space is exhausted.
pub trait Sampler: Send {
    fn suggest(&mut self, history: &History, rng: &mut SweepRng) -> Option<Vec<Value>>;
}

/// The sampler an hdconfig asks for, after checking that its expressions are
/// ones that sampling supports (grid: `choice` only; Bayesian: `choice`,
/// `uniform`, `quniform`).
pub fn new_sampler(
    kind: SamplingKind,
    space: &[Parameter],
    goal: Goal,
) -> Result<Box<dyn Sampler>, SweepError> {
    if space.is_empty() {
        return Err(SweepError::EmptySpace);
    }
    check_supported(kind, space)?;
    Ok(match kind {
        SamplingKind::Random => Box::new(RandomSampler::new(space)),
        SamplingKind::Grid => Box::new(GridSampler::new(space)),
        SamplingKind::Bayesian => Box::new(BayesianSampler::new(space, goal)),
    })
}

fn check_supported(kind: SamplingKind, space: &[Parameter]) -> Result<(), SweepError> {
    let allowed: fn(&Expression) -> bool = match kind {
        SamplingKind::Random => |_| true,
        SamplingKind::Grid => |e| matches!(e, Expression::Choice(_)),
        SamplingKind::Bayesian => |e| {
            matches!(
                e,
                Expression::Choice(_) | Expression::Uniform { .. } | Expression::QUniform { .. }
            )
        },
    };
    for p in space {
        if let Expression::Choice(values) = &p.expression
            && values.is_empty()
        {
            return Err(SweepError::EmptyChoice(p.name.clone()));
        }
        if !allowed(&p.expression) {
            return Err(SweepError::Unsupported {
                sampling: kind,
                parameter: p.name.clone(),
                expression: p.expression.kind_name(),
            });
        }
    }
    Ok(())
}

/// Number of distinct configurations, `None` when infinite or beyond `u64`.
pub fn cardinality(space: &[Parameter]) -> Option<u64> {
    space.iter().try_fold(1u64, |acc, p| {
        let n = p.expression.finite_values()?.len() as u64;
        acc.checked_mul(n)
    })
}

/// Independent draws from each expression. On a finite space it never repeats
/// a configuration and stops once every one has been tried.
pub struct RandomSampler {
    space: Vec<Parameter>,
    cardinality: Option<u64>,
}

impl RandomSampler {
    pub fn new(space: &[Parameter]) -> Self {
        Self {
            space: space.to_vec(),
            cardinality: cardinality(space),
        }
    }

    /// Rejection first; once most of a small space is used, pick uniformly
    /// among the configurations left so the last ones don't take forever.
    fn suggest_finite(
        &self,
        card: u64,
        history: &History,
        rng: &mut SweepRng,
    ) -> Option<Vec<Value>> {
        if history.distinct() as u64 >= card {
            return None;
        }
        for _ in 0..64 {
            let values = draw(&self.space, rng);
            if !history.has_tried(&values) {
                return Some(values);
            }
        }
        let left: Vec<u64> = (0..card)
            .filter(|&i| !history.has_tried(&grid_point(&self.space, i)))
            .collect();
        let pick = *left.get(below(rng, left.len() as u64) as usize)?;
        Some(grid_point(&self.space, pick))
    }
}

impl Sampler for RandomSampler {
    fn suggest(&mut self, history: &History, rng: &mut SweepRng) -> Option<Vec<Value>> {
        if let Some(card) = self.cardinality {
            return self.suggest_finite(card, history, rng);
        }
        // Quantized expressions can collide; avoid repeats while it is cheap.
        let mut values = draw(&self.space, rng);
        for _ in 0..64 {
            if !history.has_tried(&values) {
                break;
            }
            values = draw(&self.space, rng);
        }
        Some(values)
    }
}

fn draw(space: &[Parameter], rng: &mut SweepRng) -> Vec<Value> {
    space.iter().map(|p| p.expression.sample(rng)).collect()
}

/// The Cartesian product of the `choice` values, in odometer order: the last
/// parameter varies fastest (like Python's `itertools.product`).
pub struct GridSampler {
    space: Vec<Parameter>,
    total: u64,
}

impl GridSampler {
    pub fn new(space: &[Parameter]) -> Self {
        Self {
            space: space.to_vec(),
            total: cardinality(space).unwrap_or(u64::MAX),
        }
    }
}

impl Sampler for GridSampler {
    fn suggest(&mut self, history: &History, _rng: &mut SweepRng) -> Option<Vec<Value>> {
        let next = history.trials.len() as u64;
        (next < self.total).then(|| grid_point(&self.space, next))
    }
}

/// The `index`-th configuration of a finite space in odometer order.
fn grid_point(space: &[Parameter], mut index: u64) -> Vec<Value> {
    let mut values = vec![Value::Null; space.len()];
    for (slot, p) in values.iter_mut().zip(space).rev() {
        let options = p.expression.finite_values().unwrap_or_default();
        if options.is_empty() {
            continue;
        }
        let n = options.len() as u64;
        *slot = options[(index % n) as usize].clone();
        index /= n;
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::rng::seeded;
    use serde_json::json;

    fn param(name: &str, expression: Expression) -> Parameter {
        Parameter {
            name: name.into(),
            expression,
        }
    }

    /// The set of tried configurations is kept as trials come and go (it
    /// was rebuilt from every trial for each suggestion: O(N²) per sweep).
    #[test]
    fn tried_configurations_follow_pushes_and_truncation() {
        let a = vec![Value::from(1)];
        let b = vec![Value::from(2)];
        let mut history = History::default();
        history.push_running(a.clone());
        history.push_running(b.clone());
        history.push_running(a.clone());
        assert!(history.has_tried(&a) && history.has_tried(&b));
        assert_eq!(history.distinct(), 2);
        history.truncate(2);
        assert!(history.has_tried(&a), "an earlier trial still has it");
        history.truncate(1);
        assert!(!history.has_tried(&b));
        assert_eq!(history.distinct(), 1);
        // Trials changed through the public field are still answered right.
        history.trials.push(history.trials[0].clone());
        history.trials[1].values = b.clone();
        assert!(history.has_tried(&b));
        assert_eq!(history.distinct(), 2);
        history.trials.clear();
        assert!(!history.has_tried(&a));
        history.push_running(b.clone());
        assert!(history.has_tried(&b) && !history.has_tried(&a));
    }

    fn choice(name: &str, values: &[i64]) -> Parameter {
        param(
            name,
            Expression::Choice(values.iter().map(|&v| Value::from(v)).collect()),
        )
    }

    /// Ask until the sampler stops (or `limit`), recording each suggestion.
    fn run(sampler: &mut dyn Sampler, seed: u64, limit: usize) -> Vec<Vec<Value>> {
        let mut rng = seeded(seed);
        let mut history = History::default();
        while history.trials.len() < limit {
            let Some(values) = sampler.suggest(&history, &mut rng) else {
                break;
            };
            history.push_running(values);
        }
        history.trials.into_iter().map(|t| t.values).collect()
    }

    #[test]
    fn grid_is_cartesian_product_with_last_parameter_fastest() {
        let space = [choice("a", &[1, 2]), choice("b", &[10, 20, 30])];
        let mut grid = new_sampler(SamplingKind::Grid, &space, Goal::Maximize).expect("grid");
        let got = run(grid.as_mut(), 0, 100);
        let want: Vec<Vec<Value>> = [(1, 10), (1, 20), (1, 30), (2, 10), (2, 20), (2, 30)]
            .iter()
            .map(|&(a, b)| vec![Value::from(a), Value::from(b)])
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn grid_total_is_min_of_product_and_limit() {
        let space = [choice("a", &[1, 2, 3]), choice("b", &[1, 2, 3])];
        let mut grid = new_sampler(SamplingKind::Grid, &space, Goal::Maximize).expect("grid");
        assert_eq!(run(grid.as_mut(), 0, 4).len(), 4);
        let mut grid = new_sampler(SamplingKind::Grid, &space, Goal::Maximize).expect("grid");
        assert_eq!(run(grid.as_mut(), 0, 100).len(), 9);
    }

    #[test]
    fn grid_refuses_non_choice_expressions() {
        let space = [param("lr", Expression::Uniform { min: 0.0, max: 1.0 })];
        let err = new_sampler(SamplingKind::Grid, &space, Goal::Maximize)
            .err()
            .expect("refused");
        assert!(
            err.to_string()
                .contains("grid sampling does not support uniform() (parameter 'lr')"),
            "{err}"
        );
    }

    #[test]
    fn bayesian_refuses_log_and_normal_expressions() {
        let space = [param(
            "lr",
            Expression::LogUniform {
                min: -5.0,
                max: -1.0,
            },
        )];
        let err = new_sampler(SamplingKind::Bayesian, &space, Goal::Maximize)
            .err()
            .expect("refused");
        assert!(err.to_string().contains("loguniform"), "{err}");
    }

    #[test]
    fn random_never_repeats_and_stops_when_finite_space_is_exhausted() {
        let space = [
            choice("a", &[1, 2, 3]),
            param("b", Expression::RandInt { upper: 4 }),
        ];
        let mut random = new_sampler(SamplingKind::Random, &space, Goal::Maximize).expect("random");
        let got = run(random.as_mut(), 5, 1000);
        assert_eq!(got.len(), 12);
        let distinct: HashSet<String> = got.iter().map(|v| config_key(v)).collect();
        assert_eq!(distinct.len(), 12);
    }

    /// `quniform [0, 1, 1]` has two values and `choice [1, 1, 2]` two
    /// distinct ones: random repeated them, grid ran 1 twice.
    #[test]
    fn quantized_and_duplicate_choice_spaces_are_finite_and_never_repeat() {
        let q = param(
            "x",
            Expression::QUniform {
                min: 0.0,
                max: 1.0,
                q: 1.0,
            },
        );
        let mut runs = run(&mut RandomSampler::new(&[q]), 3, 6);
        runs.sort_by_key(|r| r[0].as_i64());
        assert_eq!(runs, vec![vec![json!(0)], vec![json!(1)]]);
        let logq = param(
            "y",
            Expression::QLogUniform {
                min: 0.0,
                max: 0.1,
                q: 1.0,
            },
        );
        assert_eq!(
            run(&mut RandomSampler::new(&[logq]), 3, 6),
            vec![vec![json!(1)]]
        );
        let dup = param("z", Expression::Choice(vec![json!(1), json!(1), json!(2)]));
        let grid = run(&mut GridSampler::new(std::slice::from_ref(&dup)), 0, 10);
        assert_eq!(grid, vec![vec![json!(1)], vec![json!(2)]]);
        assert_eq!(run(&mut RandomSampler::new(&[dup]), 5, 10).len(), 2);
        // A fine quantization is still sampled as a continuous space.
        let fine = param(
            "w",
            Expression::QUniform {
                min: 0.0,
                max: 1.0e9,
                q: 1.0,
            },
        );
        assert_eq!(cardinality(&[fine]), None);
    }

    #[test]
    fn random_on_continuous_space_keeps_going() {
        let space = [param("x", Expression::Uniform { min: 0.0, max: 1.0 })];
        let mut random = new_sampler(SamplingKind::Random, &space, Goal::Maximize).expect("random");
        assert_eq!(run(random.as_mut(), 5, 300).len(), 300);
    }

    #[test]
    fn same_seed_gives_same_sequence_for_every_sampler() {
        let space = [
            choice("a", &[1, 2, 3, 4]),
            param(
                "x",
                Expression::Uniform {
                    min: -1.0,
                    max: 1.0,
                },
            ),
            param(
                "q",
                Expression::QUniform {
                    min: 0.0,
                    max: 10.0,
                    q: 0.5,
                },
            ),
        ];
        for kind in [SamplingKind::Random, SamplingKind::Bayesian] {
            let seq = |seed| {
                let mut s = new_sampler(kind, &space, Goal::Maximize).expect("sampler");
                run(s.as_mut(), seed, 8)
            };
            assert_eq!(seq(1), seq(1), "{kind:?}");
            assert_ne!(seq(1), seq(2), "{kind:?}");
        }
    }

    #[test]
    fn empty_choice_is_an_error_not_a_panic() {
        let space = [param("a", Expression::Choice(vec![]))];
        assert!(new_sampler(SamplingKind::Random, &space, Goal::Maximize).is_err());
        assert!(new_sampler(SamplingKind::Random, &[], Goal::Maximize).is_err());
    }
}
