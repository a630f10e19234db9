//! Bearer tokens: every `/v1` route needs one of `api.tokens`, sent as `Authorization: Bearer <token>`.
//!
//! Browsers cannot set headers on a WebSocket, so the live routes also take the token in one of
//! two other places:
//! - the subprotocol list: `new WebSocket(url, ["dragoman.v1", "bearer.<token>"])`; the server
//!   selects `dragoman.v1`, so the token is never echoed back. This keeps it out of URLs and
//!   so out of access logs: prefer it.
//! - `?access_token=<token>` (RFC 6750 §2.3), for clients that can set neither.
//!
//! Neither is accepted on REST routes, where a client can always send the header.
//!
//! Tokens are compared in constant time (`subtle`), and every configured token is compared, so
//! the answer's timing says neither which token nor how much of it matched (only, at most,
//! whether the length matched one).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dragoman_runtime::Secret;
use subtle::ConstantTimeEq as _;

use crate::error::AppError;

/// The prefix of the subprotocol that carries a token on the live routes.
pub const SUBPROTOCOL_PREFIX: &str = "bearer.";

/// The accepted tokens.
#[derive(Clone)]
pub struct Tokens(Arc<Vec<Secret>>);

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} configured)", self.0.len())
    }
}

impl Tokens {
    pub fn new(tokens: &[Secret]) -> Self {
        Self(Arc::new(tokens.iter().filter(|t| !t.is_empty()).cloned().collect()))
    }

    /// Whether `candidate` is one of the tokens, in time that does not depend on which.
    pub fn accepts(&self, candidate: &str) -> bool {
        let candidate = candidate.as_bytes();
        let mut matched = subtle::Choice::from(0);
        for token in self.0.iter() {
            let token = token.expose().as_bytes();
            if token.len() == candidate.len() {
                matched |= token.ct_eq(candidate);
            }
        }
        bool::from(matched) && !candidate.is_empty()
    }
}

/// The token a request carries: the `Authorization: Bearer` header, else, on the live routes
/// only, `access_token` in the query string.
fn presented(request: &Request) -> Option<String> {
    if let Some(value) = request.headers().get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned());
    }
    if !request.uri().path().ends_with("/live") {
        return None;
    }
    let offered = request.headers().get_all(header::SEC_WEBSOCKET_PROTOCOL).iter();
    let from_subprotocol = offered
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|protocol| protocol.trim().strip_prefix(SUBPROTOCOL_PREFIX).map(str::to_owned));
    if from_subprotocol.is_some() {
        return from_subprotocol;
    }
    let query = request.uri().query()?;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == "access_token").then(|| percent_decode(value))
    })
}

fn percent_decode(value: &str) -> String {
    let hex = |byte: u8| (byte as char).to_digit(16);
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((high * 16 + low) as u8);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Refuses a request without an accepted token: 401 with `WWW-Authenticate: Bearer`.
pub async fn require_token(State(tokens): State<Tokens>, request: Request, next: Next) -> Response {
    let refusal = match presented(&request) {
        None => "missing bearer token: send Authorization: Bearer <token> (one of api.tokens)",
        Some(token) if tokens.accepts(&token) => return next.run(request).await,
        Some(_) => "the bearer token is not one of api.tokens",
    };
    let mut response = AppError::unauthorized(refusal).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"dragoman\""));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_any_configured_token_and_nothing_else() {
        let tokens = Tokens::new(&[Secret::new("alpha-token"), Secret::new("beta"), Secret::new("")]);
        assert!(tokens.accepts("alpha-token"));
        assert!(tokens.accepts("beta"));
        assert!(!tokens.accepts("alpha-toke"));
        assert!(!tokens.accepts("alpha-tokenX"));
        assert!(!tokens.accepts(""));
        assert!(!tokens.accepts("BETA"));
    }

    #[test]
    fn decodes_a_query_token() {
        assert_eq!(percent_decode("a%2Bb%3D"), "a+b=");
        assert_eq!(percent_decode("plain"), "plain");
        assert_eq!(percent_decode("bad%zz"), "bad%zz");
        assert_eq!(percent_decode("end%4"), "end%4");
    }
}
