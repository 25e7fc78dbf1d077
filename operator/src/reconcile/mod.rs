//! The reconcile pipeline, one step per module:
//!
//! read references (`read`, I/O) → validate (`validate`, pure) → admit (`policy`, pure) →
//! claim hosts (`hosts`, pure, on the watch caches) → fetch keys (`fetch`, I/O in mode Inline) → build (`children`, pure) → apply (`apply`, I/O) →
//! sync the Convex deployment's variables (`sync`, I/O, with `spec.convex`) → report (`report`: status, Events and the requeue, decided in one pure function).
//!
//! Each step has its own error type; [`Stopped`] gathers them, and `report` alone turns the
//! outcome into what the user sees.

pub mod apply;
pub mod children;
pub mod fetch;
pub mod findings;
pub mod forbidden;
pub mod hosts;
pub mod live;
pub mod names;
pub mod pod_template;
pub mod pods;
pub mod policy;
pub mod read;
pub mod reason;
pub mod report;
pub mod status;
pub mod sync;
pub mod urls;
pub mod validate;

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod recorded_api;
#[cfg(test)]
mod tests;

use std::time::Duration;

use kube::Client;
use kube::runtime::controller::Action;
use kube::runtime::events::Recorder;

pub use children::{BuildContext, Children, InlineKeys, build};
pub use fetch::InlineKeyCache;
pub use live::{LiveChildren, LiveWriters};
pub use policy::{NotAllowed, Policy, admit};
pub use reason::{ConditionType, Reason};
pub use report::{Done, Error, Stopped};
pub use urls::JwksUrls;
pub use validate::{Valid, validate};

use crate::api::WorkOSConvexAuth;
use crate::convex::deployment::Deployments;
use crate::jwks::Fetcher;

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub fetcher: Fetcher,
    /// Mirror image and upstream rules for `build`.
    pub build: BuildContext,
    /// How often a resource reading its client id from a Secret reads it again.
    pub secret_resync: Duration,
    pub inline_keys: InlineKeyCache,
    /// What tenants may ask for.
    pub policy: Policy,
    /// The children as the watches see them, and what was last applied to each.
    pub live: LiveChildren,
    /// The Convex deployments' admin API (`spec.convex`).
    pub deployments: Deployments,
    /// What each resource's deployment was last confirmed to hold.
    pub synced: sync::SyncMemory,
}

fn hosts_of(valid: &Valid) -> Vec<String> {
    hosts::wanted(valid)
        .into_iter()
        .map(|(_field, host)| host)
        .collect()
}

/// One reconcile of a live resource: the pipeline, then its report.
pub async fn reconcile(resource: &WorkOSConvexAuth, ctx: &Context) -> Result<Action, Error> {
    let outcome = pipeline(resource, ctx).await;
    let report = report::plan(resource, outcome, ctx.secret_resync);
    report::deliver(resource, ctx, report).await
}

async fn pipeline(resource: &WorkOSConvexAuth, ctx: &Context) -> Result<Done, Stopped> {
    let client_id = read::referenced_client_id(&ctx.client, resource).await?;
    let valid = validate(resource, client_id.as_deref(), &ctx.build.cluster_domain)?;
    let admitted = admit(&valid, &ctx.policy)
        .map_err(Stopped::from)
        .and_then(|()| {
            let claims = ctx.live.host_claims(&hosts_of(&valid));
            hosts::check(&valid, &names::mirror_name(&valid.name), &claims).map_err(Stopped::from)
        });
    if let Err(refused) = admitted {
        // Nothing refused may keep running: the mirror and its routes go (only objects this
        // resource controls); the ConfigMap, plain data, stays.
        apply::prune_mirror(&ctx.client, &ctx.live, &valid).await?;
        return Err(refused);
    }
    let keys = fetch::keys(&valid, &ctx.inline_keys, &ctx.fetcher).await?;
    let children = build(&valid, &keys.urls, &ctx.build);
    let applied = apply::apply_children(&ctx.client, &ctx.live, &valid, &children).await?;
    let convex = match &valid.convex {
        Some(target) => {
            let sync_ctx = sync::SyncContext {
                client: &ctx.client,
                policy: &ctx.policy,
                deployments: &ctx.deployments,
                memory: &ctx.synced,
            };
            Some(sync::sync(&sync_ctx, &valid, target, &keys.urls, &children.config).await?)
        }
        None => None,
    };
    Ok(Done {
        valid,
        children,
        applied,
        key_ids: keys.key_ids,
        convex,
    })
}
