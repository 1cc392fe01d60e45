//! clap definitions only: v1 command names, flags, short forms and defaults.
//! Nothing here resolves settings or touches a backend; `commands` turns these
//! types into resolved settings.
//!
//! Subcommand enums are `defer = true`: a run builds the arguments of the one
//! command it calls, not of all 52 (about a quarter of `azml --version`'s
//! start-up). With deferral a flattened `Args` struct's `///` doc comment would
//! replace the command's help summary, so those structs carry `//` comments.
//! `attach` is not deferred: `hdi` adjusts an argument (`mut_arg`), which must
//! already exist.

pub mod computetarget;
pub mod experiment;
pub mod folder;
pub mod run;
pub mod workspace;

use crate::output::Format;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

pub use computetarget::ComputetargetCommand;
pub use experiment::ExperimentCommand;
pub use folder::FolderCommand;
pub use run::RunCommand;
pub use workspace::WorkspaceCommand;

/// `azml` — the Azure ML v1 CLI (`az ml …`), alive: the same commands and files,
/// sent to the current Azure ML REST API or run on this machine.
#[derive(Debug, Parser)]
#[command(
    name = "azml",
    version,
    about,
    propagate_version = true,
    // As az's argparse: a repeated flag takes the last value, and a long flag
    // may be shortened to any unambiguous prefix (`--exp` for `--experiment-name`).
    args_override_self = true,
    infer_long_args = true,
    after_help = "Examples:\n  azml folder attach -e mnist\n  azml run submit-script -c local train.py --epochs 3\n  azml run list -e mnist -o table"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

// az's global flags, accepted anywhere on the command line.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", global = true, help_heading = "Global Arguments", value_enum, ignore_case = true, default_value_t = Format::Json)]
    pub output: Format,
    /// JMESPath query string, applied to the result before formatting. See http://jmespath.org/.
    #[arg(
        long,
        global = true,
        help_heading = "Global Arguments",
        value_name = "JMESPATH",
        value_parser = check_query
    )]
    pub query: Option<String>,
    /// Increase logging verbosity to show all debug logs (secrets redacted).
    #[arg(long, global = true, help_heading = "Global Arguments")]
    pub debug: bool,
    /// Increase logging verbosity. Use --debug for full debug logs.
    #[arg(long, global = true, help_heading = "Global Arguments")]
    pub verbose: bool,
    /// Only show errors, suppressing warnings.
    #[arg(long, global = true, help_heading = "Global Arguments")]
    pub only_show_errors: bool,
    /// Name or ID of subscription (az's global flag; same as --subscription-id).
    #[arg(
        long,
        global = true,
        help_heading = "Global Arguments",
        value_name = "SUBSCRIPTION"
    )]
    pub subscription: Option<String>,
    /// Azure credential: token, sp, workload, msi or cli (else AZML_AUTH; default: first that works).
    #[arg(
        long,
        global = true,
        help_heading = "Global Arguments",
        value_name = "METHOD",
        value_parser = ["token", "sp", "workload", "msi", "cli"]
    )]
    pub auth: Option<String>,
    /// Azure cloud: AzureCloud, AzureChinaCloud or AzureUSGovernment (else AZURE_CLOUD).
    #[arg(
        long,
        global = true,
        help_heading = "Global Arguments",
        value_name = "NAME"
    )]
    pub cloud: Option<String>,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Folder subgroup commands.
    #[command(subcommand)]
    Folder(FolderCommand),
    /// Commands to manage experiments.
    #[command(subcommand)]
    Experiment(ExperimentCommand),
    /// Workspace subgroup commands.
    #[command(subcommand)]
    Workspace(WorkspaceCommand),
    /// Computetarget subgroup commands.
    #[command(subcommand)]
    Computetarget(ComputetargetCommand),
    /// Commands for submitting, updating, and monitoring runs.
    #[command(subcommand)]
    Run(RunCommand),
}

// Which workspace a command talks to, as v1 spelled it on most commands.
#[derive(Debug, Args, Clone, Default)]
pub struct WorkspaceArgs {
    /// Path to a project folder (where `.azureml/config.json` is searched from, walking up).
    #[arg(long, value_name = "PATH", default_value = ".")]
    pub path: PathBuf,
    /// Workspace name.
    #[arg(short = 'w', long = "workspace-name", value_name = "NAME")]
    pub workspace_name: Option<String>,
    /// Resource group name.
    #[arg(short = 'g', long = "resource-group", value_name = "GROUP")]
    pub resource_group: Option<String>,
    /// Specifies the subscription Id.
    #[arg(long = "subscription-id", value_name = "ID")]
    pub subscription_id: Option<String>,
}

// `-t/--output-metadata-file`, on the commands where v1 had it.
#[derive(Debug, Args, Clone, Default)]
pub struct MetadataArgs {
    /// Provide an optional output file location for structured object output (refuses an existing file).
    #[arg(short = 't', long = "output-metadata-file", value_name = "FILE")]
    pub output_metadata_file: Option<PathBuf>,
}

/// A `key[=value]` pair, as v1's `--tag`, `--tags` and `--add-tag` took them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// clap value parser for `key[=value]`; a missing value is the empty string, as in v1.
pub fn parse_key_value(text: &str) -> Result<KeyValue, String> {
    let (key, value) = text.split_once('=').unwrap_or((text, ""));
    if key.trim().is_empty() {
        return Err(format!("'{text}' has an empty key; expected key[=value]"));
    }
    Ok(KeyValue {
        key: key.to_string(),
        value: value.to_string(),
    })
}

/// `--query` is parsed with the other arguments, as az does: a typo must not
/// cost a submitted run or a created resource before it is reported.
fn check_query(text: &str) -> Result<String, String> {
    crate::output::query::compile(text)
        .map(|_| text.to_string())
        .map_err(|e| format!("invalid JMESPath expression: {}", e.0))
}

/// clap value parser for a `run list --tags` term: `key` (any value) or `key=value`.
pub fn parse_tag_filter(text: &str) -> Result<crate::workspace::TagFilter, String> {
    let (key, value) = match text.split_once('=') {
        Some((key, value)) => (key, Some(value.to_string())),
        None => (text, None),
    };
    if key.trim().is_empty() {
        return Err(format!("'{text}' has an empty key; expected key[=value]"));
    }
    Ok(crate::workspace::TagFilter {
        key: key.to_string(),
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// clap only detects clashing short flags (e.g. a per-command `-o` vs the
    /// global `-o`) at runtime; this walks the whole tree once.
    #[test]
    fn whole_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn key_value_without_value_is_empty_string() {
        assert_eq!(
            parse_key_value("team").unwrap(),
            KeyValue {
                key: "team".into(),
                value: String::new()
            }
        );
        assert_eq!(parse_key_value("a=b=c").unwrap().value, "b=c");
        assert!(parse_key_value("=x").is_err());
    }

    #[test]
    fn a_tag_filter_without_value_matches_any_value_and_key_equals_only_empty() {
        let any = parse_tag_filter("team").unwrap();
        assert!(any.matches(Some("")) && any.matches(Some("red")) && !any.matches(None));
        let empty = parse_tag_filter("team=").unwrap();
        assert!(empty.matches(Some("")) && !empty.matches(Some("red")));
        assert_eq!(
            parse_tag_filter("a=b=c").unwrap().value.as_deref(),
            Some("b=c")
        );
        assert!(parse_tag_filter("=x").is_err());
    }
}
