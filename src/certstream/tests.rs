use super::*;

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/certs/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn source(kind: &str) -> Source {
    Source {
        name: "Test 'Log'".into(),
        url: "https://ct.example/log/".into(),
        kind: kind.into(),
    }
}

fn parse(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

#[test]
fn full_lite_and_domains_of_a_real_certificate() {
    let der = fixture("real/letsencrypt_org_E8_leaf.der");
    let m = MatchRef {
        item: "letsencrypt.org".into(),
        name: "letsencrypt.org".into(),
        kind: "domain".into(),
        event_kind: "new_certificate".into(),
        tags: vec!["le".into()],
    };
    let src = source("rfc6962");
    let r = render(&UpdateInput {
        source: &src,
        index: 42,
        precert: false,
        cert_der: &der,
        chain: &[],
        tbs_sha256: &[7; 32],
        log_id: &[3; 32],
        seen: 1_700_000_000.5,
        matches: std::slice::from_ref(&m),
    })
    .unwrap();
    let full = parse(&r.full);
    assert_eq!(full["message_type"], "certificate_update");
    let d = &full["data"];
    assert_eq!(d["update_type"], "X509LogEntry");
    assert_eq!(d["cert_index"], 42);
    assert_eq!(
        d["cert_link"],
        "https://ct.example/log/ct/v1/get-entries?start=42&end=42"
    );
    assert_eq!(d["seen"], 1_700_000_000.5);
    assert_eq!(
        d["source"],
        json!({"name": "Test 'Log'", "url": "https://ct.example/log/", "type": "rfc6962"})
    );
    assert_eq!(d["verified"], true);
    assert_eq!(d["tbs_sha256"], hex::encode([7; 32]));
    // ctwatch's identity fields: the DER's SHA-256 (certstream's `sha256` without colons) and the log's ID.
    assert_eq!(
        d["cert_sha256"].as_str().unwrap().to_uppercase(),
        d["leaf_cert"]["sha256"].as_str().unwrap().replace(':', "")
    );
    assert_eq!(d["log_id"], "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=");
    assert_eq!(d["matches"][0]["tags"][0], "le");
    assert!(d.get("chain").is_none(), "an empty chain is omitted");
    let leaf = &d["leaf_cert"];
    let domains = leaf["all_domains"].as_array().unwrap();
    assert_eq!(domains.len(), 10, "{domains:?}");
    assert_eq!(domains[0], "cp.letsencrypt.org");
    assert_eq!(leaf["subject"]["CN"], "letsencrypt.org");
    assert_eq!(leaf["subject"]["aggregated"], "/CN=letsencrypt.org");
    assert_eq!(leaf["subject"]["O"], Value::Null);
    assert_eq!(leaf["issuer"]["aggregated"], "/C=US/CN=E8/O=Let's Encrypt");
    assert_eq!(
        leaf["serial_number"],
        "062210902E81AFE5D4BE68ACEE9E38605285"
    );
    assert_eq!(
        leaf["fingerprint"],
        "3D:79:7F:1D:13:77:93:66:94:37:7E:E8:3B:29:38:9C:80:F9:E5:8F"
    );
    assert_eq!(leaf["sha1"], leaf["fingerprint"]);
    assert_eq!(leaf["signature_algorithm"], "ecdsa, sha384");
    assert_eq!(leaf["is_ca"], false);
    assert_eq!(leaf["extensions"]["keyUsage"], "Digital Signature");
    assert_eq!(leaf["extensions"]["basicConstraints"], "CA:FALSE");
    assert!(
        leaf["extensions"]["subjectAltName"]
            .as_str()
            .unwrap()
            .starts_with("DNS:cp.letsencrypt.org, ")
    );
    let der_b64 = leaf["as_der"].as_str().unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(der_b64)
            .unwrap(),
        der
    );
    assert_eq!(leaf["not_before"], 1772989470);

    let lite = parse(&r.lite);
    assert!(lite["data"]["leaf_cert"].get("as_der").is_none());
    assert_eq!(
        lite["data"]["leaf_cert"]["all_domains"],
        leaf["all_domains"]
    );
    assert_eq!(lite["data"]["verified"], true);

    let dom = parse(&r.domains);
    assert_eq!(dom["message_type"], "dns_entries");
    assert_eq!(dom["data"], leaf["all_domains"]);
}

#[test]
fn precert_with_chain_on_a_tiled_log() {
    let der = fixture("le-staging-precerts-from-navigli/navigli_idx2_empty-subject.der");
    let chain = vec![
        fixture("real/cloudflare-dns_inter.der"),
        b"not a certificate".to_vec(),
    ];
    let src = source("tiled");
    let r = render(&UpdateInput {
        source: &src,
        index: 1_234_567,
        precert: true,
        cert_der: &der,
        chain: &chain,
        tbs_sha256: &[1; 32],
        log_id: &[3; 32],
        seen: 1.0,
        matches: &[],
    })
    .unwrap();
    let d = &parse(&r.full)["data"];
    assert_eq!(d["update_type"], "PrecertLogEntry");
    assert_eq!(d["cert_link"], "https://ct.example/log/tile/data/x004/822");
    assert_eq!(d["leaf_cert"]["extensions"]["ctlPoisonByte"], true);
    assert_eq!(d["leaf_cert"]["subject"]["aggregated"], "");
    assert_eq!(
        d["leaf_cert"]["all_domains"],
        json!(["chat.basketblogin.secure.blog.cr.suoadappwi-proxy.ezbricks-dev.codetools.in"])
    );
    // The unparsable chain member is skipped; chain members carry no DER.
    assert_eq!(d["chain"].as_array().unwrap().len(), 1);
    assert_eq!(d["chain"][0]["is_ca"], true);
    assert!(d["chain"][0].get("as_der").is_none());
    assert!(parse(&r.lite)["data"].get("chain").is_none());
}

#[test]
fn garbage_is_an_error_and_helpers_match_certstream() {
    let src = source("rfc6962");
    let err = render(&UpdateInput {
        source: &src,
        index: 0,
        precert: false,
        cert_der: b"\x30\x03\x02\x01\x01",
        chain: &[],
        tbs_sha256: &[0; 32],
        log_id: &[3; 32],
        seen: 0.0,
        matches: &[],
    });
    assert!(err.is_err());
    assert_eq!(tile_path(0), "000");
    assert_eq!(tile_path(1000), "x001/000");
    assert_eq!(serial_hex(&[0x00, 0x0a, 0xbc]), "0ABC");
    assert_eq!(serial_hex(&[0]), "00");
    assert_eq!(key_id(&[0xab, 0x01]), "keyid:ab:01");
    assert_eq!(parse(&heartbeat(5.0))["message_type"], "heartbeat");
}
