//! Git facts about a source directory, recorded as run properties the way
//! Azure ML does (its v2 names and MLflow's), so a run says which code it ran.

use serde_json::{Map, Value};
use std::path::Path;
use std::process::{Command, Stdio};

/// Properties for the repository containing `dir`; empty when `dir` is not in
/// a git work tree or `git` is not installed (silently: git is optional).
pub fn git_properties(dir: &Path) -> Map<String, Value> {
    let mut props = Map::new();
    if !inside_git_work_tree(dir) {
        return props; // no need to spawn git at all (it costs milliseconds per call)
    }
    // Three independent questions: ask them at once (each `git` costs a process start).
    let (head, status, remote) = std::thread::scope(|scope| {
        let status = scope.spawn(|| git(dir, &["status", "--porcelain", "--untracked-files=no"]));
        let remote = scope.spawn(|| git(dir, &["config", "--get", "remote.origin.url"]));
        let head = git(dir, &["rev-parse", "HEAD", "--abbrev-ref", "HEAD"]);
        (
            head,
            status.join().ok().flatten(),
            remote.join().ok().flatten(),
        )
    });
    let Some(head) = head else {
        return props;
    };
    let mut lines = head.lines();
    let (Some(commit), Some(branch)) = (lines.next(), lines.next()) else {
        return props;
    };
    let dirty = status.map(|s| !s.trim().is_empty()).unwrap_or(false);
    let mut put = |k: &str, v: &str| {
        props.insert(k.into(), Value::String(v.into()));
    };
    put("mlflow.source.git.commit", commit);
    put("azureml.git.commit", commit);
    if branch != "HEAD" {
        put("mlflow.source.git.branch", branch);
        put("azureml.git.branch", branch);
    }
    put("azureml.git.dirty", if dirty { "True" } else { "False" });
    if let Some(url) = remote {
        let url = strip_credentials(url.trim());
        put("mlflow.source.git.repoURL", &url);
        put("azureml.git.repository_uri", &url);
    }
    props
}

/// Whether `dir` or a parent has `.git` (a folder, or a file for worktrees/submodules).
fn inside_git_work_tree(dir: &Path) -> bool {
    let start = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    start.ancestors().any(|d| d.join(".git").exists())
}

/// `https://user:token@host/x` → `https://host/x`: credentials never reach run properties.
pub fn strip_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://{host}{path}"),
        None => url.to_string(),
    }
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_remote_urls_are_removed() {
        assert_eq!(
            strip_credentials("https://bob:s3cret@github.com/o/r.git"),
            "https://github.com/o/r.git"
        );
        assert_eq!(
            strip_credentials("git@github.com:o/r.git"),
            "git@github.com:o/r.git"
        );
    }

    #[test]
    fn a_repository_records_commit_branch_and_dirty_flag() {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            Command::new("git")
                .arg("-C")
                .arg(dir.path())
                .args(args)
                .env("GIT_AUTHOR_NAME", "t")
                .env("GIT_AUTHOR_EMAIL", "t@e")
                .env("GIT_COMMITTER_NAME", "t")
                .env("GIT_COMMITTER_EMAIL", "t@e")
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        };
        if !run(&["init", "-q", "-b", "main"]) {
            let required = std::env::var("AZML_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "git is not installed but AZML_TEST_REQUIRE_ALL=1"
            );
            eprintln!("skipped: git is not installed");
            return;
        }
        std::fs::write(dir.path().join("a.txt"), "1").unwrap();
        assert!(run(&["add", "a.txt"]) && run(&["commit", "-qm", "init"]));
        assert!(run(&[
            "remote",
            "add",
            "origin",
            "https://u:pw@example.com/r.git"
        ]));
        let props = git_properties(dir.path());
        assert_eq!(props["mlflow.source.git.branch"], "main");
        assert_eq!(props["azureml.git.dirty"], "False");
        assert_eq!(
            props["mlflow.source.git.commit"].as_str().unwrap().len(),
            40
        );
        assert_eq!(
            props["mlflow.source.git.repoURL"],
            "https://example.com/r.git"
        );
        std::fs::write(dir.path().join("a.txt"), "2").unwrap();
        assert_eq!(git_properties(dir.path())["azureml.git.dirty"], "True");
    }

    #[test]
    fn a_folder_outside_git_has_no_git_properties() {
        let dir = tempfile::tempdir().unwrap();
        assert!(git_properties(dir.path()).is_empty());
    }
}
