//! The sweep settings as v1 HyperDrive recorded them on the parent run, in
//! the JSON shapes of `azureml-train-core`'s `to_json()` (the SDK's
//! `HyperDriveRun` reads them back from the parent's `_aml_system_*` tags).

use super::{Expression, Goal, Parameter, PolicySpec, SamplingKind, Slack};
use serde_json::{Map, Value, json};

/// `_aml_system_generator_config`: `{"name": "RANDOM", "parameter_space": {"--lr": ["uniform", [0.01, 0.1]]}}`.
pub fn generator_config(kind: SamplingKind, space: &[Parameter]) -> Value {
    let name = match kind {
        SamplingKind::Random => "RANDOM",
        SamplingKind::Grid => "GRID",
        SamplingKind::Bayesian => "BayesianOptimization",
    };
    let parameter_space: Map<String, Value> = space
        .iter()
        .map(|p| (p.name.clone(), expression(&p.expression)))
        .collect();
    json!({"name": name, "parameter_space": parameter_space})
}

/// One parameter expression as v1's `parameter_expressions` built it:
/// `["choice", [[values…]]]`, `["quniform", [min, max, q]]`, …
pub fn expression(e: &Expression) -> Value {
    let args = match e {
        Expression::Choice(values) => json!([values]),
        Expression::RandInt { upper } => json!([upper]),
        Expression::Uniform { min, max } | Expression::LogUniform { min, max } => json!([min, max]),
        Expression::QUniform { min, max, q } | Expression::QLogUniform { min, max, q } => {
            json!([min, max, q])
        }
        Expression::Normal { mu, sigma } | Expression::LogNormal { mu, sigma } => {
            json!([mu, sigma])
        }
        Expression::QNormal { mu, sigma, q } | Expression::QLogNormal { mu, sigma, q } => {
            json!([mu, sigma, q])
        }
    };
    json!([e.kind_name(), args])
}

/// `_aml_system_policy_config`: v1's policy names (`Bandit`, `MedianStopping`,
/// `TruncationSelection`, `Default`) and properties.
pub fn policy_config(policy: &PolicySpec) -> Value {
    match *policy {
        PolicySpec::Bandit {
            evaluation_interval,
            delay_evaluation,
            slack,
        } => {
            let (key, value) = match slack {
                Slack::Factor(f) => ("slack_factor", f),
                Slack::Amount(a) => ("slack_amount", a),
            };
            json!({"name": "Bandit", "properties": {
                "evaluation_interval": evaluation_interval,
                "delay_evaluation": delay_evaluation,
                key: value,
            }})
        }
        PolicySpec::MedianStopping {
            evaluation_interval,
            delay_evaluation,
        } => json!({"name": "MedianStopping", "properties": {
            "evaluation_interval": evaluation_interval,
            "delay_evaluation": delay_evaluation,
        }}),
        PolicySpec::TruncationSelection {
            evaluation_interval,
            delay_evaluation,
            truncation_percentage,
        } => json!({"name": "TruncationSelection", "properties": {
            "evaluation_interval": evaluation_interval,
            "delay_evaluation": delay_evaluation,
            "truncation_percentage": truncation_percentage,
            "exclude_finished_jobs": false,
        }}),
        PolicySpec::NoTermination => json!({"name": "Default"}),
    }
}

/// `_aml_system_primary_metric_config` (also a parent property in v1).
pub fn primary_metric_config(name: &str, goal: Goal) -> Value {
    let goal = match goal {
        Goal::Maximize => "maximize",
        Goal::Minimize => "minimize",
    };
    json!({"name": name, "goal": goal})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_have_the_shapes_of_v1_parameter_expressions() {
        let choice = Expression::Choice(vec![json!(0.5), json!(1), json!(1.5)]);
        assert_eq!(expression(&choice), json!(["choice", [[0.5, 1, 1.5]]]));
        assert_eq!(
            expression(&Expression::RandInt { upper: 5 }),
            json!(["randint", [5]])
        );
        let q = Expression::QLogNormal {
            mu: 0.0,
            sigma: 1.0,
            q: 2.0,
        };
        assert_eq!(expression(&q), json!(["qlognormal", [0.0, 1.0, 2.0]]));
    }

    #[test]
    fn policies_use_v1_names_and_properties() {
        let bandit = PolicySpec::Bandit {
            evaluation_interval: 1,
            delay_evaluation: 5,
            slack: Slack::Factor(0.2),
        };
        assert_eq!(
            policy_config(&bandit),
            json!({"name": "Bandit", "properties": {"evaluation_interval": 1, "delay_evaluation": 5, "slack_factor": 0.2}})
        );
        let truncation = PolicySpec::TruncationSelection {
            evaluation_interval: 2,
            delay_evaluation: 0,
            truncation_percentage: 20,
        };
        assert_eq!(
            policy_config(&truncation)["properties"]["exclude_finished_jobs"],
            false
        );
        assert_eq!(
            policy_config(&PolicySpec::NoTermination),
            json!({"name": "Default"})
        );
    }

    #[test]
    fn the_generator_config_names_the_sampling_as_v1_did() {
        let space = [Parameter {
            name: "--lr".into(),
            expression: Expression::Uniform { min: 0.1, max: 1.0 },
        }];
        assert_eq!(
            generator_config(SamplingKind::Bayesian, &space),
            json!({"name": "BayesianOptimization", "parameter_space": {"--lr": ["uniform", [0.1, 1.0]]}})
        );
    }
}
