//! `-o json`: knack's `json.dumps(result, ensure_ascii=False, indent=2,
//! sort_keys=True, separators=(',', ': '))` plus a newline.

use super::value::{Doc, py_float_repr};

/// The whole document as az prints it (ends with a newline).
pub fn render(doc: &Doc) -> String {
    let mut out = String::new();
    write_value(doc, 0, &mut out);
    out.push('\n');
    out
}

fn write_value(doc: &Doc, level: usize, out: &mut String) {
    match doc {
        Doc::Null => out.push_str("null"),
        Doc::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Doc::Int(i) => out.push_str(&i.to_string()),
        Doc::Float(f) => out.push_str(&json_float(*f)),
        Doc::Str(s) => write_string(s, out),
        Doc::List(items) if items.is_empty() => out.push_str("[]"),
        Doc::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                out.push_str(if i == 0 { "\n" } else { ",\n" });
                indent(level + 1, out);
                write_value(item, level + 1, out);
            }
            out.push('\n');
            indent(level, out);
            out.push(']');
        }
        Doc::Dict(d) if d.entries.is_empty() => out.push_str("{}"),
        Doc::Dict(d) => {
            out.push('{');
            for (i, (key, value)) in d.sorted().into_iter().enumerate() {
                out.push_str(if i == 0 { "\n" } else { ",\n" });
                indent(level + 1, out);
                write_string(key, out);
                out.push_str(": ");
                write_value(value, level + 1, out);
            }
            out.push('\n');
            indent(level, out);
            out.push('}');
        }
    }
}

/// Python's json module writes non-finite floats as JavaScript literals.
fn json_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        py_float_repr(f)
    }
}

fn indent(level: usize, out: &mut String) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

/// `ensure_ascii=False`: only quotes, backslashes and C0 controls are escaped.
pub fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `json.dumps(x, separators=(',', ':'))` (ASCII-only, insertion order):
/// what JMESPath's `to_string()` returns.
pub fn compact_ascii(doc: &Doc) -> String {
    let mut out = String::new();
    write_compact(doc, &mut out);
    out
}

fn write_compact(doc: &Doc, out: &mut String) {
    match doc {
        Doc::Str(s) => {
            let mut plain = String::new();
            write_string(s, &mut plain);
            for c in plain.chars() {
                if c.is_ascii() {
                    out.push(c);
                } else {
                    let mut buf = [0u16; 2];
                    for unit in c.encode_utf16(&mut buf) {
                        out.push_str(&format!("\\u{unit:04x}"));
                    }
                }
            }
        }
        Doc::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_compact(item, out);
            }
            out.push(']');
        }
        Doc::Dict(d) => {
            out.push('{');
            for (i, (key, value)) in d.entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_compact(&Doc::Str(key.clone()), out);
                out.push(':');
                write_compact(value, out);
            }
            out.push('}');
        }
        scalar => write_value(scalar, 0, out),
    }
}
