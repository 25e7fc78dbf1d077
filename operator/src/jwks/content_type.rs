//! The `Content-Type` rule Convex applies to a JWKS response.

/// Why a JWKS response's `Content-Type` would be refused by Convex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentTypeError {
    /// No `Content-Type` header at all.
    #[error("the response has no Content-Type header")]
    Missing,
    /// The header is not valid visible ASCII.
    #[error("the Content-Type header is not readable text")]
    Unreadable,
    /// The media type is neither `application/json` nor `application/jwk-set+json`.
    #[error("Content-Type {0:?} is neither application/json nor application/jwk-set+json")]
    WrongType(String),
    /// A `charset` parameter other than UTF-8.
    #[error("Content-Type charset {0:?} is not utf-8")]
    WrongCharset(String),
}

/// Checks a `Content-Type` header value the way Convex's backend does: the essence must be
/// `application/json` or `application/jwk-set+json` (case-insensitive), and a `charset`
/// parameter, when present, must be `utf-8`. Other parameters are ignored.
pub fn check_content_type(value: Option<&[u8]>) -> Result<(), ContentTypeError> {
    let value = value.ok_or(ContentTypeError::Missing)?;
    let value = std::str::from_utf8(value).map_err(|_| ContentTypeError::Unreadable)?;
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/json")
        && !essence.eq_ignore_ascii_case("application/jwk-set+json")
    {
        return Err(ContentTypeError::WrongType(essence.to_string()));
    }
    for param in parts {
        let Some((name, raw)) = param.split_once('=') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("charset") {
            continue;
        }
        let charset = raw.trim().trim_matches('"');
        if !charset.eq_ignore_ascii_case("utf-8") {
            return Err(ContentTypeError::WrongCharset(charset.to_string()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(v: &str) -> Result<(), ContentTypeError> {
        check_content_type(Some(v.as_bytes()))
    }

    #[test]
    fn accepts_what_convex_accepts() {
        for ok in [
            "application/json",
            "application/jwk-set+json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/jwk-set+json;charset=\"UTF-8\"",
            "application/json; foo=bar",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_the_rest() {
        assert_eq!(check_content_type(None), Err(ContentTypeError::Missing));
        assert_eq!(
            check("text/html"),
            Err(ContentTypeError::WrongType("text/html".into()))
        );
        assert_eq!(
            check("application/jsonx"),
            Err(ContentTypeError::WrongType("application/jsonx".into()))
        );
        assert_eq!(check(""), Err(ContentTypeError::WrongType(String::new())));
        assert_eq!(
            check("application/json; charset=iso-8859-1"),
            Err(ContentTypeError::WrongCharset("iso-8859-1".into()))
        );
        assert_eq!(
            check_content_type(Some(b"application/json\xff")),
            Err(ContentTypeError::Unreadable)
        );
    }
}
