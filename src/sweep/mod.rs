//! The hyperparameter sweep engine: search space, samplers, early-termination
//! policies. Pure: no I/O, no clock; randomness comes from a seeded RNG the
//! caller passes in, so the same seed gives the same sweep.

pub mod policy;
pub mod space;

pub use policy::{Goal, PolicySpec};
pub use space::{Expression, Parameter, SamplingKind};
