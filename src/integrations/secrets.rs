//! Connector secrets (API tokens, webhook signing keys) on the machine that
//! pushes: `secrets.toml` in the data folder, readable by its owner only,
//! or `SPOKE_SECRET_<NAME>` in the environment. They never become hub data.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub fn secrets_path(home: &Path) -> PathBuf {
    home.join("secrets.toml")
}

/// The environment variable that overrides a connector's stored secret.
pub fn env_var(connector: &str) -> String {
    format!(
        "SPOKE_SECRET_{}",
        connector.to_ascii_uppercase().replace('-', "_")
    )
}

fn load(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    toml::from_str(&text).with_context(|| {
        format!(
            "{} is not a table of connector = \"secret\" lines",
            path.display()
        )
    })
}

/// The secret for `connector`: the environment first, then the file.
pub fn secret(home: &Path, connector: &str) -> Result<Option<String>> {
    if let Ok(value) = std::env::var(env_var(connector))
        && !value.trim().is_empty()
    {
        return Ok(Some(value.trim().to_owned()));
    }
    Ok(load(&secrets_path(home))?
        .remove(connector)
        .filter(|s| !s.trim().is_empty()))
}

/// Stores (or with `None` removes) a connector's secret, owner-only.
pub fn store(home: &Path, connector: &str, value: Option<&str>) -> Result<()> {
    let path = secrets_path(home);
    let mut all = load(&path)?;
    match value.map(str::trim) {
        Some("") => bail!("the secret for {connector} is empty"),
        Some(v) => {
            all.insert(connector.to_owned(), v.to_owned());
        }
        None => {
            all.remove(connector);
        }
    }
    let text = toml::to_string(&all).context("encoding the secrets")?;
    let tmp = path.with_extension("toml.tmp");
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        file.write_all(text.as_bytes())
            .and_then(|_| file.sync_all())
            .with_context(|| format!("writing {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, &path).with_context(|| format!("saving {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_round_trip_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path(), "jira", Some(" tok ")).unwrap();
        store(dir.path(), "hooks", Some("whsec_abc")).unwrap();
        assert_eq!(secret(dir.path(), "jira").unwrap().as_deref(), Some("tok"));
        store(dir.path(), "jira", None).unwrap();
        assert_eq!(secret(dir.path(), "jira").unwrap(), None);
        assert_eq!(
            secret(dir.path(), "hooks").unwrap().as_deref(),
            Some("whsec_abc")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(secrets_path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "secrets are the owner's alone");
        }
        assert!(store(dir.path(), "x", Some("  ")).is_err());
    }
}
