//! `-o tsv`: knack's `_TsvOutput`. One row per list element (a non-list result
//! is one row), scalars tab-separated, no header. Nested lists print their
//! length and nested objects print nothing, so columns stay aligned.

use super::value::Doc;

pub fn render(doc: &Doc) -> String {
    let mut out = String::new();
    match doc {
        Doc::List(rows) => rows.iter().for_each(|row| write_row(row, &mut out)),
        row => write_row(row, &mut out),
    }
    out
}

fn write_row(row: &Doc, out: &mut String) {
    match row {
        Doc::Dict(d) => {
            // A plain dict is printed in key order, an OrderedDict (a query's
            // multi-select hash) in the order the user asked for.
            let values: Vec<&Doc> = if d.ordered {
                d.entries.iter().map(|(_, v)| v).collect()
            } else {
                d.sorted().into_iter().map(|(_, v)| v).collect()
            };
            write_cells(&values, out);
        }
        Doc::List(items) => write_cells(&items.iter().collect::<Vec<_>>(), out),
        Doc::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        scalar => write_cell(scalar, out),
    }
    out.push('\n');
}

fn write_cells(values: &[&Doc], out: &mut String) {
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        write_cell(value, out);
    }
}

/// A cell is Python's `str()` of the value (`True`, `None`, `1.0`), with
/// lists replaced by their length and objects by nothing.
fn write_cell(value: &Doc, out: &mut String) {
    match value {
        Doc::List(items) => out.push_str(&items.len().to_string()),
        Doc::Dict(_) => {}
        scalar => out.push_str(&scalar.py_str()),
    }
}
