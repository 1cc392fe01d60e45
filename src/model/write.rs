//! Writing a runconfig back in v1's layout.
//!
//! The output follows azureml-core 1.57 byte for byte (key order, `key:` for
//! null, `[]`/`{}` for empty collections, block lists at the key's indent), so
//! a file azml writes looks like one v1 wrote and a v1 file read and written
//! back is unchanged. Free-form sections kept as JSON are written in flow
//! style, which is valid YAML.

use super::runconfig::{
    DataLocation, DataReference, DataSpec, DockerSection, Environment, OutputDataSpec, RunConfig,
};
use super::yaml;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Lines of YAML at a current indentation.
struct Writer {
    out: String,
    indent: usize,
}

impl Writer {
    fn line(&mut self, key: &str, value: &str) {
        let pad = " ".repeat(self.indent);
        if value.is_empty() {
            let _ = writeln!(self.out, "{pad}{}:", quote_key(key));
        } else {
            let _ = writeln!(self.out, "{pad}{}: {value}", quote_key(key));
        }
    }

    /// Text (None → null).
    fn text(&mut self, key: &str, value: Option<&str>) {
        let value = value.map(quote).unwrap_or_default();
        self.line(key, &value);
    }

    fn boolean(&mut self, key: &str, value: bool) {
        self.line(key, if value { "true" } else { "false" });
    }

    fn number(&mut self, key: &str, value: Option<impl ToString>) {
        let value = value.map(|v| v.to_string()).unwrap_or_default();
        self.line(key, &value);
    }

    /// A list of text: `[]` when empty, else one `- item` per line at the key's indent.
    fn list(&mut self, key: &str, items: &[String]) {
        if items.is_empty() {
            return self.line(key, "[]");
        }
        self.line(key, "");
        let pad = " ".repeat(self.indent);
        for item in items {
            let _ = writeln!(self.out, "{pad}- {}", quote(item));
        }
    }

    fn text_map(&mut self, key: &str, map: &BTreeMap<String, String>) {
        if map.is_empty() {
            return self.line(key, "{}");
        }
        self.section(key, |w| {
            for (k, v) in map {
                w.line(k, &scalar_or_quoted(v));
            }
        });
    }

    fn json(&mut self, key: &str, value: Option<&serde_json::Value>) {
        match value {
            None | Some(serde_json::Value::Null) => self.line(key, ""),
            Some(serde_json::Value::String(s)) => self.text(key, Some(s)),
            Some(v) => self.line(key, &v.to_string()),
        }
    }

    fn json_list(&mut self, key: &str, items: &[serde_json::Value]) {
        if items.is_empty() {
            return self.line(key, "[]");
        }
        self.line(key, "");
        let pad = " ".repeat(self.indent);
        for item in items {
            let _ = writeln!(self.out, "{pad}- {item}");
        }
    }

    fn section(&mut self, key: &str, body: impl FnOnce(&mut Writer)) {
        self.line(key, "");
        self.indent += 2;
        body(self);
        self.indent -= 2;
    }

    /// A mapping of named entries (`data`, `dataReferences`, …): `{}` when empty.
    fn entries<T>(&mut self, key: &str, map: &BTreeMap<String, T>, each: impl Fn(&mut Writer, &T)) {
        if map.is_empty() {
            return self.line(key, "{}");
        }
        self.section(key, |w| {
            for (name, value) in map {
                w.section(name, |w| each(w, value));
            }
        });
    }
}

/// A string as a YAML scalar that reads back as the same string: plain when
/// that is unambiguous (checked by parsing it), else single-quoted, or
/// double-quoted (JSON escapes) when it holds control characters.
fn quote(value: &str) -> String {
    if value.chars().any(char::is_control) {
        return serde_json::Value::String(value.to_string()).to_string();
    }
    if plain_reads_back_as_text(value) {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', "''"))
    }
}

/// Like [`quote`], but values that read back as numbers or booleans are
/// also written plain: map values such as `spark.yarn.maxAppAttempts: 1`
/// were numbers in v1's file and are text only in azml's model.
fn scalar_or_quoted(value: &str) -> String {
    if value.chars().any(char::is_control) {
        return quote(value);
    }
    match parse_scalar(value) {
        Some(text) if text == value => value.to_string(),
        _ => quote(value),
    }
}

fn quote_key(key: &str) -> String {
    if plain_reads_back_as_text(key) {
        key.to_string()
    } else {
        quote(key)
    }
}

/// Whether `value` written plain parses back as exactly that string (and not
/// as a number, boolean or null, which would change its type).
fn plain_reads_back_as_text(value: &str) -> bool {
    let probe = format!("k: {value}\n");
    let Ok(node) = yaml::parse_str(&probe, Path::new("")) else {
        return false;
    };
    matches!(&node.value, yaml::Value::Map(e) if e.len() == 1
        && matches!(&e[0].value.value, yaml::Value::Str(s) if s == value))
}

/// The text a plain scalar reads back as (numbers and booleans as written).
fn parse_scalar(value: &str) -> Option<String> {
    let probe = format!("k: {value}\n");
    let node = yaml::parse_str(&probe, Path::new("")).ok()?;
    match node.value {
        yaml::Value::Map(e) if e.len() == 1 => e[0].value.scalar_text(),
        _ => None,
    }
}

impl RunConfig {
    /// The runconfig as azureml-core 1.57 writes it (see the module docs).
    pub fn to_v1_yaml(&self) -> String {
        let mut w = Writer {
            out: String::new(),
            indent: 0,
        };
        write_program(&mut w, self);
        w.section("environment", |w| write_environment(w, &self.environment));
        write_sections(&mut w, self);
        write_data(&mut w, self);
        write_tail(&mut w, self);
        w.out
    }

    /// What `az ml folder attach` (azureml-core 1.57) writes as `.azureml/local`
    /// (`docker: false`) or `.azureml/docker` (`docker: true`).
    pub fn v1_attach_template(docker: bool) -> Self {
        let mut rc = RunConfig::default();
        let env = &mut rc.environment;
        env.name = Some("default-environment".into());
        env.environment_variables
            .insert("EXAMPLE_ENV_VAR".into(), "EXAMPLE_VALUE".into());
        env.python.conda_dependencies_file = Some(".azureml/conda_dependencies.yml".into());
        env.docker.enabled = docker;
        rc
    }
}

fn write_program(w: &mut Writer, rc: &RunConfig) {
    w.text("script", rc.script.as_deref());
    w.list("arguments", &rc.arguments);
    w.text("target", Some(&rc.target));
    w.text("framework", Some(&rc.framework));
    w.text("communicator", Some(&rc.communicator));
    w.number("maxRunDurationSeconds", rc.max_run_duration_seconds);
    w.number("nodeCount", Some(rc.node_count));
    w.number("priority", rc.priority);
}

fn write_environment(w: &mut Writer, env: &Environment) {
    w.text("name", env.name.as_deref());
    w.text("version", env.version.as_deref());
    w.text_map("environmentVariables", &env.environment_variables);
    w.section("python", |w| {
        let p = &env.python;
        w.boolean("userManagedDependencies", p.user_managed_dependencies);
        w.text("interpreterPath", Some(&p.interpreter_path));
        w.text(
            "condaDependenciesFile",
            p.conda_dependencies_file.as_deref(),
        );
        w.text("baseCondaEnvironment", p.base_conda_environment.as_deref());
        if p.conda_dependencies.is_some() {
            w.json("condaDependencies", p.conda_dependencies.as_ref());
        }
    });
    w.section("docker", |w| write_docker(w, &env.docker));
    w.section("spark", |w| {
        let s = &env.spark;
        w.list("repositories", &s.repositories);
        if s.packages.is_empty() {
            w.line("packages", "[]");
        } else {
            w.line("packages", "");
            for package in &s.packages {
                let fields = [
                    ("group", &package.group),
                    ("artifact", &package.artifact),
                    ("version", &package.version),
                ];
                for (i, (key, value)) in fields.iter().enumerate() {
                    let pad = " ".repeat(w.indent);
                    let bullet = if i == 0 { "- " } else { "  " };
                    let value = value.as_deref().map(quote).unwrap_or_default();
                    let sep = if value.is_empty() { "" } else { " " };
                    let _ = writeln!(w.out, "{pad}{bullet}{key}:{sep}{value}");
                }
            }
        }
        w.boolean("precachePackages", s.precache_packages);
    });
    w.section("databricks", |w| {
        let d = &env.databricks;
        w.json_list("mavenLibraries", &d.maven_libraries);
        w.json_list("pypiLibraries", &d.pypi_libraries);
        w.json_list("rcranLibraries", &d.rcran_libraries);
        w.json_list("jarLibraries", &d.jar_libraries);
        w.json_list("eggLibraries", &d.egg_libraries);
    });
    w.json("r", env.r.as_ref());
    w.text(
        "inferencingStackVersion",
        env.inferencing_stack_version.as_deref(),
    );
    w.text("assetId", env.asset_id.as_deref());
}

fn write_docker(w: &mut Writer, d: &DockerSection) {
    w.boolean("enabled", d.enabled);
    w.text("baseImage", d.base_image.as_deref());
    w.text("baseDockerfile", d.base_dockerfile.as_deref());
    w.text("buildContext", d.build_context.as_deref());
    w.boolean("sharedVolumes", d.shared_volumes);
    if d.gpu_support {
        w.boolean("gpuSupport", true);
    }
    w.text("shmSize", d.shm_size.as_deref());
    w.list("arguments", &d.arguments);
    w.section("baseImageRegistry", |w| {
        let r = &d.base_image_registry;
        w.text("address", r.address.as_deref());
        w.text("username", r.username.as_deref());
        w.text("password", r.password.as_ref().map(|p| p.expose()));
        w.json("registryIdentity", r.registry_identity.as_ref());
    });
    match &d.platform {
        Some(p) => w.section("platform", |w| {
            w.text("os", Some(&p.os));
            w.text("architecture", Some(&p.architecture));
        }),
        None => w.line("platform", ""),
    }
}

fn write_sections(w: &mut Writer, rc: &RunConfig) {
    w.section("history", |w| {
        w.boolean("outputCollection", rc.history.output_collection);
        w.boolean("snapshotProject", rc.history.snapshot_project);
        w.list("directoriesToWatch", &rc.history.directories_to_watch);
    });
    w.section("spark", |w| {
        w.text_map("configuration", &rc.spark.configuration)
    });
    w.section("docker", |w| {
        w.boolean("useDocker", rc.docker.use_docker);
        w.boolean("sharedVolumes", rc.docker.shared_volumes);
        w.list("arguments", &rc.docker.arguments);
        w.text("shmSize", rc.docker.shm_size.as_deref());
    });
    w.section("hdi", |w| {
        w.text("yarnDeployMode", Some(&rc.hdi.yarn_deploy_mode))
    });
    w.section("tensorflow", |w| {
        w.number("workerCount", Some(rc.tensorflow.worker_count));
        w.number(
            "parameterServerCount",
            Some(rc.tensorflow.parameter_server_count),
        );
    });
    w.section("mpi", |w| {
        w.number("processCountPerNode", Some(rc.mpi.process_count_per_node));
        w.number("nodeCount", Some(rc.mpi.node_count));
    });
    w.section("pytorch", |w| {
        w.text(
            "communicationBackend",
            Some(&rc.pytorch.communication_backend),
        );
        w.number("processCount", rc.pytorch.process_count);
        w.number("nodeCount", Some(rc.pytorch.node_count));
    });
    w.section("paralleltask", |w| {
        let p = &rc.parallel_task;
        w.number("maxRetriesPerWorker", Some(p.max_retries_per_worker));
        w.number("workerCountPerNode", Some(p.worker_count_per_node));
        if p.terminal_exit_codes.is_empty() {
            w.line("terminalExitCodes", "");
        } else {
            let codes: Vec<String> = p.terminal_exit_codes.iter().map(i64::to_string).collect();
            w.line("terminalExitCodes", &format!("[{}]", codes.join(", ")));
        }
    });
}

fn write_data(w: &mut Writer, rc: &RunConfig) {
    w.entries("dataReferences", &rc.data_references, write_data_reference);
    w.entries("data", &rc.data, write_data_spec);
    w.json_list("datacaches", &rc.datacaches);
    w.entries("outputData", &rc.output_data, write_output_data);
    w.text(
        "sourceDirectoryDataStore",
        rc.source_directory_data_store.as_deref(),
    );
}

fn write_data_reference(w: &mut Writer, r: &DataReference) {
    w.text("dataStoreName", r.data_store_name.as_deref());
    w.text("mode", Some(&r.mode));
    w.text("pathOnDataStore", r.path_on_data_store.as_deref());
    w.text("pathOnCompute", r.path_on_compute.as_deref());
    w.boolean("overwrite", r.overwrite);
}

fn write_data_spec(w: &mut Writer, d: &DataSpec) {
    w.section("dataLocation", |w| write_data_location(w, &d.data_location));
    w.boolean("createOutputDirectories", d.create_output_directories);
    w.text("mechanism", Some(&d.mechanism));
    w.text(
        "environmentVariableName",
        Some(&d.environment_variable_name),
    );
    w.text("pathOnCompute", d.path_on_compute.as_deref());
    w.boolean("overwrite", d.overwrite);
    if d.options.is_some() {
        w.json("options", d.options.as_ref());
    }
}

fn write_data_location(w: &mut Writer, l: &DataLocation) {
    match &l.dataset {
        Some(ds) => w.section("dataset", |w| {
            w.text("id", ds.id.as_deref());
            w.text("name", ds.name.as_deref());
            w.text("version", ds.version.as_deref());
        }),
        None => w.line("dataset", ""),
    }
    match &l.datapath {
        Some(dp) => w.section("datapath", |w| {
            w.text("datastoreName", dp.datastore_name.as_deref());
            w.text("relativePath", dp.relative_path.as_deref());
        }),
        None => w.line("datapath", ""),
    }
    if l.uri.is_some() {
        w.json("uri", l.uri.as_ref());
    }
}

fn write_output_data(w: &mut Writer, o: &OutputDataSpec) {
    w.json("outputLocation", Some(&o.output_location));
    w.text("mechanism", o.mechanism.as_deref());
    w.json("additionalOptions", Some(&o.additional_options));
    w.text(
        "environmentVariableName",
        o.environment_variable_name.as_deref(),
    );
}

fn write_tail(w: &mut Writer, rc: &RunConfig) {
    w.section("amlcompute", |w| {
        let a = &rc.amlcompute;
        w.text("vmSize", a.vm_size.as_deref());
        w.text("vmPriority", a.vm_priority.as_deref());
        w.boolean("retainCluster", a.retain_cluster);
        w.text("name", a.name.as_deref());
        w.number("clusterMaxNodeCount", a.cluster_max_node_count);
    });
    w.json(
        "autoClusterComputeSpecification",
        rc.auto_cluster_compute_specification.as_ref(),
    );
    w.section("kubernetescompute", |w| {
        w.text(
            "instanceType",
            rc.kubernetes_compute.instance_type.as_deref(),
        );
    });
    w.boolean("credentialPassthrough", rc.credential_passthrough);
    w.line("command", &quote(rc.command.as_deref().unwrap_or("")));
    w.text_map("environmentVariables", &rc.environment_variables);
    if rc.application_endpoints.is_empty() {
        w.line("applicationEndpoints", "{}");
    } else {
        let map: serde_json::Map<String, serde_json::Value> = rc
            .application_endpoints
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        w.line(
            "applicationEndpoints",
            &serde_json::Value::Object(map).to_string(),
        );
    }
    for (key, value) in &rc.legacy {
        w.json(key, Some(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_that_would_change_type_are_quoted() {
        assert_eq!(quote("train.py"), "train.py");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("true"), "'true'");
        assert_eq!(quote("1"), "'1'");
        assert_eq!(quote("a: b"), "'a: b'");
        assert_eq!(quote("it's # x"), "'it''s # x'");
        assert_eq!(quote("- x"), "'- x'");
        assert_eq!(quote("line\nbreak"), "\"line\\nbreak\"");
        assert_eq!(scalar_or_quoted("1"), "1");
        assert_eq!(
            scalar_or_quoted("Azure ML Experiment"),
            "Azure ML Experiment"
        );
    }
}
