//! JWKS documents: validation, sanitising and fetching from WorkOS.
