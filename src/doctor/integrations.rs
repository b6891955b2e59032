//! Integrations: for each connector, whether its secret is where it must be
//! (on the pusher's machine), whether a pusher is named, and whether the
//! outbox holds failures. Read from the replica and this machine's secrets
//! only; no tracker or webhook is called.

use super::Check;
use super::paths::ReplicaFound;
use crate::integrations::secrets;
use crate::model::integration::{Connector, Delivery, DeliveryStatus, PushSettings};
use crate::service::Hub;
use std::path::Path;

const AREA: &str = "integrations";

/// The integration checks for the replica in `home`. Nothing is checked
/// when the replica could not be read (the `data folder` check says why).
pub fn checks(home: Option<&Path>, replica: &ReplicaFound) -> Vec<Check> {
    let (Some(home), Some(_)) = (home, &replica.facts) else {
        return Vec::new();
    };
    let hub = match Hub::open(home, None) {
        Ok(hub) => hub,
        Err(e) => {
            return vec![Check::warn(
                AREA,
                "connectors",
                format!("not checked: the replica could not be opened again: {e:#}"),
                "run `spoke doctor` again with other spoke processes closed",
            )];
        }
    };
    let read =
        (|| -> anyhow::Result<_> { Ok((hub.connectors()?, hub.push_settings()?, hub.outbox()?)) })(
        );
    let (connectors, push, outbox) = match read {
        Ok(found) => found,
        Err(e) => {
            return vec![Check::fail(
                AREA,
                "connectors",
                format!("cannot read the hub's integrations: {e:#}"),
                "run `spoke --rebuild-cache status` to rebuild the state from the stored ops",
            )];
        }
    };
    let me = hub.meta().me.clone();
    drop(hub);
    assess(home, me.as_deref(), &connectors, &push, &outbox)
}

/// The checks from what the replica holds.
fn assess(
    home: &Path,
    me: Option<&str>,
    connectors: &[Connector],
    push: &PushSettings,
    outbox: &[Delivery],
) -> Vec<Check> {
    if connectors.is_empty() {
        return vec![Check::ok(AREA, "connectors", "no connectors")];
    }
    let mut out: Vec<Check> = connectors
        .iter()
        .map(|c| secret_check(home, me, push.pusher.as_deref(), c))
        .collect();
    out.push(pusher_check(me, push));
    out.push(outbox_check(outbox));
    out
}

fn secret_check(home: &Path, me: Option<&str>, pusher: Option<&str>, c: &Connector) -> Check {
    let what = format!("{} ({})", c.name, c.kind.name());
    let kind_of_secret = if c.kind.is_tracker() {
        "API token"
    } else {
        "signing secret"
    };
    let i_push = pusher.is_some() && pusher == me;
    match secrets::secret(home, &c.name) {
        Ok(Some(_)) => Check::ok(
            AREA,
            "connector",
            format!("{what}: its {kind_of_secret} is on this machine"),
        ),
        Ok(None) if i_push => Check::warn(
            AREA,
            "connector",
            format!(
                "{what}: no {kind_of_secret} on this machine, and this member is the hub's pusher: deliveries wait"
            ),
            format!(
                "`spoke integrations secret {}` (reads it from standard input), or set ${}",
                c.name,
                secrets::env_var(&c.name)
            ),
        ),
        Ok(None) => Check::ok(
            AREA,
            "connector",
            match pusher {
                Some(p) => {
                    format!("{what}: its {kind_of_secret} is kept on the pusher's machine (@{p})")
                }
                None => format!("{what}: its {kind_of_secret} is kept on the pusher's machine"),
            },
        ),
        Err(e) if i_push => Check::warn(
            AREA,
            "connector",
            format!("{what}: cannot read the secrets on this machine: {e:#}"),
            format!(
                "correct or remove {}, then `spoke integrations secret {}`",
                secrets::secrets_path(home).display(),
                c.name
            ),
        ),
        Err(e) => Check::ok(
            AREA,
            "connector",
            format!(
                "{what}: its {kind_of_secret} is kept on the pusher's machine ({} here is unreadable: {e:#})",
                secrets::secrets_path(home).display()
            ),
        ),
    }
}

fn pusher_check(me: Option<&str>, push: &PushSettings) -> Check {
    match push.pusher.as_deref() {
        Some(p) if Some(p) == me => Check::ok(
            AREA,
            "pusher",
            format!(
                "@{p}, this member: run `spoke integrations push` here (trackers read back every {} s)",
                push.poll_secs
            ),
        ),
        Some(p) => Check::ok(
            AREA,
            "pusher",
            format!("@{p} delivers the outbox from its machine"),
        ),
        None => Check::warn(
            AREA,
            "pusher",
            "no pusher is named: nothing in the outbox is delivered",
            "a lead names the member whose machine pushes: `spoke integrations pusher HANDLE`",
        ),
    }
}

fn outbox_check(outbox: &[Delivery]) -> Check {
    let count = |s: DeliveryStatus| outbox.iter().filter(|d| d.status == s).count();
    let failed: Vec<&Delivery> = outbox
        .iter()
        .filter(|d| d.status == DeliveryStatus::Failed)
        .collect();
    let pending = count(DeliveryStatus::Pending);
    match failed.first() {
        Some(first) => Check::warn(
            AREA,
            "outbox",
            format!(
                "{} failed (first: {} to {}: {}); {pending} pending",
                failed.len(),
                first.id,
                first.connector,
                first.last_error.as_deref().unwrap_or("no reason recorded")
            ),
            format!(
                "fix the cause, then a lead puts it back: `spoke integrations retry {}` (or `spoke integrations drop {}`)",
                first.id, first.id
            ),
        ),
        None => Check::ok(
            AREA,
            "outbox",
            format!(
                "{pending} pending, {} delivered, none failed",
                count(DeliveryStatus::Done)
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::integration::ConnectorKind;
    use crate::model::integration::DeliveryAction;
    use std::collections::BTreeMap;

    fn connector(name: &str, kind: ConnectorKind) -> Connector {
        Connector {
            name: name.into(),
            kind,
            settings: BTreeMap::new(),
            events: Vec::new(),
            members: BTreeMap::new(),
            deleted: false,
        }
    }

    fn delivery(id: &str, status: DeliveryStatus, error: Option<&str>) -> Delivery {
        Delivery {
            id: id.into(),
            connector: "hooks".into(),
            action: Some(DeliveryAction::Event),
            task: None,
            event: None,
            status,
            attempts: 1,
            next_at: None,
            last_error: error.map(str::to_owned),
            result: None,
            created_by: None,
            created_ms: 0,
            deleted: false,
        }
    }

    fn pushed_by(p: Option<&str>) -> PushSettings {
        PushSettings {
            pusher: p.map(str::to_owned),
            lease: None,
            poll_secs: 300,
        }
    }

    #[test]
    fn no_connectors_is_one_ok_line() {
        let dir = tempfile::tempdir().unwrap();
        let checks = assess(dir.path(), Some("ana"), &[], &pushed_by(None), &[]);
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].status, super::super::Status::Ok);
        assert_eq!(checks[0].detail, "no connectors");
    }

    #[test]
    fn a_missing_secret_warns_only_on_the_pushers_machine() {
        use super::super::Status;
        let dir = tempfile::tempdir().unwrap();
        let name = "doctor-unit-hooks";
        let c = [connector(name, ConnectorKind::Webhook)];
        let on_scout = assess(
            dir.path(),
            Some("scout"),
            &c,
            &pushed_by(Some("scout")),
            &[],
        );
        assert_eq!(on_scout[0].status, Status::Warn, "{on_scout:?}");
        assert!(
            on_scout[0]
                .fix
                .as_deref()
                .is_some_and(|f| f.contains(&format!("spoke integrations secret {name}"))),
            "{on_scout:?}"
        );
        let on_ana = assess(dir.path(), Some("ana"), &c, &pushed_by(Some("scout")), &[]);
        assert_eq!(on_ana[0].status, Status::Ok);
        assert!(on_ana[0].detail.contains("@scout"), "{on_ana:?}");
        secrets::store(dir.path(), name, Some("whsec_abc")).unwrap();
        let stored = assess(
            dir.path(),
            Some("scout"),
            &c,
            &pushed_by(Some("scout")),
            &[],
        );
        assert_eq!(stored[0].status, Status::Ok);
        assert!(stored[0].detail.contains("on this machine"), "{stored:?}");
    }

    #[test]
    fn failures_warn_with_the_first_reason_and_the_retry_command() {
        use super::super::Status;
        let dir = tempfile::tempdir().unwrap();
        let c = [connector("doctor-unit-jira", ConnectorKind::Jira)];
        let outbox = [
            delivery("d-1", DeliveryStatus::Done, None),
            delivery("d-2", DeliveryStatus::Pending, None),
            delivery(
                "d-3",
                DeliveryStatus::Failed,
                Some("jira: 401 Unauthorized"),
            ),
            delivery("d-4", DeliveryStatus::Failed, Some("jira: 400 bad")),
        ];
        let checks = assess(dir.path(), Some("ana"), &c, &pushed_by(None), &outbox);
        let pusher = checks.iter().find(|c| c.check == "pusher").unwrap();
        assert_eq!(pusher.status, Status::Warn);
        assert!(
            pusher
                .fix
                .as_deref()
                .unwrap()
                .contains("integrations pusher")
        );
        let outbox_check = checks.iter().find(|c| c.check == "outbox").unwrap();
        assert_eq!(outbox_check.status, Status::Warn);
        assert!(
            outbox_check.detail.starts_with("2 failed"),
            "{outbox_check:?}"
        );
        assert!(outbox_check.detail.contains("401 Unauthorized"));
        assert!(
            outbox_check
                .fix
                .as_deref()
                .unwrap()
                .contains("spoke integrations retry d-3")
        );
        let calm = assess(dir.path(), Some("ana"), &c, &pushed_by(None), &outbox[..2]);
        let outbox_check = calm.iter().find(|c| c.check == "outbox").unwrap();
        assert_eq!(outbox_check.status, Status::Ok);
        assert!(outbox_check.detail.starts_with("1 pending, 1 delivered"));
    }
}
