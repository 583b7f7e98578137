//! The status hosting panels show (WHMCS-style SSL monitoring: Valid / Invalid / Inactive / Unknown), mapped
//! from the probe's status (pure). Documented in the README next to OK / WARNING / CRITICAL.

use serde::Serialize;

use super::classify::Status;

/// What a hosting panel shows for a domain's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum PanelStatus {
    /// A trusted certificate for the name, inside its validity period (it may be expiring soon: the level
    /// says how soon).
    Valid,
    /// A certificate is served but browsers reject it: expired, not yet valid, untrusted, wrong name.
    Invalid,
    /// No TLS site answers: no such name, refused or timed out, handshake failure.
    Inactive,
    /// Not checked: not probed yet, or the address was refused before connecting (bulk-check policy).
    Unknown,
}

impl PanelStatus {
    /// The panel status of a probe result; `None` (never probed) is `Unknown`.
    pub fn of(status: Option<Status>) -> PanelStatus {
        match status {
            // Not checked: never probed, or refused before connecting (an internal address, bulk-check).
            None | Some(Status::BlockedAddress) => PanelStatus::Unknown,
            Some(Status::Ok | Status::Warning | Status::Critical) => PanelStatus::Valid,
            Some(
                Status::Expired
                | Status::NotYetValid
                | Status::Untrusted
                | Status::HostnameMismatch,
            ) => PanelStatus::Invalid,
            Some(Status::DnsError | Status::Unreachable | Status::HandshakeFailed) => {
                PanelStatus::Inactive
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PanelStatus::Valid => "Valid",
            PanelStatus::Invalid => "Invalid",
            PanelStatus::Inactive => "Inactive",
            PanelStatus::Unknown => "Unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_maps() {
        use Status::*;
        let cases = [
            (Some(Ok), "Valid"),
            (Some(Warning), "Valid"),
            (Some(Critical), "Valid"),
            (Some(Expired), "Invalid"),
            (Some(NotYetValid), "Invalid"),
            (Some(Untrusted), "Invalid"),
            (Some(HostnameMismatch), "Invalid"),
            (Some(DnsError), "Inactive"),
            (Some(Unreachable), "Inactive"),
            (Some(HandshakeFailed), "Inactive"),
            (Some(BlockedAddress), "Unknown"),
            (None, "Unknown"),
        ];
        for (status, want) in cases {
            assert_eq!(PanelStatus::of(status).as_str(), want, "{status:?}");
            assert_eq!(serde_json::to_value(PanelStatus::of(status)).unwrap(), want);
        }
    }
}
