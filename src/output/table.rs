//! `-o table`: knack's `_TableOutput` feeding `tabulate(..., tablefmt="simple",
//! disable_numparse=True)`.
//!
//! Rows are the list elements (or the one result). An object row keeps its
//! scalar fields (not `id`, `type`, `etag`, not nulls) as columns with the first
//! letter capitalised; keys are sorted unless a `--query` shaped the result. A
//! list row becomes `Column1..N`, a scalar row `Result`. Every cell is left
//! aligned and whitespace-trimmed; columns are at least header width + 2 wide
//! and separated by two spaces; a line of dashes follows the header.

use super::value::{Doc, py_isspace, py_splitlines};

const SKIP_KEYS: [&str; 3] = ["id", "type", "etag"];

/// `None` when knack would refuse ("Table output unavailable").
pub fn render(doc: &Doc, sort_keys: bool) -> Option<String> {
    let rows: Vec<Vec<(String, Doc)>> = match doc {
        Doc::List(items) => items.iter().map(|i| row_cells(i, sort_keys)).collect(),
        item => vec![row_cells(item, sort_keys)],
    };
    let table = if rows.is_empty() {
        String::new()
    } else {
        tabulate(&rows)
    };
    if table == "\n" {
        return None;
    }
    Some(table + "\n")
}

/// knack's `_auto_table_item`.
fn row_cells(item: &Doc, sort_keys: bool) -> Vec<(String, Doc)> {
    match item {
        Doc::Dict(d) => {
            let entries: Vec<&(String, Doc)> = if sort_keys {
                d.sorted()
            } else {
                d.entries.iter().collect()
            };
            entries
                .into_iter()
                .filter(|(k, v)| !SKIP_KEYS.contains(&k.as_str()) && is_table_scalar(v))
                .map(|(k, v)| (capitalize_first(k), v.clone()))
                .collect()
        }
        Doc::List(values) => values
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("Column{}", i + 1), v.clone()))
            .collect(),
        scalar => vec![("Result".to_string(), scalar.clone())],
    }
}

fn is_table_scalar(value: &Doc) -> bool {
    !matches!(value, Doc::Null | Doc::List(_) | Doc::Dict(_))
}

fn capitalize_first(key: &str) -> String {
    let mut chars = key.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// tabulate's "simple" format for a list of ordered dicts with `headers="keys"`.
fn tabulate(rows: &[Vec<(String, Doc)>]) -> String {
    let mut headers: Vec<String> = Vec::new();
    for row in rows {
        for (key, _) in row {
            if !headers.contains(key) {
                headers.push(key.clone());
            }
        }
    }
    if headers.is_empty() {
        return String::new();
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            headers
                .iter()
                .map(|h| {
                    let value = row.iter().find(|(k, _)| k == h).map(|(_, v)| v);
                    format_cell(value)
                })
                .collect()
        })
        .collect();
    let multiline = headers
        .iter()
        .chain(cells.iter().flatten())
        .any(|s| s.contains(['\r', '\n']));
    let widths: Vec<usize> = (0..headers.len())
        .map(|c| {
            let widest = cells
                .iter()
                .map(|row| cell_width(&row[c], multiline))
                .max()
                .unwrap_or(0);
            widest.max(width(&headers[c]) + 2)
        })
        .collect();
    let mut lines = Vec::new();
    push_row(&mut lines, &headers, &widths, multiline);
    lines.push(
        rstrip(
            &widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .join("  "),
        )
        .to_string(),
    );
    for row in &cells {
        push_row(&mut lines, row, &widths, multiline);
    }
    lines.join("\n")
}

/// tabulate's `_format` with numparse off: `str(value)`, missing values empty,
/// then stripped because every column is left-aligned.
fn format_cell(value: Option<&Doc>) -> String {
    let text = match value {
        None | Some(Doc::Null) => String::new(),
        Some(v) => v.py_str(),
    };
    text.trim_matches(py_isspace).to_string()
}

fn width(s: &str) -> usize {
    s.chars().count()
}

fn cell_width(s: &str, multiline: bool) -> usize {
    if multiline {
        s.split(['\r', '\n']).map(width).max().unwrap_or(0)
    } else {
        width(s)
    }
}

fn pad_right(s: &str, w: usize) -> String {
    let n = width(s);
    if n >= w {
        s.to_string()
    } else {
        format!("{s}{}", " ".repeat(w - n))
    }
}

fn rstrip(s: &str) -> &str {
    s.trim_end_matches(py_isspace)
}

fn push_row(lines: &mut Vec<String>, cells: &[String], widths: &[usize], multiline: bool) {
    if !multiline {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| pad_right(c, *w))
            .collect();
        lines.push(rstrip(&padded.join("  ")).to_string());
        return;
    }
    // Each cell becomes its own lines; short cells are padded with blank lines.
    let cell_lines: Vec<Vec<String>> = cells
        .iter()
        .zip(widths)
        .map(|(c, w)| {
            py_splitlines(c)
                .into_iter()
                .map(|l| pad_right(l, *w))
                .collect()
        })
        .collect();
    let height = cell_lines.iter().map(Vec::len).max().unwrap_or(0);
    for i in 0..height {
        let line: Vec<String> = cell_lines
            .iter()
            .zip(widths)
            .map(|(lines, w)| lines.get(i).cloned().unwrap_or_else(|| " ".repeat(*w)))
            .collect();
        lines.push(rstrip(&line.join("  ")).to_string());
    }
}
