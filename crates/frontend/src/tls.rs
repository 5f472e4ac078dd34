//! TLS for the API listener: a certificate and key from PEM files (`--tls-cert/--tls-key`), or a
//! self-signed certificate Levee generates for local use (`--tls-self-signed`), kept beside the
//! data so clients can trust one file across restarts. ALPN offers `h2` then `http/1.1`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no {what} found in PEM file")]
    Pem { path: PathBuf, what: &'static str },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("generating a certificate: {0}")]
    Generate(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A server configuration from a PEM certificate chain and a PEM private key.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let cert_pem = std::fs::read(cert).map_err(io(cert))?;
    let key_pem = std::fs::read(key).map_err(io(key))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::Pem {
            path: cert.to_owned(),
            what: "certificate",
        });
    }
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::Pem {
        path: key.to_owned(),
        what: "private key",
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The files of a generated certificate under `dir`.
pub fn self_signed_paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("self-signed.crt"), dir.join("self-signed.key"))
}

/// Loads the self-signed certificate under `dir`, generating it first if absent. It names
/// `localhost`, `127.0.0.1`, `::1` and any `extra_names` (the listen host). Returns the
/// configuration and the certificate's path, for clients to trust.
pub fn self_signed(
    dir: &Path,
    extra_names: &[String],
) -> Result<(Arc<rustls::ServerConfig>, PathBuf), TlsError> {
    let (cert, key) = self_signed_paths(dir);
    if !cert.exists() || !key.exists() {
        let mut names = vec!["localhost".to_owned(), "127.0.0.1".into(), "::1".into()];
        names.extend(extra_names.iter().cloned());
        names.dedup();
        let generated = rcgen::generate_simple_self_signed(names)
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        write_private(&key, generated.key_pair.serialize_pem().as_bytes())?;
        std::fs::write(&cert, generated.cert.pem()).map_err(io(&cert))?;
    }
    Ok((server_config(&cert, &key)?, cert))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_is_generated_once_and_offers_h2() {
        let dir = std::env::temp_dir().join(format!("levee-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (cfg, cert) = self_signed(&dir, &[]).unwrap();
        assert_eq!(cfg.alpn_protocols[0], b"h2");
        let first = std::fs::read(&cert).unwrap();
        let (_, cert2) = self_signed(&dir, &[]).unwrap();
        assert_eq!(
            std::fs::read(cert2).unwrap(),
            first,
            "reused, not regenerated"
        );
        let bad = dir.join("bad.pem");
        std::fs::write(&bad, "not pem").unwrap();
        assert!(matches!(
            server_config(&bad, &bad),
            Err(TlsError::Pem { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
