//! Assets: content-addressed files with versions, tags, palette and renditions.

use super::record::{EntityRecord, Item};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetStatus {
    #[default]
    Wip,
    InReview,
    Approved,
    Archived,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetKind {
    Image,
    Video,
    Audio,
    Document,
    #[default]
    Other,
}

/// Who made a version or wrote a message: a person, an AI (which makes a
/// version a draft until approved), or Spoke's own fixed rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Provenance {
    Human,
    Ai {
        provider: String,
        model: String,
        prompt_sha256: String,
    },
    /// Written by deterministic rules, no model involved (`intake`: the
    /// completeness rules' questions).
    Rules {
        name: String,
    },
}

/// What messages posted by the intake rules were recorded as before
/// [`Provenance::Rules`] existed.
const LEGACY_RULES: (&str, &str) = ("spoke", "intake-rules");

impl Provenance {
    /// The rules that wrote this, if rules did: `Rules { name }`, or the
    /// older record of the intake rules as an AI named `spoke/intake-rules`.
    pub fn rules_name(&self) -> Option<&str> {
        match self {
            Provenance::Rules { name } => Some(name),
            Provenance::Ai {
                provider, model, ..
            } if (provider.as_str(), model.as_str()) == LEGACY_RULES => Some("intake"),
            _ => None,
        }
    }

    /// How the author is shown beside a message: `AI provider/model`,
    /// `rules: intake`, or `None` for a person.
    pub fn label(&self) -> Option<String> {
        if let Some(name) = self.rules_name() {
            return Some(format!("rules: {name}"));
        }
        match self {
            Provenance::Ai {
                provider, model, ..
            } => Some(format!("AI {provider}/{model}")),
            Provenance::Human | Provenance::Rules { .. } => None,
        }
    }
}

/// One immutable version of an asset; appended, never edited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssetVersion {
    pub blob_sha256: String,
    pub size: u64,
    pub mime: String,
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
    #[serde(default)]
    pub note: Option<String>,
    pub provenance: Provenance,
    /// How a generated version was made: template, seed, LoRAs, prompt,
    /// the graph's hash (to reproduce it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<serde_json::Value>,
    /// Filled from the op that appended the version.
    #[serde(default)]
    pub author: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Asset {
    pub id: String,
    pub title: String,
    pub kind: AssetKind,
    pub versions: Vec<AssetVersion>,
    pub tags: Vec<String>,
    /// Dominant colours as `#rrggbb`.
    pub palette: Vec<String>,
    pub phash: Option<String>,
    pub brief: Option<String>,
    pub status: AssetStatus,
    /// Of several versions offered for approval, the one approved (1-based).
    pub approved_version: Option<u32>,
    /// Rendition preset name -> blob sha256.
    pub renditions: Vec<(String, String)>,
    pub deleted: bool,
}

impl Asset {
    /// `versions` are the asset's appended items in stamp order.
    pub fn from_record(id: &str, rec: &EntityRecord, versions: &[Item]) -> Asset {
        Asset {
            id: id.to_owned(),
            title: rec.string("title").unwrap_or_default(),
            kind: rec.get_as("kind").unwrap_or_default(),
            versions: versions
                .iter()
                .filter_map(|item| {
                    let mut v: AssetVersion = serde_json::from_value(item.value.clone()).ok()?;
                    v.author = item.actor.clone();
                    Some(v)
                })
                .collect(),
            tags: rec.set_members("tags"),
            palette: rec.get_as("palette").unwrap_or_default(),
            phash: rec.string("phash"),
            brief: rec.string("brief"),
            status: rec.get_as("status").unwrap_or_default(),
            approved_version: rec
                .get("approved_version")
                .and_then(|v| v.as_u64())
                .and_then(|v| u32::try_from(v).ok()),
            renditions: rec
                .map_entries("renditions")
                .into_iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned())))
                .collect(),
            deleted: rec.is_deleted(),
        }
    }

    pub fn latest(&self) -> Option<&AssetVersion> {
        self.versions.last()
    }

    /// An asset whose latest version an AI made is a draft until approved.
    pub fn is_ai_draft(&self) -> bool {
        self.status != AssetStatus::Approved
            && matches!(
                self.latest().map(|v| &v.provenance),
                Some(Provenance::Ai { .. })
            )
    }
}

#[cfg(test)]
mod tests {
    use super::Provenance;

    #[test]
    fn rule_made_provenance_reads_back_and_older_records_are_labelled_as_rules() {
        let rules = Provenance::Rules {
            name: "intake".into(),
        };
        let stored = serde_json::to_string(&rules).unwrap();
        assert_eq!(stored, r#"{"by":"rules","name":"intake"}"#);
        assert_eq!(serde_json::from_str::<Provenance>(&stored).unwrap(), rules);
        assert_eq!(rules.label().as_deref(), Some("rules: intake"));

        let older: Provenance = serde_json::from_str(
            r#"{"by":"ai","provider":"spoke","model":"intake-rules","prompt_sha256":""}"#,
        )
        .unwrap();
        assert!(matches!(older, Provenance::Ai { .. }), "read as stored");
        assert_eq!(older.rules_name(), Some("intake"));
        assert_eq!(older.label().as_deref(), Some("rules: intake"));

        let ai: Provenance = serde_json::from_str(
            r#"{"by":"ai","provider":"openai","model":"smollm2","prompt_sha256":"ab"}"#,
        )
        .unwrap();
        assert_eq!(ai.rules_name(), None);
        assert_eq!(ai.label().as_deref(), Some("AI openai/smollm2"));
        assert_eq!(Provenance::Human.label(), None);
    }
}
