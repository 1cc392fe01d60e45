//! v1 `run` commands over v2 jobs: `run show`, `run list`, `run cancel`,
//! `run download-logs`. Runs are printed with the v1 RunDto keys scripts
//! parse (`runId`, `status`, `target`, `startTimeUtc`, …).

use super::{ArmError, AzureWorkspace, encode_segment};
use crate::workspace::{RunFilter, WorkspaceError, WsResult};
use reqwest::{Method, Url};
use serde_json::{Value, json};
use std::path::{Component, Path, PathBuf};

fn arm(e: ArmError) -> WorkspaceError {
    WorkspaceError::Other(anyhow::Error::new(e))
}

/// `run show -r ID`.
pub async fn show_run(ws: &AzureWorkspace, run_id: &str) -> WsResult<Value> {
    let job = get_job(ws, run_id).await?;
    let details = run_details(ws, run_id).await.unwrap_or(Value::Null);
    Ok(run_dto(ws, run_id, &job, &details))
}

/// `run cancel -r ID`: request cancellation (the service finishes it asynchronously).
pub async fn cancel_run(ws: &AzureWorkspace, run_id: &str) -> WsResult<Value> {
    let client = ws.client().map_err(arm)?;
    let url = client.url(
        &format!("{}/jobs/{run_id}/cancel", ws.workspace_path()),
        &[],
    );
    client.call(Method::POST, url, None).await.map_err(arm)?;
    let job = get_job(ws, run_id).await?;
    Ok(run_dto(ws, run_id, &job, &Value::Null))
}

/// `run update -r ID --add-tag k[=v]`: Run History's tag PATCH (v2 jobs are immutable).
pub async fn add_run_tags(
    ws: &AzureWorkspace,
    run_id: &str,
    tags: &[(String, String)],
) -> WsResult<Value> {
    let job = get_job(ws, run_id).await?;
    let experiment = job["properties"]["experimentName"]
        .as_str()
        .unwrap_or("Default")
        .to_string();
    let suffix = format!(
        "/experiments/{}/runs/{}/tags",
        encode_segment(&experiment),
        encode_segment(run_id)
    );
    let url = super::history::data_plane_url(ws, "history/v1.0", &suffix).await?;
    let modify: serde_json::Map<String, Value> =
        tags.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let body = json!({"tagsToModify": modify});
    ws.client()
        .map_err(arm)?
        .call(Method::PATCH, url, Some(&body))
        .await
        .map_err(arm)?;
    show_run(ws, run_id).await
}

/// `run list`: the workspace's jobs, newest first, filtered like v1.
pub async fn list_runs(ws: &AzureWorkspace, filter: &RunFilter) -> WsResult<Vec<Value>> {
    if filter.last == 0 {
        return Ok(Vec::new());
    }
    let client = ws.client().map_err(arm)?;
    let mut jobs = match &filter.parent_run_id {
        Some(parent) => child_runs(ws, parent).await?,
        None => {
            let url = client.url(&format!("{}/jobs", ws.workspace_path()), &[]);
            client.list(url, Method::GET, "value").await.map_err(arm)?
        }
    };
    jobs.retain(|job| matches_filter(job, filter));
    jobs.sort_by_key(|job| std::cmp::Reverse(created_at(job)));
    jobs.truncate(filter.last);
    Ok(jobs
        .iter()
        .map(|job| {
            let id = job["name"].as_str().unwrap_or_default();
            run_dto(ws, id, job, &job["runHistory"])
        })
        .collect())
}

/// `run list --parent-run-id P`: P's children from Run History (v2 has no
/// jobs-by-parent query), shaped like jobs so the same filters apply; the
/// Run History record rides along under `runHistory` for the run's times.
async fn child_runs(ws: &AzureWorkspace, parent: &str) -> WsResult<Vec<Value>> {
    let parent_job = get_job(ws, parent).await?;
    let experiment = parent_job["properties"]["experimentName"].clone();
    let client = ws.client().map_err(arm)?;
    let suffix = format!("/runs/{}/children", encode_segment(parent));
    let first = super::history::data_plane_url(ws, "history/v1.0", &suffix).await?;
    let mut children = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut url = first.clone();
    loop {
        let page = client.get(url).await.map_err(arm)?;
        children.extend(page["value"].as_array().into_iter().flatten().cloned());
        let Some(token) = page["continuationToken"].as_str().filter(|t| !t.is_empty()) else {
            break;
        };
        if !seen.insert(token.to_string()) {
            return Err(WorkspaceError::Invalid(
                "Run History sent the same continuation token twice".into(),
            ));
        }
        url = first.clone();
        url.query_pairs_mut()
            .append_pair("$continuationtoken", token);
    }
    Ok(children
        .into_iter()
        .map(|run| child_as_job(run, &experiment))
        .collect())
}

/// A Run History run in the shape of a v2 job (the fields `run list` reads).
fn child_as_job(run: Value, experiment: &Value) -> Value {
    let created = run["createdUtc"]
        .as_str()
        .or_else(|| run["startTimeUtc"].as_str())
        .map(String::from);
    json!({
        "name": run["runId"],
        "properties": {
            "status": run["status"],
            "experimentName": experiment,
            "computeId": run["target"],
            "tags": run["tags"],
            "properties": run["properties"],
        },
        "systemData": {"createdAt": created},
        "runHistory": run,
    })
}

fn matches_filter(job: &Value, filter: &RunFilter) -> bool {
    let props = &job["properties"];
    let same = |value: &Value, wanted: &Option<String>| match wanted {
        Some(w) => value.as_str().is_some_and(|v| v.eq_ignore_ascii_case(w)),
        None => true,
    };
    let target_ok = match &filter.compute_target {
        Some(t) => props["computeId"]
            .as_str()
            .is_some_and(|c| compute_name(c) == *t),
        None => true,
    };
    let tags_ok = filter
        .tags
        .iter()
        .all(|t| t.matches(props["tags"][&t.key].as_str()));
    same(&props["experimentName"], &filter.experiment)
        && same(&props["status"], &filter.status)
        && target_ok
        && tags_ok
}

fn created_at(job: &Value) -> String {
    job["systemData"]["createdAt"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// `run download-logs -r ID -d DIR`: every log file of the run, by its name.
pub async fn download_logs(
    ws: &AzureWorkspace,
    run_id: &str,
    output_dir: &Path,
) -> WsResult<Value> {
    let details = run_details(ws, run_id).await?;
    let Some(files) = details["logFiles"].as_object() else {
        return Ok(json!([]));
    };
    let http = reqwest::Client::new();
    let mut written = Vec::new();
    for (name, url) in files {
        let (Some(url), Some(target)) = (url.as_str(), safe_join(output_dir, name)) else {
            continue;
        };
        let bytes = fetch(&http, url)
            .await
            .map_err(|e| WorkspaceError::Invalid(format!("cannot download log {name}: {e}")))?;
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| WorkspaceError::Other(e.into()))?;
        }
        std::fs::write(&target, bytes).map_err(|e| WorkspaceError::Other(e.into()))?;
        written.push(json!(target.display().to_string()));
    }
    Ok(Value::Array(written))
}

/// A log name from the service joined under `dir`, refusing `..` and absolute parts.
fn safe_join(dir: &Path, name: &str) -> Option<PathBuf> {
    let relative = Path::new(name);
    relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| dir.join(relative))
}

async fn fetch(http: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status().as_u16()));
    }
    Ok(response
        .bytes()
        .await
        .map_err(|e| e.without_url().to_string())?
        .to_vec())
}

async fn get_job(ws: &AzureWorkspace, run_id: &str) -> WsResult<Value> {
    let client = ws.client().map_err(arm)?;
    let url = client.url(&format!("{}/jobs/{run_id}", ws.workspace_path()), &[]);
    match client.get_optional(url).await.map_err(arm)? {
        Some(job) => Ok(job),
        None => Err(WorkspaceError::NotFound {
            kind: "run",
            name: run_id.to_string(),
        }),
    }
}

/// Run History `runs/{id}/details` (status times, log file SAS URLs).
pub async fn run_details(ws: &AzureWorkspace, run_id: &str) -> WsResult<Value> {
    let suffix = format!("/runs/{}/details", encode_segment(run_id));
    let url = super::history::data_plane_url(ws, "history/v1.0", &suffix).await?;
    ws.client().map_err(arm)?.get(url).await.map_err(arm)
}

/// The Run History host from the workspace's `discoveryUrl` (its `api` entry).
pub async fn history_base(ws: &AzureWorkspace) -> Option<Url> {
    let client = ws.client().ok()?;
    let workspace = client
        .get(client.url(&ws.workspace_path(), &[]))
        .await
        .ok()?;
    let discovery = workspace["properties"]["discoveryUrl"].as_str()?;
    let body = reqwest::get(discovery).await.ok()?.bytes().await.ok()?;
    let answer: Value = serde_json::from_slice(&body).ok()?;
    let mut api = Url::parse(answer["api"].as_str()?).ok()?;
    if !api.path().ends_with('/') {
        let path = format!("{}/", api.path());
        api.set_path(&path);
    }
    Some(api)
}

/// The v1 RunDto keys scripts parse, from the job (and Run History details when known).
pub fn run_dto(ws: &AzureWorkspace, run_id: &str, job: &Value, details: &Value) -> Value {
    let props = &job["properties"];
    let text = |v: &Value| v.as_str().map(String::from);
    json!({
        "runId": run_id,
        "status": text(&props["status"]).or_else(|| text(&details["status"])).unwrap_or_else(|| "NotStarted".into()),
        "target": props["computeId"].as_str().map(compute_name).or_else(|| text(&details["target"])),
        "startTimeUtc": details["startTimeUtc"],
        "endTimeUtc": details["endTimeUtc"],
        "experimentName": props["experimentName"],
        "parentRunId": details["parentRunId"],
        "runType": if props["jobType"] == "Sweep" { "hyperdrive" } else { "azureml.scriptrun" },
        "properties": props["properties"],
        "tags": props["tags"],
        "portalUrl": studio_url(ws, run_id, job),
    })
}

pub fn compute_name(compute_id: &str) -> String {
    compute_id
        .rsplit('/')
        .next()
        .unwrap_or(compute_id)
        .to_string()
}

/// The Studio link the service gives, else the standard one.
pub fn studio_url(ws: &AzureWorkspace, run_id: &str, job: &Value) -> String {
    job["properties"]["services"]["Studio"]["endpoint"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| {
            format!(
                "https://ml.azure.com/runs/{run_id}?wsid={}",
                ws.workspace_path()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_names_cannot_escape_the_download_folder() {
        let dir = Path::new("/tmp/logs");
        assert_eq!(
            safe_join(dir, "user_logs/std_log.txt"),
            Some(dir.join("user_logs/std_log.txt"))
        );
        assert_eq!(safe_join(dir, "../etc/passwd"), None);
        assert_eq!(safe_join(dir, "/etc/passwd"), None);
    }
}
