//! The conda file as azure-ai-ml sends and hashes it: not the raw text but
//! `yaml.dump(yaml.safe_load(text), sort_keys=True)` (`Environment.__init__`
//! → `dump_yaml`). Anonymous environment versions are a hash of that text, so
//! reproducing it exactly is what lets a conda file submitted by either tool
//! map to the same environment (and the same image build).
//!
//! The loader follows PyYAML's `SafeLoader`: YAML 1.1 implicit types for plain
//! scalars (`yes` is a bool, `1_000` an int, `3.10` the float 3.1), quoted
//! scalars are strings, merge keys are flattened. The emitter is the PyYAML
//! port in `output::yaml` with PyYAML's defaults (`allow_unicode=False`).
//!
//! Known differences, all outside what conda files contain: timestamps stay
//! strings (PyYAML writes them back unquoted), and a collection reached
//! through an alias is written out again instead of as `&id001`/`*id001`.

use crate::output::value::{Dict, Doc};
use crate::output::yaml::{ImplicitTag, implicit_tag, render_ascii};
use granit_parser::{Event, Parser, ScalarStyle, Span, Tag};
use std::collections::HashMap;

/// Deeper nesting than any conda file has; stops a hostile file from exhausting the stack.
const MAX_DEPTH: usize = 128;

#[derive(Debug, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct CondaYamlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl CondaYamlError {
    fn at(span: &Span, message: impl Into<String>) -> Self {
        CondaYamlError {
            line: span.start.line(),
            column: span.start.col() + 1,
            message: message.into(),
        }
    }
}

/// The text the SDK stores as `condaFile` (and hashes) for a conda file with
/// content `raw`; None when the file loads as nothing (empty, comments only,
/// `{}`), in which case the SDK sends no conda file at all.
pub fn sdk_conda_text(raw: &str) -> Result<Option<String>, CondaYamlError> {
    let doc = safe_load(raw)?;
    Ok(is_truthy(&doc).then(|| render_ascii(&doc)))
}

/// Python truthiness of the loaded value (`if self.conda_file:`).
fn is_truthy(doc: &Doc) -> bool {
    match doc {
        Doc::Null => false,
        Doc::Bool(b) => *b,
        Doc::Int(i) => *i != 0,
        Doc::Float(f) => *f != 0.0,
        Doc::Str(s) => !s.is_empty(),
        Doc::List(items) => !items.is_empty(),
        Doc::Dict(d) => !d.entries.is_empty(),
    }
}

/// PyYAML's `yaml.safe_load`: one document (or none) into Python-like values.
fn safe_load(raw: &str) -> Result<Doc, CondaYamlError> {
    let mut loader = Loader {
        events: Parser::new_from_str(raw),
        anchors: HashMap::new(),
    };
    let mut doc = Doc::Null;
    let mut documents = 0;
    loop {
        let (event, span) = loader.next()?;
        match event {
            Event::StreamEnd => return Ok(doc),
            Event::DocumentStart(..) => {
                documents += 1;
                if documents > 1 {
                    return Err(CondaYamlError::at(
                        &span,
                        "expected a single document in the stream, found another one",
                    ));
                }
                doc = loader.node_after_start(0)?;
            }
            _ => {}
        }
    }
}

struct Loader<'a> {
    events: Parser<'a, granit_parser::StrInput<'a>>,
    anchors: HashMap<usize, Doc>,
}

impl<'a> Loader<'a> {
    /// The next event that carries data (comments and anchor metadata skipped).
    fn next(&mut self) -> Result<(Event<'a>, Span), CondaYamlError> {
        loop {
            let Some(item) = self.events.next() else {
                return Ok((Event::StreamEnd, Span::default()));
            };
            let (event, span) = item.map_err(|e| CondaYamlError {
                line: e.marker().line(),
                column: e.marker().col() + 1,
                message: e.info(),
            })?;
            match event {
                #[allow(unreachable_patterns)]
                Event::Comment(..) | Event::Anchor(..) => continue,
                other => return Ok((other, span)),
            }
        }
    }

    /// The document's root node (the event after `DocumentStart`).
    fn node_after_start(&mut self, depth: usize) -> Result<Doc, CondaYamlError> {
        let (event, span) = self.next()?;
        match event {
            Event::DocumentEnd => Ok(Doc::Null),
            other => {
                let doc = self.node(other, span, depth)?;
                match self.next()? {
                    (Event::DocumentEnd, _) => Ok(doc),
                    (_, span) => Err(CondaYamlError::at(
                        &span,
                        "expected the end of the document",
                    )),
                }
            }
        }
    }

    fn node(&mut self, event: Event<'a>, span: Span, depth: usize) -> Result<Doc, CondaYamlError> {
        if depth > MAX_DEPTH {
            return Err(CondaYamlError::at(&span, "nesting is too deep"));
        }
        let (doc, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                (scalar(&text, style, tag.as_deref(), &span)?, anchor)
            }
            Event::SequenceStart(_, anchor, tag) => {
                check_collection_tag(tag.as_deref(), "seq", &span)?;
                (self.sequence(depth)?, anchor)
            }
            Event::MappingStart(_, anchor, tag) => {
                check_collection_tag(tag.as_deref(), "map", &span)?;
                (self.mapping(depth, &span)?, anchor)
            }
            Event::Alias(id) => {
                return self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| CondaYamlError::at(&span, "alias to an unknown anchor"));
            }
            _ => return Err(CondaYamlError::at(&span, "expected a value")),
        };
        if anchor != 0 {
            self.anchors.insert(anchor, doc.clone());
        }
        Ok(doc)
    }

    fn sequence(&mut self, depth: usize) -> Result<Doc, CondaYamlError> {
        let mut items = Vec::new();
        loop {
            match self.next()? {
                (Event::SequenceEnd, _) => return Ok(Doc::List(items)),
                (event, span) => items.push(self.node(event, span, depth + 1)?),
            }
        }
    }

    /// A mapping, with `<<` merge keys flattened as `SafeConstructor.flatten_mapping`
    /// does (the mapping's own keys win over merged ones).
    fn mapping(&mut self, depth: usize, start: &Span) -> Result<Doc, CondaYamlError> {
        let mut own = Dict::new(false);
        let mut merged = Dict::new(false);
        loop {
            let (event, span) = self.next()?;
            if matches!(event, Event::MappingEnd) {
                break;
            }
            let is_merge =
                matches!(&event, Event::Scalar(t, ScalarStyle::Plain, _, None) if t == "<<");
            let key = self.node(event, span, depth + 1)?;
            let (event, value_span) = self.next()?;
            let value = self.node(event, value_span, depth + 1)?;
            if is_merge {
                merge_into(&mut merged, value, &value_span)?;
                continue;
            }
            let Doc::Str(key) = key else {
                return Err(CondaYamlError::at(
                    &span,
                    "mapping keys must be strings in a conda file",
                ));
            };
            own.insert(key, value);
        }
        let _ = start;
        for (key, value) in own.entries {
            merged.insert(key, value);
        }
        Ok(Doc::Dict(merged))
    }
}

/// Merge `value` (a mapping or a list of mappings; earlier ones win) under `into`.
fn merge_into(into: &mut Dict, value: Doc, span: &Span) -> Result<(), CondaYamlError> {
    let sources = match value {
        Doc::Dict(d) => vec![d],
        Doc::List(items) => items
            .into_iter()
            .map(|item| match item {
                Doc::Dict(d) => Ok(d),
                _ => Err(CondaYamlError::at(span, "a merge key (<<) needs mappings")),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(CondaYamlError::at(span, "a merge key (<<) needs a mapping")),
    };
    for source in sources.into_iter().rev() {
        for (key, value) in source.entries {
            into.insert(key, value);
        }
    }
    Ok(())
}

fn check_collection_tag(tag: Option<&Tag>, core: &str, span: &Span) -> Result<(), CondaYamlError> {
    match tag {
        None => Ok(()),
        Some(tag) if tag.core_suffix() == Some(core) || is_non_specific(tag) => Ok(()),
        Some(tag) => Err(CondaYamlError::at(
            span,
            format!(
                "unsupported tag {} (yaml.safe_load refuses it too)",
                tag.original()
            ),
        )),
    }
}

fn is_non_specific(tag: &Tag) -> bool {
    tag.handle().is_empty() && tag.suffix() == "!"
}

/// A scalar as `SafeConstructor` builds it.
fn scalar(
    text: &str,
    style: ScalarStyle,
    tag: Option<&Tag>,
    span: &Span,
) -> Result<Doc, CondaYamlError> {
    let kind = match tag {
        Some(tag) if is_non_specific(tag) => None,
        Some(tag) => match tag.core_suffix() {
            Some("str") => None,
            Some("bool") => Some(ImplicitTag::Bool),
            Some("int") => Some(ImplicitTag::Int),
            Some("float") => Some(ImplicitTag::Float),
            Some("null") => Some(ImplicitTag::Null),
            _ => {
                return Err(CondaYamlError::at(
                    span,
                    format!("unsupported tag {} in a conda file", tag.original()),
                ));
            }
        },
        None if style == ScalarStyle::Plain => implicit_tag(text),
        None => None,
    };
    let bad = |what: &str| CondaYamlError::at(span, format!("{text:?} is not a valid {what}"));
    Ok(match kind {
        None
        | Some(
            ImplicitTag::Timestamp | ImplicitTag::Merge | ImplicitTag::Value | ImplicitTag::Yaml,
        ) => Doc::Str(text.to_string()),
        Some(ImplicitTag::Null) => Doc::Null,
        Some(ImplicitTag::Bool) => Doc::Bool(matches!(
            text.to_lowercase().as_str(),
            "yes" | "true" | "on"
        )),
        Some(ImplicitTag::Int) => Doc::Int(construct_int(text).ok_or_else(|| bad("integer"))?),
        Some(ImplicitTag::Float) => Doc::Float(construct_float(text).ok_or_else(|| bad("number"))?),
    })
}

/// Split a leading sign off (PyYAML's constructors accept `+` and `-`).
fn signed(value: &str) -> (i8, &str) {
    match value.as_bytes().first() {
        Some(b'-') => (-1, &value[1..]),
        Some(b'+') => (1, &value[1..]),
        _ => (1, value),
    }
}

/// `SafeConstructor.construct_yaml_int`: `_` ignored, `0b`/`0x`/leading-`0`
/// octal, and base-60 `1:30`.
fn construct_int(text: &str) -> Option<i128> {
    let cleaned = text.replace('_', "");
    let (sign, digits) = signed(&cleaned);
    let magnitude = if digits == "0" {
        0
    } else if let Some(bin) = digits.strip_prefix("0b") {
        i128::from_str_radix(bin, 2).ok()?
    } else if let Some(hex) = digits.strip_prefix("0x") {
        i128::from_str_radix(hex, 16).ok()?
    } else if digits.starts_with('0') {
        i128::from_str_radix(digits, 8).ok()?
    } else if digits.contains(':') {
        digits.split(':').try_fold(0i128, |acc, part| {
            acc.checked_mul(60)?.checked_add(part.parse::<i128>().ok()?)
        })?
    } else {
        digits.parse::<i128>().ok()?
    };
    Some(i128::from(sign) * magnitude)
}

/// `SafeConstructor.construct_yaml_float`: `_` ignored, `.inf`/`.nan`, base 60.
fn construct_float(text: &str) -> Option<f64> {
    let cleaned = text.replace('_', "").to_lowercase();
    let (sign, digits) = signed(&cleaned);
    let magnitude = match digits {
        ".inf" => f64::INFINITY,
        ".nan" => return Some(f64::NAN),
        _ if digits.contains(':') => digits
            .split(':')
            .try_fold(0.0f64, |acc, part| Some(acc * 60.0 + python_float(part)?))?,
        _ => python_float(digits)?,
    };
    Some(f64::from(sign) * magnitude)
}

/// Python's `float()` of the texts the float resolver lets through (`1.`, `.5`, `1.5e+3`).
fn python_float(text: &str) -> Option<f64> {
    let normalized = if text.ends_with('.') {
        format!("{text}0")
    } else if text.starts_with('.') {
        format!("0{text}")
    } else {
        text.replace(".e", ".0e")
    };
    normalized.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump(raw: &str) -> String {
        sdk_conda_text(raw).unwrap().unwrap()
    }

    /// `tests/data/conda/golden.json` was produced by the real azure-ai-ml
    /// (`tests/data/conda/golden.py`): same conda text, same anonymous version.
    #[test]
    fn conda_text_and_anonymous_version_match_the_python_sdk() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/conda");
        let golden: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("golden.json")).unwrap())
                .unwrap();
        let cases = golden["cases"].as_array().unwrap();
        assert!(cases.len() >= 8, "golden.json has too few cases");
        for case in cases {
            let file = case["conda_file"].as_str().unwrap();
            let raw = std::fs::read_to_string(dir.join(file)).unwrap();
            let text = sdk_conda_text(&raw).unwrap().unwrap();
            assert_eq!(text, case["conda_text"].as_str().unwrap(), "{file}");
            let image = case["image"].as_str().unwrap();
            assert_eq!(
                super::super::environment::anonymous_version(image, Some(&text)),
                case["version"].as_str().unwrap(),
                "{file} on {image}"
            );
        }
    }

    #[test]
    fn keys_are_sorted_and_comments_dropped() {
        let raw = "# env\nname: x\ndependencies:\n- python=3.8\n- pip:\n  - numpy\nchannels:\n- conda-forge\n";
        assert_eq!(
            dump(raw),
            "channels:\n- conda-forge\ndependencies:\n- python=3.8\n- pip:\n  - numpy\nname: x\n"
        );
    }

    #[test]
    fn yaml_1_1_types_are_resolved_like_pyyaml() {
        let raw = "a: 3.10\nb: yes\nc: 1_000\nd: '3.10'\ne: 0o7\nf: 010\ng: 1:30\nh: ~\ni: 1e5\n";
        assert_eq!(
            dump(raw),
            "a: 3.1\nb: true\nc: 1000\nd: '3.10'\ne: 0o7\nf: 8\ng: 90\nh: null\ni: 1e5\n"
        );
    }

    #[test]
    fn non_ascii_text_is_escaped_as_pyyaml_does_by_default() {
        assert_eq!(dump("name: café\n"), "name: \"caf\\xE9\"\n");
    }

    #[test]
    fn merge_keys_are_flattened_and_own_keys_win() {
        let raw = "base: &b {x: 1, y: 2}\nenv:\n  <<: *b\n  y: 3\n";
        assert_eq!(dump(raw), "base:\n  x: 1\n  y: 2\nenv:\n  x: 1\n  y: 3\n");
    }

    #[test]
    fn an_empty_or_comment_only_file_is_no_conda_file() {
        assert_eq!(sdk_conda_text("").unwrap(), None);
        assert_eq!(sdk_conda_text("# nothing\n").unwrap(), None);
        assert_eq!(sdk_conda_text("{}\n").unwrap(), None);
    }

    #[test]
    fn invalid_yaml_names_line_and_column() {
        let err = sdk_conda_text("name: x\ndependencies: [a\n").unwrap_err();
        assert!(err.line >= 2, "{err}");
    }

    #[test]
    fn two_documents_are_refused_like_safe_load() {
        assert!(sdk_conda_text("a: 1\n---\nb: 2\n").is_err());
    }

    #[test]
    fn unknown_tags_are_refused_like_safe_load() {
        let err = sdk_conda_text("a: !!python/name:os.system x\n").unwrap_err();
        assert!(err.message.contains("unsupported tag"), "{err}");
    }
}
