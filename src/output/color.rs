//! `-o jsonc`/`-o yamlc` colours, as knack gets them from pygments'
//! `TerminalFormatter` (light background): keys bright blue, strings yellow,
//! numbers and constants blue, whitespace gray, punctuation uncoloured. Every
//! coloured piece is reset before a newline so paging stays clean.

const RESET: &str = "\x1b[39;49;00m";
const GRAY: &str = "\x1b[37m";
const KEY: &str = "\x1b[94m";
const STRING: &str = "\x1b[33m";
const NUMBER: &str = "\x1b[34m";
const VARIABLE: &str = "\x1b[31m";
const ERROR: &str = "\x1b[04m\x1b[91m";

/// Write `text` in `color` the way pygments does: one escape per line piece
/// (Python's `splitlines(True)`, so U+2028 and friends also end a piece).
fn paint(color: &str, text: &str, out: &mut String) {
    for piece in py_lines_keepends(text) {
        let body = piece.trim_end_matches('\n');
        out.push_str(color);
        out.push_str(body);
        out.push_str(RESET);
        if piece.ends_with('\n') {
            out.push('\n');
        }
    }
}

fn py_lines_keepends(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        if !is_py_line_break(c) {
            continue;
        }
        let mut end = i + c.len_utf8();
        if c == '\r' && matches!(iter.peek(), Some((_, '\n'))) {
            iter.next();
            end += 1;
        }
        pieces.push(&text[start..end]);
        start = end;
    }
    if start < text.len() || pieces.is_empty() {
        pieces.push(&text[start..]);
    }
    pieces
}

fn is_py_line_break(c: char) -> bool {
    matches!(
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
    )
}

/// Colour the JSON text `render_json` produced (pygments' `JsonLexer` tokens).
pub fn json(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() * 2);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            paint(GRAY, &collect(&chars[start..i]), &mut out);
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i = (i + 1).min(chars.len());
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let color = if chars.get(next) == Some(&':') {
                KEY
            } else {
                STRING
            };
            paint(color, &collect(&chars[start..i]), &mut out);
        } else if c.is_ascii_alphanumeric() || c == '-' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "+-.".contains(chars[i]))
            {
                i += 1;
            }
            paint(NUMBER, &collect(&chars[start..i]), &mut out);
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Colour YAML text as pygments' `YamlLexer` does for what `-o yaml` emits:
/// keys bright blue, quoted scalars yellow (with inner spaces red, as
/// `Name.Variable`), plain scalars and indicators uncoloured, whitespace gray.
pub fn yaml(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut quote: Option<char> = None;
    for line in text.split_inclusive('\n') {
        let (body, newline) = match line.strip_suffix('\n') {
            Some(b) => (b, true),
            None => (line, false),
        };
        let continued_escape = match quote {
            Some(q) => {
                let indent_len = body.len() - body.trim_start_matches(' ').len();
                if indent_len > 0 {
                    paint(GRAY, &body[..indent_len], &mut out);
                }
                quoted_body(&body[indent_len..], q, newline, &mut quote, &mut out)
            }
            None => yaml_line(body, newline, &mut quote, &mut out),
        };
        if newline && !continued_escape {
            paint(GRAY, "\n", &mut out);
        }
    }
    out
}

/// One line outside a quoted scalar. Returns true when it painted the newline.
fn yaml_line(line: &str, newline: bool, quote: &mut Option<char>, out: &mut String) -> bool {
    if line == "..." {
        out.push_str("\x1b[04m\x1b[36m...");
        out.push_str(RESET);
        return false;
    }
    let indent_len = line.len() - line.trim_start_matches(' ').len();
    if indent_len > 0 {
        paint(GRAY, &line[..indent_len], out);
    }
    let mut rest = &line[indent_len..];
    while let Some(after) = rest.strip_prefix("- ") {
        out.push('-');
        paint(GRAY, " ", out);
        rest = after;
    }
    // A complex key (`? key` / `: value`), written for empty or long keys.
    for indicator in ["? ", ": "] {
        if let Some(after) = rest.strip_prefix(indicator) {
            out.push_str(&indicator[..1]);
            paint(GRAY, " ", out);
            return yaml_scalar(after, newline, quote, out);
        }
    }
    if let Some((key, value)) = split_key(rest) {
        paint(KEY, key, out);
        out.push(':');
        match value.strip_prefix(' ') {
            Some(v) => {
                paint(GRAY, " ", out);
                yaml_scalar(v, newline, quote, out)
            }
            None => false,
        }
    } else {
        yaml_scalar(rest, newline, quote, out)
    }
}

/// `key: value` or `key:` at the start of a line (keys are plain or quoted).
fn split_key(text: &str) -> Option<(&str, &str)> {
    if text.starts_with(['\'', '"', '?', '[', '{']) {
        return None;
    }
    let idx = text
        .find(": ")
        .or_else(|| text.strip_suffix(':').map(|k| k.len()))?;
    Some((&text[..idx], &text[idx + 1..]))
}

fn yaml_scalar(value: &str, newline: bool, quote: &mut Option<char>, out: &mut String) -> bool {
    match value.chars().next() {
        Some(q @ ('\'' | '"')) => {
            paint(STRING, &value[..1], out);
            *quote = Some(q);
            quoted_body(&value[1..], q, newline, quote, out)
        }
        _ => {
            out.push_str(value);
            false
        }
    }
}

/// The inside of a quoted scalar up to the end of the line or the closing
/// quote. Returns true when a trailing `\` escape swallowed the newline.
fn quoted_body(
    text: &str,
    q: char,
    newline: bool,
    quote: &mut Option<char>,
    out: &mut String,
) -> bool {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c == ' ' || c == '\u{a0}' {
            while i < chars.len() && (chars[i] == ' ' || chars[i] == '\u{a0}') {
                i += 1;
            }
            let trailing = chars[i..].is_empty() && chars[start..i].iter().all(|c| *c == ' ');
            paint(
                if trailing { GRAY } else { VARIABLE },
                &collect(&chars[start..i]),
                out,
            );
        } else if is_unmatched_space(c) {
            paint(ERROR, &c.to_string(), out);
            i += 1;
        } else if c == q && q == '\'' && chars.get(i + 1) == Some(&'\'') {
            paint(STRING, "''", out);
            i += 2;
        } else if c == q {
            paint(STRING, &q.to_string(), out);
            *quote = None;
            out.push_str(&collect(&chars[i + 1..]));
            return false;
        } else if c == '\\' && q == '"' {
            if i + 1 == chars.len() && newline {
                paint(STRING, "\\\n", out);
                return true;
            }
            i += escape_len(&chars[i..]);
            paint(STRING, &collect(&chars[start..i.min(chars.len())]), out);
        } else {
            while i < chars.len()
                && !" \u{a0}".contains(chars[i])
                && !is_unmatched_space(chars[i])
                && chars[i] != q
                && !(q == '"' && chars[i] == '\\')
            {
                i += 1;
            }
            paint(STRING, &collect(&chars[start..i]), out);
        }
    }
    false
}

/// Whitespace no quoted-scalar rule of pygments matches: an `Error` token.
fn is_unmatched_space(c: char) -> bool {
    c != ' ' && c != '\u{a0}' && c != '\n' && super::value::py_isspace(c)
}

/// Length of a double-quoted escape starting at a backslash.
fn escape_len(chars: &[char]) -> usize {
    match chars.get(1) {
        Some('x') => 4,
        Some('u') => 6,
        Some('U') => 10,
        Some(_) => 2,
        None => 1,
    }
    .min(chars.len())
}

fn collect(chars: &[char]) -> String {
    chars.iter().collect()
}
