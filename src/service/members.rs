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
        if let Some(existing) = self.member(&new.handle)? {
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
