// Small enhancements; every page works without them (forms post, pages refresh).
(function () {
  'use strict';
  document.addEventListener('DOMContentLoaded', function () {
    document.querySelectorAll('form[data-autosubmit] select').forEach(function (select) {
      select.addEventListener('change', function () { select.form.submit(); });
    });
    document.querySelectorAll('input[data-select-all]').forEach(function (all) {
      all.addEventListener('change', function () {
        all.closest('form').querySelectorAll('input[name="path"]').forEach(function (box) { box.checked = all.checked; });
      });
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
    var refresh = document.querySelector('[data-refresh]');
    if (refresh) setTimeout(function () { window.location.reload(); }, Number(refresh.getAttribute('data-refresh')) || 3000);
  });
})();
