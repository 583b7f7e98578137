//! Benchmark of the watchlist matcher alone (no I/O, no certificate parsing): a generated list of mixed items
//! against generated certificate names, both deterministic (fixed seed), so runs are comparable.
//!
//!   cargo run --release --example bench_matcher -- [ITEMS] [NAMES]      default: 100000 1000000
//!   BENCH_LOOKALIKE=off ...                                             look-alike detection off on every item
//!
//! Item mix (per 100 items): 50 domains (brands, look-alike on), 4 domains with issuers=, 20 exact names,
//! 10 wildcards, 10 keywords, 1 regex, 5 exclusions.
//! Name mix (per 100 names): 30 under watched domains, 10 typosquats of watched brands and keywords, 5 wildcard names,
//! 2 exact-item names, 2 under domains with an issuance policy (from another CA), 1 regex hit, 5 IDN homoglyphs of
//! watched brands, 45 unrelated; 4 names per certificate.
//! Prints load time, names/second, matches per kind and peak RSS (VmHWM) after loading and after matching.

use std::collections::BTreeMap;
use std::time::Instant;

use ctwatch::watchlist::{MatchInput, MatchKind, Watchlist};

/// splitmix64: tiny, fast, and the same on every platform and crate version.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn word(&mut self, min: usize, max: usize) -> String {
        let len = min + self.below(max - min + 1);
        (0..len)
            .map(|_| char::from(b'a' + self.below(26) as u8))
            .collect()
    }

    fn pick<'a>(&mut self, options: &[&'a str]) -> &'a str {
        options[self.below(options.len())]
    }
}

const TLDS: [&str; 8] = ["com", "net", "org", "de", "co.uk", "io", "fr", "com.au"];

struct Generated {
    text: String,
    /// Registrable domains (`label.tld`) watched as domain items.
    domains: Vec<(String, &'static str)>,
    keywords: Vec<String>,
    /// Names of exact items, domains with an issuance policy, and regex prefixes with their parent label.
    exact: Vec<String>,
    policies: Vec<String>,
    regexes: Vec<(String, String)>,
}

fn generate_items(count: usize, rng: &mut Rng) -> Generated {
    let mut text = String::with_capacity(count * 32);
    let (mut domains, mut keywords, mut exact, mut policies, mut regexes) =
        (vec![], vec![], vec![], vec![], vec![]);
    for i in 0..count {
        let line = match i % 100 {
            0..50 => {
                let (label, tld) = (rng.word(6, 12), TLDS[rng.below(TLDS.len())]);
                let line = format!("{label}.{tld}");
                domains.push((label, tld));
                line
            }
            50..54 => {
                policies.push(format!("{}.{}", rng.word(6, 12), rng.pick(&TLDS)));
                format!(
                    "{} issuers=letsencrypt,digicert",
                    policies[policies.len() - 1]
                )
            }
            54..74 => {
                exact.push(format!(
                    "{}.{}.{}",
                    rng.word(3, 8),
                    rng.word(6, 12),
                    rng.pick(&TLDS)
                ));
                format!("={}", exact[exact.len() - 1])
            }
            74..84 => format!(
                "*.{}.{}.{}",
                rng.word(3, 6),
                rng.word(6, 12),
                rng.pick(&TLDS)
            ),
            84..94 => {
                let keyword = rng.word(7, 11);
                keywords.push(keyword.clone());
                format!("~{keyword}")
            }
            94 => {
                regexes.push((rng.word(3, 5), rng.word(5, 8)));
                let (prefix, parent) = &regexes[regexes.len() - 1];
                format!("/^{prefix}[0-9]+\\.{parent}\\./")
            }
            _ => match domains.len() {
                0 => format!("!{}.com", rng.word(6, 12)),
                n => {
                    let (label, tld) = &domains[rng.below(n)];
                    format!("!{}.{label}.{tld}", rng.word(3, 6))
                }
            },
        };
        text.push_str(&line);
        text.push('\n');
    }
    Generated {
        text,
        domains,
        keywords,
        exact,
        policies,
        regexes,
    }
}

/// One certificate name of the documented mix.
fn generate_name(i: usize, generated: &Generated, rng: &mut Rng) -> String {
    let (label, tld) = &generated.domains[rng.below(generated.domains.len())];
    match i % 100 {
        0..30 => format!("{}.{label}.{tld}", rng.word(2, 8)),
        30..35 => typo(label, rng) + "." + rng.pick(&TLDS),
        35..40 => {
            let keyword = &generated.keywords[rng.below(generated.keywords.len())];
            format!("secure-{}.{}", typo(keyword, rng), rng.pick(&TLDS))
        }
        40..45 => format!("*.{label}.{tld}"),
        45..47 => generated.exact[rng.below(generated.exact.len())].clone(),
        47..49 => format!(
            "www.{}",
            generated.policies[rng.below(generated.policies.len())]
        ),
        49 => {
            let (prefix, parent) = &generated.regexes[rng.below(generated.regexes.len())];
            format!("{prefix}{}.{parent}.{}", rng.below(100), rng.pick(&TLDS))
        }
        50..55 => {
            // A Cyrillic homoglyph in a watched brand: IDN, encoded as it appears in a certificate.
            let fake = label
                .replacen('a', "а", 1)
                .replacen('e', "е", 1)
                .replacen('o', "о", 1);
            idna::domain_to_ascii(&format!("{fake}.{tld}"))
                .unwrap_or_else(|_| format!("{label}.{tld}"))
        }
        _ => format!("{}.{}.{}", rng.word(2, 6), rng.word(5, 14), rng.pick(&TLDS)),
    }
}

/// One character changed, added, removed or two swapped.
fn typo(word: &str, rng: &mut Rng) -> String {
    let mut chars: Vec<char> = word.chars().collect();
    let at = rng.below(chars.len() - 1);
    match rng.below(4) {
        0 => chars[at] = char::from(b'a' + rng.below(26) as u8),
        1 => chars.insert(at, char::from(b'a' + rng.below(26) as u8)),
        2 => {
            chars.remove(at);
        }
        _ => chars.swap(at, at + 1),
    }
    chars.into_iter().collect()
}

/// CPU time of this thread in seconds (/proc/thread-self/schedstat, ns): unlike wall time, barely affected by
/// other processes competing for the cores.
fn thread_cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    stat.split_whitespace()
        .next()
        .and_then(|ns| ns.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1e9
}

fn peak_rss_mb() -> f64 {
    status_mb("VmHWM:")
}

/// A memory figure of /proc/self/status, in MB.
fn status_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// `BENCH_LOOKALIKE=off`: the same list with look-alike detection off on every domain and keyword item.
fn without_lookalikes(text: &str) -> String {
    let lines: Vec<String> = text
        .lines()
        .map(|l| match l.chars().next() {
            Some(c) if c == '~' || c.is_ascii_lowercase() => format!("{l} lookalike=off"),
            _ => l.to_string(),
        })
        .collect();
    lines.join("\n")
}

/// Matches every name, 4 per certificate; returns the matches per kind and (wall, CPU) seconds.
fn run(watchlist: &Watchlist, names: &[String]) -> (BTreeMap<MatchKind, usize>, f64, f64) {
    let mut per_kind: BTreeMap<MatchKind, usize> = BTreeMap::new();
    let (started, cpu_started) = (Instant::now(), thread_cpu_s());
    for chunk in names.chunks(4) {
        let input = MatchInput {
            dns_names: chunk,
            ip_addresses: &[],
            issuer_org: Some("Example CA"),
            issuer_cn: None,
            issuer_spki_sha256: None,
            issuer_proven: true,
        };
        for m in watchlist.match_cert(&input) {
            *per_kind.entry(m.kind).or_default() += 1;
        }
    }
    (
        per_kind,
        started.elapsed().as_secs_f64(),
        thread_cpu_s() - cpu_started,
    )
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<usize>().expect("ITEMS and NAMES are numbers"));
    let item_count = args.next().unwrap_or(100_000);
    let name_count = args.next().unwrap_or(1_000_000);
    let mut rng = Rng(0x5eed);

    let mut generated = generate_items(item_count, &mut rng);
    if std::env::var("BENCH_LOOKALIKE").is_ok_and(|v| v == "off") {
        generated.text = without_lookalikes(&generated.text);
    }
    let names: Vec<String> = (0..name_count)
        .map(|i| generate_name(i, &generated, &mut rng))
        .collect();
    let rss_inputs = peak_rss_mb();

    let started = Instant::now();
    let watchlist =
        Watchlist::parse_str("bench.txt", &generated.text).unwrap_or_else(|e| panic!("{e}"));
    let load = started.elapsed();
    let (rss_loaded, rss_now) = (peak_rss_mb(), status_mb("VmRSS:"));

    let (per_kind, elapsed, cpu) = run(&watchlist, &names);

    let (items, warnings, certs) = (
        watchlist.len(),
        watchlist.warnings().len(),
        name_count.div_ceil(4),
    );
    println!("items: {items} ({warnings} warnings), names: {name_count}, certificates: {certs}");
    println!("load (parse + index): {:.2} s", load.as_secs_f64());
    println!(
        "matching: {elapsed:.2} s wall, {cpu:.2} s CPU; {:.0} names/s, {:.2} us/name (by CPU time)",
        name_count as f64 / cpu,
        cpu * 1e6 / name_count as f64
    );
    println!("matches per kind: {per_kind:?}");
    println!(
        "peak RSS (VmHWM): {rss_inputs:.0} MB with the generated inputs, {rss_loaded:.0} MB after loading the list \
         (+{:.0} MB; resident once loaded: {rss_now:.0} MB), {:.0} MB after matching",
        rss_loaded - rss_inputs,
        peak_rss_mb()
    );
}
