//! A positioned YAML tree for v1 files.
//!
//! v1 files are validated by hand rather than by derived `Deserialize` so that
//! every error and warning can name the exact line and column, several unknown
//! keys can be reported at once, and camelCase/snake_case spellings both work.
//! serde-saphyr parses (with tight budgets so an alias bomb cannot blow up);
//! this module turns its output into [`Node`]s that keep their positions and
//! the raw text of plain scalars (`lr: 0.10` stays `"0.10"` as an argument).

use super::{Location, ModelError, Warning};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Budget, Options, Spanned};
use std::collections::BTreeMap;
use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// Largest v1 file we accept; real ones are a few KiB.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// 1-based position of a node in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// A YAML value with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
    /// The source text of a scalar, when it is known (used to turn numbers
    /// and booleans into strings exactly as the user wrote them).
    pub raw: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// One `key: value` pair of a mapping, with the key's position.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

impl Value {
    /// How the value is described in "expected X, found Y" messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "nothing (null)",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl Node {
    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// The scalar as text (numbers and booleans as written), or None for
    /// null and collections.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(self.raw.clone().unwrap_or_else(|| i.to_string())),
            Value::Float(f) => Some(self.raw.clone().unwrap_or_else(|| python_float(*f))),
            Value::Bool(b) => Some(self.raw.clone().unwrap_or_else(|| b.to_string())),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }

    /// The value as JSON (for free-form sections kept verbatim).
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Int(i) => (*i).into(),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Str(s) => s.clone().into(),
            Value::Seq(items) => items.iter().map(Node::to_json).collect(),
            Value::Map(entries) => entries
                .iter()
                .map(|e| (e.key.clone(), e.value.to_json()))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }
}

/// A float as Python's `str()` prints it for ordinary values (`1.0`, not `1`).
fn python_float(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        f.to_string()
    }
}

/// Read and parse a YAML (or JSON) file into a positioned tree.
pub fn read_file(path: &Path) -> Result<(Node, String), ModelError> {
    let meta = std::fs::metadata(path).map_err(|e| io_error(path, &e))?;
    if meta.is_dir() {
        return Err(ModelError::InFile {
            file: path.into(),
            message: "is a directory, expected a YAML file".into(),
            hint: None,
        });
    }
    // Read through a limit rather than trusting the size: `/dev/zero` or a
    // pipe reports 0 bytes and never ends.
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| io_error(path, &e))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ModelError::InFile {
            file: path.into(),
            message: format!(
                "file is larger than {MAX_FILE_BYTES} bytes, the limit for v1 configuration files"
            ),
            hint: Some(
                "check that -c / --hyperdrive-configuration-name names the right file".into(),
            ),
        });
    }
    let text = String::from_utf8(bytes).map_err(|e| ModelError::InFile {
        file: path.into(),
        message: format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ),
        hint: Some("save the file as UTF-8".into()),
    })?;
    let node = parse_str(&text, path)?;
    Ok((node, text))
}

fn io_error(path: &Path, e: &std::io::Error) -> ModelError {
    ModelError::InFile {
        file: path.into(),
        message: format!("cannot read: {e}"),
        hint: None,
    }
}

/// Parser options for untrusted configuration: small budgets, duplicate keys
/// refused (YAML says they are an error; silently picking one loses intent).
fn options() -> Options {
    let mut budget = Budget::default();
    budget.max_events = 200_000;
    budget.max_nodes = 100_000;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_depth = 64;
    budget.max_documents = 1;
    budget.max_total_scalar_bytes = MAX_FILE_BYTES as usize;
    let mut options = Options::default();
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = 20_000;
    options.alias_limits.max_replay_stack_depth = 16;
    options.with_snippet = false;
    options
}

/// Parse YAML text; `file` is only used to name it in errors.
pub fn parse_str(text: &str, file: &Path) -> Result<Node, ModelError> {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    if text.trim().is_empty() {
        return Ok(Node {
            value: Value::Null,
            pos: Pos { line: 1, column: 1 },
            raw: None,
        });
    }
    let parsed: Option<Spanned<RawValue>> = serde_saphyr::from_str_with_options(text, options())
        .map_err(|e| syntax_error(&e, file, text))?;
    Ok(match parsed {
        Some(root) => into_node(root, text),
        None => Node {
            value: Value::Null,
            pos: Pos { line: 1, column: 1 },
            raw: None,
        },
    })
}

/// A serde-saphyr error as file:line:col plus its message, without the
/// parser's own location suffix (we print ours first).
fn syntax_error(err: &serde_saphyr::Error, file: &Path, text: &str) -> ModelError {
    let inner = err.without_snippet();
    let mut message = inner.to_string();
    for noise in [" at line ", ", set DuplicateKeyPolicy"] {
        if let Some(cut) = message.find(noise) {
            message.truncate(cut);
        }
    }
    if message.contains("Documents {") {
        message = "the file holds more than one YAML document (`---` separators)".into();
    } else if message.contains("non-finite float") {
        message = "a number is infinite or not a number (.inf, .nan, or beyond ±1.8e308)".into();
    } else if message.contains("recursive reference") {
        message = "an alias (`*name`) refers to the anchor (`&name`) it stands inside, \
                   so the value would contain itself"
            .into();
    } else if message.contains("budget breached") {
        message = format!(
            "the file is too large or too deeply aliased to be a v1 configuration ({message})"
        );
    }
    // v1 runconfigs are often JSON, which is read as one YAML flow mapping.
    let json = text.trim_start().starts_with('{');
    let message = format!("invalid {}: {message}", if json { "JSON" } else { "YAML" });
    let hint = Some(if json {
        "check for a missing comma between entries, a trailing comma, or an unquoted key or string"
    } else {
        syntax_hint(&message)
    });
    let hint = hint.map(str::to_string);
    match inner.location() {
        Some(loc) if loc.line() > 0 => ModelError::At {
            location: Location {
                file: file.into(),
                line: loc.line() as usize,
                column: loc.column().max(1) as usize,
            },
            message,
            hint,
        },
        _ => ModelError::InFile {
            file: file.into(),
            message,
            hint,
        },
    }
}

/// What to do about a syntax error, by its kind.
fn syntax_hint(message: &str) -> &'static str {
    if message.contains("duplicate mapping key") {
        "each key may appear once per mapping; remove or rename one of them"
    } else if message.contains("more than one YAML document") {
        "keep one document per file: remove the `---` line and what follows, or split the file"
    } else if message.contains("anchor") || message.contains("alias") {
        "v1 files do not need YAML anchors/aliases (`&name`, `*name`); write the values out"
    } else if message.contains("infinite or not a number") {
        "write a finite number"
    } else if message.contains("too large") {
        "check that the option names the right file"
    } else {
        "check indentation (spaces only, children indented under their key) and quoting; `key: value` needs a space after the colon"
    }
}

/// What serde-saphyr hands back before positions are attached.
enum RawValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<RawValue>>),
    Map(Vec<(Spanned<RawValue>, Spanned<RawValue>)>),
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawValue, D::Error> {
        RawValue::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawValue, E> {
        Ok(RawValue::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawValue, E> {
        Ok(RawValue::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawValue, E> {
        Ok(i64::try_from(v).map_or(RawValue::Float(v as f64), RawValue::Int))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<RawValue, E> {
        Ok(i64::try_from(v).map_or(RawValue::Float(v as f64), RawValue::Int))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<RawValue, E> {
        Ok(i64::try_from(v).map_or(RawValue::Float(v as f64), RawValue::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawValue, E> {
        Ok(RawValue::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<RawValue, E> {
        Ok(RawValue::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<RawValue, E> {
        Ok(RawValue::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<RawValue, E> {
        Ok(RawValue::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<RawValue>>()? {
            items.push(item);
        }
        Ok(RawValue::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<RawValue>>()? {
            let value = map.next_value::<Spanned<RawValue>>()?;
            entries.push((key, value));
        }
        Ok(RawValue::Map(entries))
    }
}

fn pos_of(loc: &serde_saphyr::Location) -> Pos {
    Pos {
        line: loc.line() as usize,
        column: loc.column() as usize,
    }
}

/// The source text a scalar spans, when the parser recorded byte offsets.
fn raw_text(loc: &serde_saphyr::Location, text: &str) -> Option<String> {
    let span = loc.span();
    let start = usize::try_from(span.byte_offset()?).ok()?;
    let len = usize::try_from(span.byte_len()?).ok()?;
    let raw = text.get(start..start.checked_add(len)?)?.trim();
    // Aliases, anchors and tags would make the raw text misleading.
    let plain = !raw.is_empty() && !raw.starts_with(['*', '&', '!', '"', '\'']);
    plain.then(|| raw.to_owned())
}

fn into_node(spanned: Spanned<RawValue>, text: &str) -> Node {
    let pos = pos_of(&spanned.referenced);
    let mut raw = None;
    let value = match spanned.value {
        RawValue::Null => Value::Null,
        RawValue::Bool(b) => {
            raw = raw_text(&spanned.referenced, text);
            Value::Bool(b)
        }
        RawValue::Int(i) => {
            raw = raw_text(&spanned.referenced, text);
            Value::Int(i)
        }
        RawValue::Float(f) => {
            raw = raw_text(&spanned.referenced, text);
            Value::Float(f)
        }
        RawValue::Str(s) => Value::Str(s),
        RawValue::Seq(items) => Value::Seq(items.into_iter().map(|i| into_node(i, text)).collect()),
        RawValue::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| {
                    let key = into_node(k, text);
                    Entry {
                        key: key_text(&key),
                        key_pos: key.pos,
                        value: into_node(v, text),
                    }
                })
                .collect(),
        ),
    };
    Node { value, pos, raw }
}

/// Mapping keys are compared as text; a collection used as a key cannot match
/// any known field and is reported as unknown under a descriptive name.
fn key_text(key: &Node) -> String {
    match key.scalar_text() {
        Some(s) => s,
        None if key.is_null() => "null".into(),
        None => format!("<{}>", key.value.kind()),
    }
}

/// Context for validating one file: builds positioned errors and collects
/// warnings. `prefix` is the dotted path of the section being read.
pub struct Doc<'w> {
    pub file: PathBuf,
    pub warnings: &'w mut Vec<Warning>,
}

impl Doc<'_> {
    pub fn location(&self, pos: Pos) -> Location {
        Location {
            file: self.file.clone(),
            line: pos.line.max(1),
            column: pos.column.max(1),
        }
    }

    /// An error at `pos` with a hint saying how to fix it.
    pub fn error(
        &self,
        pos: Pos,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> ModelError {
        let hint: String = hint.into();
        ModelError::At {
            location: self.location(pos),
            message: message.into(),
            hint: (!hint.is_empty()).then_some(hint),
        }
    }

    pub fn warn(&mut self, pos: Pos, message: impl Into<String>) {
        let location = Some(self.location(pos));
        self.warnings.push(Warning {
            location,
            message: message.into(),
        });
    }

    /// "expected X for `path`, found Y" at the node.
    pub fn expected(&self, node: &Node, path: &str, what: &str, hint: &str) -> ModelError {
        let found = match node.scalar_text() {
            Some(text) if text.is_empty() => "an empty string".to_string(),
            Some(text) => format!("{} `{}`", node.value.kind(), shorten(&text)),
            None => node.value.kind().to_string(),
        };
        let subject = if path.is_empty() {
            "the file".to_string()
        } else {
            format!("`{path}`")
        };
        self.error(
            node.pos,
            format!("{subject}: expected {what}, found {found}"),
            hint,
        )
    }
}

/// Long values are cut in messages so one bad line does not flood the terminal.
fn shorten(text: &str) -> String {
    const MAX: usize = 60;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

/// Sort the warnings pushed since `start` into file order, so users read
/// them top to bottom whatever order the sections were validated in.
pub fn sort_warnings(warnings: &mut [Warning], start: usize) {
    if let Some(tail) = warnings.get_mut(start..) {
        tail.sort_by(|a, b| {
            let key = |w: &Warning| {
                w.location
                    .as_ref()
                    .map(|l| (l.file.clone(), l.line, l.column))
            };
            key(a).cmp(&key(b))
        });
    }
}

/// Typed readers for scalar and collection values. Each names the field
/// path, what was expected and how to fix it when the value does not fit.
impl Doc<'_> {
    /// Text; numbers and booleans as written (`version: 1` → "1"). Null → None.
    pub fn string(&self, node: &Node, path: &str) -> Result<Option<String>, ModelError> {
        if node.is_null() {
            return Ok(None);
        }
        node.scalar_text().map(Some).ok_or_else(|| {
            self.expected(
                node,
                path,
                "a text value",
                "write a single value on the line, quoted if it contains `: ` or `#`",
            )
        })
    }

    pub fn bool(&self, node: &Node, path: &str) -> Result<bool, ModelError> {
        match node.value {
            Value::Bool(b) => Ok(b),
            _ => Err(self.expected(
                node,
                path,
                "true or false",
                "write `true` or `false` without quotes",
            )),
        }
    }

    /// A whole number in `min..=max`.
    pub fn int(&self, node: &Node, path: &str, min: i64, max: i64) -> Result<i64, ModelError> {
        let value = match node.value {
            Value::Int(i) => Some(i),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9e15 => Some(f as i64),
            _ => None,
        };
        let Some(value) = value else {
            return Err(self.expected(
                node,
                path,
                "a whole number",
                "write digits without quotes, e.g. `2`",
            ));
        };
        if value < min || value > max {
            let (range, hint) = if max >= i64::from(u32::MAX) {
                (format!("at least {min}"), format!("use {min} or more"))
            } else {
                (
                    format!("between {min} and {max}"),
                    format!("use a value from {min} to {max}"),
                )
            };
            return Err(self.error(
                node.pos,
                format!("`{path}` is {value}; it must be {range}"),
                hint,
            ));
        }
        Ok(value)
    }

    /// A finite number (integers are numbers too).
    pub fn number(&self, node: &Node, path: &str) -> Result<f64, ModelError> {
        match node.value {
            Value::Int(i) => Ok(i as f64),
            Value::Float(f) if f.is_finite() => Ok(f),
            _ => Err(self.expected(
                node,
                path,
                "a number",
                "write a number without quotes, e.g. `0.5`",
            )),
        }
    }

    /// A list of text values; a null means an empty list.
    pub fn string_list(&self, node: &Node, path: &str) -> Result<Vec<String>, ModelError> {
        match &node.value {
            Value::Null => Ok(Vec::new()),
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    item.scalar_text().ok_or_else(|| {
                        self.expected(
                            item,
                            &format!("{path}[{i}]"),
                            "a text value",
                            "each list item must be a single value",
                        )
                    })
                })
                .collect(),
            _ => Err(self.expected(
                node,
                path,
                "a list",
                "write a YAML list, e.g. `[--epochs, '10']` or one `- item` per line",
            )),
        }
    }

    /// A mapping of names to text values (environment variables, Spark settings).
    pub fn string_map(
        &self,
        node: &Node,
        path: &str,
    ) -> Result<BTreeMap<String, String>, ModelError> {
        let entries = match &node.value {
            Value::Null => return Ok(BTreeMap::new()),
            Value::Map(entries) => entries,
            _ => {
                return Err(self.expected(
                    node,
                    path,
                    "a mapping of `NAME: value` lines",
                    "indent one `NAME: value` per line under the key",
                ));
            }
        };
        let mut map = BTreeMap::new();
        for entry in entries {
            let value = if entry.value.is_null() {
                String::new()
            } else {
                entry.value.scalar_text().ok_or_else(|| {
                    self.expected(
                        &entry.value,
                        &format!("{path}.{}", entry.key),
                        "a text value",
                        "quote the value",
                    )
                })?
            };
            map.insert(entry.key.clone(), value);
        }
        Ok(map)
    }
}

/// Keys compare without case and without `_`/`-`, so `interpreterPath`,
/// `interpreter_path` and `InterpreterPath` are one field.
pub fn normalize_key(key: &str) -> String {
    key.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Levenshtein distance, for "did you mean" suggestions.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The known key closest to `key`, if it is close enough to be a likely typo.
pub fn closest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    let norm = normalize_key(key);
    known
        .iter()
        .map(|k| (edit_distance(&norm, &normalize_key(k)), *k))
        .filter(|(d, k)| *d <= (normalize_key(k).len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// The fields of one mapping, looked up by their canonical (camelCase or
/// v1 snake_case) name. `finish` warns about every key nobody asked for.
pub struct Fields<'n> {
    path: String,
    entries: &'n [Entry],
    used: Vec<bool>,
    pub pos: Pos,
}

impl<'n> Fields<'n> {
    /// Fields of `node`, which must be a mapping (null counts as empty).
    pub fn of(doc: &Doc, node: &'n Node, path: &str, hint: &str) -> Result<Self, ModelError> {
        let entries: &[Entry] = match &node.value {
            Value::Map(entries) => entries,
            Value::Null => &[],
            _ => return Err(doc.expected(node, path, "a mapping of `key: value` lines", hint)),
        };
        Ok(Fields {
            path: path.to_string(),
            entries,
            used: vec![false; entries.len()],
            pos: node.pos,
        })
    }

    /// Dotted path of a field of this mapping, for messages.
    pub fn path_of(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// The value of field `name`; two spellings of the same field is an error.
    pub fn get(&mut self, doc: &Doc, name: &str) -> Result<Option<&'n Node>, ModelError> {
        let wanted = normalize_key(name);
        let mut found: Option<(usize, &'n Entry)> = None;
        for (i, entry) in self.entries.iter().enumerate() {
            if normalize_key(&entry.key) != wanted {
                continue;
            }
            if let Some((_, first)) = found {
                return Err(doc.error(
                    entry.key_pos,
                    format!(
                        "`{}` is given twice (as `{}` at line {} and as `{}`)",
                        self.path_of(name),
                        first.key,
                        first.key_pos.line,
                        entry.key
                    ),
                    "keep one spelling: camelCase and snake_case name the same field",
                ));
            }
            found = Some((i, entry));
        }
        Ok(found.map(|(i, entry)| {
            self.used[i] = true;
            &entry.value
        }))
    }

    /// Like `get`, but an explicit `null` counts as absent.
    pub fn get_some(&mut self, doc: &Doc, name: &str) -> Result<Option<&'n Node>, ModelError> {
        Ok(self.get(doc, name)?.filter(|n| !n.is_null()))
    }

    /// Where the key `name` itself is written, if present.
    pub fn key_pos(&self, name: &str) -> Option<Pos> {
        let wanted = normalize_key(name);
        self.entries
            .iter()
            .find(|e| normalize_key(&e.key) == wanted)
            .map(|e| e.key_pos)
    }

    /// A key nothing has read that is probably `name` misspelt: a key that is
    /// required but "missing" is then reported where the typo is.
    fn misspelling_of(&self, name: &str) -> Option<&'n Entry> {
        let wanted = normalize_key(name);
        self.entries
            .iter()
            .zip(&self.used)
            .filter(|(_, used)| !**used)
            .map(|(entry, _)| entry)
            .find(|entry| {
                let key = normalize_key(&entry.key);
                key != wanted && wanted.len() >= 4 && edit_distance(&key, &wanted) <= 2
            })
    }

    /// The error for a required `name` that is missing because it is
    /// misspelt, pointing at the typo; `None` when no key looks like it.
    pub fn misspelt_required(&self, doc: &Doc, name: &str) -> Option<ModelError> {
        let typo = self.misspelling_of(name)?;
        Some(doc.error(
            typo.key_pos,
            format!(
                "`{}` is required but missing; `{}` looks like a misspelling of it",
                self.path_of(name),
                typo.key
            ),
            format!("rename `{}` to `{name}`", typo.key),
        ))
    }

    /// Mark keys as known without reading them (accepted legacy fields).
    pub fn accept(&mut self, names: &[&str]) {
        for (i, entry) in self.entries.iter().enumerate() {
            let norm = normalize_key(&entry.key);
            if names.iter().any(|n| normalize_key(n) == norm) {
                self.used[i] = true;
            }
        }
    }

    /// Warn about each key that no `get` asked for, suggesting the closest of `known`.
    pub fn finish(self, doc: &mut Doc, known: &[&str]) {
        for (entry, used) in self.entries.iter().zip(&self.used) {
            if *used {
                continue;
            }
            let name = self.path_of(&entry.key);
            let message = match closest(&entry.key, known) {
                Some(k) => format!("unknown key `{name}` is ignored; did you mean `{k}`?"),
                None => format!("unknown key `{name}` is ignored"),
            };
            doc.warn(entry.key_pos, message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Node {
        parse_str(text, Path::new("t.yml")).expect("parses")
    }

    #[test]
    fn keys_and_values_keep_their_positions() {
        let node = parse("a: 1\nb:\n  c: [x, 2.50]\n");
        let Value::Map(entries) = &node.value else {
            panic!("not a map")
        };
        assert_eq!(entries[1].key, "b");
        assert_eq!(entries[1].key_pos, Pos { line: 2, column: 1 });
        let Value::Map(inner) = &entries[1].value.value else {
            panic!("not a map")
        };
        assert_eq!(inner[0].key_pos, Pos { line: 3, column: 3 });
        let Value::Seq(items) = &inner[0].value.value else {
            panic!("not a seq")
        };
        assert_eq!(
            items[1].pos,
            Pos {
                line: 3,
                column: 10
            }
        );
        assert_eq!(items[1].scalar_text().as_deref(), Some("2.50"));
    }

    #[test]
    fn syntax_errors_name_file_line_and_column() {
        let err = parse_str("a: 1\nb: [1, 2\n", Path::new("bad.yml")).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("bad.yml:"), "{text}");
        assert!(text.contains("invalid YAML"), "{text}");
    }

    #[test]
    fn a_recursive_alias_is_explained_in_the_files_terms() {
        let err = parse_str("script: t.py\narguments: &a [*a]\n", Path::new("r.yml")).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("r.yml:2:"), "{text}");
        assert!(text.contains("refers to the anchor"), "{text}");
        assert!(!text.contains("weak recursion"), "{text}");
        assert!(format!("{err:?}").contains("anchors/aliases"), "{err:?}");
    }

    #[test]
    fn alias_bomb_is_refused_not_expanded() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(parse_str(&text, Path::new("bomb.yml")).is_err());
    }

    #[test]
    fn duplicate_keys_are_an_error() {
        assert!(parse_str("a: 1\na: 2\n", Path::new("d.yml")).is_err());
    }

    #[test]
    fn endless_special_file_is_refused_not_read_forever() {
        let err = read_file(Path::new("/dev/zero")).unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
    }

    #[test]
    fn json_documents_parse_as_yaml() {
        let node = parse(r#"{"script": "a.py", "arguments": ["--n", 3], "environment": {}}"#);
        let Value::Map(entries) = &node.value else {
            panic!("not a map")
        };
        assert_eq!(entries.len(), 3);
        assert_eq!(
            entries[1].key_pos,
            Pos {
                line: 1,
                column: 20
            }
        );
    }

    #[test]
    fn empty_file_is_null() {
        assert!(parse("").is_null());
        assert!(parse("# only a comment\n").is_null());
    }

    #[test]
    fn closest_key_tolerates_typos_and_case() {
        let known = ["script", "arguments", "nodeCount"];
        assert_eq!(closest("scirpt", &known), Some("script"));
        assert_eq!(closest("node_cuont", &known), Some("nodeCount"));
        assert_eq!(closest("completely_else", &known), None);
    }
}
