//! Leader election: several replicas run, the holder of one `coordination.k8s.io/v1` Lease
//! reconciles, the others keep their watch caches warm.
//!
//! The Lease is held with `kube-lease-manager`, the maintained crate for kube 5 (the others
//! target older kube releases). It acquires, renews and releases by server-side apply, so two
//! holders cannot both win a write. Two things it does not do are added here:
//!
//! - **Fencing.** When renewals fail (the apiserver is unreachable), the crate keeps reporting
//!   "leader". So leadership also needs a recent confirmation: the Lease, read back, names this
//!   replica and was renewed within `--leader-election-renew-deadline`. Without one, this
//!   replica stops reconciling, before the Lease (`--leader-election-lease-duration`) can expire
//!   and another replica can take it.
//! - **Prompt takeover.** A follower sleeps until the holder's Lease expires. A released Lease
//!   (the leader's SIGTERM) is seen on a watch of the one Lease, and the follower then starts
//!   afresh, reads the Lease and takes it at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use clap::Args;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::args::parse_duration_arg;

/// Leader election flags; the defaults are client-go's.
#[derive(Debug, Clone, Args)]
pub struct LeaderElectionArgs {
    /// Elect a leader among the replicas; only the leader reconciles. Off: this process always
    /// reconciles (one replica only).
    #[arg(long = "leader-elect", env = "WCA_LEADER_ELECT")]
    pub enabled: bool,
    /// Name of the Lease.
    #[arg(
        long = "leader-election-lease-name",
        env = "WCA_LEADER_ELECTION_LEASE_NAME",
        default_value = "workos-convex-auth"
    )]
    pub lease_name: String,
    /// Namespace of the Lease; unset: the pod's own ($POD_NAMESPACE), else `default`.
    #[arg(
        long = "leader-election-namespace",
        env = "WCA_LEADER_ELECTION_NAMESPACE"
    )]
    pub lease_namespace: Option<String>,
    /// How long a Lease lasts after its last renewal: a leader that died is replaced after it.
    #[arg(long = "leader-election-lease-duration", env = "WCA_LEADER_ELECTION_LEASE_DURATION", default_value = "15s", value_parser = parse_duration_arg)]
    pub lease_duration: Duration,
    /// A leader that has not confirmed its Lease for this long stops reconciling; shorter than
    /// the lease duration, so it stops before anyone else can start.
    #[arg(long = "leader-election-renew-deadline", env = "WCA_LEADER_ELECTION_RENEW_DEADLINE", default_value = "10s", value_parser = parse_duration_arg)]
    pub renew_deadline: Duration,
    /// How often the leader renews and confirms its Lease.
    #[arg(long = "leader-election-retry-period", env = "WCA_LEADER_ELECTION_RETRY_PERIOD", default_value = "2s", value_parser = parse_duration_arg)]
    pub retry_period: Duration,
}

impl LeaderElectionArgs {
    /// Checks the durations against each other: whole seconds (the Lease counts seconds), and
    /// retry period < renew deadline < lease duration.
    pub fn check(&self) -> Result<(), String> {
        let seconds = |d: Duration| d.as_secs() >= 1 && d.subsec_nanos() == 0;
        if ![self.lease_duration, self.renew_deadline, self.retry_period]
            .into_iter()
            .all(seconds)
        {
            return Err("leader election durations are whole seconds, at least 1s".into());
        }
        if !(self.retry_period < self.renew_deadline && self.renew_deadline < self.lease_duration) {
            return Err(format!(
                "--leader-election-retry-period ({}s) < --leader-election-renew-deadline ({}s) < --leader-election-lease-duration ({}s) must hold, so a leader stops before its Lease can expire",
                self.retry_period.as_secs(),
                self.renew_deadline.as_secs(),
                self.lease_duration.as_secs()
            ));
        }
        Ok(())
    }

    fn namespace(&self) -> String {
        self.lease_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| "default".to_string())
    }
}

/// This replica's identity in the Lease: the pod name, else the host name and process id.
pub fn identity() -> String {
    std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    })
}

/// Whether this replica may reconcile now, and how often that changed.
#[derive(Debug)]
pub struct Leadership {
    leading: AtomicBool,
    transitions: AtomicU64,
    /// Sends `true` each time this replica becomes the leader.
    became_leader: watch::Sender<bool>,
}

impl Leadership {
    /// Leadership without election: always the leader.
    pub fn always() -> Self {
        Self::starting(true)
    }

    fn starting(leading: bool) -> Self {
        Self {
            leading: AtomicBool::new(leading),
            transitions: AtomicU64::new(0),
            became_leader: watch::Sender::new(leading),
        }
    }

    pub fn is_leader(&self) -> bool {
        self.leading.load(Ordering::Acquire)
    }

    pub fn transitions(&self) -> u64 {
        self.transitions.load(Ordering::Relaxed)
    }

    /// A stream with an item each time this replica becomes the leader (for reconcile-all).
    pub fn on_becoming_leader(&self) -> impl futures::Stream<Item = ()> + Send + Sync + 'static {
        futures::stream::unfold(self.became_leader.subscribe(), |mut rx| async move {
            loop {
                rx.changed().await.ok()?;
                if *rx.borrow_and_update() {
                    return Some(((), rx));
                }
            }
        })
    }

    fn set(&self, leading: bool, identity: &str) {
        if self.leading.swap(leading, Ordering::AcqRel) == leading {
            return;
        }
        self.transitions.fetch_add(1, Ordering::Relaxed);
        if leading {
            tracing::info!(%identity, "became the leader; reconciling");
        } else {
            tracing::warn!(%identity, "no longer the leader; reconciling stops");
        }
        self.became_leader.send_replace(leading);
    }
}

/// The election, running until `stop` turns true; then the Lease is released if held.
pub struct Election {
    pub leadership: Arc<Leadership>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Election {
    pub fn start(client: Client, args: &LeaderElectionArgs) -> Self {
        let leadership = Arc::new(Leadership::starting(false));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(elect(
            client,
            args.clone(),
            identity(),
            leadership.clone(),
            stopped,
        ));
        Self {
            leadership,
            stop,
            task,
        }
    }

    /// Stops reconciling, releases the Lease if held (so a follower takes over at once) and
    /// waits at most `within` for it.
    pub async fn stop(self, within: Duration) {
        self.stop.send_replace(true);
        if tokio::time::timeout(within, self.task).await.is_err() {
            tracing::warn!("could not release the leader Lease in time; it expires by itself");
        }
    }
}

async fn build(client: &Client, args: &LeaderElectionArgs, identity: &str) -> LeaseManager {
    loop {
        let built = LeaseManagerBuilder::new(client.clone(), &args.lease_name)
            .with_namespace(args.namespace())
            .with_identity(identity)
            .with_duration(args.lease_duration.as_secs())
            // Renew one retry period after the last renewal.
            .with_grace(
                args.lease_duration
                    .saturating_sub(args.retry_period)
                    .as_secs(),
            )
            .with_field_manager(format!("workos-convex-auth-leader/{identity}"))
            .build()
            .await;
        match built {
            Ok(manager) => return manager,
            Err(error) => {
                tracing::warn!(%error, lease = %args.lease_name, "cannot set up leader election; retrying");
                tokio::time::sleep(args.retry_period).await;
            }
        }
    }
}

/// Runs the crate's loop in a task of its own (so nothing here cancels a renewal half-way) and
/// reports each change of its view.
fn hold(manager: Arc<LeaseManager>, retry: Duration) -> (watch::Receiver<bool>, JoinHandle<()>) {
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            match manager.changed().await {
                Ok(holds) => {
                    tx.send_replace(holds);
                }
                Err(error) => {
                    tracing::warn!(%error, "leader election: the Lease could not be read or renewed");
                    tokio::time::sleep(retry).await;
                }
            }
        }
    });
    (rx, task)
}

/// Whether the Lease, read now, names `identity` and was renewed within `deadline`.
async fn confirmed(leases: &Api<Lease>, name: &str, identity: &str, deadline: Duration) -> bool {
    let Ok(Some(lease)) = leases.get_opt(name).await else {
        return false;
    };
    let Some(spec) = lease.spec else {
        return false;
    };
    let renewed_within = spec.renew_time.is_some_and(|renewed| {
        let age = Timestamp::now().duration_since(renewed.0);
        age.as_secs() >= 0 && age.unsigned_abs() < deadline
    });
    spec.holder_identity.as_deref() == Some(identity) && renewed_within
}

async fn elect(
    client: Client,
    args: LeaderElectionArgs,
    identity: String,
    leadership: Arc<Leadership>,
    mut stop: watch::Receiver<bool>,
) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), &args.namespace());
    // Releases of the Lease: a follower starts afresh on one instead of sleeping out the
    // holder's term.
    let watch = watcher::Config::default().fields(&format!("metadata.name={}", args.lease_name));
    let mut releases = watcher(leases.clone(), watch)
        .default_backoff()
        .applied_objects()
        .filter_map(|lease| async move {
            let lease = lease.ok()?;
            let holder = lease.spec.and_then(|s| s.holder_identity);
            holder.is_none_or(|h| h.is_empty()).then_some(())
        })
        .boxed();
    let mut manager = Arc::new(build(&client, &args, &identity).await);
    let (mut holds, mut task) = hold(manager.clone(), args.retry_period);
    let mut tick = tokio::time::interval(args.retry_period);
    let mut last_confirmed: Option<tokio::time::Instant> = None;
    tracing::info!(%identity, lease = %args.lease_name, "leader election started");
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            changed = holds.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            Some(()) = releases.next(), if !*holds.borrow() => {
                task.abort();
                manager = Arc::new(build(&client, &args, &identity).await);
                (holds, task) = hold(manager.clone(), args.retry_period);
                continue;
            }
            _ = tick.tick() => {}
        }
        let holds_now = *holds.borrow();
        // Bounded: a partition can leave the read hanging (no reset, no answer), and leadership
        // must still lapse on time.
        let confirmation = tokio::time::timeout(
            args.retry_period,
            confirmed(&leases, &args.lease_name, &identity, args.renew_deadline),
        );
        if holds_now && confirmation.await.unwrap_or(false) {
            last_confirmed = Some(tokio::time::Instant::now());
        }
        let leading =
            holds_now && last_confirmed.is_some_and(|at| at.elapsed() < args.renew_deadline);
        leadership.set(leading, &identity);
    }
    // Shutting down: stop reconciling first, then hand the Lease over.
    leadership.set(false, &identity);
    task.abort();
    if *holds.borrow() {
        match manager.release().await {
            Ok(()) => tracing::info!(%identity, "released the leader Lease"),
            Err(error) => tracing::warn!(%error, "could not release the leader Lease"),
        }
    }
}
