//! Sweep benchmarks (not part of `cargo test`): `cargo bench --bench sweep -- [bo] [et]`.
//!
//! - `bo`: Bayesian optimization quality on Branin and Hartmann6, 50 trials ×
//!   20 seeds, median simple regret (best − optimum) after 10/25/50 trials,
//!   random sampling alongside. Sequential, through the sweep core directly.
//! - `et`: early termination on the shared `curve-v1` curves: 100 random
//!   trials × 10 seeds, 20 epochs, accuracy maximized, one trial after
//!   another (as the Optuna reference ran); epochs used and the true
//!   (noiseless) final accuracy of the best completed trial, per policy.
//!
//! Results go to stdout as Markdown tables for `docs/perf.md`.

use azml::sweep::curve::{self, CurveParams};
use azml::sweep::{
    Expression, Goal, History, Parameter, PolicySpec, SamplingKind, Slack, TrialState, new_sampler,
    primary_metric, seeded,
};
use serde_json::Value;
use std::f64::consts::PI;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let all = args.is_empty();
    if all || args.iter().any(|a| a == "bo") {
        bayesian_quality();
    }
    if all || args.iter().any(|a| a == "et") {
        early_termination();
    }
}

fn uniform(name: &str, min: f64, max: f64) -> Parameter {
    Parameter {
        name: name.into(),
        expression: Expression::Uniform { min, max },
    }
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn branin(x: &[Value]) -> f64 {
    let (x1, x2) = (num(&x[0]), num(&x[1]));
    let b = 5.1 / (4.0 * PI * PI);
    let c = 5.0 / PI;
    let t = 1.0 / (8.0 * PI);
    (x2 - b * x1 * x1 + c * x1 - 6.0).powi(2) + 10.0 * (1.0 - t) * x1.cos() + 10.0
}

const H_ALPHA: [f64; 4] = [1.0, 1.2, 3.0, 3.2];
const H_A: [[f64; 6]; 4] = [
    [10.0, 3.0, 17.0, 3.5, 1.7, 8.0],
    [0.05, 10.0, 17.0, 0.1, 8.0, 14.0],
    [3.0, 3.5, 1.7, 10.0, 17.0, 8.0],
    [17.0, 8.0, 0.05, 10.0, 0.1, 14.0],
];
const H_P: [[f64; 6]; 4] = [
    [0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886],
    [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
    [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650],
    [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381],
];

fn hartmann6(x: &[Value]) -> f64 {
    -(0..4)
        .map(|i| {
            let s: f64 = (0..6)
                .map(|j| H_A[i][j] * (num(&x[j]) - H_P[i][j]).powi(2))
                .sum();
            H_ALPHA[i] * (-s).exp()
        })
        .sum::<f64>()
}

struct Problem {
    name: &'static str,
    space: Vec<Parameter>,
    f: fn(&[Value]) -> f64,
    optimum: f64,
    tpe: [f64; 3],
}

/// Best-so-far regret after each trial of one sequential minimization.
fn regret_trace(p: &Problem, kind: SamplingKind, seed: u64, trials: usize) -> Vec<f64> {
    let mut sampler = new_sampler(kind, &p.space, Goal::Minimize).expect("valid space");
    let mut rng = seeded(seed);
    let mut history = History::default();
    let mut best = f64::INFINITY;
    let mut trace = Vec::with_capacity(trials);
    for _ in 0..trials {
        let values = sampler
            .suggest(&history, &mut rng)
            .expect("continuous space never ends");
        let y = (p.f)(&values);
        best = best.min(y);
        trace.push(best - p.optimum);
        let i = history.push_running(values);
        history.trials[i].state = TrialState::Completed;
        history.trials[i].metric = Some(y);
    }
    trace
}

fn quantile(xs: &mut [f64], q: f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    let pos = q * (xs.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    xs[lo] + (xs[hi] - xs[lo]) * (pos - lo as f64)
}

fn summary(traces: &[Vec<f64>], at: usize) -> String {
    let mut xs: Vec<f64> = traces.iter().map(|t| t[at - 1]).collect();
    format!(
        "{} [{}, {}]",
        sig3(quantile(&mut xs, 0.5)),
        sig3(quantile(&mut xs, 0.25)),
        sig3(quantile(&mut xs, 0.75))
    )
}

/// Three significant digits, like Python's `%.3g` without the exponent form.
fn sig3(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let digits = (2 - x.abs().log10().floor() as i32).max(0) as usize;
    format!("{x:.digits$}")
}

fn bayesian_quality() {
    let problems = [
        Problem {
            name: "branin",
            space: vec![uniform("x1", -5.0, 10.0), uniform("x2", 0.0, 15.0)],
            f: branin,
            optimum: 0.397887357729738,
            tpe: [5.4, 0.374, 0.109],
        },
        Problem {
            name: "hartmann6",
            space: (1..=6)
                .map(|i| uniform(&format!("x{i}"), 0.0, 1.0))
                .collect(),
            f: hartmann6,
            optimum: -3.322368011415515,
            tpe: [2.61, 0.919, 0.33],
        },
    ];
    println!("| problem | sampler | after 10 | after 25 | after 50 | ms/trial |");
    println!("|---|---|---:|---:|---:|---:|");
    for p in &problems {
        for (label, kind) in [
            ("azml random", SamplingKind::Random),
            ("azml bayesian", SamplingKind::Bayesian),
        ] {
            let start = Instant::now();
            let traces: Vec<Vec<f64>> = (0..20)
                .map(|seed| regret_trace(p, kind, seed, 50))
                .collect();
            let ms = start.elapsed().as_secs_f64() * 1000.0 / (20.0 * 50.0);
            println!(
                "| {} | {label} | {} | {} | {} | {ms:.2} |",
                p.name,
                summary(&traces, 10),
                summary(&traces, 25),
                summary(&traces, 50)
            );
        }
        println!(
            "| {} | Optuna TPE (reference) | {} | {} | {} | |",
            p.name, p.tpe[0], p.tpe[1], p.tpe[2]
        );
    }
}

/// Outcome of one simulated sweep with a policy.
struct EtResult {
    epochs: usize,
    best_true_final: f64,
}

fn curve_space() -> Vec<Parameter> {
    vec![
        Parameter {
            name: "lr".into(),
            expression: Expression::LogUniform {
                min: (1e-4f64).ln(),
                max: (1e-1f64).ln(),
            },
        },
        uniform("momentum", 0.0, 0.99),
        uniform("dropout", 0.0, 0.5),
    ]
}

/// 100 trials one after another; each logs its accuracy every epoch and the
/// policy is asked after every value, exactly as the local driver does.
fn simulate(policy: &PolicySpec, seed: u64) -> EtResult {
    let space = curve_space();
    let mut sampler = new_sampler(SamplingKind::Random, &space, Goal::Maximize).expect("space");
    let mut rng = seeded(seed);
    let mut history = History::default();
    let mut curves: Vec<Vec<f64>> = Vec::new();
    let mut epochs = 0;
    let mut best: Option<(f64, f64)> = None; // (best logged value, true final)
    for _ in 0..100 {
        let values = sampler.suggest(&history, &mut rng).expect("continuous");
        let p = CurveParams {
            lr: num(&values[0]),
            momentum: num(&values[1]),
            dropout: num(&values[2]),
        };
        let i = history.push_running(values);
        curves.push(Vec::new());
        let mut cancelled = false;
        for e in 1..=curve::EPOCHS {
            curves[i].push(curve::value(p, e, seed));
            epochs += 1;
            let runs: Vec<&[f64]> = curves.iter().map(|c| c.as_slice()).collect();
            if policy
                .evaluate(Goal::Maximize, i, &runs)
                .is_some_and(|d| d.cancel)
            {
                cancelled = true;
                break;
            }
        }
        let metric = primary_metric(&curves[i], Goal::Maximize);
        history.trials[i].metric = metric;
        history.trials[i].state = if cancelled {
            TrialState::Canceled
        } else {
            TrialState::Completed
        };
        if !cancelled && let Some(m) = metric {
            let truth = curve::noiseless(p, curve::EPOCHS);
            if best.is_none_or(|(b, _)| m > b) {
                best = Some((m, truth));
            }
        }
    }
    EtResult {
        epochs,
        best_true_final: best.map_or(f64::NAN, |b| b.1),
    }
}

fn early_termination() {
    let policies: Vec<(&str, PolicySpec)> = vec![
        ("NoTermination", PolicySpec::NoTermination),
        (
            "Bandit slack_factor 0.1, delay 5",
            PolicySpec::Bandit {
                evaluation_interval: 1,
                delay_evaluation: 5,
                slack: Slack::Factor(0.1),
            },
        ),
        (
            "Bandit slack_factor 0.2, delay 5",
            PolicySpec::Bandit {
                evaluation_interval: 1,
                delay_evaluation: 5,
                slack: Slack::Factor(0.2),
            },
        ),
        (
            "Bandit slack_amount 0.05, delay 5",
            PolicySpec::Bandit {
                evaluation_interval: 1,
                delay_evaluation: 5,
                slack: Slack::Amount(0.05),
            },
        ),
        (
            "MedianStopping delay 5",
            PolicySpec::MedianStopping {
                evaluation_interval: 1,
                delay_evaluation: 5,
            },
        ),
        (
            "TruncationSelection 20%, delay 5",
            PolicySpec::TruncationSelection {
                evaluation_interval: 1,
                delay_evaluation: 5,
                truncation_percentage: 20,
            },
        ),
        (
            "TruncationSelection 50%, delay 5",
            PolicySpec::TruncationSelection {
                evaluation_interval: 1,
                delay_evaluation: 5,
                truncation_percentage: 50,
            },
        ),
    ];
    println!(
        "| policy (100 trials × 10 seeds) | epochs per sweep | vs no termination | best true final (mean) | worst seed |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (label, policy) in &policies {
        let results: Vec<EtResult> = (0..10).map(|seed| simulate(policy, seed)).collect();
        let epochs = results.iter().map(|r| r.epochs).sum::<usize>() as f64 / 10.0;
        let finals: Vec<f64> = results.iter().map(|r| r.best_true_final).collect();
        let mean = finals.iter().sum::<f64>() / finals.len() as f64;
        let worst = finals.iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "| {label} | {epochs:.0} | {:+.0}% | {mean:.4} | {worst:.4} |",
            (epochs / 2000.0 - 1.0) * 100.0
        );
    }
    println!("| Optuna MedianPruner(n_warmup_steps=5) (reference) | 858 | -57% | 0.9415 | |");
}
