//! Services: what a member can do with a hub. The CLI and the TUI both call
//! these; they validate input, turn intent into ops and read views back.

pub mod approvals;
pub mod assets;
mod briefs;
pub mod generate;
pub mod inbox;
mod integrations;
pub mod knowledge;
mod members;
pub mod search;
mod skills;
pub mod threads;

pub use briefs::{BatchOutcome, BriefFilter, NewBrief};
pub use members::NewMember;

use crate::model::hlc::wall_now_ms;
use crate::model::ids::{new_client_id, new_entity_id};
use crate::model::input::{InputError, parse_zone};
use crate::model::member::{Member, Role, WEEKDAYS, hours_writes, validate_handle};
use crate::model::{Change, EntityKind, EntityRef};
use crate::store::{Replica, ReplicaMeta};
use anyhow::Result;
use serde_json::{Value, json};
use spoke_relay::proto::OpId;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The replica file inside a data folder.
pub fn replica_path(home: &Path) -> PathBuf {
    home.join("replica.redb")
}

/// An open hub replica acting as one member.
pub struct Hub {
    replica: Replica,
    meta: ReplicaMeta,
    /// Zone for reading and showing times when the member has none.
    fallback_zone: String,
    /// A wall clock set by hand (milliseconds since the epoch) and the
    /// clock that stamps a replayed history; `None`: the system clock.
    pinned_clock: Option<(u64, crate::model::hlc::Clock)>,
}

/// Settings for a new hub created with `spoke init`.
pub struct NewHub<'a> {
    pub name: &'a str,
    pub handle: &'a str,
    pub tz: &'a str,
    pub display_name: Option<&'a str>,
}

impl Hub {
    /// Creates a new local hub in `home` with its first member, a lead.
    pub fn init(home: &Path, new: NewHub<'_>) -> Result<Hub> {
        validate_handle(new.handle)?;
        parse_zone(new.tz)?;
        if new.name.trim().is_empty() {
            return Err(InputError::new("the hub needs a name: --name \"Studio North\"").into());
        }
        let path = replica_path(home);
        let meta = ReplicaMeta {
            me: Some(new.handle.to_owned()),
            hub_id: Some(new_entity_id("h")),
            ..ReplicaMeta::new(new_client_id())
        };
        let replica = Replica::create(&path, &meta)?;
        let mut hub = Hub::from_replica(replica, meta, new.tz.to_owned());
        let hub_id = hub.hub_id().to_owned();
        let mut member = NewMember::new(new.handle, new.tz);
        member.name = new.display_name.map(str::to_owned);
        member.roles = vec![Role::Lead];
        member.hours = Some("09:00-17:30".to_owned());
        let mut changes = vec![(
            EntityRef::new(EntityKind::Hub, hub_id),
            set([("name", json!(new.name.trim()))]),
        )];
        changes.extend(hub.member_changes(&member)?);
        hub.commit(changes)?;
        Ok(hub)
    }

    /// Opens the hub replica in `home`.
    pub fn open(home: &Path, fallback_zone: Option<&str>) -> Result<Hub> {
        let path = replica_path(home);
        let replica = Replica::open(&path)?;
        let meta = replica.meta()?;
        Ok(Hub::from_replica(
            replica,
            meta,
            fallback_zone.unwrap_or("UTC").to_owned(),
        ))
    }

    fn from_replica(replica: Replica, meta: ReplicaMeta, fallback_zone: String) -> Hub {
        Hub {
            replica,
            meta,
            fallback_zone,
            pinned_clock: None,
        }
    }

    /// The data folder the replica lives in (blobs and the search index sit beside it).
    pub fn home(&self) -> PathBuf {
        self.replica
            .path()
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    pub fn replica(&self) -> &Replica {
        &self.replica
    }

    pub fn meta(&self) -> &ReplicaMeta {
        &self.meta
    }

    pub fn hub_id(&self) -> &str {
        self.meta.hub_id.as_deref().unwrap_or("")
    }

    pub fn hub_name(&self) -> Result<String> {
        let rec = self
            .replica
            .record(&EntityRef::new(EntityKind::Hub, self.hub_id()))?;
        Ok(rec
            .and_then(|r| r.string("name"))
            .or_else(|| self.meta.hub_name.clone())
            .unwrap_or_default())
    }

    /// The handle this replica acts as.
    pub fn actor(&self) -> Result<&str> {
        self.meta.me.as_deref().ok_or_else(|| {
            anyhow::anyhow!(
                "replica {} has no member identity yet: run `spoke init` or `spoke hub join`",
                self.replica.path().display()
            )
        })
    }

    /// The acting member, if their record has arrived.
    pub fn me(&self) -> Result<Option<Member>> {
        let handle = self.actor()?.to_owned();
        self.member(&handle)
    }

    /// The zone this member reads and writes times in.
    pub fn zone(&self) -> String {
        match self.me() {
            Ok(Some(m)) if parse_zone(&m.tz).is_ok() => m.tz,
            _ => self.fallback_zone.clone(),
        }
    }

    /// Replays a past: the next changes are stamped at `at` instead of
    /// now, by a clock of the replay's own that never runs backwards (a
    /// time before the last replayed one is stamped just after it).
    /// `None`: back to the system clock.
    pub fn pin_clock(&mut self, at: Option<jiff::Timestamp>) {
        self.pinned_clock = at.map(|t| {
            let ms = u64::try_from(t.as_millisecond()).unwrap_or(0);
            let clock = self.pinned_clock.map(|(_, c)| c).unwrap_or_default();
            (ms, clock)
        });
    }

    /// Turns changes into ops stamped by this replica and commits them in one
    /// transaction: applied locally at once, queued for the hub. Changes the
    /// hub's rules refuse (as this replica knows them) write nothing and
    /// fail with the rule.
    pub fn commit(&mut self, mut changes: Vec<(EntityRef, Change)>) -> Result<Vec<OpId>> {
        let actor = self.actor()?.to_owned();
        // Consequences outside the hub are queued in the same commit.
        let outbox = self.outbox_changes(&changes)?;
        changes.extend(outbox);
        let committed = match &mut self.pinned_clock {
            Some((at, clock)) => self
                .replica
                .commit_stamped(&actor, changes, *at, Some(clock)),
            None => self.replica.commit_local(&actor, changes, wall_now_ms()),
        };
        let (ops, meta) = match committed {
            Ok(done) => done,
            // The rule's own words say it all; nothing was written.
            Err(e @ crate::store::StoreError::Refused(_)) => return Err(e.into()),
            Err(e) => {
                return Err(anyhow::Error::new(e).context("saving the change to the local replica"));
            }
        };
        self.meta = meta;
        Ok(ops.into_iter().map(|o| o.id).collect())
    }

    /// Commits, turning the rules' refusal into "only a lead may WHAT".
    pub(crate) fn commit_as_lead(
        &mut self,
        changes: Vec<(EntityRef, Change)>,
        what: &str,
    ) -> Result<()> {
        match self.commit(changes) {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.downcast_ref::<crate::store::StoreError>(),
                    Some(crate::store::StoreError::Refused(_))
                ) =>
            {
                Err(e.context(format!("only a lead may {what}")))
            }
            Err(e) => Err(e),
        }
    }

    /// Resolves a typed id: an exact id, or a unique prefix of one (with or
    /// without the kind's `x-` prefix).
    pub fn resolve_id(&self, kind: EntityKind, typed: &str, prefix: &str) -> Result<String> {
        let typed = typed.trim();
        let label = kind.as_str();
        if typed.is_empty() {
            return Err(InputError::new(format!("empty {label} id")).into());
        }
        let full = if typed.starts_with(&format!("{prefix}-")) {
            typed.to_owned()
        } else {
            format!("{prefix}-{typed}")
        };
        // `b7` may be a prefix of a whole id or of one without its `b-`:
        // ambiguous only if neither reading names exactly one.
        let mut ambiguous = false;
        for candidate in [typed, full.as_str()] {
            let found = self.replica.ids_with_prefix(kind, candidate, 2)?;
            if found.iter().any(|f| f == candidate) {
                return Ok(candidate.to_owned());
            }
            match found.as_slice() {
                [one] => return Ok(one.clone()),
                [_, _, ..] => ambiguous = true,
                [] => {}
            }
        }
        if ambiguous {
            return Err(InputError::new(format!(
                "{label} id `{typed}` is ambiguous: type more characters"
            ))
            .into());
        }
        Err(InputError::new(format!(
            "no {label} with id `{typed}` (list them with `spoke {label} list`)"
        ))
        .into())
    }

    fn member_changes(&self, m: &NewMember) -> Result<Vec<(EntityRef, Change)>> {
        validate_handle(&m.handle)?;
        parse_zone(&m.tz)?;
        let mut fields: BTreeMap<String, Value> = BTreeMap::new();
        fields.insert("tz".into(), json!(m.tz));
        fields.insert(
            "name".into(),
            json!(m.name.clone().unwrap_or_else(|| m.handle.clone())),
        );
        for role in &m.roles {
            fields.insert(format!("roles:{role}"), json!(true));
        }
        for skill in &m.skills {
            let skill = skill.trim().to_lowercase();
            if !skill.is_empty() {
                fields.insert(format!("skills:{skill}"), json!(true));
            }
        }
        if let Some(hours) = &m.hours {
            let days = match &m.days {
                Some(d) => crate::model::member::parse_days(d)?,
                None => WEEKDAYS[..5].iter().map(|(d, _)| *d).collect(),
            };
            for (k, v) in hours_writes(&days, hours)? {
                fields.insert(k, json!(v));
            }
        }
        if let Some(c) = m.capacity {
            fields.insert("capacity".into(), json!(c));
        }
        Ok(vec![(
            EntityRef::new(EntityKind::Member, m.handle.clone()),
            Change::Set(fields),
        )])
    }
}

/// A `Set` change from literal pairs.
pub(crate) fn set<const N: usize>(pairs: [(&str, Value); N]) -> Change {
    Change::Set(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_that_starts_like_the_kind_prefix_still_names_its_one_id() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut hub = Hub::init(
            dir.path(),
            NewHub {
                name: "Test",
                handle: "ana",
                tz: "Europe/Lisbon",
                display_name: None,
            },
        )
        .expect("init");
        for id in ["b-bx1", "b-ky2"] {
            hub.commit(vec![(
                EntityRef::new(EntityKind::Brief, id),
                set([("title", json!(id))]),
            )])
            .expect("a brief");
        }
        // `b` is a prefix of both whole ids, but of only one without `b-`.
        assert_eq!(
            hub.resolve_id(EntityKind::Brief, "b", "b").expect("unique"),
            "b-bx1"
        );
        let err = hub
            .resolve_id(EntityKind::Brief, "b-", "b")
            .expect_err("both");
        assert!(err.to_string().contains("ambiguous"), "{err}");
    }
}
