//! API-key authentication: an interceptor resolves the `x-api-key` metadata to a tenant and a role and
//! puts the [`Principal`] in the request's extensions; handlers take the tenant only from there, so a
//! key of tenant A never reaches tenant B's gallery. Keys are compared by sha256, in constant time.

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tonic::{Request, Status};

use super::config::{ApiKeyEntry, Role};
use super::errors::{status, Reason};

/// Metadata key carrying the API key.
pub const API_KEY_HEADER: &str = "x-api-key";

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Tenant the key is bound to.
    pub tenant: String,
    /// What it may do.
    pub role: Role,
    /// First 8 hex digits of the key's hash: names the key in the audit log without revealing it.
    pub key_id: String,
}

impl Principal {
    /// Refuse writes for read-only keys.
    pub fn require_operator(&self) -> Result<(), Status> {
        if self.role == Role::Operator {
            Ok(())
        } else {
            Err(status(
                tonic::Code::PermissionDenied,
                Reason::PermissionDenied,
                "this API key is read-only",
            ))
        }
    }
}

/// The hex sha256 of an API key, as stored in the configuration.
pub fn hash_key(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The configured keys.
#[derive(Debug, Clone, Default)]
pub struct ApiKeys {
    entries: Arc<Vec<(Vec<u8>, Principal)>>,
}

impl ApiKeys {
    /// From configuration entries.
    pub fn new(entries: &[ApiKeyEntry]) -> Self {
        let mut seen = HashMap::new();
        let mut out = Vec::new();
        for e in entries {
            let hash = e.sha256.to_ascii_lowercase();
            if seen.insert(hash.clone(), ()).is_some() {
                tracing::warn!(key_id = &hash[..8], "duplicate API key entry ignored");
                continue;
            }
            out.push((
                hash.clone().into_bytes(),
                Principal {
                    tenant: e.tenant.clone(),
                    role: e.role,
                    key_id: hash[..8].to_string(),
                },
            ));
        }
        ApiKeys {
            entries: Arc::new(out),
        }
    }

    /// The principal of a presented key.
    pub fn authenticate(&self, key: &str) -> Option<Principal> {
        let hash = hash_key(key);
        // Check every entry (no early exit) so timing does not tell which prefix matched.
        let mut found = None;
        for (h, p) in self.entries.iter() {
            if constant_time_eq(h, hash.as_bytes()) {
                found = Some(p.clone());
            }
        }
        found
    }

    /// The tonic interceptor.
    pub fn interceptor(&self) -> impl Fn(Request<()>) -> Result<Request<()>, Status> + Clone {
        let keys = self.clone();
        move |mut req: Request<()>| {
            let key = req
                .metadata()
                .get(API_KEY_HEADER)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| {
                    status(
                        tonic::Code::Unauthenticated,
                        Reason::ApiKeyInvalid,
                        "missing x-api-key metadata",
                    )
                })?;
            let principal = keys.authenticate(key).ok_or_else(|| {
                status(
                    tonic::Code::Unauthenticated,
                    Reason::ApiKeyInvalid,
                    "unknown API key",
                )
            })?;
            req.extensions_mut().insert(principal);
            Ok(req)
        }
    }
}

/// The authenticated caller of a request (set by the interceptor).
pub fn principal<T>(req: &Request<T>) -> Result<Principal, Status> {
    req.extensions().get::<Principal>().cloned().ok_or_else(|| {
        status(
            tonic::Code::Unauthenticated,
            Reason::ApiKeyInvalid,
            "request was not authenticated",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_resolve_to_their_own_tenant_only() {
        let keys = ApiKeys::new(&[
            ApiKeyEntry {
                tenant: "bank".into(),
                sha256: hash_key("k-bank"),
                role: Role::Operator,
            },
            ApiKeyEntry {
                tenant: "insurance".into(),
                sha256: hash_key("k-ins"),
                role: Role::Reader,
            },
        ]);
        assert_eq!(keys.authenticate("k-bank").unwrap().tenant, "bank");
        let ins = keys.authenticate("k-ins").unwrap();
        assert_eq!(ins.tenant, "insurance");
        assert!(ins.require_operator().is_err());
        assert!(keys.authenticate("k-bank ").is_none());
        assert!(keys.authenticate("").is_none());
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
