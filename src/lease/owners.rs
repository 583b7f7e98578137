//! `ctwatch logs` on a shared database: which instance owns each log, and which instances are live.

use super::LeaseError;
use crate::store::Store;

/// Which instance tails each log, on a database shared by several instances (PostgreSQL).
pub struct LogOwners {
    /// Base64 log ID -> owner instance, for leases held now.
    held: std::collections::HashMap<String, String>,
    instances: Vec<super::pg::InstanceRow>,
}

impl LogOwners {
    /// None on a SQLite database (one instance).
    pub fn read(store: &Store) -> Result<Option<LogOwners>, LeaseError> {
        let Some(url) = store
            .path()
            .to_str()
            .filter(|p| crate::store::postgres_url(std::path::Path::new(p)).is_some())
        else {
            return Ok(None);
        };
        let (leases, instances) = super::pg::ownership_blocking(url)?;
        let b64 =
            |id: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, id);
        Ok(Some(LogOwners {
            held: leases
                .into_iter()
                .filter(|l| l.held())
                .map(|l| (b64(&l.log_id), l.owner))
                .collect(),
            instances,
        }))
    }

    pub fn owner_of(&self, log_id_b64: &str) -> Option<&str> {
        self.held.get(log_id_b64).map(String::as_str)
    }

    /// "instances: a (live, 3 logs, api 127.0.0.1:8080), b (gone 2 h ago)".
    pub fn instances_line(&self) -> String {
        if self.instances.is_empty() {
            return "instances: none has joined this database yet".to_string();
        }
        let items: Vec<String> = self
            .instances
            .iter()
            .map(|i| {
                let logs = self.held.values().filter(|o| **o == i.instance_id).count();
                let api = i
                    .api_addr
                    .as_deref()
                    .map(|a| format!(", api {a}"))
                    .unwrap_or_default();
                if i.live {
                    format!("{} (live, {logs} logs{api})", i.instance_id)
                } else {
                    let ago = crate::health::rules::human_secs(i.heartbeat_age_secs as i64);
                    format!("{} (gone, last heartbeat {ago} ago)", i.instance_id)
                }
            })
            .collect();
        format!("instances: {}", items.join(", "))
    }
}
