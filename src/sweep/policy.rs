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
