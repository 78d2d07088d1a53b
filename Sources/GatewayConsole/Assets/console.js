// usdt-gateway console: conveniences over pages that work without it. No build step, no
// dependencies. Keys: j/k move, x select, o open, a approve, r reject, / search, ? help.
// No key pays: "a" opens the approval (queue) or asks to confirm it (decision page).
(function () {
  'use strict';

  function fmt(s) {
    var a = Math.abs(s), t;
    if (a >= 86400) t = Math.floor(a / 86400) + 'd' + Math.floor(a % 86400 / 3600) + 'h';
    else if (a >= 3600) t = Math.floor(a / 3600) + 'h' + Math.floor(a % 3600 / 60) + 'm';
    else if (a >= 120) t = Math.floor(a / 60) + 'm';
    else t = a + 's';
    return s >= 0 ? t + ' left' : 'overdue ' + t;
  }

  function tick() {
    var now = Date.now() / 1000;
    document.querySelectorAll('[data-deadline]').forEach(function (el) {
      var s = Math.round(Number(el.getAttribute('data-deadline')) - now);
      el.textContent = fmt(s);
      var tr = el.closest('tr');
      if (tr) tr.classList.toggle('overdue', s < 0);
    });
  }

  // Rows of the queue and the current one (kept across refreshes by id).
  var currentId = null;
  function rows() { return Array.prototype.slice.call(document.querySelectorAll('#rows tr[data-id]')); }
  function current() {
    return rows().filter(function (r) { return r.getAttribute('data-id') === currentId; })[0] || null;
  }
  function select(index) {
    var rs = rows();
    if (!rs.length) return;
    var i = Math.max(0, Math.min(rs.length - 1, index));
    rs.forEach(function (r) { r.classList.remove('current'); });
    rs[i].classList.add('current');
    currentId = rs[i].getAttribute('data-id');
    rs[i].scrollIntoView({ block: 'nearest' });
  }
  function move(delta) {
    var rs = rows(), cur = current();
    select(cur ? rs.indexOf(cur) + delta : 0);
  }
  function restoreCurrent() {
    var cur = current();
    if (cur) cur.classList.add('current');
  }

  // The 5-second refresh of fragments (queue rows, pipeline tables), with a pause toggle.
  var paused = false;
  function refresh() {
    if (paused) return;
    document.querySelectorAll('[data-refresh]').forEach(function (el) {
      var checked = {};
      el.querySelectorAll('input.pick:checked').forEach(function (b) { checked[b.value] = true; });
      fetch(el.getAttribute('data-refresh'), { credentials: 'same-origin', headers: { 'Accept': 'text/html' } })
        .then(function (r) {
          if (!r.ok || r.redirected) throw new Error('refresh refused: ' + r.status);
          return r.text();
        })
        .then(function (html) {
          if (paused) return;
          el.innerHTML = html;
          el.querySelectorAll('input.pick').forEach(function (b) { if (checked[b.value]) b.checked = true; });
          restoreCurrent();
          tick();
        })
        .catch(function () { /* the next tick tries again */ });
    });
  }

  function addPauseToggle() {
    var target = document.querySelector('[data-refresh]');
    if (!target) return;
    var button = document.createElement('button');
    button.type = 'button';
    button.id = 'pause';
    button.className = 'pause';
    button.textContent = 'Pause refresh';
    button.setAttribute('aria-pressed', 'false');
    button.addEventListener('click', function () {
      paused = !paused;
      button.textContent = paused ? 'Resume refresh' : 'Pause refresh';
      button.setAttribute('aria-pressed', String(paused));
      if (!paused) refresh();
    });
    var h1 = document.querySelector('h1');
    if (h1) h1.appendChild(button);
    setInterval(refresh, 5000);
  }

  // Forms with data-confirm ask before they are sent (approve, reject).
  function confirmForms() {
    document.querySelectorAll('form[data-confirm]').forEach(function (form) {
      form.addEventListener('submit', function (e) {
        if (form.getAttribute('data-confirmed') === '1') return;
        if (!window.confirm(form.getAttribute('data-confirm'))) e.preventDefault();
      });
    });
  }

  // Shift-click on a row's box selects the range from the last one clicked.
  var lastBox = null;
  document.addEventListener('click', function (e) {
    var b = e.target;
    if (b && b.classList && b.classList.contains('pick')) {
      if (e.shiftKey && lastBox) {
        var boxes = Array.prototype.slice.call(document.querySelectorAll('input.pick'));
        var a = boxes.indexOf(lastBox), z = boxes.indexOf(b);
        if (a >= 0 && z >= 0) boxes.slice(Math.min(a, z), Math.max(a, z) + 1).forEach(function (x) { x.checked = b.checked; });
      }
      lastBox = b;
      return;
    }
    var tr = b && b.closest ? b.closest('#rows tr[data-id]') : null;
    if (tr && b.tagName !== 'A') select(rows().indexOf(tr));
  });

  function approveHere() {
    var form = document.getElementById('approve-form');
    if (!form) return;
    var code = document.getElementById('approve-code');
    if (code && !code.value) { code.focus(); return; }
    if (window.confirm(form.getAttribute('data-confirm'))) {
      form.setAttribute('data-confirmed', '1');
      form.requestSubmit();
    }
  }

  // A "select all on this page" box in the table's first header cell (only useful with JavaScript).
  function addPickAll() {
    var th = document.querySelector('#queue thead th');
    if (!th || !document.getElementById('bulk-preview')) return;
    var all = document.createElement('input');
    all.type = 'checkbox';
    all.id = 'pick-all';
    all.setAttribute('aria-label', 'select all rows on this page');
    all.addEventListener('change', function () {
      document.querySelectorAll('#rows input.pick').forEach(function (b) { b.checked = all.checked; });
    });
    th.appendChild(all);
  }

  function toggleHelp() {
    var help = document.getElementById('help');
    if (help) help.hidden = !help.hidden;
  }

  document.addEventListener('keydown', function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target;
    var typing = t && (t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || (t.tagName === 'INPUT' && t.type !== 'checkbox' && t.type !== 'radio'));
    if (typing) {
      if (e.key === 'Escape') t.blur();
      return;
    }
    var page = document.body.getAttribute('data-page');
    var cur = current();
    switch (e.key) {
      case '?': toggleHelp(); break;
      case '/': {
        var search = document.getElementById('f-merchant') || document.querySelector('form.filters input:not([type=hidden])');
        if (search) { e.preventDefault(); search.focus(); }
        break;
      }
      case 'j': move(1); break;
      case 'k': move(-1); break;
      case 'x': if (cur) { var box = cur.querySelector('input.pick'); if (box) { box.checked = !box.checked; lastBox = box; } } break;
      case 'o': if (cur) window.location.href = cur.getAttribute('data-href'); break;
      case 'a':
        if (page === 'decision') approveHere();
        else if (cur) window.location.href = cur.getAttribute('data-href') + '#approve';
        break;
      case 'r':
        if (page === 'decision') { var reason = document.getElementById('reject-reason'); if (reason) { e.preventDefault(); reason.focus(); } }
        else if (cur) window.location.href = cur.getAttribute('data-href') + '#reject';
        break;
      default: return;
    }
  });

  document.addEventListener('DOMContentLoaded', function () {
    tick();
    setInterval(tick, 1000);
    confirmForms();
    addPauseToggle();
    addPickAll();
    if (document.body.getAttribute('data-page') === 'decision') {
      if (window.location.hash === '#approve') {
        var target = document.getElementById('approve-code') || document.getElementById('approve');
        if (target) target.focus();
      } else if (window.location.hash === '#reject') {
        var reason = document.getElementById('reject-reason');
        if (reason) reason.focus();
      }
    }
  });
})();
