//! Member services: add and list the people and agents of a hub.

use super::Hub;
use crate::model::input::InputError;
use crate::model::{EntityKind, EntityRef, Member, Role};
use anyhow::Result;

/// A member to add.
#[derive(Debug, Clone)]
pub struct NewMember {
    pub handle: String,
    pub name: Option<String>,
    pub tz: String,
    pub roles: Vec<Role>,
    /// `09:00-17:30`, applied to `days` (Monday to Friday when unset).
    pub hours: Option<String>,
    pub days: Option<String>,
    pub skills: Vec<String>,
    pub capacity: Option<u32>,
}

impl NewMember {
    pub fn new(handle: &str, tz: &str) -> Self {
        NewMember {
            handle: handle.to_owned(),
            name: None,
            tz: tz.to_owned(),
            roles: Vec::new(),
            hours: None,
            days: None,
            skills: Vec::new(),
            capacity: None,
        }
    }
}

impl Hub {
    pub fn add_member(&mut self, new: NewMember) -> Result<Member> {
        // A member who joined with a token holds a role but no profile yet:
        // a lead may fill it in.
        if let Some(existing) = self.member(&new.handle)?
            && self.has_profile(&new.handle)?
        {
            return Err(InputError::new(format!(
                "member `{}` already exists ({}, {})",
                existing.handle, existing.name, existing.tz
            ))
            .into());
        }
        let mut new = new;
        if new.roles.is_empty() {
            new.roles.push(Role::Creative);
        }
        let changes = self.member_changes(&new)?;
        self.commit(changes)?;
        self.member(&new.handle)?
            .ok_or_else(|| anyhow::anyhow!("member {} vanished after being added", new.handle))
    }

    /// Whether a member's record holds a profile (a zone), not just a role.
    fn has_profile(&self, handle: &str) -> Result<bool> {
        Ok(self
            .replica
            .record(&EntityRef::new(EntityKind::Member, handle))?
            .is_some_and(|r| r.get("tz").is_some()))
    }

    /// Fills in the acting member's own profile (zone, display name) when the
    /// hub has none yet. Returns whether anything was written. Members whose
    /// role may not edit a profile (agents, read-only) are left as they are.
    pub fn introduce(&mut self, tz: &str, name: Option<&str>) -> Result<bool> {
        let me = self.actor()?.to_owned();
        if self.has_profile(&me)? {
            return Ok(false);
        }
        crate::model::input::parse_zone(tz)?;
        let mut fields = std::collections::BTreeMap::new();
        fields.insert("tz".to_owned(), serde_json::json!(tz));
        fields.insert(
            "name".to_owned(),
            serde_json::json!(name.unwrap_or(me.as_str())),
        );
        let change = (
            EntityRef::new(EntityKind::Member, me.clone()),
            crate::model::Change::Set(fields),
        );
        match self.commit(vec![change]) {
            Ok(_) => Ok(true),
            Err(e)
                if e.downcast_ref::<crate::store::StoreError>()
                    .is_some_and(|s| matches!(s, crate::store::StoreError::Refused(_))) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Gives a member exactly these roles (the hub lets only leads do it).
    pub fn set_member_roles(&mut self, handle: &str, roles: &[Role]) -> Result<Member> {
        let handle = handle.trim().trim_start_matches('@');
        if self.member(handle)?.is_none() {
            return Err(InputError::new(format!("no member `{handle}` in this hub")).into());
        }
        if roles.is_empty() {
            return Err(InputError::new("give at least one role, e.g. creative").into());
        }
        let fields = Role::ALL
            .iter()
            .map(|r| (format!("roles:{r}"), serde_json::json!(roles.contains(r))))
            .collect();
        self.commit(vec![(
            EntityRef::new(EntityKind::Member, handle),
            crate::model::Change::Set(fields),
        )])?;
        self.member(handle)?
            .ok_or_else(|| anyhow::anyhow!("member {handle} vanished after its roles changed"))
    }

    pub fn member(&self, handle: &str) -> Result<Option<Member>> {
        let rec = self
            .replica
            .record(&EntityRef::new(EntityKind::Member, handle))?;
        Ok(rec
            .map(|r| Member::from_record(handle, &r))
            .filter(|m| !m.deleted))
    }

    /// Members in handle order, without deleted ones.
    pub fn members(&self) -> Result<Vec<Member>> {
        Ok(self
            .replica
            .records(EntityKind::Member)?
            .iter()
            .map(|(h, r)| Member::from_record(h, r))
            .filter(|m| !m.deleted)
            .collect())
    }
}
