//! Leader election: several replicas run, the holder of one `coordination.k8s.io/v1` Lease
//! reconciles, the others keep their watch caches warm.
//!
//! The Lease is held with `kube-lease-manager`, the maintained crate for kube 5 (the others
//! target older kube releases). It acquires, renews and releases by server-side apply, so two
//! holders cannot both win a write. Two things it does not do are added here:
//!
//! - **Fencing.** When renewals fail (the apiserver is unreachable, or refuses the writes), the
//!   crate keeps reporting "leader". So leadership also needs a confirmation: the Lease, read
//!   back, names this replica and was renewed less than `--leader-election-renew-deadline` ago.
//!   Leadership then lasts until that renewal's deadline, counted from the moment the read was
//!   sent (`asked + (renew deadline − age of renewTime)`), not from when the read came back, so
//!   it ends before the Lease (`--leader-election-lease-duration`) can expire and another replica
//!   can take it. [`Leadership::is_leader`] checks that instant itself, and every reconcile races
//!   [`Leadership::lost`]: a reconcile in progress when leadership ends is dropped there.
//! - **Prompt takeover.** A follower sleeps until the holder's Lease expires. A released Lease
//!   (the leader's SIGTERM) is seen on a watch of the one Lease, and the follower then starts
//!   afresh, reads the Lease and takes it at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use clap::Args;
use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::duration::parse_duration;

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
    #[arg(long = "leader-election-lease-duration", env = "WCA_LEADER_ELECTION_LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,
    /// A leader that has not confirmed its Lease for this long stops reconciling; shorter than
    /// the lease duration, so it stops before anyone else can start.
    #[arg(long = "leader-election-renew-deadline", env = "WCA_LEADER_ELECTION_RENEW_DEADLINE", default_value = "10s", value_parser = parse_duration)]
    pub renew_deadline: Duration,
    /// How often the leader renews and confirms its Lease.
    #[arg(long = "leader-election-retry-period", env = "WCA_LEADER_ELECTION_RETRY_PERIOD", default_value = "2s", value_parser = parse_duration)]
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
    /// Until when leading holds without a new confirmation; `None`: no deadline (no election).
    valid_until: std::sync::Mutex<Option<Instant>>,
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
            valid_until: std::sync::Mutex::new(None),
            transitions: AtomicU64::new(0),
            became_leader: watch::Sender::new(leading),
        }
    }

    /// Whether this replica leads now: elected, and within the deadline of its last
    /// confirmation (checked here, so leadership ends on time even if the election loop is late).
    pub fn is_leader(&self) -> bool {
        self.leading.load(Ordering::Acquire)
            && self.deadline().is_none_or(|until| Instant::now() < until)
    }

    fn deadline(&self) -> Option<Instant> {
        self.valid_until.lock().ok().and_then(|until| *until)
    }

    /// Resolves when this replica stops leading (at once if it does not lead): on a lost
    /// election, or at the deadline of the last confirmation unless a newer one moved it.
    pub async fn lost(&self) {
        let mut changes = self.became_leader.subscribe();
        loop {
            if !self.is_leader() {
                return;
            }
            match self.deadline() {
                Some(until) => tokio::select! {
                    changed = changes.changed() => if changed.is_err() { return },
                    () = tokio::time::sleep_until(until) => {}
                },
                None => {
                    if changes.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
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

    fn set(&self, leading: bool, valid_until: Option<Instant>, identity: &str) {
        if let Ok(mut until) = self.valid_until.lock() {
            *until = valid_until;
        }
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

/// How much of the renew deadline is left, if the Lease, read now, names `identity` and was
/// renewed less than `deadline` ago.
async fn confirmed(
    leases: &Api<Lease>,
    name: &str,
    identity: &str,
    deadline: Duration,
) -> Option<Duration> {
    let lease = leases.get_opt(name).await.ok()??;
    let spec = lease.spec?;
    if spec.holder_identity.as_deref() != Some(identity) {
        return None;
    }
    remaining(spec.renew_time.map(|t| t.0)?, Timestamp::now(), deadline)
}

/// `deadline − (now − renewed)`, if positive: a renewal in the future (clock skew) counts as
/// now, never as extra time.
fn remaining(renewed: Timestamp, now: Timestamp, deadline: Duration) -> Option<Duration> {
    let age = now.duration_since(renewed);
    let age = if age.is_negative() {
        Duration::ZERO
    } else {
        age.unsigned_abs()
    };
    deadline.checked_sub(age).filter(|left| !left.is_zero())
}

/// The Lease's releases (no holder left): a follower starts afresh on one instead of sleeping
/// out the holder's term.
fn releases(leases: Api<Lease>, lease_name: &str) -> BoxStream<'static, ()> {
    let watch = watcher::Config::default().fields(&format!("metadata.name={lease_name}"));
    watcher(leases, watch)
        .default_backoff()
        .applied_objects()
        .filter_map(|lease| async move {
            let lease = lease.ok()?;
            let holder = lease.spec.and_then(|s| s.holder_identity);
            holder.is_none_or(|h| h.is_empty()).then_some(())
        })
        .boxed()
}

/// Until when the Lease, read back, confirms this process as its holder; `None` when it does
/// not or the read did not answer in time.
async fn confirmed_until(
    leases: &Api<Lease>,
    args: &LeaderElectionArgs,
    identity: &str,
) -> Option<Instant> {
    // Bounded: a partition can leave the read hanging (no reset, no answer), and leadership
    // must still lapse on time. The deadline counts from when the read was sent: the renewal
    // it reports is at least that old by then.
    let asked = Instant::now();
    let confirmation = tokio::time::timeout(
        args.retry_period,
        confirmed(leases, &args.lease_name, identity, args.renew_deadline),
    );
    match confirmation.await {
        Ok(Some(left)) => Some(asked + left),
        _ => None,
    }
}

async fn elect(
    client: Client,
    args: LeaderElectionArgs,
    identity: String,
    leadership: Arc<Leadership>,
    mut stop: watch::Receiver<bool>,
) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), &args.namespace());
    let mut releases = releases(leases.clone(), &args.lease_name);
    let mut manager = Arc::new(build(&client, &args, &identity).await);
    let (mut holds, mut task) = hold(manager.clone(), args.retry_period);
    let mut tick = tokio::time::interval(args.retry_period);
    let mut valid_until: Option<Instant> = None;
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
        valid_until = if *holds.borrow() {
            // Not confirmed: the last confirmation stands, and lapses on time.
            confirmed_until(&leases, &args, &identity)
                .await
                .or(valid_until)
        } else {
            None
        };
        let leading = valid_until.is_some_and(|until| Instant::now() < until);
        leadership.set(leading, valid_until, &identity);
    }
    // Shutting down: stop reconciling first, then hand the Lease over.
    leadership.set(false, None, &identity);
    task.abort();
    if *holds.borrow() {
        match manager.release().await {
            Ok(()) => tracing::info!(%identity, "released the leader Lease"),
            Err(error) => tracing::warn!(%error, "could not release the leader Lease"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).expect("a time")
    }

    #[test]
    fn leadership_lasts_until_the_renewals_deadline_not_the_reads() {
        let deadline = Duration::from_secs(10);
        assert_eq!(
            remaining(at(100), at(103), deadline),
            Some(Duration::from_secs(7))
        );
        assert_eq!(remaining(at(100), at(110), deadline), None);
        assert_eq!(remaining(at(100), at(130), deadline), None);
        // A renewTime ahead of this clock gives no extra time.
        assert_eq!(remaining(at(105), at(100), deadline), Some(deadline));
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_stops_at_its_deadline_and_lost_resolves_then() {
        let leadership = Arc::new(Leadership::starting(false));
        assert!(!leadership.is_leader());
        let until = Instant::now() + Duration::from_secs(4);
        leadership.set(true, Some(until), "a");
        assert!(leadership.is_leader());
        let lost = tokio::spawn({
            let leadership = Arc::clone(&leadership);
            async move {
                leadership.lost().await;
                Instant::now()
            }
        });
        tokio::time::sleep(Duration::from_secs(2)).await;
        // A newer confirmation moves the deadline on.
        leadership.set(true, Some(until + Duration::from_secs(3)), "a");
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(leadership.is_leader(), "the moved deadline holds");
        let lost_at = lost.await.expect("the waiter ends");
        assert_eq!(lost_at, until + Duration::from_secs(3));
        assert!(!leadership.is_leader(), "past the deadline, not leading");
        // Without election: always leading, and `lost` waits for an election that never ends.
        let always = Leadership::always();
        assert!(always.is_leader());
        assert!(
            tokio::time::timeout(Duration::from_secs(60), always.lost())
                .await
                .is_err()
        );
    }
}
