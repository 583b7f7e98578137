// Drives headless Debian chromium (through playwright-core) against a running ctwatch console.
// Started by tests/console_browser.rs, which runs the daemon and tells us what to expect through env vars:
//   CTWATCH_URL  base URL            CTWATCH_KEY   the API key
//   XSS_SCRIPT / XSS_IMG             the hostile SANs that must appear as text
//   LIVE_NAME                        a name the test publishes once the Live page listens
//   SCREENSHOT_DIR (optional)        write a full-page PNG of every page there
// Exits non-zero with a message naming the failed check.
import { chromium } from "playwright-core";
import fs from "node:fs";
import path from "node:path";

const base = process.env.CTWATCH_URL;
const key = process.env.CTWATCH_KEY;
const XSS_SCRIPT = process.env.XSS_SCRIPT;
const XSS_IMG = process.env.XSS_IMG;
const shots = process.env.SCREENSHOT_DIR;

let step = "start";
function check(cond, what) {
  if (!cond) throw new Error(`${step}: ${what}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"],
});
const dialogs = [];
const consoleErrors = [];
try {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  page.on("dialog", (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));

  const shot = async (name) => {
    if (!shots) return;
    fs.mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  };
  const text = async (sel) => (await page.locator(sel).first().innerText()).trim();
  const noXss = async () => {
    check(dialogs.length === 0, `a script ran: dialogs ${JSON.stringify(dialogs)}`);
    check(await page.locator("img").count() === 0, "an <img> element was injected");
    check(await page.evaluate(() => document.querySelectorAll("script:not([src])").length) === 0, "inline script in page");
  };

  // --- Login -------------------------------------------------------------------------------------------
  step = "login";
  let resp = await page.goto(base + "/events?kind=new_certificate");
  check(page.url().startsWith(base + "/login?next="), `not sent to the login page: ${page.url()}`);
  const csp = resp.headers()["content-security-policy"] || "";
  check(csp.includes("script-src 'self'") && csp.includes("default-src 'none'"), `CSP header: ${csp}`);
  await shot("login");
  await page.fill("#key", "wrong-key-0123456789abcdef");
  await page.click("button[type=submit]");
  check((await text(".notice.bad")).includes("not hold a valid API key"), "wrong key accepted or not explained");
  await page.fill("#key", key);
  await page.click("button[type=submit]");
  await page.waitForURL(base + "/events?kind=new_certificate");
  const cookie = (await context.cookies()).find((c) => c.name === "ctwatch_session");
  check(cookie && cookie.httpOnly && cookie.sameSite === "Strict", `session cookie flags: ${JSON.stringify(cookie)}`);

  // --- Overview ----------------------------------------------------------------------------------------
  step = "overview";
  await page.goto(base + "/");
  check((await text(".cards")).includes("LOGS FOLLOWED") || (await text(".cards")).toUpperCase().includes("LOGS FOLLOWED"), "stat cards");
  const logRow = await text("table.logs tbody tr");
  check(logRow.includes("fake log 0") && logRow.includes("1,026"), `log row: ${logRow}`);
  check(logRow.includes("rfc6962"), "log kind");
  check(await page.locator("svg.chart rect.bar").count() === 24, "24 hourly bars");
  const sinks = await page.locator("section.card", { hasText: "Sinks" }).innerText();
  check(sinks.includes("webhook:ops") && sinks.includes("collect"), `sinks: ${sinks}`);
  await noXss();
  await shot("overview");

  // --- Events: filters, pagination, row link -------------------------------------------------------------
  step = "events";
  await page.goto(base + "/events");
  const rows = page.locator("#events tbody tr");
  check(await rows.count() === 50, `first page has ${await rows.count()} rows`);
  await shot("events");
  const firstId = await rows.first().locator("td.names").innerText();
  await page.click("a[rel=next]");
  const older = await rows.count();
  check(older > 0 && older <= 50, `older page has ${older} rows`);
  check(await page.locator("span.button.disabled", { hasText: "Older" }).count() === 1 || older === 50, "older link on the last page");
  await page.click("a[rel=prev]");
  check(await rows.count() === 50, "newer page");
  check(await rows.first().locator("td.names").innerText() === firstId, "back to the newest events");
  await page.selectOption("select[name=kind]", "lookalike");
  await page.click("form.filters button[type=submit]");
  check((await text("main")).includes("No event matches these filters."), "lookalike filter");
  await page.goto(base + "/events?tag=lab&item=evil.example");
  check(await rows.count() === 2, `evil.example item rows: ${await rows.count()}`);
  const evilRows = await page.locator("#events tbody").innerText();
  check(evilRows.includes(XSS_SCRIPT) && evilRows.includes(XSS_IMG), "hostile names shown as text in events");
  await noXss();
  await page.goto(base + "/events?name=" + encodeURIComponent("<script>"));
  check(await rows.count() === 1, "name filter");
  await rows.first().locator("td.names a").first().click();
  await page.waitForURL(/\/cert\/[0-9a-f]{64}$/);

  // --- Certificate ---------------------------------------------------------------------------------------
  step = "certificate";
  check((await text("h1")).includes(XSS_SCRIPT), `certificate title: ${await text("h1")}`);
  const details = await text("table.kv");
  check(details.includes("Evil \\<Corp\\> & \\\"Friends\\\""), `subject shown as text: ${details}`);
  check((await page.locator("#sightings tbody tr").count()) === 1, "one sighting");
  check((await text("#sightings tbody tr")).includes("1024"), "sighting index");
  const crtsh = await page.locator("a", { hasText: "crt.sh" }).getAttribute("href");
  check(/^https:\/\/crt\.sh\/\?q=[0-9a-f]{64}$/.test(crtsh), `crt.sh link ${crtsh}`);
  const pemHref = await page.locator("a", { hasText: "Download PEM" }).getAttribute("href");
  const pem = await (await page.request.get(base + pemHref)).text();
  check(pem.startsWith("-----BEGIN CERTIFICATE-----\n"), "PEM download");
  check((await text("main")).includes("evil.example"), "matched item listed");
  const probes = await page.locator("section.card", { hasText: "Probe results of its hosts" }).innerText();
  check(probes.includes("www.evil.example") && probes.includes("WARNING"), `probe results: ${probes}`);
  await noXss();
  await shot("certificate");

  // --- Search --------------------------------------------------------------------------------------------
  step = "search";
  await page.goto(base + "/search");
  await page.fill("input[name=q]", "%.evil.example");
  await page.click("form.search button[type=submit]");
  const results = page.locator("#results tbody tr");
  check(await results.count() === 2, `pattern search: ${await results.count()}`);
  const resText = await page.locator("#results").innerText();
  check(resText.includes(XSS_SCRIPT) && resText.includes(XSS_IMG), "hostile names in results, as text");
  await noXss();
  await page.goto(base + "/search?q=nip.io");
  const nipAll = await results.count();
  check(nipAll > 0, "nip.io results");
  const folded = await page.locator("#results").innerText();
  check(folded.includes("PRECERTIFICATE") || folded.toLowerCase().includes("precertificate"), "entry type shown");
  await page.check("input[name=current]");
  await page.click("form.search button[type=submit]");
  check((await text("main")).includes("Nothing stored matches") || (await results.count()) < nipAll, "exclude expired");
  await page.goto(base + "/search?q=evil.example&issuer=Evil");
  check(await results.count() === 2, "issuer filter");
  const jsonHref = await page.locator("a", { hasText: "Download JSON" }).getAttribute("href");
  const json = await (await page.request.get(base + jsonHref)).json();
  check(json.total === 2 && json.certificates.length === 2, `JSON download: ${JSON.stringify(json).slice(0, 200)}`);
  await page.goto(base + "/search?q=evil.example&mode=exact");
  check((await text("main")).includes("Nothing stored matches"), "exact mode");
  await page.goto(base + "/search?q=mexi.my");
  await shot("search");

  // --- Expiry --------------------------------------------------------------------------------------------
  step = "expiry";
  await page.goto(base + "/expiry");
  const groups = await page.locator("main h2").allInnerTexts();
  check(groups.some((g) => g.includes("acme")) && groups.some((g) => g.includes("lab")) && groups.some((g) => g.includes("Untagged")), `groups ${groups}`);
  const acme = page.locator("section.card", { hasText: "Tag acme" });
  const acmeRows = acme.locator("tbody tr");
  check((await acmeRows.first().innerText()).includes("CRITICAL"), "worst first");
  check(await acmeRows.first().locator(".badge.critical").count() >= 1, "critical colour");
  check(await page.locator(".badge.ok", { hasText: "served" }).count() >= 1, "served vs newest");
  check(await page.locator(".badge.warning", { hasText: "not deployed" }).count() >= 1, "stale deployment flagged");
  await shot("expiry");

  // --- Watchlists ----------------------------------------------------------------------------------------
  step = "watchlists";
  await page.goto(base + "/watchlists");
  const wl = await text("main");
  check(wl.includes("acme.txt") && wl.includes("lab.txt") && wl.includes("broken.txt"), "files listed");
  check(wl.includes("broken.txt:1"), `error location: ${wl.slice(0, 500)}`);
  check(wl.includes("mexi.my") && wl.includes("evil.example"), "items listed");
  await shot("watchlists");

  // --- Outbox: re-queue, CSRF ----------------------------------------------------------------------------
  step = "outbox";
  await page.goto(base + "/outbox");
  const button = page.locator("#requeue button");
  const label = await button.innerText();
  const n = parseInt(label.replace(/[^0-9]/g, ""), 10);
  check(n > 0, `failed count in button: ${label}`);
  await shot("outbox");
  await button.click();
  await page.waitForURL(/\/outbox\?requeued=\d+/);
  check((await text(".notice.ok")).startsWith(`${n} failed deliveries were put back`), `notice: ${await text(".notice.ok")}`);
  const forged = await page.request.post(base + "/outbox/requeue", { form: { csrf: "0".repeat(64), sink: "" } });
  check(forged.status() === 403, `forged CSRF token answered ${forged.status()}`);

  // --- Live ----------------------------------------------------------------------------------------------
  step = "live";
  await page.goto(base + "/live");
  await page.locator("#live-table tbody tr", { hasText: process.env.LIVE_NAME }).first().waitFor({ timeout: 60000 });
  const live = await page.locator("#live-table tbody").innerText();
  check(live.includes(process.env.LIVE_NAME), "live entry");
  await noXss();
  await shot("live");

  // --- Logout --------------------------------------------------------------------------------------------
  step = "logout";
  await page.click("form.logout button");
  await page.waitForURL(/\/login/);
  await page.goto(base + "/");
  check(page.url().startsWith(base + "/login"), "still logged in after logout");

  const csp_errors = consoleErrors.filter((e) => e.includes("Content Security Policy"));
  check(csp_errors.length === 0, `CSP violations: ${csp_errors.join(" | ")}`);
  console.log("console browser test: all checks passed");
} catch (e) {
  console.error(String(e && e.stack || e));
  console.error("browser console errors: " + JSON.stringify(consoleErrors.slice(0, 10)));
  await browser.close();
  process.exit(1);
}
await browser.close();
