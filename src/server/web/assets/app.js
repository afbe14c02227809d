// forgelink dashboard enhancements. Every page works without this file; it adds the live run log, the
// project list that follows the chosen connection, token links that follow the typed instance URL, and
// a Copy button for a new API key.
'use strict';

(function () {
  function removeNoScriptFallbacks() {
    for (const element of document.querySelectorAll('[data-js-remove]')) element.remove();
  }

  // Mirrors core's normaliseBaseUrl closely enough for a link: scheme added, /api/v4 and slashes dropped.
  function baseUrlOf(typed) {
    let text = typed.trim();
    if (text === '') return 'https://gitlab.com';
    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) text = 'https://' + text;
    try {
      const url = new URL(text);
      if (url.protocol !== 'https:' && url.protocol !== 'http:') return null;
      const path = url.pathname.replace(/\/+$/, '').replace(/\/api\/v4$/i, '').replace(/\/+$/, '');
      return url.protocol + '//' + url.host + path;
    } catch {
      return null;
    }
  }

  function followInstanceUrl() {
    const input = document.getElementById('baseUrl');
    const links = document.querySelectorAll('a[data-token-query]');
    if (input === null || links.length === 0) return;
    input.addEventListener('input', function () {
      const base = baseUrlOf(input.value);
      if (base === null) return;
      for (const link of links) {
        link.href = base + '/-/user_settings/personal_access_tokens?' + link.dataset.tokenQuery;
      }
    });
  }

  function hint(id, text) {
    const p = document.createElement('p');
    p.className = 'hint';
    p.id = id;
    p.textContent = text;
    return p;
  }

  function projectField(field, answer) {
    const current = field.querySelector('#project');
    const keep = current === null ? '' : current.value;
    for (const element of field.querySelectorAll('#project, #project-hint')) element.remove();
    const label = field.querySelector('label[for="project"]');
    let control;
    if (answer.projects && answer.projects.length > 0) {
      control = document.createElement('select');
      const paths = answer.projects.map(function (project) { return project.pathWithNamespace; }).sort();
      for (const path of paths) {
        const option = document.createElement('option');
        option.textContent = path;
        option.selected = path === keep;
        control.append(option);
      }
    } else {
      control = document.createElement('input');
      control.type = 'text';
      control.spellcheck = false;
      control.placeholder = 'group/subgroup/project';
      control.value = keep;
      const message = answer.error
        ? answer.error.message + " Type the project's path instead."
        : 'This account has no project with Developer access or more; type a path.';
      control.setAttribute('aria-describedby', 'project-hint');
      label.after(control, hint('project-hint', message));
    }
    control.id = 'project';
    control.name = 'project';
    control.required = true;
    if (!control.isConnected) label.after(control);
  }

  function followConnection() {
    const select = document.querySelector('select[data-projects-for]');
    if (select === null) return;
    const field = document.getElementById(select.dataset.projectsFor);
    select.addEventListener('change', async function () {
      field.setAttribute('aria-busy', 'true');
      try {
        const response = await fetch('/integrations/gitlab/connections/' + encodeURIComponent(select.value) + '/projects', {
          headers: { accept: 'application/json' },
          credentials: 'same-origin',
        });
        projectField(field, await response.json());
      } catch {
        projectField(field, { error: { message: 'The projects could not be loaded.' } });
      } finally {
        field.removeAttribute('aria-busy');
      }
    });
  }

  function followLog() {
    const log = document.querySelector('pre[data-live-log]');
    if (log === null || typeof EventSource === 'undefined') return;
    const status = document.getElementById('log-status');
    status.textContent = 'Following the log live…';
    const source = new EventSource(log.dataset.liveLog + '?after=' + encodeURIComponent(log.dataset.after || '0'));
    source.addEventListener('log', function (event) {
      const entry = JSON.parse(event.data);
      const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
      if (entry.stream === 'system') {
        const span = document.createElement('span');
        span.className = 'log-system';
        span.textContent = entry.text;
        log.append(span);
      } else {
        log.append(document.createTextNode(entry.text));
      }
      if (atBottom) log.scrollTop = log.scrollHeight;
    });
    source.addEventListener('end', function () {
      source.close();
      status.textContent = 'The run ended; loading its outputs…';
      // The server renders the outputs (links to GitLab); a reload shows them with no second renderer here.
      window.location.reload();
    });
    source.addEventListener('error', function () {
      if (source.readyState === EventSource.CLOSED) status.textContent = 'Live updates stopped; reload the page to see more.';
    });
  }

  // "Copy" next to a new API key; without JavaScript the key is selected text in a read-only field.
  function copyButtons() {
    for (const button of document.querySelectorAll('button[data-copy]')) {
      const input = document.getElementById(button.dataset.copy);
      const status = document.querySelector('[data-copy-status="' + button.dataset.copy + '"]');
      button.hidden = false;
      button.addEventListener('click', async function () {
        input.select();
        try {
          await navigator.clipboard.writeText(input.value);
          status.textContent = 'Copied. Paste it where it is needed now.';
        } catch {
          status.textContent = 'Copying was not allowed here: the key is selected, press Ctrl+C (⌘C).';
        }
      });
    }
  }

  removeNoScriptFallbacks();
  copyButtons();
  followInstanceUrl();
  followConnection();
  followLog();
})();
