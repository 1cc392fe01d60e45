//! The conda environment file a runconfig names (`python.condaDependenciesFile`)
//! and the interpreter a local run uses.
//!
//! azml does not build conda environments on this machine; local runs use the
//! runconfig's interpreter as-is. Reading the conda file still matters: it says
//! which Python version and packages the script expects, so the local runner
//! can tell the user what is missing instead of failing obscurely.

use super::runconfig::{PythonSection, RunConfig};
use super::yaml::{self, Doc, Fields, Node, Value};
use super::{ModelError, Warning};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// A parsed conda environment file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CondaDependencies {
    pub source_file: Option<PathBuf>,
    pub name: Option<String>,
    pub channels: Vec<String>,
    /// The version the `python` dependency pins (`python=3.8.13` → `3.8.13`), if any.
    pub python_version: Option<String>,
    /// Conda package specs other than `python`, as written.
    pub conda_packages: Vec<String>,
    /// Packages under `- pip:`, as written (`azureml-defaults`, `torch==2.1`, `-r req.txt`).
    pub pip_packages: Vec<String>,
}

impl CondaDependencies {
    /// Whether an interpreter reporting `version` (e.g. `3.8.10`) satisfies the
    /// pinned Python, compared component by component as far as the pin goes
    /// (`3.8` accepts `3.8.10`; `3.8.13` does not).
    pub fn python_version_matches(&self, version: &str) -> bool {
        let Some(pin) = &self.python_version else {
            return true;
        };
        let pin = pin.trim_start_matches(['=', '>', '<', '~', '!']);
        let pin = pin.trim_end_matches(".*");
        let wanted: Vec<&str> = pin.split('.').collect();
        let have: Vec<&str> = version.trim().split('.').collect();
        wanted.len() <= have.len() && wanted.iter().zip(&have).all(|(w, h)| w == h)
    }
}

/// Parse a conda environment file; unknown top-level keys become warnings.
pub fn load(path: &Path, warnings: &mut Vec<Warning>) -> Result<CondaDependencies, ModelError> {
    let (root, _) = yaml::read_file(path)?;
    let start = warnings.len();
    let mut doc = Doc {
        file: path.into(),
        warnings,
    };
    let mut deps = parse_root(&mut doc, &root)?;
    deps.source_file = Some(path.into());
    yaml::sort_warnings(warnings, start);
    Ok(deps)
}

/// Parse conda file text (tests); `path` only names it in messages.
pub fn parse_str(
    text: &str,
    path: &Path,
    warnings: &mut Vec<Warning>,
) -> Result<CondaDependencies, ModelError> {
    let root = yaml::parse_str(text, path)?;
    let mut doc = Doc {
        file: path.into(),
        warnings,
    };
    parse_root(&mut doc, &root)
}

const TOP_LEVEL: &[&str] = &["name", "channels", "dependencies", "prefix", "variables"];

fn parse_root(doc: &mut Doc, root: &Node) -> Result<CondaDependencies, ModelError> {
    let mut f = Fields::of(
        doc,
        root,
        "",
        "a conda file is a mapping with `name`, `channels` and `dependencies`",
    )?;
    let mut deps = CondaDependencies::default();
    if let Some(node) = f.get(doc, "name")? {
        deps.name = doc.string(node, "name")?;
    }
    if let Some(node) = f.get(doc, "channels")? {
        deps.channels = doc.string_list(node, "channels")?;
    }
    if let Some(node) = f.get_some(doc, "dependencies")? {
        read_dependencies(doc, node, &mut deps)?;
    }
    f.accept(&["prefix", "variables"]);
    f.finish(doc, TOP_LEVEL);
    Ok(deps)
}

fn read_dependencies(
    doc: &Doc,
    node: &Node,
    deps: &mut CondaDependencies,
) -> Result<(), ModelError> {
    let Value::Seq(items) = &node.value else {
        return Err(doc.expected(
            node,
            "dependencies",
            "a list",
            "one `- package` per line, and `- pip: [...]` for pip packages",
        ));
    };
    for (i, item) in items.iter().enumerate() {
        let path = format!("dependencies[{i}]");
        match &item.value {
            Value::Map(entries) => {
                for entry in entries {
                    if entry.key != "pip" {
                        return Err(doc.error(
                            entry.key_pos,
                            format!(
                                "`{path}.{}`: only `pip:` may be nested in dependencies",
                                entry.key
                            ),
                            "write conda packages as plain `- name=version` items",
                        ));
                    }
                    let pip_path = format!("{path}.pip");
                    deps.pip_packages
                        .extend(doc.string_list(&entry.value, &pip_path)?);
                }
            }
            _ => {
                let spec = doc.string(item, &path)?.ok_or_else(|| {
                    doc.expected(item, &path, "a package spec", "remove the empty item")
                })?;
                match python_pin(&spec) {
                    Some(version) => deps.python_version = version,
                    None => deps.conda_packages.push(spec),
                }
            }
        }
    }
    Ok(())
}

/// `python`, `python=3.8`, `python==3.8.13`, `python>=3.9` → Some(version part);
/// any other package → None.
fn python_pin(spec: &str) -> Option<Option<String>> {
    let spec = spec.trim();
    let rest = spec.strip_prefix("python")?;
    if rest.is_empty() {
        return Some(None);
    }
    let first = rest.chars().next()?;
    if !"=<>!~ ".contains(first) {
        return None; // python-dateutil, pythonnet, …
    }
    let version = rest.trim().trim_start_matches('=').trim();
    Some((!version.is_empty()).then(|| version.to_string()))
}

/// Where the interpreter came from, for messages ("interpreterPath `python`
/// found on PATH as /usr/bin/python3").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpreter {
    pub program: PathBuf,
    pub explanation: String,
}

/// The interpreter a local run starts, following v1's meaning of
/// `interpreterPath`: an absolute path as-is; a relative path with a folder
/// part from the project (source) folder; a bare name through `PATH`. A bare
/// `python` that is not on PATH falls back to `python3`, because many Linux
/// systems ship only that name and v1's default runconfig says `python`.
pub fn resolve_interpreter(
    python: &PythonSection,
    project_dir: &Path,
    path_var: Option<&OsStr>,
) -> Result<Interpreter, ModelError> {
    let written = python.interpreter_path.trim();
    let written = if written.is_empty() {
        "python"
    } else {
        written
    };
    let expanded = expand_home(written);
    if expanded.is_absolute() || written.contains('/') || written.contains('\\') {
        let program = if expanded.is_absolute() {
            expanded
        } else {
            project_dir.join(expanded)
        };
        if program.is_file() {
            return Ok(Interpreter {
                explanation: format!("interpreterPath `{written}` ({})", program.display()),
                program,
            });
        }
        return Err(missing_interpreter(
            written,
            &format!("{} does not exist", program.display()),
        ));
    }
    if let Some(program) = find_on_path(written, path_var) {
        return Ok(Interpreter {
            explanation: format!(
                "interpreterPath `{written}` found on PATH as {}",
                program.display()
            ),
            program,
        });
    }
    if written == "python"
        && let Some(program) = find_on_path("python3", path_var)
    {
        return Ok(Interpreter {
            explanation: format!(
                "interpreterPath `python` is not on PATH; using `python3` ({})",
                program.display()
            ),
            program,
        });
    }
    Err(missing_interpreter(written, "it is not on PATH"))
}

fn missing_interpreter(written: &str, why: &str) -> ModelError {
    ModelError::NotFound {
        message: format!("Python interpreter `{written}` not found: {why}"),
        hint: Some(
            "set `environment.python.interpreterPath` in the runconfig to an existing interpreter (e.g. /usr/bin/python3 or .venv/bin/python)"
                .into(),
        ),
    }
}

fn expand_home(path: &str) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => dirs::home_dir().map_or_else(|| PathBuf::from(path), |h| h.join(rest)),
        None => PathBuf::from(path),
    }
}

/// The first executable file named `name` in the `PATH` list.
pub fn find_on_path(name: &str, path_var: Option<&OsStr>) -> Option<PathBuf> {
    let path_var = path_var?;
    std::env::split_paths(path_var)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

impl RunConfig {
    /// The conda file a v1 run with managed dependencies would have built,
    /// parsed; None when dependencies are user-managed or no file is named.
    /// Relative paths are taken from the project folder, as v1 did.
    pub fn managed_conda_dependencies(
        &self,
        project_dir: &Path,
        warnings: &mut Vec<Warning>,
    ) -> Result<Option<CondaDependencies>, ModelError> {
        if self.environment.python.user_managed_dependencies {
            return Ok(None);
        }
        let Some(path) = self.conda_file_path(project_dir) else {
            return Ok(None);
        };
        if !path.is_file() {
            return Err(ModelError::NotFound {
                message: format!(
                    "conda dependencies file {} (environment.python.condaDependenciesFile) not found",
                    path.display()
                ),
                hint: Some(
                    "fix the path (it is relative to the project folder), or set `userManagedDependencies: true` to run with the interpreter as it is"
                        .into(),
                ),
            });
        }
        load(&path, warnings).map(Some)
    }

    /// The interpreter a local run of this runconfig uses (see [`resolve_interpreter`]).
    pub fn local_interpreter(
        &self,
        project_dir: &Path,
        path_var: Option<&OsStr>,
    ) -> Result<Interpreter, ModelError> {
        resolve_interpreter(&self.environment.python, project_dir, path_var)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENERATED: &str = "name: project_environment\ndependencies:\n  # The python interpreter version.\n- python=3.8.13\n\n- pip:\n    # Required packages\n  - azureml-defaults\n\nchannels:\n- anaconda\n- conda-forge\n";

    #[test]
    fn generated_conda_file_gives_python_pin_and_pip_packages() {
        let mut warnings = Vec::new();
        let deps = parse_str(GENERATED, Path::new("c.yml"), &mut warnings).expect("parses");
        assert!(warnings.is_empty());
        assert_eq!(deps.name.as_deref(), Some("project_environment"));
        assert_eq!(deps.python_version.as_deref(), Some("3.8.13"));
        assert_eq!(deps.pip_packages, vec!["azureml-defaults"]);
        assert_eq!(deps.channels, vec!["anaconda", "conda-forge"]);
        assert!(deps.conda_packages.is_empty());
    }

    #[test]
    fn python_pin_is_not_confused_with_python_packages() {
        assert_eq!(python_pin("python-dateutil"), None);
        assert_eq!(python_pin("python"), Some(None));
        assert_eq!(python_pin("python==3.10"), Some(Some("3.10".into())));
        assert_eq!(python_pin("python >=3.9"), Some(Some(">=3.9".into())));
    }

    #[test]
    fn python_version_matches_as_far_as_the_pin_goes() {
        let deps = CondaDependencies {
            python_version: Some("3.8".into()),
            ..Default::default()
        };
        assert!(deps.python_version_matches("3.8.10"));
        assert!(!deps.python_version_matches("3.10.1"));
        let exact = CondaDependencies {
            python_version: Some("3.8.13".into()),
            ..Default::default()
        };
        assert!(!exact.python_version_matches("3.8.10"));
    }

    #[test]
    fn nested_non_pip_mapping_is_an_error_with_position() {
        let mut warnings = Vec::new();
        let err = parse_str(
            "dependencies:\n- conda: [x]\n",
            Path::new("c.yml"),
            &mut warnings,
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("c.yml:2:3:"), "{err}");
    }

    fn executable(dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, "#!/bin/sh\n").expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        path
    }

    fn section(interpreter: &str) -> PythonSection {
        PythonSection {
            interpreter_path: interpreter.into(),
            ..PythonSection::default()
        }
    }

    #[test]
    fn bare_python_falls_back_to_python3_on_path() {
        let bin = tempfile::tempdir().expect("tempdir");
        let python3 = executable(bin.path(), "python3");
        let found = resolve_interpreter(
            &section("python"),
            Path::new("/p"),
            Some(bin.path().as_os_str()),
        )
        .expect("found");
        assert_eq!(found.program, python3);
        assert!(found.explanation.contains("using `python3`"));
        let err = resolve_interpreter(
            &section("pypy"),
            Path::new("/p"),
            Some(bin.path().as_os_str()),
        )
        .unwrap_err();
        assert!(err.to_string().contains("`pypy` not found"));
    }

    #[test]
    fn relative_interpreter_is_taken_from_the_project_folder() {
        let project = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(project.path().join(".venv/bin")).expect("mkdir");
        let venv = executable(&project.path().join(".venv/bin"), "python");
        let found =
            resolve_interpreter(&section(".venv/bin/python"), project.path(), None).expect("found");
        assert_eq!(found.program, venv);
        assert!(resolve_interpreter(&section("venv2/bin/python"), project.path(), None).is_err());
    }

    #[test]
    fn non_executable_file_on_path_is_skipped() {
        let bin = tempfile::tempdir().expect("tempdir");
        std::fs::write(bin.path().join("python"), "").expect("write");
        assert_eq!(find_on_path("python", Some(bin.path().as_os_str())), None);
    }
}
