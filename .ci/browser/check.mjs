// Opens the station's page in Debian's chromium (headless, through puppeteer-core) and checks
// it the way a visitor would see it. Usage: node check.mjs URL SCREENSHOT_DIR PROFILE_DIR
// Fails (exit 1) on: a console error or page error, a failed request, a blank page, a chart
// that did not load, no live update within 20 s, a unit switch that changes nothing, or a
// page wider than a 390 px phone.
import puppeteer from "puppeteer-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const [url, shots, profile] = process.argv.slice(2);
if (!url || !shots || !profile) {
  console.error("usage: node check.mjs URL SCREENSHOT_DIR PROFILE_DIR");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });
mkdirSync(profile, { recursive: true });

const problems = [];
const fail = (what) => { problems.push(what); console.error("FAIL: " + what); };
const say = (what) => console.log("ok: " + what);

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  userDataDir: profile,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
  ],
});

async function open(label, viewport) {
  const page = await browser.newPage();
  await page.setViewport(viewport);
  page.on("console", (m) => { if (m.type() === "error") fail(`${label}: console error: ${m.text()}`); });
  page.on("pageerror", (e) => fail(`${label}: page error: ${e.message}`));
  page.on("requestfailed", (r) => {
    // The live feed is cut when the page closes, and a chart request is aborted when a
    // switch asks for another picture; neither is a failure (a chart that does not load
    // is caught by chartsLoaded).
    const aborted = r.failure()?.errorText === "net::ERR_ABORTED" && r.url().includes("/chart/");
    if (!r.url().endsWith("/api/events") && !aborted) fail(`${label}: request failed: ${r.url()} ${r.failure()?.errorText}`);
  });
  page.on("response", (r) => { if (r.status() >= 400) fail(`${label}: ${r.status()} for ${r.url()}`); });
  const started = Date.now();
  await page.goto(url, { waitUntil: "load", timeout: 30000 });
  await page.waitForFunction(() => document.querySelectorAll("#now-grid .card").length > 0, { timeout: 15000 })
    .then(() => say(`${label}: current values shown ${Date.now() - started} ms after opening`))
    .catch(() => fail(`${label}: no current values within 15 s`));
  return page;
}

// Every chart image has loaded with a real size (none broken, none missing).
async function chartsLoaded(page, label) {
  // The charts load lazily: scroll through them as a reader would.
  await page.evaluate(async () => {
    for (const img of document.querySelectorAll("img[data-chart]")) {
      img.scrollIntoView();
      await new Promise((r) => setTimeout(r, 50));
    }
    window.scrollTo(0, 0);
  });
  try {
    await page.waitForFunction(() => [...document.querySelectorAll("img[data-chart]")]
      .every((i) => i.complete), { timeout: 30000 });
  } catch (_) { fail(`${label}: charts still loading after 30 s`); }
  const charts = await page.$$eval("img[data-chart]", (imgs) => imgs.map((i) => ({
    name: i.dataset.chart, w: i.naturalWidth, h: i.naturalHeight, shownW: i.getBoundingClientRect().width, src: i.getAttribute("src"),
  })));
  if (charts.length < 9) fail(`${label}: only ${charts.length} charts on the page`);
  for (const c of charts) {
    if (!(c.w > 0 && c.h > 0 && c.shownW > 0)) fail(`${label}: chart ${c.name} did not load (${c.src})`);
  }
  say(`${label}: ${charts.length} charts loaded (${charts.map((c) => c.name).join(", ")})`);
}

async function notBlank(page, label) {
  const info = await page.evaluate(() => ({
    text: document.body.innerText.length,
    title: document.getElementById("station-name")?.textContent || "",
    health: document.querySelectorAll("#health-summary dt").length,
    width: document.documentElement.scrollWidth,
  }));
  if (info.text < 300) fail(`${label}: the page is nearly blank (${info.text} characters)`);
  if (!info.title.trim()) fail(`${label}: no station name`);
  if (info.health < 3) fail(`${label}: station health not shown`);
  // Names as people write them: "pH", never "Ph" or "PH".
  const names = await page.$$eval("#now-grid .card", (cards) => cards.map((c) => c.innerText));
  const wrong = names.filter((t) => /\b(Ph|PH)\b/.test(t));
  if (wrong.length) fail(`${label}: pH misspelt in ${JSON.stringify(wrong)}`);
  return info;
}

// ---- Desktop -------------------------------------------------------------------------------
const desk = await open("desktop", { width: 1366, height: 768 });
const before = await desk.$$eval("#now-grid .card", (cards) =>
  Object.fromEntries(cards.map((c) => [c.dataset.key, c.querySelector(".v")?.textContent])));
const t0 = Date.now();
await desk.waitForFunction((before) => [...document.querySelectorAll("#now-grid .card")].some((c) =>
  c.classList.contains("fresh") && before[c.dataset.key] !== undefined &&
  before[c.dataset.key] !== c.querySelector(".v")?.textContent), { timeout: 20000 }, before)
  .then(() => say(`desktop: a live update changed a value ${Date.now() - t0} ms later`))
  .catch(() => fail("desktop: no live update changed a value within 20 s"));
await chartsLoaded(desk, "desktop");
await desk.waitForFunction(() => document.querySelectorAll("#health-summary dt").length >= 3, { timeout: 15000 })
  .catch(() => {});
await notBlank(desk, "desktop");
await desk.screenshot({ path: join(shots, "desktop-1366.png"), fullPage: true });
await desk.screenshot({ path: join(shots, "desktop-1366-top.png") });
const deskCharts = await desk.$("#charts");
if (deskCharts) await deskCharts.screenshot({ path: join(shots, "desktop-1366-charts.png") });

// The unit switch: a temperature card turns into °F, and the charts are asked in imperial.
const unitOf = () => desk.$$eval("#now-grid .card .u", (us) => us.map((u) => u.textContent));
await desk.click('button[data-units="imperial"]');
const imperial = await unitOf();
if (!imperial.includes("°F") || imperial.includes("°C")) fail(`imperial switch: units shown ${[...new Set(imperial)]}`);
else say("imperial switch: °F shown, no °C left");
const chartSrc = await desk.$eval('img[data-chart="temperature"]', (i) => i.getAttribute("src"));
if (!chartSrc.includes("units=imperial")) fail(`imperial switch: chart still ${chartSrc}`);
await chartsLoaded(desk, "desktop 24h imperial");
await desk.click('button[data-span="7d"]');
await chartsLoaded(desk, "desktop 7d imperial");
await desk.screenshot({ path: join(shots, "desktop-1366-7d-imperial.png"), fullPage: true });
await desk.click('button[data-span="1y"]');
await chartsLoaded(desk, "desktop 1y imperial");
await desk.click('button[data-units="metric"]');
await desk.click('button[data-span="24h"]');
const csv = await desk.$eval("#csv-link", (a) => a.getAttribute("href") || "");
if (!/^\/export\.csv\?from=.+&to=.+/.test(csv)) fail(`csv link: ${csv}`);
else {
  // The whole download, as the browser receives it (compressed if the server compresses).
  const res = await desk.evaluate(async (href) => {
    try {
      const r = await fetch(href);
      const text = await r.text();
      return { status: r.status, type: r.headers.get("content-type"), head: text.slice(0, 200), lines: text.split("\n").length };
    } catch (e) {
      return { error: String(e) };
    }
  }, csv);
  if (res.status !== 200 || !/csv/.test(res.type || "") || !res.head.includes("quantity")) fail(`csv download: ${JSON.stringify(res)}`);
  else say(`csv download: ${res.lines} lines from ${csv}`);
}
await desk.close();

// ---- Phone (remembers metric from localStorage) --------------------------------------------
const phone = await open("phone", { width: 390, height: 844, deviceScaleFactor: 1, isMobile: true, hasTouch: true });
await chartsLoaded(phone, "phone");
await phone.waitForFunction(() => document.querySelectorAll("#health-summary dt").length >= 3, { timeout: 15000 })
  .catch(() => {});
const info = await notBlank(phone, "phone");
if (info.width > 390) fail(`phone: the page is ${info.width} px wide, wider than the 390 px screen`);
await phone.screenshot({ path: join(shots, "phone-390.png"), fullPage: true });
await phone.screenshot({ path: join(shots, "phone-390-top.png") });
const phoneCharts = await phone.$("#charts");
if (phoneCharts) await phoneCharts.screenshot({ path: join(shots, "phone-390-charts.png") });
await phone.close();

// ---- Projector ------------------------------------------------------------------------------
const proj = await open("projector", { width: 1920, height: 1080 });
await proj.click("#projector");
await chartsLoaded(proj, "projector");
await proj.screenshot({ path: join(shots, "projector-1920-top.png") });
await proj.click("#projector");
await proj.close();

await browser.close();
console.log(`Screenshots in ${shots}`);
if (problems.length) {
  console.error(`${problems.length} problem(s) in the browser check`);
  process.exit(1);
}
console.log("browser check passed");
