//! The hyperparameter sweep engine: search space, samplers, early-termination
//! policies. Pure: no I/O, no clock; randomness comes from a seeded RNG the
//! caller passes in, so the same seed gives the same sweep.

mod bayes;
pub mod curve;
mod gp;
pub mod policy;
pub mod rng;
pub mod sampler;
pub mod space;
pub mod v1;

pub use bayes::initial_random;
pub use policy::{Decision, Goal, PolicySpec, Reason, Slack, primary_metric};
pub use rng::{SweepRng, seeded};
pub use sampler::{History, Sampler, Trial, TrialState, new_sampler};
pub use space::{Expression, Parameter, SamplingKind};

/// Why a sweep cannot start with this search space.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("the parameter space is empty")]
    EmptySpace,
    #[error("parameter '{0}' has choice() with no values")]
    EmptyChoice(String),
    #[error("{} sampling does not support {expression}() (parameter '{parameter}')", sampling_name(*.sampling))]
    Unsupported {
        sampling: SamplingKind,
        parameter: String,
        expression: &'static str,
    },
}

impl crate::error::ExitCoded for SweepError {
    fn exit_code(&self) -> i32 {
        crate::error::exit::ERROR
    }
    /// What the user can change to make the sweep valid.
    fn hint(&self) -> Option<String> {
        match self {
            SweepError::Unsupported { sampling: SamplingKind::Grid, .. } => {
                Some("grid sampling takes only choice(); use random sampling for other expressions".into())
            }
            SweepError::Unsupported { .. } => Some(
                "Bayesian sampling takes only choice(), uniform() and quniform(); use random sampling otherwise"
                    .into(),
            ),
            _ => None,
        }
    }
}

fn sampling_name(kind: SamplingKind) -> &'static str {
    match kind {
        SamplingKind::Random => "random",
        SamplingKind::Grid => "grid",
        SamplingKind::Bayesian => "Bayesian",
    }
}
