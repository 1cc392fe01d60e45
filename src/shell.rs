//! POSIX shell quoting for every command line azml hands to a shell: remote
//! commands over `ssh`, a runconfig `command` with extra arguments, and the
//! `command` of an Azure job.
//!
//! `ssh` hands its command to the remote login shell as one string, so every
//! argument, file name and value must be quoted or a space, quote, `$()` or `;`
//! in it would be reinterpreted (shell injection). Single quotes are the only
//! POSIX quoting with no special characters inside, so we use them everywhere.

/// Quote one word so any POSIX shell reads it back verbatim.
///
/// Plain words (letters, digits and `_@%+=:,./-`) are left readable; anything
/// else is wrapped in single quotes, with each `'` written as `'\''`.
pub fn quote(word: &str) -> String {
    if is_plain(word) {
        return word.to_string();
    }
    let mut out = String::with_capacity(word.len() + 2);
    out.push('\'');
    for c in word.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Quote every word and join them with spaces: a ready-to-run command line.
pub fn quote_all<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a shell would read `word` back unchanged without quotes.
pub fn is_plain(word: &str) -> bool {
    !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(&b))
}

/// Whether `name` can be an environment variable name that `export` accepts.
pub fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Runs `printf '%s\n' <quoted words>` through the local `sh` and returns the words it printed.
    fn through_sh(words: &[&str]) -> Vec<String> {
        let script = format!(
            "for a in {}; do printf '%s\\0' \"$a\"; done",
            quote_all(words)
        );
        let out = Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .expect("sh runs");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout)
            .expect("utf8")
            .split_terminator('\0')
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn hostile_words_arrive_verbatim_through_a_real_shell() {
        let words = [
            "plain",
            "with space",
            "it's",
            "$(touch /tmp/azml-pwned)",
            "`id`",
            "a;b",
            "x && y",
            "\"double\"",
            "back\\slash",
            "new\nline",
            "",
            "*",
            "~",
            "-n",
            "ünïcode",
            "'",
            "''",
        ];
        assert_eq!(through_sh(&words), words);
    }

    #[test]
    fn plain_words_stay_readable() {
        assert_eq!(quote("train.py"), "train.py");
        assert_eq!(quote("--lr=0.1"), "--lr=0.1");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn env_names_follow_posix() {
        assert!(is_env_name("MLFLOW_TRACKING_URI"));
        assert!(is_env_name("_x1"));
        assert!(!is_env_name("1X"));
        assert!(!is_env_name("A-B"));
        assert!(!is_env_name(""));
        assert!(!is_env_name("A B"));
    }
}
