//! The `WorkOSConvexAuth` watch as reconcile triggers, re-lists included.
//!
//! kube-runtime's `Controller::new` triggers a reconcile for each object of a re-list as it
//! arrives, but its store takes a re-list in only at its end (`InitDone`). A reconcile that runs
//! before then reads the object as it was before the re-list, and an object that is new in the
//! re-list is not in the store at all: kube-runtime drops that reconcile (`ObjectNotFound`) and
//! nothing triggers it again. A large re-list arrives in pages, with time between them for the
//! reconciles to run, so after an apiserver outage at scale the resources created during the
//! outage were never reconciled (bench/ha/run.sh: 50 of 50, 300 s after the apiserver was back).
//!
//! Here the objects of a re-list trigger once the store holds them: all of them, at its end.
//! A re-list reconciled every object before too, so this costs no more reconciles. The same
//! holds for the children's watches, whose stores the reconcile reads: a child's re-list
//! triggers its owner once the child's store holds the re-list.
//!
//! Deletions differ between the two ([`OnDelete`]): a deleted resource has nothing left to
//! reconcile, but a deleted child must bring its owner back to put it back (drift repair, as
//! kube-runtime's own `owns` does with `touched_objects`).

use futures::{Stream, StreamExt, stream};
use std::sync::Arc;

use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;

/// What a deleted object of a watch triggers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDelete {
    /// Nothing: the resources' own watch. A deleted `WorkOSConvexAuth` has nothing left to
    /// reconcile; owner references let the garbage collector remove its children (as
    /// `Controller::new`, which triggers on applied objects only).
    Nothing,
    /// The deleted object itself: the children's watches. `Controller::owns_stream` maps it to
    /// its owner by the controller owner reference it still carries (it is no longer in the
    /// store), and the owner's reconcile, finding it missing, creates it again.
    TriggerOwner,
}

/// Reconcile triggers from the watch `events` of the objects `store` reflects: a changed object
/// at once, the objects of a (re-)list when it ends, a deleted one as `on_delete` says, errors
/// as they come (for the controller's backoff). `events` must have been applied to `store`
/// already ([`reflector::reflector`]).
pub fn relist_aware<K>(
    events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    store: Store<K>,
    on_delete: OnDelete,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: kube::Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let mut triggers = Triggers::new(store, on_delete);
    events.flat_map(move |event| stream::iter(triggers.on(event)))
}

/// The state between the events of one watch; see [`relist_aware`].
struct Triggers<K>
where
    K: kube::Resource + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    store: Store<K>,
    on_delete: OnDelete,
    /// With [`OnDelete::TriggerOwner`], the store as it was when a re-list began: an object
    /// deleted while the watch was down has no `Delete` event, only its absence from the
    /// re-list, and triggers at the re-list's end.
    before_relist: Vec<Arc<K>>,
}

impl<K> Triggers<K>
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    fn new(store: Store<K>, on_delete: OnDelete) -> Self {
        Self {
            store,
            on_delete,
            before_relist: Vec::new(),
        }
    }

    /// The triggers one event makes.
    fn on(
        &mut self,
        event: Result<watcher::Event<K>, watcher::Error>,
    ) -> Vec<Result<K, watcher::Error>> {
        let trigger_owner = self.on_delete == OnDelete::TriggerOwner;
        match event {
            Ok(watcher::Event::Apply(object)) => vec![Ok(object)],
            Ok(watcher::Event::Delete(object)) if trigger_owner => vec![Ok(object)],
            Ok(watcher::Event::Delete(_)) => Vec::new(),
            // The store keeps its old state until the re-list ends.
            Ok(watcher::Event::Init) if trigger_owner => {
                self.before_relist = self.store.state();
                Vec::new()
            }
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => Vec::new(),
            // The store has just swapped the re-list in.
            Ok(watcher::Event::InitDone) => {
                let gone = std::mem::take(&mut self.before_relist)
                    .into_iter()
                    .filter(|object| self.store.get(&ObjectRef::from_obj(&**object)).is_none());
                self.store
                    .state()
                    .iter()
                    .chain(gone.collect::<Vec<_>>().iter())
                    .map(|object| Ok(K::clone(object)))
                    .collect()
            }
            Err(error) => vec![Err(error)],
        }
    }
}

/// A store and the trigger stream of the watch `events`, for `Controller::for_stream`.
pub fn reflect_and_trigger<K>(
    events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
) -> (
    Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: kube::Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (store, writer) = reflector::store();
    let store_reader = writer.as_reader();
    let triggers = relist_aware(
        reflector::reflector(writer, events),
        store_reader,
        OnDelete::Nothing,
    );
    (store, triggers)
}

/// The trigger stream of a children's watch `events`, reflected into `writer`'s store on the
/// way (for `Controller::owns_stream`: the children's stores are read by the reconcile); a
/// deleted child triggers its owner.
pub fn reflected<K>(
    writer: reflector::store::Writer<K>,
    events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: kube::Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let store = writer.as_reader();
    relist_aware(
        reflector::reflector(writer, events),
        store,
        OnDelete::TriggerOwner,
    )
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use futures::StreamExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;
    use kube::runtime::controller::{Action, Controller};
    use kube::runtime::{WatchStreamExt, watcher};

    use super::*;

    fn config_map(name: &str, version: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                resource_version: Some(version.into()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    /// An initial list of `a`, a re-list of `a` (changed) and the new `b` whose end comes a
    /// while after its objects (the next page on the way), then nothing more.
    fn events_with_a_slow_relist()
    -> impl Stream<Item = Result<watcher::Event<ConfigMap>, watcher::Error>> + Send + 'static {
        use watcher::Event::{Init, InitApply, InitDone};
        let before = vec![
            Ok(Init),
            Ok(InitApply(config_map("a", "1"))),
            Ok(InitDone),
            Ok(Init),
            Ok(InitApply(config_map("a", "2"))),
            Ok(InitApply(config_map("b", "3"))),
        ];
        stream::iter(before)
            .chain(
                stream::once(tokio::time::sleep(Duration::from_millis(500))).map(|()| Ok(InitDone)),
            )
            .chain(stream::pending())
    }

    /// Runs a real kube-runtime controller on `triggers` and `store` until it has been idle for
    /// a while; returns each reconcile as `name@resourceVersion`.
    async fn reconciled(
        store: Store<ConfigMap>,
        triggers: impl Stream<Item = Result<ConfigMap, watcher::Error>> + Send + 'static,
    ) -> Vec<String> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let controller = Controller::for_stream(triggers, store).run(
            |object: Arc<ConfigMap>, seen: Arc<Mutex<Vec<String>>>| async move {
                let entry = format!(
                    "{}@{}",
                    object.metadata.name.as_deref().unwrap_or_default(),
                    object
                        .metadata
                        .resource_version
                        .as_deref()
                        .unwrap_or_default()
                );
                seen.lock().expect("not poisoned").push(entry);
                Ok::<_, std::convert::Infallible>(Action::await_change())
            },
            |_, _, _| Action::await_change(),
            Arc::clone(&seen),
        );
        // Time is paused: this is two seconds of the controller's time, not of the test's.
        let _ =
            tokio::time::timeout(Duration::from_secs(2), controller.for_each(|_| async {})).await;
        seen.lock().expect("not poisoned").clone()
    }

    #[tokio::test(start_paused = true)]
    async fn an_object_new_in_a_slow_relist_is_reconciled_as_relisted() {
        let (store, triggers) = reflect_and_trigger(events_with_a_slow_relist());
        let mut seen = reconciled(store, triggers).await;
        // The re-list's objects come in the store's order, which is a hash map's.
        seen.sort();
        assert_eq!(seen, ["a@1", "a@2", "b@3"]);
    }

    /// Why this module exists: with kube-runtime's own triggers (`applied_objects`, as
    /// `Controller::new` does) the same events lose `b` and reconcile `a` as it was before the
    /// re-list. When kube-runtime fixes this, this test fails and the module can go.
    #[tokio::test(start_paused = true)]
    async fn kube_runtimes_own_triggers_lose_an_object_new_in_a_slow_relist() {
        let (store, writer) = reflector::store();
        let triggers = reflector::reflector(writer, events_with_a_slow_relist()).applied_objects();
        let seen = reconciled(store, triggers).await;
        assert!(!seen.iter().any(|s| s.starts_with("b@")), "{seen:?}");
        assert!(!seen.contains(&"a@2".to_string()), "{seen:?}");
    }

    /// Feeds `events` to a store and to the triggers of a watch with `on_delete`; returns the
    /// names each event triggered, sorted.
    fn triggered_by(
        on_delete: OnDelete,
        events: Vec<watcher::Event<ConfigMap>>,
    ) -> Vec<Vec<String>> {
        let (store, mut writer) = reflector::store::<ConfigMap>();
        let mut triggers = Triggers::new(store, on_delete);
        events
            .into_iter()
            .map(|event| {
                writer.apply_watcher_event(&event);
                let mut names: Vec<String> = triggers
                    .on(Ok(event))
                    .into_iter()
                    .map(|t| t.expect("no error").metadata.name.unwrap_or_default())
                    .collect();
                names.sort();
                names
            })
            .collect()
    }

    /// A list of `a` and `b`, `c` applied, `a` deleted; then a re-list without `b` (deleted
    /// while the watch was down) and with `c` changed.
    fn list_change_delete_relist() -> Vec<watcher::Event<ConfigMap>> {
        use watcher::Event::{Apply, Delete, Init, InitApply, InitDone};
        vec![
            Init,
            InitApply(config_map("a", "1")),
            InitApply(config_map("b", "1")),
            InitDone,
            Apply(config_map("c", "2")),
            Delete(config_map("a", "1")),
            Init,
            InitApply(config_map("c", "3")),
            InitDone,
        ]
    }

    #[test]
    fn the_resources_watch_triggers_changes_at_once_a_relist_at_its_end_and_no_deletion() {
        let seen = triggered_by(OnDelete::Nothing, list_change_delete_relist());
        let expected: [&[&str]; 9] = [&[], &[], &[], &["a", "b"], &["c"], &[], &[], &[], &["c"]];
        assert_eq!(seen, expected);
    }

    /// The regression of issue 21: a deleted child triggered nothing, so its owner, settled
    /// with no requeue pending, never put it back.
    #[test]
    fn a_childs_watch_triggers_the_owner_of_a_deleted_child_also_when_a_relist_misses_it() {
        let seen = triggered_by(OnDelete::TriggerOwner, list_change_delete_relist());
        let expected: [&[&str]; 9] = [
            &[],
            &[],
            &[],
            &["a", "b"],
            &["c"],
            &["a"],
            &[],
            &[],
            &["b", "c"],
        ];
        assert_eq!(seen, expected);
    }

    #[test]
    fn watch_errors_pass_through_for_the_backoff() {
        let (store, _writer) = reflector::store::<ConfigMap>();
        let error =
            Triggers::new(store, OnDelete::TriggerOwner).on(Err(watcher::Error::NoResourceVersion));
        assert!(matches!(
            error.as_slice(),
            [Err(watcher::Error::NoResourceVersion)]
        ));
    }
}
