// Renders charts with Mermaid's own CLI and opens pages, all in one headless Chromium session.
//
//   node tests/browser/render.mjs JOB.json OUT_DIR
//
// JOB.json: {"charts": [{"name", "source"}], "pages": [{"name", "path", "width", "height"}],
//            "documents": [{"name", "markdown", "width", "height", "probe"}]}.
// Each chart goes through @mermaid-js/mermaid-cli's renderMermaid (the pinned Mermaid parses and
// draws it, as GitHub's would) to OUT_DIR/<name>.svg; a chart Mermaid rejects is reported with
// its error. Each page is loaded from its file with every console message, page error and failed
// request collected, and screenshotted to OUT_DIR/<name>.png. Prints one JSON result on stdout.
// Each document (a PR comment, a check run's page) is rendered as GitHub approximately renders
// it: markdown-it (HTML allowed, as GitHub's sanitised subset is: <details>, <sub>), GitHub's
// stylesheet (github-markdown-css) in a column like a comment's, ```mermaid blocks drawn by
// Mermaid in the page at the column's width; then measured (the page's and the element that
// holds ``probe``'s text: where it lies, whether it overflows) and screenshotted.
// The browser is Debian's chromium (no download: PUPPETEER_SKIP_DOWNLOAD=1 at install).
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";

import { renderMermaid } from "@mermaid-js/mermaid-cli";
import MarkdownIt from "markdown-it";
import puppeteer from "puppeteer";

const modules = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../node_modules");
const markdown = new MarkdownIt({ html: true, linkify: true });
const fence = markdown.renderer.rules.fence;
markdown.renderer.rules.fence = (tokens, idx, options, env, self) => {
  const token = tokens[idx];
  if (token.info.trim() === "mermaid") return `<pre class="mermaid">${markdown.utils.escapeHtml(token.content)}</pre>`;
  return fence(tokens, idx, options, env, self);
};

function documentHtml(body) {
  const css = pathToFileURL(path.join(modules, "github-markdown-css/github-markdown-light.css")).href;
  const script = pathToFileURL(path.join(modules, "mermaid/dist/mermaid.min.js")).href;
  // A comment's column: GitHub's page padding around the markdown body (16 px each side on a phone).
  return `<!doctype html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="${css}"><script src="${script}"></script>
<style>body{margin:0}.markdown-body{box-sizing:border-box;max-width:980px;margin:0 auto;padding:16px}</style>
</head><body><article class="markdown-body">${markdown.render(body)}</article></body></html>`;
}

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
      // report.html's "Model and data": its values wrap in view, never pushed out of it
      facts: (() => {
        const table = document.querySelector("table.facts");
        return table ? { right: table.getBoundingClientRect().right, scrollWidth: table.scrollWidth } : null;
      })(),
    }));
    const shot = `${spec.name}.png`;
    await page.screenshot({ path: path.join(outDir, shot), fullPage: true });
    result.pages.push({ name: spec.name, problems, layout, screenshot: shot });
    await page.close();
  }
  result.documents = [];
  for (const spec of job.documents || []) {
    const page = await browser.newPage();
    const problems = [];
    page.on("console", (msg) => {
      if (msg.type() === "error") problems.push(`console ${msg.type()}: ${msg.text()}`);
    });
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    await page.setViewport({ width: spec.width, height: spec.height, deviceScaleFactor: 1, isMobile: spec.width < 600 });
    const file = path.join(outDir, `${spec.name}.html`);
    await writeFile(file, documentHtml(spec.markdown));
    await page.goto(pathToFileURL(file).href, { waitUntil: "load" });
    const measured = await page.evaluate(async (probe) => {
      window.mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });
      await window.mermaid.run({ querySelector: "pre.mermaid" });
      const box = (el) => {
        const r = el.getBoundingClientRect();
        return { left: r.left, right: r.right, top: r.top, bottom: r.bottom };
      };
      // The innermost element whose text holds the probe: the verdict's paragraph.
      const holders = [...document.querySelectorAll(".markdown-body *")].filter((el) => el.textContent.includes(probe));
      const holder = holders[holders.length - 1];
      // Each chart: its axis titles and tick labels, to see whether any overlap or are cut off.
      const charts = [...document.querySelectorAll("pre.mermaid svg")].map((svg) => {
        const texts = (selector) => [...svg.querySelectorAll(selector)].map((t) => ({ text: t.textContent, ...box(t) }));
        return {
          svg: box(svg),
          xTitle: texts(".bottom-axis .title text, .left-axis .title text"),
          xLabels: texts(".bottom-axis .label text, .left-axis .label text"),
        };
      });
      return {
        scrollWidth: document.documentElement.scrollWidth,
        clientWidth: document.documentElement.clientWidth,
        viewportHeight: window.innerHeight,
        probe: holder ? { ...box(holder), scrollWidth: holder.scrollWidth, clientWidth: holder.clientWidth } : null,
        charts,
      };
    }, spec.probe || "");
    const shot = `${spec.name}.png`;
    await page.screenshot({ path: path.join(outDir, shot), fullPage: true });
    result.documents.push({ name: spec.name, problems, ...measured, screenshot: shot });
    await page.close();
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result));
