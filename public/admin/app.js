// Settings > API Keys. Talks only to this worker's admin API (same origin), with the admin token
// kept in sessionStorage (this tab only). A full key is shown once, then removed from the DOM.
'use strict';
(() => {
  const TOKEN = 'lumiqtrace.adminToken';
  const $ = (id) => document.getElementById(id);
  const on = (id, ev, fn) => $(id).addEventListener(ev, fn);
  const S = { token: sessionStorage.getItem(TOKEN), projects: [], keys: [], filter: '', focusKey: null, orgs: [], org: null };

  // h('tag', {attr, class, onclick}, ...children): builds DOM without innerHTML (names are user data).
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v);
    }
    for (const kid of kids.flat()) if (kid != null && kid !== false) el.append(kid);
    return el;
  }
  const btn = (label, cls, onclick, attrs) => h('button', { type: 'button', class: `btn ${cls}`, onclick, ...attrs }, label);

  // ---- API ----
  async function api(method, path, body, token = S.token) {
    const headers = { Authorization: `Bearer ${token}` };
    if (body) headers['Content-Type'] = 'application/json';
    let res, data = null;
    try {
      res = await fetch(path, { method, headers, body: body && JSON.stringify(body), cache: 'no-store' });
    } catch {
      throw { status: 0, code: 'network_error' };
    }
    try { data = await res.json(); } catch { /* not JSON */ }
    if (res.ok) return data;
    const e = (data && data.error) || {};
    throw { status: res.status, code: e.code || `http_${res.status}`, message: e.message || res.statusText };
  }
  const WORDS = {
    admin_unauthorized: 'The admin token was not accepted. Check the ADMIN_TOKEN secret of this deployment.',
    project_exists: 'A project with this ID already exists. Choose a different ID.',
    org_not_found: 'That organization no longer exists. Refresh and choose another one.',
    admin_token_not_found: 'That admin token no longer exists. The list has been refreshed.',
    invalid_project_id: 'Project IDs use lowercase letters, digits and hyphens, start with a letter or digit, and have at most 63 characters.',
    invalid_name: 'Names must be 1 to 64 printable characters.',
    project_not_found: 'That project no longer exists. Refresh and choose another one.',
    key_not_found: 'That key no longer exists. The list has been refreshed.',
    key_not_rotatable: 'Only active keys can be rotated, and this one no longer is. The list has been refreshed.',
    network_error: 'Could not reach the admin API. Check your connection and try again.',
    invalid_environment: 'Environments are development, staging, production, or a label of up to 32 lowercase letters, digits and hyphens.',
    invalid_expires_at: 'Choose a valid expiry date.',
    invalid_rotation_period: 'A rotation period is a whole number of days from 1 to 3650.',
  };
  const words = (e) => `${WORDS[e.code] || e.message || 'Something went wrong.'} (${e.code}${e.status >= 500 ? `, HTTP ${e.status}` : ''})`;

  // ---- formatting ----
  const dtf = (o) => new Intl.DateTimeFormat(undefined, o);
  const fDate = dtf({ dateStyle: 'medium' });
  const t = { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', timeZoneName: 'short' };
  const fThisYear = dtf(t), fOtherYear = dtf({ ...t, year: 'numeric' });
  const fTime = { format: (d) => (d.getFullYear() === new Date().getFullYear() ? fThisYear : fOtherYear).format(d) };
  const fmt = (iso, f) => { const d = new Date(iso); return iso && !isNaN(d) ? f.format(d) : '—'; };
  function rel(iso) {
    const diff = Math.round((Date.parse(iso) - Date.now()) / 1000), s = Math.abs(diff), m = Math.floor((s % 3600) / 60);
    const v = s < 60 ? `${s} s` : s < 3600 ? `${Math.round(s / 60)} min`
      : s < 172800 ? `${Math.floor(s / 3600)} h${m ? ` ${m} min` : ''}` : `${Math.round(s / 86400)} days`;
    return diff < 0 ? `${v} ago` : `in ${v}`;
  }
  const timeEl = (iso, f) => h('time', { datetime: iso, title: iso }, fmt(iso, f));
  const statusOf = (k) => ((k.status === 'grace' || k.status === 'active') && Date.parse(workingUntil(k)) <= Date.now() ? 'expired' : k.status);
  const LABEL = { active: 'Active', grace: 'Grace period', expired: 'Expired', revoked: 'Revoked' };
  const projectName = (id) => (S.projects.find((p) => p.id === id) || { name: id }).name;
  const plural = (n) => `${n} ${n === 1 ? 'key' : 'keys'}`;

  let toastTimer;
  function toast(msg) {
    $('toast').textContent = msg; $('toast').classList.add('show');
    clearTimeout(toastTimer); toastTimer = setTimeout(() => $('toast').classList.remove('show'), 3500);
  }
  function showError(form, e) {
    const p = form.querySelector('.form-error');
    p.textContent = typeof e === 'string' ? e : words(e); p.hidden = false;
  }
  // Runs an API call from a dialog form: button disabled meanwhile, errors shown in the form.
  async function submit(form, fn) {
    const b = form.querySelector('[type=submit]');
    form.querySelector('.form-error').hidden = true; b.disabled = true;
    try { await fn(); } catch (e) { if (!tokenRejected(e)) showError(form, e); } finally { b.disabled = false; }
  }

  // ---- session ----
  function showView(signedIn) {
    $('signin-view').hidden = signedIn; $('app-view').hidden = !signedIn; $('session').hidden = !signedIn;
  }
  function signOut(note, error) {
    sessionStorage.removeItem(TOKEN);
    Object.assign(S, { token: null, projects: [], keys: [], filter: '', orgs: [], org: null });
    document.querySelectorAll('dialog[open]').forEach(shut);
    // Nothing of the session stays in the page, hidden or not: the next sign-in may be another organization's.
    ['keys-list', 'admin-tokens-list', 'org-switch', 'org-name', 'admin-token-slot', 'admin-token-reveal-context'].forEach((id) => $(id).replaceChildren());
    $('signin-form').reset();
    $('signin-error').textContent = error || ''; $('signin-error').hidden = !error;
    $('signin-note').textContent = note || ''; $('signin-note').hidden = !note;
    showView(false); $('token').focus();
  }
  const tokenRejected = (e) => e.code === 'admin_unauthorized' && S.token && (signOut(null, 'Your admin token is no longer accepted. Sign in again.'), true);
  on('signin-form', 'submit', async (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget, token = $('token').value.trim(), b = form.querySelector('[type=submit]'), err = $('signin-error');
    $('signin-note').hidden = true;
    if (!token) { err.textContent = 'Enter the admin token to continue.'; err.hidden = false; return; }
    b.disabled = true; b.textContent = 'Signing in…';
    try {
      await api('GET', '/admin/v1/projects', null, token);
      S.token = token; sessionStorage.setItem(TOKEN, token);
      err.hidden = true; form.reset(); showView(true); $('main').focus();
      await loadOrgs();
      await load();
    } catch (e) {
      err.textContent = e.code === 'admin_unauthorized'
        ? 'That admin token is not valid for this deployment. Check the ADMIN_TOKEN secret and try again.' : words(e);
      err.hidden = false; $('token').select();
    } finally { b.disabled = false; b.textContent = 'Sign in'; }
  });
  on('sign-out', 'click', () => signOut('You have signed out. The admin token was removed from this tab.'));

  // ---- list ----
  async function load() {
    $('keys-list').setAttribute('aria-busy', 'true');
    try {
      const [p, k] = await Promise.all([api('GET', `/admin/v1/projects${orgQuery()}`), api('GET', '/admin/v1/keys')]);
      S.projects = p.projects.slice().sort((a, b) => a.name.localeCompare(b.name));
      S.keys = k.keys.filter((key) => S.projects.some((x) => x.id === key.project_id));
      loadAdminTokens();
      $('banner').hidden = true;
      render();
    } catch (e) {
      if (tokenRejected(e)) return;
      $('banner').replaceChildren(h('span', null, `Could not load keys. ${words(e)}`), btn('Try again', 'btn-sm', load));
      $('banner').hidden = false;
    } finally { $('keys-list').setAttribute('aria-busy', 'false'); }
  }

  let render = function () {
    const list = $('keys-list'), a = document.activeElement;
    // Re-rendering replaces the buttons: keep keyboard focus on the same action if it still exists.
    const refocus = a && list.contains(a) && a.dataset.action ? `[data-action="${a.dataset.action}"][data-key="${a.dataset.key}"]` : null;
    if (!S.projects.some((p) => p.id === S.filter)) S.filter = '';
    $('filter-project').replaceChildren(h('option', { value: '' }, 'All projects'),
      ...S.projects.map((p) => h('option', { value: p.id }, `${p.name} (${p.id})`)));
    $('filter-project').value = S.filter;

    const keys = S.keys.filter((k) => !S.filter || k.project_id === S.filter).filter(lifecycleFilter);
    const n = (s) => keys.filter((k) => statusOf(k) === s).length;
    $('summary').textContent = S.projects.length
      ? `${plural(keys.length)} · ${n('active')} active${n('grace') ? ` · ${n('grace')} in grace period` : ''}` : '';

    if (!S.projects.length) {
      list.replaceChildren(h('div', { class: 'card empty empty-big' },
        h('h3', null, 'No projects yet'),
        h('p', null, 'Keys belong to a project. Create a project for each app or service that sends traces, such as a web app or a data pipeline, then create a key for it.'),
        btn('Create your first project', 'btn-primary', () => openProject())));
    } else {
      const groups = S.projects.filter((p) => !S.filter || p.id === S.filter);
      for (const k of keys) if (!groups.some((p) => p.id === k.project_id)) groups.push({ id: k.project_id, name: k.project_id });
      list.replaceChildren(...groups.map((p) => group(p, keys.filter((k) => k.project_id === p.id))));
    }
    if (refocus && list.querySelector(refocus)) list.querySelector(refocus).focus();
  };

  function group(p, keys) {
    return h('section', { class: 'card group', 'aria-labelledby': `g-${p.id}`, 'data-project': p.id },
      h('div', { class: 'group-head' },
        h('h3', { id: `g-${p.id}` }, p.name), h('code', null, p.id), h('span', { class: 'count' }, plural(keys.length)),
        policyControl(p),
        btn('Create key', 'btn-sm', () => openKey(p.id), { 'data-action': 'create', 'data-key': p.id, 'aria-label': `Create key in ${p.name}` })),
      keys.length ? h('table', null,
        h('caption', { class: 'vh' }, `API keys in project ${p.name}`),
        h('colgroup', null, ['name', 'key', 'created', 'status', 'actions'].map((c) => h('col', { class: `w-${c}` }))),
        h('thead', null, h('tr', null, ['Name', 'Key prefix', 'Created', 'Status'].map((c) => h('th', { scope: 'col' }, c)),
          h('th', { scope: 'col' }, h('span', { class: 'vh' }, 'Actions')))),
        h('tbody', null, keys.map((k) => row(k, p))))
        : h('p', { class: 'empty' }, 'No keys in this project yet. Create one to start sending traces from the SDK.'));
  }

  function row(k, p) {
    const st = statusOf(k), live = st === 'active' || st === 'grace';
    const detail = (cls, ...kids) => h('span', { class: `detail ${cls}` }, ...kids);
    const details = [];
    if (st === 'grace') {
      details.push(detail('warn', 'Stops working ', h('span', { 'data-rel': k.grace_expires_at }, rel(k.grace_expires_at))),
        detail('', timeEl(k.grace_expires_at, fTime)));
    } else if (st === 'expired') details.push(detail('', 'Stopped working ', timeEl(workingUntil(k), fTime)));
    else if (st === 'revoked') {
      details.push(detail('', 'Revoked ', timeEl(k.revoked_at, fTime)));
      if (k.revoked_reason) details.push(detail('', `Reason: ${k.revoked_reason}`));
    } else if (k.rotated_from) {
      const old = S.keys.find((x) => x.id === k.rotated_from);
      if (old) details.push(detail('', `Replaces ${old.prefix}…`));
    }
    const label = `${k.name} (${k.prefix}…)`, attrs = (action) => ({ 'data-action': action, 'data-key': k.id, 'aria-label': `${action === 'rotate' ? 'Rotate' : 'Revoke'} ${label}` });
    details.push(...lifecycleDetails(k, st));
    const actions = [
      live && usageButton(k),
      st === 'active' && btn('Rotate', 'btn-sm', () => confirmRotate(k), attrs('rotate')),
      live && btn('Revoke', 'btn-sm btn-ghost-danger', () => confirmRevoke(k), attrs('revoke')),
    ];
    return h('tr', { 'data-key-id': k.id, 'data-status': st, class: live ? null : 'inactive' },
      h('th', { scope: 'row' }, k.name, envBadge(k), h('span', { class: 'vh' }, ` in project ${p.name}`)),
      h('td', { class: 'c-key' }, h('code', null, `${k.prefix}…`)),
      h('td', { class: 'c-created' }, timeEl(k.created_at, fDate)),
      h('td', { class: 'c-status' }, h('span', { class: `badge b-${st}` }, LABEL[st] || st), details),
      h('td', { class: 'c-actions' }, live ? actions : h('span', { class: 'none', 'aria-label': 'No actions' }, '—')));
  }

  // Keep "in 3 h 12 min" current, and re-render once when a grace period runs out.
  let graceCount = 0;
  setInterval(() => {
    if (!S.token) return;
    const g = S.keys.filter((k) => statusOf(k) === 'grace').length;
    if (g < graceCount) render();
    graceCount = g;
    document.querySelectorAll('[data-rel]').forEach((el) => { el.textContent = rel(el.dataset.rel); });
  }, 5000);
  on('filter-project', 'change', (e) => { S.filter = e.target.value; render(); });
  on('refresh', 'click', load);

  // ---- dialogs ----
  document.addEventListener('click', (e) => { const b = e.target.closest('[data-close]'); if (b) shut(b.closest('dialog')); });
  const validName = (s) => s.length >= 1 && s.length <= 64 && !/[\u0000-\u001f\u007f]/.test(s);
  function open(dialog, focus) {
    const form = $(dialog).querySelector('form');
    if (form) { form.reset(); form.querySelector('.form-error').hidden = true; }
    $(dialog).showModal(); if (focus) focus.focus();
  }

  // New project (from the page, or from inside the Create key dialog).
  const slug = (s) => s.toLowerCase().normalize('NFKD').replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63);
  let projectThen = null, idTouched = false;
  function openProject(then) {
    projectThen = then || null; idTouched = false;
    open('project-dialog', $('project-name'));
  }
  on('project-name', 'input', () => { if (!idTouched) $('project-id').value = slug($('project-name').value); });
  on('project-id', 'input', () => { idTouched = true; });
  on('new-project', 'click', () => openProject());
  on('project-form', 'submit', (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget, name = $('project-name').value.trim(), id = $('project-id').value.trim();
    if (!validName(name)) return showError(form, 'Enter a project name of 1 to 64 characters.');
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(id)) return showError(form, WORDS.invalid_project_id);
    submit(form, async () => {
      const p = await api('POST', '/admin/v1/projects', { id, name, ...(isOperator() && S.org ? { org_id: S.org } : {}) });
      S.projects = S.projects.concat(p).sort((a, b) => a.name.localeCompare(b.name));
      $('project-dialog').close();
      toast(`Project “${p.name}” created.`);
      render();
      if (projectThen) projectThen(p.id);
      else document.querySelector(`[data-action="create"][data-key="${p.id}"]`)?.focus();
      load();
    });
  });

  // Create key
  function fillProjects(selected) {
    const sel = $('key-project'), none = !S.projects.length;
    sel.replaceChildren(...S.projects.map((p) => h('option', { value: p.id }, `${p.name} (${p.id})`)));
    if (selected) sel.value = selected;
    sel.disabled = none; $('key-no-project').hidden = !none;
  }
  function openKey(projectId) {
    open('key-dialog');
    fillProjects(projectId || S.filter);
    (S.projects.length ? $('key-name') : $('key-new-project')).focus();
  }
  on('new-key', 'click', () => openKey());
  on('key-new-project', 'click', () => openProject((id) => { fillProjects(id); $('key-name').focus(); }));
  on('key-form', 'submit', (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget, project = $('key-project').value, name = $('key-name').value.trim();
    if (!project) return showError(form, 'Choose a project first, or create one with “New project…”.');
    if (!validName(name)) return showError(form, 'Enter a key name of 1 to 64 characters, such as production-web.');
    if (keyOptions().environment === '') return showError(form, WORDS.invalid_environment);
    submit(form, async () => {
      const res = await api('POST', `/admin/v1/projects/${encodeURIComponent(project)}/keys`, { name, ...keyOptions() });
      $('key-dialog').close();
      reveal(res.key, res.api_key, null);
      load();
    });
  });

  // The one time a full key is shown. Closing the dialog (button or Esc) removes it from the DOM.
  function reveal(secret, view, previous) {
    const code = h('code', { id: 'revealed-key', tabindex: '0', 'aria-label': 'New API key' }, secret);
    const copy = btn('Copy', '', async () => {
      let ok = false;
      try { await navigator.clipboard.writeText(code.textContent); ok = true; } catch {
        getSelection().selectAllChildren(code);
        try { ok = document.execCommand('copy'); } catch { ok = false; }
      }
      copy.textContent = ok ? 'Copied' : 'Copy failed';
      $('copy-status').textContent = ok ? 'Key copied to the clipboard.' : 'Could not copy automatically. Select the key and copy it yourself.';
    });
    $('reveal-slot').replaceChildren(h('div', { class: 'secret' }, code, copy));
    $('copy-status').textContent = '';
    $('reveal-title').textContent = previous ? 'Key rotated: copy the new key' : 'API key created: copy it now';
    $('reveal-context').textContent = `${view.name} · project ${projectName(view.project_id)} · ${view.prefix}…`;
    $('reveal-grace').hidden = !previous;
    $('reveal-grace').replaceChildren(...(previous ? [`The previous key ${previous.prefix}… keeps working until `,
      h('strong', null, fmt(previous.grace_expires_at, fTime)), ` (${rel(previous.grace_expires_at)}). Deploy the new key before then.`] : []));
    S.focusKey = view.id;
    open('reveal-dialog', copy);
  }
  // A dialog's 'close' event comes a task after it closes, so the key is wiped before: by shut() for
  // the buttons and sign-out, by 'cancel' for Esc. The 'close' handler wipes again, whatever closed it.
  function forgetKey() {
    $('reveal-slot').replaceChildren();
    $('reveal-grace').replaceChildren();
    $('copy-status').textContent = '';
  }
  function shut(d) {
    if (d.id === 'reveal-dialog') forgetKey();
    if (d.id === 'admin-token-reveal') { $('admin-token-slot').replaceChildren(); }
    d.close();
  }
  on('reveal-dialog', 'cancel', forgetKey);
  on('reveal-dialog', 'close', () => {
    forgetKey();
    document.querySelector(`[data-key="${S.focusKey}"]`)?.focus();
  });

  // Rotate and revoke, each behind a confirmation.
  let confirmAction = null;
  function confirm(title, paras, okLabel, okClass, action) {
    $('confirm-title').textContent = title;
    $('confirm-body').replaceChildren(...paras.map((p) => h('p', null, p)));
    Object.assign($('confirm-ok'), { textContent: okLabel, className: `btn ${okClass}`, disabled: false });
    confirmAction = action;
    open('confirm-dialog');
  }
  on('confirm-form', 'submit', async (ev) => {
    ev.preventDefault();
    if (!confirmAction) return;
    await submit(ev.currentTarget, async () => {
      try { await confirmAction(); } catch (e) {
        // The key changed elsewhere: the action no longer applies, only Cancel is left.
        if (e.status === 404 || e.status === 409) { confirmAction = null; load(); }
        throw e;
      }
    });
    $('confirm-ok').disabled = !confirmAction;
  });
  const keyPath = (k, action) => `/admin/v1/keys/${encodeURIComponent(k.id)}/${action}`;
  function confirmRotate(k) {
    confirm(`Rotate “${k.name}”?`, [
      `A new key is created for ${k.name} in ${projectName(k.project_id)}. The current key ${k.prefix}… keeps working during a grace period (24 hours) so you can deploy the new one, then it stops working.`,
    ], 'Rotate key', 'btn-primary', async () => {
      const res = await api('POST', keyPath(k, 'rotate'));
      $('confirm-dialog').close();
      reveal(res.key, res.api_key, res.previous);
      load();
    });
  }
  function confirmRevoke(k) {
    confirm(`Revoke “${k.name}”?`, [
      h('span', null, h('strong', null, `${k.prefix}… stops working immediately.`), ' There is no grace period: any SDK or service still using it gets 401 Unauthorized right away and stops sending data to LumiqTrace.'),
      'This cannot be undone. To replace a key without downtime, use Rotate instead.',
    ], 'Revoke key', 'btn-danger', async () => {
      const v = await api('POST', keyPath(k, 'revoke'));
      $('confirm-dialog').close();
      toast(`“${v.name}” revoked. It no longer authenticates.`);
      await load();
      const th = document.querySelector(`tr[data-key-id="${v.id}"] th`);
      if (th) { th.tabIndex = -1; th.focus(); }
    });
  }

  // ---- key lifecycle (issue 19): expiry, environment, rotation policy, last use, usage ----
  function workingUntil(k) {
    const ends = [k.expires_at, k.grace_expires_at].filter(Boolean).sort((a, b) => Date.parse(a) - Date.parse(b));
    return ends[0] || null;
  }
  // "just now", "3 minutes ago", "2 hours ago", "5 days ago"
  function ago(iso) {
    const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    const unit = (n, w) => `${n} ${w}${n === 1 ? '' : 's'} ago`;
    if (s < 60) return 'just now';
    if (s < 3600) return unit(Math.floor(s / 60), 'minute');
    if (s < 172800) return unit(Math.floor(s / 3600), 'hour');
    return unit(Math.floor(s / 86400), 'day');
  }
  const envBadge = (k) => k.environment && h('span', { class: `badge b-env env-${['development', 'staging', 'production'].includes(k.environment) ? k.environment : 'custom'}`, 'data-env': k.environment }, k.environment);
  function lifecycleDetails(k, st) {
    const out = [], detail = (cls, ...kids) => h('span', { class: `detail ${cls}` }, ...kids);
    if (st === 'active' || st === 'grace') {
      out.push(detail('last-used', k.last_used_at ? h('span', { 'data-ago': k.last_used_at, title: k.last_used_at }, `Last used ${ago(k.last_used_at)}`) : 'Never used'));
    }
    if (st === 'active' && k.expires_at) out.push(detail('', 'Expires ', timeEl(k.expires_at, fTime)));
    if (k.rotation_due) out.push(detail('due', h('span', { class: 'badge b-due' }, 'Rotation due'), ' since ', timeEl(k.rotation_due_at, fDate)));
    if (st === 'grace' && k.safe_to_revoke) {
      out.push(detail('safe', 'No traffic lately: looks safe to revoke now. ',
        btn('Revoke now', 'btn-sm btn-danger', () => confirmSafeRevoke(k), { 'data-action': 'safe-revoke', 'data-key': k.id, 'aria-label': `Revoke now ${k.name} (${k.prefix}…)` })));
    }
    return out;
  }
  function confirmSafeRevoke(k) {
    const seen = k.last_used_at ? `It was last used ${ago(k.last_used_at)}.` : 'It has not been used since the rotation.';
    confirm(`Revoke “${k.name}” now?`, [
      h('span', null, h('strong', null, `${k.prefix}… has seen no traffic lately.`), ` ${seen} Revoking it ends its grace period now; anything still using it gets 401 Unauthorized.`),
    ], 'Revoke key', 'btn-danger', async () => {
      const v = await api('POST', keyPath(k, 'revoke'));
      $('confirm-dialog').close();
      toast(`“${v.name}” revoked. It no longer authenticates.`);
      await load();
    });
  }
  function keyOptions() {
    const out = {}, env = $('key-env').value, expires = $('key-expires').value;
    if (env === 'custom') {
      const label = $('key-env-custom').value.trim().toLowerCase();
      out.environment = /^[a-z0-9][a-z0-9-]{0,31}$/.test(label) ? label : '';
    } else if (env) out.environment = env;
    if (expires) out.expires_at = `${expires}T00:00:00Z`;
    return out;
  }
  on('key-env', 'change', () => { $('key-env-custom').hidden = $('key-env').value !== 'custom'; if (!$('key-env-custom').hidden) $('key-env-custom').focus(); });
  on('key-dialog', 'close', () => { $('key-env-custom').hidden = true; });

  // Filters: environment and rotation due, in the page (the list API takes the same ones).
  const lifecycleFilter = (k) => (!$('filter-env').value || k.environment === $('filter-env').value) && (!$('filter-due').checked || k.rotation_due);
  function fillEnvFilter() {
    const sel = $('filter-env'), current = sel.value;
    const envs = [...new Set(S.keys.map((k) => k.environment).filter(Boolean))].sort();
    sel.replaceChildren(h('option', { value: '' }, 'All environments'), ...envs.map((e) => h('option', { value: e }, e)));
    sel.value = envs.includes(current) ? current : '';
  }
  on('filter-env', 'change', render);
  on('filter-due', 'change', render);
  const renderList = render;
  render = () => { fillEnvFilter(); renderList(); };

  // A project's rotation policy.
  let policyProject = null;
  function policyControl(p) {
    const label = p.rotation_period_days ? `Rotate every ${p.rotation_period_days} days` : 'No rotation policy';
    return btn(label, 'btn-sm btn-quiet policy', () => {
      policyProject = p;
      open('policy-dialog', $('policy-days'));
      $('policy-days').value = p.rotation_period_days || 90;
    }, { 'data-action': 'policy', 'data-key': p.id, 'aria-label': `Rotation policy of ${p.name}: ${label}` });
  }
  on('policy-form', 'submit', (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget, raw = $('policy-days').value.trim(), days = raw === '' ? null : Number(raw);
    if (days !== null && !(Number.isInteger(days) && days >= 1 && days <= 3650)) return showError(form, WORDS.invalid_rotation_period);
    submit(form, async () => {
      const p = await api('PATCH', `/admin/v1/projects/${encodeURIComponent(policyProject.id)}`, { rotation_period_days: days });
      $('policy-dialog').close();
      toast(days ? `Keys in “${p.name}” are due for rotation after ${days} days.` : `“${p.name}” has no rotation policy.`);
      await load();
    });
  });

  // Usage: verifications per day for 30 days, as a bar chart (plain SVG) under the key's row.
  const SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, ...kids) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
    el.append(...kids);
    return el;
  }
  function usageButton(k) {
    return btn('Usage', 'btn-sm', () => toggleUsage(k), { 'data-action': 'usage', 'data-key': k.id, 'aria-expanded': 'false', 'aria-label': `Usage of ${k.name} (${k.prefix}…)` });
  }
  async function toggleUsage(k) {
    const tr = document.querySelector(`tr[data-key-id="${k.id}"]`), b = tr.querySelector('[data-action="usage"]');
    const shown = tr.nextElementSibling?.dataset.usageOf === k.id;
    if (shown) { tr.nextElementSibling.remove(); b.setAttribute('aria-expanded', 'false'); return; }
    try {
      const u = await api('GET', `/admin/v1/keys/${encodeURIComponent(k.id)}/usage`);
      tr.after(h('tr', { class: 'usage-row', 'data-usage-of': k.id }, h('td', { colspan: '5' }, usageChart(u))));
      b.setAttribute('aria-expanded', 'true');
    } catch (e) { if (!tokenRejected(e)) toast(`Could not load usage. ${words(e)}`); }
  }
  function usageChart(u) {
    const refused = (d) => Object.values(d.refused).reduce((a, b) => a + b, 0);
    const max = Math.max(1, ...u.days.map((d) => d.granted + refused(d)));
    const W = 12, GAP = 3, H = 60, total = u.days.reduce((a, d) => a + d.granted, 0), bad = u.days.reduce((a, d) => a + refused(d), 0);
    const summary = `${total} granted and ${bad} refused verifications in the last 30 days`;
    const bars = u.days.flatMap((d, i) => {
      const x = i * (W + GAP), g = Math.round((d.granted / max) * H), r = Math.round((refused(d) / max) * H);
      const tip = `${d.date}: ${d.granted} granted${refused(d) ? `, ${Object.entries(d.refused).filter(([, n]) => n).map(([c, n]) => `${n} ${c}`).join(', ')}` : ''}`;
      return [svg('g', { class: 'day', 'data-date': d.date, 'data-granted': d.granted, 'data-refused': refused(d) },
        svg('title', null, tip),
        svg('rect', { class: 'bg', x, y: 0, width: W, height: H }),
        svg('rect', { class: 'granted', x, y: H - g - r, width: W, height: g }),
        svg('rect', { class: 'refused', x, y: H - r, width: W, height: r }))];
    });
    const chart = svg('svg', { class: 'usage-chart', role: 'img', 'aria-label': summary, viewBox: `0 0 ${30 * (W + GAP) - GAP} ${H}`, width: 30 * (W + GAP) - GAP, height: H }, ...bars);
    return h('div', { class: 'usage' }, chart,
      h('p', { class: 'detail' }, `${summary}. `, u.last_used_at ? `Last used ${ago(u.last_used_at)}.` : 'Never used.'));
  }

  setInterval(() => document.querySelectorAll('[data-ago]').forEach((el) => { el.textContent = `Last used ${ago(el.dataset.ago)}`; }), 30000);


  // ---- organizations (the header, the operator's switcher, Admin tokens) ----
  // An organization admin token (lqta_…) sees its own organization only; the operator every one.
  const isOperator = () => !!S.token && !S.token.startsWith('lqta_');
  const orgQuery = () => (isOperator() && S.org ? `?org_id=${encodeURIComponent(S.org)}` : '');
  const orgName = () => (S.orgs.find((o) => o.id === S.org) || { name: S.org || '' }).name;
  async function loadOrgs() {
    try {
      S.orgs = (await api('GET', '/admin/v1/orgs')).orgs;
    } catch (e) { if (tokenRejected(e)) return; S.orgs = []; }
    if (isOperator() && !S.orgs.some((o) => o.id === 'default')) S.orgs.unshift({ id: 'default', name: 'Default' });
    if (!S.orgs.some((o) => o.id === S.org)) S.org = S.orgs.length ? S.orgs[0].id : null;
    renderOrgs();
  }
  function renderOrgs() {
    const op = isOperator();
    $('org-switcher').hidden = !op; $('org-current').hidden = op;
    $('who').textContent = op ? 'Signed in as operator' : 'Signed in with organization admin token';
    $('org-name').textContent = orgName();
    $('org-switch').replaceChildren(...S.orgs.map((o) => h('option', { value: o.id }, `${o.name} (${o.id})`)));
    if (S.org) $('org-switch').value = S.org;
    $('admin-tokens').hidden = !op;
  }
  on('org-switch', 'change', (e) => { S.org = e.target.value; S.filter = ''; renderOrgs(); load(); });

  async function loadAdminTokens() {
    if (!isOperator() || !S.org) { $('admin-tokens-list').replaceChildren(); return; }
    let tokens;
    try {
      tokens = (await api('GET', `/admin/v1/orgs/${encodeURIComponent(S.org)}/admin-tokens`)).admin_tokens;
    } catch (e) {
      // No such organization stored yet (default before its first project): no tokens.
      if (e.code === 'org_not_found') tokens = []; else { if (!tokenRejected(e)) toast(words(e)); return; }
    }
    $('admin-tokens-list').replaceChildren(tokens.length ? h('table', null,
      h('caption', { class: 'vh' }, `Admin tokens of ${orgName()}`),
      h('thead', null, h('tr', null, ['Name', 'Token prefix', 'Created', 'Status', ''].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, tokens.map(adminTokenRow)))
      : h('p', { class: 'empty' }, `No admin tokens for ${orgName()} yet.`));
  }
  function adminTokenRow(t) {
    const live = t.status === 'active';
    return h('tr', { 'data-admin-token-id': t.id, 'data-status': t.status, class: live ? null : 'inactive' },
      h('th', { scope: 'row' }, t.name),
      h('td', null, h('code', null, `${t.prefix}…`)),
      h('td', null, timeEl(t.created_at, fDate)),
      h('td', null, h('span', { class: `badge b-${live ? 'active' : 'revoked'}` }, live ? 'Active' : 'Revoked'),
        t.revoked_at ? h('span', { class: 'detail' }, 'Revoked ', timeEl(t.revoked_at, fTime)) : null),
      h('td', null, live ? btn('Revoke', 'btn-sm btn-ghost-danger', () => confirmRevokeAdminToken(t), { 'aria-label': `Revoke admin token ${t.name}` }) : '—'));
  }
  function confirmRevokeAdminToken(t) {
    confirm(`Revoke admin token “${t.name}”?`, [
      h('span', null, h('strong', null, `${t.prefix}… stops working immediately.`), ` Anyone using it can no longer manage ${orgName()}'s projects and keys.`),
      'This cannot be undone.',
    ], 'Revoke token', 'btn-danger', async () => {
      const v = await api('POST', `/admin/v1/admin-tokens/${encodeURIComponent(t.id)}/revoke`);
      $('confirm-dialog').close();
      toast(`Admin token “${v.name}” revoked.`);
      await loadAdminTokens();
    });
  }
  on('new-admin-token', 'click', () => {
    $('admin-token-context').textContent = `For organization ${orgName()} (${S.org}): it manages this organization's projects and keys only.`;
    open('admin-token-dialog', $('admin-token-name'));
  });
  on('admin-token-form', 'submit', (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget, name = $('admin-token-name').value.trim();
    if (!validName(name)) return showError(form, 'Enter a token name of 1 to 64 characters.');
    submit(form, async () => {
      if (S.org === 'default' && !S.orgs.some((o) => o.id === 'default' && o.created_at)) {
        // `default` is created on first need: with its first project, or here.
        await api('POST', '/admin/v1/orgs', { id: 'default', name: 'Default' }).catch((e) => { if (e.code !== 'org_exists') throw e; });
      }
      const res = await api('POST', `/admin/v1/orgs/${encodeURIComponent(S.org)}/admin-tokens`, { name });
      $('admin-token-dialog').close();
      revealAdminToken(res.token, res.admin_token);
      loadAdminTokens();
    });
  });
  // The one time an admin token is shown; closing the dialog removes it from the DOM.
  function revealAdminToken(secret, view) {
    const code = h('code', { id: 'revealed-admin-token', tabindex: '0', 'aria-label': 'New admin token' }, secret);
    const copy = btn('Copy', '', async () => {
      let ok = false;
      try { await navigator.clipboard.writeText(code.textContent); ok = true; } catch { ok = false; }
      copy.textContent = ok ? 'Copied' : 'Copy failed';
      $('admin-token-copy-status').textContent = ok ? 'Token copied to the clipboard.' : 'Could not copy automatically. Select the token and copy it yourself.';
    });
    $('admin-token-slot').replaceChildren(h('div', { class: 'secret' }, code, copy));
    $('admin-token-copy-status').textContent = '';
    $('admin-token-reveal-context').textContent = `${view.name} · organization ${orgName()} · ${view.prefix}…`;
    open('admin-token-reveal', copy);
  }
  const forgetAdminToken = () => { $('admin-token-slot').replaceChildren(); $('admin-token-copy-status').textContent = ''; };
  on('admin-token-reveal', 'cancel', forgetAdminToken);
  on('admin-token-reveal', 'close', forgetAdminToken);

  if (S.token) { showView(true); loadOrgs().then(load); } else { showView(false); $('token').focus(); }
})();
