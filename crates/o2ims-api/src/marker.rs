//! A list's `nextpage_opaque_marker`, sealed with an HMAC over the list's path and query, so a
//! client can neither forge a position nor carry a marker to another list; every replica holding
//! the same key (derived from the TLS key they share) accepts the others' markers.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;

use lcm_core::rest::paging::{MARKER, Position};

use crate::problem::Problem;

/// The key markers are sealed with.
pub struct MarkerKey(hmac::Key);

impl MarkerKey {
    /// Derived from `secret` (the TLS private key every replica mounts), so replicas agree.
    pub fn derived(secret: &[u8]) -> Self {
        let seed = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, b"o2ims-api nextpage_opaque_marker"),
            secret,
        );
        Self(hmac::Key::new(hmac::HMAC_SHA256, seed.as_ref()))
    }

    /// A key of this process alone (no shared secret: plain HTTP).
    pub fn random() -> anyhow::Result<Self> {
        let rng = ring::rand::SystemRandom::new();
        hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .map(Self)
            .map_err(|_| anyhow::anyhow!("no randomness for the paging key"))
    }

    /// `position` sealed for the list at `path` with `query` (without the marker).
    pub fn seal(&self, path: &str, query: &str, position: &Position) -> String {
        let payload = serde_json::to_vec(position).unwrap_or_default();
        let tag = hmac::sign(&self.0, &bound(path, query, &payload));
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        )
    }

    /// The position a marker sealed for this list names.
    pub fn open(&self, path: &str, query: &str, marker: &str) -> Result<Position, Problem> {
        let refused = || {
            Problem::bad_request(format!(
                "{MARKER}: `{marker}` is not a marker this server issued for this list (changed, from another list or query, or from before the server's key changed); start again from the first page"
            ))
        };
        let (payload, tag) = marker.split_once('.').ok_or_else(refused)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| refused())?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| refused())?;
        hmac::verify(&self.0, &bound(path, query, &payload), &tag).map_err(|_| refused())?;
        serde_json::from_slice(&payload).map_err(|_| refused())
    }
}

/// What a marker's tag covers: the list, its query and the position.
fn bound(path: &str, query: &str, payload: &[u8]) -> Vec<u8> {
    [path.as_bytes(), b"?", query.as_bytes(), b"\n", payload].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_opens_only_for_its_list_and_query_and_unchanged() {
        let key = MarkerKey::derived(b"a TLS key");
        let position = Position {
            offset: 2,
            after: "b".into(),
        };
        let marker = key.seal("/x/items", "filter=f", &position);
        assert_eq!(
            key.open("/x/items", "filter=f", &marker).ok(),
            Some(position.clone())
        );
        assert!(key.open("/x/other", "filter=f", &marker).is_err());
        assert!(key.open("/x/items", "", &marker).is_err());
        let other_server = MarkerKey::derived(b"another TLS key");
        assert!(other_server.open("/x/items", "filter=f", &marker).is_err());
        let forged = MarkerKey::derived(b"a TLS key").seal(
            "/x/items",
            "filter=f",
            &Position {
                offset: 0,
                after: "a".into(),
            },
        );
        let (payload, _) = forged.split_once('.').expect("sealed");
        let (_, tag) = marker.split_once('.').expect("sealed");
        let tampered = format!("{payload}.{tag}");
        let refused = key
            .open("/x/items", "filter=f", &tampered)
            .expect_err("tampered");
        assert!(refused.detail.starts_with(MARKER), "{}", refused.detail);
        assert!(key.open("/x/items", "filter=f", "garbage").is_err());
    }
}
