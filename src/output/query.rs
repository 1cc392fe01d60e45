//! `--query`: JMESPath evaluated the way az evaluates it.
//!
//! The `jmespath` crate parses; we interpret, because az runs Python's
//! jmespath with `Options(dict_cls=OrderedDict)`: a multi-select hash keeps the
//! order the user wrote (`[].{Name:name, State:status}` gives columns Name,
//! State), ints stay ints (`length()`, `floor()`), and the crate's `BTreeMap`
//! objects would lose both.

use super::json::compact_ascii;
use super::value::{Dict, Doc};
use jmespath::ast::{Ast, Comparator, KeyValuePair};

/// Why a query could not be evaluated; the message names the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError(pub String);

type Eval = Result<Value, QueryError>;

/// A result during evaluation: a value, or an expression reference (`&expr`).
#[derive(Debug, Clone)]
enum Value {
    Doc(Doc),
    Expref(Ast),
}

/// Parse `expression` (errors are the user's: exit code 2).
pub fn compile(expression: &str) -> Result<Ast, QueryError> {
    jmespath::parse(&legacy_literals(expression)).map_err(|e| QueryError(e.to_string()))
}

/// Python's jmespath (so az) still reads a backtick literal that is not JSON
/// as a string (JMESPath's old form, JEP-12): `` [?status==`Completed`] ``
/// is common in scripts written for az. Such literals are rewritten to
/// their JSON string so the parser takes them as Python's does.
fn legacy_literals(expression: &str) -> std::borrow::Cow<'_, str> {
    if !expression.contains('`') {
        return expression.into();
    }
    let mut out = String::with_capacity(expression.len() + 8);
    let mut chars = expression.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(_), '\\') => {
                out.push(c);
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            (Some(q), _) if c == q => {
                out.push(c);
                quote = None;
            }
            (Some(_), _) => out.push(c),
            (None, '\'' | '"') => {
                out.push(c);
                quote = Some(c);
            }
            (None, '`') => {
                let mut raw = String::new();
                let mut closed = false;
                while let Some(l) = chars.next() {
                    match l {
                        '\\' => {
                            raw.push(l);
                            if let Some(next) = chars.next() {
                                raw.push(next);
                            }
                        }
                        '`' => {
                            closed = true;
                            break;
                        }
                        _ => raw.push(l),
                    }
                }
                out.push('`');
                out.push_str(&legacy_literal(&raw).unwrap_or(raw));
                if closed {
                    out.push('`');
                }
            }
            (None, _) => out.push(c),
        }
    }
    out.into()
}

/// The JSON text for one backtick literal's raw content (`` \` `` escapes
/// kept), when it is not JSON but reads as a string the way Python's
/// jmespath reads it: `json.loads('"%s"' % lexeme.lstrip())`.
fn legacy_literal(raw: &str) -> Option<String> {
    let lexeme = raw.replace("\\`", "`");
    if serde_json::from_str::<serde_json::Value>(&lexeme).is_ok() {
        return None;
    }
    let text: String = serde_json::from_str(&format!("\"{}\"", lexeme.trim_start())).ok()?;
    Some(serde_json::to_string(&text).ok()?.replace('`', "\\`"))
}

/// Evaluate a parsed query against `data`.
pub fn search(ast: &Ast, data: &Doc) -> Result<Doc, QueryError> {
    match eval(ast, data)? {
        Value::Doc(doc) => Ok(doc),
        Value::Expref(_) => Ok(Doc::Null),
    }
}

fn doc(v: Doc) -> Eval {
    Ok(Value::Doc(v))
}

fn eval_doc(ast: &Ast, data: &Doc) -> Result<Doc, QueryError> {
    match eval(ast, data)? {
        Value::Doc(d) => Ok(d),
        Value::Expref(_) => Ok(Doc::Null),
    }
}

fn eval(ast: &Ast, data: &Doc) -> Eval {
    match ast {
        Ast::Field { name, .. } => doc(match data {
            Doc::Dict(d) => d.get(name).cloned().unwrap_or(Doc::Null),
            _ => Doc::Null,
        }),
        Ast::Subexpr { lhs, rhs, .. } => eval(rhs, &eval_doc(lhs, data)?),
        Ast::Identity { .. } => doc(data.clone()),
        Ast::Literal { value, .. } => doc(literal(value)),
        Ast::Index { idx, .. } => doc(index(data, *idx)),
        Ast::Or { lhs, rhs, .. } => {
            let left = eval_doc(lhs, data)?;
            if left.is_falsy() {
                eval(rhs, data)
            } else {
                doc(left)
            }
        }
        Ast::And { lhs, rhs, .. } => {
            let left = eval_doc(lhs, data)?;
            if left.is_falsy() {
                doc(left)
            } else {
                eval(rhs, data)
            }
        }
        Ast::Not { node, .. } => {
            let value = eval_doc(node, data)?;
            // Python jmespath: `!0` is false (0 is truthy in JMESPath).
            doc(Doc::Bool(value.is_falsy()))
        }
        Ast::Condition {
            predicate, then, ..
        } => {
            if eval_doc(predicate, data)?.is_falsy() {
                doc(Doc::Null)
            } else {
                eval(then, data)
            }
        }
        Ast::Comparison {
            comparator,
            lhs,
            rhs,
            ..
        } => {
            let left = eval_doc(lhs, data)?;
            let right = eval_doc(rhs, data)?;
            doc(compare(comparator, &left, &right))
        }
        Ast::ObjectValues { node, .. } => doc(match eval_doc(node, data)? {
            Doc::Dict(d) => Doc::List(d.entries.into_iter().map(|(_, v)| v).collect()),
            _ => Doc::Null,
        }),
        Ast::Projection { lhs, rhs, .. } => match eval_doc(lhs, data)? {
            Doc::List(items) => {
                let mut collected = Vec::new();
                for item in &items {
                    let value = eval_doc(rhs, item)?;
                    if !matches!(value, Doc::Null) {
                        collected.push(value);
                    }
                }
                doc(Doc::List(collected))
            }
            _ => doc(Doc::Null),
        },
        Ast::Flatten { node, .. } => match eval_doc(node, data)? {
            Doc::List(items) => {
                let mut merged = Vec::new();
                for item in items {
                    match item {
                        Doc::List(inner) => merged.extend(inner),
                        other => merged.push(other),
                    }
                }
                doc(Doc::List(merged))
            }
            _ => doc(Doc::Null),
        },
        Ast::MultiList { elements, .. } => {
            if matches!(data, Doc::Null) {
                return doc(Doc::Null);
            }
            let items = elements
                .iter()
                .map(|e| eval_doc(e, data))
                .collect::<Result<Vec<_>, _>>()?;
            doc(Doc::List(items))
        }
        Ast::MultiHash { elements, .. } => multi_hash(elements, data),
        Ast::Function { name, args, .. } => {
            let values = args
                .iter()
                .map(|a| eval(a, data))
                .collect::<Result<Vec<_>, _>>()?;
            call(name, values)
        }
        Ast::Expref { ast, .. } => Ok(Value::Expref((**ast).clone())),
        Ast::Slice {
            start, stop, step, ..
        } => {
            if *step == 0 {
                return Err(QueryError("slice step cannot be 0".into()));
            }
            doc(match data {
                Doc::List(items) => Doc::List(slice(items, *start, *stop, *step)),
                _ => Doc::Null,
            })
        }
    }
}

fn multi_hash(elements: &[KeyValuePair], data: &Doc) -> Eval {
    if matches!(data, Doc::Null) {
        return doc(Doc::Null);
    }
    let mut dict = Dict::new(true);
    for kv in elements {
        dict.insert(kv.key.clone(), eval_doc(&kv.value, data)?);
    }
    doc(Doc::Dict(dict))
}

fn literal(value: &jmespath::Rcvar) -> Doc {
    serde_json::to_value(&**value)
        .map(|v| Doc::from(&v))
        .unwrap_or(Doc::Null)
}

fn index(data: &Doc, idx: i32) -> Doc {
    let Doc::List(items) = data else {
        return Doc::Null;
    };
    let len = items.len() as i64;
    let i = if idx < 0 {
        len + i64::from(idx)
    } else {
        i64::from(idx)
    };
    if i < 0 || i >= len {
        Doc::Null
    } else {
        items[i as usize].clone()
    }
}

/// Python's `list[start:stop:step]`.
fn slice(items: &[Doc], start: Option<i32>, stop: Option<i32>, step: i32) -> Vec<Doc> {
    let len = items.len() as i64;
    let step = i64::from(step);
    let clamp = |bound: Option<i32>, default: i64| -> i64 {
        match bound {
            None => default,
            Some(b) => {
                let b = i64::from(b);
                let b = if b < 0 { b + len } else { b };
                if step > 0 {
                    b.clamp(0, len)
                } else {
                    b.clamp(-1, len - 1)
                }
            }
        }
    };
    let (start, stop) = if step > 0 {
        (clamp(start, 0), clamp(stop, len))
    } else {
        (clamp(start, len - 1), clamp(stop, -1))
    };
    let mut out = Vec::new();
    let mut i = start;
    while (step > 0 && i < stop) || (step < 0 && i > stop) {
        out.push(items[i as usize].clone());
        i += step;
    }
    out
}

/// Python's `==` with jmespath's rule that 0/1 never equal false/true.
fn py_equal(a: &Doc, b: &Doc) -> bool {
    match (a, b) {
        (Doc::Null, Doc::Null) => true,
        (Doc::Str(x), Doc::Str(y)) => x == y,
        (Doc::Bool(x), Doc::Bool(y)) => x == y,
        (Doc::Int(x), Doc::Int(y)) => x == y,
        (Doc::List(x), Doc::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| py_equal(p, q))
        }
        (Doc::Dict(x), Doc::Dict(y)) => {
            x.entries.len() == y.entries.len()
                && x.entries
                    .iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| py_equal(v, w)))
        }
        _ if a.is_number() && b.is_number() => a.as_f64() == b.as_f64(),
        _ => false,
    }
}

fn compare(comparator: &Comparator, left: &Doc, right: &Doc) -> Doc {
    use std::cmp::Ordering;
    let ordering = match comparator {
        Comparator::Equal => return Doc::Bool(py_equal(left, right)),
        Comparator::NotEqual => return Doc::Bool(!py_equal(left, right)),
        _ => match (left, right) {
            (Doc::Str(a), Doc::Str(b)) => Some(a.cmp(b)),
            _ if left.is_number() && right.is_number() => num_cmp(left, right),
            _ => None,
        },
    };
    let Some(ordering) = ordering else {
        return Doc::Null;
    };
    Doc::Bool(match comparator {
        Comparator::LessThan => ordering == Ordering::Less,
        Comparator::LessThanEqual => ordering != Ordering::Greater,
        Comparator::GreaterThan => ordering == Ordering::Greater,
        _ => ordering != Ordering::Less,
    })
}

fn num_cmp(a: &Doc, b: &Doc) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Doc::Int(x), Doc::Int(y)) => Some(x.cmp(y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Expref(_) => "expref",
        Value::Doc(Doc::Null) => "null",
        Value::Doc(Doc::Bool(_)) => "boolean",
        Value::Doc(Doc::Int(_) | Doc::Float(_)) => "number",
        Value::Doc(Doc::Str(_)) => "string",
        Value::Doc(Doc::List(_)) => "array",
        Value::Doc(Doc::Dict(_)) => "object",
    }
}

fn type_error(function: &str, v: &Value, expected: &str) -> QueryError {
    QueryError(format!(
        "In function {function}(), invalid type for value: expected one of {expected}, received \"{}\"",
        type_name(v)
    ))
}

fn arity(function: &str, args: &[Value], n: usize, variadic: bool) -> Result<(), QueryError> {
    let ok = if variadic {
        args.len() >= n
    } else {
        args.len() == n
    };
    if ok {
        Ok(())
    } else {
        Err(QueryError(format!(
            "Expected {}{n} arguments for function {function}(), received {}",
            if variadic { "at least " } else { "" },
            args.len()
        )))
    }
}

fn number_arg(function: &str, v: &Value) -> Result<Doc, QueryError> {
    match v {
        Value::Doc(d) if d.is_number() => Ok(d.clone()),
        _ => Err(type_error(function, v, "['number']")),
    }
}

fn string_arg<'a>(function: &str, v: &'a Value) -> Result<&'a str, QueryError> {
    match v {
        Value::Doc(Doc::Str(s)) => Ok(s),
        _ => Err(type_error(function, v, "['string']")),
    }
}

fn array_arg<'a>(function: &str, v: &'a Value) -> Result<&'a [Doc], QueryError> {
    match v {
        Value::Doc(Doc::List(items)) => Ok(items),
        _ => Err(type_error(function, v, "['array']")),
    }
}

fn object_arg<'a>(function: &str, v: &'a Value) -> Result<&'a Dict, QueryError> {
    match v {
        Value::Doc(Doc::Dict(d)) => Ok(d),
        _ => Err(type_error(function, v, "['object']")),
    }
}

fn expref_arg<'a>(function: &str, v: &'a Value) -> Result<&'a Ast, QueryError> {
    match v {
        Value::Expref(ast) => Ok(ast),
        _ => Err(type_error(function, v, "['expref']")),
    }
}

/// An array whose elements are all numbers, or all strings (`max`, `sort`, …).
fn homogeneous<'a>(
    function: &str,
    v: &'a Value,
    allow_strings: bool,
) -> Result<&'a [Doc], QueryError> {
    let expected = if allow_strings {
        "['array-number', 'array-string']"
    } else {
        "['array-number']"
    };
    let items = match v {
        Value::Doc(Doc::List(items)) => items.as_slice(),
        _ => return Err(type_error(function, v, expected)),
    };
    let all_numbers = items.iter().all(Doc::is_number);
    let all_strings = allow_strings && items.iter().all(|d| matches!(d, Doc::Str(_)));
    if all_numbers || all_strings {
        Ok(items)
    } else {
        Err(type_error(function, v, expected))
    }
}

fn sort_key_cmp(a: &Doc, b: &Doc) -> std::cmp::Ordering {
    match (a, b) {
        (Doc::Str(x), Doc::Str(y)) => x.cmp(y),
        _ => num_cmp(a, b).unwrap_or(std::cmp::Ordering::Equal),
    }
}

fn call(name: &str, args: Vec<Value>) -> Eval {
    match name {
        "abs" => {
            arity(name, &args, 1, false)?;
            doc(match number_arg(name, &args[0])? {
                Doc::Int(i) => Doc::Int(i.abs()),
                other => Doc::Float(other.as_f64().unwrap_or(0.0).abs()),
            })
        }
        "avg" => {
            arity(name, &args, 1, false)?;
            let items = homogeneous(name, &args[0], false)?;
            if items.is_empty() {
                return doc(Doc::Null);
            }
            let total = py_sum(items);
            doc(Doc::Float(
                total.as_f64().unwrap_or(0.0) / items.len() as f64,
            ))
        }
        "ceil" | "floor" => {
            arity(name, &args, 1, false)?;
            doc(match number_arg(name, &args[0])? {
                Doc::Int(i) => Doc::Int(i),
                other => {
                    let f = other.as_f64().unwrap_or(0.0);
                    let r = if name == "ceil" { f.ceil() } else { f.floor() };
                    Doc::Int(r as i128)
                }
            })
        }
        "contains" => {
            arity(name, &args, 2, false)?;
            let Value::Doc(search) = &args[1] else {
                return doc(Doc::Bool(false));
            };
            match &args[0] {
                Value::Doc(Doc::List(items)) => {
                    doc(Doc::Bool(items.iter().any(|i| py_equal(i, search))))
                }
                Value::Doc(Doc::Str(s)) => match search {
                    Doc::Str(needle) => doc(Doc::Bool(s.contains(needle.as_str()))),
                    _ => Err(QueryError(
                        "contains(): 'in <string>' requires string as left operand".into(),
                    )),
                },
                other => Err(type_error(name, other, "['array', 'string']")),
            }
        }
        "ends_with" | "starts_with" => {
            arity(name, &args, 2, false)?;
            let subject = string_arg(name, &args[0])?;
            let affix = string_arg(name, &args[1])?;
            let hit = if name == "ends_with" {
                subject.ends_with(affix)
            } else {
                subject.starts_with(affix)
            };
            doc(Doc::Bool(hit))
        }
        "join" => {
            arity(name, &args, 2, false)?;
            let separator = string_arg(name, &args[0])?;
            let items = array_arg(name, &args[1])?;
            let parts = items
                .iter()
                .map(|i| match i {
                    Doc::Str(s) => Ok(s.as_str()),
                    _ => Err(type_error(name, &args[1], "['array-string']")),
                })
                .collect::<Result<Vec<_>, _>>()?;
            doc(Doc::Str(parts.join(separator)))
        }
        "keys" | "values" => {
            arity(name, &args, 1, false)?;
            let d = object_arg(name, &args[0])?;
            doc(Doc::List(if name == "keys" {
                d.entries.iter().map(|(k, _)| Doc::Str(k.clone())).collect()
            } else {
                d.entries.iter().map(|(_, v)| v.clone()).collect()
            }))
        }
        "length" => {
            arity(name, &args, 1, false)?;
            let n = match &args[0] {
                Value::Doc(Doc::Str(s)) => s.chars().count(),
                Value::Doc(Doc::List(l)) => l.len(),
                Value::Doc(Doc::Dict(d)) => d.entries.len(),
                other => return Err(type_error(name, other, "['string', 'array', 'object']")),
            };
            doc(Doc::Int(n as i128))
        }
        "map" => {
            arity(name, &args, 2, false)?;
            let expr = expref_arg(name, &args[0])?;
            let items = array_arg(name, &args[1])?;
            let mapped = items
                .iter()
                .map(|i| eval_doc(expr, i))
                .collect::<Result<Vec<_>, _>>()?;
            doc(Doc::List(mapped))
        }
        "max" | "min" => {
            arity(name, &args, 1, false)?;
            let items = homogeneous(name, &args[0], true)?;
            let pick = if name == "max" {
                items
                    .iter()
                    .reduce(|a, b| if sort_key_cmp(b, a).is_gt() { b } else { a })
            } else {
                items
                    .iter()
                    .reduce(|a, b| if sort_key_cmp(b, a).is_lt() { b } else { a })
            };
            doc(pick.cloned().unwrap_or(Doc::Null))
        }
        "max_by" | "min_by" => {
            arity(name, &args, 2, false)?;
            let items = array_arg(name, &args[0])?;
            let expr = expref_arg(name, &args[1])?;
            let mut best: Option<(Doc, &Doc)> = None;
            for item in items {
                let key = sort_key(name, expr, item)?;
                let better = match &best {
                    None => true,
                    Some((k, _)) if name == "max_by" => sort_key_cmp(&key, k).is_gt(),
                    Some((k, _)) => sort_key_cmp(&key, k).is_lt(),
                };
                if better {
                    best = Some((key, item));
                }
            }
            doc(best.map(|(_, item)| item.clone()).unwrap_or(Doc::Null))
        }
        "merge" => {
            arity(name, &args, 1, true)?;
            let mut merged = Dict::new(false);
            for arg in &args {
                for (k, v) in &object_arg(name, arg)?.entries {
                    merged.insert(k.clone(), v.clone());
                }
            }
            doc(Doc::Dict(merged))
        }
        "not_null" => {
            arity(name, &args, 1, true)?;
            for arg in args {
                if let Value::Doc(d) = arg
                    && !matches!(d, Doc::Null)
                {
                    return doc(d);
                }
            }
            doc(Doc::Null)
        }
        "reverse" => {
            arity(name, &args, 1, false)?;
            match &args[0] {
                Value::Doc(Doc::Str(s)) => doc(Doc::Str(s.chars().rev().collect())),
                Value::Doc(Doc::List(l)) => doc(Doc::List(l.iter().rev().cloned().collect())),
                other => Err(type_error(name, other, "['array', 'string']")),
            }
        }
        "sort" => {
            arity(name, &args, 1, false)?;
            let mut items = homogeneous(name, &args[0], true)?.to_vec();
            items.sort_by(sort_key_cmp);
            doc(Doc::List(items))
        }
        "sort_by" => {
            arity(name, &args, 2, false)?;
            let items = array_arg(name, &args[0])?;
            let expr = expref_arg(name, &args[1])?;
            let mut keyed = Vec::with_capacity(items.len());
            let mut first_is_string = None;
            for item in items {
                let key = sort_key(name, expr, item)?;
                let is_string = matches!(key, Doc::Str(_));
                if *first_is_string.get_or_insert(is_string) != is_string {
                    return Err(QueryError(format!(
                        "In function sort_by(), invalid type for value: expected one of ['{}'], received \"{}\"",
                        if is_string { "number" } else { "string" },
                        type_name(&Value::Doc(key))
                    )));
                }
                keyed.push((key, item.clone()));
            }
            keyed.sort_by(|a, b| sort_key_cmp(&a.0, &b.0));
            doc(Doc::List(keyed.into_iter().map(|(_, item)| item).collect()))
        }
        "sum" => {
            arity(name, &args, 1, false)?;
            doc(py_sum(homogeneous(name, &args[0], false)?))
        }
        "to_array" => {
            arity(name, &args, 1, false)?;
            doc(match args.into_iter().next() {
                Some(Value::Doc(Doc::List(l))) => Doc::List(l),
                Some(Value::Doc(d)) => Doc::List(vec![d]),
                _ => Doc::Null,
            })
        }
        "to_string" => {
            arity(name, &args, 1, false)?;
            doc(match &args[0] {
                Value::Doc(Doc::Str(s)) => Doc::Str(s.clone()),
                Value::Doc(d) => Doc::Str(compact_ascii(d)),
                Value::Expref(_) => Doc::Null,
            })
        }
        "to_number" => {
            arity(name, &args, 1, false)?;
            doc(match &args[0] {
                Value::Doc(d @ (Doc::Int(_) | Doc::Float(_))) => d.clone(),
                Value::Doc(Doc::Str(s)) => parse_number(s),
                _ => Doc::Null,
            })
        }
        "type" => {
            arity(name, &args, 1, false)?;
            doc(Doc::Str(type_name(&args[0]).to_string()))
        }
        _ => Err(QueryError(format!("Unknown function: {name}()"))),
    }
}

fn sort_key(function: &str, expr: &Ast, item: &Doc) -> Result<Doc, QueryError> {
    let key = eval_doc(expr, item)?;
    if key.is_number() || matches!(key, Doc::Str(_)) {
        Ok(key)
    } else {
        Err(type_error(
            function,
            &Value::Doc(key),
            "['number', 'string']",
        ))
    }
}

/// Python's `sum()`: an int while every item is an int.
fn py_sum(items: &[Doc]) -> Doc {
    if items.iter().all(|d| matches!(d, Doc::Int(_))) {
        Doc::Int(
            items
                .iter()
                .map(|d| if let Doc::Int(i) = d { *i } else { 0 })
                .fold(0i128, i128::saturating_add),
        )
    } else {
        Doc::Float(items.iter().filter_map(Doc::as_f64).sum())
    }
}

/// Python's `int(s)`, else `float(s)`, else null. Non-finite results are null.
fn parse_number(s: &str) -> Doc {
    let t = s.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    let int_like = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.chars().all(|c| c.is_ascii_digit() || c == '_');
    if int_like && let Ok(i) = t.replace('_', "").parse::<i128>() {
        return Doc::Int(i);
    }
    match t.parse::<f64>() {
        Ok(f) if f.is_finite() => Doc::Float(f),
        _ => Doc::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(expr: &str, data: &str) -> Doc {
        let value: serde_json::Value = serde_json::from_str(data).unwrap();
        search(&compile(expr).unwrap(), &Doc::from(&value)).unwrap()
    }

    #[test]
    fn multi_select_hash_keeps_written_order() {
        let out = run("{z: a, a: b}", r#"{"a": 1, "b": 2}"#);
        let Doc::Dict(d) = out else { panic!() };
        assert!(d.ordered);
        let keys: Vec<_> = d.entries.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["z", "a"]);
    }

    #[test]
    fn slices_follow_python() {
        let out = run("[::-2]", "[0,1,2,3,4]");
        assert_eq!(crate::output::json::compact_ascii(&out), "[4,2,0]");
        let out = run("[-2:]", "[0,1,2,3,4]");
        assert_eq!(crate::output::json::compact_ascii(&out), "[3,4]");
    }

    #[test]
    fn functions_keep_python_number_types() {
        assert!(matches!(run("length(@)", "[1,2]"), Doc::Int(2)));
        assert!(matches!(run("floor(`1.5`)", "null"), Doc::Int(1)));
        assert!(matches!(run("avg(@)", "[1,2]"), Doc::Float(f) if f == 1.5));
        assert!(matches!(run("to_number('12')", "null"), Doc::Int(12)));
        assert!(matches!(run("to_number('1.5')", "null"), Doc::Float(_)));
        assert!(matches!(run("to_number('abc')", "null"), Doc::Null));
    }

    #[test]
    fn unknown_function_is_an_error() {
        let ast = compile("nope(@)").unwrap();
        assert!(search(&ast, &Doc::Null).is_err());
    }
}

#[cfg(test)]
mod odd_input_tests {
    use super::*;

    /// Odd expressions give an error or a value, never a panic.
    #[test]
    fn odd_expressions_never_panic() {
        let data = Doc::from(&serde_json::json!({"a": [1, 2, {"b": "x"}], "s": "str"}));
        let odd = [
            "",
            " ",
            "[",
            "]]",
            "{",
            "`",
            "'",
            "&",
            "!",
            "@@",
            "a[-2147483648]",
            "a[2147483647]",
            "a[99999999999]",
            "[:::]",
            "a[::0]",
            "a[::-2147483648]",
            "`\"\\ud800\"`",
            "`1e999`",
            "a[?b<`1`]",
            "s[0]",
            "s.*",
            "a[].b[].c",
            "to_number(s)",
            "sum(a)",
            "sort(a)",
            "max_by(a, &b)",
            "sort_by(a, &b)",
            "abs(`-9223372036854775808`)",
            "a | [0] | b",
            "{a: a}.a[0]",
            "length(`null`)",
            "map(&b, a)",
            "join(',', a)",
            "a[*].b.c.d.e",
            "\"quoted\"",
            "'raw'",
            "a[-1:-100:-1]",
            "ceil(`1e300`)",
            "floor(`-1e300`)",
        ];
        for expr in odd {
            let result =
                std::panic::catch_unwind(|| compile(expr).and_then(|ast| search(&ast, &data)));
            assert!(result.is_ok(), "panicked on {expr:?}");
        }
    }
}
