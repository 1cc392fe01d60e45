//! Azure clouds by name (as `az cloud list` names them) and the ARM endpoint
//! azml talks to, which `AZML_ARM_ENDPOINT` can point at a test double.

use super::error::ArmError;

/// A sovereign cloud: where ARM lives and which audience its tokens need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cloud {
    pub name: &'static str,
    pub arm_endpoint: &'static str,
    /// The resource the az CLI asks tokens for (`--resource`).
    pub cli_resource: &'static str,
    pub sdk: azure_core::cloud::CloudConfiguration,
}

impl Cloud {
    /// The OAuth scope for ARM in this cloud.
    pub fn scope(&self) -> String {
        format!("{}/.default", self.arm_endpoint)
    }

    /// `--cloud`, else `AZURE_CLOUD`, else the public cloud.
    pub fn resolve(flag: Option<&str>) -> Result<Cloud, ArmError> {
        let env = std::env::var("AZURE_CLOUD").ok();
        match flag.or(env.as_deref()).filter(|s| !s.is_empty()) {
            None => Ok(Self::public()),
            Some(name) => Self::by_name(name),
        }
    }

    pub fn by_name(name: &str) -> Result<Cloud, ArmError> {
        use azure_core::cloud::CloudConfiguration as C;
        match name.to_ascii_lowercase().as_str() {
            "azurecloud" | "public" => Ok(Self::public()),
            "azurechinacloud" | "china" => Ok(Cloud {
                name: "AzureChinaCloud",
                arm_endpoint: "https://management.chinacloudapi.cn",
                cli_resource: "https://management.core.chinacloudapi.cn/",
                sdk: C::AzureChina,
            }),
            "azureusgovernment" | "usgov" => Ok(Cloud {
                name: "AzureUSGovernment",
                arm_endpoint: "https://management.usgovcloudapi.net",
                cli_resource: "https://management.core.usgovcloudapi.net/",
                sdk: C::AzureGovernment,
            }),
            _ => Err(ArmError::Config(format!(
                "unknown cloud '{name}': use AzureCloud, AzureChinaCloud or AzureUSGovernment"
            ))),
        }
    }

    pub fn public() -> Cloud {
        Cloud {
            name: "AzureCloud",
            arm_endpoint: "https://management.azure.com",
            cli_resource: "https://management.core.windows.net/",
            sdk: azure_core::cloud::CloudConfiguration::AzurePublic,
        }
    }
}

/// The ARM base URL: `AZML_ARM_ENDPOINT` if set, else the cloud's. Plain
/// `http://` is refused except for loopback, so a token never crosses a network in clear.
pub fn arm_endpoint(cloud: &Cloud) -> Result<reqwest::Url, ArmError> {
    let raw = std::env::var("AZML_ARM_ENDPOINT")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| cloud.arm_endpoint.to_string());
    let url = reqwest::Url::parse(raw.trim_end_matches('/'))
        .map_err(|e| ArmError::Config(format!("AZML_ARM_ENDPOINT '{raw}' is not a URL: {e}")))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(ArmError::Config(format!(
            "refusing plain http for {raw}: only loopback hosts may use http, use https"
        ))),
        other => Err(ArmError::Config(format!(
            "AZML_ARM_ENDPOINT has unsupported scheme '{other}'"
        ))),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => bare.eq_ignore_ascii_case("localhost"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_names_are_case_insensitive_and_unknown_is_an_error() {
        assert_eq!(
            Cloud::by_name("azurechinacloud").unwrap().arm_endpoint,
            "https://management.chinacloudapi.cn"
        );
        assert_eq!(
            Cloud::by_name("AzureUSGovernment").unwrap().scope(),
            "https://management.usgovcloudapi.net/.default"
        );
        assert!(Cloud::by_name("Mars").is_err());
    }

    #[test]
    fn plain_http_only_for_loopback() {
        let ok = reqwest::Url::parse("http://127.0.0.1:8080").unwrap();
        let ok6 = reqwest::Url::parse("http://[::1]:8080").unwrap();
        let bad = reqwest::Url::parse("http://example.com").unwrap();
        assert!(is_loopback(&ok) && is_loopback(&ok6));
        assert!(!is_loopback(&bad));
    }
}
