// Renders charts with Mermaid's own CLI and opens pages, all in one headless Chromium session.
//
//   node tests/browser/render.mjs JOB.json OUT_DIR
//
// JOB.json: {"charts": [{"name", "source"}], "pages": [{"name", "path", "width", "height"}]}.
// Each chart goes through @mermaid-js/mermaid-cli's renderMermaid (the pinned Mermaid parses and
// draws it, as GitHub's would) to OUT_DIR/<name>.svg; a chart Mermaid rejects is reported with
// its error. Each page is loaded from its file with every console message, page error and failed
// request collected, and screenshotted to OUT_DIR/<name>.png. Prints one JSON result on stdout.
// The browser is Debian's chromium (no download: PUPPETEER_SKIP_DOWNLOAD=1 at install).
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";

import { renderMermaid } from "@mermaid-js/mermaid-cli";
import puppeteer from "puppeteer";

const [jobPath, outDir] = process.argv.slice(2);
const job = JSON.parse(await readFile(jobPath, "utf8"));
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"],
});
const result = { charts: [], pages: [] };
try {
  for (const chart of job.charts) {
    try {
      const { data } = await renderMermaid(browser, chart.source, "svg", {});
      const svg = Buffer.from(data).toString("utf8");
      await writeFile(path.join(outDir, `${chart.name}.svg`), svg);
      result.charts.push({ name: chart.name, ok: true, svg: `${chart.name}.svg` });
    } catch (error) {
      result.charts.push({ name: chart.name, ok: false, error: String(error).slice(0, 2000) });
    }
  }
  for (const spec of job.pages) {
    const page = await browser.newPage();
    const problems = [];
    page.on("console", (msg) => {
      if (msg.type() === "error" || msg.type() === "warning") problems.push(`console ${msg.type()}: ${msg.text()}`);
    });
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("requestfailed", (request) => problems.push(`request failed: ${request.url()}`));
    await page.setViewport({ width: spec.width, height: spec.height, deviceScaleFactor: 1, isMobile: spec.width < 600 });
    await page.goto(pathToFileURL(spec.path).href, { waitUntil: "load" });
    const layout = await page.evaluate(() => ({
      scrollWidth: document.documentElement.scrollWidth,
      clientWidth: document.documentElement.clientWidth,
      svgs: document.querySelectorAll("svg").length,
      images: [...document.images].filter((img) => img.complete && img.naturalWidth > 0).length,
      tables: document.querySelectorAll("table").length,
      title: document.title,
    }));
    const shot = `${spec.name}.png`;
    await page.screenshot({ path: path.join(outDir, shot), fullPage: true });
    result.pages.push({ name: spec.name, problems, layout, screenshot: shot });
    await page.close();
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result));
