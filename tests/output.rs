//! `-o`/`--query` parity with az: every document of the corpus, in every
//! format, under a set of queries, is rendered by azml and by knack (az's own
//! formatter, through `AZML_TEST_PYTHON`) and must match byte for byte.

use azml::output::{Format, OutputError, render};
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

const FORMATS: [(&str, Format); 7] = [
    ("json", Format::Json),
    ("jsonc", Format::Jsonc),
    ("yaml", Format::Yaml),
    ("yamlc", Format::Yamlc),
    ("table", Format::Table),
    ("tsv", Format::Tsv),
    ("none", Format::None),
];

/// Queries applied to every document (most fail or give null on some: that
/// must match too).
const GENERIC_QUERIES: [Option<&str>; 8] = [
    None,
    Some("@"),
    Some("[0]"),
    Some("*"),
    Some("length(@)"),
    Some("keys(@)"),
    Some("[].name"),
    Some("{first: [0], n: name, alpha: alpha}"),
];

/// Queries a CI script would run on a list of runs (corpus document 2).
const RUN_QUERIES: [&str; 31] = [
    "[].{Name:name, Status:status}",
    // JEP-12's old string literals, still read by Python's jmespath.
    "[?status==`Completed`].runId",
    "[?name==` a b`].runId",
    "[?status!=`Failed\\`s`].runId",
    "[].{Status:status, Id:runId, Dur:duration}",
    "[?status=='Completed'].runId",
    "[?duration > `10`].{id: runId, d: duration}",
    "[0].metrics",
    "sort_by(@, &duration)[].runId",
    "max_by(@, &duration).runId",
    "min_by(@, &name)",
    "[].tags",
    "[].[runId, status]",
    "{first: [0].runId, count: length(@)}",
    "join(', ', [].runId)",
    "to_string([0])",
    "[].metrics.accuracy | avg(@)",
    "sum([].duration)",
    "[-1]",
    "[::2].name",
    "merge([0], {extra: `1`})",
    "not_null(missing, [0].runId)",
    "type([0].duration)",
    "contains([].status, 'Failed')",
    "[].name | sort(@)",
    "[?contains(name, 'é')]",
    "floor([2].duration)",
    "[].metrics.*",
    "[?!extra].runId",
    "[?status=='Completed' && duration < `20`]",
    "reverse([].name)[0]",
];

struct Case {
    doc: Value,
    format: (&'static str, Format),
    query: Option<String>,
}

fn corpus() -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/output/corpus.json");
    let text = std::fs::read_to_string(&path).expect("corpus.json is readable");
    serde_json::from_str(&text).expect("corpus.json is JSON")
}

fn cases() -> Vec<Case> {
    let docs = corpus();
    assert!(
        docs.len() >= 25,
        "the corpus must keep at least 25 documents"
    );
    let mut cases = Vec::new();
    for doc in &docs {
        for format in FORMATS {
            for query in GENERIC_QUERIES {
                cases.push(Case {
                    doc: doc.clone(),
                    format,
                    query: query.map(str::to_string),
                });
            }
        }
    }
    for format in FORMATS {
        for query in RUN_QUERIES {
            cases.push(Case {
                doc: docs[1].clone(),
                format,
                query: Some(query.to_string()),
            });
        }
    }
    cases
}

/// The Python interpreter with knack, or `None` (skip) when running by hand.
fn knack_python() -> Option<String> {
    let required = std::env::var("AZML_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1");
    let python = std::env::var("AZML_TEST_PYTHON").ok();
    let usable = python.as_ref().is_some_and(|p| {
        Command::new(p)
            .args(["-c", "import knack, jmespath, yaml, pygments, tabulate"])
            .status()
            .is_ok_and(|s| s.success())
    });
    match (usable, required) {
        (true, _) => python,
        (false, true) => panic!(
            "AZML_TEST_REQUIRE_ALL=1 but AZML_TEST_PYTHON does not point at a Python with knack"
        ),
        (false, false) => {
            eprintln!(
                "skipping knack parity: set AZML_TEST_PYTHON to a Python with knack (see .ci/requirements.txt)"
            );
            None
        }
    }
}

/// Run every case through knack in one Python process.
fn knack_render(python: &str, cases: &[Case]) -> Vec<Result<String, String>> {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/output/knack_render.py");
    let input: Vec<Value> = cases
        .iter()
        .map(|c| json!({"doc": c.doc.to_string(), "format": c.format.0, "query": c.query}))
        .collect();
    let mut child = Command::new(python)
        .arg(&script)
        .env("PYTHONIOENCODING", "utf-8")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python starts");
    let payload = serde_json::to_vec(&input).expect("cases serialize");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&payload)
        .expect("write cases");
    let output = child.wait_with_output().expect("python finishes");
    assert!(output.status.success(), "knack_render.py failed");
    let results: Vec<Value> =
        serde_json::from_slice(&output.stdout).expect("knack results are JSON");
    results
        .into_iter()
        .map(|r| match r.get("out").and_then(Value::as_str) {
            Some(out) => Ok(out.to_string()),
            None => Err(r["error"].as_str().unwrap_or("error").to_string()),
        })
        .collect()
}

#[test]
fn every_format_and_query_matches_knack_byte_for_byte() {
    let Some(python) = knack_python() else {
        return;
    };
    let cases = cases();
    let expected = knack_render(&python, &cases);
    let mut failures = Vec::new();
    for (case, want) in cases.iter().zip(&expected) {
        let got =
            render(&case.doc, case.format.1, case.query.as_deref()).map_err(|e| e.to_string());
        let same = match (&got, want) {
            (Ok(a), Ok(b)) => a == b,
            (Err(_), Err(_)) => true,
            _ => false,
        };
        if !same {
            failures.push(format!(
                "-o {} --query {:?} on {}\n{}",
                case.format.0,
                case.query,
                truncate(&case.doc.to_string()),
                first_difference(want, &got)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from knack:\n{}",
        failures.len(),
        cases.len(),
        failures
            .iter()
            .take(15)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn truncate(s: &str) -> String {
    s.chars().take(100).collect()
}

/// Where two renderings part ways, with some context on each side.
fn first_difference(want: &Result<String, String>, got: &Result<String, String>) -> String {
    let (Ok(want), Ok(got)) = (want, got) else {
        return format!("  knack: {want:?}\n  azml:  {got:?}");
    };
    let w: Vec<char> = want.chars().collect();
    let g: Vec<char> = got.chars().collect();
    let at = w.iter().zip(&g).take_while(|(a, b)| a == b).count();
    let window = |v: &[char]| -> String {
        let start = at.saturating_sub(40);
        let end = (at + 60).min(v.len());
        v[start..end]
            .iter()
            .collect::<String>()
            .escape_debug()
            .to_string()
    };
    format!(
        "  at char {at}\n  knack: …{}…\n  azml:  …{}…",
        window(&w),
        window(&g)
    )
}

#[test]
fn bad_query_is_a_usage_error_with_exit_code_2() {
    for bad in ["[?", "foo[", "{a: }", "`\"unterminated`"] {
        let err = render(&json!({"a": 1}), Format::Json, Some(bad)).unwrap_err();
        assert!(matches!(err, OutputError::QuerySyntax(_)), "{bad}: {err}");
        let (code, hint) = azml::error::exit_code_of(&anyhow::Error::new(err));
        assert_eq!(code, 2, "{bad}");
        assert!(hint.is_some());
    }
}

/// az maps a query that fails on the result to InvalidArgumentValueError: exit 1.
#[test]
fn a_query_failing_on_the_result_exits_1_not_2() {
    for failing in ["nosuch(@)", "abs('a')", "length(@[0])"] {
        let err = render(&json!([1]), Format::Json, Some(failing)).unwrap_err();
        assert!(matches!(err, OutputError::QueryEval(_)), "{failing}: {err}");
        let (code, _) = azml::error::exit_code_of(&anyhow::Error::new(err));
        assert_eq!(code, 1, "{failing}");
    }
}

/// Python's jmespath reads a backtick literal that is not JSON as a string
/// (the old form az scripts still use); the Rust parser refused it.
#[test]
fn an_old_style_backtick_string_literal_is_read_as_python_reads_it() {
    let runs = json!([{"status": "Completed", "id": "a"}, {"status": "Failed", "id": "b"}]);
    let pick = |query: &str| render(&runs, Format::Tsv, Some(query)).unwrap();
    assert_eq!(pick("[?status==`Completed`].id"), "a\n");
    assert_eq!(pick("[?status==` Failed`].id"), "b\n");
    assert_eq!(pick("[?status==`\"Failed\"`].id"), "b\n");
    assert_eq!(pick("[?id=='`'].id"), "");
    assert_eq!(
        render(&json!(1), Format::Tsv, Some("`{bad json`")).unwrap(),
        "{bad json\n"
    );
}

#[test]
fn null_result_prints_nothing_in_every_format() {
    for (_, format) in FORMATS {
        assert_eq!(
            render(&json!({"a": 1}), format, Some("missing")).unwrap(),
            ""
        );
    }
}

#[test]
fn table_keeps_query_column_order() {
    let runs = json!([{"status": "Completed", "runId": "r1"}]);
    let out = render(&runs, Format::Table, Some("[].{Run:runId, Status:status}")).unwrap();
    assert_eq!(out, "Run    Status\n-----  ---------\nr1     Completed\n");
}

#[test]
fn tsv_sorts_plain_objects_but_keeps_query_order() {
    let run = json!({"status": "Completed", "runId": "r1", "n": 1.0});
    assert_eq!(
        render(&run, Format::Tsv, None).unwrap(),
        "1.0\tr1\tCompleted\n"
    );
    let out = render(&run, Format::Tsv, Some("{s: status, r: runId}")).unwrap();
    assert_eq!(out, "Completed\tr1\n");
}

#[test]
fn json_sorts_keys_and_keeps_unicode() {
    let out = render(&json!({"b": "café", "a": 1.0}), Format::Json, None).unwrap();
    assert_eq!(out, "{\n  \"a\": 1.0,\n  \"b\": \"café\"\n}\n");
}

/// The real binary on a local workspace: what a CI script sees.
mod binary {
    use assert_cmd::Command;
    use tempfile::TempDir;

    fn workspace_with_experiments() -> TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["demo", "zeta"] {
            azml(&dir)
                .args(["experiment", "create", "-e", name])
                .assert()
                .success();
        }
        dir
    }

    fn azml(dir: &TempDir) -> Command {
        let mut cmd = Command::cargo_bin("azml").expect("binary");
        cmd.current_dir(dir.path())
            .env("AZML_LOCAL_WORKSPACE", dir.path().join("ws"))
            .env_remove("AZURE_SUBSCRIPTION_ID")
            .env_remove("AZML_RESOURCE_GROUP")
            .env_remove("AZML_WORKSPACE_NAME");
        cmd
    }

    fn stdout(cmd: &mut Command) -> String {
        let out = cmd.output().expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    #[test]
    fn tsv_query_prints_one_name_per_line() {
        let dir = workspace_with_experiments();
        let out =
            stdout(azml(&dir).args(["experiment", "list", "-o", "tsv", "--query", "[].name"]));
        assert_eq!(out, "demo\nzeta\n");
    }

    #[test]
    fn table_has_capitalised_scalar_columns_and_a_dash_line() {
        let dir = workspace_with_experiments();
        let out = stdout(azml(&dir).args(["experiment", "list", "-o", "table"]));
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("CreatedUtc"), "{out}");
        assert!(lines[0].contains("Name"), "{out}");
        assert!(lines[1].chars().all(|c| c == '-' || c == ' '), "{out}");
        assert_eq!(lines.len(), 4, "{out}");
    }

    #[test]
    fn bad_query_exits_2_with_error_and_hint_on_stderr() {
        let dir = workspace_with_experiments();
        let out = azml(&dir)
            .args(["experiment", "list", "--query", "[?"])
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2));
        assert!(out.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with(
                "error: invalid value '[?' for '--query <JMESPATH>': invalid JMESPath"
            ),
            "{stderr}"
        );
    }

    /// The query was only compiled to print the result: the script had run
    /// and the run was recorded when the typo was reported.
    #[test]
    fn a_bad_query_is_refused_before_the_command_does_anything() {
        let dir = workspace_with_experiments();
        std::fs::write(dir.path().join("t.py"), "print('ran')\n").unwrap();
        let out = azml(&dir)
            .args(["run", "submit-script", "-e", "q", "--query", "[?", "t.py"])
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2));
        assert!(!String::from_utf8_lossy(&out.stderr).contains("ran"));
        let runs = azml(&dir)
            .args(["run", "list", "-e", "q", "--query", "length(@)"])
            .output()
            .expect("runs");
        assert_eq!(String::from_utf8_lossy(&runs.stdout), "0\n");
    }

    #[test]
    fn null_query_result_and_none_format_print_nothing() {
        let dir = workspace_with_experiments();
        assert_eq!(
            stdout(azml(&dir).args(["experiment", "list", "--query", "[0].missing"])),
            ""
        );
        assert_eq!(
            stdout(azml(&dir).args(["experiment", "list", "-o", "none"])),
            ""
        );
    }

    #[test]
    fn jsonc_is_plain_json_when_stdout_is_not_a_terminal() {
        let dir = workspace_with_experiments();
        let colored = stdout(azml(&dir).args(["experiment", "list", "-o", "jsonc"]));
        let plain = stdout(azml(&dir).args(["experiment", "list", "-o", "json"]));
        assert!(!colored.contains('\u{1b}'));
        assert_eq!(colored, plain);
    }
}
