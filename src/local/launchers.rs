//! Which [`Launcher`] runs a job on a given compute target. `local` is this
//! machine; targets stored in the workspace (SSH hosts) get their launcher here.

use super::runner::{Launcher, LocalLauncher};
use super::store::Store;
use crate::workspace::{WorkspaceError, WsResult};

/// The implicit compute target every local workspace has.
pub const LOCAL_TARGET: &str = "local";

/// Fail early (before a run is created) when `target` cannot run jobs.
pub fn check_target(store: &Store, target: &str) -> WsResult<()> {
    launcher_for(store, target).map(|_| ())
}

/// Start what can start before the run is prepared: the launch session of
/// an SSH target (see [`super::ssh::launcher::SshLauncher::prewarm`]).
pub fn prewarm(store: &Store, target: &str) {
    if target.is_empty() || target == LOCAL_TARGET {
        return;
    }
    let Ok(Some(compute)) = store.compute(target) else {
        return;
    };
    if compute.compute_type != super::ssh::attach::COMPUTE_TYPE {
        return;
    }
    if let Ok(launcher) = super::ssh::launcher::SshLauncher::from_record(&compute, store.root()) {
        launcher.prewarm();
    }
}

/// The launcher for `target`.
pub fn launcher_for(store: &Store, target: &str) -> WsResult<Box<dyn Launcher>> {
    if target == LOCAL_TARGET {
        return Ok(Box::new(LocalLauncher));
    }
    let compute = store
        .compute(target)
        .map_err(super::submit::store_err)?
        .ok_or_else(|| WorkspaceError::Failed {
            message: format!("compute target '{target}' does not exist in the local workspace"),
            hint: Some(
                "use `--ct local`, attach an SSH host with `azml computetarget attach remote`, \
                 or attach an Azure workspace to use its computes"
                    .into(),
            ),
        })?;
    if compute.compute_type == super::ssh::attach::COMPUTE_TYPE {
        return Ok(Box::new(super::ssh::launcher::SshLauncher::from_record(
            &compute,
            store.root(),
        )?));
    }
    Err(WorkspaceError::Unsupported {
        what: format!(
            "running on compute target '{target}' ({})",
            compute.compute_type
        ),
        backend: "local",
        hint: None,
    })
}
