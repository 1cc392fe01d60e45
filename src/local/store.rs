//! The local workspace's run history: one SQLite file (`azml.db`, WAL mode)
//! plus a folder per run under `runs/<runId>/`.
//!
//! Several azml processes use the store at once (a foreground run, detached
//! supervisors, a sweep driver, `run list` in another shell), so every
//! connection runs in WAL mode with a busy timeout, and every write is one
//! short statement or transaction. The schema is versioned through
//! `PRAGMA user_version`; `MIGRATIONS[i]` upgrades version `i` to `i + 1`.

use super::process;
use crate::workspace::TagFilter;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// File name of the SQLite database inside the workspace root.
pub const DB_FILE: &str = "azml.db";

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("local workspace database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot create the local workspace folder {path}: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "local workspace database {path} has schema version {found}, newer than this azml understands ({supported})"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("run '{0}' was not found")]
    RunNotFound(String),
    #[error("experiment '{0}' was not found")]
    ExperimentNotFound(String),
    #[error("parameter '{key}' of run '{run_id}' is already '{old}'; parameters cannot change")]
    ParamConflict {
        run_id: String,
        key: String,
        old: String,
    },
    #[error("local workspace database: {0}")]
    Sql(#[from] rusqlite::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Schema migrations, applied in order; index = version before applying.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE experiments (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL UNIQUE,
    created_ms   INTEGER NOT NULL
);
CREATE TABLE runs (
    run_id           TEXT PRIMARY KEY,
    experiment_id    INTEGER NOT NULL REFERENCES experiments(id),
    parent_run_id    TEXT,
    run_type         TEXT NOT NULL,
    target           TEXT NOT NULL,
    display_name     TEXT,
    status           TEXT NOT NULL,
    created_ms       INTEGER NOT NULL,
    start_ms         INTEGER,
    end_ms           INTEGER,
    exit_code        INTEGER,
    error_code       TEXT,
    error_message    TEXT,
    properties       TEXT NOT NULL DEFAULT '{}',
    supervisor_pid   INTEGER,
    supervisor_start INTEGER,
    child_pid        INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    cancel_reason    TEXT,
    launch           TEXT
);
CREATE INDEX runs_by_created ON runs(created_ms);
CREATE INDEX runs_by_parent ON runs(parent_run_id);
CREATE TABLE metrics (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id     TEXT NOT NULL REFERENCES runs(run_id),
    name       TEXT NOT NULL,
    value      REAL,
    is_nan     INTEGER NOT NULL DEFAULT 0,
    step       INTEGER NOT NULL DEFAULT 0,
    timestamp_ms INTEGER NOT NULL
);
CREATE INDEX metrics_by_run ON metrics(run_id, name);
CREATE TABLE params (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE tags (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE computes (
    name         TEXT PRIMARY KEY,
    compute_type TEXT NOT NULL,
    properties   TEXT NOT NULL DEFAULT '{}',
    created_ms   INTEGER NOT NULL
);
"#,
    // v2: the script's start time, so a recorded pid is only signalled while it
    // is still the same process.
    "ALTER TABLE runs ADD COLUMN child_start INTEGER;",
    // v3: the orphan reaper (every command, and once per sweep) looks for
    // active runs; without this index it read every run of the workspace.
    "CREATE INDEX runs_by_status ON runs(status);",
    // v4: MLflow 3 logged models (`mlflow.<flavor>.log_model`) and a run's
    // inputs/outputs (datasets, models). Each is kept as the JSON document the
    // tracking API returns; the store only indexes what lookups need.
    r#"
CREATE TABLE logged_models (
    model_id      TEXT PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    created_ms    INTEGER NOT NULL,
    doc           TEXT NOT NULL
);
CREATE INDEX logged_models_by_experiment ON logged_models(experiment_id, created_ms);
CREATE TABLE run_io (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    kind   TEXT NOT NULL,
    doc    TEXT NOT NULL
);
CREATE INDEX run_io_by_run ON run_io(run_id);
CREATE TABLE experiment_tags (
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    key           TEXT NOT NULL,
    value         TEXT NOT NULL,
    PRIMARY KEY (experiment_id, key)
);
"#,
    // v5: MLflow's soft delete (`mlflow.delete_run`, undone by `restore_run`):
    // when the run was deleted, NULL while it is active.
    "ALTER TABLE runs ADD COLUMN deleted_ms INTEGER;",
    // v6: MLflow's model registry (`registered_model_name=`, `register_model`,
    // `models:/name/1`): workspace-wide, each kept as the JSON the API returns.
    r#"
CREATE TABLE registered_models (
    name       TEXT PRIMARY KEY,
    doc        TEXT NOT NULL
);
CREATE TABLE model_versions (
    name       TEXT NOT NULL REFERENCES registered_models(name),
    version    INTEGER NOT NULL,
    doc        TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
"#,
    // v7: each metric's latest value, kept as points arrive: `runs/get` and
    // `runs/search` read it for every run, and computing it from the history
    // cost 0.4-0.8 s for a run of 300,000 points (with the store locked).
    r#"
CREATE TABLE latest_metrics (
    run_id       TEXT NOT NULL REFERENCES runs(run_id),
    name         TEXT NOT NULL,
    value        REAL,
    is_nan       INTEGER NOT NULL,
    step         INTEGER NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    PRIMARY KEY (run_id, name)
);
INSERT INTO latest_metrics(run_id, name, value, is_nan, step, timestamp_ms)
SELECT run_id, name, value, is_nan, step, timestamp_ms FROM (
    SELECT *, ROW_NUMBER() OVER (
        PARTITION BY run_id, name ORDER BY step DESC, timestamp_ms DESC, seq DESC) AS newest
    FROM metrics)
WHERE newest = 1;
"#,
    // v8: MLflow's soft delete of experiments (`delete_experiment`, undone by
    // `restore_experiment`).
    "ALTER TABLE experiments ADD COLUMN deleted_ms INTEGER;",
];

/// v1 run states. The string forms are what `run show` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    NotStarted,
    Running,
    Completed,
    Failed,
    Canceled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::NotStarted => "NotStarted",
            RunStatus::Running => "Running",
            RunStatus::Completed => "Completed",
            RunStatus::Failed => "Failed",
            RunStatus::Canceled => "Canceled",
        }
    }

    /// Parses v1 names case-insensitively (`--status completed` works as in v1).
    pub fn parse(text: &str) -> Option<RunStatus> {
        [
            RunStatus::NotStarted,
            RunStatus::Running,
            RunStatus::Completed,
            RunStatus::Failed,
            RunStatus::Canceled,
        ]
        .into_iter()
        .find(|s| {
            s.as_str().eq_ignore_ascii_case(text)
                || (text.eq_ignore_ascii_case("cancelled") && *s == RunStatus::Canceled)
        })
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Completed | RunStatus::Failed | RunStatus::Canceled
        )
    }
}

/// An experiment row.
#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    pub id: i64,
    pub name: String,
    pub created_ms: i64,
    /// When MLflow's `delete_experiment` soft-deleted it; `None` while active.
    pub deleted_ms: Option<i64>,
}

/// What a caller supplies to create a run; the store fills in the rest.
#[derive(Debug, Clone, Default)]
pub struct NewRun {
    pub run_id: String,
    pub experiment: String,
    pub parent_run_id: Option<String>,
    /// v1 runType: `azureml.scriptrun`, `hyperdrive`, …
    pub run_type: String,
    pub target: String,
    pub display_name: Option<String>,
    pub properties: Map<String, Value>,
    pub tags: BTreeMap<String, String>,
}

/// One run as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub run_id: String,
    pub experiment_id: i64,
    pub experiment_name: String,
    pub parent_run_id: Option<String>,
    pub run_type: String,
    pub target: String,
    pub display_name: Option<String>,
    pub status: RunStatus,
    pub created_ms: i64,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub exit_code: Option<i64>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub properties: Map<String, Value>,
    pub tags: BTreeMap<String, String>,
    pub supervisor_pid: Option<i64>,
    pub child_pid: Option<i64>,
    pub cancel_requested: bool,
    pub cancel_reason: Option<String>,
    /// When MLflow's `delete_run` soft-deleted the run; `None` while it is active.
    pub deleted_ms: Option<i64>,
}

/// One logged metric value.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    pub name: String,
    pub value: f64,
    pub step: i64,
    pub timestamp_ms: i64,
}

/// How a run ended, as the runner reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnd {
    pub status: RunStatus,
    pub exit_code: Option<i64>,
    /// (code, message): v1's `error.error.code/message`.
    pub error: Option<(String, String)>,
}

/// Filters for `list_runs` (the store's view of `run list`).
#[derive(Debug, Clone, Default)]
pub struct RunQuery {
    pub experiment: Option<String>,
    pub status: Option<RunStatus>,
    pub parent_run_id: Option<String>,
    /// Only runs without a parent.
    pub top_level_only: bool,
    pub target: Option<String>,
    pub tags: Vec<TagFilter>,
    /// 0 = no limit.
    pub last: usize,
}

/// A compute target row (`local` is implicit and never stored).
#[derive(Debug, Clone, PartialEq)]
pub struct ComputeRecord {
    pub name: String,
    pub compute_type: String,
    pub properties: Map<String, Value>,
    pub created_ms: i64,
}

/// A connection to the local workspace store. Cheap to open; one per thread/task.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    conn: Connection,
}

/// Milliseconds since the Unix epoch, the store's time unit.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// What the orphan reaper looks at (through the `runs_by_status` index).
/// WAL frames (4 KiB pages) after which a commit checkpoints: about four runs' worth.
const WAL_AUTOCHECKPOINT_PAGES: i64 = 64;
/// SQLite's default, for connections that live through a whole sweep.
const LONG_SESSION_AUTOCHECKPOINT_PAGES: i64 = 1000;

const ACTIVE_RUNS_SQL: &str = "SELECT run_id, supervisor_pid, supervisor_start, child_pid, child_start FROM runs \
     WHERE status IN ('NotStarted', 'Running') AND supervisor_pid IS NOT NULL";

/// Columns of a run record. The experiment's name comes from a correlated
/// subquery, not a JOIN: with the bundled SQLite's STAT4, a JOIN whose WHERE
/// binds a parameter is re-planned (re-prepared) on every execution, which
/// was a fifth of a sweep's per-child CPU.
const RUN_COLUMNS: &str = "r.run_id, r.experiment_id, \
     (SELECT name FROM experiments WHERE id = r.experiment_id), r.parent_run_id, r.run_type, r.target, \
     r.display_name, r.status, r.created_ms, r.start_ms, r.end_ms, r.exit_code, r.error_code, \
     r.error_message, r.properties, r.supervisor_pid, r.child_pid, r.cancel_requested, r.cancel_reason, r.deleted_ms";

impl Store {
    /// Open (creating if needed) the store under `root`, migrating the schema.
    pub fn open(root: &Path) -> StoreResult<Store> {
        let root = &std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
        std::fs::create_dir_all(root).map_err(|source| StoreError::Folder {
            path: root.into(),
            source,
        })?;
        let path = root.join(DB_FILE);
        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let mut conn = Connection::open(&path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        // Commands open and close the store several times per run; checkpointing
        // (two fsyncs) on every close is wasted work. A small auto-checkpoint
        // bound matters instead: every process that opens the store first
        // rebuilds the WAL index by reading the whole WAL (1.6 ms for 2 MB).
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
            .map_err(open_err)?;
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .map_err(open_err)?;
        conn.set_prepared_statement_cache_capacity(64);
        migrate(&mut conn, &path)?;
        Ok(Store {
            root: root.into(),
            conn,
        })
    }

    /// An empty store in memory for `root`, where no workspace exists yet: a
    /// read-only command (`run list`, `run show`…) in a folder that never ran
    /// anything answers "nothing here" without creating `.azureml/localws`.
    pub fn empty_in_memory(root: &Path) -> StoreResult<Store> {
        let path = root.join(DB_FILE);
        let mut conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        migrate(&mut conn, &path)?;
        Ok(Store {
            root: root.into(),
            conn,
        })
    }

    /// Whether a store was ever created under `root`.
    pub fn exists(root: &Path) -> bool {
        root.join(DB_FILE).is_file()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// For a connection that lives as long as a sweep: checkpoint rarely (each
    /// checkpoint fsyncs twice) and leave a short WAL with [`Store::checkpoint`]
    /// at the end instead.
    pub fn checkpoint_rarely(&self) -> StoreResult<()> {
        self.conn.pragma_update(
            None,
            "wal_autocheckpoint",
            LONG_SESSION_AUTOCHECKPOINT_PAGES,
        )?;
        Ok(())
    }

    /// Move the WAL into the database and truncate it, so the next process
    /// has nothing to read back.
    pub fn checkpoint(&self) -> StoreResult<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// One statement through the connection's statement cache: a long-lived
    /// connection (a sweep driver's) then parses each statement once.
    fn exec(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
        self.conn.prepare_cached(sql)?.execute(params)
    }

    /// The folder of one run: its working directory (snapshot, `outputs/`, `logs/`, `user_logs/`).
    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        run_dir(&self.root, run_id)
    }

    // ---- experiments -------------------------------------------------------

    /// Get or create an experiment; `true` when it was created now.
    pub fn ensure_experiment(&self, name: &str) -> StoreResult<(Experiment, bool)> {
        // Read first: a sweep creates hundreds of runs in one experiment, and
        // an INSERT OR IGNORE is a write transaction even when it ignores.
        if let Some(exp) = self.experiment_by_name(name)? {
            return Ok((exp, false));
        }
        let inserted = self.exec(
            "INSERT OR IGNORE INTO experiments(name, created_ms) VALUES (?1, ?2)",
            params![name, now_ms()],
        )?;
        let exp = self
            .experiment_by_name(name)?
            .ok_or_else(|| StoreError::ExperimentNotFound(name.into()))?;
        Ok((exp, inserted == 1))
    }

    pub fn experiment_by_name(&self, name: &str) -> StoreResult<Option<Experiment>> {
        Ok(self
            .conn
            .query_row_cached(
                "SELECT id, name, created_ms, deleted_ms FROM experiments WHERE name = ?1",
                [name],
                experiment_from_row,
            )
            .optional()?)
    }

    pub fn experiment_by_id(&self, id: i64) -> StoreResult<Option<Experiment>> {
        Ok(self
            .conn
            .query_row_cached(
                "SELECT id, name, created_ms, deleted_ms FROM experiments WHERE id = ?1",
                [id],
                experiment_from_row,
            )
            .optional()?)
    }

    /// MLflow's `rename_experiment`; false when the new name is taken.
    pub fn rename_experiment(&self, id: i64, name: &str) -> StoreResult<bool> {
        let taken = self.experiment_by_name(name)?.is_some_and(|e| e.id != id);
        if !taken {
            self.exec(
                "UPDATE experiments SET name = ?2 WHERE id = ?1",
                params![id, name],
            )?;
        }
        Ok(!taken)
    }

    /// MLflow's soft delete of an experiment (`None` restores it); its runs stay.
    pub fn set_experiment_deleted(&self, id: i64, deleted_ms: Option<i64>) -> StoreResult<()> {
        self.exec(
            "UPDATE experiments SET deleted_ms = ?2 WHERE id = ?1",
            params![id, deleted_ms],
        )?;
        Ok(())
    }

    pub fn list_experiments(&self) -> StoreResult<Vec<Experiment>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, name, created_ms, deleted_ms FROM experiments ORDER BY id")?;
        let rows = stmt.query_map([], experiment_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    // ---- runs --------------------------------------------------------------

    /// Insert a run in `NotStarted` (creating its experiment if needed) and its folder.
    pub fn create_run(&self, new: &NewRun) -> StoreResult<RunRecord> {
        let (exp, _) = self.ensure_experiment(&new.experiment)?;
        let dir = self.run_dir(&new.run_id);
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Folder {
            path: dir.clone(),
            source,
        })?;
        let tx = self.conn.unchecked_transaction()?;
        // Cached statements: parsing them was a tenth of a sweep's per-child CPU.
        tx.prepare_cached(
            "INSERT INTO runs(run_id, experiment_id, parent_run_id, run_type, target, display_name, \
             status, created_ms, properties) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
                new.run_id,
                exp.id,
                new.parent_run_id,
                new.run_type,
                new.target,
                new.display_name,
                RunStatus::NotStarted.as_str(),
                now_ms(),
                Value::Object(new.properties.clone()).to_string(),
        ])?;
        for (k, v) in &new.tags {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO tags(run_id, key, value) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![new.run_id, k, v])?;
        }
        tx.commit()?;
        self.run(&new.run_id)
    }

    /// The run, or `RunNotFound`.
    pub fn run(&self, run_id: &str) -> StoreResult<RunRecord> {
        self.find_run(run_id)?
            .ok_or_else(|| StoreError::RunNotFound(run_id.into()))
    }

    pub fn find_run(&self, run_id: &str) -> StoreResult<Option<RunRecord>> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs r WHERE r.run_id = ?1");
        let run = self
            .conn
            .query_row_cached(&sql, [run_id], run_from_row)
            .optional()?;
        match run {
            Some(mut run) => {
                run.tags = self.tags(run_id)?;
                Ok(Some(run))
            }
            None => Ok(None),
        }
    }

    /// The runs whose parent is `parent`, in no particular order. Unlike
    /// [`Store::list_runs`] (which orders), its statement is not re-planned on
    /// every execution, so it suits the per-run hot path.
    pub fn child_runs(&self, parent: &str) -> StoreResult<Vec<RunRecord>> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs r WHERE r.parent_run_id = ?1");
        self.runs_with_tags(&sql, [parent])
    }

    /// The runs `sql` (selecting [`RUN_COLUMNS`]) finds, each with its tags.
    fn runs_with_tags(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> StoreResult<Vec<RunRecord>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let runs: Vec<RunRecord> = stmt
            .query_map(params, run_from_row)?
            .collect::<Result<_, _>>()?;
        runs.into_iter()
            .map(|mut run| {
                run.tags = self.tags(&run.run_id)?;
                Ok(run)
            })
            .collect()
    }

    /// Runs newest first, filtered as `run list` asks.
    pub fn list_runs(&self, q: &RunQuery) -> StoreResult<Vec<RunRecord>> {
        let mut sql = format!("SELECT {RUN_COLUMNS} FROM runs r WHERE 1=1");
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
        if let Some(exp) = &q.experiment {
            args.push(Box::new(exp.clone()));
            sql += &format!(
                " AND r.experiment_id = (SELECT id FROM experiments WHERE name = ?{})",
                args.len()
            );
        }
        if let Some(status) = q.status {
            args.push(Box::new(status.as_str()));
            sql += &format!(" AND r.status = ?{}", args.len());
        }
        if let Some(parent) = &q.parent_run_id {
            args.push(Box::new(parent.clone()));
            sql += &format!(" AND r.parent_run_id = ?{}", args.len());
        }
        if q.top_level_only {
            sql += " AND r.parent_run_id IS NULL";
        }
        if let Some(target) = &q.target {
            args.push(Box::new(target.clone()));
            sql += &format!(" AND r.target = ?{}", args.len());
        }
        for tag in &q.tags {
            args.push(Box::new(tag.key.clone()));
            sql += &format!(
                " AND EXISTS (SELECT 1 FROM tags t WHERE t.run_id = r.run_id AND t.key = ?{}",
                args.len()
            );
            if let Some(value) = &tag.value {
                args.push(Box::new(value.clone()));
                sql += &format!(" AND t.value = ?{}", args.len());
            }
            sql += ")";
        }
        sql += " ORDER BY r.created_ms DESC, r.rowid DESC";
        if q.last > 0 {
            // SQLite's LIMIT is a signed 64-bit integer: more than that is everything.
            sql += &format!(" LIMIT {}", q.last.min(i64::MAX as usize));
        }
        let refs: Vec<&dyn rusqlite::ToSql> = args.iter().map(|a| a.as_ref()).collect();
        self.runs_with_tags(&sql, refs.as_slice())
    }

    /// NotStarted → Running, recording who supervises the run (for orphan detection).
    pub fn mark_running(&self, run_id: &str, supervisor_pid: u32) -> StoreResult<()> {
        let start = process::supervisor_start_ticks(supervisor_pid).map(|t| t as i64);
        let n = self.exec(
            "UPDATE runs SET status = ?2, start_ms = COALESCE(start_ms, ?3), supervisor_pid = ?4, \
             supervisor_start = ?5 WHERE run_id = ?1",
            params![
                run_id,
                RunStatus::Running.as_str(),
                now_ms(),
                supervisor_pid,
                start
            ],
        )?;
        self.expect_one(n, run_id)
    }

    /// The script's process started: NotStarted → Running, with who
    /// supervises it and the process (group) to signal, in one write (it is
    /// on the path from one sweep child's end to the next one's start).
    pub fn mark_started(
        &self,
        run_id: &str,
        supervisor_pid: u32,
        child_pid: Option<u32>,
    ) -> StoreResult<()> {
        let supervisor_start = process::supervisor_start_ticks(supervisor_pid).map(|t| t as i64);
        let child_start = child_pid.and_then(process::start_ticks).map(|t| t as i64);
        let n = self.exec(
            "UPDATE runs SET status = ?2, start_ms = COALESCE(start_ms, ?3), supervisor_pid = ?4, \
             supervisor_start = ?5, child_pid = ?6, child_start = ?7 WHERE run_id = ?1",
            params![
                run_id,
                RunStatus::Running.as_str(),
                now_ms(),
                supervisor_pid,
                supervisor_start,
                child_pid,
                child_start
            ],
        )?;
        self.expect_one(n, run_id)
    }

    /// Record the process that will supervise a run before it starts, so a
    /// supervisor that dies before marking the run Running is still noticed.
    pub fn set_supervisor(&self, run_id: &str, supervisor_pid: u32) -> StoreResult<()> {
        let start = process::supervisor_start_ticks(supervisor_pid).map(|t| t as i64);
        let n = self.exec(
            "UPDATE runs SET supervisor_pid = ?2, supervisor_start = ?3 WHERE run_id = ?1",
            params![run_id, supervisor_pid, start],
        )?;
        self.expect_one(n, run_id)
    }

    /// Store how to start the run (JSON), for a detached supervisor to pick up.
    pub fn set_launch(&self, run_id: &str, launch: &Value) -> StoreResult<()> {
        let n = self.exec(
            "UPDATE runs SET launch = ?2 WHERE run_id = ?1",
            params![run_id, launch.to_string()],
        )?;
        self.expect_one(n, run_id)
    }

    pub fn launch(&self, run_id: &str) -> StoreResult<Option<Value>> {
        let text: Option<Option<String>> = self
            .conn
            .query_row_cached("SELECT launch FROM runs WHERE run_id = ?1", [run_id], |r| {
                r.get(0)
            })
            .optional()?;
        match text {
            None => Err(StoreError::RunNotFound(run_id.into())),
            Some(text) => Ok(text.and_then(|t| serde_json::from_str(&t).ok())),
        }
    }

    /// Remember the script's pid (= its process group id) so `run cancel` and the
    /// orphan reaper can reach it.
    pub fn set_child_pid(&self, run_id: &str, pid: Option<u32>) -> StoreResult<()> {
        let start = pid.and_then(process::start_ticks).map(|t| t as i64);
        let n = self.exec(
            "UPDATE runs SET child_pid = ?2, child_start = ?3 WHERE run_id = ?1",
            params![run_id, pid, start],
        )?;
        self.expect_one(n, run_id)
    }

    /// Record the end of a run. A run that already ended keeps its first ending
    /// (a late writer never overwrites Canceled with Failed, for example);
    /// returns whether this call ended it.
    pub fn finish_run(&self, run_id: &str, end: &RunEnd) -> StoreResult<bool> {
        self.finish_run_at(run_id, end, now_ms())
    }

    /// [`Store::finish_run`] with the end time given: when the script's
    /// process ended, not when its bookkeeping got to this (a sweep may have
    /// started the next child in between).
    pub fn finish_run_at(&self, run_id: &str, end: &RunEnd, ended_ms: i64) -> StoreResult<bool> {
        let (code, message) = match &end.error {
            Some((c, m)) => (Some(c.as_str()), Some(m.as_str())),
            None => (None, None),
        };
        let n = self.exec(
            "UPDATE runs SET status = ?2, end_ms = ?3, exit_code = ?4, error_code = ?5, \
             error_message = ?6, child_pid = NULL, start_ms = COALESCE(start_ms, ?3) \
             WHERE run_id = ?1 AND status NOT IN ('Completed', 'Failed', 'Canceled')",
            params![
                run_id,
                end.status.as_str(),
                ended_ms,
                end.exit_code,
                code,
                message
            ],
        )?;
        if n == 0 {
            self.run(run_id)?;
        }
        Ok(n == 1)
    }

    /// Change the status of a run that has ended (MLflow's `runs/update` on a
    /// run a script created); its end time stays.
    pub fn restate_ended_run(&self, run_id: &str, status: RunStatus) -> StoreResult<()> {
        let n = self.exec(
            "UPDATE runs SET status = ?2 WHERE run_id = ?1 \
             AND status IN ('Completed', 'Failed', 'Canceled')",
            params![run_id, status.as_str()],
        )?;
        self.expect_one(n, run_id)
    }

    /// Remove a run that never started (a sweep's child prepared ahead of a
    /// free slot when the sweep stopped): its record, tags, params and
    /// folder, as if it had never been created. `false` (and nothing done)
    /// when the run has started after all.
    pub fn forget_unstarted_run(&self, run_id: &str) -> StoreResult<bool> {
        let tx = self.conn.unchecked_transaction()?;
        let unstarted = tx
            .query_row(
                "SELECT 1 FROM runs WHERE run_id = ?1 AND status = 'NotStarted' AND start_ms IS NULL",
                [run_id],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        let mut removed = 0;
        if unstarted {
            for table in ["tags", "params", "metrics", "run_io"] {
                tx.execute(&format!("DELETE FROM {table} WHERE run_id = ?1"), [run_id])?;
            }
            removed = tx.execute("DELETE FROM runs WHERE run_id = ?1", [run_id])?;
        }
        tx.commit()?;
        if removed == 1 {
            let _ = std::fs::remove_dir_all(self.run_dir(run_id));
        }
        Ok(removed == 1)
    }

    /// SIGKILL the run's script process group if it is still the process we
    /// started (used when no supervisor is there to stop it gracefully).
    pub fn kill_script(&self, run_id: &str) -> StoreResult<()> {
        let (pid, start): (Option<i64>, Option<i64>) = self.conn.query_row_cached(
            "SELECT child_pid, child_start FROM runs WHERE run_id = ?1",
            [run_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if let Some(pid) = pid {
            kill_orphaned_script(pid as u32, start.map(|s| s as u64));
        }
        Ok(())
    }

    /// Ask whoever supervises the run to cancel it (it polls `cancel_request`).
    pub fn request_cancel(&self, run_id: &str, reason: &str) -> StoreResult<()> {
        let n = self.exec(
            "UPDATE runs SET cancel_requested = 1, cancel_reason = COALESCE(cancel_reason, ?2) \
             WHERE run_id = ?1",
            params![run_id, reason],
        )?;
        self.expect_one(n, run_id)
    }

    /// The pending cancel reason, if someone asked to cancel the run.
    pub fn cancel_request(&self, run_id: &str) -> StoreResult<Option<String>> {
        let row: Option<(i64, Option<String>)> = self
            .conn
            .query_row_cached(
                "SELECT cancel_requested, cancel_reason FROM runs WHERE run_id = ?1",
                [run_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match row {
            Some((1, reason)) => Ok(Some(reason.unwrap_or_else(|| "canceled by user".into()))),
            Some(_) => Ok(None),
            None => Err(StoreError::RunNotFound(run_id.into())),
        }
    }

    /// Merge keys into the run's properties (properties are write-once in v1,
    /// but azml itself may add e.g. git info after creation).
    pub fn add_properties(&self, run_id: &str, props: &Map<String, Value>) -> StoreResult<()> {
        let mut run = self.run(run_id)?;
        for (k, v) in props {
            run.properties.insert(k.clone(), v.clone());
        }
        self.exec(
            "UPDATE runs SET properties = ?2 WHERE run_id = ?1",
            params![run_id, Value::Object(run.properties).to_string()],
        )?;
        Ok(())
    }

    pub fn set_display_name(&self, run_id: &str, name: &str) -> StoreResult<()> {
        let n = self.exec(
            "UPDATE runs SET display_name = ?2 WHERE run_id = ?1",
            params![run_id, name],
        )?;
        self.expect_one(n, run_id)
    }

    /// Runs someone still believes are active whose supervisor process is gone:
    /// mark them Failed with the reason and kill what is left of their script.
    /// Returns the ids it marked.
    pub fn reap_orphans(&self) -> StoreResult<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(ACTIVE_RUNS_SQL)?;
        type Active = (String, i64, Option<i64>, Option<i64>, Option<i64>);
        let active: Vec<Active> = stmt
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<Result<_, _>>()?;
        let mut reaped = Vec::new();
        for (run_id, pid, start, child, child_start) in active {
            if process::is_same_process_alive(pid as u32, start.map(|s| s as u64)) {
                continue;
            }
            if let Some(child) = child {
                kill_orphaned_script(child as u32, child_start.map(|s| s as u64));
            }
            let end = RunEnd {
                status: RunStatus::Failed,
                exit_code: None,
                error: Some((
                    "SupervisorLost".into(),
                    format!(
                        "the azml process supervising this run (pid {pid}) exited before the run finished"
                    ),
                )),
            };
            if self.finish_run(&run_id, &end)? {
                reaped.push(run_id);
            }
        }
        Ok(reaped)
    }

    // ---- metrics, params, tags ---------------------------------------------

    pub fn log_metrics(&self, run_id: &str, points: &[MetricPoint]) -> StoreResult<()> {
        let tx = self.conn.unchecked_transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO metrics(run_id, name, value, is_nan, step, timestamp_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            // MLflow's latest: highest step, then timestamp, then the last logged.
            let mut latest = tx.prepare_cached(
                "INSERT INTO latest_metrics(run_id, name, value, is_nan, step, timestamp_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT(run_id, name) DO UPDATE SET value = excluded.value, \
                   is_nan = excluded.is_nan, step = excluded.step, timestamp_ms = excluded.timestamp_ms \
                 WHERE (excluded.step, excluded.timestamp_ms) >= \
                   (latest_metrics.step, latest_metrics.timestamp_ms)",
            )?;
            for p in points {
                let (value, is_nan) = if p.value.is_nan() {
                    (None, 1)
                } else {
                    (Some(p.value), 0)
                };
                let row = params![run_id, p.name, value, is_nan, p.step, p.timestamp_ms];
                stmt.execute(row)?;
                latest.execute(row)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// All metric values of a run in logging order.
    pub fn metrics(&self, run_id: &str) -> StoreResult<Vec<MetricPoint>> {
        self.query_metrics(
            "SELECT name, value, is_nan, step, timestamp_ms FROM metrics WHERE run_id = ?1 ORDER BY seq",
            params![run_id],
        )
    }

    /// Each metric's latest value, by name: the highest step, then the latest
    /// timestamp, then the last logged (MLflow's rule; kept by `log_metrics`).
    pub fn latest_metrics(&self, run_id: &str) -> StoreResult<Vec<MetricPoint>> {
        self.query_metrics(
            "SELECT name, value, is_nan, step, timestamp_ms FROM latest_metrics \
             WHERE run_id = ?1 ORDER BY name",
            params![run_id],
        )
    }

    /// One metric's values in logging order.
    pub fn metric_history(&self, run_id: &str, name: &str) -> StoreResult<Vec<MetricPoint>> {
        self.query_metrics(
            "SELECT name, value, is_nan, step, timestamp_ms FROM metrics \
             WHERE run_id = ?1 AND name = ?2 ORDER BY seq",
            params![run_id, name],
        )
    }

    fn query_metrics(
        &self,
        sql: &str,
        args: impl rusqlite::Params,
    ) -> StoreResult<Vec<MetricPoint>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map(args, |r| {
            let value: Option<f64> = r.get(1)?;
            let is_nan: i64 = r.get(2)?;
            Ok(MetricPoint {
                name: r.get(0)?,
                value: if is_nan == 1 {
                    f64::NAN
                } else {
                    value.unwrap_or(f64::NAN)
                },
                step: r.get(3)?,
                timestamp_ms: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Log a parameter; re-logging the same value is fine, a different one is refused (as MLflow does).
    /// Sets a param whatever it was (the script's value over a sweep's).
    pub fn replace_param(&self, run_id: &str, key: &str, value: &str) -> StoreResult<()> {
        self.exec(
            "INSERT OR REPLACE INTO params(run_id, key, value) VALUES (?1, ?2, ?3)",
            params![run_id, key, value],
        )?;
        Ok(())
    }

    pub fn log_param(&self, run_id: &str, key: &str, value: &str) -> StoreResult<()> {
        let old: Option<String> = self
            .conn
            .query_row_cached(
                "SELECT value FROM params WHERE run_id = ?1 AND key = ?2",
                params![run_id, key],
                |r| r.get(0),
            )
            .optional()?;
        match old {
            Some(old) if old == value => Ok(()),
            Some(old) => Err(StoreError::ParamConflict {
                run_id: run_id.into(),
                key: key.into(),
                old,
            }),
            None => {
                self.exec(
                    "INSERT INTO params(run_id, key, value) VALUES (?1, ?2, ?3)",
                    params![run_id, key, value],
                )?;
                Ok(())
            }
        }
    }

    pub fn params(&self, run_id: &str) -> StoreResult<BTreeMap<String, String>> {
        self.key_values("SELECT key, value FROM params WHERE run_id = ?1", run_id)
    }

    pub fn set_tag(&self, run_id: &str, key: &str, value: &str) -> StoreResult<()> {
        self.exec(
            "INSERT OR REPLACE INTO tags(run_id, key, value) VALUES (?1, ?2, ?3)",
            params![run_id, key, value],
        )?;
        Ok(())
    }

    /// Times a client gave (MLflow's `start_time`/`end_time`), over azml's own.
    pub fn set_run_times(
        &self,
        run_id: &str,
        start_ms: Option<i64>,
        end_ms: Option<i64>,
    ) -> StoreResult<()> {
        self.exec(
            "UPDATE runs SET start_ms = COALESCE(?2, start_ms), end_ms = COALESCE(?3, end_ms) \
             WHERE run_id = ?1",
            params![run_id, start_ms, end_ms],
        )?;
        Ok(())
    }

    /// MLflow's soft delete: `Some(ms)` marks the run deleted, `None` restores it.
    /// Nothing of the run goes; `run list` and `run show` still see it.
    pub fn set_run_deleted(&self, run_id: &str, deleted_ms: Option<i64>) -> StoreResult<()> {
        self.exec(
            "UPDATE runs SET deleted_ms = ?2 WHERE run_id = ?1",
            params![run_id, deleted_ms],
        )?;
        Ok(())
    }

    pub fn delete_tag(&self, run_id: &str, key: &str) -> StoreResult<bool> {
        Ok(self.exec(
            "DELETE FROM tags WHERE run_id = ?1 AND key = ?2",
            params![run_id, key],
        )? == 1)
    }

    pub fn tags(&self, run_id: &str) -> StoreResult<BTreeMap<String, String>> {
        self.key_values("SELECT key, value FROM tags WHERE run_id = ?1", run_id)
    }

    fn key_values(&self, sql: &str, run_id: &str) -> StoreResult<BTreeMap<String, String>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map([run_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    // ---- MLflow experiment tags, logged models, run inputs/outputs ----------

    pub fn set_experiment_tag(
        &self,
        experiment_id: i64,
        key: &str,
        value: &str,
    ) -> StoreResult<()> {
        self.exec(
            "INSERT OR REPLACE INTO experiment_tags(experiment_id, key, value) VALUES (?1, ?2, ?3)",
            params![experiment_id, key, value],
        )?;
        Ok(())
    }

    pub fn delete_experiment_tag(&self, experiment_id: i64, key: &str) -> StoreResult<bool> {
        Ok(self.exec(
            "DELETE FROM experiment_tags WHERE experiment_id = ?1 AND key = ?2",
            params![experiment_id, key],
        )? == 1)
    }

    pub fn experiment_tags(&self, experiment_id: i64) -> StoreResult<BTreeMap<String, String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT key, value FROM experiment_tags WHERE experiment_id = ?1")?;
        let rows = stmt.query_map([experiment_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Insert or replace a logged model's document.
    pub fn put_logged_model(
        &self,
        model_id: &str,
        experiment_id: i64,
        created_ms: i64,
        doc: &Value,
    ) -> StoreResult<()> {
        self.exec(
            "INSERT OR REPLACE INTO logged_models(model_id, experiment_id, created_ms, doc) \
             VALUES (?1, ?2, ?3, ?4)",
            params![model_id, experiment_id, created_ms, doc.to_string()],
        )?;
        Ok(())
    }

    pub fn logged_model(&self, model_id: &str) -> StoreResult<Option<Value>> {
        self.doc_query(
            "SELECT doc FROM logged_models WHERE model_id = ?1",
            [model_id],
        )
        .map(|mut docs| docs.pop())
    }

    /// The logged models of these experiments, newest first.
    pub fn logged_models(&self, experiment_ids: &[i64]) -> StoreResult<Vec<Value>> {
        let mut out = Vec::new();
        for id in experiment_ids {
            out.extend(self.doc_query(
                "SELECT doc FROM logged_models WHERE experiment_id = ?1 ORDER BY created_ms DESC",
                [id],
            )?);
        }
        Ok(out)
    }

    pub fn registered_model(&self, name: &str) -> StoreResult<Option<Value>> {
        self.doc_query(
            "SELECT doc FROM registered_models WHERE name = ?1",
            params![name],
        )
        .map(|mut docs| docs.pop())
    }

    /// Every registered model, by name.
    pub fn registered_models(&self) -> StoreResult<Vec<Value>> {
        self.doc_query("SELECT doc FROM registered_models ORDER BY name", [])
    }

    pub fn put_registered_model(&self, name: &str, doc: &Value) -> StoreResult<()> {
        self.exec(
            "INSERT OR REPLACE INTO registered_models(name, doc) VALUES (?1, ?2)",
            params![name, doc.to_string()],
        )?;
        Ok(())
    }

    /// Removes the model and its versions.
    pub fn delete_registered_model(&self, name: &str) -> StoreResult<()> {
        self.exec("DELETE FROM model_versions WHERE name = ?1", [name])?;
        self.exec("DELETE FROM registered_models WHERE name = ?1", [name])?;
        Ok(())
    }

    pub fn model_version(&self, name: &str, version: i64) -> StoreResult<Option<Value>> {
        self.doc_query(
            "SELECT doc FROM model_versions WHERE name = ?1 AND version = ?2",
            params![name, version],
        )
        .map(|mut docs| docs.pop())
    }

    /// The versions of one model (or of all), newest first.
    pub fn model_versions(&self, name: Option<&str>) -> StoreResult<Vec<Value>> {
        match name {
            Some(name) => self.doc_query(
                "SELECT doc FROM model_versions WHERE name = ?1 ORDER BY version DESC",
                [name],
            ),
            None => self.doc_query(
                "SELECT doc FROM model_versions ORDER BY name, version DESC",
                [],
            ),
        }
    }

    /// The number the next version of `name` gets (versions are never reused).
    pub fn next_model_version(&self, name: &str) -> StoreResult<i64> {
        Ok(self.conn.query_row_cached(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE name = ?1",
            [name],
            |r| r.get(0),
        )?)
    }

    pub fn put_model_version(&self, name: &str, version: i64, doc: &Value) -> StoreResult<()> {
        self.exec(
            "INSERT OR REPLACE INTO model_versions(name, version, doc) VALUES (?1, ?2, ?3)",
            params![name, version, doc.to_string()],
        )?;
        Ok(())
    }

    pub fn delete_model_version(&self, name: &str, version: i64) -> StoreResult<bool> {
        Ok(self.exec(
            "DELETE FROM model_versions WHERE name = ?1 AND version = ?2",
            params![name, version],
        )? == 1)
    }

    fn doc_query(&self, sql: &str, params: impl rusqlite::Params) -> StoreResult<Vec<Value>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params, |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for doc in rows {
            out.push(serde_json::from_str(&doc?).unwrap_or(Value::Null));
        }
        Ok(out)
    }

    pub fn delete_logged_model(&self, model_id: &str) -> StoreResult<bool> {
        Ok(self.exec("DELETE FROM logged_models WHERE model_id = ?1", [model_id])? == 1)
    }

    /// Record one of a run's inputs or outputs (`kind`: `dataset_inputs`,
    /// `model_inputs`, `model_outputs`), in the order they were logged; the
    /// same document again (a dataset logged twice, same context) adds
    /// nothing, as in MLflow.
    pub fn add_run_io(&self, run_id: &str, kind: &str, doc: &Value) -> StoreResult<()> {
        self.exec(
            "INSERT INTO run_io(run_id, kind, doc) SELECT ?1, ?2, ?3 WHERE NOT EXISTS \
             (SELECT 1 FROM run_io WHERE run_id = ?1 AND kind = ?2 AND doc = ?3)",
            params![run_id, kind, doc.to_string()],
        )?;
        Ok(())
    }

    pub fn run_io(&self, run_id: &str) -> StoreResult<Vec<(String, Value)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT kind, doc FROM run_io WHERE run_id = ?1 ORDER BY seq")?;
        let rows = stmt.query_map([run_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (kind, doc) = row?;
            out.push((kind, serde_json::from_str(&doc).unwrap_or(Value::Null)));
        }
        Ok(out)
    }

    // ---- computes ----------------------------------------------------------

    /// Stored compute targets (SSH hosts, …). `local` is implicit and not listed here.
    pub fn list_computes(&self) -> StoreResult<Vec<ComputeRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT name, compute_type, properties, created_ms FROM computes ORDER BY name",
        )?;
        let rows = stmt.query_map([], compute_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn compute(&self, name: &str) -> StoreResult<Option<ComputeRecord>> {
        Ok(self
            .conn
            .query_row_cached(
                "SELECT name, compute_type, properties, created_ms FROM computes WHERE name = ?1",
                [name],
                compute_from_row,
            )
            .optional()?)
    }

    /// Insert or replace a compute target (never store secrets in `properties`).
    pub fn put_compute(&self, c: &ComputeRecord) -> StoreResult<()> {
        self.exec(
            "INSERT OR REPLACE INTO computes(name, compute_type, properties, created_ms) \
             VALUES (?1, ?2, ?3, ?4)",
            params![
                c.name,
                c.compute_type,
                Value::Object(c.properties.clone()).to_string(),
                c.created_ms
            ],
        )?;
        Ok(())
    }

    /// Remove a compute target; `true` when it existed.
    pub fn delete_compute(&self, name: &str) -> StoreResult<bool> {
        Ok(self
            .conn
            .execute("DELETE FROM computes WHERE name = ?1", [name])?
            == 1)
    }

    fn expect_one(&self, changed: usize, run_id: &str) -> StoreResult<()> {
        if changed == 0 {
            return Err(StoreError::RunNotFound(run_id.into()));
        }
        Ok(())
    }
}

/// Kill the process group of a script whose supervisor died, but only while
/// its leader is still the process we started (pids are reused).
fn kill_orphaned_script(pgid: u32, start: Option<u64>) {
    if start.is_some() && process::is_same_process_alive(pgid, start) {
        process::kill_group_now(pgid);
    }
}

/// `runs/<runId>` under a workspace root.
pub fn run_dir(root: &Path, run_id: &str) -> PathBuf {
    root.join("runs").join(run_id)
}

/// `query_row` through the statement cache (see [`Store::exec`]).
trait CachedQueryRow {
    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>;
}

impl CachedQueryRow for Connection {
    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

fn migrate(conn: &mut Connection, path: &Path) -> StoreResult<()> {
    let supported = MIGRATIONS.len() as i64;
    // Fast path (every command): already current, no write lock needed.
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current == supported {
        return Ok(());
    }
    // Re-read under the write lock: another azml may have migrated meanwhile.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > supported {
        return Err(StoreError::TooNew {
            path: path.into(),
            found: version,
            supported,
        });
    }
    for migration in &MIGRATIONS[version as usize..] {
        tx.execute_batch(migration)?;
    }
    if version < supported {
        tx.pragma_update(None, "user_version", supported)?;
    }
    tx.commit()?;
    Ok(())
}

fn experiment_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Experiment> {
    Ok(Experiment {
        id: r.get(0)?,
        name: r.get(1)?,
        created_ms: r.get(2)?,
        deleted_ms: r.get(3)?,
    })
}

fn json_object(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

fn run_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    let status: String = r.get(7)?;
    let properties: String = r.get(14)?;
    let cancel: i64 = r.get(17)?;
    Ok(RunRecord {
        run_id: r.get(0)?,
        experiment_id: r.get(1)?,
        experiment_name: r.get(2)?,
        parent_run_id: r.get(3)?,
        run_type: r.get(4)?,
        target: r.get(5)?,
        display_name: r.get(6)?,
        status: RunStatus::parse(&status).unwrap_or(RunStatus::Failed),
        created_ms: r.get(8)?,
        start_ms: r.get(9)?,
        end_ms: r.get(10)?,
        exit_code: r.get(11)?,
        error_code: r.get(12)?,
        error_message: r.get(13)?,
        properties: json_object(&properties),
        tags: BTreeMap::new(),
        supervisor_pid: r.get(15)?,
        child_pid: r.get(16)?,
        cancel_requested: cancel != 0,
        cancel_reason: r.get(18)?,
        deleted_ms: r.get(19)?,
    })
}

fn compute_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ComputeRecord> {
    let properties: String = r.get(2)?;
    Ok(ComputeRecord {
        name: r.get(0)?,
        compute_type: r.get(1)?,
        properties: json_object(&properties),
        created_ms: r.get(3)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_run(store: &Store, id: &str) -> RunRecord {
        store
            .create_run(&NewRun {
                run_id: id.into(),
                experiment: "exp".into(),
                run_type: "azureml.scriptrun".into(),
                target: "local".into(),
                ..Default::default()
            })
            .unwrap()
    }

    #[test]
    fn an_unstarted_run_is_forgotten_whole_and_a_started_one_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for id in ["queued", "running"] {
            new_run(&store, id);
            store.set_tag(id, "hyperparameters", "{}").unwrap();
            store.log_param(id, "--x", "1").unwrap();
        }
        store.mark_running("running", std::process::id()).unwrap();
        assert!(store.forget_unstarted_run("queued").unwrap());
        assert!(store.find_run("queued").unwrap().is_none());
        assert!(!store.run_dir("queued").exists());
        let leftover: i64 = store
            .conn
            .query_row(
                "SELECT (SELECT COUNT(*) FROM tags WHERE run_id = 'queued') + \
                 (SELECT COUNT(*) FROM params WHERE run_id = 'queued')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(leftover, 0);
        assert!(!store.forget_unstarted_run("running").unwrap());
        assert!(store.find_run("running").unwrap().is_some());
        assert!(store.run_dir("running").exists());
    }

    #[test]
    fn reading_a_run_reuses_its_prepared_statement() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for i in 0..4 {
            new_run(&store, &format!("r{i}"));
            store.run(&format!("r{i}")).unwrap();
        }
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs r WHERE r.run_id = ?1");
        let stmt = store.conn.prepare_cached(&sql).unwrap();
        assert!(stmt.get_status(rusqlite::StatementStatus::Run) >= 8);
        assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0);
    }

    /// Every process's first connection rebuilds the WAL index by reading the
    /// whole WAL; with SQLite's default bound (1000 pages) that grew to 4 MB
    /// and cost each command milliseconds.
    #[test]
    fn the_wal_stays_small_across_many_short_lived_connections() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..60 {
            let store = Store::open(dir.path()).unwrap();
            new_run(&store, &format!("r{i}"));
            store.mark_running(&format!("r{i}"), 1).unwrap();
        }
        let wal = std::fs::metadata(dir.path().join("azml.db-wal"))
            .unwrap()
            .len();
        let bound = (WAL_AUTOCHECKPOINT_PAGES as u64 + 16) * 4120;
        assert!(wal <= bound, "WAL is {wal} bytes (bound {bound})");
    }

    #[test]
    fn reopening_a_store_keeps_data_and_schema_version() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            new_run(&store, "r1");
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.run("r1").unwrap().status, RunStatus::NotStarted);
        let v: i64 = store
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
    }

    /// Every command reaps orphans; scanning all runs made each sweep child
    /// slower than the one before.
    #[test]
    fn the_orphan_reaper_finds_active_runs_through_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let plan: Vec<String> = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {ACTIVE_RUNS_SQL}"))
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = plan.join("; ");
        assert!(plan.contains("USING INDEX runs_by_status"), "{plan}");
    }

    #[test]
    fn a_version_1_store_is_migrated_keeping_its_runs() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute_batch(
                "INSERT INTO experiments(name, created_ms) VALUES ('old', 1); \
                 INSERT INTO runs(run_id, experiment_id, run_type, target, status, created_ms) \
                 VALUES ('old_1_abcdef01', 1, 'azureml.scriptrun', 'local', 'Completed', 1); \
                 INSERT INTO metrics(run_id, name, value, step, timestamp_ms) \
                 VALUES ('old_1_abcdef01', 'acc', 0.9, 3, 1), ('old_1_abcdef01', 'acc', 0.5, 1, 2);",
            )
            .unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        // v7 derives the latest values from the history that is already there.
        let latest = store.latest_metrics("old_1_abcdef01").unwrap();
        assert_eq!((latest.len(), latest[0].value), (1, 0.9));
        assert_eq!(
            store.run("old_1_abcdef01").unwrap().status,
            RunStatus::Completed
        );
        store
            .set_child_pid("old_1_abcdef01", Some(std::process::id()))
            .unwrap();
        let v: i64 = store
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
    }

    #[test]
    fn a_store_from_a_newer_azml_is_refused_not_clobbered() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
            conn.pragma_update(None, "user_version", 99).unwrap();
        }
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::TooNew { found: 99, .. })
        ));
    }

    #[test]
    fn finish_run_keeps_the_first_ending() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        new_run(&store, "r1");
        let canceled = RunEnd {
            status: RunStatus::Canceled,
            exit_code: None,
            error: None,
        };
        assert!(store.finish_run("r1", &canceled).unwrap());
        let failed = RunEnd {
            status: RunStatus::Failed,
            exit_code: Some(1),
            error: None,
        };
        assert!(!store.finish_run("r1", &failed).unwrap());
        assert_eq!(store.run("r1").unwrap().status, RunStatus::Canceled);
    }

    #[test]
    fn nan_metrics_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        new_run(&store, "r1");
        let p = |v| MetricPoint {
            name: "loss".into(),
            value: v,
            step: 0,
            timestamp_ms: 1,
        };
        store.log_metrics("r1", &[p(f64::NAN), p(0.5)]).unwrap();
        let got = store.metrics("r1").unwrap();
        assert!(got[0].value.is_nan());
        assert_eq!(got[1].value, 0.5);
    }

    #[test]
    fn params_cannot_change_but_can_be_relogged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        new_run(&store, "r1");
        store.log_param("r1", "lr", "0.1").unwrap();
        store.log_param("r1", "lr", "0.1").unwrap();
        assert!(matches!(
            store.log_param("r1", "lr", "0.2"),
            Err(StoreError::ParamConflict { .. })
        ));
    }

    #[test]
    fn the_latest_metric_is_the_highest_step_then_timestamp_then_last_logged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        new_run(&store, "r");
        let p = |name: &str, value, step, timestamp_ms| MetricPoint {
            name: name.into(),
            value,
            step,
            timestamp_ms,
        };
        store
            .log_metrics(
                "r",
                &[
                    p("a", 1.0, 2, 5),
                    p("a", 2.0, 1, 9),
                    p("b", 1.0, 0, 7),
                    p("b", 2.0, 0, 3),
                    p("c", 1.0, 0, 4),
                    p("c", f64::NAN, 0, 4),
                ],
            )
            .unwrap();
        let latest = store.latest_metrics("r").unwrap();
        let names: Vec<&str> = latest.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(latest[0].value, 1.0, "highest step wins");
        assert_eq!(latest[1].value, 1.0, "then the latest timestamp");
        assert!(latest[2].value.is_nan(), "then the last logged");
    }

    #[test]
    fn list_runs_filters_by_tag_status_and_parent() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        new_run(&store, "a");
        new_run(&store, "b");
        store
            .create_run(&NewRun {
                run_id: "a_0".into(),
                experiment: "exp".into(),
                parent_run_id: Some("a".into()),
                run_type: "azureml.scriptrun".into(),
                target: "local".into(),
                ..Default::default()
            })
            .unwrap();
        store.set_tag("b", "team", "x").unwrap();
        store.set_tag("a", "team", "").unwrap();
        let tag = |key: &str, value: Option<&str>| TagFilter {
            key: key.into(),
            value: value.map(Into::into),
        };
        let q = |q: RunQuery| {
            store
                .list_runs(&q)
                .unwrap()
                .into_iter()
                .map(|r| r.run_id)
                .collect::<Vec<_>>()
        };
        let with_tags = |tags| {
            q(RunQuery {
                tags,
                ..Default::default()
            })
        };
        assert_eq!(with_tags(vec![tag("team", Some("x"))]), ["b"]);
        assert_eq!(with_tags(vec![tag("team", Some(""))]), ["a"]);
        assert_eq!(with_tags(vec![tag("team", None)]), ["b", "a"]);
        assert!(with_tags(vec![tag("other", None)]).is_empty());
        assert_eq!(
            q(RunQuery {
                parent_run_id: Some("a".into()),
                ..Default::default()
            }),
            ["a_0"]
        );
        assert_eq!(
            q(RunQuery {
                last: 2,
                ..Default::default()
            }),
            ["a_0", "b"]
        );
    }

    #[test]
    fn an_active_run_whose_supervisor_is_gone_is_reaped_as_failed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        new_run(&store, "r1");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        store.mark_running("r1", pid).unwrap();
        child.wait().unwrap();
        assert_eq!(store.reap_orphans().unwrap(), ["r1"]);
        let run = store.run("r1").unwrap();
        assert_eq!(run.status, RunStatus::Failed);
        assert!(run.error_message.unwrap().contains(&pid.to_string()));
        // Our own live process is never reaped.
        new_run(&store, "r2");
        store.mark_running("r2", std::process::id()).unwrap();
        assert!(store.reap_orphans().unwrap().is_empty());
    }
}
