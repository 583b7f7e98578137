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

/// The shortcuts (character masks instead of deletion hashes for a few brands, the first byte of a skeleton before
/// folding) rule out only tokens the full checks also reject: with them off, every name gets the same answer.
#[test]
fn shortcuts_change_no_answer() {
    let fast = index();
    assert!(fast.masks.is_some(), "few brands: masks are scanned");
    assert!(fast.skeleton_starts != 0 && !fast.skeleton_starts_wide);
    let mut slow = index();
    slow.masks = None;
    slow.skeleton_starts_wide = true;
    let mut checked = 0;
    for name in [
        "exampel.com",
        "examp1e.org",
        "exarnple.net",
        "example-login.com",
        "www.example.co",
        "xample.com",
        "eexample.com",
        "exmaple.com",
        "paypa1-secure.com",
        "paypall.net",
        "paypl.org",
        "aypal.org",
        "papyal.com",
        "login.paypai.com",
        "rnicrosoft.com",
        "microsft.com",
        "abc.net",
        "abd.net",
        "google.com",
        "mail.example.org",
        "www.amazon.de",
        "0example.com",
        "m.example-bank.co.uk",
        &puny("exаmple.com"),
        &puny("pаypal.com"),
        &puny("bücher.de"),
    ] {
        assert_eq!(imitated(&fast, name), imitated(&slow, name), "{name}");
        checked += usize::from(!imitated(&slow, name).is_empty());
    }
    assert!(checked >= 15, "the list exercises look-alikes ({checked})");
}

/// Past `MASK_SCAN` typo brands the deletion hashes are used, with the same answers.
#[test]
fn many_brands_use_the_deletion_hashes() {
    let mut brands: Vec<Brand> = (0..MASK_SCAN as u32 + 1)
        .map(|i| {
            brand(
                i,
                &format!("brand{i:03}"),
                &format!("brand{i:03}.com"),
                false,
            )
        })
        .collect();
    brands.push(brand(99, "paypal", "paypal", true));
    let index = LookalikeIndex::build(brands, Default::default());
    assert!(index.masks.is_none());
    assert_eq!(imitated(&index, "brnad007.com"), [7]);
    assert_eq!(imitated(&index, "paypa1.com"), [99]);
    assert!(imitated(&index, "google.com").is_empty());
}

#[test]
fn character_masks_keep_every_one_edit_neighbour() {
    for (a, b) in [
        ("paypal", "paypall"),
        ("paypal", "paypl"),
        ("paypal", "paypai"),
        ("paypal", "papyal"),
        ("pаypal", "paypal"), // Cyrillic а: a character outside a–z
        ("example", "exampel"),
        ("a-b_c9", "a-b_c8"),
    ] {
        assert_eq!(super::super::typo::edit_distance_at_most_one(a, b), Some(1));
        let (ma, mb) = (char_mask(a), char_mask(b));
        assert!(
            (ma & !mb).count_ones() <= 1 && (mb & !ma).count_ones() <= 1,
            "{a} {b}"
        );
    }
    let (ma, mb) = (char_mask("google"), char_mask("paypal"));
    assert!(
        (ma & !mb).count_ones() > 1,
        "unrelated tokens are ruled out"
    );
}
