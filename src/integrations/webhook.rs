//! Webhooks signed the Standard Webhooks way: `webhook-id`,
//! `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256>`.

use super::PushError;

/// Posts `body` (JSON) to `url`, signed with `secret` (`whsec_…` base64, or
/// raw bytes otherwise). The same `id` is sent on every retry.
pub async fn send(
    connector: &str,
    _url: &str,
    _secret: &str,
    _id: &str,
    _timestamp: i64,
    _body: &[u8],
) -> Result<(), PushError> {
    Err(PushError::Transient {
        connector: connector.to_owned(),
        message: "not built".into(),
    })
}
