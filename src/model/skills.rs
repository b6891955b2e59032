//! The channel-to-skill table: which skills a deliverable's channel asks for
//! (`linkedin` wants `social`). A default table ships with Spoke; a lead
//! overrides entries as hub data, one register per channel
//! (`channel_skills:CHANNEL` on the hub entity), so edits of different
//! channels by different leads never overwrite each other.

use super::input::InputError;
use super::record::EntityRecord;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The hub fields holding the overrides: `channel_skills:linkedin = ["social"]`.
/// `[]` maps a channel to no skill; `null` (an unset) brings back the default.
pub const CHANNEL_SKILLS_PREFIX: &str = "channel_skills";

/// The table every hub starts from.
pub const DEFAULT_CHANNEL_SKILLS: &[(&str, &[&str])] = &[
    ("48-sheet", &["print"]),
    ("banner", &["digital"]),
    ("billboard", &["print"]),
    ("blog", &["copy"]),
    ("display", &["digital"]),
    ("email", &["email", "copy"]),
    ("facebook", &["social"]),
    ("instagram", &["social"]),
    ("linkedin", &["social"]),
    ("newsletter", &["email", "copy"]),
    ("ooh", &["print"]),
    ("pinterest", &["social"]),
    ("podcast", &["audio"]),
    ("poster", &["print"]),
    ("print", &["print"]),
    ("radio", &["audio"]),
    ("threads", &["social"]),
    ("tiktok", &["video", "social"]),
    ("twitter", &["social"]),
    ("web", &["digital"]),
    ("x", &["social"]),
    ("youtube", &["video"]),
];

/// Where a table entry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkillSource {
    /// Spoke's [`DEFAULT_CHANNEL_SKILLS`].
    Default,
    /// A lead's override on the hub.
    Hub,
}

/// One channel's skills.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelSkillEntry {
    pub channel: String,
    /// Empty: the channel asks for no particular skill.
    pub skills: Vec<String>,
    pub source: SkillSource,
}

/// The effective table: the defaults with the hub's overrides on top.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSkills {
    entries: BTreeMap<String, ChannelSkillEntry>,
}

impl Default for ChannelSkills {
    fn default() -> Self {
        let entries = DEFAULT_CHANNEL_SKILLS
            .iter()
            .map(|(channel, skills)| {
                (
                    (*channel).to_owned(),
                    ChannelSkillEntry {
                        channel: (*channel).to_owned(),
                        skills: skills.iter().map(|s| (*s).to_owned()).collect(),
                        source: SkillSource::Default,
                    },
                )
            })
            .collect();
        ChannelSkills { entries }
    }
}

impl ChannelSkills {
    /// The defaults overlaid with the overrides stored on the hub record.
    /// An entry that is not a list of strings is skipped (the default stays).
    pub fn from_hub_record(hub: Option<&EntityRecord>) -> ChannelSkills {
        let mut table = ChannelSkills::default();
        let Some(hub) = hub else {
            return table;
        };
        for (channel, value) in hub.map_entries(CHANNEL_SKILLS_PREFIX) {
            let Some(list) = value.as_array() else {
                continue;
            };
            let skills: Option<Vec<String>> =
                list.iter().map(|v| v.as_str().map(str::to_owned)).collect();
            if let Some(skills) = skills {
                table.entries.insert(
                    channel.clone(),
                    ChannelSkillEntry {
                        channel,
                        skills,
                        source: SkillSource::Hub,
                    },
                );
            }
        }
        table
    }

    /// The skills a channel (already normalised, see [`normalize_channel`]) asks for.
    pub fn skills_for(&self, channel: &str) -> Option<&[String]> {
        self.entries.get(channel).map(|e| e.skills.as_slice())
    }

    /// Every entry, by channel.
    pub fn entries(&self) -> impl Iterator<Item = &ChannelSkillEntry> {
        self.entries.values()
    }
}

/// Whether Spoke's default table names this channel.
pub fn has_default(channel: &str) -> bool {
    DEFAULT_CHANNEL_SKILLS.iter().any(|(c, _)| *c == channel)
}

/// A channel as the table keys it: trimmed, lowercase, letters, digits and
/// `-` only (`LinkedIn` is `linkedin`, `48-sheet` stays).
pub fn normalize_channel(text: &str) -> Result<String, InputError> {
    normalize_word(text, "channel")
}

/// A skill as the table stores it: trimmed, lowercase, letters, digits and `-`.
pub fn normalize_skill(text: &str) -> Result<String, InputError> {
    normalize_word(text, "skill")
}

fn normalize_word(text: &str, what: &str) -> Result<String, InputError> {
    let word = text.trim().to_lowercase();
    if word.is_empty() {
        return Err(InputError::new(format!("empty {what} name")));
    }
    if let Some(bad) = word
        .chars()
        .find(|c| !(c.is_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(InputError::new(format!(
            "{what} `{}` has a `{bad}`: use letters, digits and -, e.g. linkedin=social",
            text.trim()
        )));
    }
    Ok(word)
}

/// Reads `CHANNEL=skill1,skill2` (an empty right side maps the channel to no
/// skill). Skills are normalised and deduplicated, in the order given.
pub fn parse_assignment(text: &str) -> Result<(String, Vec<String>), InputError> {
    let Some((channel, skills)) = text.split_once('=') else {
        return Err(InputError::new(format!(
            "`{text}` is not CHANNEL=SKILLS: write e.g. linkedin=social,copy"
        )));
    };
    let channel = normalize_channel(channel)?;
    let mut out: Vec<String> = Vec::new();
    for skill in skills.split(',').filter(|s| !s.trim().is_empty()) {
        let skill = normalize_skill(skill)?;
        if !out.contains(&skill) {
            out.push(skill);
        }
    }
    Ok((channel, out))
}

/// The hub field value for an override.
pub fn override_value(skills: &[String]) -> Value {
    Value::from(skills.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_are_normalised_and_checked() {
        assert_eq!(
            parse_assignment(" LinkedIn = Social, copy ,social").expect("ok"),
            ("linkedin".to_owned(), vec!["social".into(), "copy".into()])
        );
        assert_eq!(
            parse_assignment("tiktok=").expect("ok"),
            ("tiktok".to_owned(), Vec::<String>::new())
        );
        assert!(parse_assignment("linkedin").is_err());
        assert!(parse_assignment("=social").is_err());
        assert!(parse_assignment("linked in=social").is_err());
    }

    #[test]
    fn the_default_table_maps_social_channels_to_social() {
        let table = ChannelSkills::default();
        assert_eq!(
            table.skills_for("linkedin"),
            Some(&["social".to_owned()][..])
        );
        assert_eq!(
            table.skills_for("instagram"),
            Some(&["social".to_owned()][..])
        );
        assert!(table.entries().all(|e| e.source == SkillSource::Default));
    }
}
