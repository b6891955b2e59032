//! The hub's channel-to-skill table: reading it, and a lead's edits of it.
//! Overrides are hub fields like the brand palette, so they sync as ops and
//! the hub's rules (hub settings are a lead's) decide who may write them.

use super::Hub;
use crate::model::skills::{
    CHANNEL_SKILLS_PREFIX, ChannelSkills, has_default, normalize_channel, normalize_skill,
    override_value,
};
use crate::model::{Change, EntityKind, EntityRef, InputError};
use anyhow::Result;
use serde_json::Value;
use std::collections::BTreeMap;

impl Hub {
    /// The effective table: Spoke's defaults with this hub's overrides on top.
    pub fn channel_skills(&self) -> Result<ChannelSkills> {
        let hub = EntityRef::new(EntityKind::Hub, self.hub_id().to_owned());
        Ok(ChannelSkills::from_hub_record(
            self.replica.record(&hub)?.as_ref(),
        ))
    }

    /// Maps `channel` to `skills` for this hub (an empty list: no skill).
    /// Returns the normalised channel and skills.
    pub fn set_channel_skills(
        &mut self,
        channel: &str,
        skills: &[String],
    ) -> Result<(String, Vec<String>)> {
        let channel = normalize_channel(channel)?;
        let mut clean: Vec<String> = Vec::new();
        for s in skills {
            let s = normalize_skill(s)?;
            if !clean.contains(&s) {
                clean.push(s);
            }
        }
        self.write_channel(&channel, override_value(&clean))?;
        Ok((channel, clean))
    }

    /// Drops this hub's override of `channel`: a channel in Spoke's default
    /// table goes back to its default, any other maps to no skill again.
    /// Refuses a channel the hub never set.
    pub fn unset_channel_skills(&mut self, channel: &str) -> Result<String> {
        let channel = normalize_channel(channel)?;
        let table = self.channel_skills()?;
        let overridden = table
            .entries()
            .any(|e| e.channel == channel && e.source == crate::model::skills::SkillSource::Hub);
        if !overridden {
            let why = if has_default(&channel) {
                "it already has its default skills"
            } else {
                "it is not in the table"
            };
            return Err(InputError::new(format!(
                "the hub has no skills set for channel `{channel}`: {why} (see `spoke hub skills`)"
            ))
            .into());
        }
        self.write_channel(&channel, Value::Null)?;
        Ok(channel)
    }

    fn write_channel(&mut self, channel: &str, value: Value) -> Result<()> {
        let hub = EntityRef::new(EntityKind::Hub, self.hub_id().to_owned());
        let key = format!("{CHANNEL_SKILLS_PREFIX}:{channel}");
        match self.commit(vec![(hub, Change::Set(BTreeMap::from([(key, value)])))]) {
            Ok(_) => Ok(()),
            Err(e) if is_refusal(&e) => Err(e.context(format!(
                "only a lead may change the hub's channel skills (channel `{channel}`)"
            ))),
            Err(e) => Err(e),
        }
    }
}

fn is_refusal(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<crate::store::StoreError>(),
        Some(crate::store::StoreError::Refused(_))
    )
}
