//! v1's ignore rules: `.amlignore` in the source root if present, else
//! `.gitignore` there — only that one file, never nested ones.
//!
//! v1 (azureml-core's `ignore_file.py`) asks `pathspec`'s "gitwildmatch"
//! `PathSpec.match_file` about every path, relative to the root. That differs
//! from git in one way users notice: the *last* pattern matching the path or
//! any of its parent directories decides, so `logs/` followed by
//! `!logs/keep.txt` re-includes `logs/keep.txt`. We reproduce that rule.

use regex::Regex;
use std::path::{Path, PathBuf};

pub const AMLIGNORE: &str = ".amlignore";
pub const GITIGNORE: &str = ".gitignore";

/// One compiled pattern: matches a path or anything below it.
#[derive(Debug)]
struct Rule {
    regex: Regex,
    /// A `!pattern`: matching paths are included again.
    negated: bool,
}

/// The rules of the one ignore file that applies to a source folder.
#[derive(Debug, Default)]
pub struct IgnoreRules {
    rules: Vec<Rule>,
    /// Which file the rules came from (`None`: neither file exists).
    pub file: Option<PathBuf>,
}

impl IgnoreRules {
    /// Read `.amlignore`, else `.gitignore`, from `source`.
    pub fn for_source(source: &Path) -> std::io::Result<Self> {
        for name in [AMLIGNORE, GITIGNORE] {
            let path = source.join(name);
            match std::fs::read(&path) {
                Ok(bytes) => {
                    let text = String::from_utf8_lossy(&bytes);
                    let mut rules = Self::parse(&text);
                    rules.file = Some(path);
                    return Ok(rules);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(Self::default())
    }

    /// Compile the lines of an ignore file. Lines that cannot match anything
    /// (comments, blanks, `/`, unclosed `[`) are dropped, as pathspec does.
    pub fn parse(text: &str) -> Self {
        let rules = text.lines().filter_map(compile_line).collect();
        Self { rules, file: None }
    }

    /// True when some pattern re-includes paths (then excluded directories
    /// must still be walked, since a file below may come back).
    pub fn has_negations(&self) -> bool {
        self.rules.iter().any(|r| r.negated)
    }

    /// Is `relative` (forward slashes, no trailing slash) excluded?
    pub fn is_excluded(&self, relative: &str) -> bool {
        self.rules
            .iter()
            .rev()
            .find(|r| r.regex.is_match(relative))
            .is_some_and(|r| !r.negated)
    }
}

fn compile_line(line: &str) -> Option<Rule> {
    // Trailing spaces go unless escaped; leading spaces stay (git does too).
    let line = if line.ends_with("\\ ") {
        line
    } else {
        line.trim_end()
    };
    if line.is_empty() || line.starts_with('#') || line == "/" {
        return None;
    }
    let (negated, pattern) = match line.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let regex = pattern_regex(pattern)?;
    Regex::new(&regex).ok().map(|regex| Rule { regex, negated })
}

/// gitwildmatch → regex. The result matches the path itself or, through a
/// trailing `(/|$)`, everything below it; a pattern ending in `/` only what
/// is below a matching directory.
fn pattern_regex(pattern: &str) -> Option<String> {
    let mut segs: Vec<&str> = pattern.split('/').collect();
    let dir_only = segs.last() == Some(&"");
    if segs[0].is_empty() {
        segs.remove(0); // `/foo`: anchored at the root
    } else if (segs.len() == 1 || (segs.len() == 2 && segs[1].is_empty())) && segs[0] != "**" {
        segs.insert(0, "**"); // `foo` or `foo/`: at any depth
    }
    if segs.is_empty() {
        return None;
    }
    if let Some(last) = segs.last_mut()
        && last.is_empty()
    {
        *last = "**";
    }
    segs.dedup_by(|a, b| *a == "**" && *b == "**");
    match segs.as_slice() {
        ["**"] => return Some(if dir_only { "/".into() } else { ".".into() }),
        ["**", "*"] => return Some(".".into()),
        ["**", "*", "**"] => return Some("/".into()),
        _ => {}
    }
    let end = segs.len() - 1;
    let mut out = String::new();
    let mut need_slash = false;
    for (i, seg) in segs.iter().enumerate() {
        if *seg == "**" {
            if i == 0 {
                out.push_str("^(?:.+/)?");
            } else if i < end {
                out.push_str("(?:/.+)?");
                need_slash = true;
            } else {
                out.push('/');
            }
            continue;
        }
        if i == 0 {
            out.push('^');
        }
        if need_slash {
            out.push('/');
        }
        if *seg == "*" {
            out.push_str("[^/]+");
        } else {
            out.push_str(&segment_glob(seg)?);
        }
        if i == end {
            out.push_str("(?:/|$)");
        }
        need_slash = true;
    }
    Some(out)
}

/// One path segment's glob (`*`, `?`, `[...]`, `\x`) as a regex.
fn segment_glob(glob: &str) -> Option<String> {
    let chars: Vec<char> = glob.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '\\' => {
                if let Some(&next) = chars.get(i) {
                    out.push_str(&regex::escape(&next.to_string()));
                    i += 1;
                }
            }
            '*' => out.push_str("[^/]*"),
            '?' => out.push_str("[^/]"),
            '[' => {
                // An unclosed `[` makes the whole pattern invalid: git and
                // pathspec discard it.
                let (class, next) = bracket(&chars, i)?;
                out.push_str(&class);
                i = next;
            }
            c => out.push_str(&regex::escape(&c.to_string())),
        }
    }
    Some(out)
}

/// A `[...]` expression starting after `[` at `start`: the regex class and the
/// index after `]`, or `None` when it never closes.
fn bracket(chars: &[char], start: usize) -> Option<(String, usize)> {
    let mut j = start;
    if matches!(chars.get(j), Some('!' | '^')) {
        j += 1;
    }
    if chars.get(j) == Some(&']') {
        j += 1;
    }
    while j < chars.len() && chars[j] != ']' {
        j += 1;
    }
    if j >= chars.len() {
        return None;
    }
    let mut body = &chars[start..j];
    let mut class = String::from("[");
    if matches!(body.first(), Some('!' | '^')) {
        class.push('^');
        body = &body[1..];
    }
    for (k, c) in body.iter().enumerate() {
        let is_range = *c == '-' && k > 0 && k + 1 < body.len();
        if is_range {
            class.push('-');
        } else if c.is_ascii_punctuation() {
            class.push('\\');
            class.push(*c);
        } else {
            class.push(*c);
        }
    }
    class.push(']');
    Some((class, j + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn excluded(rules: &str, path: &str) -> bool {
        IgnoreRules::parse(rules).is_excluded(path)
    }

    #[test]
    fn patterns_match_like_pathspec_gitwildmatch() {
        let cases = [
            ("foo", "foo", true),
            ("foo", "a/foo", true),
            ("foo", "a/foo/b.txt", true),
            ("foo", "foobar", false),
            ("foo/", "foo", false),
            ("foo/", "foo/x", true),
            ("foo/", "a/foo/x", true),
            ("/foo", "a/foo", false),
            ("/foo", "foo/x", true),
            ("a/b", "a/b", true),
            ("a/b", "x/a/b", false),
            ("*.log", "x/y.log", true),
            ("*.log", "y.log/inner", true),
            ("*.log", "y.txt", false),
            ("a/**/b", "a/b", true),
            ("a/**/b", "a/x/y/b", true),
            ("**/b", "x/b", true),
            ("a/**", "a/x", true),
            ("a/**", "a", false),
            ("*", "anything/at/all", true),
            ("ba?", "bar", true),
            ("ba[rz]", "baz", true),
            ("ba[!rz]", "baz", false),
            ("ba[", "ba[", false),
            ("\\#hash", "#hash", true),
            ("# comment", "# comment", false),
            ("trailing   ", "trailing", true),
            ("[]a]x", "ax", true),
            ("[]a]x", "]x", true),
            ("[a-c]x", "bx", true),
            ("[a-c]x", "dx", false),
            ("**/", "a", false),
            ("**/", "a/b", true),
            ("*/", "a", false),
            ("*/", "a/b", true),
            ("\\!x", "!x", true),
            ("  lead", "  lead", true),
            ("  lead", "lead", false),
            ("a/*/b", "a/x/b", true),
            ("a/*/b", "a/b", false),
            ("a/*", "a/x/y", true),
            ("*.py[co]", "x.pyc", true),
            ("dir/*.txt", "dir/sub/a.txt", false),
            ("**", "x", true),
        ];
        for (rule, path, want) in cases {
            assert_eq!(excluded(rule, path), want, "{rule:?} vs {path:?}");
        }
    }

    #[test]
    fn last_matching_pattern_wins_even_below_an_excluded_directory() {
        let rules = "logs/\n!logs/keep.txt\n";
        assert!(excluded(rules, "logs/debug.txt"));
        assert!(!excluded(rules, "logs/keep.txt"));
        let rules = "!logs/keep.txt\nlogs/\n";
        assert!(excluded(rules, "logs/keep.txt"));
    }
}
