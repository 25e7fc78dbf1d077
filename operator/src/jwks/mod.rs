//! JWKS documents: validation, sanitising and fetching from WorkOS.
//!
//! `sanitize` and `content_type` are pure: they decide what may be served. `fetch` is the only
//! part that does I/O, and it applies both before handing a document back.
mod cache_control;
mod content_type;
mod egress;
mod fetch;
mod sanitize;
mod upstream;

pub use cache_control::max_age;
pub use content_type::{ContentTypeError, check_content_type};
pub use egress::{EgressProxy, EgressProxyError};
pub use fetch::{FetchError, FetchLimits, FetchOutcome, Fetcher, FreshDocument, Validators};
pub(crate) use fetch::{error_chain, refusal_in};
pub use sanitize::{JwksError, PublicJwks, sanitize};
pub(crate) use upstream::GuardedResolver;
pub use upstream::{Refused, UpstreamRules, parse_network, parse_resolve};
