//! `-o yaml`: knack's `yaml.safe_dump(result, default_flow_style=False,
//! allow_unicode=True)`, i.e. PyYAML's emitter with sorted keys, block style,
//! empty collections as `[]`/`{}`, 80-column folding of long scalars, and
//! strings quoted exactly when PyYAML would (when they would read back as
//! another type, or contain indicators, breaks or control characters).
//!
//! This is a port of the parts of PyYAML's `Emitter` that JSON-shaped data
//! reaches; the state variables keep PyYAML's names so the two can be compared.

use super::value::{Doc, py_float_repr};
use regex::Regex;
use std::sync::LazyLock;

const BEST_INDENT: usize = 2;
const BEST_WIDTH: usize = 80;

pub fn render(doc: &Doc) -> String {
    let mut emitter = Emitter {
        allow_unicode: true,
        ..Emitter::default()
    };
    emitter.document(doc);
    emitter.out
}

/// PyYAML's `yaml.dump(doc, sort_keys=True)` with every other option at its
/// default: like [`render`] but `allow_unicode=False`, so non-ASCII text is
/// double-quoted with escapes. azure-ai-ml stores conda files this way.
pub fn render_ascii(doc: &Doc) -> String {
    let mut emitter = Emitter::default();
    emitter.document(doc);
    emitter.out
}

/// A scalar as PyYAML's representer hands it to the emitter.
struct Scalar {
    text: String,
    /// `implicit[0]`: the text reads back as the same type when written plain.
    plain_implicit: bool,
}

fn scalar_of(doc: &Doc) -> Option<Scalar> {
    let text = match doc {
        Doc::Null => "null".to_string(),
        Doc::Bool(b) => if *b { "true" } else { "false" }.to_string(),
        Doc::Int(i) => i.to_string(),
        Doc::Float(f) => yaml_float(*f),
        Doc::Str(s) => {
            return Some(Scalar {
                plain_implicit: !resolves_to_other_type(s),
                text: s.clone(),
            });
        }
        Doc::List(_) | Doc::Dict(_) => return None,
    };
    Some(Scalar {
        text,
        plain_implicit: true,
    })
}

/// PyYAML's `represent_float`: `repr(x).lower()`, with `.0` added before an
/// exponent so the text still resolves as a float.
fn yaml_float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    let repr = py_float_repr(f).to_lowercase();
    if !repr.contains('.') && repr.contains('e') {
        repr.replacen('e', ".0e", 1)
    } else {
        repr
    }
}

/// The type PyYAML's implicit resolvers give a plain scalar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImplicitTag {
    Bool,
    Float,
    Int,
    Merge,
    Null,
    Timestamp,
    Value,
    Yaml,
}

/// Would this string, written plain, read back as a bool, int, float, null,
/// timestamp, merge key or value?
fn resolves_to_other_type(s: &str) -> bool {
    implicit_tag(s).is_some()
}

/// PyYAML's implicit resolvers (YAML 1.1, tried in PyYAML's order): the
/// type of a plain scalar, None for a string.
pub fn implicit_tag(s: &str) -> Option<ImplicitTag> {
    static RESOLVERS: LazyLock<Vec<(ImplicitTag, &'static str, Regex)>> = LazyLock::new(|| {
        let table = [
            (
                ImplicitTag::Bool,
                "yYnNtTfFoO",
                r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$",
            ),
            (
                ImplicitTag::Float,
                "-+0123456789.",
                r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
            ),
            (
                ImplicitTag::Int,
                "-+0123456789",
                r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$",
            ),
            (ImplicitTag::Merge, "<", r"^(?:<<)$"),
            (ImplicitTag::Null, "~nN", r"^(?:~|null|Null|NULL)$"),
            (
                ImplicitTag::Timestamp,
                "0123456789",
                r"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$",
            ),
            (ImplicitTag::Value, "=", r"^(?:=)$"),
            (ImplicitTag::Yaml, "!&*", r"^(?:!|&|\*)$"),
        ];
        table
            .into_iter()
            .filter_map(|(tag, first, re)| Regex::new(re).ok().map(|re| (tag, first, re)))
            .collect()
    });
    let Some(first) = s.chars().next() else {
        return Some(ImplicitTag::Null); // '' resolves to null
    };
    // Python's `$` also matches before a final newline.
    let body = s.strip_suffix('\n').unwrap_or(s);
    RESOLVERS
        .iter()
        .find(|(_, firsts, re)| firsts.contains(first) && (re.is_match(s) || re.is_match(body)))
        .map(|(tag, _, _)| *tag)
}

/// PyYAML's `ScalarAnalysis`.
#[derive(Default)]
struct Analysis {
    empty: bool,
    multiline: bool,
    allow_flow_plain: bool,
    allow_block_plain: bool,
    allow_single_quoted: bool,
}

fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blank_or_break(c: char) -> bool {
    matches!(
        c,
        '\0' | ' ' | '\t' | '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

fn is_printable_unicode(c: char) -> bool {
    (c == '\u{85}'
        || ('\u{A0}'..='\u{D7FF}').contains(&c)
        || ('\u{E000}'..='\u{FFFD}').contains(&c)
        || ('\u{10000}'..'\u{10FFFF}').contains(&c))
        && c != '\u{FEFF}'
}

fn analyze(scalar: &str, allow_unicode: bool) -> Analysis {
    if scalar.is_empty() {
        return Analysis {
            empty: true,
            multiline: false,
            allow_flow_plain: false,
            allow_block_plain: true,
            allow_single_quoted: true,
        };
    }
    let chars: Vec<char> = scalar.chars().collect();
    let n = chars.len();
    let mut block_indicators = false;
    let mut flow_indicators = false;
    let mut line_breaks = false;
    let mut special = false;
    let (mut leading_space, mut leading_break) = (false, false);
    let (mut trailing_space, mut trailing_break) = (false, false);
    let (mut break_space, mut space_break) = (false, false);
    if scalar.starts_with("---") || scalar.starts_with("...") {
        block_indicators = true;
        flow_indicators = true;
    }
    let mut preceded_by_ws = true;
    let mut followed_by_ws = n == 1 || is_blank_or_break(chars[1]);
    let (mut previous_space, mut previous_break) = (false, false);
    for (index, &ch) in chars.iter().enumerate() {
        if index == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(ch) {
                flow_indicators = true;
                block_indicators = true;
            }
            if "?:".contains(ch) {
                flow_indicators = true;
                if followed_by_ws {
                    block_indicators = true;
                }
            }
            if ch == '-' && followed_by_ws {
                flow_indicators = true;
                block_indicators = true;
            }
        } else {
            if ",?[]{}".contains(ch) {
                flow_indicators = true;
            }
            if ch == ':' {
                flow_indicators = true;
                if followed_by_ws {
                    block_indicators = true;
                }
            }
            if ch == '#' && preceded_by_ws {
                flow_indicators = true;
                block_indicators = true;
            }
        }
        if is_break(ch) {
            line_breaks = true;
        }
        if !(ch == '\n'
            || ('\x20'..='\x7E').contains(&ch)
            || (allow_unicode && is_printable_unicode(ch)))
        {
            special = true;
        }
        if ch == ' ' {
            leading_space |= index == 0;
            trailing_space |= index == n - 1;
            break_space |= previous_break;
            previous_space = true;
            previous_break = false;
        } else if is_break(ch) {
            leading_break |= index == 0;
            trailing_break |= index == n - 1;
            space_break |= previous_space;
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_ws = is_blank_or_break(ch);
        followed_by_ws = index + 2 >= n || is_blank_or_break(chars[index + 2]);
    }
    let mut a = Analysis {
        empty: false,
        multiline: line_breaks,
        allow_flow_plain: true,
        allow_block_plain: true,
        allow_single_quoted: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.allow_flow_plain = false;
        a.allow_block_plain = false;
    }
    if break_space {
        a.allow_flow_plain = false;
        a.allow_block_plain = false;
        a.allow_single_quoted = false;
    }
    if space_break || special {
        a.allow_flow_plain = false;
        a.allow_block_plain = false;
        a.allow_single_quoted = false;
    }
    if line_breaks {
        a.allow_flow_plain = false;
        a.allow_block_plain = false;
    }
    if flow_indicators {
        a.allow_flow_plain = false;
    }
    if block_indicators {
        a.allow_block_plain = false;
    }
    a
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
}

/// PyYAML's emitter state for one document.
struct Emitter {
    out: String,
    indents: Vec<Option<usize>>,
    indent: Option<usize>,
    flow_level: usize,
    root_context: bool,
    mapping_context: bool,
    simple_key_context: bool,
    column: usize,
    whitespace: bool,
    indention: bool,
    open_ended: bool,
    /// PyYAML's `allow_unicode`: write printable non-ASCII as is (else escape it).
    allow_unicode: bool,
}

impl Default for Emitter {
    fn default() -> Self {
        Self {
            out: String::new(),
            indents: Vec::new(),
            indent: None,
            flow_level: 0,
            root_context: false,
            mapping_context: false,
            simple_key_context: false,
            column: 0,
            whitespace: true,
            indention: true,
            open_ended: false,
            allow_unicode: false,
        }
    }
}

impl Emitter {
    fn document(&mut self, doc: &Doc) {
        self.node(doc, true, false, false);
        self.write_indent(); // document end
        if self.open_ended {
            self.write_indicator("...", true, false, false);
            self.write_indent();
        }
    }

    fn node(&mut self, doc: &Doc, root: bool, mapping: bool, simple_key: bool) {
        self.root_context = root;
        self.mapping_context = mapping;
        self.simple_key_context = simple_key;
        match doc {
            Doc::List(items) if items.is_empty() => self.empty_flow("[", "]"),
            Doc::Dict(d) if d.entries.is_empty() => self.empty_flow("{", "}"),
            Doc::List(items) => self.block_sequence(items),
            Doc::Dict(d) => {
                let entries: Vec<(Doc, &Doc)> = d
                    .sorted()
                    .into_iter()
                    .map(|(k, v)| (Doc::Str(k.clone()), v))
                    .collect();
                self.block_mapping(&entries);
            }
            scalar => {
                if let Some(s) = scalar_of(scalar) {
                    self.increase_indent(true, false);
                    self.process_scalar(&s);
                    self.indent = self.indents.pop().flatten();
                }
            }
        }
    }

    fn empty_flow(&mut self, open: &str, close: &str) {
        self.write_indicator(open, true, true, false);
        self.flow_level += 1;
        self.increase_indent(true, false);
        self.indent = self.indents.pop().flatten();
        self.flow_level -= 1;
        self.write_indicator(close, false, false, false);
    }

    fn block_sequence(&mut self, items: &[Doc]) {
        let indentless = self.mapping_context && !self.indention;
        self.increase_indent(false, indentless);
        for item in items {
            self.write_indent();
            self.write_indicator("-", true, false, true);
            self.node(item, false, false, false);
        }
        self.indent = self.indents.pop().flatten();
    }

    fn block_mapping(&mut self, entries: &[(Doc, &Doc)]) {
        self.increase_indent(false, false);
        for (key, value) in entries {
            self.write_indent();
            let key_text = match key {
                Doc::Str(s) => s.as_str(),
                _ => "",
            };
            let analysis = analyze(key_text, self.allow_unicode);
            let simple = key_text.chars().count() < 128 && !analysis.empty && !analysis.multiline;
            if simple {
                self.node(key, false, true, true);
                self.write_indicator(":", false, false, false);
                self.node(value, false, true, false);
            } else {
                self.write_indicator("?", true, false, true);
                self.node(key, false, true, false);
                self.write_indent();
                self.write_indicator(":", true, false, true);
                self.node(value, false, true, false);
            }
        }
        self.indent = self.indents.pop().flatten();
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        match self.indent {
            None => self.indent = Some(if flow { BEST_INDENT } else { 0 }),
            Some(i) if !indentless => self.indent = Some(i + BEST_INDENT),
            Some(_) => {}
        }
    }

    fn choose_style(&self, scalar: &Scalar, a: &Analysis) -> Style {
        if scalar.plain_implicit
            && !(self.simple_key_context && (a.empty || a.multiline))
            && ((self.flow_level > 0 && a.allow_flow_plain)
                || (self.flow_level == 0 && a.allow_block_plain))
        {
            return Style::Plain;
        }
        if a.allow_single_quoted && !(self.simple_key_context && a.multiline) {
            return Style::Single;
        }
        Style::Double
    }

    fn process_scalar(&mut self, scalar: &Scalar) {
        let analysis = analyze(&scalar.text, self.allow_unicode);
        let split = !self.simple_key_context;
        match self.choose_style(scalar, &analysis) {
            Style::Plain => self.write_plain(&scalar.text, split),
            Style::Single => self.write_single_quoted(&scalar.text, split),
            Style::Double => self.write_double_quoted(&scalar.text, split),
        }
    }

    fn write(&mut self, data: &str) {
        self.column += data.chars().count();
        self.out.push_str(data);
    }

    fn write_indicator(
        &mut self,
        indicator: &str,
        need_whitespace: bool,
        whitespace: bool,
        indention: bool,
    ) {
        let data = if self.whitespace || !need_whitespace {
            indicator.to_string()
        } else {
            format!(" {indicator}")
        };
        self.whitespace = whitespace;
        self.indention = self.indention && indention;
        self.open_ended = false;
        self.write(&data);
    }

    fn write_indent(&mut self) {
        let indent = self.indent.unwrap_or(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.write_line_break(None);
        }
        if self.column < indent {
            self.whitespace = true;
            let pad = " ".repeat(indent - self.column);
            self.write(&pad);
        }
    }

    fn write_line_break(&mut self, data: Option<char>) {
        self.whitespace = true;
        self.indention = true;
        self.column = 0;
        self.out.push(data.unwrap_or('\n'));
    }

    fn write_breaks(&mut self, breaks: &[char]) {
        if breaks.first() == Some(&'\n') {
            self.write_line_break(None);
        }
        for &br in breaks {
            self.write_line_break(if br == '\n' { None } else { Some(br) });
        }
        self.write_indent();
    }

    fn write_plain(&mut self, text: &str, split: bool) {
        if self.root_context {
            self.open_ended = true;
        }
        if text.is_empty() {
            return;
        }
        if !self.whitespace {
            self.write(" ");
        }
        self.whitespace = false;
        self.indention = false;
        let chars: Vec<char> = text.chars().collect();
        let (mut spaces, mut breaks) = (false, false);
        let (mut start, mut end) = (0, 0);
        while end <= chars.len() {
            let ch = chars.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end && self.column > BEST_WIDTH && split {
                        self.write_indent();
                        self.whitespace = false;
                        self.indention = false;
                    } else {
                        let data: String = chars[start..end].iter().collect();
                        self.write(&data);
                    }
                    start = end;
                }
            } else if breaks {
                if !ch.is_some_and(is_break) {
                    self.write_breaks(&chars[start..end]);
                    self.whitespace = false;
                    self.indention = false;
                    start = end;
                }
            } else if ch.is_none_or(|c| c == ' ' || is_break(c)) {
                let data: String = chars[start..end].iter().collect();
                self.write(&data);
                start = end;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
                breaks = is_break(c);
            }
            end += 1;
        }
    }

    fn write_single_quoted(&mut self, text: &str, split: bool) {
        self.write_indicator("'", true, false, false);
        let chars: Vec<char> = text.chars().collect();
        let n = chars.len();
        let (mut spaces, mut breaks) = (false, false);
        let (mut start, mut end) = (0, 0);
        while end <= n {
            let ch = chars.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end
                        && self.column > BEST_WIDTH
                        && split
                        && start != 0
                        && end != n
                    {
                        self.write_indent();
                    } else {
                        let data: String = chars[start..end].iter().collect();
                        self.write(&data);
                    }
                    start = end;
                }
            } else if breaks {
                if !ch.is_some_and(is_break) {
                    self.write_breaks(&chars[start..end]);
                    start = end;
                }
            } else if ch.is_none_or(|c| c == ' ' || is_break(c) || c == '\'') && start < end {
                let data: String = chars[start..end].iter().collect();
                self.write(&data);
                start = end;
            }
            if ch == Some('\'') {
                self.write("''");
                start = end + 1;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
                breaks = is_break(c);
            }
            end += 1;
        }
        self.write_indicator("'", false, false, false);
    }

    fn write_double_quoted(&mut self, text: &str, split: bool) {
        self.write_indicator("\"", true, false, false);
        let chars: Vec<char> = text.chars().collect();
        let n = chars.len();
        let (mut start, mut end) = (0, 0);
        while end <= n {
            let ch = chars.get(end).copied();
            let needs_escape = match ch {
                None => true,
                Some(c) => {
                    "\"\\\u{85}\u{2028}\u{2029}\u{FEFF}".contains(c)
                        || !(('\x20'..='\x7E').contains(&c)
                            || (self.allow_unicode
                                && (('\u{A0}'..='\u{D7FF}').contains(&c)
                                    || ('\u{E000}'..='\u{FFFD}').contains(&c))))
                }
            };
            if needs_escape {
                if start < end {
                    let data: String = chars[start..end].iter().collect();
                    self.write(&data);
                    start = end;
                }
                if let Some(c) = ch {
                    let data = escape(c);
                    self.write(&data);
                    start = end + 1;
                }
            }
            if 0 < end
                && end + 1 < n
                && (ch == Some(' ') || start >= end)
                && self.column as isize + end as isize - start as isize > BEST_WIDTH as isize
                && split
            {
                let mut data: String = chars[start.min(end)..end].iter().collect();
                data.push('\\');
                if start < end {
                    start = end;
                }
                self.write(&data);
                self.write_indent();
                self.whitespace = false;
                self.indention = false;
                if chars.get(start) == Some(&' ') {
                    self.write("\\");
                }
            }
            end += 1;
        }
        self.write_indicator("\"", false, false, false);
    }
}

fn escape(c: char) -> String {
    let short = match c {
        '\0' => Some('0'),
        '\x07' => Some('a'),
        '\x08' => Some('b'),
        '\x09' => Some('t'),
        '\x0A' => Some('n'),
        '\x0B' => Some('v'),
        '\x0C' => Some('f'),
        '\x0D' => Some('r'),
        '\x1B' => Some('e'),
        '"' => Some('"'),
        '\\' => Some('\\'),
        '\u{85}' => Some('N'),
        '\u{A0}' => Some('_'),
        '\u{2028}' => Some('L'),
        '\u{2029}' => Some('P'),
        _ => None,
    };
    if let Some(s) = short {
        return format!("\\{s}");
    }
    let cp = c as u32;
    if cp <= 0xFF {
        format!("\\x{cp:02X}")
    } else if cp <= 0xFFFF {
        format!("\\u{cp:04X}")
    } else {
        format!("\\U{cp:08X}")
    }
}
