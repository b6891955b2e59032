//! The asset library: analysing files, importing them as content-addressed
//! versions, and finding near duplicates.

pub mod analyze;
pub mod budget;
pub mod decode;
pub mod dupes;
pub mod import;
pub mod renditions;
pub mod svg;
