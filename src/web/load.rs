//! Reading the web config file: the exporter-toolkit YAML as written
//! (`RawWebConfig`, unknown keys refused), the certificate, key and CA files
//! it names, each read by the one hardened reader, and the checks that refuse
//! what credwatch cannot honour. Blocking: called at start-up and, on change,
//! on a blocking thread ([`super::WebConfig::fresh`]).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use serde::Deserialize;

use super::{Loaded, Mode};

/// The headers exporter-toolkit allows to be set.
const ALLOWED_HEADERS: &[&str] = &[
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "X-XSS-Protection",
    "Content-Security-Policy",
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<RawTls>,
    #[serde(default)]
    http_server_config: RawHttp,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<String>,
    key_file: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    min_version: Option<String>,
    max_version: Option<String>,
    // Accepted keys credwatch cannot honour: refused with a clear message.
    cipher_suites: Option<serde_yaml::Value>,
    curve_preferences: Option<serde_yaml::Value>,
    prefer_server_cipher_suites: Option<serde_yaml::Value>,
    client_allowed_sans: Option<serde_yaml::Value>,
    cert: Option<serde_yaml::Value>,
    key: Option<serde_yaml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// HTTP/2 preference; credwatch serves HTTP/1.1, so it has no effect.
    http2: Option<bool>,
}

pub(super) fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn relative(base: &Path, file: &str) -> PathBuf {
    crate::section::resolve_file(base, file)
}

/// Certificate, key and CA files above this are refused.
pub const PEM_FILE_LIMIT: usize = 1024 * 1024;

/// Reads and validates the file and everything it names. Every file is read
/// by the one hardened reader ([`crate::secret::read_regular_file`]: a
/// regular file after symlinks, size-capped, opened non-blocking), since
/// this runs on the request path: a FIFO or a device put in place of one
/// is refused at once, never waited on.
pub fn load(path: &Path) -> Result<Loaded, String> {
    let at = |m: String| format!("{}: {m}", path.display());
    let text =
        crate::secret::read_regular_file(path, crate::secret::CONFIG_FILE_LIMIT, "web config file")
            .map(|(text, _)| text)
            .map_err(|e| at(format!("cannot read: {e}")))?;
    let raw: RawWebConfig = if text.trim().is_empty() {
        RawWebConfig::default()
    } else {
        serde_path_to_error::deserialize(serde_yaml::Deserializer::from_str(&text)).map_err(
            |e| {
                let path = e.path().to_string();
                at(format!("{path}: {}", e.into_inner()))
            },
        )?
    };
    let mut files = vec![(path.to_path_buf(), modified(path))];

    let raw_client_auth = raw
        .tls_server_config
        .as_ref()
        .and_then(|t| t.client_auth_type.clone());
    let tls = match raw.tls_server_config {
        None => None,
        Some(t) => {
            for (key, given) in [
                ("cipher_suites", t.cipher_suites.is_some()),
                ("curve_preferences", t.curve_preferences.is_some()),
                (
                    "prefer_server_cipher_suites",
                    t.prefer_server_cipher_suites.is_some(),
                ),
                ("client_allowed_sans", t.client_allowed_sans.is_some()),
                ("cert", t.cert.is_some()),
                ("key", t.key.is_some()),
            ] {
                if given {
                    return Err(at(format!(
                        "tls_server_config.{key}: not supported by credwatch (it uses rustls' safe defaults; give certificates as cert_file/key_file)"
                    )));
                }
            }
            let cert_file = relative(
                path,
                t.cert_file
                    .as_deref()
                    .ok_or_else(|| at("tls_server_config.cert_file: missing".into()))?,
            );
            let key_file = relative(
                path,
                t.key_file
                    .as_deref()
                    .ok_or_else(|| at("tls_server_config.key_file: missing".into()))?,
            );
            use rustls::pki_types::pem::PemObject;
            use rustls::pki_types::{CertificateDer, PrivateKeyDer};
            let pem = |file: &Path, what: &str| {
                crate::secret::read_regular_file(file, PEM_FILE_LIMIT, what).map(|(text, _)| text)
            };
            let cert_pem = pem(&cert_file, "certificate file").map_err(|e| {
                at(format!(
                    "tls_server_config.cert_file: cannot read `{}`: {e}",
                    cert_file.display()
                ))
            })?;
            let certs: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| {
                        at(format!(
                            "tls_server_config.cert_file: cannot read certificates from `{}`: {e}",
                            cert_file.display()
                        ))
                    })?;
            if certs.is_empty() {
                return Err(at(format!(
                    "tls_server_config.cert_file: no certificate in `{}`",
                    cert_file.display()
                )));
            }
            let key_pem = crate::secret::read_secret_file(&key_file, PEM_FILE_LIMIT)
                .map(|(text, _)| text)
                .map_err(|e| {
                    at(format!(
                        "tls_server_config.key_file: cannot read `{}`: {e}",
                        key_file.display()
                    ))
                })?;
            let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| {
                at(format!(
                    "tls_server_config.key_file: cannot read a private key from `{}`: {e}",
                    key_file.display()
                ))
            })?;
            files.push((cert_file.clone(), modified(&cert_file)));
            files.push((key_file.clone(), modified(&key_file)));

            let version = |v: &Option<String>, key: &str| -> Result<Option<u8>, String> {
                match v.as_deref() {
                    None => Ok(None),
                    Some("TLS12") => Ok(Some(12)),
                    Some("TLS13") => Ok(Some(13)),
                    Some(other) => Err(at(format!(
                        "tls_server_config.{key}: `{other}` is not supported; use TLS12 or TLS13"
                    ))),
                }
            };
            let min = version(&t.min_version, "min_version")?.unwrap_or(12);
            let max = version(&t.max_version, "max_version")?.unwrap_or(13);
            if min > max {
                return Err(at(
                    "tls_server_config: min_version is above max_version".into()
                ));
            }
            let versions: Vec<&'static rustls::SupportedProtocolVersion> =
                [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
                    .into_iter()
                    .filter(|(v, _)| (min..=max).contains(v))
                    .map(|(_, p)| p)
                    .collect();
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&versions)
                .map_err(|e| at(format!("tls_server_config: {e}")))?;
            let auth_type = t.client_auth_type.as_deref().unwrap_or("NoClientCert");
            let client_roots = || -> Result<Arc<rustls::RootCertStore>, String> {
                let ca = relative(path, t.client_ca_file.as_deref().ok_or_else(|| at(format!("tls_server_config.client_ca_file: needed with client_auth_type {auth_type}")))?);
                let mut roots = rustls::RootCertStore::empty();
                let ca_pem = crate::secret::read_regular_file(&ca, PEM_FILE_LIMIT, "CA file")
                    .map(|(text, _)| text)
                    .map_err(|e| {
                        at(format!(
                            "tls_server_config.client_ca_file: cannot read `{}`: {e}",
                            ca.display()
                        ))
                    })?;
                for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
                    let c = c.map_err(|e| at(format!("tls_server_config.client_ca_file: {e}")))?;
                    roots
                        .add(c)
                        .map_err(|e| at(format!("tls_server_config.client_ca_file: {e}")))?;
                }
                Ok(Arc::new(roots))
            };
            let builder = match auth_type {
                "NoClientCert" | "" => builder.with_no_client_auth(),
                "RequireAndVerifyClientCert" | "VerifyClientCertIfGiven" => {
                    let roots = client_roots()?;
                    if let Some(ca) = &t.client_ca_file {
                        let ca = relative(path, ca);
                        files.push((ca.clone(), modified(&ca)));
                    }
                    let mut verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                        roots, provider,
                    );
                    if auth_type == "VerifyClientCertIfGiven" {
                        verifier = verifier.allow_unauthenticated();
                    }
                    let verifier = verifier
                        .build()
                        .map_err(|e| at(format!("tls_server_config.client_ca_file: {e}")))?;
                    builder.with_client_cert_verifier(verifier)
                }
                "RequestClientCert" | "RequireAnyClientCert" => {
                    return Err(at(format!(
                        "tls_server_config.client_auth_type: `{auth_type}` accepts unverified client certificates; credwatch only supports NoClientCert, VerifyClientCertIfGiven and RequireAndVerifyClientCert"
                    )));
                }
                other => {
                    return Err(at(format!(
                        "tls_server_config.client_auth_type: unknown value `{other}`"
                    )));
                }
            };
            let mut config = builder.with_single_cert(certs, key).map_err(|e| {
                at(format!(
                    "tls_server_config: the key does not fit the certificate: {e}"
                ))
            })?;
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(Arc::new(config))
        }
    };

    let mut headers = Vec::new();
    for (name, value) in &raw.http_server_config.headers {
        let Some(canonical) = ALLOWED_HEADERS
            .iter()
            .find(|h| h.eq_ignore_ascii_case(name))
        else {
            return Err(at(format!(
                "http_server_config.headers.{name}: not allowed; allowed: {}",
                ALLOWED_HEADERS.join(", ")
            )));
        };
        let value = http::HeaderValue::from_str(value)
            .map_err(|_| at(format!("http_server_config.headers.{name}: invalid value")))?;
        headers.push((
            http::HeaderName::from_bytes(canonical.as_bytes()).map_err(|e| at(e.to_string()))?,
            value,
        ));
    }
    let _ = raw.http_server_config.http2;

    let client_auth = match &tls {
        None => "NoClientCert",
        Some(_) => match raw_client_auth.as_deref() {
            Some("RequireAndVerifyClientCert") => "RequireAndVerifyClientCert",
            Some("VerifyClientCertIfGiven") => "VerifyClientCertIfGiven",
            _ => "NoClientCert",
        },
    };
    let mut users = HashMap::new();
    for (user, hash) in raw.basic_auth_users {
        if user.contains(':') || user.is_empty() {
            return Err(at(format!(
                "basic_auth_users.{user}: user names cannot be empty or contain `:`"
            )));
        }
        if !(hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$"))
            || hash.len() != 60
        {
            return Err(at(format!(
                "basic_auth_users.{user}: not a bcrypt hash (generate one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`)"
            )));
        }
        users.insert(user, hash);
    }
    let dummy = users.values().max_by_key(|h| bcrypt_cost(h)).cloned();
    let mode = Mode {
        tls: tls.is_some(),
        client_auth,
        basic_auth: !users.is_empty(),
    };
    Ok(Loaded {
        tls,
        users,
        headers,
        mode,
        dummy,
        files,
    })
}

/// The cost of a `$2b$NN$…` hash (0 if unreadable).
pub(super) fn bcrypt_cost(hash: &str) -> u32 {
    hash.get(4..6).and_then(|c| c.parse().ok()).unwrap_or(0)
}
