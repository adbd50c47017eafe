// The HTML report in a real headless browser (Debian's Chromium, driven by playwright-core): it renders the
// table and the expiry chart, loads nothing from anywhere, breaks no rule of its own CSP, and a hostile title
// stays text. Chromium missing is a failure with the way to install it, never a skip: .ci/run installs it.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { type Browser, chromium } from 'playwright-core';
import { type ScriptSandbox, startScriptSandbox } from '../helpers/run-script.js';
import { HOSTILE_TITLE, seedCases } from './fleet.js';
import { report } from './run-report.js';

const CHROMIUM = process.env.KEEPER_ROTATE_CHROMIUM ?? '/usr/bin/chromium';
/** As the machine notes start it: no sandbox as root, and no background connections on a closed network. */
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** A PNG's width and height, from its IHDR chunk. */
function pngSize(png: Buffer): { width: number; height: number } {
  assert.equal(png.subarray(1, 4).toString('latin1'), 'PNG');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

describe('the HTML report in headless Chromium', () => {
  let box: ScriptSandbox;
  let dir: string;
  let browser: Browser;
  let file: string;
  let records = 0;
  before(async () => {
    assert.ok(existsSync(CHROMIUM), `Chromium is not at ${CHROMIUM}: install it with "apt-get install -y chromium" (.ci/run does), or set KEEPER_ROTATE_CHROMIUM to its path`);
    box = await startScriptSandbox('report');
    seedCases(box.sandbox);
    const r = await report(box.env, ['--check', '--format', 'html']);
    assert.equal(r.code, 15, r.stderr);
    records = (r.stdout.match(/<tr class="/g) ?? []).length;
    dir = mkdtempSync(join(tmpdir(), 'keeper-rotate-report-html-'));
    file = join(dir, 'report.html');
    writeFileSync(file, r.stdout);
    // Playwright gives the browser a fresh, empty profile of its own, removed when it closes.
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  });
  after(async () => {
    await browser?.close();
    await box?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('renders the table and the chart, requests nothing, and breaks no CSP rule', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const requests: string[] = [];
    const errors: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(pathToFileURL(file).href);
    assert.deepEqual(requests, [pathToFileURL(file).href], 'the page itself and nothing else');
    assert.deepEqual(errors, [], 'no CSP violation or script error');
    // Source text, not a function: this project compiles without the DOM's types, and the page runs it as is.
    const dom = (await page.evaluate(`({
      rows: document.querySelectorAll('#records tbody tr').length,
      headers: [...document.querySelectorAll('#records th')].map((th) => th.textContent),
      bars: document.querySelectorAll('#expiry-chart rect.bar').length,
      chartBox: document.querySelector('#expiry-chart').getBoundingClientRect().toJSON(),
      injected: document.querySelectorAll('body script, body img, body iframe').length,
      headerBackground: getComputedStyle(document.querySelector('#records th')).backgroundColor,
      titles: [...document.querySelectorAll('#records td.title')].map((td) => td.textContent ?? ''),
      csp: document.querySelector('meta[http-equiv="Content-Security-Policy"]')?.getAttribute('content'),
    })`)) as { rows: number; headers: string[]; bars: number; chartBox: { width: number; height: number }; injected: number; headerBackground: string; titles: string[]; csp: string | null };
    // The stylesheet applies only if the CSP's hash matches it (headerBackground below).
    assert.equal(dom.rows, records);
    assert.equal(dom.rows, 8);
    assert.ok(dom.headers.includes('Expires') && dom.headers.includes('Days left') && dom.headers.includes('Check'));
    assert.ok(dom.bars >= 3, `the chart has ${dom.bars} bars`);
    assert.ok(dom.chartBox.width > 400 && dom.chartBox.height > 100, JSON.stringify(dom.chartBox));
    assert.equal(dom.injected, 0, 'no element came from a record');
    assert.equal(dom.headerBackground, 'rgb(242, 244, 247)');
    assert.match(dom.csp ?? '', /^default-src 'none'; /);
    // The hostile title is text, its bidi override and escape sequences shown as escapes, not applied.
    const hostile = dom.titles.find((t) => t.includes('gnp.exe'))!;
    assert.ok(hostile.startsWith('\\u202egnp.exe \\u001b[31mred\\u001b[0m <img src=x onerror=alert(1)>'), hostile);
    assert.ok(!hostile.includes('\u202e') && !hostile.includes('\u001b'));
    assert.notEqual(hostile, HOSTILE_TITLE);
    await page.close();
  });

  test('a screenshot shows the table and the chart: both render to images of their own size, far from blank', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(pathToFileURL(file).href);
    const full = await page.screenshot({ fullPage: true });
    const table = await page.locator('#records').screenshot();
    const chart = await page.locator('#expiry-chart').screenshot();
    const tableBox = (await page.locator('#records').boundingBox())!;
    const chartBox = (await page.locator('#expiry-chart').boundingBox())!;
    // Each image is its element's size (two pixels either way: element boxes are fractional, and both edges snap to pixels).
    const near = (a: number, b: number) => Math.abs(a - b) <= 2;
    assert.ok(near(pngSize(chart).width, chartBox.width) && near(pngSize(chart).height, chartBox.height), JSON.stringify([pngSize(chart), chartBox]));
    assert.ok(near(pngSize(table).width, tableBox.width) && near(pngSize(table).height, tableBox.height), JSON.stringify([pngSize(table), tableBox]));
    assert.ok(chartBox.width > 400 && chartBox.height > 100 && tableBox.height > 8 * 20, JSON.stringify([chartBox, tableBox]));
    // An empty page of the same size compresses to a few kilobytes; the report, with its text and bars, to far more.
    await page.setContent('<!DOCTYPE html><html><body></body></html>');
    const blank = await page.screenshot({ fullPage: false });
    assert.ok(full.length > 5 * blank.length, `report ${full.length} bytes, blank page ${blank.length} bytes`);
    assert.ok(table.length > 3 * blank.length && chart.length > blank.length, `table ${table.length}, chart ${chart.length}, blank ${blank.length}`);
    await page.close();
  });
});
