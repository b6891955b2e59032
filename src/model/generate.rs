//! Generation as hub data: the brand's presets a lead sets on the hub record
//! (`brand.loras`, `brand.negative`, `brand.sizes`) and the rules for
//! template names and image sizes. Templates themselves live in
//! [`crate::generate::template`].

use super::input::InputError;
use super::record::EntityRecord;
use serde::{Deserialize, Serialize};

/// Hub record fields holding the brand's presets.
pub const BRAND_LORAS_FIELD: &str = "brand.loras";
pub const BRAND_NEGATIVE_FIELD: &str = "brand.negative";
pub const BRAND_SIZES_FIELD: &str = "brand.sizes";

/// Smallest and largest image side, in pixels.
pub const MIN_SIDE: u32 = 64;
pub const MAX_SIDE: u32 = 4096;

/// A LoRA every brand-governed run loads, and how strongly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrandLora {
    /// The file name as the ComfyUI server lists it: `brand_v1.safetensors`.
    pub name: String,
    pub strength: f64,
}

/// What a lead fixes for every generated image.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BrandPresets {
    pub loras: Vec<BrandLora>,
    /// Appended to every run's negative prompt.
    pub negative: String,
    /// Allowed sizes, `WxH`; empty: any size.
    pub sizes: Vec<String>,
}

impl BrandPresets {
    /// The presets on a hub record; missing or unreadable fields are empty.
    pub fn from_record(rec: Option<&EntityRecord>) -> BrandPresets {
        let Some(rec) = rec else {
            return BrandPresets::default();
        };
        BrandPresets {
            loras: rec.get_as(BRAND_LORAS_FIELD).unwrap_or_default(),
            negative: rec.string(BRAND_NEGATIVE_FIELD).unwrap_or_default(),
            sizes: rec.get_as(BRAND_SIZES_FIELD).unwrap_or_default(),
        }
    }

    pub fn lora_names(&self) -> Vec<String> {
        self.loras.iter().map(|l| l.name.clone()).collect()
    }
}

/// `1216x832` as (width, height): each a multiple of 8 from 64 to 4096.
pub fn parse_size(text: &str) -> Result<(u32, u32), InputError> {
    let text = text.trim();
    let bad = |why: &str| {
        InputError::new(format!(
            "size `{text}` {why}: write WIDTHxHEIGHT, e.g. 1216x832, each a multiple of 8 \
             from {MIN_SIDE} to {MAX_SIDE}"
        ))
    };
    let (w, h) = text
        .to_ascii_lowercase()
        .split_once('x')
        .map(|(w, h)| (w.trim().to_owned(), h.trim().to_owned()))
        .ok_or_else(|| bad("is not WxH"))?;
    let side = |s: &str| {
        s.parse::<u32>()
            .map_err(|_| bad("is not two whole numbers"))
    };
    let (w, h) = (side(&w)?, side(&h)?);
    for v in [w, h] {
        if !(MIN_SIDE..=MAX_SIDE).contains(&v) {
            return Err(bad("is out of range"));
        }
        if v % 8 != 0 {
            return Err(bad("is not a multiple of 8"));
        }
    }
    Ok((w, h))
}

/// A size is allowed when the brand lists none or lists this one.
pub fn check_size(presets: &BrandPresets, width: u32, height: u32) -> Result<(), InputError> {
    if presets.sizes.is_empty() {
        return Ok(());
    }
    let allowed = presets
        .sizes
        .iter()
        .any(|s| parse_size(s).ok() == Some((width, height)));
    if allowed {
        Ok(())
    } else {
        Err(InputError::new(format!(
            "{width}x{height} is not one of the brand's sizes: {}",
            presets.sizes.join(", ")
        )))
    }
}

/// `brand_v1.safetensors:0.8` as a LoRA; the strength defaults to 1.0.
pub fn parse_lora(text: &str) -> Result<BrandLora, InputError> {
    let text = text.trim();
    let (name, strength) = match text.rsplit_once(':') {
        Some((name, strength)) => {
            let strength: f64 = strength.trim().parse().map_err(|_| {
                InputError::new(format!(
                    "LoRA `{text}`: the strength after `:` must be a number, e.g. brand_v1.safetensors:0.8"
                ))
            })?;
            (name.trim(), strength)
        }
        None => (text, 1.0),
    };
    if name.is_empty() {
        return Err(InputError::new(format!(
            "LoRA `{text}` has no file name: write NAME:STRENGTH, e.g. brand_v1.safetensors:0.8"
        )));
    }
    if !strength.is_finite() || !(-10.0..=10.0).contains(&strength) {
        return Err(InputError::new(format!(
            "LoRA {name}: strength {strength} is out of range (-10 to 10; usually 0.5 to 1)"
        )));
    }
    Ok(BrandLora {
        name: name.to_owned(),
        strength,
    })
}

/// A template name: a lowercase word (`sdxl`, `hero-banner`, `i2i_v2`).
pub fn check_template_name(name: &str) -> Result<String, InputError> {
    let name = name.trim();
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(name.to_owned())
    } else {
        Err(InputError::new(format!(
            "template name `{name}` must be a lowercase word of up to 32 letters, digits, \
             `-` or `_`, starting with a letter (e.g. sdxl-hero)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_multiples_of_eight_within_range() {
        assert_eq!(parse_size("1216x832"), Ok((1216, 832)));
        assert_eq!(parse_size(" 1024 X 1024 "), Ok((1024, 1024)));
        for bad in ["1216", "12x8", "1000x1001", "8192x1024", "axb", "-8x64"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert!(
            parse_size("1001x1024")
                .unwrap_err()
                .0
                .contains("multiple of 8")
        );
    }

    #[test]
    fn a_size_must_be_among_the_brands_when_it_lists_any() {
        let mut presets = BrandPresets::default();
        assert!(check_size(&presets, 640, 640).is_ok());
        presets.sizes = vec!["1024x1024".into(), "1216x832".into()];
        assert!(check_size(&presets, 1216, 832).is_ok());
        let err = check_size(&presets, 832, 1216).unwrap_err();
        assert_eq!(
            err.0,
            "832x1216 is not one of the brand's sizes: 1024x1024, 1216x832"
        );
    }

    #[test]
    fn loras_read_name_and_strength() {
        assert_eq!(
            parse_lora("brand_v1.safetensors:0.8"),
            Ok(BrandLora {
                name: "brand_v1.safetensors".into(),
                strength: 0.8
            })
        );
        assert_eq!(parse_lora("x.safetensors").unwrap().strength, 1.0);
        assert!(parse_lora("x.safetensors:strong").is_err());
        assert!(parse_lora(":0.5").is_err());
        assert!(parse_lora("x:99").is_err());
    }

    #[test]
    fn template_names_are_lowercase_words() {
        assert_eq!(check_template_name(" sdxl-hero "), Ok("sdxl-hero".into()));
        for bad in ["", "SDXL", "9lives", "a b", "x/y"] {
            assert!(check_template_name(bad).is_err(), "{bad}");
        }
    }
}
