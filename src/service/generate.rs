//! Generation settings a lead keeps on the hub: workflow templates (one
//! `template/NAME` entity each) and the brand's presets on the hub record.

use super::Hub;
use crate::generate::template::{Provider, Template, graph_sha256};
use crate::model::generate::{
    BRAND_LORAS_FIELD, BRAND_NEGATIVE_FIELD, BRAND_SIZES_FIELD, BrandLora, BrandPresets,
    check_template_name, parse_size,
};
use crate::model::record::EntityRecord;
use crate::model::{Change, EntityKind, EntityRef, InputError};
use anyhow::Result;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A template as the hub holds it, with who added it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateEntry {
    pub template: Template,
    /// As recorded when it was added; the graph hashes to it.
    pub graph_sha256: String,
    pub created_by: String,
}

impl TemplateEntry {
    /// `None` for a deleted template or one this version cannot read.
    fn from_record(name: &str, rec: &EntityRecord) -> Option<TemplateEntry> {
        if rec.is_deleted() {
            return None;
        }
        let mut template: Template = rec.get_as("template")?;
        template.name = name.to_owned();
        // The lead's mark is its own field, so changing it rewrites no graph.
        if let Some(optional) = rec.get("brand_lora_optional").and_then(Value::as_bool) {
            template.brand_lora_optional = optional;
        }
        Some(TemplateEntry {
            graph_sha256: rec
                .string("graph_sha256")
                .unwrap_or_else(|| graph_sha256(&template.graph)),
            created_by: rec.string("created_by").unwrap_or_default(),
            template,
        })
    }
}

impl Hub {
    /// Adds (or replaces) a template from a ComfyUI API-format workflow.
    /// A template that does not bind `lora` is refused while the brand has
    /// LoRAs, unless it is marked `brand_lora_optional`.
    pub fn add_template(
        &mut self,
        name: &str,
        json_text: &str,
        binds: &[(String, String)],
        provider: Provider,
        brand_lora_optional: bool,
    ) -> Result<Template> {
        let name = check_template_name(name)?;
        let mut template =
            Template::parse(&name, json_text, binds).map_err(|e| InputError::new(e.0))?;
        template.provider = provider;
        template.brand_lora_optional = brand_lora_optional;
        let brand = self.brand_presets()?;
        if !template.bindings.contains_key("lora")
            && !brand_lora_optional
            && !brand.loras.is_empty()
        {
            return Err(InputError::new(format!(
                "template {name} binds no {{{{lora}}}}, but the brand loads {}: write \
                 \"{{{{lora}}}}\" as a LoraLoader's lora_name (or --bind lora=NODE.lora_name), \
                 or add it with --lora-optional if it may run without the brand's LoRA",
                brand.lora_names().join(", ")
            ))
            .into());
        }
        let fields = BTreeMap::from([
            ("template".to_owned(), serde_json::to_value(&template)?),
            ("graph_sha256".to_owned(), json!(template.graph_sha256())),
            ("created_by".to_owned(), json!(self.actor()?)),
            (
                "brand_lora_optional".to_owned(),
                json!(template.brand_lora_optional),
            ),
            ("deleted".to_owned(), json!(false)),
        ]);
        self.commit_as_lead(
            vec![(
                EntityRef::new(EntityKind::Template, name.clone()),
                Change::Set(fields),
            )],
            "add templates",
        )?;
        self.template(&name)
    }

    /// Every template of the hub, by name; deleted ones left out.
    pub fn template_entries(&self) -> Result<Vec<TemplateEntry>> {
        Ok(self
            .replica
            .records(EntityKind::Template)?
            .iter()
            .filter_map(|(name, rec)| TemplateEntry::from_record(name, rec))
            .collect())
    }

    pub fn templates(&self) -> Result<Vec<Template>> {
        Ok(self
            .template_entries()?
            .into_iter()
            .map(|e| e.template)
            .collect())
    }

    pub fn template_entry(&self, name: &str) -> Result<TemplateEntry> {
        let name = name.trim();
        let rec = self
            .replica
            .record(&EntityRef::new(EntityKind::Template, name))?;
        match rec {
            Some(rec) if !rec.is_deleted() => {
                TemplateEntry::from_record(name, &rec).ok_or_else(|| {
                    anyhow::anyhow!(
                        "template {name} was written by a newer Spoke and cannot be read here"
                    )
                })
            }
            _ => Err(InputError::new(format!(
                "no template `{name}` (see `spoke generate template list`)"
            ))
            .into()),
        }
    }

    pub fn template(&self, name: &str) -> Result<Template> {
        Ok(self.template_entry(name)?.template)
    }

    pub fn remove_template(&mut self, name: &str) -> Result<()> {
        let t = self.template(name)?;
        self.commit_as_lead(
            vec![(
                EntityRef::new(EntityKind::Template, t.name),
                Change::Set(BTreeMap::from([("deleted".into(), json!(true))])),
            )],
            "remove templates",
        )
    }

    /// Marks whether a template may run without the brand's LoRA.
    pub fn set_template_lora_optional(&mut self, name: &str, optional: bool) -> Result<Template> {
        let t = self.template(name)?;
        self.commit_as_lead(
            vec![(
                EntityRef::new(EntityKind::Template, t.name.clone()),
                Change::Set(BTreeMap::from([(
                    "brand_lora_optional".into(),
                    json!(optional),
                )])),
            )],
            "change templates",
        )?;
        self.template(&t.name)
    }

    pub fn brand_presets(&self) -> Result<BrandPresets> {
        let rec = self
            .replica
            .record(&EntityRef::new(EntityKind::Hub, self.hub_id().to_owned()))?;
        Ok(BrandPresets::from_record(rec.as_ref()))
    }

    /// Sets the parts given (`None` leaves a part as it is; an empty list
    /// or text clears it). Sizes are stored as `WxH`.
    pub fn set_brand_presets(
        &mut self,
        loras: Option<Vec<BrandLora>>,
        negative: Option<String>,
        sizes: Option<Vec<String>>,
    ) -> Result<BrandPresets> {
        let mut fields: BTreeMap<String, Value> = BTreeMap::new();
        if let Some(loras) = loras {
            let mut unique: Vec<BrandLora> = Vec::new();
            for lora in loras {
                let name = lora.name.trim().to_owned();
                if name.is_empty() {
                    return Err(InputError::new("a brand LoRA needs a file name").into());
                }
                if !lora.strength.is_finite() {
                    return Err(InputError::new(format!(
                        "LoRA {name}: the strength is not a number"
                    ))
                    .into());
                }
                unique.retain(|l| l.name != name);
                unique.push(BrandLora {
                    name,
                    strength: lora.strength,
                });
            }
            fields.insert(BRAND_LORAS_FIELD.into(), serde_json::to_value(&unique)?);
        }
        if let Some(negative) = negative {
            fields.insert(BRAND_NEGATIVE_FIELD.into(), json!(negative.trim()));
        }
        if let Some(sizes) = sizes {
            let mut clean: Vec<String> = Vec::new();
            for s in &sizes {
                let (w, h) = parse_size(s)?;
                let s = format!("{w}x{h}");
                if !clean.contains(&s) {
                    clean.push(s);
                }
            }
            fields.insert(BRAND_SIZES_FIELD.into(), json!(clean));
        }
        if !fields.is_empty() {
            self.commit_as_lead(
                vec![(
                    EntityRef::new(EntityKind::Hub, self.hub_id().to_owned()),
                    Change::Set(fields),
                )],
                "set the brand's presets",
            )?;
        }
        self.brand_presets()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::NewHub;

    const TXT2IMG: &str = include_str!("../../tests/fixtures/comfy/sdxl_lora_txt2img_api.json");
    const IMG2IMG: &str = include_str!("../../tests/fixtures/comfy/sdxl_img2img_api.json");

    fn hub(dir: &std::path::Path) -> Hub {
        Hub::init(
            dir,
            NewHub {
                name: "Test",
                handle: "ana",
                tz: "Europe/Lisbon",
                display_name: None,
            },
        )
        .unwrap()
    }

    #[test]
    fn templates_are_stored_read_back_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut hub = hub(dir.path());
        let t = hub
            .add_template("sdxl", TXT2IMG, &[], Provider::Comfyui, false)
            .unwrap();
        let entry = hub.template_entry("sdxl").unwrap();
        assert_eq!(entry.template, t);
        assert_eq!(entry.graph_sha256, graph_sha256(&t.graph));
        assert_eq!(entry.created_by, "ana");
        let t = hub.set_template_lora_optional("sdxl", true).unwrap();
        assert!(t.brand_lora_optional);
        assert_eq!(hub.templates().unwrap().len(), 1);
        hub.remove_template("sdxl").unwrap();
        assert!(hub.templates().unwrap().is_empty());
        let err = hub.template("sdxl").unwrap_err();
        assert!(err.to_string().contains("no template `sdxl`"), "{err}");
    }

    #[test]
    fn a_template_without_the_brands_lora_needs_the_leads_mark() {
        let dir = tempfile::tempdir().unwrap();
        let mut hub = hub(dir.path());
        // No brand LoRA yet: nothing to leave out.
        hub.add_template("i2i", IMG2IMG, &[], Provider::Comfyui, false)
            .unwrap();
        hub.set_brand_presets(
            Some(vec![BrandLora {
                name: "brand_v1.safetensors".into(),
                strength: 0.8,
            }]),
            None,
            None,
        )
        .unwrap();
        let err = hub
            .add_template("i2i-b", IMG2IMG, &[], Provider::Comfyui, false)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("binds no {{lora}}, but the brand loads brand_v1.safetensors"),
            "{err}"
        );
        let t = hub
            .add_template("i2i-b", IMG2IMG, &[], Provider::Comfyui, true)
            .unwrap();
        assert!(t.brand_lora_optional);
    }

    #[test]
    fn brand_presets_update_in_parts() {
        let dir = tempfile::tempdir().unwrap();
        let mut hub = hub(dir.path());
        assert_eq!(hub.brand_presets().unwrap(), BrandPresets::default());
        hub.set_brand_presets(
            None,
            Some("text, watermark".into()),
            Some(vec![
                "1024x1024".into(),
                "1216X832".into(),
                "1024x1024".into(),
            ]),
        )
        .unwrap();
        let p = hub
            .set_brand_presets(
                Some(vec![BrandLora {
                    name: "brand_v1.safetensors".into(),
                    strength: 0.8,
                }]),
                None,
                None,
            )
            .unwrap();
        assert_eq!(p.negative, "text, watermark");
        assert_eq!(p.sizes, vec!["1024x1024", "1216x832"]);
        assert_eq!(p.lora_names(), vec!["brand_v1.safetensors"]);
        let err = hub
            .set_brand_presets(None, None, Some(vec!["1000x1001".into()]))
            .unwrap_err();
        assert!(err.to_string().contains("multiple of 8"), "{err}");
        assert_eq!(hub.brand_presets().unwrap(), p);
    }
}
