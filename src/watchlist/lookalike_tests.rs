use super::*;

fn brand(item: u32, label: &str, display: &str, is_keyword: bool) -> Brand {
    Brand {
        item,
        label: label.into(),
        display: display.into(),
        is_keyword,
    }
}

fn index() -> LookalikeIndex {
    let brands = vec![
        brand(0, "example", "example.com", false),
        brand(1, "paypal", "paypal", true),
        brand(2, "microsoft", "microsoft", true),
        brand(3, "abc", "abc.com", false),
    ];
    LookalikeIndex::build(
        brands,
        ["example.com".to_string(), "abc.com".to_string()]
            .into_iter()
            .collect(),
    )
}

/// The distinct item ids `name` is reported for.
fn imitated(index: &LookalikeIndex, name: &str) -> Vec<u32> {
    let mut found = Vec::new();
    let split = super::super::name::split_public_suffix(name);
    if !index.is_genuine(split) {
        index.find(split, &mut Scratch::default(), &mut found);
    }
    let mut items: Vec<u32> = found.iter().map(|&id| index.brand(id).item).collect();
    items.sort_unstable();
    items.dedup();
    items
}

fn puny(unicode: &str) -> String {
    idna::domain_to_ascii(unicode).unwrap()
}

#[test]
fn fold_maps_confusables_to_one_form() {
    assert_eq!(fold("pаypal"), "paypal"); // Cyrillic а (U+0430)
    assert_eq!(fold("g00gle"), "google");
    assert_eq!(fold("paypa1"), "paypal");
    assert_eq!(fold("microsoft"), "rnicrosoft");
    assert_eq!(fold("pàypal"), "paypal"); // accent dropped
    assert_eq!(fold("ΡΑΥΡΑΙ"), "paypal"); // Greek capitals
    assert_eq!(fold("example"), "exarnple");
}

#[test]
fn typosquats_of_a_domain_brand() {
    let index = index();
    for name in [
        "exampel.com",
        "examp1e.org",
        "exampple.net",
        "exmple.com",
        "examples.com",
    ] {
        assert_eq!(imitated(&index, name), [0], "{name}");
    }
}

#[test]
fn the_brand_under_another_domain_or_as_a_hyphen_part() {
    let index = index();
    for name in [
        "example.net",
        "login-example.io",
        "www.example.co",
        "*.example.org",
    ] {
        assert_eq!(imitated(&index, name), [0], "{name}");
    }
}

#[test]
fn homoglyph_idn_of_brands_and_keywords() {
    let index = index();
    assert_eq!(imitated(&index, &puny("еxample.com")), [0]); // Cyrillic е
    assert_eq!(imitated(&index, &puny("secure-pаypal-login.com")), [1]);
    // Keyword homoglyphs inside a label are the keyword automaton's job (keyword.rs), not found here.
    assert_eq!(
        imitated(&index, &puny("pаypallogin.com")),
        Vec::<u32>::new()
    );
    assert_eq!(imitated(&index, "www.exarnple.co.uk"), [0]); // rn for m
    assert_eq!(imitated(&index, "paypa1.com"), [1]);
    assert_eq!(imitated(&index, &puny("аbс.net")), [3]); // short brand: homoglyphs only
}

#[test]
fn genuine_names_short_brands_and_unrelated_names_are_not_lookalikes() {
    let index = index();
    // Domain brands are compared with the registrable label only (`evil`, `mail`); keywords with every label.
    assert_eq!(imitated(&index, "example.com.evil.net"), Vec::<u32>::new());
    assert_eq!(imitated(&index, "exampel.mail.org"), Vec::<u32>::new());
    assert_eq!(imitated(&index, "paypa1.mail.org"), [1]);
    for name in [
        "example.com",
        "www.example.com",
        "*.example.com",
        "abd.com",
        "abc.net",
        "totally-different.com",
        "com",
        "",
    ] {
        assert_eq!(imitated(&index, name), Vec::<u32>::new(), "{name}");
    }
    // An exact keyword is a keyword match, not a look-alike; the skeleton search still sees it, and the matcher
    // drops look-alikes of items that matched the same name otherwise.
    let mut found = Vec::new();
    index.check_token(
        "paypal",
        Scope::AllBrands,
        &mut Scratch::default(),
        &mut found,
    );
    assert!(found.is_empty());
}
