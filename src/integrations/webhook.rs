//! Webhooks signed the Standard Webhooks way: `webhook-id`,
//! `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256>`.

use super::PushError;
use super::wire::{self, Refusals};
use base64::Engine as _;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use sha2::{Digest, Sha256};

/// The prefix of a secret given in base64.
const SECRET_PREFIX: &str = "whsec_";

/// Posts `body` (JSON) to `url`, signed with `secret` (`whsec_…` base64, or
/// raw bytes otherwise). The same `id` is sent on every retry.
pub async fn send(
    connector: &str,
    url: &str,
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<(), PushError> {
    let refuse = |message: String| PushError::Rejected {
        connector: connector.to_owned(),
        status: 0,
        message,
    };
    // A receiver's address may carry a token in its query: it is sent as
    // given and shown without it.
    let url = reqwest::Url::parse(url.trim()).map_err(|e| {
        refuse(format!(
            "the url of connector {connector} ({url:?}) is not a valid URL ({e})"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(refuse(format!(
            "the url of connector {connector} must be an http:// or https:// address"
        )));
    }
    let mut without_query = url.clone();
    without_query.set_query(None);
    without_query.set_fragment(None);
    let target = wire::Target {
        shown: wire::shown_url(&without_query),
        url,
    };
    let signature = sign(secret, id, timestamp, body)
        .map_err(|e| refuse(format!("the signing secret of connector {connector}: {e}")))?;
    let id_header = HeaderValue::from_str(id)
        .map_err(|_| refuse(format!("webhook id {id:?} cannot go in an HTTP header")))?;
    let client = wire::client(connector)?;
    let request = client
        .post(target.url.clone())
        .header(CONTENT_TYPE, "application/json")
        .header("webhook-id", id_header)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body.to_vec());
    let answer = wire::send(
        connector,
        request,
        "POST",
        &target.shown,
        wire::REQUEST_TIMEOUT,
    )
    .await?;
    if answer.is_success() {
        return Ok(());
    }
    let what = format!("delivering webhook {id}");
    let refusals = Refusals {
        connector,
        auth_setting: None,
        messages: |_| Vec::new(),
    };
    if answer.status == reqwest::StatusCode::GONE {
        return Err(PushError::Rejected {
            connector: connector.to_owned(),
            status: 410,
            message: format!(
                "{what}: the receiver at {} is gone (410); remove or change the connector",
                target.shown
            ),
        });
    }
    Err(refusals.classify(&what, &target, &answer))
}

/// The `webhook-signature` value for one delivery:
/// `v1,` + base64 of HMAC-SHA256 over `{id}.{timestamp}.{body}`. The key is
/// the base64 after `whsec_`, or the secret's own bytes.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    let secret = secret.trim();
    let key = match secret.strip_prefix(SECRET_PREFIX) {
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| format!("the part after {SECRET_PREFIX} is not base64 ({e})"))?,
        None => secret.as_bytes().to_vec(),
    };
    if key.is_empty() {
        return Err("the secret is empty".into());
    }
    let mut signed = Vec::with_capacity(id.len() + body.len() + 24);
    signed.extend_from_slice(id.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(timestamp.to_string().as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    let mac = hmac_sha256(&key, &signed);
    Ok(format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac)
    ))
}

/// HMAC (RFC 2104) over SHA-256.
pub(crate) fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        let digest = Sha256::digest(key);
        block[..digest.len()].copy_from_slice(&digest);
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner_pad = block.map(|b| b ^ 0x36);
    let outer_pad = block.map(|b| b ^ 0x5c);
    let inner = Sha256::new()
        .chain_update(inner_pad)
        .chain_update(message)
        .finalize();
    let outer = Sha256::new()
        .chain_update(outer_pad)
        .chain_update(inner)
        .finalize();
    let mut mac = [0u8; 32];
    mac.copy_from_slice(&outer);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// RFC 4231 section 4, the HMAC-SHA-256 results.
    #[test]
    fn hmac_matches_rfc_4231() {
        let long_key = [0xaa; 131];
        let cases: [(&[u8], &[u8], &str); 7] = [
            (
                &[0x0b; 20],
                b"Hi There",
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                &[0xaa; 20],
                &[0xdd; 50],
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
            ),
            (
                &[
                    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                    23, 24, 25,
                ],
                &[0xcd; 50],
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            ),
            // Test case 5 is truncated to 128 bits.
            (
                &[0x0c; 20],
                b"Test With Truncation",
                "a3b6167473100ee06e0c796c2955552b",
            ),
            (
                &long_key,
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
            (
                &long_key,
                b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.",
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            ),
        ];
        for (n, (key, data, expected)) in cases.iter().enumerate() {
            let mac = hex(&hmac_sha256(key, data));
            assert_eq!(
                &mac[..expected.len()],
                *expected,
                "RFC 4231 test case {}",
                n + 1
            );
        }
    }

    #[test]
    fn whsec_secrets_are_base64_keys_and_others_raw_bytes() {
        // "whsec_" + base64("Jefe") signs like the raw secret "Jefe".
        let encoded = sign("whsec_SmVmZQ==", "msg_1", 1_700_000_000, b"{}").unwrap();
        let raw = sign("Jefe", "msg_1", 1_700_000_000, b"{}").unwrap();
        assert_eq!(encoded, raw);
        assert!(encoded.starts_with("v1,"));
        let expected = hmac_sha256(b"Jefe", b"msg_1.1700000000.{}");
        assert_eq!(
            encoded,
            format!(
                "v1,{}",
                base64::engine::general_purpose::STANDARD.encode(expected)
            )
        );
        assert_ne!(raw, sign("Jefe", "msg_1", 1_700_000_001, b"{}").unwrap());
        assert!(sign("whsec_not base64!", "m", 1, b"").is_err());
        assert!(sign("", "m", 1, b"").is_err());
    }
}
