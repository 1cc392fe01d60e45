//! `azml run …`: submit, inspect and follow runs.
use super::{KeyValue, MetadataArgs, WorkspaceArgs, parse_key_value, parse_tag_filter};
use crate::workspace::TagFilter;
use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum RunCommand {
    /// Submit a script for execution.
    ///
    /// Everything after the script name belongs to the script, including
    /// arguments that look like azml flags.
    #[command(after_help = "Examples:\n  \
        # Run train.py with the .azureml/local runconfig and stream its output\n  \
        azml run submit-script -c local -e mnist train.py --epochs 3 --lr 0.1\n\n  \
        # Submit to a compute target and return at once\n  \
        azml run submit-script -c train-aml --ct cpu-cluster --async train.py")]
    SubmitScript(SubmitScriptArgs),
    /// Submit a hyper parameter sweep using run config.
    #[command(after_help = "Examples:\n  \
        azml run submit-hyperdrive -e sweep -c local --hyperdrive-configuration-name hdconfig.yml train.py\n  \
        azml run submit-hyperdrive -c hyperdrive --hyperdrive-configuration-name hd.yml --seed 7 train.py --data ./data")]
    SubmitHyperdrive(SubmitHyperdriveArgs),
    /// List runs.
    #[command(after_help = "Examples:\n  \
        azml run list -e mnist -o table\n  \
        azml run list --status Completed --last 5 --query \"[].runId\" -o tsv")]
    List(RunListArgs),
    /// Show run.
    #[command(after_help = "Examples:\n  azml run show -r mnist_1700000000_1a2b3c4d")]
    Show(RunIdArgs),
    /// Cancel run.
    #[command(after_help = "Examples:\n  azml run cancel -r mnist_1700000000_1a2b3c4d")]
    Cancel(RunIdArgs),
    /// Monitor the logs for an existing run.
    #[command(after_help = "Examples:\n  azml run monitor-logs -r mnist_1700000000_1a2b3c4d")]
    MonitorLogs(RunIdArgs),
    /// Download log files.
    #[command(
        after_help = "Examples:\n  azml run download-logs -r mnist_1700000000_1a2b3c4d -d ./logs"
    )]
    DownloadLogs(DownloadLogsArgs),
    /// Update the run by adding tags.
    #[command(
        after_help = "Examples:\n  azml run update -r mnist_1700000000_1a2b3c4d --add-tag best --add-tag lr=0.1"
    )]
    Update(RunUpdateArgs),
    /// Show the metrics a run logged (an azml addition).
    #[command(
        after_help = "Examples:\n  azml run metrics -r mnist_1700000000_1a2b3c4d\n  azml run metrics -r mnist_1700000000_1a2b3c4d --query accuracy"
    )]
    Metrics(RunIdArgs),
}

// Workspace, experiment and metadata-file flags every run command has.
#[derive(Debug, Args, Clone, Default)]
pub struct RunCommonArgs {
    /// Experiment name.
    #[arg(short = 'e', long = "experiment-name", value_name = "NAME")]
    pub experiment_name: Option<String>,
    #[command(flatten)]
    pub workspace: WorkspaceArgs,
    #[command(flatten)]
    pub metadata: MetadataArgs,
}

// The flags `submit-script` and `submit-hyperdrive` share.
#[derive(Debug, Args, Clone, Default)]
pub struct SubmitArgs {
    /// Name (without extension) of a run configuration file, or a path to one.
    #[arg(short = 'c', long = "run-configuration-name", value_name = "NAME")]
    pub run_configuration_name: Option<String>,
    /// The name of the compute target to use for the run.
    #[arg(long = "ct", visible_alias = "target", value_name = "TARGET")]
    pub target: Option<String>,
    /// Override the default Conda dependencies file.
    #[arg(short = 'd', long = "conda-dependencies", value_name = "FILE")]
    pub conda_dependencies: Option<PathBuf>,
    /// A local directory containing source code files. Defaults to --path.
    #[arg(long, value_name = "DIR")]
    pub source_directory: Option<PathBuf>,
    /// Disable output streaming: return as soon as the run is submitted.
    #[arg(long = "async")]
    pub asynchronous: bool,
    #[command(flatten)]
    pub common: RunCommonArgs,
    /// The script to run, then its arguments (passed through untouched).
    #[arg(
        value_name = "USER_SCRIPT_AND_ARGUMENTS",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        num_args = 0..
    )]
    pub script_and_arguments: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SubmitScriptArgs {
    #[command(flatten)]
    pub submit: SubmitArgs,
}

#[derive(Debug, Args)]
pub struct SubmitHyperdriveArgs {
    /// The hdconfig file: a path, else the last file under --path whose name ends with this.
    #[arg(long, value_name = "FILE")]
    pub hyperdrive_configuration_name: String,
    /// Seed for the sampler, so the same seed proposes the same runs (an azml addition; a Bayesian sweep only with max_concurrent_runs 1).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub submit: SubmitArgs,
}

#[derive(Debug, Args)]
pub struct RunListArgs {
    /// The compute target name.
    #[arg(long, value_name = "TARGET")]
    pub compute_target_name: Option<String>,
    /// Fetch the latest N elements.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub last: usize,
    /// Flag to provide minimum properties for run output.
    #[arg(long)]
    pub minimal: bool,
    /// Parent Run ID.
    #[arg(long, value_name = "RUN_ID")]
    pub parent_run_id: Option<String>,
    /// Pipeline Run ID.
    #[arg(long, value_name = "RUN_ID")]
    pub pipeline_run_id: Option<String>,
    /// Status of the run.
    #[arg(long, value_enum, ignore_case = true)]
    pub status: Option<RunStatus>,
    /// Tags for a run with 'key[=value]' syntax: `key` alone matches any value.
    #[arg(long, value_name = "KEY[=VALUE]", value_parser = parse_tag_filter, num_args = 1..)]
    pub tags: Vec<TagFilter>,
    #[command(flatten)]
    pub common: RunCommonArgs,
}

/// v1's `--status` choices (plus `Canceled`), matched in any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "PascalCase")]
pub enum RunStatus {
    Completed,
    Failed,
    Finalizing,
    Preparing,
    Provisioning,
    Queued,
    Running,
    Starting,
    Canceled,
}

impl RunStatus {
    /// The spelling run JSON uses.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Completed => "Completed",
            RunStatus::Failed => "Failed",
            RunStatus::Finalizing => "Finalizing",
            RunStatus::Preparing => "Preparing",
            RunStatus::Provisioning => "Provisioning",
            RunStatus::Queued => "Queued",
            RunStatus::Running => "Running",
            RunStatus::Starting => "Starting",
            RunStatus::Canceled => "Canceled",
        }
    }
}

#[derive(Debug, Args)]
pub struct RunIdArgs {
    /// The runId of an experiment run.
    #[arg(short = 'r', long = "run", value_name = "RUN_ID")]
    pub run: String,
    #[command(flatten)]
    pub common: RunCommonArgs,
}

#[derive(Debug, Args)]
pub struct DownloadLogsArgs {
    /// Output directory to download log files to.
    #[arg(short = 'd', long = "output-dir", value_name = "DIR")]
    pub output_dir: PathBuf,
    #[command(flatten)]
    pub run: RunIdArgs,
}

#[derive(Debug, Args)]
pub struct RunUpdateArgs {
    /// Tag the entity with 'key[=value]' syntax. Repeat for several tags.
    #[arg(long, value_name = "KEY[=VALUE]", value_parser = parse_key_value)]
    pub add_tag: Vec<KeyValue>,
    #[command(flatten)]
    pub run: RunIdArgs,
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command, RunCommand};
    use clap::Parser;

    fn submit(argv: &[&str]) -> super::SubmitArgs {
        let cli = Cli::try_parse_from(argv).unwrap();
        match cli.command {
            Command::Run(RunCommand::SubmitScript(args)) => args.submit,
            Command::Run(RunCommand::SubmitHyperdrive(args)) => args.submit,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Flags after the script belong to the script, even azml's own (`-e`, `--async`, `--`).
    #[test]
    fn everything_after_the_script_goes_to_the_script() {
        let args = submit(&[
            "azml",
            "run",
            "submit-script",
            "-e",
            "exp",
            "--async",
            "train.py",
            "--epochs",
            "3",
            "-e",
            "x",
            "--async",
            "--",
            "-o",
        ]);
        assert_eq!(args.common.experiment_name.as_deref(), Some("exp"));
        assert!(args.asynchronous);
        assert_eq!(
            args.script_and_arguments,
            [
                "train.py", "--epochs", "3", "-e", "x", "--async", "--", "-o"
            ]
        );
    }

    #[test]
    fn double_dash_before_script_is_allowed() {
        let args = submit(&["azml", "run", "submit-script", "--", "train.py", "-x"]);
        assert_eq!(args.script_and_arguments, ["train.py", "-x"]);
    }

    #[test]
    fn ct_and_target_are_the_same_flag() {
        assert_eq!(
            submit(&["azml", "run", "submit-script", "--ct", "a", "t.py"])
                .target
                .as_deref(),
            Some("a")
        );
        assert_eq!(
            submit(&["azml", "run", "submit-script", "--target", "b", "t.py"])
                .target
                .as_deref(),
            Some("b")
        );
    }

    #[test]
    fn hyperdrive_takes_seed_and_trailing_script() {
        let cli = Cli::try_parse_from([
            "azml",
            "run",
            "submit-hyperdrive",
            "--hyperdrive-configuration-name",
            "hd.yml",
            "--seed",
            "7",
            "train.py",
            "--seed",
            "1",
        ])
        .unwrap();
        let Command::Run(RunCommand::SubmitHyperdrive(args)) = cli.command else {
            panic!("not submit-hyperdrive");
        };
        assert_eq!(args.seed, Some(7));
        assert_eq!(
            args.submit.script_and_arguments,
            ["train.py", "--seed", "1"]
        );
    }
}

#[cfg(test)]
mod status_tests {
    use crate::cli::{Cli, Command, RunCommand};
    use clap::Parser;

    /// az accepted enum values in any case; backends compare the canonical spelling.
    #[test]
    fn status_is_case_insensitive_and_canonical() {
        let cli = Cli::try_parse_from(["azml", "run", "list", "--status", "completed"]).unwrap();
        let Command::Run(RunCommand::List(args)) = cli.command else {
            panic!("not run list");
        };
        assert_eq!(args.status.map(super::RunStatus::as_str), Some("Completed"));
    }
}
