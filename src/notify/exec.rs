//! The `exec` hook: run a program once per event, with the event's fields in environment variables (the names
//! certspotter's `-script` hooks know) and the JSON payload on stdin and in a file named by `JSON_FILENAME`.
//! Exit status 0 is success; anything else, or running past the timeout, is retried like a failed HTTP send.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::digest::{CERT_KINDS, CertEntry, Entry, digest, truncate_chars};
use super::{Sink, SinkError};
use crate::store::Delivery;

/// The environment of the hook for one event payload.
pub fn env_vars(payload: &Value) -> Vec<(String, String)> {
    let s = |k: &str| {
        payload
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let kind = s("kind");
    let d = digest(&[payload], "", 1);
    let mut env = vec![
        // certspotter's name for "a certificate matched"; CTWATCH_EVENT_KIND says which kind.
        (
            "EVENT".to_string(),
            if CERT_KINDS.contains(&kind.as_str()) {
                "discovered_cert".to_string()
            } else {
                kind.clone()
            },
        ),
        ("CTWATCH_EVENT_KIND".to_string(), kind),
        ("SUMMARY".to_string(), d.title.clone()),
    ];
    if let Some(Entry::Cert(c)) = d.entries.first() {
        env.extend(certificate_vars(payload, c));
    } else if let Some(Entry::Message { text, .. }) = d.entries.first() {
        env.push(("MESSAGE".to_string(), text.clone()));
    }
    env
}

/// The variables describing a certificate event.
fn certificate_vars(payload: &Value, c: &CertEntry) -> Vec<(String, String)> {
    let s = |k: &str| {
        payload
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let list = |k: &str| {
        let v: Vec<&str> = payload
            .get(k)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        v.join(",")
    };
    let mut items: Vec<&str> = Vec::new();
    for (_, item, _) in &c.matched {
        if !items.contains(&item.as_str()) {
            items.push(item);
        }
    }
    let unix = |rfc: &str| {
        time::OffsetDateTime::parse(rfc, &time::format_description::well_known::Rfc3339)
            .map(|t| t.unix_timestamp().to_string())
            .unwrap_or_default()
    };
    vec![
        ("WATCH_ITEM".to_string(), items.join(",")),
        (
            "MATCHED_NAMES".to_string(),
            c.matched
                .iter()
                .map(|m| m.0.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("DNS_NAMES".to_string(), list("dns_names")),
        ("IP_ADDRESSES".to_string(), list("ip_addresses")),
        ("TBS_SHA256".to_string(), s("tbs_sha256")),
        ("CERT_SHA256".to_string(), s("cert_sha256")),
        ("PUBKEY_SHA256".to_string(), s("pubkey_sha256")),
        ("SUBJECT_DN".to_string(), s("subject")),
        ("ISSUER_DN".to_string(), s("issuer")),
        ("SERIAL".to_string(), s("serial")),
        ("NOT_BEFORE_RFC3339".to_string(), s("not_before")),
        ("NOT_AFTER_RFC3339".to_string(), s("not_after")),
        ("NOT_BEFORE_UNIXTIME".to_string(), unix(&s("not_before"))),
        ("NOT_AFTER_UNIXTIME".to_string(), unix(&s("not_after"))),
        ("LOG_URI".to_string(), s("log")),
        (
            "ENTRY_INDEX".to_string(),
            payload
                .get("index")
                .and_then(Value::as_u64)
                .map(|i| i.to_string())
                .unwrap_or_default(),
        ),
        (
            "CERT_TYPE".to_string(),
            if s("entry_type") == "precert" {
                "precert".into()
            } else {
                "cert".into()
            },
        ),
        ("TAGS".to_string(), list("tags")),
    ]
}

/// Runs a program per event.
pub struct ExecSink {
    pub(crate) name: String,
    pub(crate) command: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) timeout: Duration,
    pub(crate) give_up_after: Option<Duration>,
}

impl ExecSink {
    async fn run_one(&self, d: &Delivery) -> Result<(), SinkError> {
        let json =
            serde_json::to_vec(&d.payload).map_err(|e| SinkError::permanent(e.to_string()))?;
        let file = std::env::temp_dir().join(format!(
            "ctwatch-{}-{}-{}.json",
            std::process::id(),
            d.event_id,
            rand::random::<u32>()
        ));
        tokio::fs::write(&file, &json)
            .await
            .map_err(|e| SinkError::transient(format!("writing {}: {e}", file.display())))?;
        let result = self.spawn_and_wait(d, &json, &file).await;
        let _ = tokio::fs::remove_file(&file).await;
        result
    }

    async fn spawn_and_wait(
        &self,
        d: &Delivery,
        json: &[u8],
        file: &std::path::Path,
    ) -> Result<(), SinkError> {
        let program = self.command.display();
        let mut child = tokio::process::Command::new(&self.command)
            .args(&self.args)
            .envs(env_vars(&d.payload))
            .env("JSON_FILENAME", file)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| SinkError::transient(format!("cannot run {program}: {e}")))?;
        let stdin = child.stdin.take();
        let mut stderr = child.stderr.take();
        let work = async {
            let write = async {
                // A hook that ignores stdin may exit before reading it: not an error. Dropping stdin closes it.
                if let Some(mut s) = stdin {
                    let _ = s.write_all(json).await;
                    let _ = s.write_all(b"\n").await;
                }
            };
            let read = async {
                let mut err = Vec::new();
                if let Some(s) = stderr.as_mut() {
                    let _ = s.take(64 * 1024).read_to_end(&mut err).await;
                }
                err
            };
            let ((), err) = tokio::join!(write, read);
            (child.wait().await, err)
        };
        match tokio::time::timeout(self.timeout, work).await {
            Err(_) => Err(SinkError::transient(format!(
                "{program} ran longer than {} s and was killed",
                self.timeout.as_secs()
            ))),
            Ok((Err(e), _)) => Err(SinkError::transient(format!("waiting for {program}: {e}"))),
            Ok((Ok(status), _)) if status.success() => Ok(()),
            Ok((Ok(status), err)) => {
                let err = String::from_utf8_lossy(&err);
                let tail = truncate_chars(err.trim(), 300);
                Err(SinkError::transient(format!(
                    "{program} exited with {status}{}",
                    if tail.is_empty() {
                        String::new()
                    } else {
                        format!(": {tail}")
                    }
                )))
            }
        }
    }
}

impl Sink for ExecSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn give_up_after(&self) -> Option<Duration> {
        self.give_up_after
    }

    fn send<'a>(
        &'a self,
        events: &'a [Delivery],
    ) -> Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + 'a>> {
        Box::pin(async move {
            for d in events {
                self.run_one(d).await?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::sample::fixtures;

    #[test]
    fn the_environment_has_certspotters_names() {
        let p = fixtures::cloudflare();
        let env: std::collections::HashMap<String, String> = env_vars(&p).into_iter().collect();
        assert_eq!(env["EVENT"], "discovered_cert");
        assert_eq!(env["CTWATCH_EVENT_KIND"], "new_certificate");
        assert_eq!(env["SUMMARY"], "New certificate: cloudflare-dns.com");
        assert_eq!(env["WATCH_ITEM"], "cloudflare-dns.com");
        assert_eq!(
            env["DNS_NAMES"],
            "cloudflare-dns.com,*.cloudflare-dns.com,one.one.one.one"
        );
        assert_eq!(
            env["IP_ADDRESSES"],
            "1.1.1.1,1.0.0.1,162.159.36.1,162.159.46.1,2606:4700:4700::1111,2606:4700:4700::1001,2606:4700:4700::64,2606:4700:4700::6400"
        );
        assert_eq!(env["TBS_SHA256"], p["tbs_sha256"].as_str().unwrap());
        assert_eq!(env["NOT_BEFORE_RFC3339"], "2021-10-25T00:00:00Z");
        assert_eq!(env["NOT_BEFORE_UNIXTIME"], "1635120000");
        assert_eq!(env["CERT_TYPE"], "cert");
        assert_eq!(env["ENTRY_INDEX"], "1234");
        assert_eq!(env["LOG_URI"], "https://ct.example.net/sample/");
    }

    #[test]
    fn other_events_carry_their_message() {
        let env: std::collections::HashMap<String, String> =
            env_vars(&crate::notify::test_event_payload(0))
                .into_iter()
                .collect();
        assert_eq!(env["EVENT"], "test");
        assert_eq!(env["SUMMARY"], "ctwatch test notification");
        assert_eq!(
            env["MESSAGE"],
            "If you can read this, ctwatch can reach this channel."
        );
        assert!(!env.contains_key("TBS_SHA256"));
    }
}
