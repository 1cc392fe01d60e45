//! `run submit-hyperdrive` on the local workspace: the sweep driver.
//!
//! A parent run `HD_<uuid>` (runType `hyperdrive`) and children `<parent>_<n>`,
//! each a normal script run prepared and executed by [`super::submit`]. The
//! driver keeps up to `max_concurrent_runs` children going, asking the sampler
//! for a new configuration as soon as a slot frees. Every primary-metric value
//! a child logs (MLflow endpoint or v1 offline-log lines) reaches the metric
//! hook, which evaluates the early-termination policy right there and cancels
//! the child's process group when the policy says so; the reason is kept on
//! the child (`error.message` and the `cancel_reason` tag).
//!
//! What the parent records, so `run show -r HD_…` answers "how did it go":
//! properties `best_child_run_id`, `score`, `best_metric_status`, child counts;
//! the sweep settings as v1 HyperDrive's tags (`_aml_system_generator_config`,
//! `_aml_system_policy_config`, `_aml_system_primary_metric_config`,
//! `_aml_system_max_total_jobs`, …, see [`crate::sweep::v1`]) and a tag
//! `_aml_system_<child run id>` per child with its hyperparameters, which is
//! where v1's `HyperDriveRun.get_hyperparameters()` looks.

use super::runner::{CancelToken, ExecOptions, MetricHook};
use super::store::{MetricPoint, NewRun, RunEnd, RunStatus, Store};
use super::submit::{
    CTRL_C_REASON, QuietUi, ScriptSubmission, SourceSnapshot, cancel_on_terminate,
    run_prepared_with_store, store_err,
};
use super::tracking::TrackingServer;
use super::{LocalWorkspace, git};
use crate::model::hdconfig::HyperDriveConfig;
use crate::sweep::{
    Goal, History, PolicySpec, Sampler, SamplingKind, SweepRng, TrialState, new_sampler,
    primary_metric, seeded,
};
use crate::workspace::{LogSink, RunOutcome, SubmitHyperdrive, WorkspaceError, WsResult};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// How often the driver looks for `run cancel -r HD_…` from another process.
const PARENT_CANCEL_POLL: Duration = Duration::from_millis(300);

/// `run submit-hyperdrive` on this machine: validate, create the parent,
/// drive the children to the end, summarize. Returns the parent run.
pub async fn submit_hyperdrive(
    ws: &LocalWorkspace,
    request: &SubmitHyperdrive,
    logs: &dyn LogSink,
) -> WsResult<RunOutcome> {
    let hd = &request.hyperdrive;
    let sampler = check(hd)?;
    // Before the parent exists: a sweep on a target that cannot run leaves no Failed run behind.
    super::launchers::check_target(&ws.read_store()?, &target_of(request))?;
    for warning in super::submit::not_honoured_locally(&request.script.run_config) {
        logs.warn(&warning);
    }
    let adopted = std::env::var(DETACHED_PARENT_ENV).ok();
    if request.script.asynchronous && adopted.is_none() {
        let seed = request.seed.unwrap_or_else(rand_seed);
        let parent = create_parent(ws, request, seed)?;
        spawn_detached_sweep(ws, &parent)?;
        logs.info(&format!("RunId: {parent}"));
        return super::submit::outcome(ws, &parent, false);
    }
    let (parent, seed) = match adopted {
        Some(parent) => adopt_parent(ws, &parent)?,
        None => {
            let seed = request.seed.unwrap_or_else(rand_seed);
            (create_parent(ws, request, seed)?, seed)
        }
    };
    // One connection for the driver, every child and the tracking endpoint.
    let store = Arc::new(Mutex::new(ws.store()?));
    {
        let store = lock(&store);
        store.checkpoint_rarely().map_err(store_err)?;
        store
            .mark_running(&parent, std::process::id())
            .map_err(store_err)?;
    }
    logs.info(&format!("RunId: {parent}"));
    let tracking = TrackingServer::start_with_store(&ws.root, store.clone())
        .await
        .map_err(|e| failed(e.to_string(), None))?;
    let tracking = Arc::new(tracking);
    let driver = Driver::new(
        ws,
        request,
        parent.clone(),
        sampler,
        seed,
        tracking.clone(),
        store.clone(),
    );
    let result = match driver {
        Ok(mut driver) => driver.run(logs).await.map(|summary| (driver, summary)),
        Err(e) => Err(e),
    };
    if let Ok(tracking) = Arc::try_unwrap(tracking) {
        tracking.shutdown().await;
    }
    let (driver, summary) = match result {
        Ok(done) => done,
        Err(e) => {
            end_parent(ws, &parent, RunStatus::Failed, Some(e.to_string()))?;
            return Err(e);
        }
    };
    driver.report(&summary, logs)?;
    end_parent(ws, &parent, summary.status, summary.reason.clone())?;
    let store = lock(&store);
    if let Err(e) = store.checkpoint() {
        tracing::debug!("checkpoint after the sweep: {e}");
    }
    super::submit::outcome_in(ws, &store, &parent, summary.interrupted)
}

/// Set for the detached sweep supervisor: the parent run it drives.
pub const DETACHED_PARENT_ENV: &str = "AZML_SWEEP_PARENT_RUN_ID";

/// `--async`: run this same azml command line again, detached (new session,
/// no terminal), told by [`DETACHED_PARENT_ENV`] to drive the parent just
/// created. Its output (progress, table) goes to the parent's
/// `user_logs/std_log.txt`, so `run monitor-logs -r HD_…` follows the sweep.
fn spawn_detached_sweep(ws: &LocalWorkspace, parent: &str) -> WsResult<()> {
    let log_path = super::store::run_dir(&ws.root, parent).join(super::runner::STD_LOG);
    let log = log_path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::File::create(&log_path))
        .and_then(|f| Ok((f.try_clone()?, f)))
        .map_err(|e| failed(format!("cannot create {}: {e}", log_path.display()), None))?;
    let exe = std::env::current_exe()
        .map_err(|e| failed(format!("cannot find the azml executable: {e}"), None))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(std::env::args_os().skip(1))
        .env(DETACHED_PARENT_ENV, parent)
        .stdin(std::process::Stdio::null())
        .stdout(log.0)
        .stderr(log.1);
    let child = super::process::spawn_in_new_session(&mut cmd)
        .map_err(|e| failed(format!("cannot start the sweep supervisor: {e}"), None))?;
    ws.store()?
        .set_supervisor(parent, child.id())
        .map_err(store_err)?;
    Ok(())
}

/// The detached supervisor takes over the parent its launcher created, with
/// the seed recorded there (so `--async` without `--seed` is still replayable).
fn adopt_parent(ws: &LocalWorkspace, parent: &str) -> WsResult<(String, u64)> {
    let run = ws.store()?.run(parent).map_err(store_err)?;
    if run.run_type != "hyperdrive" || run.status != RunStatus::NotStarted {
        return Err(failed(
            format!("run '{parent}' is not a sweep waiting to start ({DETACHED_PARENT_ENV})"),
            Some("this variable is set by azml for its own sweep supervisor; unset it"),
        ));
    }
    let seed = run
        .properties
        .get("seed")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand_seed);
    Ok((parent.to_string(), seed))
}

/// What must hold before any child starts: a sampler for this space, and no
/// early termination with Bayesian sampling (it learns from complete runs).
fn check(hd: &HyperDriveConfig) -> WsResult<Box<dyn Sampler>> {
    if hd.sampling == SamplingKind::Bayesian && hd.policy != PolicySpec::NoTermination {
        return Err(WorkspaceError::Invalid(format!(
            "Bayesian sampling does not support early termination ({})",
            hd.policy.name()
        )));
    }
    new_sampler(hd.sampling, &hd.parameter_space, hd.primary_metric_goal).map_err(|e| {
        use crate::error::ExitCoded;
        failed(e.to_string(), e.hint().as_deref())
    })
}

/// Without `--seed`, a fresh seed (recorded on the parent, so the sweep can be
/// replayed with `--seed`).
fn rand_seed() -> u64 {
    let bytes = *uuid::Uuid::new_v4().as_bytes();
    u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8]))
}

fn failed(message: impl Into<String>, hint: Option<&str>) -> WorkspaceError {
    WorkspaceError::Failed {
        message: message.into(),
        hint: hint.map(str::to_string),
    }
}

/// Create the parent run (NotStarted, supervised by this process until it
/// starts the sweep or hands it to a detached supervisor).
/// The sweep's compute target (`--ct` is already in the runconfig).
fn target_of(request: &SubmitHyperdrive) -> String {
    Some(request.script.run_config.target.clone())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| super::launchers::LOCAL_TARGET.into())
}

fn create_parent(ws: &LocalWorkspace, request: &SubmitHyperdrive, seed: u64) -> WsResult<String> {
    let hd = &request.hyperdrive;
    let run_id = format!("HD_{}", uuid::Uuid::new_v4());
    let target = target_of(request);
    let primary =
        crate::sweep::v1::primary_metric_config(&hd.primary_metric_name, hd.primary_metric_goal)
            .to_string();
    let properties = [
        ("runTemplate", "HyperDrive".to_string()),
        ("azureml.runsource", "hyperdrive".to_string()),
        ("primary_metric_config", primary.clone()),
        ("seed", seed.to_string()),
    ];
    let properties: Map<String, Value> = properties
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::String(v)))
        .collect();
    // What v1's HyperDriveRun reads back from the parent (`_get_tag_from_dict`).
    let tags = [
        (
            "generator_config",
            crate::sweep::v1::generator_config(hd.sampling, &hd.parameter_space).to_string(),
        ),
        ("primary_metric_config", primary),
        (
            "policy_config",
            crate::sweep::v1::policy_config(&hd.policy).to_string(),
        ),
        ("max_total_jobs", hd.max_total_runs.to_string()),
        ("max_concurrent_jobs", hd.max_concurrent_runs.to_string()),
        ("max_duration_minutes", hd.max_duration_minutes.to_string()),
    ];
    let tags: BTreeMap<String, String> = tags
        .into_iter()
        .map(|(k, v)| (format!("_aml_system_{k}"), v))
        .collect();
    let store = ws.store()?;
    store
        .create_run(&NewRun {
            run_id: run_id.clone(),
            experiment: request.script.experiment.clone(),
            parent_run_id: None,
            run_type: "hyperdrive".into(),
            target,
            display_name: None,
            properties,
            tags,
        })
        .map_err(store_err)?;
    store
        .set_supervisor(&run_id, std::process::id())
        .map_err(store_err)?;
    Ok(run_id)
}

fn end_parent(
    ws: &LocalWorkspace,
    parent: &str,
    status: RunStatus,
    reason: Option<String>,
) -> WsResult<()> {
    let error = reason.map(|r| (status.as_str().to_string(), r));
    let end = RunEnd {
        status,
        exit_code: None,
        error: error.filter(|_| status != RunStatus::Completed),
    };
    ws.store()?.finish_run(parent, &end).map_err(store_err)?;
    Ok(())
}

/// One child as the driver and the metric hook see it.
struct Child {
    run_id: String,
    values: Vec<Value>,
    cancel: CancelToken,
    /// Primary-metric values in logged order (what policies compare).
    primary: Vec<f64>,
    /// Set once the policy cancelled it: later values are ignored.
    policy_reason: Option<String>,
    status: Option<RunStatus>,
}

/// A child run created and prepared, not started yet.
struct Ready {
    index: usize,
    run_id: String,
    cancel: CancelToken,
}

/// State shared with the metric hook (which runs inside tracking requests).
struct Shared {
    children: Vec<Child>,
    policy: PolicySpec,
    goal: Goal,
    metric: String,
}

impl Shared {
    /// A child logged `value` for the primary metric: store it, evaluate the
    /// policy at this interval, cancel the child if it says so.
    fn on_primary(&mut self, index: usize, value: f64) {
        let Some(child) = self.children.get_mut(index) else {
            return;
        };
        if child.policy_reason.is_some() || child.status.is_some() {
            return;
        }
        child.primary.push(value);
        let runs: Vec<&[f64]> = self.children.iter().map(|c| c.primary.as_slice()).collect();
        let Some(decision) = self.policy.evaluate(self.goal, index, &runs) else {
            return;
        };
        if decision.cancel {
            let reason = format!(
                "canceled by the early-termination policy: {}",
                decision.reason
            );
            let child = &mut self.children[index];
            child.cancel.cancel(reason.clone());
            child.policy_reason = Some(reason);
        }
    }
}

/// How the sweep ended.
struct Summary {
    status: RunStatus,
    reason: Option<String>,
    interrupted: bool,
}

/// Why the driver stopped starting children early.
#[derive(Debug, Clone, PartialEq)]
enum Stop {
    Interrupted,
    Deadline,
    Canceled(String),
}

struct Driver<'a> {
    ws: &'a LocalWorkspace,
    request: &'a SubmitHyperdrive,
    parent: String,
    sampler: Box<dyn Sampler>,
    rng: SweepRng,
    history: History,
    shared: Arc<Mutex<Shared>>,
    tracking: Arc<TrackingServer>,
    /// One connection for the whole sweep (driver and children): opening one
    /// per child (schema checks, orphan scan) was most of the per-child cost.
    store: Arc<Mutex<Store>>,
    /// Git facts and the snapshot are the same for every child: taken once.
    git: Map<String, Value>,
    snapshot: Arc<SourceSnapshot>,
    /// The next child, prepared while every slot was busy.
    ready: Option<Ready>,
}

fn lock<T>(shared: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<'a> Driver<'a> {
    fn new(
        ws: &'a LocalWorkspace,
        request: &'a SubmitHyperdrive,
        parent: String,
        sampler: Box<dyn Sampler>,
        seed: u64,
        tracking: Arc<TrackingServer>,
        store: Arc<Mutex<Store>>,
    ) -> WsResult<Self> {
        let hd = &request.hyperdrive;
        let snapshot = Arc::new(ws.take_snapshot(&request.script.source_dir, &QuietUi)?);
        let shared = Shared {
            children: Vec::new(),
            policy: hd.policy.clone(),
            goal: hd.primary_metric_goal,
            metric: hd.primary_metric_name.clone(),
        };
        Ok(Driver {
            ws,
            request,
            parent,
            sampler,
            rng: seeded(seed),
            history: History::default(),
            shared: Arc::new(Mutex::new(shared)),
            tracking,
            store,
            git: git::git_properties(&request.script.source_dir),
            snapshot,
            ready: None,
        })
    }

    fn hd(&self) -> &HyperDriveConfig {
        &self.request.hyperdrive
    }

    /// The scheduling loop: fill free slots, react to children ending, to
    /// Ctrl-C/SIGTERM, to the deadline and to `run cancel` of the parent.
    async fn run(&mut self, logs: &dyn LogSink) -> WsResult<Summary> {
        let (tx, mut rx) = mpsc::unbounded_channel::<(usize, WsResult<RunEnd>)>();
        let (freed_tx, mut freed_rx) = mpsc::unbounded_channel::<usize>();
        // Children whose slot is free again (their process ended).
        let mut freed: HashSet<usize> = HashSet::new();
        let terminate = CancelToken::new();
        cancel_on_terminate(&terminate, "canceled: azml received SIGTERM or SIGHUP");
        let deadline = tokio::time::Instant::now()
            + Duration::from_secs(u64::from(self.hd().max_duration_minutes) * 60);
        let mut poll = tokio::time::interval(PARENT_CANCEL_POLL);
        let mut stop: Option<Stop> = None;
        let mut exhausted = false;
        // Slots in use (processes running) and children not yet reported
        // back (their bookkeeping may still run after their slot is free).
        let mut running = 0usize;
        let mut outstanding = 0usize;
        let mut launch_error = None;
        loop {
            let mut started = false;
            while stop.is_none() && !exhausted && launch_error.is_none() && running < self.slots() {
                match self.launch_next(&tx, &freed_tx) {
                    Ok(true) => {
                        running += 1;
                        outstanding += 1;
                        started = true;
                    }
                    Ok(false) => exhausted = true,
                    Err(e) => launch_error = Some(e),
                }
            }
            if started {
                // The runtime has one thread: let the children just started
                // spawn their processes before the next one is prepared.
                tokio::task::yield_now().await;
            }
            if launch_error.is_some() && outstanding > 0 && stop.is_none() {
                self.cancel_all("canceled: the sweep could not start its next child run");
                stop = Some(Stop::Canceled("a child run could not be started".into()));
            }
            if stop.is_none() && !exhausted && launch_error.is_none() && running == self.slots() {
                match self.prepare_ahead() {
                    Ok(true) => {}
                    Ok(false) => exhausted = true,
                    Err(e) => launch_error = Some(e),
                }
            }
            if outstanding == 0 {
                break;
            }
            tokio::select! {
                Some(index) = freed_rx.recv() => {
                    if freed.insert(index) {
                        running -= 1;
                    }
                }
                Some((index, end)) = rx.recv() => {
                    if freed.insert(index) {
                        running -= 1;
                    }
                    outstanding -= 1;
                    self.child_ended(index, end);
                    logs.write(&self.progress_line());
                }
                _ = tokio::signal::ctrl_c(), if stop.is_none() => {
                    self.cancel_all(CTRL_C_REASON);
                    stop = Some(Stop::Interrupted);
                }
                reason = terminate.cancelled(), if stop.is_none() => {
                    self.cancel_all(&reason);
                    stop = Some(Stop::Canceled(reason));
                }
                _ = tokio::time::sleep_until(deadline), if stop.is_none() => {
                    let minutes = self.hd().max_duration_minutes;
                    self.cancel_all(&format!("canceled: the sweep reached max_duration_minutes ({minutes})"));
                    stop = Some(Stop::Deadline);
                }
                _ = poll.tick(), if stop.is_none() => {
                    if let Some(reason) = self.parent_cancel_request()? {
                        self.cancel_all(&reason);
                        stop = Some(Stop::Canceled(reason));
                    }
                }
            }
        }
        self.drop_ready();
        if let Some(e) = launch_error {
            return Err(e);
        }
        Ok(self.summary(stop))
    }

    /// How many children may run at once (at least one).
    fn slots(&self) -> usize {
        self.hd().max_concurrent_runs.max(1) as usize
    }

    /// Whether a child's slot is given to the next one as soon as its
    /// process ended, before its bookkeeping (≈ 1 ms of a slot idle per
    /// child otherwise). Only where the next suggestion cannot depend on
    /// that child's result: random and grid sampling; Bayesian waits for it.
    fn frees_slots_early(&self) -> bool {
        self.hd().sampling != SamplingKind::Bayesian
    }

    fn parent_cancel_request(&self) -> WsResult<Option<String>> {
        lock(&self.store)
            .cancel_request(&self.parent)
            .map_err(store_err)
    }

    fn cancel_all(&self, reason: &str) {
        let shared = lock(&self.shared);
        for child in shared.children.iter().filter(|c| c.status.is_none()) {
            child.cancel.cancel(reason);
        }
    }

    /// Start the next child: the one prepared ahead, else a new suggestion.
    /// `Ok(false)` when the budget or the space is used up.
    fn launch_next(
        &mut self,
        tx: &mpsc::UnboundedSender<(usize, WsResult<RunEnd>)>,
        freed: &mpsc::UnboundedSender<usize>,
    ) -> WsResult<bool> {
        let next = match self.ready.take() {
            Some(ready) => ready,
            None => match self.prepare_next()? {
                Some(ready) => ready,
                None => return Ok(false),
            },
        };
        self.start(next, tx, freed);
        Ok(true)
    }

    /// While every slot is busy, prepare the next child (random and grid
    /// sampling only, see [`Driver::frees_slots_early`]), so a freed slot
    /// only has to spawn it. `Ok(false)` when the budget or space is used up.
    fn prepare_ahead(&mut self) -> WsResult<bool> {
        if self.ready.is_some() || !self.frees_slots_early() {
            return Ok(true);
        }
        self.ready = self.prepare_next()?;
        Ok(self.ready.is_some())
    }

    /// The sweep stopped with a child prepared but never started: it is
    /// forgotten (record, folder, the parent's tag for it), as if it had
    /// never been suggested — it is always the last one.
    fn drop_ready(&mut self) {
        let Some(ready) = self.ready.take() else {
            return;
        };
        let store = lock(&self.store);
        let forgotten = store
            .forget_unstarted_run(&ready.run_id)
            .and_then(|_| store.delete_tag(&self.parent, &format!("_aml_system_{}", ready.run_id)));
        if let Err(e) = forgotten {
            tracing::warn!("cannot remove the unstarted child {}: {e}", ready.run_id);
        }
        drop(store);
        lock(&self.shared).children.truncate(ready.index);
        self.history.truncate(ready.index);
    }

    /// Ask the sampler for the next configuration and create it as a child
    /// run, not started. `Ok(None)` when the budget or the space is used up.
    fn prepare_next(&mut self) -> WsResult<Option<Ready>> {
        if self.history.trials.len() >= self.hd().max_total_runs as usize {
            return Ok(None);
        }
        let Some(values) = self.sampler.suggest(&self.history, &mut self.rng) else {
            return Ok(None);
        };
        let index = self.history.push_running(values.clone());
        let run_id = format!("{}_{index}", self.parent);
        let cancel = CancelToken::new();
        lock(&self.shared).children.push(Child {
            run_id: run_id.clone(),
            values: values.clone(),
            cancel: cancel.clone(),
            primary: Vec::new(),
            policy_reason: None,
            status: None,
        });
        if let Err(e) = self.prepare_child(&run_id, &values) {
            let mut shared = lock(&self.shared);
            shared.children[index].status = Some(RunStatus::Failed);
            self.history.trials[index].state = TrialState::Failed;
            return Err(e);
        }
        Ok(Some(Ready {
            index,
            run_id,
            cancel,
        }))
    }

    /// Run a prepared child in a task of its own; its end comes back on `tx`.
    fn start(
        &self,
        Ready {
            index,
            run_id,
            cancel,
        }: Ready,
        tx: &mpsc::UnboundedSender<(usize, WsResult<RunEnd>)>,
        freed: &mpsc::UnboundedSender<usize>,
    ) {
        let opts = ExecOptions {
            cancel,
            on_metric: Some(self.metric_hook(index)),
            on_exit: self.frees_slots_early().then(|| {
                let freed = freed.clone();
                Arc::new(move || {
                    let _ = freed.send(index);
                }) as Arc<dyn Fn() + Send + Sync>
            }),
            ..Default::default()
        };
        let root = self.ws.root.clone();
        let tracking = self.tracking.clone();
        let store = self.store.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let end = run_prepared_with_store(&root, &store, &run_id, &tracking, &opts).await;
            let _ = tx.send((index, end));
        });
    }

    /// Create the child run with its argv, environment and hyperparameters.
    fn prepare_child(&self, run_id: &str, values: &[Value]) -> WsResult<()> {
        let script = &self.request.script;
        let space = &self.hd().parameter_space;
        let mut extra_args = Vec::new();
        let mut extra_env = BTreeMap::new();
        let mut hyperparameters = Map::new();
        for (p, v) in space.iter().zip(values) {
            let text = value_arg(v);
            extra_args.push(p.flag());
            extra_args.push(text.clone());
            extra_env.insert(
                format!("AZUREML_PARAMETER_{}", p.name.trim_start_matches('-')),
                text,
            );
            hyperparameters.insert(p.name.clone(), v.clone());
        }
        let hyperparameters = Value::Object(hyperparameters).to_string();
        let submission = ScriptSubmission {
            experiment: script.experiment.clone(),
            run_config: script.run_config.clone(),
            source_dir: script.source_dir.clone(),
            project_dir: Some(script.project_dir.clone()),
            run_id: Some(run_id.to_string()),
            parent_run_id: Some(self.parent.clone()),
            extra_args,
            extra_env,
            tags: BTreeMap::from([("hyperparameters".to_string(), hyperparameters.clone())]),
            git_properties: Some(self.git.clone()),
            snapshot: Some(self.snapshot.clone()),
            ..Default::default()
        };
        let store = lock(&self.store);
        self.ws
            .prepare_script_run_in(&store, &submission, &QuietUi)?;
        for (p, v) in space.iter().zip(values) {
            store
                .log_param(run_id, &p.name, &value_arg(v))
                .map_err(store_err)?;
        }
        store
            .set_tag(
                &self.parent,
                &format!("_aml_system_{run_id}"),
                &hyperparameters,
            )
            .map_err(store_err)?;
        Ok(())
    }

    fn metric_hook(&self, index: usize) -> MetricHook {
        let shared = self.shared.clone();
        Arc::new(move |_run_id: &str, point: &MetricPoint| {
            let mut shared = lock(&shared);
            if point.name == shared.metric {
                shared.on_primary(index, point.value);
            }
        })
    }

    /// A child finished: record its state and metric for the sampler, and
    /// why it was canceled (if it was) as its `cancel_reason` tag.
    fn child_ended(&mut self, index: usize, end: WsResult<RunEnd>) {
        let status = end.as_ref().map_or(RunStatus::Failed, |e| e.status);
        let (metric, run_id, policy_reason) = {
            let mut shared = lock(&self.shared);
            let goal = shared.goal;
            let child = &mut shared.children[index];
            child.status = Some(status);
            (
                primary_metric(&child.primary, goal),
                child.run_id.clone(),
                child.policy_reason.clone(),
            )
        };
        let trial = &mut self.history.trials[index];
        trial.metric = metric;
        trial.state = match status {
            RunStatus::Completed => TrialState::Completed,
            RunStatus::Canceled => TrialState::Canceled,
            _ => TrialState::Failed,
        };
        // Whoever canceled it (policy, deadline, `run cancel`, Ctrl-C), say why.
        let reason = policy_reason.or_else(|| {
            let end = end.as_ref().ok()?;
            end.error.as_ref().map(|(_, message)| message.clone())
        });
        if let (RunStatus::Canceled, Some(reason)) = (status, reason) {
            let _ = lock(&self.store).set_tag(&run_id, "cancel_reason", &reason);
        }
        if let Err(e) = end {
            tracing::warn!(run_id, error = %e, "child run failed to execute");
        }
    }

    /// `[HD_…] 3 done (1 canceled), 2 running, best Accuracy 0.91 (HD_…_2)`.
    fn progress_line(&self) -> String {
        let shared = lock(&self.shared);
        let done = shared
            .children
            .iter()
            .filter(|c| c.status.is_some())
            .count();
        let canceled = shared
            .children
            .iter()
            .filter(|c| c.status == Some(RunStatus::Canceled))
            .count();
        let running = shared.children.len() - done - usize::from(self.ready.is_some());
        let best = best_child(&shared)
            .map(|(id, m)| format!(", best {} {} ({id})", shared.metric, fmt_metric(m)))
            .unwrap_or_default();
        format!(
            "[{}] {done} done ({canceled} canceled), {running} running{best}\n",
            self.parent
        )
    }

    fn summary(&self, stop: Option<Stop>) -> Summary {
        let shared = lock(&self.shared);
        let any = |s: RunStatus| shared.children.iter().any(|c| c.status == Some(s));
        match stop {
            Some(Stop::Interrupted) => Summary {
                status: RunStatus::Canceled,
                reason: Some(CTRL_C_REASON.into()),
                interrupted: true,
            },
            Some(Stop::Canceled(reason)) => Summary {
                status: RunStatus::Canceled,
                reason: Some(reason),
                interrupted: false,
            },
            _ if !any(RunStatus::Completed) && any(RunStatus::Failed) => Summary {
                status: RunStatus::Failed,
                reason: Some("no child run completed; see the failed children's logs".into()),
                interrupted: false,
            },
            Some(Stop::Deadline) | None => Summary {
                status: RunStatus::Completed,
                reason: None,
                interrupted: false,
            },
        }
    }

    /// Record the outcome on the parent and print the children table.
    fn report(&self, summary: &Summary, logs: &dyn LogSink) -> WsResult<()> {
        let shared = lock(&self.shared);
        let store = lock(&self.store);
        let count = |s: RunStatus| {
            shared
                .children
                .iter()
                .filter(|c| c.status == Some(s))
                .count()
        };
        let mut props = Map::new();
        props.insert(
            "child_runs_total".into(),
            json!(shared.children.len().to_string()),
        );
        props.insert(
            "child_runs_completed".into(),
            json!(count(RunStatus::Completed).to_string()),
        );
        props.insert(
            "child_runs_canceled".into(),
            json!(count(RunStatus::Canceled).to_string()),
        );
        props.insert(
            "child_runs_failed".into(),
            json!(count(RunStatus::Failed).to_string()),
        );
        let best = best_child(&shared);
        if let Some((id, metric)) = &best {
            props.insert("best_child_run_id".into(), json!(id));
            props.insert("score".into(), json!(metric.to_string()));
            props.insert("best_metric_status".into(), json!("Succeeded"));
        }
        store
            .add_properties(&self.parent, &props)
            .map_err(store_err)?;
        logs.write(&children_table(&shared, &self.hd().parameter_space));
        match best {
            Some((id, metric)) => logs.write(&format!(
                "Best run: {id} ({} {})\n",
                shared.metric,
                fmt_metric(metric)
            )),
            None if !shared.children.is_empty()
                && shared
                    .children
                    .iter()
                    .all(|c| c.status == Some(RunStatus::Failed)) =>
            {
                // Not a metric-name problem: nothing ran to the end.
                logs.warn(&format!(
                    "every child run failed, so none could be ranked; see a child's log with \
                     `azml run download-logs -r {}_0 -d logs`",
                    self.parent
                ));
            }
            None if !shared.children.is_empty() => {
                logs.warn(&never_logged_warning(&store, &shared));
            }
            None => logs.warn("the sweep started no child runs"),
        }
        if summary.status != RunStatus::Completed
            && let Some(reason) = &summary.reason
        {
            logs.write(&format!(
                "The sweep ended {}: {reason}\n",
                summary.status.as_str()
            ));
        }
        Ok(())
    }
}

/// The best child by v1's best-run rule (over every value each logged).
fn best_child(shared: &Shared) -> Option<(String, f64)> {
    shared
        .children
        .iter()
        .filter_map(|c| primary_metric(&c.primary, shared.goal).map(|m| (c.run_id.clone(), m)))
        .reduce(|a, b| if shared.goal.better(b.1, a.1) { b } else { a })
}

/// "the primary metric was never logged", naming what was.
fn never_logged_warning(store: &Store, shared: &Shared) -> String {
    let mut names: Vec<String> = shared
        .children
        .iter()
        .flat_map(|c| store.metrics(&c.run_id).unwrap_or_default())
        .map(|p| p.name)
        .collect();
    names.sort();
    names.dedup();
    let logged = if names.is_empty() {
        "no metrics at all".to_string()
    } else {
        names.join(", ")
    };
    format!(
        "no child run logged the primary metric '{}' (they logged: {logged}); \
         the sweep could not rank its runs\nhint: make primary_metric_name match the name \
         the script logs (names are case-sensitive)",
        shared.metric
    )
}

/// Children sorted best first by primary metric (unranked last).
fn children_table(shared: &Shared, space: &[crate::sweep::Parameter]) -> String {
    let mut rows: Vec<(Option<f64>, [String; 4])> = shared
        .children
        .iter()
        .map(|c| {
            let metric = primary_metric(&c.primary, shared.goal);
            let params: Vec<String> = space
                .iter()
                .zip(&c.values)
                .map(|(p, v)| format!("{}={}", p.name, value_arg(v)))
                .collect();
            let status = c.status.map_or("Running", RunStatus::as_str);
            let cells = [
                c.run_id.clone(),
                params.join(" "),
                metric.map_or("-".into(), fmt_metric),
                status.to_string(),
            ];
            (metric, cells)
        })
        .collect();
    rows.sort_by(|a, b| match (a.0, b.0) {
        (Some(x), Some(y)) if shared.goal.better(x, y) => std::cmp::Ordering::Less,
        (Some(x), Some(y)) if shared.goal.better(y, x) => std::cmp::Ordering::Greater,
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        _ => std::cmp::Ordering::Equal,
    });
    let header = [
        "RUN ID".to_string(),
        "HYPERPARAMETERS".into(),
        shared.metric.clone(),
        "STATUS".into(),
    ];
    let mut widths = header.clone().map(|h| h.chars().count());
    for (_, cells) in &rows {
        for (w, c) in widths.iter_mut().zip(cells) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String; 4]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(&header);
    for (_, cells) in &rows {
        out.push_str(&line(cells));
    }
    out
}

fn fmt_metric(x: f64) -> String {
    let s = format!("{x:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// A sampled value as the script receives it: strings verbatim, numbers as
/// JSON prints them, booleans/null as Python's `str()` did in v1.
pub fn value_arg(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_reach_the_script_as_v1_printed_them() {
        assert_eq!(value_arg(&json!("adam")), "adam");
        assert_eq!(value_arg(&json!(0.5)), "0.5");
        assert_eq!(value_arg(&json!(16)), "16");
        assert_eq!(value_arg(&json!(true)), "True");
    }

    fn shared_with(policy: PolicySpec, curves: &[&[f64]]) -> Shared {
        let children = curves
            .iter()
            .enumerate()
            .map(|(i, c)| Child {
                run_id: format!("HD_x_{i}"),
                values: vec![],
                cancel: CancelToken::new(),
                primary: c.to_vec(),
                policy_reason: None,
                status: None,
            })
            .collect();
        Shared {
            children,
            policy,
            goal: Goal::Maximize,
            metric: "accuracy".into(),
        }
    }

    #[test]
    fn a_policy_cancel_stops_recording_further_values() {
        let policy = PolicySpec::Bandit {
            evaluation_interval: 1,
            delay_evaluation: 0,
            slack: crate::sweep::Slack::Amount(0.1),
        };
        let mut shared = shared_with(policy, &[&[0.9, 0.9], &[]]);
        shared.on_primary(1, 0.5);
        let reason = shared.children[1].cancel.reason().expect("cancelled");
        assert!(reason.contains("BanditPolicy at interval 1"), "{reason}");
        shared.on_primary(1, 0.95);
        assert_eq!(shared.children[1].primary, vec![0.5]);
    }
}
