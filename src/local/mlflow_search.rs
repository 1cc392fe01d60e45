//! MLflow's `runs/search` language: the `filter` string and `order_by` list,
//! evaluated over runs in the JSON shape the tracking API returns.
//!
//! The grammar is MLflow's (`mlflow.utils.search_utils.SearchUtils`): clauses
//! `<entity>.<key> <comparator> <value>` joined by `AND` (MLflow has no `OR`);
//! keys may be quoted with backticks or double quotes (`metrics.\`val loss\``);
//! strings with single or double quotes. Metrics compare as numbers; params
//! and tags as strings (`=`, `!=`, `LIKE`, `ILIKE`, `IS [NOT] NULL`);
//! attributes (`status`, `run_id`, `run_name`, `start_time`, …) also take
//! `IN (…)` / `NOT IN (…)`.

use super::tracking::number_of;
use serde_json::Value;
use std::cmp::Ordering;

/// A parsed `filter` string: every clause must hold.
#[derive(Debug, Default, PartialEq)]
pub struct Filter {
    clauses: Vec<Clause>,
}

#[derive(Debug, PartialEq)]
struct Clause {
    key: Key,
    op: Op,
    value: Operand,
}

/// Which value of a run a clause or an order-by term looks at.
#[derive(Debug, Clone, PartialEq)]
struct Key {
    entity: Entity,
    name: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Entity {
    Metric,
    Param,
    Tag,
    Attribute,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    ILike,
    In,
    NotIn,
    IsNull,
    IsNotNull,
}

#[derive(Debug, PartialEq)]
enum Operand {
    Text(String),
    Number(f64),
    List(Vec<String>),
    None,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Number(f64),
    Symbol(&'static str),
    Open,
    Close,
    Comma,
}

/// The run attributes MLflow lets a filter or order-by name.
const RUN_ATTRIBUTES: &[&str] = &[
    "run_id",
    "run_name",
    "status",
    "user_id",
    "artifact_uri",
    "start_time",
    "end_time",
    "lifecycle_stage",
    "experiment_id",
];

/// The logged-model attributes (`SearchLoggedModelsUtils`); a model is
/// searched in the same shape as a run: `{"info": {attributes}, "data":
/// {"metrics", "params", "tags"}}`.
const MODEL_ATTRIBUTES: &[&str] = &[
    "name",
    "model_id",
    "model_type",
    "status",
    "source_run_id",
    "creation_timestamp",
    "creation_time",
    "last_updated_timestamp",
    "last_updated_time",
];

/// The experiment attributes (`SearchExperimentsUtils`); an experiment is
/// searched as `{"info": {attributes}, "data": {"tags"}}`.
const EXPERIMENT_ATTRIBUTES: &[&str] =
    &["name", "experiment_id", "creation_time", "last_update_time"];

/// Registered-model attributes (`SearchModelUtils`).
const REGISTERED_MODEL_ATTRIBUTES: &[&str] =
    &["name", "creation_timestamp", "last_updated_timestamp"];

/// Model-version attributes (`SearchModelVersionUtils`).
const MODEL_VERSION_ATTRIBUTES: &[&str] = &[
    "name",
    "version_number",
    "run_id",
    "source_path",
    "current_stage",
    "status",
    "creation_timestamp",
    "last_updated_timestamp",
];

/// Attributes compared as numbers.
const NUMERIC_ATTRIBUTES: &[&str] = &[
    "version_number",
    "start_time",
    "end_time",
    "creation_timestamp",
    "creation_time",
    "last_updated_timestamp",
    "last_updated_time",
    "last_update_time",
];

/// Parse a `runs/search` filter string; an empty one matches every run.
pub fn parse_filter(text: &str) -> Result<Filter, String> {
    parse_filter_over(text, RUN_ATTRIBUTES)
}

/// Parse a `logged-models/search` filter string (its own attributes).
pub fn parse_model_filter(text: &str) -> Result<Filter, String> {
    parse_filter_over(text, MODEL_ATTRIBUTES)
}

/// Parse a `registered-models/search` filter string.
pub fn parse_registered_model_filter(text: &str) -> Result<Filter, String> {
    parse_filter_over(text, REGISTERED_MODEL_ATTRIBUTES)
}

/// Parse a `model-versions/search` filter string.
pub fn parse_model_version_filter(text: &str) -> Result<Filter, String> {
    parse_filter_over(text, MODEL_VERSION_ATTRIBUTES)
}

/// Parse an `experiments/search` filter string.
pub fn parse_experiment_filter(text: &str) -> Result<Filter, String> {
    parse_filter_over(text, EXPERIMENT_ATTRIBUTES)
}

fn parse_filter_over(text: &str, attributes: &[&str]) -> Result<Filter, String> {
    let tokens = tokenize(text)?;
    let mut clauses = Vec::new();
    let mut rest = tokens.as_slice();
    while !rest.is_empty() {
        let (clause, after) = parse_clause(rest, attributes)?;
        clauses.push(clause);
        rest = match after.split_first() {
            None => after,
            Some((Token::Word(w), more)) if w.eq_ignore_ascii_case("and") => {
                if more.is_empty() {
                    return Err("the filter ends with AND".into());
                }
                more
            }
            Some((Token::Word(w), _)) if w.eq_ignore_ascii_case("or") => {
                return Err(
                    "MLflow filters join clauses with AND only (OR is not supported)".into(),
                );
            }
            Some((other, _)) => return Err(format!("expected AND, found {}", describe(other))),
        };
    }
    Ok(Filter { clauses })
}

impl Filter {
    /// Whether `run` (`{"info": {…}, "data": {"metrics": […], …}}`) passes.
    pub fn matches(&self, run: &Value) -> bool {
        self.clauses.iter().all(|c| c.matches(run))
    }
}

/// `order_by` terms: `metrics.acc DESC`, `attributes.start_time`, … Runs
/// lacking a value sort last; ties (and no terms) fall back to MLflow's
/// default, newest start first, then run id.
pub fn sort_runs(runs: &mut [Value], order_by: &[String]) -> Result<(), String> {
    let terms = order_terms(order_by, RUN_ATTRIBUTES)?;
    sort_by_terms(runs, &terms, |a, b| {
        let start = |r: &Value| r["info"]["start_time"].as_i64().unwrap_or(i64::MIN);
        start(b)
            .cmp(&start(a))
            .then_with(|| text_at(a, "run_id").cmp(&text_at(b, "run_id")))
    });
    Ok(())
}

/// Experiments by `order_by` terms (`name`, `creation_time DESC`, …), then
/// MLflow's default: newest first, then by id.
pub fn sort_experiments(experiments: &mut [Value], order_by: &[String]) -> Result<(), String> {
    let terms = order_terms(order_by, EXPERIMENT_ATTRIBUTES)?;
    sort_by_terms(experiments, &terms, |a, b| {
        let created = |e: &Value| e["info"]["creation_time"].as_i64().unwrap_or(i64::MIN);
        let id = |e: &Value| {
            text_at(e, "experiment_id")
                .parse::<i64>()
                .unwrap_or(i64::MAX)
        };
        created(b).cmp(&created(a)).then_with(|| id(a).cmp(&id(b)))
    });
    Ok(())
}

fn order_terms(order_by: &[String], attributes: &[&str]) -> Result<Vec<(Key, bool)>, String> {
    order_by
        .iter()
        .map(|term| parse_order_term(term, attributes))
        .collect()
}

/// Sort by each term in turn; `tiebreak` orders what the terms leave equal.
fn sort_by_terms(
    items: &mut [Value],
    terms: &[(Key, bool)],
    tiebreak: impl Fn(&Value, &Value) -> Ordering,
) {
    items.sort_by(|a, b| {
        for (key, ascending) in terms {
            let ord = compare_for_sort(key, key.lookup(a), key.lookup(b), *ascending);
            if ord != Ordering::Equal {
                return ord;
            }
        }
        tiebreak(a, b)
    });
}

/// `item["info"][field]` as text ("" when absent).
fn text_at(item: &Value, field: &str) -> String {
    item["info"][field].as_str().unwrap_or("").to_string()
}

/// Logged models by `order_by` entries (`{"field_name", "ascending"}`), then
/// newest first (MLflow's default), then by id.
pub fn sort_models(models: &mut [Value], order_by: &[(String, bool)]) -> Result<(), String> {
    let mut terms = Vec::new();
    for (field, ascending) in order_by {
        let (key, _) = parse_order_term(field, MODEL_ATTRIBUTES)?;
        terms.push((key, *ascending));
    }
    sort_by_terms(models, &terms, |a, b| {
        let created = |m: &Value| m["info"]["creation_timestamp"].as_i64().unwrap_or(i64::MIN);
        created(b)
            .cmp(&created(a))
            .then_with(|| text_at(a, "model_id").cmp(&text_at(b, "model_id")))
    });
    Ok(())
}

fn parse_order_term(term: &str, attributes: &[&str]) -> Result<(Key, bool), String> {
    let tokens = tokenize(term)?;
    let (key, rest) = parse_key(&tokens, attributes)?;
    let ascending = match rest {
        [] => true,
        [Token::Word(w)] if w.eq_ignore_ascii_case("asc") => true,
        [Token::Word(w)] if w.eq_ignore_ascii_case("desc") => false,
        _ => {
            return Err(format!(
                "invalid order_by term '{term}' (expected KEY [ASC|DESC])"
            ));
        }
    };
    Ok((key, ascending))
}

/// Missing values last in either direction. Params and tags are text in
/// MLflow and sort as text (`'10' < '2'`); metrics and attributes sort by
/// value when both are numbers.
fn compare_for_sort(key: &Key, a: Option<Value>, b: Option<Value>, ascending: bool) -> Ordering {
    let textual = matches!(key.entity, Entity::Param | Entity::Tag);
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => {
            let ord = match (number_of(&a), number_of(&b)) {
                (Some(x), Some(y)) if !textual => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
                _ => text_of(&a).cmp(&text_of(&b)),
            };
            if ascending { ord } else { ord.reverse() }
        }
    }
}

impl Key {
    fn lookup(&self, run: &Value) -> Option<Value> {
        let found = match self.entity {
            Entity::Attribute => run["info"].get(self.name.as_str()).cloned(),
            entity => {
                let list = match entity {
                    Entity::Metric => "metrics",
                    Entity::Param => "params",
                    _ => "tags",
                };
                run["data"][list].as_array().and_then(|items| {
                    items
                        .iter()
                        .find(|i| i["key"] == self.name.as_str())
                        .map(|i| i["value"].clone())
                })
            }
        };
        found.filter(|v| !v.is_null())
    }

    fn is_numeric(&self) -> bool {
        self.entity == Entity::Metric
            || (self.entity == Entity::Attribute
                && NUMERIC_ATTRIBUTES.contains(&self.name.as_str()))
    }
}

impl Clause {
    fn matches(&self, run: &Value) -> bool {
        let actual = self.key.lookup(run);
        match (self.op, actual) {
            (Op::IsNull, actual) => actual.is_none(),
            (Op::IsNotNull, actual) => actual.is_some(),
            (_, None) => false,
            (op, Some(actual)) => self.holds(op, &actual),
        }
    }

    fn holds(&self, op: Op, actual: &Value) -> bool {
        match (&self.value, op) {
            (Operand::List(items), Op::In) => items.contains(&text_of(actual)),
            (Operand::List(items), Op::NotIn) => !items.contains(&text_of(actual)),
            (Operand::Text(pattern), Op::Like) => like(&text_of(actual), pattern, false),
            (Operand::Text(pattern), Op::ILike) => like(&text_of(actual), pattern, true),
            (Operand::Number(n), op) => match number_of(actual) {
                Some(a) => compare(a.partial_cmp(n), op),
                None => false,
            },
            (Operand::Text(t), op) => compare(Some(text_of(actual).as_str().cmp(t)), op),
            _ => false,
        }
    }
}

fn compare(ord: Option<Ordering>, op: Op) -> bool {
    let Some(ord) = ord else { return false };
    match op {
        Op::Eq => ord == Ordering::Equal,
        Op::Ne => ord != Ordering::Equal,
        Op::Lt => ord == Ordering::Less,
        Op::Le => ord != Ordering::Greater,
        Op::Gt => ord == Ordering::Greater,
        Op::Ge => ord != Ordering::Less,
        _ => false,
    }
}

/// SQL `LIKE`: `%` any run of characters, `_` exactly one.
fn like(text: &str, pattern: &str, ignore_case: bool) -> bool {
    let fold = |s: &str| -> Vec<char> {
        if ignore_case {
            s.to_lowercase().chars().collect()
        } else {
            s.chars().collect()
        }
    };
    let (t, p) = (fold(text), fold(pattern));
    // Classic wildcard matching with one backtrack point for the last `%`.
    let (mut ti, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || p[pi] == t[ti]) {
            ti += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '%')
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn parse_clause<'t>(
    tokens: &'t [Token],
    attributes: &[&str],
) -> Result<(Clause, &'t [Token]), String> {
    let (key, rest) = parse_key(tokens, attributes)?;
    let (op, rest) = parse_op(rest)?;
    let (value, rest) = match op {
        Op::IsNull | Op::IsNotNull => (Operand::None, rest),
        Op::In | Op::NotIn => parse_list(rest)?,
        _ => match rest.split_first() {
            Some((Token::Quoted(s), more)) => (Operand::Text(s.clone()), more),
            Some((Token::Number(n), more)) => (Operand::Number(*n), more),
            Some((other, _)) => return Err(format!("expected a value, found {}", describe(other))),
            None => return Err("the filter ends before a value".into()),
        },
    };
    check(&key, op, &value)?;
    Ok((Clause { key, op, value }, rest))
}

/// Comparators MLflow accepts per entity (it refuses the others, so do we).
fn check(key: &Key, op: Op, value: &Operand) -> Result<(), String> {
    let allowed = match (key.is_numeric(), key.entity) {
        (true, _) => matches!(op, Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge),
        (false, Entity::Attribute) => {
            matches!(
                op,
                Op::Eq | Op::Ne | Op::Like | Op::ILike | Op::In | Op::NotIn
            )
        }
        (false, _) => matches!(
            op,
            Op::Eq | Op::Ne | Op::Like | Op::ILike | Op::IsNull | Op::IsNotNull
        ),
    };
    if !allowed {
        return Err(format!(
            "comparator {op:?} is not supported for '{}'",
            key.name
        ));
    }
    match (key.is_numeric(), value) {
        (true, Operand::Text(_)) => Err(format!("'{}' is compared with a number", key.name)),
        (false, Operand::Number(_)) => Err(format!(
            "'{}' is compared with a string: quote the value",
            key.name
        )),
        _ => Ok(()),
    }
}

fn parse_key<'t>(tokens: &'t [Token], attributes: &[&str]) -> Result<(Key, &'t [Token]), String> {
    let Some((Token::Word(word), rest)) = tokens.split_first() else {
        return Err(match tokens.first() {
            Some(t) => format!("expected a key like metrics.acc, found {}", describe(t)),
            None => "expected a key like metrics.acc".into(),
        });
    };
    let (entity, name, rest) = match word.split_once('.') {
        Some((entity, "")) => match rest.split_first() {
            Some((Token::Quoted(name), more)) => (entity, name.clone(), more),
            _ => return Err(format!("expected a key name after '{word}'")),
        },
        Some((entity, name)) => (entity, name.to_string(), rest),
        None if attributes.contains(&word.as_str()) => ("attributes", word.clone(), rest),
        None => {
            return Err(format!(
                "invalid key '{word}' (use metrics., params., tags. or attributes.)"
            ));
        }
    };
    let entity = match entity.to_ascii_lowercase().as_str() {
        "metric" | "metrics" => Entity::Metric,
        "param" | "params" | "parameter" | "parameters" => Entity::Param,
        "tag" | "tags" => Entity::Tag,
        "attribute" | "attributes" | "attr" | "run" => Entity::Attribute,
        other => return Err(format!("invalid entity '{other}' in '{word}'")),
    };
    // MLflow's alternate run attribute names (`SearchUtils`).
    let name = match name.as_str() {
        "created" | "Created" if attributes.contains(&"start_time") => "start_time".to_string(),
        "run name" | "Run name" | "Run Name" if attributes.contains(&"run_name") => {
            "run_name".to_string()
        }
        _ => name,
    };
    if entity == Entity::Attribute && !attributes.contains(&name.as_str()) {
        return Err(format!(
            "invalid attribute '{name}' (one of {})",
            attributes.join(", ")
        ));
    }
    Ok((Key { entity, name }, rest))
}

fn parse_op(tokens: &[Token]) -> Result<(Op, &[Token]), String> {
    let word = |i: usize| match tokens.get(i) {
        Some(Token::Word(w)) => w.to_ascii_uppercase(),
        _ => String::new(),
    };
    let op = match tokens.first() {
        Some(Token::Symbol(s)) => {
            let op = match *s {
                "=" | "==" => Op::Eq,
                "!=" => Op::Ne,
                "<" => Op::Lt,
                "<=" => Op::Le,
                ">" => Op::Gt,
                _ => Op::Ge,
            };
            return Ok((op, &tokens[1..]));
        }
        _ => match (word(0).as_str(), word(1).as_str(), word(2).as_str()) {
            ("LIKE", _, _) => (Op::Like, 1),
            ("ILIKE", _, _) => (Op::ILike, 1),
            ("IN", _, _) => (Op::In, 1),
            ("NOT", "IN", _) => (Op::NotIn, 2),
            ("IS", "NULL", _) => (Op::IsNull, 2),
            ("IS", "NOT", "NULL") => (Op::IsNotNull, 3),
            _ => {
                return Err(match tokens.first() {
                    Some(t) => format!(
                        "expected a comparator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, IS NULL), found {}",
                        describe(t)
                    ),
                    None => "the filter ends before a comparator".into(),
                });
            }
        },
    };
    Ok((op.0, &tokens[op.1..]))
}

fn parse_list(tokens: &[Token]) -> Result<(Operand, &[Token]), String> {
    let Some((Token::Open, mut rest)) = tokens.split_first() else {
        return Err("IN takes a parenthesised list of quoted strings".into());
    };
    let mut items = Vec::new();
    loop {
        match rest.split_first() {
            Some((Token::Quoted(s), more)) => {
                items.push(s.clone());
                rest = more;
            }
            _ => return Err("IN takes a parenthesised list of quoted strings".into()),
        }
        match rest.split_first() {
            Some((Token::Comma, more)) => rest = more,
            Some((Token::Close, more)) => return Ok((Operand::List(items), more)),
            _ => return Err("unclosed IN list".into()),
        }
    }
}

fn describe(token: &Token) -> String {
    match token {
        Token::Word(w) => format!("'{w}'"),
        Token::Quoted(s) => format!("'{s}'"),
        Token::Number(n) => n.to_string(),
        Token::Symbol(s) => format!("'{s}'"),
        Token::Open => "'('".into(),
        Token::Close => "')'".into(),
        Token::Comma => "','".into(),
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            '\'' | '"' | '`' => {
                // SQL's escape, which MLflow's parser (sqlparse) keeps: a
                // doubled quote inside is one quote (`'it''s'`).
                let mut inner = String::new();
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => return Err(format!("unclosed {c} in filter")),
                        Some(&x) if x == c && chars.get(j + 1) == Some(&c) => {
                            inner.push(c);
                            j += 2;
                        }
                        Some(&x) if x == c => break,
                        Some(&x) => {
                            inner.push(x);
                            j += 1;
                        }
                    }
                }
                tokens.push(Token::Quoted(inner));
                i = j + 1;
            }
            '=' | '!' | '<' | '>' => {
                let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
                let symbol = ["==", "!=", "<=", ">="]
                    .into_iter()
                    .find(|s| *s == two)
                    .or(match c {
                        '=' => Some("="),
                        '<' => Some("<"),
                        '>' => Some(">"),
                        _ => None,
                    })
                    .ok_or("'!' must be followed by '='")?;
                tokens.push(Token::Symbol(symbol));
                i += symbol.len();
            }
            c if c.is_ascii_digit() || c == '-' || c == '.' => {
                let end = (i + 1..chars.len())
                    .find(|&j| !(chars[j].is_ascii_alphanumeric() || ".+-".contains(chars[j])))
                    .unwrap_or(chars.len());
                let word: String = chars[i..end].iter().collect();
                let n = word
                    .parse()
                    .map_err(|_| format!("invalid number '{word}' in filter"))?;
                tokens.push(Token::Number(n));
                i = end;
            }
            _ => {
                let end = (i..chars.len())
                    .find(|&j| {
                        let x = chars[j];
                        x.is_whitespace() || "()'\"`,=!<>".contains(x)
                    })
                    .unwrap_or(chars.len());
                // In tags.`x y` the word is `tags.`; the quoted name follows.
                tokens.push(Token::Word(chars[i..end].iter().collect()));
                i = end;
            }
        }
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn registry_filters_name_bare_attributes_and_compare_versions_as_numbers() {
        let model = json!({"info": {"name": "churn"}, "data": {"tags": []}});
        for (filter, hit) in [
            ("name LIKE 'ch%'", true),
            ("name = 'churn'", true),
            ("name ILIKE 'CH%'", true),
            ("name = 'x'", false),
        ] {
            let f = parse_registered_model_filter(filter).unwrap();
            assert_eq!(f.matches(&model), hit, "{filter}");
        }
        let version = json!({"info": {"name": "churn", "version_number": 10.0, "run_id": "r"}, "data": {"tags": []}});
        let f = parse_model_version_filter("name = 'churn' AND version_number > 9").unwrap();
        assert!(f.matches(&version));
    }

    fn run(id: &str, start: i64, acc: Option<f64>, lr: &str, team: Option<&str>) -> Value {
        let metrics: Vec<Value> = acc
            .map(|a| json!({"key": "val acc", "value": a}))
            .into_iter()
            .chain([json!({"key": "loss", "value": 1.0})])
            .collect();
        let tags: Vec<Value> = team
            .map(|t| json!({"key": "mlflow.runName", "value": t}))
            .into_iter()
            .collect();
        json!({
            "info": {"run_id": id, "run_name": id, "status": "FINISHED", "start_time": start},
            "data": {"metrics": metrics, "params": [{"key": "lr", "value": lr}], "tags": tags},
        })
    }

    fn ids(runs: &[Value]) -> Vec<&str> {
        runs.iter()
            .map(|r| r["info"]["run_id"].as_str().unwrap_or(""))
            .collect()
    }

    /// Runs, logged models and experiments each have their own attributes.
    #[test]
    fn each_entity_filters_on_its_own_attributes() {
        assert!(parse_filter("run_name = 'a'").is_ok());
        assert!(parse_filter("source_run_id = 'a'").is_err());
        let model = json!({
            "info": {"name": "model", "source_run_id": "r1", "creation_time": 5},
            "data": {"params": [{"key": "lr", "value": "0.1"}], "metrics": [], "tags": []},
        });
        let filter =
            parse_model_filter("name = 'model' AND source_run_id = 'r1' AND creation_time > 4")
                .expect("parses");
        assert!(filter.matches(&model));
        assert!(
            !parse_model_filter("params.lr = '0.2'")
                .expect("parses")
                .matches(&model)
        );
        assert!(parse_model_filter("run_name = 'a'").is_err());
        assert!(parse_experiment_filter("name LIKE 'a%' AND tags.team = 'x'").is_ok());
        assert!(parse_experiment_filter("creation_time > 'soon'").is_err());
        assert!(parse_experiment_filter("status = 'x'").is_err());
    }

    #[test]
    fn and_joined_clauses_with_quoted_keys_and_values_containing_and() {
        let f = parse_filter("metrics.`val acc` >= 0.5 AND params.lr = '0.1 and more'").unwrap();
        assert!(f.matches(&run("a", 1, Some(0.7), "0.1 and more", None)));
        assert!(!f.matches(&run("a", 1, Some(0.7), "0.1", None)));
        assert!(!f.matches(&run("a", 1, Some(0.3), "0.1 and more", None)));
        assert!(
            !f.matches(&run("a", 1, None, "0.1 and more", None)),
            "missing metric never matches"
        );
    }

    #[test]
    fn like_ilike_in_and_null_checks() {
        let r = run("exp_1_ab", 1, None, "0.01", Some("Child-A"));
        let yes = [
            "tags.\"mlflow.runName\" LIKE 'Child-%'",
            "tags.`mlflow.runName` ILIKE 'child-_'",
            "attributes.run_id IN ('x', 'exp_1_ab')",
            "run_id NOT IN ('x')",
            "tags.missing IS NULL",
            "params.lr IS NOT NULL",
            "attributes.start_time < 5",
            "status = 'FINISHED'",
        ];
        for f in yes {
            assert!(parse_filter(f).unwrap().matches(&r), "{f}");
        }
        for f in [
            "tags.`mlflow.runName` LIKE 'child-%'",
            "params.lr != '0.01'",
        ] {
            assert!(!parse_filter(f).unwrap().matches(&r), "{f}");
        }
    }

    #[test]
    fn mlflow_refuses_what_we_refuse() {
        for bad in [
            "metrics.acc > 'x'",
            "params.lr > 0.1",
            "metrics.acc LIKE '%'",
            "acc > 1",
            "metrics.acc > 1 OR metrics.acc < 0",
            "metrics.acc > 1 AND",
            "params.lr = 'unclosed",
            "attributes.nope = 'x'",
            "run_id IN 'x'",
        ] {
            assert!(parse_filter(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_filter("  ").unwrap(), Filter::default());
    }

    #[test]
    fn order_by_metric_desc_puts_missing_values_last_then_newest_first() {
        let mut runs = vec![
            run("a", 1, Some(0.5), "", None),
            run("b", 2, None, "", None),
            run("c", 3, Some(0.9), "", None),
            run("d", 4, None, "", None),
        ];
        sort_runs(&mut runs, &["metrics.`val acc` DESC".into()]).unwrap();
        assert_eq!(ids(&runs), ["c", "a", "d", "b"]);
        sort_runs(&mut runs, &["metrics.`val acc`".into()]).unwrap();
        assert_eq!(ids(&runs), ["a", "c", "d", "b"]);
        sort_runs(&mut runs, &[]).unwrap();
        assert_eq!(ids(&runs), ["d", "c", "b", "a"]);
        assert!(sort_runs(&mut runs, &["metrics.acc sideways".into()]).is_err());
    }

    #[test]
    fn mlflows_alternate_attribute_names_are_read() {
        let r = run("a", 5, None, "", None);
        assert!(parse_filter("attributes.created > 4").unwrap().matches(&r));
        assert!(
            parse_filter("attributes.`run name` = 'a'")
                .unwrap()
                .matches(&r)
        );
        assert!(parse_experiment_filter("attributes.created > 4").is_err());
    }

    #[test]
    fn a_doubled_quote_inside_a_string_is_one_quote() {
        let f = parse_filter("params.lr = 'it''s'").unwrap();
        assert!(f.matches(&run("a", 1, None, "it's", None)));
        assert!(parse_filter("params.lr = 'open").is_err());
        assert!(
            parse_filter("params.lr = ''")
                .unwrap()
                .matches(&run("a", 1, None, "", None))
        );
    }

    /// Params are text in MLflow: `order_by params.lr` sorts '10' before '2'.
    #[test]
    fn params_sort_as_text_as_mlflow_stores_them() {
        let mut runs = vec![
            run("a", 1, None, "2", None),
            run("b", 2, None, "10", None),
            run("c", 3, None, "1e-05", None),
        ];
        sort_runs(&mut runs, &["params.lr".into()]).unwrap();
        assert_eq!(ids(&runs), ["b", "c", "a"]);
    }
}
