//! Where a hub lives: the relay's base URL and the hub id, read from the URL
//! a member is given (`ws://host:port/v1/hubs/HUB`), or the relay's base URL
//! alone (`ws://host:port`), whose hub the relay names from the token.

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

    /// Reads what a member was given to join: a hub URL, or a relay's base
    /// URL (`ws[s]://HOST[:PORT][/PREFIX]`, with or without a trailing `/` or
    /// `/v1`), whose hub must then be asked of the relay.
    pub fn parse_target(url: &str) -> Result<JoinTarget, InputError> {
        let trimmed = url.trim().trim_end_matches('/');
        if trimmed.contains("/v1/hubs/") {
            return HubAddress::parse(url).map(JoinTarget::Hub);
        }
        let bad = |why: &str| {
            InputError::new(format!(
                "cannot use `{url}` to join: {why}; pass the line `spoke-relay hub create` or \
                 `token issue` printed (ws://HOST:PORT/v1/hubs/HUB_ID), or the relay's address \
                 (ws://HOST:PORT or wss://HOST) with a token"
            ))
        };
        let base = spoke_relay::proto::relay_base_url(trimmed).map_err(bad)?;
        Ok(JoinTarget::Relay { base })
    }

    /// The relay's base over HTTP(S), for its plain HTTP endpoints.
    pub fn http_base(base: &str) -> String {
        base.replacen("wss://", "https://", 1)
            .replacen("ws://", "http://", 1)
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
        format!(
            "{}/v1/hubs/{}/blobs/{sha256}",
            HubAddress::http_base(&self.base),
            self.hub
        )
    }
}

/// Several relays serving one hub, as a member lists them: each entry a hub
/// URL or a relay's base URL, in the order they are tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayTargets {
    /// Relay base URLs (`ws[s]://HOST[:PORT][/PREFIX]`), first to try first,
    /// each once.
    pub bases: Vec<String>,
    /// The hub named by the hub URLs among them, if any did.
    pub hub: Option<String>,
}

impl RelayTargets {
    /// Reads URLs given as separate arguments, each of which may also be a
    /// comma-separated list. Duplicates (the same relay written twice, with
    /// or without the hub path) are dropped; the first URL that cannot be a
    /// relay is refused by name, as are hub URLs naming different hubs.
    pub fn parse<S: AsRef<str>>(inputs: &[S]) -> Result<RelayTargets, InputError> {
        let mut bases: Vec<String> = Vec::new();
        let mut hub: Option<(String, String)> = None;
        for url in inputs
            .iter()
            .flat_map(|input| input.as_ref().split(','))
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            let base = match HubAddress::parse_target(url)? {
                JoinTarget::Relay { base } => base,
                JoinTarget::Hub(addr) => {
                    match &hub {
                        Some((first, from)) if *first != addr.hub => {
                            return Err(InputError::new(format!(
                                "the relays name two different hubs: `{from}` is hub {first} \
                                 but `{url}` is hub {}; list relays of one hub only",
                                addr.hub
                            )));
                        }
                        Some(_) => {}
                        None => hub = Some((addr.hub.clone(), url.to_owned())),
                    }
                    addr.base
                }
            };
            if !bases.contains(&base) {
                bases.push(base);
            }
        }
        if bases.is_empty() {
            return Err(InputError::new(
                "no relay URL given: pass the hub's URL (ws://HOST:PORT/v1/hubs/HUB_ID) or the \
                 relay's address (ws://HOST:PORT), and more with --relay URL",
            ));
        }
        Ok(RelayTargets {
            bases,
            hub: hub.map(|(h, _)| h),
        })
    }

    /// Every relay as the address of `hub` on it.
    pub fn addresses(&self, hub: &str) -> Vec<HubAddress> {
        self.bases
            .iter()
            .map(|base| HubAddress {
                base: base.clone(),
                hub: hub.to_owned(),
            })
            .collect()
    }
}

/// What `spoke hub join` was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinTarget {
    /// A hub's own URL.
    Hub(HubAddress),
    /// A relay's base URL: the token names the hub.
    Relay { base: String },
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
    fn a_relay_base_url_is_a_join_target() {
        for (given, base) in [
            ("ws://127.0.0.1:7878", "ws://127.0.0.1:7878"),
            ("ws://127.0.0.1:7878/", "ws://127.0.0.1:7878"),
            ("wss://hub.example.com/v1", "wss://hub.example.com"),
            (
                "https://hub.example.com/spoke/v1/",
                "wss://hub.example.com/spoke",
            ),
        ] {
            assert_eq!(
                HubAddress::parse_target(given).expect(given),
                JoinTarget::Relay { base: base.into() },
                "{given}"
            );
        }
        assert_eq!(
            HubAddress::parse_target("ws://h:1/v1/hubs/h-abc").expect("hub"),
            JoinTarget::Hub(HubAddress {
                base: "ws://h:1".into(),
                hub: "h-abc".into()
            })
        );
        for bad in ["127.0.0.1:7878", "ftp://x", "ws://", "ws://x/v1/hubs/"] {
            assert!(HubAddress::parse_target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_relay_list_is_split_deduplicated_and_ordered() {
        let t = RelayTargets::parse(&[
            "ws://a:1/v1/hubs/h-abc, ws://b:2",
            "ws://a:1",
            "http://b:2/v1/",
            "ws://c:3/v1/hubs/h-abc/ws,",
        ])
        .expect("a list");
        assert_eq!(t.bases, ["ws://a:1", "ws://b:2", "ws://c:3"]);
        assert_eq!(t.hub.as_deref(), Some("h-abc"));
        let addrs = t.addresses("h-abc");
        assert_eq!(addrs[1].display(), "ws://b:2/v1/hubs/h-abc");
        let only_bases = RelayTargets::parse(&["ws://a:1,wss://b.example"]).expect("bases");
        assert_eq!(only_bases.hub, None);
        assert_eq!(only_bases.bases, ["ws://a:1", "wss://b.example"]);
    }

    #[test]
    fn a_bad_relay_in_a_list_is_named() {
        let err = RelayTargets::parse(&["ws://a:1", "ws://b:2,ftp://nope:3"]).expect_err("bad");
        assert!(err.0.contains("`ftp://nope:3`"), "{err}");
        let err = RelayTargets::parse(&["ws://a:1/v1/hubs/h-one,ws://b:2/v1/hubs/h-two"])
            .expect_err("two hubs");
        assert!(
            err.0.contains("h-one") && err.0.contains("h-two") && err.0.contains("ws://b:2"),
            "{err}"
        );
        let err = RelayTargets::parse(&[" , "]).expect_err("empty");
        assert!(err.0.contains("no relay URL"), "{err}");
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
