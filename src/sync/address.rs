//! Where a hub lives: the relay's base URL and the hub id, read from the URL
//! a member is given (`ws://host:port/v1/hubs/HUB`).

use crate::model::input::InputError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubAddress {
    /// `ws://host:port` or `wss://host:port` (with any path prefix before `/v1`).
    pub base: String,
    pub hub: String,
}

impl HubAddress {
    /// Accepts `ws[s]://HOST[:PORT][/PREFIX]/v1/hubs/HUB[/ws]`; `http(s)://`
    /// is taken as `ws(s)://`.
    pub fn parse(url: &str) -> Result<HubAddress, InputError> {
        let bad = |why: &str| {
            InputError::new(format!(
                "cannot use hub URL `{url}`: {why}; expected ws://HOST:PORT/v1/hubs/HUB_ID \
                 (for example ws://127.0.0.1:7878/v1/hubs/h-7k2m9q3x)"
            ))
        };
        let url = url.trim().trim_end_matches('/');
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "ws" | "http" => "ws",
            "wss" | "https" => "wss",
            _ => return Err(bad("the scheme must be ws or wss")),
        };
        let rest = rest.strip_suffix("/ws").unwrap_or(rest);
        let (prefix, hub) = rest
            .rsplit_once("/v1/hubs/")
            .ok_or_else(|| bad("the path must end in /v1/hubs/HUB_ID"))?;
        if prefix.is_empty() || prefix.starts_with('/') {
            return Err(bad("no host"));
        }
        if hub.is_empty() || hub.contains('/') {
            return Err(bad("no hub id after /v1/hubs/"));
        }
        Ok(HubAddress {
            base: format!("{scheme}://{prefix}"),
            hub: hub.to_owned(),
        })
    }

    pub fn ws_url(&self) -> String {
        format!("{}/v1/hubs/{}/ws", self.base, self.hub)
    }

    /// The URL members are given, as stored in the replica.
    pub fn display(&self) -> String {
        format!("{}/v1/hubs/{}", self.base, self.hub)
    }

    /// The blob endpoint for a digest, over HTTP(S).
    pub fn blob_url(&self, sha256: &str) -> String {
        let http = self
            .base
            .replacen("wss://", "https://", 1)
            .replacen("ws://", "http://", 1);
        format!("{http}/v1/hubs/{}/blobs/{sha256}", self.hub)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_forms_people_paste() {
        let a = HubAddress::parse("ws://127.0.0.1:7878/v1/hubs/h-abc").expect("ok");
        assert_eq!(a.base, "ws://127.0.0.1:7878");
        assert_eq!(a.hub, "h-abc");
        assert_eq!(a.ws_url(), "ws://127.0.0.1:7878/v1/hubs/h-abc/ws");
        let b = HubAddress::parse("https://relay.example/spoke/v1/hubs/h-abc/ws/").expect("ok");
        assert_eq!(b.base, "wss://relay.example/spoke");
        assert_eq!(
            b.blob_url("ff"),
            "https://relay.example/spoke/v1/hubs/h-abc/blobs/ff"
        );
    }

    #[test]
    fn rejects_what_cannot_be_a_hub() {
        for bad in [
            "127.0.0.1:7878/v1/hubs/h-abc",
            "ftp://x/v1/hubs/h",
            "ws://x/hubs/h",
            "ws:///v1/hubs/h",
            "ws://x/v1/hubs/",
        ] {
            let err = HubAddress::parse(bad).expect_err(bad);
            assert!(err.0.contains("ws://HOST:PORT/v1/hubs/HUB_ID"), "{err}");
        }
    }
}
