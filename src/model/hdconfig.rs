//! The v1 HyperDrive configuration (`--hyperdrive-configuration-name`).
//!
//! Every rule of v1 is checked here, before any run starts: expression
//! arguments, which expressions each sampler supports, policy settings and the
//! run limits. Where v1 crashed (no `policy`, no `max_duration_minutes`) the
//! documented default is used instead.

use super::yaml::{self, Doc, Entry, Fields, Node, Value};
use super::{ModelError, Warning};
use crate::sweep::policy::Slack;
use crate::sweep::{Expression, Goal, Parameter, PolicySpec, SamplingKind};
use std::path::{Path, PathBuf};

/// v1's (and the service's) ceiling on a sweep's duration: 7 days.
pub const MAX_DURATION_MINUTES: u32 = 10_080;
/// v1's ceiling on `max_total_runs`.
pub const MAX_TOTAL_RUNS: u32 = 1_000;

/// The ten expression names, as v1 spells them.
pub const EXPRESSIONS: &[&str] = &[
    "choice",
    "randint",
    "uniform",
    "quniform",
    "loguniform",
    "qloguniform",
    "normal",
    "qnormal",
    "lognormal",
    "qlognormal",
];

/// A validated hdconfig with v1 defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct HyperDriveConfig {
    pub source_file: Option<PathBuf>,
    pub sampling: SamplingKind,
    /// In file order: children receive `<name> <value>` in this order.
    pub parameter_space: Vec<Parameter>,
    pub policy: PolicySpec,
    pub primary_metric_name: String,
    pub primary_metric_goal: Goal,
    pub max_total_runs: u32,
    pub max_concurrent_runs: u32,
    pub max_duration_minutes: u32,
}

/// Find the file `--hyperdrive-configuration-name NAME` means: a path, else the
/// last file under `project_dir` whose name ends with NAME (v1's rule).
///
/// v1 walked the folder in `os.walk` order; azml walks it sorted by name, so
/// "last" is deterministic. `.git` is skipped and symlinked folders are not
/// followed (a link loop cannot hang the lookup).
///
/// The search skips `skip` (the local workspace folders: their run folders
/// hold old copies of the project, so a deleted hdconfig would silently be
/// found there).
pub fn resolve_path(
    name: &str,
    project_dir: &Path,
    skip: &[PathBuf],
) -> Result<PathBuf, ModelError> {
    let direct = [PathBuf::from(name), project_dir.join(name)];
    if let Some(found) = direct.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let suffix = name.replace('\\', "/");
    let mut last = None;
    // Canonical on both sides, so a skipped folder is recognised however it was spelled.
    let root = project_dir
        .canonicalize()
        .unwrap_or_else(|_| project_dir.to_path_buf());
    let skip: Vec<PathBuf> = skip.iter().filter_map(|d| d.canonicalize().ok()).collect();
    let project_dir = root.as_path();
    walk_sorted(project_dir, 0, &skip, &mut |path| {
        let rel = path.strip_prefix(project_dir).unwrap_or(path);
        let rel = rel.to_string_lossy().replace('\\', "/");
        if !suffix.is_empty() && rel.ends_with(&suffix) {
            last = Some(path.to_path_buf());
        }
    });
    last.ok_or_else(|| ModelError::NotFound {
        message: format!(
            "hyperdrive configuration '{name}' not found: it is not a file, and no file under {} has a name ending with it",
            project_dir.display()
        ),
        hint: Some(
            "pass the hdconfig's path, or run from (or give --path) the folder that contains it".into(),
        ),
    })
}

/// Visit every file under `dir`, children in name order, depth-first.
fn walk_sorted(dir: &Path, depth: usize, skip: &[PathBuf], visit: &mut dyn FnMut(&Path)) {
    const MAX_DEPTH: usize = 32;
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = read.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_dir() {
            if entry.file_name() != ".git" && depth < MAX_DEPTH && !skip.contains(&path) {
                walk_sorted(&path, depth + 1, skip, visit);
            }
        } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
            visit(&path);
        }
    }
}

/// Parse and validate an hdconfig file, pushing non-fatal findings to `warnings`.
pub fn load(path: &Path, warnings: &mut Vec<Warning>) -> Result<HyperDriveConfig, ModelError> {
    let (root, _) = yaml::read_file(path)?;
    let start = warnings.len();
    let mut doc = Doc {
        file: path.into(),
        warnings,
    };
    let mut config = parse_root(&mut doc, &root)?;
    config.source_file = Some(path.into());
    yaml::sort_warnings(warnings, start);
    Ok(config)
}

/// Parse hdconfig text (tests and fuzzing); `path` only names it in messages.
pub fn parse_str(
    text: &str,
    path: &Path,
    warnings: &mut Vec<Warning>,
) -> Result<HyperDriveConfig, ModelError> {
    let root = yaml::parse_str(text, path)?;
    let start = warnings.len();
    let mut doc = Doc {
        file: path.into(),
        warnings,
    };
    let config = parse_root(&mut doc, &root)?;
    yaml::sort_warnings(warnings, start);
    Ok(config)
}

const TOP_LEVEL: &[&str] = &[
    "sampling",
    "policy",
    "primary_metric_name",
    "primary_metric_goal",
    "max_total_runs",
    "max_concurrent_runs",
    "max_duration_minutes",
];

fn parse_root(doc: &mut Doc, root: &Node) -> Result<HyperDriveConfig, ModelError> {
    super::runconfig::reject_v2_job(doc, root, "hdconfig")?;
    if root.is_null() {
        return Err(ModelError::InFile {
            file: doc.file.clone(),
            message: "the hyperdrive configuration is empty".into(),
            hint: Some(TEMPLATE_HINT.into()),
        });
    }
    let mut f = Fields::of(doc, root, "", TEMPLATE_HINT)?;
    let (sampling, parameter_space) = parse_sampling(doc, &mut f)?;
    let policy = parse_policy(doc, &mut f)?;
    let primary_metric_name = required_text(doc, &mut f, "primary_metric_name")?;
    let primary_metric_goal = parse_goal(doc, &mut f)?;
    let max_total_runs = parse_max_total_runs(doc, &mut f)?;
    let max_concurrent_runs = match f.get_some(doc, "max_concurrent_runs")? {
        Some(node) => doc.int(node, "max_concurrent_runs", 1, i64::from(u32::MAX))? as u32,
        None => max_total_runs,
    };
    let max_duration_minutes = parse_duration(doc, &mut f)?;
    f.finish(doc, TOP_LEVEL);
    let config = HyperDriveConfig {
        source_file: None,
        sampling,
        parameter_space,
        policy,
        primary_metric_name,
        primary_metric_goal,
        max_total_runs,
        max_concurrent_runs,
        max_duration_minutes,
    };
    check_sampler_rules(doc, root, &config)?;
    Ok(config)
}

const TEMPLATE_HINT: &str = "an hdconfig is a YAML mapping with sampling, policy, primary_metric_name, primary_metric_goal, max_total_runs; see the template in README.md";

fn required_text(doc: &Doc, f: &mut Fields, name: &str) -> Result<String, ModelError> {
    let node = required(doc, f, name, "")?;
    match doc.string(node, name)? {
        Some(text) if !text.trim().is_empty() => Ok(text),
        _ => Err(doc.expected(
            node,
            name,
            "a non-empty text value",
            "name the metric your script logs, e.g. `accuracy`",
        )),
    }
}

/// A key that must be present (and not null).
fn required<'n>(
    doc: &Doc,
    f: &mut Fields<'n>,
    name: &str,
    hint: &str,
) -> Result<&'n Node, ModelError> {
    f.get_some(doc, name)?.ok_or_else(|| {
        let path = f.path_of(name);
        if let Some(err) = f.misspelt_required(doc, name) {
            return err;
        }
        if f.path().is_empty() {
            // A missing top-level key has no position worth pointing at.
            return ModelError::InFile {
                file: doc.file.clone(),
                message: format!("`{path}` is required but missing"),
                hint: Some(if hint.is_empty() {
                    format!("add `{name}: …` at the top level")
                } else {
                    hint.to_string()
                }),
            };
        }
        let where_ = if f.path().is_empty() {
            "at the top level".to_string()
        } else {
            format!("under `{}`", f.path())
        };
        doc.error(
            f.pos,
            format!("`{path}` is required but missing"),
            if hint.is_empty() {
                format!("add `{name}: …` {where_}")
            } else {
                hint.to_string()
            },
        )
    })
}

fn parse_goal(doc: &Doc, f: &mut Fields) -> Result<Goal, ModelError> {
    let node = required(
        doc,
        f,
        "primary_metric_goal",
        "add `primary_metric_goal: maximize` (or minimize)",
    )?;
    match doc
        .string(node, "primary_metric_goal")?
        .map(|s| s.trim().to_ascii_lowercase())
        .as_deref()
    {
        Some("maximize") => Ok(Goal::Maximize),
        Some("minimize") => Ok(Goal::Minimize),
        _ => Err(doc.expected(
            node,
            "primary_metric_goal",
            "maximize or minimize",
            "write `maximize` or `minimize` (any case)",
        )),
    }
}

fn parse_max_total_runs(doc: &Doc, f: &mut Fields) -> Result<u32, ModelError> {
    let node = required(
        doc,
        f,
        "max_total_runs",
        "add `max_total_runs: N` at the top level (1 to 1000)",
    )?;
    Ok(doc.int(node, "max_total_runs", 1, i64::from(MAX_TOTAL_RUNS))? as u32)
}

/// Default 10080 minutes; more is capped to 10080 with a warning, as the service did.
fn parse_duration(doc: &mut Doc, f: &mut Fields) -> Result<u32, ModelError> {
    let Some(node) = f.get_some(doc, "max_duration_minutes")? else {
        return Ok(MAX_DURATION_MINUTES);
    };
    let minutes = doc.int(node, "max_duration_minutes", 1, i64::MAX)?;
    if minutes > i64::from(MAX_DURATION_MINUTES) {
        doc.warn(
            node.pos,
            format!("max_duration_minutes {minutes} is above the maximum of {MAX_DURATION_MINUTES} (7 days); using {MAX_DURATION_MINUTES}"),
        );
        return Ok(MAX_DURATION_MINUTES);
    }
    Ok(minutes as u32)
}

fn parse_sampling(
    doc: &mut Doc,
    f: &mut Fields,
) -> Result<(SamplingKind, Vec<Parameter>), ModelError> {
    let node = required(
        doc,
        f,
        "sampling",
        "add a `sampling:` section with `type:` and `parameter_space:` (see README.md)",
    )?;
    let mut s = Fields::of(
        doc,
        node,
        "sampling",
        "`sampling` holds `type:` and `parameter_space:`",
    )?;
    let type_node = required(
        doc,
        &mut s,
        "type",
        "add `type: random` (or grid, bayesian) under `sampling`",
    )?;
    let kind = match doc
        .string(type_node, "sampling.type")?
        .map(|t| t.trim().to_ascii_lowercase())
        .as_deref()
    {
        Some("random") => SamplingKind::Random,
        Some("grid") => SamplingKind::Grid,
        Some("bayesian") => SamplingKind::Bayesian,
        _ => {
            return Err(doc.expected(
                type_node,
                "sampling.type",
                "random, grid or bayesian",
                "write one of random, grid, bayesian (any case)",
            ));
        }
    };
    let space = match (
        s.get_some(doc, "parameter_space")?,
        s.get_some(doc, "parameters")?,
    ) {
        (Some(_), Some(second)) => {
            return Err(doc.error(
                second.pos,
                "`sampling.parameter_space` and `sampling.parameters` are both set",
                "keep one of them: they both define the search space",
            ));
        }
        (Some(space), None) => parse_space(doc, space, "sampling.parameter_space", kind)?,
        (None, Some(space)) => parse_space(doc, space, "sampling.parameters", kind)?,
        (None, None) => {
            if let Some(err) = s.misspelt_required(doc, "parameter_space") {
                return Err(err);
            }
            return Err(doc.error(
                s.pos,
                "`sampling.parameter_space` is required but missing",
                "add `parameter_space:` under `sampling` with one `- name: …, expression: …, values: […]` per parameter",
            ));
        }
    };
    s.finish(doc, &["type", "parameter_space", "parameters"]);
    Ok((kind, space))
}

/// The search space: v1's list of `{name, expression, values}`, or a mapping
/// `name: {expression, values}` / `name: [expression, [values]]` (the service's encoding).
fn parse_space(
    doc: &mut Doc,
    node: &Node,
    path: &str,
    kind: SamplingKind,
) -> Result<Vec<Parameter>, ModelError> {
    let params = match &node.value {
        Value::Seq(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| parse_list_item(doc, item, &format!("{path}[{i}]"), kind))
            .collect::<Result<Vec<_>, _>>()?,
        Value::Map(entries) => entries
            .iter()
            .map(|entry| parse_map_item(doc, entry, path, kind))
            .collect::<Result<Vec<_>, _>>()?,
        _ => {
            return Err(doc.expected(
                node,
                path,
                "a list of parameters",
                "write one `- name: --lr` entry (with expression and values) per parameter",
            ));
        }
    };
    if params.is_empty() {
        return Err(doc.error(
            node.pos,
            format!("`{path}` is empty; a sweep needs at least one parameter"),
            "add `- name: --lr`, `expression: uniform`, `values: [0.01, 0.1]` (one entry per parameter)",
        ));
    }
    check_unique_names(doc, path, &params)?;
    Ok(params.into_iter().map(|(p, _)| p).collect())
}

fn check_unique_names(
    doc: &Doc,
    path: &str,
    params: &[(Parameter, yaml::Pos)],
) -> Result<(), ModelError> {
    for (i, (p, pos)) in params.iter().enumerate() {
        if let Some((_, first)) = params[..i].iter().find(|(q, _)| q.name == p.name) {
            return Err(doc.error(
                *pos,
                format!(
                    "`{path}` names parameter `{}` twice (first at line {})",
                    p.name, first.line
                ),
                "give each parameter its own name",
            ));
        }
    }
    Ok(())
}

fn parse_list_item(
    doc: &mut Doc,
    item: &Node,
    path: &str,
    kind: SamplingKind,
) -> Result<(Parameter, yaml::Pos), ModelError> {
    let mut f = Fields::of(
        doc,
        item,
        path,
        "each parameter is `- name: …`, `expression: …`, `values: […]`",
    )?;
    let name_node = required(
        doc,
        &mut f,
        "name",
        "add `name: --lr` (the script argument the value is passed as)",
    )?;
    let name = parameter_name(doc, name_node, &f.path_of("name"))?;
    let expr_node = required(
        doc,
        &mut f,
        "expression",
        "add `expression: choice` (or uniform, randint, …)",
    )?;
    let values = f.get(doc, "values")?;
    let expression = parse_expression(doc, expr_node, values, path, f.pos, kind)?;
    f.finish(doc, &["name", "expression", "values"]);
    Ok((Parameter { name, expression }, name_node.pos))
}

fn parse_map_item(
    doc: &mut Doc,
    entry: &Entry,
    path: &str,
    kind: SamplingKind,
) -> Result<(Parameter, yaml::Pos), ModelError> {
    let item_path = format!("{path}.{}", entry.key);
    let name = entry.key.trim().to_string();
    if name.is_empty() {
        return Err(doc.error(
            entry.key_pos,
            format!("`{path}` has a parameter with an empty name"),
            "name it after the script argument, e.g. `--lr`",
        ));
    }
    let expression = match &entry.value.value {
        Value::Seq(parts) if parts.len() == 2 => parse_expression(
            doc,
            &parts[0],
            Some(&parts[1]),
            &item_path,
            entry.value.pos,
            kind,
        )?,
        Value::Map(_) => {
            let mut f = Fields::of(doc, &entry.value, &item_path, "")?;
            let expr_node = required(
                doc,
                &mut f,
                "expression",
                "add `expression: choice` (or uniform, randint, …)",
            )?;
            let values = f.get(doc, "values")?;
            let expression = parse_expression(doc, expr_node, values, &item_path, f.pos, kind)?;
            f.finish(doc, &["expression", "values"]);
            expression
        }
        _ => {
            return Err(doc.expected(
                &entry.value,
                &item_path,
                "`{expression: …, values: […]}` or `[expression, [values…]]`",
                "e.g. `--lr: {expression: uniform, values: [0.01, 0.1]}`",
            ));
        }
    };
    Ok((Parameter { name, expression }, entry.key_pos))
}

fn parameter_name(doc: &Doc, node: &Node, path: &str) -> Result<String, ModelError> {
    match doc.string(node, path)?.map(|s| s.trim().to_string()) {
        Some(name) if !name.is_empty() && !name.chars().any(char::is_whitespace) => Ok(name),
        _ => Err(doc.expected(
            node,
            path,
            "a parameter name without spaces",
            "use the script argument, e.g. `--lr`",
        )),
    }
}

/// One expression with its positional `values`, argument counts and ranges checked.
fn parse_expression(
    doc: &Doc,
    expr_node: &Node,
    values: Option<&Node>,
    path: &str,
    item_pos: yaml::Pos,
    kind: SamplingKind,
) -> Result<Expression, ModelError> {
    let expr_path = format!("{path}.expression");
    let raw = doc.string(expr_node, &expr_path)?.unwrap_or_default();
    let name = raw.trim().to_ascii_lowercase();
    if !EXPRESSIONS.contains(&name.as_str()) {
        let hint = match yaml::closest(&name, EXPRESSIONS) {
            Some(c) => format!("did you mean `{c}`? supported: {}", EXPRESSIONS.join(", ")),
            None => format!("supported: {}", EXPRESSIONS.join(", ")),
        };
        return Err(doc.expected(
            expr_node,
            &expr_path,
            "one of the ten v1 expressions",
            &hint,
        ));
    }
    check_supported(doc, expr_node, &name, &expr_path, kind)?;
    let values_path = format!("{path}.values");
    let args: Vec<&Node> = match values.map(|v| &v.value) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Seq(items)) => items.iter().collect(),
        // A single scalar is one positional value (`values: 10` for randint).
        Some(_) => values.into_iter().collect(),
    };
    let at = values.map_or(item_pos, |v| v.pos);
    let args = Args {
        doc,
        path: &values_path,
        name: &name,
        nodes: args,
        at,
    };
    args.build()
}

/// A number as a person writes it: 0.25, 1e-320 (not 320 zeros).
fn readable(x: f64) -> String {
    if x == 0.0 || (1e-4..1e15).contains(&x.abs()) {
        x.to_string()
    } else {
        format!("{x:e}")
    }
}

/// How many sigmas from mu a normal-based expression is checked to reach
/// (a sample beyond it has a probability below 1e-23).
const NORMAL_REACH: f64 = 10.0;

/// Positional expression arguments, with v1's checks.
struct Args<'a> {
    doc: &'a Doc<'a>,
    path: &'a str,
    name: &'a str,
    nodes: Vec<&'a Node>,
    at: yaml::Pos,
}

impl Args<'_> {
    fn build(&self) -> Result<Expression, ModelError> {
        match self.name {
            "choice" => self.choice(),
            "randint" => self.randint(),
            "uniform" | "loguniform" => {
                let [min, max] = self.numbers(["min", "max"])?;
                self.ordered(min, max)?;
                if self.name == "loguniform" {
                    self.exp_fits(max, 1)?;
                }
                Ok(if self.name == "uniform" {
                    Expression::Uniform { min, max }
                } else {
                    Expression::LogUniform { min, max }
                })
            }
            "quniform" | "qloguniform" => {
                let [min, max, q] = self.numbers(["min", "max", "q"])?;
                self.ordered(min, max)?;
                self.positive(q, "q", 2)?;
                let largest = if self.name == "quniform" {
                    min.abs().max(max.abs())
                } else {
                    self.exp_fits(max, 1)?;
                    max.exp()
                };
                self.steps_fit(largest, q)?;
                Ok(if self.name == "quniform" {
                    Expression::QUniform { min, max, q }
                } else {
                    Expression::QLogUniform { min, max, q }
                })
            }
            "normal" | "lognormal" => {
                let [mu, sigma] = self.numbers(["mu", "sigma"])?;
                self.positive(sigma, "sigma", 1)?;
                if !(mu.abs() + NORMAL_REACH * sigma).is_finite() {
                    return Err(self.doc.error(
                        self.nodes[1].pos,
                        format!(
                            "`{}`: {} with sigma {} reaches beyond the largest number",
                            self.path,
                            self.name,
                            readable(sigma)
                        ),
                        "use a smaller sigma",
                    ));
                }
                if self.name == "lognormal" {
                    self.exp_fits(mu + NORMAL_REACH * sigma, 0)?;
                }
                Ok(if self.name == "normal" {
                    Expression::Normal { mu, sigma }
                } else {
                    Expression::LogNormal { mu, sigma }
                })
            }
            _ => {
                let [mu, sigma, q] = self.numbers(["mu", "sigma", "q"])?;
                self.positive(sigma, "sigma", 1)?;
                self.positive(q, "q", 2)?;
                let largest = if self.name == "qnormal" {
                    mu.abs() + NORMAL_REACH * sigma
                } else {
                    let reach = mu + NORMAL_REACH * sigma;
                    self.exp_fits(reach, 0)?;
                    reach.exp()
                };
                self.steps_fit(largest, q)?;
                Ok(if self.name == "qnormal" {
                    Expression::QNormal { mu, sigma, q }
                } else {
                    Expression::QLogNormal { mu, sigma, q }
                })
            }
        }
    }

    fn choice(&self) -> Result<Expression, ModelError> {
        if self.nodes.is_empty() {
            return Err(self.doc.error(
                self.at,
                format!("`{}`: choice needs at least one value", self.path),
                "list the candidates, e.g. `values: [0.5, 1, 1.5]`",
            ));
        }
        let mut values = Vec::with_capacity(self.nodes.len());
        for (i, node) in self.nodes.iter().enumerate() {
            if matches!(node.value, Value::Seq(_) | Value::Map(_) | Value::Null) {
                return Err(self.doc.expected(
                    node,
                    &format!("{}[{i}]", self.path),
                    "a number, text or boolean",
                    "each choice is one value the script receives as an argument",
                ));
            }
            if matches!(node.value, Value::Float(f) if !f.is_finite()) {
                return Err(self.doc.expected(
                    node,
                    &format!("{}[{i}]", self.path),
                    "a finite number",
                    "remove .inf/.nan",
                ));
            }
            values.push(node.to_json());
        }
        Ok(Expression::Choice(values))
    }

    fn randint(&self) -> Result<Expression, ModelError> {
        self.count(1, "upper")?;
        let upper = self.doc.int(
            self.nodes[0],
            &format!("{}[0] (upper)", self.path),
            1,
            i64::MAX,
        )?;
        Ok(Expression::RandInt { upper })
    }

    fn count(&self, wanted: usize, names: &str) -> Result<(), ModelError> {
        if self.nodes.len() == wanted {
            return Ok(());
        }
        // `values: "0, 1"` is one text value, not two numbers.
        if let [node] = self.nodes.as_slice()
            && let Value::Str(text) = &node.value
            && text.contains(',')
        {
            return Err(self.doc.error(
                node.pos,
                format!(
                    "`{}`: expected a list of {wanted} numbers ({names}), found the text `{text}`",
                    self.path
                ),
                format!("drop the quotes: `values: [{text}]`"),
            ));
        }
        Err(self.doc.error(
            self.at,
            format!(
                "`{}`: {} takes {wanted} value{} ({names}), found {}",
                self.path,
                self.name,
                if wanted == 1 { "" } else { "s" },
                self.nodes.len()
            ),
            format!("write `values: [{names}]` with numbers"),
        ))
    }

    fn numbers<const N: usize>(&self, names: [&str; N]) -> Result<[f64; N], ModelError> {
        self.count(N, &names.join(", "))?;
        let mut out = [0.0; N];
        for (i, node) in self.nodes.iter().enumerate() {
            out[i] = self
                .doc
                .number(node, &format!("{}[{i}] ({})", self.path, names[i]))?;
        }
        Ok(out)
    }

    fn ordered(&self, min: f64, max: f64) -> Result<(), ModelError> {
        if min < max && !(max - min).is_finite() {
            // A sample is min + (max - min) · u: past f64::MAX the script got `None`.
            return Err(self.doc.error(
                self.nodes[0].pos,
                format!(
                    "`{}`: {} needs max - min to be a finite number, found min {} and max {}",
                    self.path,
                    self.name,
                    readable(min),
                    readable(max)
                ),
                "narrow the range",
            ));
        }
        if min < max {
            return Ok(());
        }
        Err(self.doc.error(
            self.nodes[0].pos,
            format!(
                "`{}`: {} needs min < max, found min {min} and max {max}",
                self.path, self.name
            ),
            "write the smaller bound first",
        ))
    }

    /// `exp(bound)` must be a number: past ≈ 709.78 it is infinite, and the
    /// script would have been handed `None`.
    fn exp_fits(&self, bound: f64, index: usize) -> Result<(), ModelError> {
        if bound.exp().is_finite() {
            return Ok(());
        }
        Err(self.doc.error(
            self.nodes[index].pos,
            format!(
                "`{}`: {} samples exp() of its values, and exp({bound}) is beyond the largest \
                 number (the bounds are in log space: at most {:.2})",
                self.path,
                self.name,
                f64::MAX.ln()
            ),
            "write the bounds as logarithms, e.g. loguniform [-7, 0] for e^-7 … 1",
        ))
    }

    /// `round(x / q)` must be a number for every value the expression reaches.
    fn steps_fit(&self, largest: f64, q: f64) -> Result<(), ModelError> {
        if (largest / q).is_finite() {
            return Ok(());
        }
        Err(self.doc.error(
            self.nodes[2].pos,
            format!(
                "`{}`: {} rounds to multiples of q = {}, and {} / q is beyond the largest number",
                self.path,
                self.name,
                readable(q),
                readable(largest)
            ),
            "use a larger q",
        ))
    }

    fn positive(&self, value: f64, what: &str, index: usize) -> Result<(), ModelError> {
        if value > 0.0 {
            return Ok(());
        }
        Err(self.doc.error(
            self.nodes[index].pos,
            format!(
                "`{}`: {} needs {what} > 0, found {value}",
                self.path, self.name
            ),
            format!("use a positive {what}"),
        ))
    }
}

const POLICY_KEYS: &[&str] = &[
    "type",
    "evaluation_interval",
    "delay_evaluation",
    "slack_factor",
    "slack_amount",
    "truncation_percentage",
];

/// `policy:`; absent or null → NoTermination (v1 crashed instead).
fn parse_policy(doc: &mut Doc, f: &mut Fields) -> Result<PolicySpec, ModelError> {
    let Some(node) = f.get_some(doc, "policy")? else {
        return Ok(PolicySpec::NoTermination);
    };
    let mut p = Fields::of(
        doc,
        node,
        "policy",
        "`policy` holds `type:` and the policy's settings",
    )?;
    let type_node = required(
        doc,
        &mut p,
        "type",
        "add `type: BanditPolicy` (or MedianStoppingPolicy, TruncationSelectionPolicy, NoTerminationPolicy)",
    )?;
    let raw = doc.string(type_node, "policy.type")?.unwrap_or_default();
    let norm = yaml::normalize_key(&raw);
    let norm = norm.strip_suffix("policy").unwrap_or(&norm);
    let interval = |doc: &Doc, p: &mut Fields| -> Result<u32, ModelError> {
        match p.get_some(doc, "evaluation_interval")? {
            Some(n) => Ok(doc.int(n, "policy.evaluation_interval", 1, i64::from(u32::MAX))? as u32),
            None => Ok(1),
        }
    };
    let delay = |doc: &Doc, p: &mut Fields| -> Result<u32, ModelError> {
        match p.get_some(doc, "delay_evaluation")? {
            Some(n) => Ok(doc.int(n, "policy.delay_evaluation", 0, i64::from(u32::MAX))? as u32),
            None => Ok(0),
        }
    };
    let spec = match norm {
        "bandit" => PolicySpec::Bandit {
            evaluation_interval: interval(doc, &mut p)?,
            delay_evaluation: delay(doc, &mut p)?,
            slack: parse_slack(doc, &mut p)?,
        },
        "medianstopping" => PolicySpec::MedianStopping {
            evaluation_interval: interval(doc, &mut p)?,
            delay_evaluation: delay(doc, &mut p)?,
        },
        "truncationselection" => {
            let node = required(
                doc,
                &mut p,
                "truncation_percentage",
                "add `truncation_percentage: 20` (1 to 99) under `policy`",
            )?;
            PolicySpec::TruncationSelection {
                evaluation_interval: interval(doc, &mut p)?,
                delay_evaluation: delay(doc, &mut p)?,
                truncation_percentage: doc.int(node, "policy.truncation_percentage", 1, 99)? as u32,
            }
        }
        "notermination" | "none" => PolicySpec::NoTermination,
        _ => {
            return Err(doc.expected(
                type_node,
                "policy.type",
                "BanditPolicy, MedianStoppingPolicy, TruncationSelectionPolicy or NoTerminationPolicy",
                "the `Policy` suffix is optional and case does not matter",
            ));
        }
    };
    warn_inapplicable(doc, &p, &spec);
    p.accept(POLICY_KEYS);
    p.finish(doc, POLICY_KEYS);
    Ok(spec)
}

/// Bandit needs exactly one of `slack_factor` / `slack_amount`, positive.
fn parse_slack(doc: &Doc, p: &mut Fields) -> Result<Slack, ModelError> {
    let factor = p.get_some(doc, "slack_factor")?;
    let amount = p.get_some(doc, "slack_amount")?;
    let (node, path) = match (factor, amount) {
        (Some(_), Some(amount)) => {
            return Err(doc.error(
                amount.pos,
                "BanditPolicy takes `slack_factor` or `slack_amount`, not both",
                "keep one: slack_factor is a ratio to the best run, slack_amount an absolute distance",
            ));
        }
        (None, None) => {
            return Err(doc.error(
                p.pos,
                "BanditPolicy needs `slack_factor` or `slack_amount`",
                "add `slack_factor: 0.1` (cancel runs more than 10% worse than the best) under `policy`",
            ));
        }
        (Some(n), None) => (n, "policy.slack_factor"),
        (None, Some(n)) => (n, "policy.slack_amount"),
    };
    let value = doc.number(node, path)?;
    if value <= 0.0 {
        return Err(doc.error(
            node.pos,
            format!("`{path}` is {value}; it must be greater than 0"),
            "use a positive slack, e.g. 0.1",
        ));
    }
    Ok(if path.ends_with("factor") {
        Slack::Factor(value)
    } else {
        Slack::Amount(value)
    })
}

/// Known policy keys that the chosen policy does not use are ignored with a warning.
fn warn_inapplicable(doc: &mut Doc, p: &Fields, spec: &PolicySpec) {
    let used: &[&str] = match spec {
        PolicySpec::Bandit { .. } => &[
            "type",
            "evaluation_interval",
            "delay_evaluation",
            "slack_factor",
            "slack_amount",
        ],
        PolicySpec::MedianStopping { .. } => &["type", "evaluation_interval", "delay_evaluation"],
        PolicySpec::TruncationSelection { .. } => &[
            "type",
            "evaluation_interval",
            "delay_evaluation",
            "truncation_percentage",
        ],
        PolicySpec::NoTermination => &["type"],
    };
    let name = match spec {
        PolicySpec::Bandit { .. } => "BanditPolicy",
        PolicySpec::MedianStopping { .. } => "MedianStoppingPolicy",
        PolicySpec::TruncationSelection { .. } => "TruncationSelectionPolicy",
        PolicySpec::NoTermination => "NoTerminationPolicy",
    };
    for key in POLICY_KEYS.iter().filter(|k| !used.contains(k)) {
        if let Some(pos) = p.key_pos(key) {
            doc.warn(
                pos,
                format!("`policy.{key}` does not apply to {name} and is ignored"),
            );
        }
    }
}

/// Grid takes only `choice`; Bayesian only choice/uniform/quniform.
fn check_supported(
    doc: &Doc,
    node: &Node,
    expression: &str,
    path: &str,
    kind: SamplingKind,
) -> Result<(), ModelError> {
    let (sampler, allowed, hint): (&str, &[&str], &str) = match kind {
        SamplingKind::Random => return Ok(()),
        SamplingKind::Grid => (
            "grid",
            &["choice"],
            "list the grid values with `expression: choice`, or use `type: random`",
        ),
        SamplingKind::Bayesian => (
            "bayesian",
            &["choice", "uniform", "quniform"],
            "use choice, uniform or quniform, or switch to `type: random`",
        ),
    };
    if allowed.contains(&expression) {
        return Ok(());
    }
    Err(doc.error(
        node.pos,
        format!(
            "`{path}`: {sampler} sampling supports only {}, not `{expression}`",
            allowed.join(", ")
        ),
        hint,
    ))
}

/// Bayesian sampling takes no early termination; v1's advice becomes warnings.
fn check_sampler_rules(
    doc: &mut Doc,
    root: &Node,
    config: &HyperDriveConfig,
) -> Result<(), ModelError> {
    if config.sampling != SamplingKind::Bayesian {
        return Ok(());
    }
    let pos = sampling_pos(root);
    if config.policy != PolicySpec::NoTermination {
        return Err(doc.error(
            policy_pos(root).unwrap_or(pos),
            "bayesian sampling does not support early termination; the policy must be NoTerminationPolicy",
            "remove the `policy` section (or set `type: NoTerminationPolicy`), or use random sampling",
        ));
    }
    warn_bayesian_limits(doc, pos, config);
    Ok(())
}

fn warn_bayesian_limits(doc: &mut Doc, pos: yaml::Pos, config: &HyperDriveConfig) {
    let recommended = 20 * config.parameter_space.len() as u32;
    if config.max_total_runs < recommended {
        doc.warn(
            pos,
            format!(
                "for best results with Bayesian sampling, use max_total_runs of at least 20 × the number of parameters ({recommended}); it is {}",
                config.max_total_runs
            ),
        );
    }
    if config.max_concurrent_runs > 20 {
        doc.warn(
            pos,
            format!(
                "Bayesian sampling learns from finished runs; max_concurrent_runs {} above 20 makes it closer to random search",
                config.max_concurrent_runs
            ),
        );
    }
}

fn sampling_pos(root: &Node) -> yaml::Pos {
    top_key_pos(root, "sampling").unwrap_or(root.pos)
}

fn policy_pos(root: &Node) -> Option<yaml::Pos> {
    let Value::Map(entries) = &root.value else {
        return None;
    };
    let policy = entries
        .iter()
        .find(|e| yaml::normalize_key(&e.key) == "policy")?;
    let Value::Map(inner) = &policy.value.value else {
        return Some(policy.key_pos);
    };
    inner
        .iter()
        .find(|e| yaml::normalize_key(&e.key) == "type")
        .map(|e| e.value.pos)
        .or(Some(policy.key_pos))
}

fn top_key_pos(root: &Node, key: &str) -> Option<yaml::Pos> {
    let Value::Map(entries) = &root.value else {
        return None;
    };
    entries
        .iter()
        .find(|e| yaml::normalize_key(&e.key) == key)
        .map(|e| e.key_pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCS_TEMPLATE: &str = "sampling:\n  type: random\n  parameter_space:\n  - name: --penalty\n    expression: choice\n    values: [0.5, 1, 1.5]\npolicy:\n  type: BanditPolicy\n  evaluation_interval: 1\n  slack_factor: 0.2\nprimary_metric_name: Accuracy\nprimary_metric_goal: Maximize\nmax_total_runs: 8\nmax_concurrent_runs: 2\nmax_duration_minutes: 100\n";

    fn parse(text: &str) -> (Result<HyperDriveConfig, ModelError>, Vec<Warning>) {
        let mut warnings = Vec::new();
        let config = parse_str(text, Path::new("hd.yml"), &mut warnings);
        (config, warnings)
    }

    #[test]
    fn docs_template_parses_with_its_values() {
        let (config, warnings) = parse(DOCS_TEMPLATE);
        let config = config.expect("parses");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(config.sampling, SamplingKind::Random);
        assert_eq!(config.parameter_space[0].name, "--penalty");
        assert_eq!(
            config.parameter_space[0].expression,
            Expression::Choice(vec![0.5.into(), 1.into(), 1.5.into()])
        );
        assert_eq!(
            config.policy,
            PolicySpec::Bandit {
                evaluation_interval: 1,
                delay_evaluation: 0,
                slack: Slack::Factor(0.2)
            }
        );
        assert_eq!(config.primary_metric_goal, Goal::Maximize);
        assert_eq!(
            (
                config.max_total_runs,
                config.max_concurrent_runs,
                config.max_duration_minutes
            ),
            (8, 2, 100)
        );
    }

    #[test]
    fn missing_policy_and_duration_use_documented_defaults() {
        let text = "sampling: {type: GRID, parameter_space: [{name: a, expression: choice, values: [1, 2]}]}\nprimary_metric_name: m\nprimary_metric_goal: MINIMIZE\nmax_total_runs: 4\n";
        let (config, _) = parse(text);
        let config = config.expect("parses");
        assert_eq!(config.policy, PolicySpec::NoTermination);
        assert_eq!(config.max_duration_minutes, MAX_DURATION_MINUTES);
        assert_eq!(config.max_concurrent_runs, 4);
        assert_eq!(config.primary_metric_goal, Goal::Minimize);
    }

    #[test]
    fn duration_above_a_week_is_capped_with_a_warning() {
        let (config, warnings) = parse(
            &DOCS_TEMPLATE.replace("max_duration_minutes: 100", "max_duration_minutes: 20000"),
        );
        assert_eq!(config.expect("parses").max_duration_minutes, 10_080);
        assert!(warnings[0].to_string().contains("10080"), "{warnings:?}");
    }

    #[test]
    fn policy_names_without_suffix_and_any_case() {
        for name in ["bandit", "BANDITPOLICY", "Bandit_Policy"] {
            let (config, _) =
                parse(&DOCS_TEMPLATE.replace("type: BanditPolicy", &format!("type: {name}")));
            assert!(
                matches!(config.expect("parses").policy, PolicySpec::Bandit { .. }),
                "{name}"
            );
        }
    }

    #[test]
    fn mapping_form_of_the_space_keeps_file_order() {
        let text = "sampling:\n  type: random\n  parameters:\n    --lr: [uniform, [0.01, 0.1]]\n    --batch: {expression: choice, values: [16, 32]}\nprimary_metric_name: m\nprimary_metric_goal: maximize\nmax_total_runs: 5\n";
        let (config, _) = parse(text);
        let config = config.expect("parses");
        let names: Vec<&str> = config
            .parameter_space
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(names, ["--lr", "--batch"]);
        assert_eq!(
            config.parameter_space[0].expression,
            Expression::Uniform {
                min: 0.01,
                max: 0.1
            }
        );
    }

    #[test]
    fn bayesian_warns_when_total_runs_are_few() {
        let text = "sampling: {type: bayesian, parameter_space: [{name: x, expression: uniform, values: [0, 1]}]}\nprimary_metric_name: m\nprimary_metric_goal: maximize\nmax_total_runs: 10\nmax_concurrent_runs: 30\n";
        let (config, warnings) = parse(text);
        config.expect("parses");
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].message.contains("(20)"));
    }

    #[test]
    fn each_expression_builds_its_variant() {
        let cases = [
            ("randint", "[5]", Expression::RandInt { upper: 5 }),
            (
                "quniform",
                "[0, 10, 2]",
                Expression::QUniform {
                    min: 0.0,
                    max: 10.0,
                    q: 2.0,
                },
            ),
            (
                "loguniform",
                "[-5, -1]",
                Expression::LogUniform {
                    min: -5.0,
                    max: -1.0,
                },
            ),
            (
                "qloguniform",
                "[0, 3, 1]",
                Expression::QLogUniform {
                    min: 0.0,
                    max: 3.0,
                    q: 1.0,
                },
            ),
            (
                "normal",
                "[10, 3]",
                Expression::Normal {
                    mu: 10.0,
                    sigma: 3.0,
                },
            ),
            (
                "qnormal",
                "[10, 3, 1]",
                Expression::QNormal {
                    mu: 10.0,
                    sigma: 3.0,
                    q: 1.0,
                },
            ),
            (
                "lognormal",
                "[0, 1]",
                Expression::LogNormal {
                    mu: 0.0,
                    sigma: 1.0,
                },
            ),
            (
                "qlognormal",
                "[0, 1, 1]",
                Expression::QLogNormal {
                    mu: 0.0,
                    sigma: 1.0,
                    q: 1.0,
                },
            ),
        ];
        for (name, values, expected) in cases {
            let text = format!(
                "sampling: {{type: random, parameter_space: [{{name: x, expression: {name}, values: {values}}}]}}\nprimary_metric_name: m\nprimary_metric_goal: maximize\nmax_total_runs: 5\n"
            );
            let (config, _) = parse(&text);
            assert_eq!(config.expect(name).parameter_space[0].expression, expected);
        }
    }

    #[test]
    fn resolve_path_takes_the_last_match_in_sorted_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        for rel in ["a/hd.yml", "b/c/hd.yml", "b/other.yml"] {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, "x").expect("write");
        }
        let found = resolve_path("hd.yml", dir.path(), &[]).expect("found");
        assert!(found.ends_with("b/c/hd.yml"), "{}", found.display());
        assert!(resolve_path("missing.yml", dir.path(), &[]).is_err());
    }

    /// A deleted hdconfig was found again in an old run folder of the local
    /// workspace (each run's snapshot holds a copy) and silently used.
    #[test]
    fn the_search_never_finds_copies_in_the_local_workspace() {
        let dir = tempfile::tempdir().expect("tempdir");
        let copy = dir
            .path()
            .join(".azureml/localws/runs/HD_1_0/cfg/sweep.yml");
        std::fs::create_dir_all(copy.parent().expect("parent")).expect("mkdir");
        std::fs::write(&copy, "x").expect("write");
        let found = resolve_path("sweep.yml", dir.path(), &[]).expect("found");
        assert!(
            found.ends_with("localws/runs/HD_1_0/cfg/sweep.yml"),
            "without the skip: {found:?}"
        );
        let workspace = dir.path().join("./.azureml/localws");
        let err = resolve_path("sweep.yml", dir.path(), &[workspace]).unwrap_err();
        assert!(err.to_string().contains("not found"), "{err}");
        std::fs::create_dir_all(dir.path().join("cfg")).expect("mkdir");
        std::fs::write(dir.path().join("cfg/sweep.yml"), "y").expect("write");
        let workspace = dir.path().join(".azureml/localws");
        let found = resolve_path("sweep.yml", dir.path(), &[workspace]).expect("found");
        assert!(found.ends_with("cfg/sweep.yml") && !found.to_string_lossy().contains("localws"));
    }
}
