//! Early-termination policy specs (the evaluation logic lives beside them).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    Maximize,
    Minimize,
}

/// A policy as configured. `evaluation_interval`/`delay_evaluation` follow v1 defaults (1 and 0).
#[derive(Debug, Clone, PartialEq)]
pub enum PolicySpec {
    Bandit {
        evaluation_interval: u32,
        delay_evaluation: u32,
        slack: Slack,
    },
    MedianStopping {
        evaluation_interval: u32,
        delay_evaluation: u32,
    },
    TruncationSelection {
        evaluation_interval: u32,
        delay_evaluation: u32,
        truncation_percentage: u32,
    },
    NoTermination,
}

/// Bandit's allowed distance from the best run: exactly one of the two.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Slack {
    Factor(f64),
    Amount(f64),
}

impl Goal {
    /// Whether `a` is strictly better than `b` for this goal.
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            Goal::Maximize => a > b,
            Goal::Minimize => a < b,
        }
    }

    /// The better of two values.
    pub fn pick(self, a: f64, b: f64) -> f64 {
        if self.better(b, a) { b } else { a }
    }
}

/// v1's best-run rule: a run's primary metric is the max (maximize) or min
/// (minimize) over every value it logged. NaN values are ignored.
pub fn primary_metric(values: &[f64], goal: Goal) -> Option<f64> {
    values
        .iter()
        .copied()
        .filter(|v| !v.is_nan())
        .reduce(|a, b| goal.pick(a, b))
}

/// What a policy decided for one run at one interval, and why: the printer
/// shows the reason and the driver stores it as the cancelled child's tag.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub cancel: bool,
    pub reason: Reason,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reason {
    /// `BanditPolicy`, `MedianStoppingPolicy`, `TruncationSelectionPolicy`.
    pub policy: &'static str,
    /// k: how many primary-metric values the run had logged.
    pub interval: usize,
    /// The run's value the policy compared.
    pub value: f64,
    pub threshold: f64,
    /// How the threshold was computed, for humans.
    pub rule: String,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at interval {}: value {} vs threshold {} ({})",
            self.policy,
            self.interval,
            short(self.value),
            short(self.threshold),
            self.rule
        )
    }
}

/// Four significant decimals keep reasons readable (0.6666666 → 0.6667).
fn short(x: f64) -> String {
    let s = format!("{x:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".into()
    } else {
        s.into()
    }
}

impl PolicySpec {
    /// v1 class name, as shown in reasons and `run show`.
    pub fn name(&self) -> &'static str {
        match self {
            PolicySpec::Bandit { .. } => "BanditPolicy",
            PolicySpec::MedianStopping { .. } => "MedianStoppingPolicy",
            PolicySpec::TruncationSelection { .. } => "TruncationSelectionPolicy",
            PolicySpec::NoTermination => "NoTerminationPolicy",
        }
    }

    /// Whether the policy evaluates a run that has logged `k` values:
    /// `k % evaluation_interval == 0 && k >= delay_evaluation` (k ≥ 1).
    pub fn evaluates_at(&self, k: usize) -> bool {
        let (interval, delay) = match *self {
            PolicySpec::Bandit {
                evaluation_interval,
                delay_evaluation,
                ..
            }
            | PolicySpec::MedianStopping {
                evaluation_interval,
                delay_evaluation,
            }
            | PolicySpec::TruncationSelection {
                evaluation_interval,
                delay_evaluation,
                ..
            } => (
                evaluation_interval.max(1) as usize,
                delay_evaluation as usize,
            ),
            PolicySpec::NoTermination => return false,
        };
        k >= 1 && k.is_multiple_of(interval) && k >= delay
    }

    /// Evaluate the policy for `runs[run]`, which has just logged its k-th
    /// value (k = its length). `runs` holds every run of the sweep (including
    /// this one), each as its primary-metric values in logged order.
    /// `None` when k is not an evaluation point or nothing can be compared.
    pub fn evaluate(&self, goal: Goal, run: usize, runs: &[&[f64]]) -> Option<Decision> {
        let own = *runs.get(run)?;
        let k = own.len();
        if !self.evaluates_at(k) {
            return None;
        }
        match *self {
            PolicySpec::Bandit { slack, .. } => Some(bandit(goal, slack, k, own, runs)),
            PolicySpec::MedianStopping { .. } => median_stopping(goal, k, own, runs),
            PolicySpec::TruncationSelection {
                truncation_percentage,
                ..
            } => truncation(goal, truncation_percentage, k, own, runs),
            PolicySpec::NoTermination => None,
        }
    }
}

/// Cancel when the run's best-so-far is outside the slack of `best_k`, the
/// best value any run reached by interval k. A slack factor is a fraction of
/// the best value's size: for a non-negative best exactly the documented
/// `best / (1 + f)` (maximize) and `best · (1 + f)` (minimize); for a negative
/// one (negated errors, log-likelihoods) those formulas would put the
/// threshold on the wrong side of the best and cancel the leader itself, so
/// the same distance is taken from |best|.
fn bandit(goal: Goal, slack: Slack, k: usize, own: &[f64], runs: &[&[f64]]) -> Decision {
    let value = primary_metric(own, goal).unwrap_or(f64::NAN);
    let best_k = runs
        .iter()
        .filter_map(|r| primary_metric(&r[..k.min(r.len())], goal))
        .reduce(|a, b| goal.pick(a, b))
        .unwrap_or(value);
    let (threshold, rule) = match (goal, slack) {
        (Goal::Maximize, Slack::Factor(f)) if best_k < 0.0 => (
            best_k - best_k.abs() * f / (1.0 + f),
            format!("best {} - |best| * {f} / (1 + {f})", short(best_k)),
        ),
        (Goal::Maximize, Slack::Factor(f)) => (
            best_k / (1.0 + f),
            format!("best {} / (1 + {f})", short(best_k)),
        ),
        (Goal::Maximize, Slack::Amount(a)) => (best_k - a, format!("best {} - {a}", short(best_k))),
        (Goal::Minimize, Slack::Factor(f)) if best_k < 0.0 => (
            best_k + best_k.abs() * f,
            format!("best {} + |best| * {f}", short(best_k)),
        ),
        (Goal::Minimize, Slack::Factor(f)) => (
            best_k * (1.0 + f),
            format!("best {} * (1 + {f})", short(best_k)),
        ),
        (Goal::Minimize, Slack::Amount(a)) => (best_k + a, format!("best {} + {a}", short(best_k))),
    };
    Decision {
        cancel: goal.better(threshold, value),
        reason: Reason {
            policy: "BanditPolicy",
            interval: k,
            value,
            threshold,
            rule,
        },
    }
}

/// Cancel when the run's best-so-far is worse than the median, over the runs
/// that reached interval k (this one included), of their running averages
/// over intervals 1..k.
fn median_stopping(goal: Goal, k: usize, own: &[f64], runs: &[&[f64]]) -> Option<Decision> {
    let value = primary_metric(own, goal)?;
    let averages: Vec<f64> = runs
        .iter()
        .filter(|r| r.len() >= k)
        .map(|r| r[..k].iter().sum::<f64>() / k as f64)
        .filter(|a| !a.is_nan())
        .collect();
    let threshold = median(averages.clone())?;
    Some(Decision {
        cancel: goal.better(threshold, value),
        reason: Reason {
            policy: "MedianStoppingPolicy",
            interval: k,
            value,
            threshold,
            rule: format!("median of {} running averages", averages.len()),
        },
    })
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    Some(if xs.len() % 2 == 1 {
        xs[mid]
    } else {
        (xs[mid - 1] + xs[mid]) / 2.0
    })
}

/// Cancel when the run's value at interval k is among the lowest
/// `percentage`% of the values every run logged at interval k (runs that have
/// not reached k don't count). `floor(n · percentage / 100)` runs are cut; the
/// threshold is the worst surviving value and ties with it survive.
fn truncation(
    goal: Goal,
    percentage: u32,
    k: usize,
    own: &[f64],
    runs: &[&[f64]],
) -> Option<Decision> {
    let value = own[k - 1];
    let mut at_k: Vec<f64> = runs
        .iter()
        .filter(|r| r.len() >= k)
        .map(|r| r[k - 1])
        .filter(|v| !v.is_nan())
        .collect();
    // Worst first.
    at_k.sort_by(|a, b| match goal {
        Goal::Maximize => a.total_cmp(b),
        Goal::Minimize => b.total_cmp(a),
    });
    let cut = at_k.len() * percentage.min(100) as usize / 100;
    let threshold = *at_k.get(cut)?;
    Some(Decision {
        cancel: goal.better(threshold, value),
        reason: Reason {
            policy: "TruncationSelectionPolicy",
            interval: k,
            value,
            threshold,
            rule: format!(
                "lowest {percentage}% of {} runs at interval {k}",
                at_k.len()
            ),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bandit(slack: Slack, interval: u32, delay: u32) -> PolicySpec {
        PolicySpec::Bandit {
            evaluation_interval: interval,
            delay_evaluation: delay,
            slack,
        }
    }

    fn decide(p: &PolicySpec, goal: Goal, run: usize, runs: &[&[f64]]) -> Option<Decision> {
        p.evaluate(goal, run, runs)
    }

    #[test]
    fn bandit_slack_factor_documented_example() {
        // Best 0.8 with slack_factor 0.2 → threshold 0.8 / 1.2 = 0.667.
        let p = bandit(Slack::Factor(0.2), 1, 0);
        let d = decide(&p, Goal::Maximize, 1, &[&[0.8], &[0.66]]).expect("evaluated");
        assert!((d.reason.threshold - 0.8 / 1.2).abs() < 1e-12);
        assert!(d.cancel);
        let d = decide(&p, Goal::Maximize, 1, &[&[0.8], &[0.67]]).expect("evaluated");
        assert!(!d.cancel, "0.67 is above 0.667");
        assert!(
            d.reason.to_string().contains("threshold 0.6667"),
            "{}",
            d.reason
        );
    }

    #[test]
    fn bandit_slack_amount_documented_example() {
        // Best 0.8 with slack_amount 0.2 → threshold 0.6.
        let p = bandit(Slack::Amount(0.2), 1, 0);
        let d = decide(&p, Goal::Maximize, 1, &[&[0.8], &[0.59]]).expect("evaluated");
        assert!((d.reason.threshold - 0.6).abs() < 1e-12 && d.cancel);
        assert!(
            !decide(&p, Goal::Maximize, 1, &[&[0.8], &[0.61]])
                .expect("evaluated")
                .cancel
        );
    }

    #[test]
    fn bandit_minimize_mirrors_factor_and_amount() {
        let f = bandit(Slack::Factor(0.2), 1, 0);
        let d = decide(&f, Goal::Minimize, 1, &[&[0.5], &[0.61]]).expect("evaluated");
        assert!((d.reason.threshold - 0.6).abs() < 1e-12 && d.cancel);
        assert!(
            !decide(&f, Goal::Minimize, 1, &[&[0.5], &[0.59]])
                .expect("evaluated")
                .cancel
        );
        let a = bandit(Slack::Amount(0.2), 1, 0);
        let d = decide(&a, Goal::Minimize, 1, &[&[0.5], &[0.71]]).expect("evaluated");
        assert!((d.reason.threshold - 0.7).abs() < 1e-12 && d.cancel);
    }

    /// With negative values the documented formulas put the threshold above
    /// the best (maximize: -0.3 / 1.2 = -0.25) and cancelled every run,
    /// the leader included.
    #[test]
    fn bandit_slack_factor_with_negative_values_never_cancels_the_leader() {
        let p = bandit(Slack::Factor(0.2), 1, 0);
        // Maximize, best -0.3: the slack is 0.3 · 0.2 / 1.2 = 0.05 → threshold -0.35.
        let leader = decide(&p, Goal::Maximize, 1, &[&[-0.3], &[-0.3]]).expect("evaluated");
        assert!(!leader.cancel, "{:?}", leader.reason);
        assert!((leader.reason.threshold + 0.35).abs() < 1e-12);
        let near = decide(&p, Goal::Maximize, 1, &[&[-0.3], &[-0.34]]).expect("evaluated");
        assert!(!near.cancel);
        let far = decide(&p, Goal::Maximize, 1, &[&[-0.3], &[-0.36]]).expect("evaluated");
        assert!(far.cancel);
        // Minimize, best -1: threshold -1 + 1 · 0.2 = -0.8.
        let best = decide(&p, Goal::Minimize, 1, &[&[-1.0], &[-1.0]]).expect("evaluated");
        assert!(!best.cancel && (best.reason.threshold + 0.8).abs() < 1e-12);
        assert!(
            decide(&p, Goal::Minimize, 1, &[&[-1.0], &[-0.7]])
                .expect("evaluated")
                .cancel
        );
        assert!(
            !decide(&p, Goal::Minimize, 1, &[&[-1.0], &[-0.9]])
                .expect("evaluated")
                .cancel
        );
    }

    #[test]
    fn bandit_uses_best_any_run_reached_by_interval_k_only() {
        // The leader hits 0.9 only at interval 3; at k = 2 the best is 0.7.
        let p = bandit(Slack::Amount(0.1), 1, 0);
        let leader: &[f64] = &[0.5, 0.7, 0.9];
        let d = decide(&p, Goal::Maximize, 1, &[leader, &[0.55, 0.65]]).expect("evaluated");
        assert!((d.reason.threshold - 0.6).abs() < 1e-12);
        assert!(!d.cancel);
    }

    #[test]
    fn bandit_compares_the_runs_best_so_far() {
        let p = bandit(Slack::Amount(0.1), 1, 0);
        // Its last value 0.3 is bad, but it once reached 0.75 ≥ 0.8 - 0.1.
        let d = decide(&p, Goal::Maximize, 1, &[&[0.8, 0.8], &[0.75, 0.3]]).expect("evaluated");
        assert!(!d.cancel);
        assert_eq!(d.reason.value, 0.75);
    }

    #[test]
    fn delay_and_interval_boundaries() {
        let p = bandit(Slack::Amount(0.0), 2, 3);
        let leader: &[f64] = &[1.0; 6];
        let at = |k: usize| decide(&p, Goal::Maximize, 1, &[leader, &vec![0.0; k]]);
        assert!(at(1).is_none());
        assert!(at(2).is_none(), "2 < delay 3");
        assert!(at(3).is_none(), "3 % 2 != 0");
        assert!(at(4).expect("evaluated at 4").cancel);
        assert!(at(5).is_none());
        assert!(at(6).is_some());
        assert!(p.evaluates_at(4) && !p.evaluates_at(0));
        let q = bandit(Slack::Amount(0.0), 1, 5);
        assert!(!q.evaluates_at(4) && q.evaluates_at(5));
    }

    #[test]
    fn no_termination_never_decides() {
        let p = PolicySpec::NoTermination;
        assert!(decide(&p, Goal::Maximize, 1, &[&[1.0], &[0.0]]).is_none());
    }

    #[test]
    fn median_stopping_against_running_averages() {
        let p = PolicySpec::MedianStopping {
            evaluation_interval: 1,
            delay_evaluation: 0,
        };
        // Running averages over 1..2: 0.5, 0.7, 0.9 (others) and the candidate's.
        let a: &[f64] = &[0.4, 0.6];
        let b: &[f64] = &[0.6, 0.8];
        let c: &[f64] = &[0.8, 1.0];
        let bad: &[f64] = &[0.55, 0.6];
        // Averages: 0.5, 0.7, 0.9, 0.575 → median (0.575 + 0.7) / 2 = 0.6375 > best 0.6.
        let d = decide(&p, Goal::Maximize, 3, &[a, b, c, bad]).expect("evaluated");
        assert!(
            (d.reason.threshold - 0.6375).abs() < 1e-12,
            "{:?}",
            d.reason
        );
        assert!(d.cancel);
        let good: &[f64] = &[0.5, 0.7];
        // Averages 0.5, 0.7, 0.9, 0.6 → median 0.65 < best 0.7.
        assert!(
            !decide(&p, Goal::Maximize, 3, &[a, b, c, good])
                .expect("evaluated")
                .cancel
        );
    }

    #[test]
    fn median_stopping_minimize_mirrors() {
        let p = PolicySpec::MedianStopping {
            evaluation_interval: 1,
            delay_evaluation: 0,
        };
        let d = decide(&p, Goal::Minimize, 2, &[&[1.0], &[2.0], &[3.0]]).expect("evaluated");
        assert_eq!(d.reason.threshold, 2.0);
        assert!(d.cancel, "3 > median 2 when minimizing");
        assert!(
            !decide(&p, Goal::Minimize, 0, &[&[1.0], &[2.0], &[3.0]])
                .expect("evaluated")
                .cancel
        );
    }

    #[test]
    fn median_stopping_ignores_runs_that_have_not_reached_k() {
        let p = PolicySpec::MedianStopping {
            evaluation_interval: 1,
            delay_evaluation: 0,
        };
        // Only the candidate reached k = 3: median is its own average → kept.
        let d = decide(&p, Goal::Maximize, 1, &[&[0.9, 0.9], &[0.1, 0.2, 0.3]]).expect("evaluated");
        assert!(!d.cancel);
    }

    #[test]
    fn truncation_cuts_lowest_percentage_at_interval_k() {
        let p = PolicySpec::TruncationSelection {
            evaluation_interval: 1,
            delay_evaluation: 0,
            truncation_percentage: 20,
        };
        let others: Vec<Vec<f64>> = [0.5, 0.6, 0.7, 0.8].iter().map(|&v| vec![0.0, v]).collect();
        let mut runs: Vec<&[f64]> = others.iter().map(|v| v.as_slice()).collect();
        let worst = [0.9, 0.4];
        runs.push(&worst);
        // 5 runs at k=2, 20% → cut 1: the worst (0.4) goes, threshold is 0.5.
        let d = decide(&p, Goal::Maximize, 4, &runs).expect("evaluated");
        assert!(d.cancel && d.reason.threshold == 0.5, "{:?}", d.reason);
        // The second worst survives.
        assert!(
            !decide(&p, Goal::Maximize, 0, &runs)
                .expect("evaluated")
                .cancel
        );
    }

    #[test]
    fn truncation_younger_runs_compare_only_with_values_at_same_interval() {
        let p = PolicySpec::TruncationSelection {
            evaluation_interval: 1,
            delay_evaluation: 0,
            truncation_percentage: 50,
        };
        // Older runs improved later (0.9 at k=2) but at k=1 they had 0.1 and 0.2.
        let runs: [&[f64]; 3] = [&[0.1, 0.9], &[0.2, 0.9], &[0.3]];
        let d = decide(&p, Goal::Maximize, 2, &runs).expect("evaluated");
        assert!(!d.cancel, "0.3 is the best at interval 1: {:?}", d.reason);
    }

    #[test]
    fn truncation_minimize_and_ties_survive() {
        let p = PolicySpec::TruncationSelection {
            evaluation_interval: 1,
            delay_evaluation: 0,
            truncation_percentage: 25,
        };
        let runs: [&[f64]; 4] = [&[1.0], &[2.0], &[3.0], &[4.0]];
        assert!(
            decide(&p, Goal::Minimize, 3, &runs)
                .expect("evaluated")
                .cancel
        );
        assert!(
            !decide(&p, Goal::Minimize, 0, &runs)
                .expect("evaluated")
                .cancel
        );
        let ties: [&[f64]; 4] = [&[1.0], &[1.0], &[1.0], &[1.0]];
        assert!(
            !decide(&p, Goal::Minimize, 0, &ties)
                .expect("evaluated")
                .cancel
        );
    }

    #[test]
    fn best_run_rule_is_max_or_min_over_all_values() {
        assert_eq!(primary_metric(&[0.1, 0.9, 0.5], Goal::Maximize), Some(0.9));
        assert_eq!(primary_metric(&[0.1, 0.9, 0.5], Goal::Minimize), Some(0.1));
        assert_eq!(primary_metric(&[f64::NAN, 0.2], Goal::Maximize), Some(0.2));
        assert_eq!(primary_metric(&[], Goal::Maximize), None);
    }
}
