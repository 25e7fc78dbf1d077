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

use futures::{Stream, StreamExt, stream};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;

/// Reconcile triggers from the watch `events` of the objects `store` reflects: a changed object
/// at once, the objects of a (re-)list when it ends, errors as they come (for the controller's
/// backoff). `events` must have been applied to `store` already ([`reflector::reflector`]).
pub fn relist_aware<K>(
    events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    store: Store<K>,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: kube::Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
{
    events.flat_map(move |event| stream::iter(triggers_for(event, &store)))
}

/// The triggers one event makes; see [`relist_aware`].
fn triggers_for<K>(
    event: Result<watcher::Event<K>, watcher::Error>,
    store: &Store<K>,
) -> Vec<Result<K, watcher::Error>>
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    match event {
        Ok(watcher::Event::Apply(object)) => vec![Ok(object)],
        // The store has just swapped the re-list in.
        Ok(watcher::Event::InitDone) => store
            .state()
            .iter()
            .map(|object| Ok(K::clone(object)))
            .collect(),
        // A deleted object has nothing left to reconcile: owner references let the garbage
        // collector remove its children (as `Controller::new`, which triggers on applied objects).
        Ok(watcher::Event::Init | watcher::Event::InitApply(_) | watcher::Event::Delete(_)) => {
            Vec::new()
        }
        Err(error) => vec![Err(error)],
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
    (store, reflected(writer, events))
}

/// The trigger stream of the watch `events`, reflected into `writer`'s store on the way (for
/// `Controller::owns_stream`: the children's stores are read by the reconcile).
pub fn reflected<K>(
    writer: reflector::store::Writer<K>,
    events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: kube::Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
{
    let store = writer.as_reader();
    relist_aware(reflector::reflector(writer, events), store)
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

    #[test]
    fn changes_trigger_at_once_and_a_relist_at_its_end() {
        let (store, mut writer) = reflector::store::<ConfigMap>();
        let mut triggered = |event: watcher::Event<ConfigMap>| {
            writer.apply_watcher_event(&event);
            let mut names: Vec<String> = triggers_for(Ok(event), &store)
                .into_iter()
                .map(|t| t.expect("no error").metadata.name.unwrap_or_default())
                .collect();
            names.sort();
            names
        };
        assert!(triggered(watcher::Event::Init).is_empty());
        assert!(triggered(watcher::Event::InitApply(config_map("a", "1"))).is_empty());
        assert!(triggered(watcher::Event::InitApply(config_map("b", "1"))).is_empty());
        assert_eq!(triggered(watcher::Event::InitDone), ["a", "b"]);
        assert_eq!(
            triggered(watcher::Event::Apply(config_map("c", "2"))),
            ["c"]
        );
        assert!(triggered(watcher::Event::Delete(config_map("a", "1"))).is_empty());
        let error = triggers_for::<ConfigMap>(Err(watcher::Error::NoResourceVersion), &store);
        assert!(matches!(
            error.as_slice(),
            [Err(watcher::Error::NoResourceVersion)]
        ));
    }
}
