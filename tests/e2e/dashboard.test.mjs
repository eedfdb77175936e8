// Browser test of Settings > API Keys (/admin/): a real Chromium (Debian's /usr/bin/chromium) driven by
// playwright-core against the built worker in Miniflare. Every step saves a screenshot under
// artifacts/screenshots/ (git-ignored) so a person can look at what the page showed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startWorker } from '../support/worker.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const LAUNCH_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-quic'];
const SHOTS = fileURLToPath(new URL('../../artifacts/screenshots/', import.meta.url));
const ADMIN_TOKEN = `dash-admin-${randomBytes(16).toString('hex')}`;
const KEY_RE = /^lqt_[0-9a-f]{64}$/;

let worker, browser, context, page, shotNo = 0, broken = false;
const problems = []; // page errors, CSP violations and console errors collected along the way

async function shot(name) {
  shotNo += 1;
  await page.screenshot({ path: `${SHOTS}${String(shotNo).padStart(2, '0')}-${name}.png`, fullPage: true });
}

// Steps share one browser tab and build on each other; after a failure the rest are skipped, not piled on.
function step(name, fn) {
  test(name, async (t) => {
    if (broken) { t.skip('an earlier step failed'); return; }
    try { await fn(t); } catch (e) {
      broken = true;
      await shot(`FAILED-${name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`).catch(() => {});
      throw e;
    }
  });
}

function watch(p) {
  p.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  p.on('console', (m) => {
    // Chromium logs every non-2xx fetch as "Failed to load resource"; the 401s below are expected.
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
}

async function newPage() {
  context = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: 'en-US', timezoneId: 'UTC', reducedMotion: 'reduce' });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: worker.url });
  await context.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  context.setDefaultTimeout(10_000);
  const p = await context.newPage();
  watch(p);
  return p;
}

async function verify(key) {
  const res = await fetch(`${worker.url}/v1/auth/verify`, { headers: { authorization: `Bearer ${key}` } });
  return { status: res.status, body: await res.json() };
}
async function admin(method, path, body) {
  const res = await fetch(`${worker.url}${path}`, {
    method, body: body && JSON.stringify(body),
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
  });
  return { status: res.status, body: await res.json() };
}
const row = (prefix) => page.locator('tr[data-key-id]', { has: page.locator('.c-key code', { hasText: prefix }) });
const text = async (loc) => (await loc.innerText()).replace(/\s+/g, ' ').trim();

// The full key must be nowhere in the page once its dialog is closed: not in the markup, not in a form value.
async function assertKeyGone(key) {
  assert.equal(await page.locator('#reveal-dialog').evaluate((d) => d.open), false, 'key dialog should be closed');
  const html = await page.content();
  assert.ok(!html.includes(key), 'full key still present in the DOM');
  assert.ok(!html.includes(key.slice(12)), 'secret part of the key still present in the DOM');
  const values = await page.evaluate(() => [...document.querySelectorAll('input, textarea')].map((e) => e.value).join('\n'));
  assert.ok(!values.includes(key.slice(12)), 'full key still present in a form field');
}

// Closes the key dialog inside the page and reads the DOM in that same task: a dialog's 'close' event
// comes a task later, so a page that wipes the key only there is caught here every time.
// `how` is 'done' (the button) or 'esc' (requestClose, the path Esc takes).
async function closeReveal(key, how) {
  const seen = await page.evaluate(({ secret, how }) => {
    const d = document.getElementById('reveal-dialog');
    if (how === 'done') document.getElementById('reveal-done').click(); else d.requestClose();
    return { open: d.open, keyLeft: document.documentElement.outerHTML.includes(secret) };
  }, { secret: key.slice(12), how });
  assert.deepEqual(seen, { open: false, keyLeft: false }, `closing by ${how}: the key must leave the DOM with the dialog`);
  await assertKeyGone(key);
}

// Waits for the one-time key dialog, checks its warning and copy button, and returns the key it showed.
async function readRevealedKey() {
  const dialog = page.locator('#reveal-dialog');
  await dialog.locator('#revealed-key').waitFor();
  assert.equal(await dialog.evaluate((d) => d.open), true);
  const key = (await dialog.locator('#revealed-key').textContent()).trim();
  assert.match(key, KEY_RE);
  assert.match(await text(dialog), /will not be shown again/i);
  assert.match(await text(dialog), /LUMIQTRACE_API_KEY/);
  await dialog.getByRole('button', { name: 'Copy' }).click();
  await dialog.getByRole('button', { name: 'Copied' }).waitFor();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  assert.equal(copied, key, 'the Copy button should put exactly the shown key on the clipboard');
  return copied;
}

before(async () => {
  await rm(SHOTS, { recursive: true, force: true });
  await mkdir(SHOTS, { recursive: true });
  worker = await startWorker({ vars: { ADMIN_TOKEN } });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
  page = await newPage();
});

after(async () => {
  await browser?.close();
  await worker?.dispose();
});

const state = {};

// Independent of the browser steps, so a failure here does not skip them.
test('/admin serves the page with strict security headers', async () => {
  const redirect = await fetch(`${worker.url}/admin`, { redirect: 'manual' });
  assert.ok([301, 302, 307, 308].includes(redirect.status), `GET /admin → ${redirect.status}`);
  assert.match(redirect.headers.get('location'), /\/admin\/$/);
  const res = await fetch(`${worker.url}/admin/`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /text\/html/);
  assert.equal(res.headers.get('cache-control'), 'no-store');
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
  const csp = res.headers.get('content-security-policy') || '';
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
  const html = await res.text();
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/i, 'no inline scripts');
  assert.doesNotMatch(html, /\b(src|href)=["']?(https?:)?\/\//i, 'nothing loaded from another origin');
  for (const asset of ['app.js', 'app.css']) {
    const a = await fetch(`${worker.url}/admin/${asset}`);
    assert.equal(a.status, 200, asset);
    assert.equal(a.headers.get('x-content-type-options'), 'nosniff', asset);
  }
});

step('sign in: a wrong token is refused with a clear message', async () => {
  await page.goto(`${worker.url}/admin`);
  assert.match(page.url(), /\/admin\/$/);
  const token = page.getByLabel('Admin token', { exact: true });
  await token.waitFor();
  assert.equal(await page.locator('#app-view').isVisible(), false);
  await shot('sign-in');
  await token.fill('not-the-admin-token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  const error = page.locator('#signin-error');
  await error.waitFor();
  assert.match(await text(error), /not valid/i);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a refused token must not be stored');
  assert.equal(await page.locator('#app-view').isVisible(), false);
  await shot('wrong-token');
});

step('sign in with the admin token: empty state says what to do', async () => {
  await page.getByLabel('Admin token', { exact: true }).fill(ADMIN_TOKEN);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'API Keys', level: 1, exact: true }).waitFor();
  const stored = await page.evaluate(() => Object.keys(sessionStorage).map((k) => sessionStorage.getItem(k)));
  assert.deepEqual(stored, [ADMIN_TOKEN]);
  assert.equal(await page.evaluate(() => localStorage.length), 0, 'the token is for this tab only');
  const empty = page.getByRole('heading', { name: 'No projects yet' });
  await empty.waitFor();
  assert.match(await text(page.locator('#keys-list')), /Create a project/i);
  const tips = await text(page.locator('aside'));
  for (const needle of [/Security best practices/, /LUMIQTRACE_API_KEY/, /one key per environment/i, /90 days/, /revoke/i]) assert.match(tips, needle);
  await shot('signed-in-empty');
});

step('create a project from the page (and a duplicate ID is explained)', async () => {
  await page.getByRole('button', { name: 'Create your first project' }).click();
  const dialog = page.locator('#project-dialog');
  await page.getByLabel('Project name').fill('Web app');
  assert.equal(await page.getByLabel('Project ID').inputValue(), 'web-app', 'the ID is suggested from the name');
  await shot('new-project-dialog');
  await dialog.getByRole('button', { name: 'Create project' }).click();
  await page.locator('section[data-project="web-app"]').waitFor();
  assert.equal(await dialog.evaluate((d) => d.open), false);
  assert.match(await text(page.locator('section[data-project="web-app"]')), /No keys in this project yet/);

  await page.getByRole('button', { name: 'New project' }).click();
  await page.getByLabel('Project name').fill('Web app again');
  await page.getByLabel('Project ID').fill('web-app');
  await dialog.getByRole('button', { name: 'Create project' }).click();
  const error = dialog.locator('.form-error');
  await error.waitFor();
  assert.match(await text(error), /already exists/i);
  assert.match(await text(error), /project_exists/);
  await shot('duplicate-project-error');
  await page.keyboard.press('Escape');
  assert.equal(await dialog.evaluate((d) => d.open), false);
  await shot('project-empty');
});

step('create a key with the keyboard: shown once, copied, and it authenticates', async () => {
  await page.getByRole('button', { name: 'Create API key' }).focus();
  await page.keyboard.press('Enter');
  const dialog = page.locator('#key-dialog');
  assert.equal(await dialog.evaluate((d) => d.open), true);
  assert.equal(await page.evaluate(() => document.activeElement.id), 'key-name', 'focus starts in the name field');
  assert.equal(await page.locator('#key-dialog').getByLabel('Project', { exact: true }).inputValue(), 'web-app');
  await page.keyboard.type('production-web');
  await shot('create-key-dialog');
  const created = page.waitForResponse((r) => r.url().endsWith('/admin/v1/projects/web-app/keys'));
  await page.keyboard.press('Enter');
  assert.equal((await created).status(), 201);
  state.key1 = await readRevealedKey();
  assert.match(await text(page.locator('#reveal-context')), /production-web/);
  await shot('key-created-shown-once');

  const v = await verify(state.key1);
  assert.equal(v.status, 200, JSON.stringify(v.body));
  assert.equal(v.body.project_id, 'web-app');
  assert.equal(v.body.key_name, 'production-web');
  assert.equal(v.body.status, 'active');
});

step('after closing, the key is gone from the DOM and the list shows the new key', async () => {
  await page.getByRole('button', { name: /Done/ }).click();
  await assertKeyGone(state.key1);
  const prefix = state.key1.slice(0, 12);
  const r = row(prefix);
  await r.waitFor();
  const t = await text(r);
  assert.match(t, /production-web/);
  assert.match(t, new RegExp(`${prefix}…`));
  assert.match(t, /Active/);
  const { body } = await admin('GET', '/admin/v1/keys?project_id=web-app');
  const view = body.keys.find((k) => k.prefix === prefix);
  assert.ok(view, 'the admin API lists the key');
  assert.equal(await r.locator('.c-created time').getAttribute('datetime'), view.created_at);
  assert.match(await text(r.locator('.c-created')), /\b20\d\d\b/, 'created date is shown');
  assert.equal(await r.locator('.c-key').innerText().then((s) => s.length < 20), true, 'only the prefix is listed');
  assert.equal(await r.getByRole('button', { name: /^Rotate/ }).count(), 1);
  assert.equal(await r.getByRole('button', { name: /^Revoke/ }).count(), 1);
  state.key1Id = view.id;
  await shot('list-one-active-key');
});

step('create a second project from the Create dialog, a key in it, and filter by project', async () => {
  await page.getByRole('button', { name: 'Create key in Web app' }).waitFor();
  await page.getByRole('button', { name: 'Create API key' }).click();
  await page.getByRole('button', { name: 'New project…' }).click();
  await page.getByLabel('Project name').fill('Data pipeline');
  await page.locator('#project-dialog').getByRole('button', { name: 'Create project' }).click();
  await page.waitForFunction(() => !document.getElementById('project-dialog').open);
  assert.equal(await page.locator('#key-dialog').evaluate((d) => d.open), true, 'back in the Create dialog');
  assert.equal(await page.locator('#key-dialog').getByLabel('Project', { exact: true }).inputValue(), 'data-pipeline', 'the new project is selected');
  await page.getByLabel('Key name').fill('staging-backend');
  await page.locator('#key-dialog').getByRole('button', { name: 'Create key' }).click();
  state.key2 = await readRevealedKey();
  await closeReveal(state.key2, 'esc');
  await row(state.key2.slice(0, 12)).waitFor();
  assert.equal((await verify(state.key2)).status, 200);

  const groups = page.locator('#keys-list section[data-project]');
  assert.deepEqual(await groups.evaluateAll((s) => s.map((e) => e.dataset.project)), ['data-pipeline', 'web-app']);
  await shot('list-two-projects');
  await page.getByLabel('Filter by project').selectOption('data-pipeline');
  assert.deepEqual(await groups.evaluateAll((s) => s.map((e) => e.dataset.project)), ['data-pipeline']);
  assert.equal(await row(state.key1.slice(0, 12)).count(), 0);
  await shot('filtered-by-project');
  await page.getByLabel('Filter by project').selectOption({ label: 'All projects' });
  assert.equal(await groups.count(), 2);
});

step('rotate: new key shown once, old row shows its grace end, both keys authenticate', async () => {
  const old = row(state.key1.slice(0, 12));
  await old.getByRole('button', { name: /^Rotate/ }).click();
  const confirm = page.locator('#confirm-dialog');
  assert.match(await text(confirm), /keeps working during a grace period \(24 hours\)/);
  await shot('rotate-confirm');
  const rotated = page.waitForResponse((r) => r.url().endsWith(`/admin/v1/keys/${state.key1Id}/rotate`));
  await confirm.getByRole('button', { name: 'Rotate key' }).click();
  const res = await (await rotated).json();
  state.key3 = await readRevealedKey();
  assert.equal(state.key3, res.key);
  assert.notEqual(state.key3, state.key1);
  const grace = page.locator('#reveal-grace');
  assert.match(await text(grace), new RegExp(`${state.key1.slice(0, 12)}… keeps working until`));
  await shot('rotated-new-key-shown-once');
  await closeReveal(state.key3, 'done');

  await page.locator(`tr[data-key-id="${state.key1Id}"][data-status="grace"]`).waitFor();
  const oldText = await text(old);
  assert.match(oldText, /Grace period/);
  assert.match(oldText, /Stops working/);
  assert.equal(await old.locator('.c-status time').getAttribute('datetime'), res.previous.grace_expires_at);
  assert.ok(Date.parse(res.previous.grace_expires_at) > Date.now(), 'grace end is in the future');
  assert.equal(await old.getByRole('button', { name: /^Rotate/ }).count(), 0, 'a key in grace cannot be rotated again');
  assert.equal(await old.getByRole('button', { name: /^Revoke/ }).count(), 1, 'a key in grace can be revoked');
  const fresh = row(state.key3.slice(0, 12));
  assert.match(await text(fresh), /Active/);
  assert.match(await text(fresh), /production-web/);

  const a = await verify(state.key1), b = await verify(state.key3);
  assert.equal(a.status, 200, JSON.stringify(a.body));
  assert.equal(a.body.status, 'grace');
  assert.equal(b.status, 200, JSON.stringify(b.body));
  assert.equal(b.body.status, 'active');
  state.key3Id = res.api_key.id;
  await shot('list-after-rotate');
});

step('revoke asks first; cancelling keeps the key working', async () => {
  const r = row(state.key3.slice(0, 12));
  await r.getByRole('button', { name: /^Revoke/ }).click();
  const confirm = page.locator('#confirm-dialog');
  assert.equal(await confirm.evaluate((d) => d.open), true);
  assert.match(await text(confirm), /stops working immediately/i);
  assert.match(await text(confirm), /no grace period/i);
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Cancel', 'the safe choice has focus');
  await shot('revoke-confirm');
  await page.keyboard.press('Enter');
  assert.equal(await confirm.evaluate((d) => d.open), false);
  assert.equal((await verify(state.key3)).status, 200);
  assert.match(await text(r), /Active/);
});

step('revoke after confirming: row shows revoked and the key gets 401 key_revoked at once', async () => {
  const r = row(state.key3.slice(0, 12));
  await r.getByRole('button', { name: /^Revoke/ }).click();
  await page.locator('#confirm-dialog').getByRole('button', { name: 'Revoke key' }).click();
  await page.locator(`tr[data-key-id="${state.key3Id}"][data-status="revoked"]`).waitFor();
  const t = await text(r);
  assert.match(t, /Revoked/);
  assert.equal(await r.getByRole('button').count(), 0, 'no actions on a revoked key');
  const v = await verify(state.key3);
  assert.equal(v.status, 401);
  assert.equal(v.body.error.code, 'key_revoked');
  assert.equal((await verify(state.key1)).status, 200, 'the old key is still in its grace period');
  assert.equal((await verify(state.key2)).status, 200, "another project's key is untouched");
  await shot('revoked-next-to-active-and-grace');

  // A key in its grace period can be revoked too, and stops working at once.
  const old = row(state.key1.slice(0, 12));
  await old.getByRole('button', { name: /^Revoke/ }).click();
  await page.locator('#confirm-dialog').getByRole('button', { name: 'Revoke key' }).click();
  await page.locator(`tr[data-key-id="${state.key1Id}"][data-status="revoked"]`).waitFor();
  const w = await verify(state.key1);
  assert.equal(w.status, 401);
  assert.equal(w.body.error.code, 'key_revoked');
  assert.equal((await verify(state.key2)).status, 200);
  const statuses = await page.locator('tr[data-key-id]').evaluateAll((rs) => rs.map((x) => x.dataset.status).sort());
  assert.deepEqual(statuses, ['active', 'revoked', 'revoked']);
  await shot('grace-key-revoked-too');
});

step('API errors are shown in words, never swallowed', async () => {
  // A failing list call (simulated in the browser) is explained in a banner with a way to retry.
  await page.route('**/admin/v1/keys', (route) => route.fulfill({
    status: 503, contentType: 'application/json',
    body: JSON.stringify({ error: { code: 'storage_unavailable', message: 'Key storage is unavailable right now.' } }),
  }));
  await page.getByRole('button', { name: 'Refresh' }).click();
  const banner = page.locator('#banner');
  await banner.waitFor();
  assert.match(await text(banner), /Could not load keys\. Key storage is unavailable right now\. \(storage_unavailable, HTTP 503\)/);
  await shot('api-error-banner');
  await page.unroute('**/admin/v1/keys');
  await banner.getByRole('button', { name: 'Try again' }).click();
  await banner.waitFor({ state: 'hidden' });

  // A real conflict from the worker: the key was revoked elsewhere while this page still showed it active.
  const r = row(state.key2.slice(0, 12));
  const id = await r.getAttribute('data-key-id');
  assert.equal((await admin('POST', `/admin/v1/keys/${id}/revoke`)).status, 200);
  assert.equal(await r.getAttribute('data-status'), 'active', 'the page has not refreshed yet');
  await r.getByRole('button', { name: /^Rotate/ }).click();
  const confirm = page.locator('#confirm-dialog');
  await confirm.getByRole('button', { name: 'Rotate key' }).click();
  const error = confirm.locator('.form-error');
  await error.waitFor();
  assert.match(await text(error), /Only active keys can be rotated.*\(key_not_rotatable\)/);
  assert.equal(await page.locator('#reveal-dialog').evaluate((d) => d.open), false, 'no key was shown');
  await shot('rotate-conflict-error');
  await page.keyboard.press('Escape');
  await page.locator(`tr[data-key-id="${id}"][data-status="revoked"]`).waitFor();
});

step('a revoke reason from the API is shown on the row', async () => {
  // The admin API may carry "revoked_reason" on revoked keys; add one to the real response.
  await page.route('**/admin/v1/keys', async (route) => {
    const res = await route.fetch();
    const json = await res.json();
    for (const k of json.keys) if (k.status === 'revoked') k.revoked_reason = 'Leaked in a CI log';
    await route.fulfill({ response: res, json });
  });
  await page.getByRole('button', { name: 'Refresh' }).click();
  const r = row(state.key3.slice(0, 12));
  await r.getByText('Reason: Leaked in a CI log').waitFor();
  assert.equal(await page.getByText('Reason: Leaked in a CI log').count(), 3);
  await page.unroute('**/admin/v1/keys');
  await page.getByRole('button', { name: 'Refresh' }).click();
  await r.getByText('Reason: Leaked in a CI log').waitFor({ state: 'detached' });
});

step('a token that stops being accepted sends the tab back to sign in', async () => {
  await page.evaluate(() => sessionStorage.setItem('lumiqtrace.adminToken', 'a-stale-admin-token'));
  await page.reload();
  const error = page.locator('#signin-error');
  await error.waitFor();
  assert.match(await text(error), /no longer accepted/i);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  assert.equal(await page.locator('#app-view').isVisible(), false);
  await page.getByLabel('Admin token', { exact: true }).fill(ADMIN_TOKEN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await row(state.key2.slice(0, 12)).waitFor();
});

step('sign out forgets the token', async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('Admin token', { exact: true }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  assert.equal(await page.locator('#keys-list tr').count(), 0, 'no keys left on the page');
  await page.reload();
  await page.getByLabel('Admin token', { exact: true }).waitFor();
  assert.equal(await page.locator('#app-view').isVisible(), false);
  await shot('signed-out');
});

step('the page raised no script errors and no CSP violations', async () => {
  const csp = await page.evaluate(() => window.__cspViolations);
  assert.deepEqual(csp, []);
  assert.deepEqual(problems, []);
});

// A separate worker with a short grace period, to see the "expired" state in the list.
test('a rotated key shows as expired once its grace period ends', async (t) => {
  if (broken) { t.skip('an earlier step failed'); return; }
  const short = await startWorker({ vars: { ADMIN_TOKEN, ROTATION_GRACE_SECONDS: '3' } });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 720 }, locale: 'en-US', timezoneId: 'UTC', reducedMotion: 'reduce' });
  try {
    const call = async (method, path, body) => {
      const res = await fetch(`${short.url}${path}`, { method, body: body && JSON.stringify(body),
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) } });
      return res.json();
    };
    const check = async (key) => {
      const res = await fetch(`${short.url}/v1/auth/verify`, { headers: { authorization: `Bearer ${key}` } });
      return { status: res.status, body: await res.json() };
    };
    await call('POST', '/admin/v1/projects', { id: 'mobile-api', name: 'Mobile API' });
    const { key, api_key: created } = await call('POST', '/admin/v1/projects/mobile-api/keys', { name: 'production-ios' });
    const p = await ctx.newPage();
    watch(p);
    await p.goto(`${short.url}/admin/`);
    await p.getByLabel('Admin token', { exact: true }).fill(ADMIN_TOKEN);
    await p.getByRole('button', { name: 'Sign in' }).click();
    const oldRow = p.locator(`tr[data-key-id="${created.id}"]`);
    await oldRow.getByRole('button', { name: /^Rotate/ }).click();
    await p.locator('#confirm-dialog').getByRole('button', { name: 'Rotate key' }).click();
    const fresh = (await p.locator('#revealed-key').textContent()).trim();
    assert.match(fresh, KEY_RE);
    await p.getByRole('button', { name: /Done/ }).click();
    await p.locator(`tr[data-key-id="${created.id}"][data-status="grace"]`).waitFor();
    assert.equal((await check(key)).status, 200);

    await p.waitForTimeout(3500);
    await p.getByRole('button', { name: 'Refresh' }).click();
    await p.locator(`tr[data-key-id="${created.id}"][data-status="expired"]`).waitFor();
    const t = (await oldRow.innerText()).replace(/\s+/g, ' ');
    assert.match(t, /Expired/);
    assert.match(t, /Stopped working/);
    assert.equal(await oldRow.getByRole('button').count(), 0, 'no actions on an expired key');
    const v = await check(key);
    assert.equal(v.status, 401);
    assert.equal(v.body.error.code, 'key_expired');
    assert.equal((await check(fresh)).status, 200);
    await p.screenshot({ path: `${SHOTS}${String(++shotNo).padStart(2, '0')}-expired-after-grace.png`, fullPage: true });
    assert.deepEqual(problems, [], 'no script errors on the page');
  } finally {
    await ctx.close();
    await short.dispose();
  }
});

// Organizations: the operator's switcher and Admin tokens section, and an organization admin's view.
test('organizations: the operator switches organizations and manages admin tokens; an org admin sees only theirs', async (t) => {
  if (broken) { t.skip('an earlier step failed'); return; }
  const w = await startWorker({ vars: { ADMIN_TOKEN } });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: 'en-US', timezoneId: 'UTC', reducedMotion: 'reduce' });
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: w.url });
  const snap = (p, name) => p.screenshot({ path: `${SHOTS}${String(++shotNo).padStart(2, '0')}-${name}.png`, fullPage: true });
  const call = async (method, path, body, token = ADMIN_TOKEN) => {
    const res = await fetch(`${w.url}${path}`, { method, body: body && JSON.stringify(body),
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) } });
    return { status: res.status, body: await res.json() };
  };
  try {
    for (const [org, name, project] of [['acme', 'Acme Corp', 'acme-web'], ['globex', 'Globex', 'globex-web']]) {
      assert.equal((await call('POST', '/admin/v1/orgs', { id: org, name })).status, 201);
      assert.equal((await call('POST', '/admin/v1/projects', { id: project, name: project, org_id: org })).status, 201);
      assert.equal((await call('POST', `/admin/v1/projects/${project}/keys`, { name: `${org}-prod` })).status, 201);
    }
    const p = await ctx.newPage();
    watch(p);
    await p.goto(`${w.url}/admin/`);
    await p.getByLabel('Admin token', { exact: true }).fill(ADMIN_TOKEN);
    await p.getByRole('button', { name: 'Sign in' }).click();

    // The operator: a switcher; each organization shows its own projects only.
    const switcher = p.getByLabel('Organization');
    await switcher.waitFor();
    const options = await switcher.locator('option').allInnerTexts();
    assert.deepEqual(options, ['Default (default)', 'Acme Corp (acme)', 'Globex (globex)']);
    await switcher.selectOption('acme');
    await p.locator('section[data-project="acme-web"]').waitFor();
    assert.equal(await p.locator('section[data-project="globex-web"]').count(), 0);
    await switcher.selectOption('globex');
    await p.locator('section[data-project="globex-web"]').waitFor();
    assert.equal(await p.locator('section[data-project="acme-web"]').count(), 0);
    await switcher.selectOption('acme');
    await p.locator('section[data-project="acme-web"]').waitFor();

    // Admin tokens: create (shown once, with copy), listed by prefix only.
    const section = p.locator('#admin-tokens');
    assert.equal(await section.isVisible(), true);
    await section.getByText('No admin tokens for Acme Corp yet.').waitFor();
    await section.getByRole('button', { name: 'Create admin token' }).click();
    await p.getByLabel('Token name').fill('acme-admins');
    await p.locator('#admin-token-dialog').getByRole('button', { name: 'Create token' }).click();
    const reveal = p.locator('#admin-token-reveal');
    await reveal.locator('#revealed-admin-token').waitFor();
    const token = (await reveal.locator('#revealed-admin-token').textContent()).trim();
    assert.match(token, /^lqta_[0-9a-f]{64}$/);
    assert.match(await text(reveal), /will not be shown again/i);
    await reveal.getByRole('button', { name: 'Copy' }).click();
    await reveal.getByRole('button', { name: 'Copied' }).waitFor();
    assert.equal(await p.evaluate(() => navigator.clipboard.readText()), token);
    await snap(p, 'admin-token-created');
    await reveal.getByRole('button', { name: /Done/ }).click();
    const tokenRow = section.locator('tr[data-admin-token-id]');
    await tokenRow.waitFor();
    assert.match(await text(tokenRow), new RegExp(`acme-admins ${token.slice(0, 13)}… .* Active`));
    assert.ok(!(await p.content()).includes(token.slice(13)), 'the token left the page with its dialog');
    await snap(p, 'admin-tokens-section');

    // The organization admin: its organization's name in the header, no switcher, no tokens section.
    await p.getByRole('button', { name: 'Sign out' }).click();
    await p.getByLabel('Admin token', { exact: true }).waitFor();
    assert.equal(await p.locator('#admin-tokens-list *').count(), 0, "sign out forgets the operator's admin tokens");
    assert.equal(await p.locator('#org-switch option').count(), 0, 'and its organizations');
    assert.ok(!(await p.content()).toLowerCase().includes('globex'), 'nothing of another organization is left, even hidden');
    await p.getByLabel('Admin token', { exact: true }).fill(token);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.locator('section[data-project="acme-web"]').waitFor();
    assert.equal(await text(p.locator('header #org-current')), 'Organization: Acme Corp');
    assert.equal(await p.locator('header #org-current').isVisible(), true);
    assert.equal(await p.locator('#org-switcher').isVisible(), false);
    assert.equal(await p.locator('#admin-tokens').isVisible(), false);
    assert.equal(await p.locator('section[data-project="globex-web"]').count(), 0);
    assert.equal(await p.locator('tr[data-key-id]').count(), 1);
    const html = (await p.content()).toLowerCase();
    assert.ok(!html.includes('globex'), "no other organization's name, project or key on the page, even hidden");
    assert.deepEqual(await p.locator('#org-switch option').allInnerTexts(), ['Acme Corp (acme)'], 'its own organization only');
    assert.equal(await p.locator('#admin-tokens-list *').count(), 0);
    // It creates a project in its own organization.
    await p.getByRole('button', { name: 'New project' }).click();
    await p.getByLabel('Project name').fill('Acme API');
    await p.locator('#project-dialog').getByRole('button', { name: 'Create project' }).click();
    await p.locator('section[data-project="acme-api"]').waitFor();
    assert.equal((await call('GET', '/admin/v1/projects?org_id=acme')).body.projects.some((x) => x.id === 'acme-api'), true);
    await snap(p, 'org-admin-view');

    // Back as the operator: revoke the token, behind a confirmation; it stops working at once.
    await p.getByRole('button', { name: 'Sign out' }).click();
    await p.getByLabel('Admin token', { exact: true }).fill(ADMIN_TOKEN);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.getByLabel('Organization').selectOption('acme');
    await tokenRow.getByRole('button', { name: 'Revoke admin token acme-admins' }).click();
    const confirmDialog = p.locator('#confirm-dialog');
    assert.match(await text(confirmDialog), /stops working immediately/);
    await confirmDialog.getByRole('button', { name: 'Revoke token' }).click();
    await section.locator('tr[data-status="revoked"]').waitFor();
    assert.equal((await call('GET', '/admin/v1/projects', null, token)).status, 401);
    await snap(p, 'admin-token-revoked');
    assert.deepEqual(problems, [], 'no script errors on the page');
  } finally {
    await ctx.close();
    await w.dispose();
  }
});

// Issue 19 on the page: environment badges and filter, rotation policy and "Rotation due", last use,
// the usage chart, and the safe-to-revoke hint, against a worker that reports usage every 0.2 s and
// calls a key in grace quiet after 1 s.
test('key lifecycle: environments, rotation due, last used, usage chart, safe to revoke', async (t) => {
  if (broken) { t.skip('an earlier step failed'); return; }
  const w = await startWorker({ vars: { ADMIN_TOKEN, USAGE_FLUSH_SECONDS: '0.2', USAGE_QUIET_SECONDS: '1' } });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US', timezoneId: 'UTC', reducedMotion: 'reduce' });
  const issues = [];
  try {
    const call = async (method, path, body) => {
      const res = await fetch(`${w.url}${path}`, { method, body: body && JSON.stringify(body),
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) } });
      return res.json();
    };
    const check = (key) => fetch(`${w.url}/v1/auth/verify`, { headers: { authorization: `Bearer ${key}` } });
    await call('POST', '/admin/v1/projects', { id: 'shop', name: 'Shop' });
    const web = await call('POST', '/admin/v1/projects/shop/keys', { name: 'web', environment: 'production' });
    const idle = await call('POST', '/admin/v1/projects/shop/keys', { name: 'idle', environment: 'staging' });
    // An aged key, as an older deployment would have stored it (the list reads KV).
    const hash = 'cd'.repeat(32);
    const stored = JSON.parse(await w.kv.get(`key/${await w.kv.get(`id/${idle.api_key.id}`)}`));
    await w.kv.put(`key/${hash}`, JSON.stringify({ ...stored, id: 'key_aged', hash, name: 'aged', prefix: 'lqt_cdcdcdcd', created_at: Date.now() - 120 * 86_400_000 }));
    await w.kv.put('id/key_aged', hash);
    assert.equal((await check(web.key)).status, 200);
    // Reported within USAGE_FLUSH_SECONDS: wait for the API to show it before the page loads.
    for (let i = 0; i < 50 && !(await call('GET', `/admin/v1/keys/${web.api_key.id}`)).last_used_at; i++) await new Promise((ok) => setTimeout(ok, 100));

    const p = await ctx.newPage();
    p.on('pageerror', (e) => issues.push(`pageerror: ${e.message}`));
    await p.goto(`${w.url}/admin/`);
    await p.getByLabel('Admin token', { exact: true }).fill(ADMIN_TOKEN);
    await p.getByRole('button', { name: 'Sign in' }).click();
    const r = (id) => p.locator(`tr[data-key-id="${id}"]`);
    await r(web.api_key.id).waitFor();
    const rowText = async (id) => (await r(id).innerText()).replace(/\s+/g, ' ');
    assert.match(await rowText(web.api_key.id), /Last used (just now|1 minute ago)/);
    assert.equal(await r(web.api_key.id).locator('[data-env]').textContent(), 'production');
    assert.match(await rowText(idle.api_key.id), /Never used/);
    assert.doesNotMatch(await rowText('key_aged'), /Rotation due/, 'no policy yet');

    // Rotation policy: 90 days, suggested by the dialog.
    await p.getByRole('button', { name: /Rotation policy of Shop/ }).click();
    assert.equal(await p.getByLabel('Rotate keys every (days)').inputValue(), '90');
    await p.locator('#policy-dialog').getByRole('button', { name: 'Save policy' }).click();
    await p.getByRole('button', { name: /Rotate every 90 days/ }).waitFor();
    assert.equal((await call('GET', '/admin/v1/projects')).projects[0].rotation_period_days, 90);
    await r('key_aged').getByText('Rotation due').waitFor();
    assert.doesNotMatch(await rowText(web.api_key.id), /Rotation due/);
    await p.screenshot({ path: `${SHOTS}${String(++shotNo).padStart(2, '0')}-lifecycle-policy.png`, fullPage: true });

    // Filters: rotation due only, then one environment.
    await p.getByLabel('Rotation due only').check();
    assert.deepEqual(await p.locator('tr[data-key-id]').evaluateAll((rs) => rs.map((x) => x.dataset.keyId)), ['key_aged']);
    await p.getByLabel('Rotation due only').uncheck();
    await p.getByLabel('Environment', { exact: true }).selectOption('production');
    assert.deepEqual(await p.locator('tr[data-key-id]').evaluateAll((rs) => rs.map((x) => x.dataset.keyId)), [web.api_key.id]);
    await p.getByLabel('Environment', { exact: true }).selectOption('');

    // A key created in the dialog with a custom environment.
    await p.getByRole('button', { name: 'Create API key' }).click();
    await p.getByLabel('Key name').fill('canary');
    await p.locator('#key-env').selectOption('custom');
    await p.getByLabel('Custom environment').fill('EU-Canary');
    await p.locator('#key-dialog').getByRole('button', { name: 'Create key' }).click();
    await p.locator('#revealed-key').waitFor();
    await p.getByRole('button', { name: /Done/ }).click();
    await p.locator('tr[data-key-id] [data-env="eu-canary"]').waitFor();

    // The usage chart: 30 days, today's bar counts the verification.
    await r(web.api_key.id).getByRole('button', { name: /^Usage of web/ }).click();
    const chart = p.locator(`tr[data-usage-of="${web.api_key.id}"] svg.usage-chart`);
    await chart.waitFor();
    assert.equal(await chart.locator('g.day').count(), 30);
    const today = new Date().toISOString().slice(0, 10);
    assert.equal(await chart.locator(`g.day[data-date="${today}"]`).getAttribute('data-granted'), '1');
    assert.match(await chart.getAttribute('aria-label'), /^1 granted and 0 refused/);
    await p.screenshot({ path: `${SHOTS}${String(++shotNo).padStart(2, '0')}-lifecycle-usage-chart.png`, fullPage: true });

    // Rotate "web": its grace row shows the old key's last use, then "safe to revoke" once quiet.
    await r(web.api_key.id).getByRole('button', { name: /^Rotate/ }).click();
    await p.locator('#confirm-dialog').getByRole('button', { name: 'Rotate key' }).click();
    await p.locator('#revealed-key').waitFor();
    await p.getByRole('button', { name: /Done/ }).click();
    await p.locator(`tr[data-key-id="${web.api_key.id}"][data-status="grace"]`).waitFor();
    assert.match(await rowText(web.api_key.id), /Last used/);
    const safe = r(web.api_key.id).getByRole('button', { name: /^Revoke now web/ });
    for (let i = 0; i < 30 && !(await safe.count()); i++) {
      await p.waitForTimeout(200);
      await p.getByRole('button', { name: 'Refresh' }).click();
    }
    assert.match(await rowText(web.api_key.id), /looks safe to revoke now/);
    await p.screenshot({ path: `${SHOTS}${String(++shotNo).padStart(2, '0')}-lifecycle-safe-to-revoke.png`, fullPage: true });
    await safe.click();
    const confirm = p.locator('#confirm-dialog');
    assert.match((await confirm.innerText()).replace(/\s+/g, ' '), /has seen no traffic lately.*last used/i);
    await confirm.getByRole('button', { name: 'Revoke key' }).click();
    await p.locator(`tr[data-key-id="${web.api_key.id}"][data-status="revoked"]`).waitFor();
    assert.equal((await check(web.key)).status, 401);
    assert.deepEqual(issues, []);
  } finally {
    await ctx.close();
    await w.dispose();
  }
});
