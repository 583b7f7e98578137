//! What to probe: a host name (or IP literal) and a port, parsed from what people paste (pure).
//!
//! Accepted forms: `example.com`, `example.com:8443`, `https://example.com/path`,
//! `https://example.com:8443/`, `192.0.2.1`, `[2001:db8::1]:443`, `2001:db8::1`, `bücher.example`
//! (converted to punycode, the form certificates carry). A trailing dot and any case are
//! normalised away so the same host is probed once.

use std::fmt;
use std::net::IpAddr;

use rustls::pki_types::ServerName;

/// Port probed when none is given.
pub const DEFAULT_PORT: u16 = 443;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    /// Lower-case ASCII host name without trailing dot, or an IP literal without brackets.
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("empty target")]
    Empty,
    #[error("{input:?}: scheme {scheme:?} is not TLS (use https:// or a bare host)")]
    UnsupportedScheme { input: String, scheme: String },
    #[error("{input:?}: not a URL: {reason}")]
    BadUrl { input: String, reason: String },
    #[error("{input:?}: bad port {port:?} (1-65535)")]
    BadPort { input: String, port: String },
    #[error("{input:?}: {host:?} is not a valid host name")]
    BadHost { input: String, host: String },
}

impl Target {
    pub fn new(host: &str, port: u16) -> Result<Target, TargetError> {
        let host = normalise_host(host, host)?;
        if port == 0 {
            return Err(TargetError::BadPort {
                input: host,
                port: "0".into(),
            });
        }
        Ok(Target { host, port })
    }

    /// Parses one target; `default_port` applies when the input names none.
    pub fn parse(input: &str, default_port: u16) -> Result<Target, TargetError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(TargetError::Empty);
        }
        if s.contains("://") {
            return parse_url(s);
        }
        let authority = s.split('/').next().unwrap_or(s);
        let (host, port) = split_host_port(authority, input)?;
        let port = match port {
            Some(p) => parse_port(p, input)?,
            None => default_port,
        };
        Ok(Target {
            host: normalise_host(host, input)?,
            port,
        })
    }

    /// The name sent as SNI and checked against the certificate.
    pub fn server_name(&self) -> ServerName<'static> {
        // `normalise_host` already proved the conversion succeeds.
        ServerName::try_from(self.host.clone()).expect("validated at parse time")
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

fn parse_url(s: &str) -> Result<Target, TargetError> {
    let url = url::Url::parse(s).map_err(|e| TargetError::BadUrl {
        input: s.into(),
        reason: e.to_string(),
    })?;
    if url.scheme() != "https" {
        return Err(TargetError::UnsupportedScheme {
            input: s.into(),
            scheme: url.scheme().into(),
        });
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) => d.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => {
            return Err(TargetError::BadUrl {
                input: s.into(),
                reason: "no host".into(),
            });
        }
    };
    Ok(Target {
        host: normalise_host(&host, s)?,
        port: url.port().unwrap_or(DEFAULT_PORT),
    })
}

/// Splits `host[:port]`, `[v6][:port]` or a bare IPv6 literal.
fn split_host_port<'a>(s: &'a str, input: &str) -> Result<(&'a str, Option<&'a str>), TargetError> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| TargetError::BadHost {
            input: input.into(),
            host: s.into(),
        })?;
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(TargetError::BadHost {
                    input: input.into(),
                    host: s.into(),
                }),
            },
        };
    }
    if s.matches(':').count() > 1 {
        return Ok((s, None)); // bare IPv6 literal
    }
    Ok(match s.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (s, None),
    })
}

fn parse_port(p: &str, input: &str) -> Result<u16, TargetError> {
    match p.parse::<u16>() {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(TargetError::BadPort {
            input: input.into(),
            port: p.into(),
        }),
    }
}

fn normalise_host(host: &str, input: &str) -> Result<String, TargetError> {
    let bad = || TargetError::BadHost {
        input: input.into(),
        host: host.into(),
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    let trimmed = host.strip_suffix('.').unwrap_or(host);
    if trimmed.is_empty() {
        return Err(bad());
    }
    let ascii = idna::domain_to_ascii(trimmed).map_err(|_| bad())?;
    if ascii.is_empty() || ServerName::try_from(ascii.as_str()).is_err() {
        return Err(bad());
    }
    Ok(ascii)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(host: &str, port: u16) -> Target {
        Target {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn accepted_forms() {
        let cases = [
            ("example.com", t("example.com", 443)),
            ("  Example.COM.  ", t("example.com", 443)),
            ("example.com:8443", t("example.com", 8443)),
            ("example.com/some/path", t("example.com", 443)),
            ("https://example.com", t("example.com", 443)),
            (
                "https://WWW.example.com:8443/x?y=1",
                t("www.example.com", 8443),
            ),
            ("https://user@example.com/", t("example.com", 443)),
            ("192.0.2.1", t("192.0.2.1", 443)),
            ("192.0.2.1:10443", t("192.0.2.1", 10443)),
            ("[2001:db8::1]:8443", t("2001:db8::1", 8443)),
            ("[2001:DB8::1]", t("2001:db8::1", 443)),
            ("2001:db8::1", t("2001:db8::1", 443)),
            ("https://[2001:db8::1]:4443/", t("2001:db8::1", 4443)),
            ("bücher.example", t("xn--bcher-kva.example", 443)),
        ];
        for (input, want) in cases {
            assert_eq!(Target::parse(input, 443).as_ref(), Ok(&want), "{input}");
        }
        assert_eq!(Target::parse("a.test", 8443), Ok(t("a.test", 8443)));
    }

    #[test]
    fn rejected_forms_carry_the_bad_value() {
        assert_eq!(Target::parse("   ", 443), Err(TargetError::Empty));
        assert_eq!(
            Target::parse("http://example.com", 443),
            Err(TargetError::UnsupportedScheme {
                input: "http://example.com".into(),
                scheme: "http".into()
            })
        );
        assert_eq!(
            Target::parse("example.com:0", 443),
            Err(TargetError::BadPort {
                input: "example.com:0".into(),
                port: "0".into()
            })
        );
        assert_eq!(
            Target::parse("example.com:https", 443),
            Err(TargetError::BadPort {
                input: "example.com:https".into(),
                port: "https".into()
            })
        );
        assert!(matches!(
            Target::parse("exa mple.com", 443),
            Err(TargetError::BadHost { .. })
        ));
        assert!(matches!(
            Target::parse("[2001:db8::1", 443),
            Err(TargetError::BadHost { .. })
        ));
        assert!(matches!(
            Target::parse(".", 443),
            Err(TargetError::BadHost { .. })
        ));
    }

    #[test]
    fn display_round_trips() {
        for input in ["example.com:443", "[2001:db8::1]:8443", "192.0.2.1:10443"] {
            let target = Target::parse(input, 443).unwrap();
            assert_eq!(target.to_string(), input);
            assert_eq!(Target::parse(&target.to_string(), 443), Ok(target));
        }
    }
}
