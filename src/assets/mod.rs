//! The asset library: analysing files, importing them as content-addressed
//! versions, and finding near duplicates.

pub mod analyze;
pub mod dupes;
pub mod import;
pub mod renditions;
