//! `ctwatch report --html`: the daily report as a self-contained HTML email body — per client tag, worst
//! first, coloured by level, with days left, open findings (renewed but not deployed, renewal missing) and
//! what changed since `--since`. Inline styles only (mail clients drop `<style>` and external resources);
//! every value from the database or a certificate is HTML-escaped.

use std::io::{self, Write};

use super::daily::{Category, DailyReport, HostLine, TagGroup};
use super::report::short_name;

/// (background, text colour) of a category.
fn colours(c: Category) -> (&'static str, &'static str) {
    match c {
        Category::Critical => ("#fde2e1", "#a61b1b"),
        Category::Warning => ("#fff4d6", "#8a5a00"),
        Category::Ok => ("#e6f4ea", "#1e6b34"),
        Category::NotServing => ("#eeeeee", "#555555"),
        Category::Pending => ("#f5f5f5", "#777777"),
    }
}

fn label(c: Category) -> &'static str {
    match c {
        Category::NotServing => "NO TLS",
        Category::Pending => "PENDING",
        c => c.as_str(),
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const TD: &str =
    "padding:4px 8px;border-bottom:1px solid #dddddd;text-align:left;vertical-align:top";
const HEADERS: [&str; 9] = [
    "Level",
    "Host",
    "Status",
    "Days left",
    "Expires",
    "Issuer",
    "Panel",
    "In CT",
    "Probed",
];

/// Writes the whole HTML document.
pub fn write_html(out: &mut dyn Write, report: &DailyReport) -> io::Result<()> {
    let t = &report.totals;
    let hosts = t.critical + t.warning + t.ok + t.not_serving + t.pending;
    writeln!(out, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">")?;
    writeln!(
        out,
        "<title>ctwatch expiry report {}</title></head>",
        escape(&report.generated_at)
    )?;
    writeln!(
        out,
        "<body style=\"margin:0;padding:16px;font-family:Arial,Helvetica,sans-serif;font-size:14px;color:#222222;background:#ffffff\">"
    )?;
    writeln!(
        out,
        "<h1 style=\"font-size:20px;margin:0 0 4px 0\">Certificate expiry report</h1>"
    )?;
    writeln!(
        out,
        "<p style=\"margin:0 0 12px 0;color:#555555\">{} &middot; {hosts} host(s): {}</p>",
        escape(&report.generated_at),
        pills(t.critical, t.warning, t.ok)
    )?;
    if report.groups.is_empty() {
        writeln!(out, "<p>No probed hosts yet.</p>")?;
    }
    for group in &report.groups {
        write_group(out, group, report.since.as_deref())?;
    }
    writeln!(
        out,
        "<p style=\"color:#777777;font-size:12px\">In CT &ldquo;NO&rdquo;: the served certificate was never seen \
         in a CT log followed by ctwatch (expected for private CAs and certificates issued before ctwatch started). \
         NO TLS: names from CT certificates that never answered a TLS handshake (mail, VPN, internal names).</p>"
    )?;
    writeln!(out, "</body></html>")
}

fn pills(critical: usize, warning: usize, ok: usize) -> String {
    [
        (critical, Category::Critical),
        (warning, Category::Warning),
        (ok, Category::Ok),
    ]
    .iter()
    .map(|(n, c)| {
        let (bg, fg) = colours(*c);
        format!(
            "<span style=\"background:{bg};color:{fg};padding:1px 6px;border-radius:3px;font-weight:bold\">{n} {}</span>",
            c.as_str()
        )
    })
    .collect::<Vec<_>>()
    .join(" ")
}

fn write_group(out: &mut dyn Write, group: &TagGroup, since: Option<&str>) -> io::Result<()> {
    let name = group.tag.as_deref().unwrap_or("(untagged)");
    let c = &group.counts;
    writeln!(
        out,
        "<h2 style=\"font-size:16px;margin:20px 0 6px 0\">{} <span style=\"font-weight:normal\">{}</span></h2>",
        escape(name),
        pills(c.critical, c.warning, c.ok)
    )?;
    writeln!(
        out,
        "<table cellspacing=\"0\" cellpadding=\"0\" style=\"border-collapse:collapse;width:100%\">"
    )?;
    write!(out, "<tr style=\"background:#f0f0f0\">")?;
    for h in HEADERS {
        write!(out, "<th style=\"{TD}\">{h}</th>")?;
    }
    writeln!(out, "</tr>")?;
    for h in &group.hosts {
        write_host(out, h)?;
    }
    writeln!(out, "</table>")?;
    let changed: Vec<&HostLine> = group
        .hosts
        .iter()
        .filter(|h| !h.changes.is_empty())
        .collect();
    if let Some(since) = since {
        writeln!(
            out,
            "<p style=\"margin:8px 0 2px 0;font-weight:bold\">Changes since {}</p>",
            escape(since)
        )?;
        if changed.is_empty() {
            writeln!(out, "<p style=\"margin:0;color:#777777\">none</p>")?;
        } else {
            writeln!(out, "<ul style=\"margin:0;padding-left:20px\">")?;
            for h in changed {
                for ch in &h.changes {
                    writeln!(
                        out,
                        "<li><b>{}</b>: {}</li>",
                        escape(&h.domain),
                        escape(&ch.text)
                    )?;
                }
            }
            writeln!(out, "</ul>")?;
        }
    }
    Ok(())
}

fn write_host(out: &mut dyn Write, h: &HostLine) -> io::Result<()> {
    let (bg, fg) = colours(h.category);
    let dash = || "-".to_string();
    let host = if h.port == 443 {
        h.domain.clone()
    } else {
        format!("{}:{}", h.domain, h.port)
    };
    let cells = [
        format!("<b style=\"color:{fg}\">{}</b>", label(h.category)),
        escape(&host),
        h.status.map_or_else(dash, |s| s.to_string()),
        h.days_left.map_or_else(dash, |d| d.to_string()),
        h.not_after
            .as_deref()
            .map_or_else(dash, |s| escape(&s.chars().take(10).collect::<String>())),
        h.issuer
            .as_deref()
            .map_or_else(dash, |i| escape(&short_name(i))),
        h.panel_status.as_str().to_string(),
        match h.seen_in_ct {
            Some(true) => "yes".into(),
            Some(false) => "<b>NO</b>".into(),
            None => dash(),
        },
        h.probed_at.as_deref().map_or_else(dash, |s| {
            escape(&s.chars().take(16).collect::<String>().replace('T', " "))
        }),
    ];
    write!(out, "<tr style=\"background:{bg}\">")?;
    for cell in cells {
        write!(out, "<td style=\"{TD}\">{cell}</td>")?;
    }
    writeln!(out, "</tr>")?;
    for f in &h.findings {
        writeln!(
            out,
            "<tr style=\"background:{bg}\"><td style=\"{TD}\"></td><td colspan=\"8\" style=\"{TD};color:#a61b1b\">&#9888; {}</td></tr>",
            escape(&f.text)
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
    }
}
