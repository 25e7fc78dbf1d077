//! The JWKS mirror (`workos-convex-auth proxy`).
