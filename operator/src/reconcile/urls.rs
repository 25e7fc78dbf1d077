//! Where Convex fetches the keys: the JWKS paths the mirror serves and WorkOS answers, and the
//! URLs validation resolves (`validate`) and the children carry (`children`). Facts only, so both
//! can import them without importing each other.

/// The URLs Convex fetches keys from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksUrls {
    /// For the WorkOS issuers and the extra issuers.
    pub workos: String,
    /// For the AuthKit domain, when one is set.
    pub authkit: Option<String>,
    /// Set when the URLs are the in-cluster Service's: only a Convex backend inside the
    /// cluster can reach them.
    pub cluster_internal: bool,
}

/// WorkOS's JWKS path for a client.
pub fn workos_jwks_path(client_id: &str) -> String {
    format!("/sso/jwks/{client_id}")
}

/// The AuthKit domain's JWKS path.
pub const AUTHKIT_JWKS_PATH: &str = "/oauth2/jwks";
