//! Scrubbing secrets out of what `--debug` logs: bearer tokens, keys,
//! passwords, SAS signatures. Everything logged about a request goes through here.

use serde_json::Value;

const MASK: &str = "***";

/// Header values that must never be logged.
pub fn header_value(name: &str, value: &str) -> String {
    if is_secret_name(name) || name.eq_ignore_ascii_case("authorization") {
        MASK.to_string()
    } else {
        text(value)
    }
}

/// JSON key names whose values are secret (matched case-insensitively, by substring).
fn is_secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "key",
        "passphrase",
        "connectionstring",
        "authorization",
        "credential",
        "cert",
    ]
    .iter()
    .any(|s| lower.contains(s))
        && !lower.ends_with("type")
        && !lower.ends_with("expires")
}

/// A copy of `value` with every secret-named field masked and every SAS `sig=` scrubbed.
pub fn json(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let masked = match v {
                        Value::String(_) | Value::Number(_) if is_secret_name(k) => {
                            Value::String(MASK.into())
                        }
                        other => json(other),
                    };
                    (k.clone(), masked)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(json).collect()),
        Value::String(s) => Value::String(text(s)),
        other => other.clone(),
    }
}

/// Free text (URLs, bodies that are not JSON): scrub SAS signatures and bearer tokens.
pub fn text(s: &str) -> String {
    let mut out = scrub_after(s, "sig=", |c| c == '&' || c == '"' || c.is_whitespace());
    out = scrub_after(&out, "Bearer ", |c| c == '"' || c.is_whitespace());
    out
}

/// Replace what follows each (case-insensitive) `marker` up to `stop` with the mask.
fn scrub_after(s: &str, marker: &str, stop: impl Fn(char) -> bool) -> String {
    let lower = s.to_ascii_lowercase();
    let marker_lower = marker.to_ascii_lowercase();
    let mut out = String::with_capacity(s.len());
    let mut pos = 0;
    while let Some(found) = lower[pos..].find(&marker_lower) {
        let value_start = pos + found + marker.len();
        out.push_str(&s[pos..value_start]);
        let value_len = s[value_start..]
            .find(&stop)
            .unwrap_or(s.len() - value_start);
        if value_len > 0 {
            out.push_str(MASK);
        }
        pos = value_start + value_len;
    }
    out.push_str(&s[pos..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sas_signature_is_scrubbed_but_rest_of_url_kept() {
        let url = "https://a.blob.core.windows.net/c/b?sv=2020&SIG=abc%2Fdef&se=1";
        assert_eq!(
            text(url),
            "https://a.blob.core.windows.net/c/b?sv=2020&SIG=***&se=1"
        );
    }

    #[test]
    fn nested_passwords_and_keys_are_masked() {
        let body = json!({"properties": {"properties": {"userAccountCredentials": {
            "adminUserName": "azureuser", "adminUserPassword": "hunter2"}}},
            "primaryKey": "k1", "computeType": "AmlCompute"});
        let out = json(&body).to_string();
        assert!(!out.contains("hunter2") && !out.contains("k1"));
        assert!(out.contains("azureuser") && out.contains("AmlCompute"));
    }

    #[test]
    fn authorization_header_is_masked() {
        assert_eq!(header_value("Authorization", "Bearer eyJ0"), MASK);
        assert_eq!(header_value("x-ms-request-id", "abc"), "abc");
    }
}
