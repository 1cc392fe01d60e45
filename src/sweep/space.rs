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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SamplingKind {
    Random,
    Grid,
    Bayesian,
}
