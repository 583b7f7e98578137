use super::*;

fn one(line: &str) -> ParsedItem {
    let parsed = parse_file(line);
    assert!(parsed.errors.is_empty(), "{line}: {:?}", parsed.errors);
    assert_eq!(parsed.items.len(), 1, "{line}");
    parsed.items.into_iter().next().unwrap()
}

fn error(line: &str) -> LineError {
    let parsed = parse_file(line);
    assert_eq!(parsed.errors.len(), 1, "{line}: {:?}", parsed);
    parsed.errors.into_iter().next().unwrap().1
}

#[test]
fn each_item_kind() {
    assert_eq!(
        one("example.com").pattern,
        Pattern::Domain("example.com".into())
    );
    assert_eq!(
        one("=host.example.com").pattern,
        Pattern::Exact("host.example.com".into())
    );
    assert_eq!(
        one("=*.example.com").pattern,
        Pattern::Exact("*.example.com".into())
    );
    assert_eq!(
        one("*.example.com").pattern,
        Pattern::Wildcard("example.com".into())
    );
    assert_eq!(
        one("/^mail[0-9]+\\./").pattern,
        Pattern::Regex("^mail[0-9]+\\.".into())
    );
    assert_eq!(one("~paypal").pattern, Pattern::Keyword("paypal".into()));
    assert_eq!(
        one("!dev.example.com").pattern,
        Pattern::Exclude {
            name: "dev.example.com".into(),
            exact: false
        }
    );
    assert_eq!(
        one("!=www.example.com").pattern,
        Pattern::Exclude {
            name: "www.example.com".into(),
            exact: true
        }
    );
}

#[test]
fn names_are_lowercased_punycoded_and_lose_the_trailing_dot() {
    assert_eq!(
        one("WWW.Example.COM.").pattern,
        Pattern::Domain("www.example.com".into())
    );
    assert_eq!(
        one("=Bücher.de.").pattern,
        Pattern::Exact("xn--bcher-kva.de".into())
    );
    assert_eq!(one("~PäyPal").pattern, Pattern::Keyword("päypal".into()));
    // The item text is kept as written for reports.
    assert_eq!(one("Bücher.de").text, "Bücher.de");
}

#[test]
fn options_tags_issuers_and_lookalike() {
    let item = one(
        "example.com issuers=letsencrypt,DigiCert,spki:b3e49ac8cb4ac4f9253ad6dc0e7f20d8d3caabd81762d8280eec223c82f6c929 @a @b lookalike=off # c",
    );
    assert_eq!(item.tags, ["a", "b"]);
    assert!(!item.lookalike);
    assert_eq!(item.issuers[0], IssuerRule::Name("letsencrypt".into()));
    assert_eq!(item.issuers[1], IssuerRule::Name("digicert".into()));
    let IssuerRule::Spki(key) = &item.issuers[2] else {
        panic!("{:?}", item.issuers)
    };
    assert_eq!(key[..4], [0xb3, 0xe4, 0x9a, 0xc8]);
    assert_eq!(key[31], 0x29);
    assert!(one("~paypal").lookalike);
}

#[test]
fn comments_blank_lines_tabs_bom_and_crlf() {
    let text =
        "\u{feff}# header\r\n\r\n\texample.com\t# trailing\r\n  =a.example.org  \r\n#only\r\n";
    let parsed = parse_file(text);
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    let got: Vec<_> = parsed
        .items
        .iter()
        .map(|i| (i.line, i.pattern.clone()))
        .collect();
    assert_eq!(
        got,
        [
            (3, Pattern::Domain("example.com".into())),
            (4, Pattern::Exact("a.example.org".into()))
        ]
    );
}

#[test]
fn empty_file_and_comment_only_file_have_no_items() {
    for text in ["", "\u{feff}", "\n\n", "# nothing\r\n   # here"] {
        let parsed = parse_file(text);
        assert!(
            parsed.items.is_empty() && parsed.errors.is_empty(),
            "{text:?}"
        );
    }
}

#[test]
fn regex_may_contain_spaces_hashes_and_escaped_slashes() {
    assert_eq!(
        one("/a #b\\/c/ @t # comment").pattern,
        Pattern::Regex("a #b\\/c".into())
    );
    assert_eq!(one("/a #b\\/c/ @t").tags, ["t"]);
}

#[test]
fn tag_lines_set_the_default_for_later_lines() {
    let parsed = parse_file("a.com\n@client-acme\nb.com @x\n!dev.b.com\n@other\nc.com");
    let tags: Vec<_> = parsed.items.iter().map(|i| i.tags.clone()).collect();
    assert_eq!(
        tags,
        [
            vec![],
            vec!["client-acme".to_string(), "x".into()],
            vec!["client-acme".into()],
            vec!["other".into()]
        ]
    );
}

#[test]
fn errors_carry_the_bad_value_and_a_hint() {
    let e = error("/a(b/");
    assert!(
        matches!(&e, LineError::BadRegex { pattern, message } if pattern == "a(b" && message.contains("unclosed"))
    );
    assert!(e.hint().unwrap().contains("regex"));
    assert_eq!(
        error("/abc"),
        LineError::UnterminatedRegex {
            item: "/abc".into()
        }
    );
    assert_eq!(
        error("/abc/i"),
        LineError::TextAfterRegex { text: "i".into() }
    );
    assert_eq!(error("//"), LineError::EmptyRegex);
    assert_eq!(error("="), LineError::EmptyItem { prefix: "=".into() });
    assert_eq!(error("~"), LineError::EmptyItem { prefix: "~".into() });
    assert_eq!(error("!"), LineError::EmptyItem { prefix: "!".into() });
    assert_eq!(
        error("a.*.com"),
        LineError::BadWildcard {
            item: "a.*.com".into()
        }
    );
    assert_eq!(
        error("!*.example.com"),
        LineError::BadWildcard {
            item: "!*.example.com".into()
        }
    );
    assert_eq!(
        error("exa mple.com"),
        LineError::UnexpectedText {
            text: "mple.com".into()
        }
    );
    assert_eq!(
        error("a..com"),
        LineError::BadName {
            item: "a..com".into(),
            source: NameError::EmptyLabel {
                name: "a..com".into()
            }
        }
    );
    let e = error("example.com#oops");
    assert!(
        e.hint().unwrap().contains("white space before the '#'"),
        "{e:?}"
    );
    assert_eq!(
        error("example.com colour=red"),
        LineError::UnknownOption {
            option: "colour=red".into()
        }
    );
    assert_eq!(
        error("~pay.pal"),
        LineError::BadKeyword {
            keyword: "pay.pal".into(),
            ch: '.'
        }
    );
    assert_eq!(
        error("example.com @"),
        LineError::BadTag { tag: "@".into() }
    );
    assert_eq!(
        error("example.com issuers=a,,b"),
        LineError::EmptyIssuer {
            option: "issuers=a,,b".into()
        }
    );
    assert_eq!(
        error("example.com issuers=spki:abcd"),
        LineError::BadSpki {
            value: "abcd".into()
        }
    );
    assert_eq!(
        error("example.com lookalike=maybe"),
        LineError::BadLookalike {
            value: "maybe".into()
        }
    );
    assert_eq!(
        error("/x/ issuers=letsencrypt"),
        LineError::OptionNotAllowed {
            option: "issuers=letsencrypt".into(),
            kind: "regex"
        }
    );
    assert_eq!(
        error("!x.com lookalike=off"),
        LineError::OptionNotAllowed {
            option: "lookalike=off".into(),
            kind: "exclusion"
        }
    );
}

#[test]
fn all_bad_lines_are_reported_not_just_the_first() {
    let parsed = parse_file("good.com\n/(/\nbad..com\nalso.good\n~\n");
    let lines: Vec<usize> = parsed.errors.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, [2, 3, 5]);
    assert_eq!(parsed.items.len(), 2);
}

#[test]
fn warnings_for_catch_all_regex_short_keyword_and_public_suffix() {
    let parsed = parse_file("/.*/\n/^[a-z]/\n~ab\ncom\nco.uk\nexample.com");
    assert!(parsed.errors.is_empty());
    let warnings: Vec<_> = parsed
        .warnings
        .iter()
        .map(|(l, w)| (*l, w.clone()))
        .collect();
    assert_eq!(
        warnings,
        [
            (
                1,
                LineWarning::RegexMatchesEverything {
                    pattern: ".*".into()
                }
            ),
            (
                3,
                LineWarning::ShortKeyword {
                    keyword: "ab".into()
                }
            ),
            (4, LineWarning::PublicSuffix { item: "com".into() }),
            (
                5,
                LineWarning::PublicSuffix {
                    item: "co.uk".into()
                }
            ),
        ]
    );
}

#[test]
fn issuer_text_is_compared_on_letters_and_digits() {
    assert_eq!(
        normalize_issuer_text("(STAGING) Let's Encrypt"),
        "stagingletsencrypt"
    );
    assert_eq!(normalize_issuer_text("DigiCert Inc"), "digicertinc");
}
