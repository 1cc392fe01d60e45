//! Run History data-plane features without a v2 ARM equivalent: experiments
//! (`experiment list`/`create`) and run metrics (`run metrics`). The host is
//! the workspace's `discoveryUrl` `api` entry, as for run details.

use super::runs::history_base;
use super::{ArmError, AzureWorkspace, encode_segment};
use crate::workspace::{WorkspaceError, WsResult};
use reqwest::{Method, Url};
use serde_json::{Map, Value, json};
use std::collections::HashSet;

/// Run History's own api-version (the data plane is not versioned like ARM).
const HISTORY_API_VERSION: &str = "v1.0";

fn arm(e: ArmError) -> WorkspaceError {
    WorkspaceError::Other(anyhow::Error::new(e))
}

/// `<api host>/<service>/v?.0/subscriptions/…/workspaces/NAME<suffix>?api-version=v1.0`.
pub(crate) async fn data_plane_url(
    ws: &AzureWorkspace,
    service: &str,
    suffix: &str,
) -> WsResult<Url> {
    let base = history_base(ws)
        .await
        .ok_or_else(|| WorkspaceError::Failed {
            message: "the workspace has no Run History endpoint (discoveryUrl)".into(),
            hint: Some(
                "check that the workspace exists and `workspace show` lists a discoveryUrl".into(),
            ),
        })?;
    data_plane_url_at(&base, service, &ws.workspace_path(), suffix)
        .ok_or_else(|| WorkspaceError::Invalid(format!("bad Run History URL for {suffix}")))
}

/// The same URL from a known host. Every `RunHistory.*` operation in the
/// schema takes `api-version=v1.0` as a required query parameter, the
/// `metric/v2.0` ones included (the version in the path is the service's).
pub(crate) fn data_plane_url_at(
    base: &Url,
    service: &str,
    ws_path: &str,
    suffix: &str,
) -> Option<Url> {
    let mut url = base.join(&format!("{service}{ws_path}{suffix}")).ok()?;
    url.query_pairs_mut()
        .append_pair("api-version", HISTORY_API_VERSION);
    Some(url)
}

/// POST a query body page after page, following `continuationToken` (which
/// Run History pages by instead of `nextLink`); returns every `value` item.
async fn post_all_pages(ws: &AzureWorkspace, url: Url, body: Value) -> WsResult<Vec<Value>> {
    let client = ws.client().map_err(arm)?;
    let mut items = Vec::new();
    let mut seen = HashSet::new();
    let mut request = body;
    loop {
        let page = client
            .call(Method::POST, url.clone(), Some(&request))
            .await
            .map_err(arm)?
            .body;
        if let Some(values) = page["value"].as_array() {
            items.extend(values.iter().cloned());
        }
        let Some(token) = page["continuationToken"].as_str().filter(|t| !t.is_empty()) else {
            return Ok(items);
        };
        if !seen.insert(token.to_string()) {
            return Err(WorkspaceError::Invalid(
                "Run History sent the same continuation token twice".into(),
            ));
        }
        request["continuationToken"] = json!(token);
    }
}

/// `experiment list`: every active experiment of the workspace.
pub async fn list_experiments(ws: &AzureWorkspace) -> WsResult<Vec<Value>> {
    let url = data_plane_url(ws, "history/v1.0", "/experiments:query").await?;
    post_all_pages(ws, url, json!({"viewType": "ActiveOnly"})).await
}

/// `experiment create -n NAME`: idempotent; `false` when it already existed.
pub async fn create_experiment(ws: &AzureWorkspace, name: &str) -> WsResult<(Value, bool)> {
    if name.trim().is_empty() {
        return Err(WorkspaceError::Invalid(
            "experiment name must not be empty".into(),
        ));
    }
    let suffix = format!("/experiments/{}", encode_segment(name));
    let url = data_plane_url(ws, "history/v1.0", &suffix).await?;
    let client = ws.client().map_err(arm)?;
    if let Some(existing) = client.get_optional(url.clone()).await.map_err(arm)? {
        return Ok((existing, false));
    }
    match client.call(Method::POST, url.clone(), None).await {
        Ok(created) => Ok((created.body, true)),
        // Created by someone else between our GET and POST: still idempotent.
        Err(ArmError::Service { status: 409, .. }) => {
            Ok((client.get(url).await.map_err(arm)?, false))
        }
        Err(e) => Err(arm(e)),
    }
}

/// `run metrics -r ID`: `{name: value}` for one value, `{name: [values…]}` for several,
/// the shape the local backend prints.
pub async fn run_metrics(ws: &AzureWorkspace, run_id: &str) -> WsResult<Value> {
    let run = format!("/runs/{}", encode_segment(run_id));
    let list_url = data_plane_url(ws, "metric/v2.0", &format!("{run}/list")).await?;
    let definitions = post_all_pages(ws, list_url, json!({})).await?;
    let full_url = data_plane_url(ws, "metric/v2.0", &format!("{run}/full")).await?;
    let mut metrics = Map::new();
    for definition in &definitions {
        let Some(name) = definition["metricKey"]["name"].as_str() else {
            continue;
        };
        let mut request = json!({"metricName": name});
        if let Some(namespace) = definition["metricKey"]["namespace"].as_str() {
            request["metricNamespace"] = json!(namespace);
        }
        let points = post_all_pages(ws, full_url.clone(), request).await?;
        let mut values: Vec<Value> = points.iter().map(|p| point_value(name, p)).collect();
        let value = match values.len() {
            0 => continue,
            1 => values.remove(0),
            _ => Value::Array(values),
        };
        metrics.insert(name.to_string(), value);
    }
    Ok(Value::Object(metrics))
}

/// A MetricV2 value's number: its `data` column named like the metric, else its
/// only column, else the whole row (table metrics).
fn point_value(name: &str, point: &Value) -> Value {
    let data = &point["data"];
    if let Some(value) = data.get(name) {
        return value.clone();
    }
    match data.as_object() {
        Some(columns) if columns.len() == 1 => columns.values().next().cloned().unwrap_or_default(),
        _ => data.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metric_point_is_its_named_column_or_its_only_column_or_the_row() {
        assert_eq!(
            point_value("acc", &json!({"data": {"acc": 0.5}})),
            json!(0.5)
        );
        assert_eq!(point_value("acc", &json!({"data": {"value": 2}})), json!(2));
        let row = json!({"a": 1, "b": 2});
        assert_eq!(point_value("table", &json!({"data": row})), row);
    }
}
