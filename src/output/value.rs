//! The value model the formatters work on: the Python objects knack sees.
//!
//! az's formatters are Python, and their output depends on Python details a
//! `serde_json::Value` does not carry: ints versus floats (`1` vs `1.0`), and
//! whether a dict is a plain `dict` (tsv sorts its values) or an `OrderedDict`
//! built by a JMESPath multi-select hash (tsv keeps its order). `Doc` keeps both.

use serde_json::Value;

/// A JSON-like value with Python's distinctions.
#[derive(Debug, Clone)]
pub enum Doc {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    List(Vec<Doc>),
    Dict(Dict),
}

/// A dict in insertion order. `ordered` marks an `OrderedDict` (built by a query).
#[derive(Debug, Clone, Default)]
pub struct Dict {
    pub entries: Vec<(String, Doc)>,
    pub ordered: bool,
}

impl Dict {
    pub fn new(ordered: bool) -> Self {
        Self {
            entries: Vec::new(),
            ordered,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Doc> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Python `d[key] = value`: an existing key keeps its position.
    pub fn insert(&mut self, key: String, value: Doc) {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// Entries sorted by key, as `sorted(d.items())` and `sort_keys=True` see them.
    pub fn sorted(&self) -> Vec<&(String, Doc)> {
        let mut entries: Vec<_> = self.entries.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries
    }
}

impl From<&Value> for Doc {
    fn from(value: &Value) -> Self {
        match value {
            Value::Null => Doc::Null,
            Value::Bool(b) => Doc::Bool(*b),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Doc::Int(i128::from(i))
                } else if let Some(u) = n.as_u64() {
                    Doc::Int(i128::from(u))
                } else {
                    Doc::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => Doc::Str(s.clone()),
            Value::Array(items) => Doc::List(items.iter().map(Doc::from).collect()),
            Value::Object(map) => Doc::Dict(Dict {
                entries: map.iter().map(|(k, v)| (k.clone(), Doc::from(v))).collect(),
                ordered: false,
            }),
        }
    }
}

impl Doc {
    /// JMESPath's falsy values: empty string/list/object, null, false.
    pub fn is_falsy(&self) -> bool {
        match self {
            Doc::Null | Doc::Bool(false) => true,
            Doc::Str(s) => s.is_empty(),
            Doc::List(l) => l.is_empty(),
            Doc::Dict(d) => d.entries.is_empty(),
            _ => false,
        }
    }

    pub fn is_number(&self) -> bool {
        matches!(self, Doc::Int(_) | Doc::Float(_))
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Doc::Int(i) => Some(*i as f64),
            Doc::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// Python's `str(x)` for scalars (and `repr` for containers).
    pub fn py_str(&self) -> String {
        match self {
            Doc::Str(s) => s.clone(),
            other => other.py_repr(),
        }
    }

    /// Python's `repr(x)`: what tabulate prints for a nested list cell.
    pub fn py_repr(&self) -> String {
        match self {
            Doc::Null => "None".into(),
            Doc::Bool(true) => "True".into(),
            Doc::Bool(false) => "False".into(),
            Doc::Int(i) => i.to_string(),
            Doc::Float(f) => py_float_repr(*f),
            Doc::Str(s) => py_str_repr(s),
            Doc::List(items) => {
                let inner: Vec<String> = items.iter().map(Doc::py_repr).collect();
                format!("[{}]", inner.join(", "))
            }
            Doc::Dict(d) => {
                let inner: Vec<String> = d
                    .entries
                    .iter()
                    .map(|(k, v)| format!("{}: {}", py_str_repr(k), v.py_repr()))
                    .collect();
                if d.ordered {
                    let pairs: Vec<String> = d
                        .entries
                        .iter()
                        .map(|(k, v)| format!("({}, {})", py_str_repr(k), v.py_repr()))
                        .collect();
                    format!("OrderedDict([{}])", pairs.join(", "))
                } else {
                    format!("{{{}}}", inner.join(", "))
                }
            }
        }
    }
}

/// Python's `repr(float)`: shortest round-trip digits, exponent form outside
/// 1e-4 <= |x| < 1e16, at least two exponent digits (`1e+20`, `1e-05`).
pub fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if f == 0.0 {
        return format!("{sign}0.0");
    }
    let sci = format!("{:e}", f.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let decpt = exponent + 1;
    let body = if decpt > -4 && decpt <= 16 {
        fixed_notation(&digits, decpt)
    } else {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exponent < 0 { '-' } else { '+' };
        format!("{first}{frac}e{esign}{:02}", exponent.abs())
    };
    format!("{sign}{body}")
}

fn fixed_notation(digits: &str, decpt: i32) -> String {
    let len = digits.len() as i32;
    if decpt <= 0 {
        format!("0.{}{digits}", "0".repeat((-decpt) as usize))
    } else if decpt >= len {
        format!("{digits}{}.0", "0".repeat((decpt - len) as usize))
    } else {
        let (int, frac) = digits.split_at(decpt as usize);
        format!("{int}.{frac}")
    }
}

/// Python's `repr(str)`: single quotes unless the text has `'` and no `"`.
pub fn py_str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !py_isprintable(c) => {
                let cp = c as u32;
                if cp <= 0xff {
                    out.push_str(&format!("\\x{cp:02x}"));
                } else if cp <= 0xffff {
                    out.push_str(&format!("\\u{cp:04x}"));
                } else {
                    out.push_str(&format!("\\U{cp:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// An approximation of Python's `str.isprintable` for one character.
fn py_isprintable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    !(c.is_control() || c.is_whitespace() || matches!(c as u32, 0xad | 0xfeff | 0x200b..=0x200f))
}

/// Python's `str.isspace` for one character (Rust's set plus the separators \x1c-\x1f).
pub fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.splitlines()` (no line ends kept).
pub fn py_splitlines(s: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let is_break = matches!(
            c,
            '\n' | '\r'
                | '\u{0b}'
                | '\u{0c}'
                | '\u{1c}'
                | '\u{1d}'
                | '\u{1e}'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if !is_break {
            continue;
        }
        lines.push(&s[start..i]);
        let mut end = i + c.len_utf8();
        if c == '\r' && matches!(chars.peek(), Some((_, '\n'))) {
            chars.next();
            end += 1;
        }
        start = end;
    }
    if start < s.len() {
        lines.push(&s[start..]);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        let cases = [
            (1.0, "1.0"),
            (1e20, "1e+20"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (0.1, "0.1"),
            (123456.789, "123456.789"),
            (1.5e-7, "1.5e-07"),
            (-0.0, "-0.0"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
        ];
        for (value, expected) in cases {
            assert_eq!(py_float_repr(value), expected, "{value}");
        }
    }

    #[test]
    fn splitlines_like_python() {
        assert_eq!(py_splitlines("a\r\nb\nc\r"), vec!["a", "b", "c"]);
        assert_eq!(py_splitlines(""), Vec::<&str>::new());
        assert_eq!(py_splitlines("a\n\nb"), vec!["a", "", "b"]);
    }
}
