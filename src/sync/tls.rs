//! TLS for `wss://` relays: rustls with the ring provider, the Mozilla root
//! store, and optionally one more CA (a team's own) from a PEM file.

use anyhow::{Context, Result};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};
use std::path::Path;
use std::sync::Arc;

pub fn client_config(extra_ca: Option<&Path>) -> Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = extra_ca {
        let certs = CertificateDer::pem_file_iter(path)
            .with_context(|| format!("cannot read CA certificates from {}", path.display()))?;
        let mut added = 0;
        for cert in certs {
            let cert =
                cert.with_context(|| format!("bad certificate PEM in {}", path.display()))?;
            roots
                .add(cert)
                .with_context(|| format!("unusable CA certificate in {}", path.display()))?;
            added += 1;
        }
        anyhow::ensure!(added > 0, "no certificate found in {}", path.display());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("setting up TLS")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
