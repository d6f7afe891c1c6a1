// Small enhancements; every page works without them (forms post, pages refresh).
(function () {
  'use strict';
  document.addEventListener('DOMContentLoaded', function () {
    document.querySelectorAll('form[data-autosubmit] select').forEach(function (select) {
      select.addEventListener('change', function () { select.form.submit(); });
    });
    document.querySelectorAll('button[data-confirm]').forEach(function (button) {
      button.addEventListener('click', function (event) {
        // The question may depend on a checkbox of the form (removing a destination: with or without its data).
        var box = button.getAttribute('data-confirm-checked') && button.form && button.form.querySelector('input[name="' + button.getAttribute('data-confirm-checked') + '"]');
        var question = box && box.checked ? button.getAttribute('data-confirm-if-checked') : button.getAttribute('data-confirm');
        if (!window.confirm(question)) event.preventDefault();
      });
    });
    // A running task: ask for its state every second, show the page anew when it is done.
    var task = document.querySelector('[data-task-status]');
    if (task) {
      var url = task.getAttribute('data-task-status');
      var poll = function () {
        fetch(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
          .then(function (r) { return r.json(); })
          .then(function (s) { if (s.finished) window.location.reload(); else setTimeout(poll, 1000); })
          .catch(function () { setTimeout(poll, 3000); });
      };
      setTimeout(poll, 1000);
    }
    var lang = document.documentElement.lang || 'en';
    var number = new Intl.NumberFormat(lang, { maximumFractionDigits: 1 });
    var bytes = function (n) {
      var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
      var i = 0;
      while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
      return number.format(i === 0 ? n : Math.round(n * 10) / 10) + ' ' + units[i];
    };
    // Free space needs the destination (a network round trip): filled in after the page is shown.
    document.querySelectorAll('[data-space]').forEach(function (cell) {
      fetch(cell.getAttribute('data-space'), { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
        .then(function (r) { return r.json(); })
        .then(function (s) {
          cell.textContent = s.ok ? (s.space ? bytes(s.space.freeBytes) + ' / ' + bytes(s.space.totalBytes) : cell.getAttribute('data-unknown')) : cell.getAttribute('data-unreachable') + ' ' + s.error;
          if (!s.ok) cell.classList.add('problem');
        })
        .catch(function () { cell.textContent = '?'; });
    });
    // The new-destination form: the SSH settings only for SSH, the S3 settings only for S3.
    var types = document.querySelectorAll('input[name="type"]');
    var ssh = document.querySelector('fieldset.ssh-only');
    var s3 = document.querySelector('fieldset.s3-only');
    if (types.length && ssh) {
      var sync = function () {
        var type = document.querySelector('input[name="type"]:checked');
        var chosen = type ? type.value : 'local';
        ssh.hidden = chosen !== 'ssh';
        if (s3) s3.hidden = chosen !== 's3';
        document.querySelectorAll('.path-field, .local-only').forEach(function (el) { el.hidden = chosen === 's3'; });
      };
      types.forEach(function (r) { r.addEventListener('change', sync); });
      sync();
    }
    // The queue: the daemon sends the task list whenever it changes.
    var queue = document.querySelector('table[data-events]');
    if (queue && window.EventSource) {
      var labels = JSON.parse(queue.getAttribute('data-labels'));
      var cell = function (row, label, text, cls) {
        var td = document.createElement('td');
        td.setAttribute('data-label', label);
        if (cls) { var span = document.createElement('span'); span.className = cls; span.textContent = text; td.appendChild(span); } else td.textContent = text;
        row.appendChild(td);
      };
      var heads = Array.prototype.map.call(queue.querySelectorAll('thead th'), function (th) { return th.textContent; });
      var source = new EventSource(queue.getAttribute('data-events'));
      source.addEventListener('tasks', function (event) {
        var tbody = document.createElement('tbody');
        JSON.parse(event.data).forEach(function (k) {
          var row = document.createElement('tr');
          row.setAttribute('data-task', k.id);
          row.setAttribute('data-status', k.status);
          var first = document.createElement('td');
          first.setAttribute('data-label', heads[0]);
          var link = document.createElement('a');
          link.href = '/admin/queue/' + k.id;
          link.textContent = (labels.type[k.type] || k.type) + ' #' + k.id;
          first.appendChild(link);
          row.appendChild(first);
          cell(row, heads[1], k.account || '');
          cell(row, heads[2], k.destination || '');
          cell(row, heads[3], labels.status[k.status] || k.status, 'status status-' + k.status);
          var p = k.progress || {};
          var text = k.error ? k.error : p.files !== undefined
            ? (p.phase && k.active ? (labels.phase[p.phase] || p.phase) + ' · ' : '') + labels.files.replace('{{files}}', number.format(p.files)).replace('{{size}}', bytes(p.bytes || 0))
            : '';
          cell(row, heads[4], text);
          // A bar: how far when that is known, only that it works when not.
          if (k.percent !== null || k.active) {
            var bar = document.createElement('progress');
            bar.className = 'bar';
            if (k.percent !== null) { bar.max = 100; bar.value = k.percent; bar.textContent = k.percent + '%'; }
            row.lastChild.insertBefore(bar, row.lastChild.firstChild);
          }
          tbody.appendChild(row);
        });
        queue.replaceChild(tbody, queue.querySelector('tbody'));
        queue.setAttribute('data-updated', String(Date.now()));
      });
    }
    // The schedule form: only the fields of the chosen kind.
    var kind = document.querySelector('select[name="kind"]');
    if (kind) {
      var syncKind = function () {
        document.querySelectorAll('.kind-field').forEach(function (f) { f.style.display = f.getAttribute('data-kinds').split(' ').indexOf(kind.value) < 0 ? 'none' : ''; });
      };
      kind.addEventListener('change', syncKind);
      syncKind();
    }
    // The job form: the account list only counts for "these accounts".
    var scopes = document.querySelectorAll('input[name="scope"]');
    var choices = document.querySelector('div.choices');
    if (scopes.length && choices) {
      var syncScope = function () {
        var list = document.querySelector('input[name="scope"][value="list"]').checked;
        choices.querySelectorAll('input').forEach(function (box) { box.disabled = !list; });
      };
      scopes.forEach(function (r) { r.addEventListener('change', syncScope); });
      syncScope();
    }
    // A choice sent from the browse page (restore, download) is marked, so the next visit starts afresh.
    var sentKeyOf = function (key) { return key + ':sent'; };
    var markSent = function (key) { try { window.sessionStorage.setItem(sentKeyOf(key), '1'); } catch (e) { /* ignore */ } };
    var unmarkSent = function (key) { try { window.sessionStorage.removeItem(sentKeyOf(key)); } catch (e) { /* ignore */ } };
    var markedSent = function (key) { try { return window.sessionStorage.getItem(sentKeyOf(key)) === '1'; } catch (e) { return false; } };
    // The review before an in-place restore: the choice is not done with until it is confirmed.
    var review = document.getElementById('restore-confirm');
    if (review && review.getAttribute('data-selection-key')) {
      var reviewKey = 'tidemark-selection:' + review.getAttribute('data-selection-key');
      unmarkSent(reviewKey);
      review.querySelector('form').addEventListener('submit', function () { markSent(reviewKey); });
    }
    // The browse page: a choice that spans pages and folders, kept in this tab until it is sent or cleared.
    var browse = document.getElementById('browse-form');
    if (browse) {
      var key = 'tidemark-selection:' + browse.getAttribute('data-selection-key');
      var texts = JSON.parse(browse.getAttribute('data-plural'));
      var rules = new Intl.PluralRules(lang);
      var form = function (forms, n) { return (forms[rules.select(n)] || forms.other || '#').replace('#', number.format(n)); };
      var chosen = {};
      try { chosen = JSON.parse(window.sessionStorage.getItem(key) || '{}') || {}; } catch (e) { chosen = {}; }
      var save = function () { try { window.sessionStorage.setItem(key, JSON.stringify(chosen)); } catch (e) { /* private mode: the page still works */ } };
      // A choice that was sent is done with, unless the form came back (a problem) to be corrected.
      var settle = function () {
        if (browse.hasAttribute('data-returned')) unmarkSent(key);
        else if (markedSent(key)) { chosen = {}; unmarkSent(key); }
      };
      settle();
      var boxes = Array.prototype.slice.call(browse.querySelectorAll('input[type="checkbox"][name="path"]'));
      var info = function (box) { return { n: box.getAttribute('data-name'), b: Number(box.getAttribute('data-bytes')) || 0, f: Number(box.getAttribute('data-files')) || 0 }; };
      // A form that came back with a problem holds what was posted (ticked here, or kept from other folders).
      boxes.forEach(function (box) { if (box.checked) chosen[box.value] = info(box); });
      browse.querySelectorAll('input[data-kept]').forEach(function (k) {
        if (!chosen[k.value]) chosen[k.value] = { n: k.getAttribute('data-name'), b: 0, f: 0 };
        k.parentNode.removeChild(k);
      });
      var bytesOf = function (b64) {
        try { return window.atob(b64.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((b64.length + 3) % 4)); } catch (e) { return null; }
      };
      var onPage = {};
      boxes.forEach(function (box) { onPage[box.value] = true; });
      var bar = browse.querySelector('[data-selection]');
      var update = function () {
        save();
        var keys = Object.keys(chosen);
        // A path inside a chosen folder is in that folder's size already.
        var paths = {};
        keys.forEach(function (k) { var p = bytesOf(k); if (p !== null) paths[p] = k; });
        var total = 0;
        keys.forEach(function (k) {
          var p = bytesOf(k);
          for (var a = p; a && a.lastIndexOf('/') > 0;) { a = a.slice(0, a.lastIndexOf('/')); if (paths[a]) return; }
          total += chosen[k].b || 0;
        });
        var elsewhere = keys.filter(function (k) { return !onPage[k]; }).length;
        bar.hidden = keys.length === 0;
        bar.querySelector('[data-selection-count]').textContent = form(texts.selected, keys.length);
        bar.querySelector('[data-selection-size]').textContent = texts.size.replace('#', bytes(total));
        bar.querySelector('[data-selection-elsewhere]').textContent = elsewhere > 0 ? form(texts.elsewhere, elsewhere) : '';
        var all = browse.querySelector('input[data-select-all]');
        if (all) all.checked = boxes.length > 0 && boxes.every(function (b) { return b.checked; });
      };
      var pick = function (box, on) {
        box.checked = on;
        if (on) chosen[box.value] = info(box); else delete chosen[box.value];
      };
      boxes.forEach(function (box) {
        box.checked = Boolean(chosen[box.value]);
        box.addEventListener('change', function () { pick(box, box.checked); update(); });
      });
      var tools = browse.querySelector('.select-tools');
      if (tools) tools.hidden = false;
      var all = browse.querySelector('input[data-select-all]');
      if (all) all.addEventListener('change', function () { boxes.forEach(function (b) { pick(b, all.checked); }); update(); });
      var selectPage = browse.querySelector('[data-select-page]');
      if (selectPage) selectPage.addEventListener('click', function () { boxes.forEach(function (b) { pick(b, true); }); update(); });
      var selectNone = browse.querySelector('[data-select-none]');
      if (selectNone) selectNone.addEventListener('click', function () { chosen = {}; boxes.forEach(function (b) { b.checked = false; }); update(); });
      var selectMatching = browse.querySelector('[data-select-matching]');
      if (selectMatching) selectMatching.addEventListener('click', function () {
        selectMatching.disabled = true;
        fetch(browse.getAttribute('data-all-url'), { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
          .then(function (r) { return r.json(); })
          .then(function (list) {
            list.items.forEach(function (i) { chosen[i.path] = { n: i.displayPath, b: i.bytes, f: i.files }; });
            boxes.forEach(function (b) { b.checked = Boolean(chosen[b.value]); });
            update();
          })
          .finally(function () { selectMatching.disabled = false; });
      });
      // What is chosen on other pages and in other folders goes with the form.
      browse.addEventListener('submit', function (event) {
        // A download leaves the page as it is: the same choice may be restored next.
        if (!event.submitter || event.submitter.name === 'mode') markSent(key);
        browse.querySelectorAll('input[data-added]').forEach(function (i) { i.parentNode.removeChild(i); });
        Object.keys(chosen).forEach(function (k) {
          if (onPage[k]) return;
          var input = document.createElement('input');
          input.type = 'hidden'; input.name = 'path'; input.value = k; input.setAttribute('data-added', '');
          browse.appendChild(input);
        });
      });
      // Back from the browser's cache: the choice may have changed in another page of this tab.
      window.addEventListener('pageshow', function (event) {
        if (!event.persisted) return;
        try { chosen = JSON.parse(window.sessionStorage.getItem(key) || '{}') || {}; } catch (e) { chosen = {}; }
        settle();
        boxes.forEach(function (b) { b.checked = Boolean(chosen[b.value]); });
        update();
      });
      update();
    }
    // A restore's progress: files and bytes done, how far, how long still.
    var progress = document.querySelector('[data-restore-progress]');
    if (progress) {
      var progressLabels = JSON.parse(progress.getAttribute('data-labels'));
      var unit = function (seconds) {
        var u = seconds >= 5400 ? ['hour', Math.round(seconds / 3600)] : seconds >= 90 ? ['minute', Math.round(seconds / 60)] : ['second', Math.max(1, Math.round(seconds))];
        try { return new Intl.NumberFormat(lang, { style: 'unit', unit: u[0], unitDisplay: 'long' }).format(u[1]); } catch (e) { return u[1] + ' ' + u[0]; }
      };
      var show = function (p) {
        var barEl = progress.querySelector('progress');
        if (p.percent !== null) { barEl.max = 100; barEl.value = p.percent; progress.querySelector('[data-percent]').textContent = number.format(p.percent) + ' %'; }
        if (p.totalFiles > 0 || p.totalBytes > 0) {
          progress.querySelector('[data-files]').textContent = progressLabels.files.replace('{done}', number.format(p.files)).replace('{total}', number.format(p.totalFiles));
          progress.querySelector('[data-bytes]').textContent = progressLabels.bytes.replace('{done}', bytes(p.bytes)).replace('{total}', bytes(p.totalBytes));
        }
        progress.querySelector('[data-left]').textContent = p.secondsLeft !== null ? progressLabels.left.replace('{time}', unit(p.secondsLeft)) : '';
        progress.setAttribute('data-status', p.status);
      };
      var pollProgress = function () {
        fetch(progress.getAttribute('data-restore-progress'), { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
          .then(function (r) { return r.json(); })
          .then(function (p) { show(p); if (!p.finished) setTimeout(pollProgress, 1000); })
          .catch(function () { setTimeout(pollProgress, 3000); });
      };
      pollProgress();
    }
    var refresh = document.querySelector('[data-refresh]');
    if (refresh) setTimeout(function () { window.location.reload(); }, Number(refresh.getAttribute('data-refresh')) || 3000);
  });
})();
