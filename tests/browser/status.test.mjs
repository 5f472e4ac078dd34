// Renders a running Levee's /status page in headless Chromium and checks what an operator
// sees: identity and readiness, the streams, sparklines, resources with alarm colours, recent
// errors — and that the page loads nothing from anywhere else and runs no script.
// Run by tests/browser/run.sh (which installs Chromium and playwright-core).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, rmSync, statSync, copyFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const require = createRequire(join(process.env.LEVEE_NODE_MODULES, 'x.js'));
const { chromium } = require('playwright-core');
const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');

function startLevee(dataDir) {
  const child = spawn(process.env.LEVEE_BIN, [
    'serve', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0',
    '--data-dir', dataDir, '--stream-transition-ms', '50', '--status-sample-ms', '250',
  ], { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, LEVEE_LOG: 'warn' } });
  return new Promise((resolve, reject) => {
    let admin;
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (l) => {
      if (l.startsWith('admin listening on ')) admin = l.slice('admin listening on '.length);
      if (l.startsWith('levee listening on ')) {
        resolve({ child, admin, api: l.slice('levee listening on '.length) });
      }
    });
    child.on('exit', (code) => reject(new Error(`levee exited with ${code}`)));
  });
}

test('the status page renders in headless Chromium with everything an operator needs', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'levee-browser-'));
  const profile = mkdtempSync(join(tmpdir(), 'levee-chromium-'));
  const node = await startLevee(dataDir);
  let context;
  try {
    execFileSync(process.env.LEVEE_PYTHON, [join(here, 'workload.py'), node.api, '4'],
      { stdio: 'inherit' });
    context = await chromium.launchPersistentContext(profile, {
      executablePath: process.env.CHROMIUM_BIN,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1100, height: 900 },
    });
    const page = context.pages()[0] ?? await context.newPage();
    const requests = [];
    page.on('request', (r) => requests.push(r.url()));
    const consoleErrors = [];
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    // Await a few samples after the workload so the sparklines show it.
    await new Promise((r) => setTimeout(r, 600));
    const started = Date.now();
    const resp = await page.goto(`${node.admin}/status`, { waitUntil: 'load' });
    const loadMs = Date.now() - started;
    assert.equal(resp.status(), 200);

    assert.match(await page.title(), /^Levee status/);
    const h1 = await page.textContent('h1');
    assert.match(h1, /READY/);
    assert.doesNotMatch(h1, /NOT READY/);
    const streams = await page.$$eval('tr.stream', (rows) => rows.map((r) => r.innerText));
    assert.equal(streams.length, 2);
    assert.ok(streams.some((s) => s.includes('orders') && s.includes('ACTIVE')), streams.join('|'));
    assert.ok(streams.some((s) => s.includes('shardId-000000000001')));
    // Six sparklines, each a polyline with many points, one of them not flat.
    const sparks = await page.$$eval('svg.spark polyline', (ps) => ps.map((p) => p.getAttribute('points')));
    assert.equal(sparks.length, 6);
    const ys = sparks[2].split(' ').map((p) => Number(p.split(',')[1]));
    assert.ok(ys.length >= 10, `only ${ys.length} samples`);
    assert.ok(Math.min(...ys) < Math.max(...ys), 'records-in sparkline is flat');
    const box = await page.$eval('svg.spark', (s) => s.getBoundingClientRect().width);
    assert.ok(box > 100, 'sparkline rendered with a width');
    // Resources with their limits and alarm colours (computed style, as the eye sees it).
    const fds = await page.$eval('tr[data-resource="fds"]', (r) => ({
      text: r.innerText, bg: getComputedStyle(r.querySelector('.pill')).backgroundColor,
    }));
    assert.match(fds.text, /RLIMIT_NOFILE/);
    assert.equal(fds.bg, 'rgb(198, 246, 213)', 'an ok alarm is green');
    const pills = await page.$$eval('tr.resource .pill', (ps) => ps.map((p) => [p.innerText, getComputedStyle(p).backgroundColor]));
    for (const [t, bg] of pills) {
      const want = { ok: 'rgb(198, 246, 213)', warn: 'rgb(254, 252, 191)', critical: 'rgb(254, 215, 215)' }[t];
      assert.equal(bg, want, `alarm ${t} has its colour`);
    }
    assert.ok(pills.length >= 8);
    const errors = await page.$$eval('tr.error', (rows) => rows.map((r) => r.innerText));
    assert.ok(errors.some((e) => e.includes('ResourceNotFoundException')), errors.join('|'));
    assert.match(await page.textContent('#shard-map'), /\d+/);
    // Self-contained: one request (the page), no scripts, no console errors.
    assert.deepEqual(requests.filter((u) => !u.startsWith(node.admin)), []);
    assert.equal(requests.length, 1, requests.join(' '));
    assert.equal(await page.evaluate(() => document.scripts.length), 0);
    assert.deepEqual(consoleErrors, []);
    console.log(`/status loaded in ${loadMs} ms; ${ys.length} samples; ${pills.length} resources`);

    const shot = join(dataDir, 'status.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(statSync(shot).size > 10_000, 'a real screenshot');
    if (process.env.LEVEE_UPDATE_SCREENSHOT === '1') {
      mkdirSync(join(repo, 'docs'), { recursive: true });
      copyFileSync(shot, join(repo, 'docs', 'status.png'));
    }
  } finally {
    if (context) await context.close();
    node.child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(profile, { recursive: true, force: true });
  }
});
