//! The reconcile pipeline: `validate → build` are pure (no client, unit-tested);
//! `apply` and `status` are the thin I/O steps the controller runs around them.
pub mod apply;
pub mod children;
pub mod names;
pub mod policy;
pub mod status;
pub mod validate;
pub mod verdicts;

pub use children::{BuildContext, Children, InlineKeys, build};
pub use policy::{NotAllowed, Policy, admit};
pub use validate::{Valid, validate};
