//! Test support: an in-memory stand-in for the few API calls the reconcile driver makes,
//! served to a real `kube::Client` (`Client::new` over a tower service). It records every
//! request and can fail chosen ones, so the driver's branches run without an apiserver. The
//! real apiserver tests (tests/it/controller.rs) remain the proof; this only adds fast coverage.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};

/// One request as the driver sent it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    /// Path without the query.
    pub path: String,
    pub body: Value,
}

#[derive(Default)]
struct State {
    /// Objects by their path (`/api/v1/namespaces/apps/configmaps/x`).
    objects: BTreeMap<String, Value>,
    requests: Vec<Recorded>,
    /// `(method, path)` → the status code to answer instead.
    failures: Vec<(Method, String, u16)>,
    next_version: u64,
}

/// The in-memory API; cheap to clone (shared state).
#[derive(Clone, Default)]
pub struct RecordedApi {
    state: Arc<Mutex<State>>,
}

impl RecordedApi {
    pub fn client(&self) -> kube::Client {
        let api = self.clone();
        let service = tower::service_fn(move |request: Request<Body>| {
            let api = api.clone();
            async move { Ok::<_, std::convert::Infallible>(api.answer(request).await) }
        });
        kube::Client::new(service, "default")
    }

    /// Stores an object at `path`.
    pub fn put(&self, path: &str, object: Value) {
        self.lock().objects.insert(path.to_string(), object);
    }

    /// Answers `method path` with `code` from now on.
    pub fn fail(&self, method: Method, path: &str, code: u16) {
        self.lock().failures.push((method, path.to_string(), code));
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// `METHOD path` of every request, in order.
    pub fn calls(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    /// The objects stored directly under the collection `path` (what a watch of it would see).
    pub fn objects_in(&self, path: &str) -> Vec<Value> {
        let prefix = format!("{path}/");
        self.lock()
            .objects
            .iter()
            .filter(|(k, _)| {
                k.strip_prefix(&prefix)
                    .is_some_and(|rest| !rest.contains('/'))
            })
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn object(&self, path: &str) -> Option<Value> {
        self.lock().objects.get(path).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("test state")
    }

    async fn answer(&self, request: Request<Body>) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.unwrap_or_default();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let path = parts.uri.path().to_string();
        let listing = parts
            .uri
            .query()
            .is_some_and(|q| q.contains("labelSelector"));
        let mut state = self.lock();
        state.requests.push(Recorded {
            method: parts.method.clone(),
            path: path.clone(),
            body: body.clone(),
        });
        if let Some((_, _, code)) = state
            .failures
            .iter()
            .find(|(m, p, _)| *m == parts.method && *p == path)
        {
            return status(*code, "injected by the test");
        }
        state.next_version += 1;
        let version = state.next_version.to_string();
        match parts.method {
            Method::GET if listing => {
                let prefix = format!("{path}/");
                let items: Vec<Value> = state
                    .objects
                    .iter()
                    .filter(|(k, _)| k.starts_with(&prefix))
                    .map(|(_, v)| v.clone())
                    .collect();
                ok(json!({"kind": "List", "apiVersion": "v1", "metadata": {}, "items": items}))
            }
            Method::GET => match state.objects.get(&path) {
                Some(object) => ok(object.clone()),
                None => status(404, "not found"),
            },
            Method::POST => {
                let name = body["metadata"]["name"].as_str().unwrap_or("event");
                let key = format!("{path}/{name}");
                if state.objects.contains_key(&key) && !path.ends_with("/events") {
                    return status(409, "already exists");
                }
                let mut object = body.clone();
                object["metadata"]["resourceVersion"] = json!(version);
                object["metadata"]["uid"] = json!(format!("uid-{version}"));
                state.objects.insert(key, object.clone());
                respond(StatusCode::CREATED, object)
            }
            Method::PATCH => {
                let key = path.trim_end_matches("/status").to_string();
                let mut object = state
                    .objects
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| json!({}));
                // A resourceVersion in a patch is a precondition, as the apiserver treats it.
                let wanted = &body["metadata"]["resourceVersion"];
                if !wanted.is_null() && *wanted != object["metadata"]["resourceVersion"] {
                    return status_as(409, "Conflict", "the object has been modified");
                }
                if path.ends_with("/status") {
                    object["status"] = body["status"].clone();
                } else if body
                    .get("metadata")
                    .and_then(|m| m.get("managedFields"))
                    .is_none()
                {
                    let before = object.clone();
                    let metadata = object["metadata"].clone();
                    object = body.clone();
                    object["metadata"]["resourceVersion"] = metadata["resourceVersion"].clone();
                    object["metadata"]["uid"] = metadata["uid"].clone();
                    if before != object {
                        object["metadata"]["resourceVersion"] = json!(version);
                    }
                }
                state.objects.insert(key, object.clone());
                ok(object)
            }
            Method::DELETE => match state.objects.remove(&path) {
                Some(_) => ok(json!({"kind": "Status", "apiVersion": "v1", "status": "Success"})),
                None => status(404, "not found"),
            },
            _ => status(405, "not supported by the recorded API"),
        }
    }
}

fn ok(body: Value) -> Response<Body> {
    respond(StatusCode::OK, body)
}

/// A `Status` as the apiserver sends it, with the reason it gives `code` most often; kube reads
/// `reason` (e.g. `get_opt` maps `NotFound`).
fn status(code: u16, message: &str) -> Response<Body> {
    let reason = match code {
        404 => "NotFound",
        409 => "AlreadyExists",
        422 => "Invalid",
        503 => "ServiceUnavailable",
        _ => "InternalError",
    };
    status_as(code, reason, message)
}

/// A `Status` with an explicit reason (409 is `AlreadyExists` on a create, `Conflict` on a
/// failed precondition).
fn status_as(code: u16, reason: &str, message: &str) -> Response<Body> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": reason, "code": code});
    respond(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
    )
}

fn respond(code: StatusCode, body: Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string().into_bytes()));
    *response.status_mut() = code;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
