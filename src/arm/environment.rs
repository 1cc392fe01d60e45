//! Which v2 environment a runconfig's `environment` section means: a curated or
//! registered one to reference, or an anonymous EnvironmentVersion built from
//! the docker image and conda file, named and versioned by content so an
//! unchanged environment is reused instead of rebuilt.

use super::jobs::{JobSpecError, SpecResult};
use crate::model::runconfig::Environment;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The name the Python SDK gives anonymous environments; sharing it lets both
/// tools find each other's builds.
pub const ANONYMOUS_ENV_NAME: &str = "CliV2AnonymousEnvironment";

/// Image used when the runconfig names none (v1's default image is retired).
pub const DEFAULT_IMAGE: &str = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest";

/// An environment to PUT: `…/environments/{name}/versions/{version}` with `body`.
#[derive(Debug, Clone, PartialEq)]
pub struct AnonymousEnvironment {
    pub name: String,
    pub version: String,
    pub body: Value,
}

/// What to do about the environment before submitting the job.
#[derive(Debug, Clone, PartialEq)]
pub enum EnvironmentPlan {
    /// `environment.assetId`: an environment referenced by its id as is
    /// (`azureml://registries/…/versions/1` or an ARM id).
    Asset(String),
    /// A curated (`AzureML-…`) environment: always referenced (version None = latest).
    Curated {
        name: String,
        version: Option<String>,
    },
    /// `name` + `version` given: reference it when it exists, else create `fallback`.
    Registered {
        name: String,
        version: String,
        fallback: AnonymousEnvironment,
    },
    /// Only an image/conda description: create (or reuse) the anonymous version.
    Anonymous(AnonymousEnvironment),
}

/// Decide the plan. `conda_text` is `python.condaDependenciesFile` as the SDK
/// sends it (`conda::sdk_conda_text` of the file, read by the caller), ignored
/// when dependencies are user-managed.
pub fn plan(env: &Environment, conda_text: Option<&str>) -> SpecResult<EnvironmentPlan> {
    if let Some(asset) = env
        .asset_id
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
    {
        return Ok(EnvironmentPlan::Asset(asset.to_string()));
    }
    let name = env.name.as_deref().map(str::trim).filter(|n| !n.is_empty());
    let version = env
        .version
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty());
    if let Some(name) = name
        && is_curated(name)
    {
        return Ok(EnvironmentPlan::Curated {
            name: name.to_string(),
            version: version.map(str::to_string),
        });
    }
    let anonymous = anonymous(env, conda_text)?;
    Ok(match (name, version) {
        (Some(name), Some(version)) => EnvironmentPlan::Registered {
            name: name.to_string(),
            version: version.to_string(),
            fallback: anonymous,
        },
        _ => EnvironmentPlan::Anonymous(anonymous),
    })
}

/// Curated environments are the ones Microsoft publishes under the `AzureML-` prefix.
pub fn is_curated(name: &str) -> bool {
    name.len() > 8 && name[..8].eq_ignore_ascii_case("AzureML-")
}

/// The anonymous EnvironmentVersion for an image + optional conda file.
pub fn anonymous(env: &Environment, conda_text: Option<&str>) -> SpecResult<AnonymousEnvironment> {
    if let Some(dockerfile) = env
        .docker
        .base_dockerfile
        .as_deref()
        .filter(|d| !d.trim().is_empty())
    {
        return Err(JobSpecError::Unsupported {
            field: "environment.docker.baseDockerfile".into(),
            value: dockerfile.lines().next().unwrap_or_default().to_string(),
            hint: "register the environment from the Dockerfile once (`az ml environment create \
                   --build`), then name it in the runconfig (environment.name + version)"
                .into(),
        });
    }
    let image = env
        .docker
        .base_image
        .as_deref()
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .unwrap_or(DEFAULT_IMAGE)
        .to_string();
    let conda = if env.python.user_managed_dependencies {
        None
    } else {
        conda_text.filter(|c| !c.trim().is_empty())
    };
    // v1's `docker.platform.os`; a Windows image built as Linux would not start.
    let windows = env
        .docker
        .platform
        .as_ref()
        .is_some_and(|p| p.os.eq_ignore_ascii_case("windows"));
    let mut properties = json!({
        "image": image,
        "isAnonymous": true,
        "osType": if windows { "Windows" } else { "Linux" },
    });
    if let Some(conda) = conda {
        properties["condaFile"] = json!(conda);
    }
    Ok(AnonymousEnvironment {
        name: ANONYMOUS_ENV_NAME.into(),
        version: anonymous_version(&image, conda),
        body: json!({ "properties": properties }),
    })
}

/// The SDK's version hash (`Environment._generate_anonymous_name_version`,
/// azure-ai-ml 1.35.2), quirks included: it uses `str.join`, so the conda
/// hash's characters end up separated by the image hash.
pub fn anonymous_version(image: &str, conda: Option<&str>) -> String {
    let mut hash_str = sha256_hex(image);
    if let Some(conda) = conda {
        let conda_hash = sha256_hex(conda);
        let separator = hash_str;
        hash_str = conda_hash
            .chars()
            .map(String::from)
            .collect::<Vec<_>>()
            .join(&separator);
    }
    sha256_hex(&hash_str)
}

fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// ARM id of a workspace environment version.
pub fn environment_id(workspace_id: &str, name: &str, version: &str) -> String {
    format!("{workspace_id}/environments/{name}/versions/{version}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::runconfig::{DockerSection, PythonSection};

    fn env(name: Option<&str>, version: Option<&str>, image: Option<&str>) -> Environment {
        Environment {
            name: name.map(String::from),
            version: version.map(String::from),
            docker: DockerSection {
                base_image: image.map(String::from),
                ..Default::default()
            },
            python: PythonSection::default(),
            ..Default::default()
        }
    }

    /// `docker.platform.os: Windows` was sent as a Linux environment.
    #[test]
    fn a_windows_platform_makes_a_windows_environment() {
        let mut windows = env(None, None, Some("mcr.microsoft.com/windows/servercore"));
        windows.docker.platform = Some(crate::model::runconfig::Platform {
            os: "Windows".into(),
            architecture: "amd64".into(),
        });
        assert_eq!(
            anonymous(&windows, None).unwrap().body["properties"]["osType"],
            "Windows"
        );
        let linux = env(None, None, None);
        assert_eq!(
            anonymous(&linux, None).unwrap().body["properties"]["osType"],
            "Linux"
        );
    }

    #[test]
    fn curated_names_are_referenced_not_rebuilt() {
        let plan = plan(&env(Some("AzureML-sklearn-1.0"), None, None), None).unwrap();
        assert_eq!(
            plan,
            EnvironmentPlan::Curated {
                name: "AzureML-sklearn-1.0".into(),
                version: None
            }
        );
    }

    #[test]
    fn named_and_versioned_environment_falls_back_to_anonymous() {
        let plan = plan(
            &env(Some("conda-env"), Some("3"), Some("img:1")),
            Some("deps"),
        )
        .unwrap();
        let EnvironmentPlan::Registered { fallback, .. } = plan else {
            panic!("expected Registered, got {plan:?}");
        };
        assert_eq!(fallback.body["properties"]["condaFile"], "deps");
        assert_eq!(fallback.body["properties"]["image"], "img:1");
    }

    #[test]
    fn anonymous_version_changes_with_conda_content_only() {
        let a = anonymous_version("img", Some("x"));
        assert_eq!(a, anonymous_version("img", Some("x")));
        assert_ne!(a, anonymous_version("img", Some("y")));
        assert_ne!(a, anonymous_version("img", None));
    }

    #[test]
    fn anonymous_version_matches_the_python_sdk_join_quirk() {
        // Pinned from azure-ai-ml 1.35.2's Environment._generate_anonymous_name_version
        // (get_sha256_string + str.join), run once in Python.
        assert_eq!(
            anonymous_version("img", Some("x")),
            "85f71c824577be1fe75b2d08af50fbdd2cb0bab9ec00a7f0de5d719d284541c7"
        );
        assert_eq!(
            anonymous_version("img", None),
            "ad1e8a8a4f261db6877f275a5cdb955d5153bef8adf8d9d6cbcde7da840e48c5"
        );
    }

    #[test]
    fn user_managed_dependencies_send_no_conda_file() {
        let mut e = env(None, None, Some("img"));
        e.python.user_managed_dependencies = true;
        let anon = anonymous(&e, Some("deps")).unwrap();
        assert!(anon.body["properties"].get("condaFile").is_none());
    }

    #[test]
    fn dockerfile_environments_are_an_error_naming_the_field() {
        let mut e = env(None, None, None);
        e.docker.base_dockerfile = Some("FROM ubuntu".into());
        let err = anonymous(&e, None).unwrap_err().to_string();
        assert!(err.contains("environment.docker.baseDockerfile"), "{err}");
    }
}
