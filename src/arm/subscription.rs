//! The default subscription when neither a flag nor the config names one:
//! `AZURE_SUBSCRIPTION_ID`, else the az CLI's default, read straight from
//! `~/.azure/azureProfile.json` (no `az` spawn; the file starts with a UTF-8 BOM).

use std::path::{Path, PathBuf};

/// `AZURE_SUBSCRIPTION_ID`, else the az CLI default subscription, if any.
pub fn default_subscription() -> Option<String> {
    if let Some(id) = std::env::var("AZURE_SUBSCRIPTION_ID")
        .ok()
        .filter(|s| !s.trim().is_empty())
    {
        return Some(id.trim().to_string());
    }
    az_profile_path().and_then(|p| az_cli_default_subscription(&p))
}

fn az_profile_path() -> Option<PathBuf> {
    let dir = std::env::var("AZURE_CONFIG_DIR")
        .ok()
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".azure")))?;
    Some(dir.join("azureProfile.json"))
}

/// The `isDefault` subscription of an azureProfile.json.
pub fn az_cli_default_subscription(profile: &Path) -> Option<String> {
    let bytes = std::fs::read(profile).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let text = text.trim_start_matches('\u{feff}');
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    v.get("subscriptions")?
        .as_array()?
        .iter()
        .find(|s| s.get("isDefault").and_then(|d| d.as_bool()) == Some(true))
        .and_then(|s| s.get("id")?.as_str().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_with_bom_yields_the_default_subscription() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("azureProfile.json");
        let body = "\u{feff}{\"installationId\":\"x\",\"subscriptions\":[\
            {\"id\":\"aaa\",\"isDefault\":false},{\"id\":\"bbb\",\"isDefault\":true}]}";
        std::fs::write(&p, body).unwrap();
        assert_eq!(az_cli_default_subscription(&p).as_deref(), Some("bbb"));
    }

    #[test]
    fn missing_or_broken_profile_yields_none() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("azureProfile.json");
        assert_eq!(az_cli_default_subscription(&p), None);
        std::fs::write(&p, "{not json").unwrap();
        assert_eq!(az_cli_default_subscription(&p), None);
    }
}
