// The sections of the signed-in account page. Each `render*(body, page)` loads what it shows
// and fills `body`. When the load fails it raises ApiError or NetworkError, which account.js
// shows with a button to load again. `page.endSession(message)` signs the subscriber out, and
// `page.reloadSection(id)` loads another section again.

import { ApiError, NetworkError, SessionEndedError, account } from "./account-api.js";
import {
  act,
  alertBox,
  checkboxField,
  clearFieldErrors,
  el,
  errorMessage,
  facts,
  field,
  format,
  formatDay,
  formatQuarter,
  formatTime,
  hideAlert,
  label,
  placeFieldErrors,
  safeUrl,
  showAlert,
  showFailure,
  statusLine,
  text,
} from "./account-ui.js";

// ---------------------------------------------------------------- overview

export async function renderSummary(body) {
  const summary = await account("GET", "/v1/account", 200);

  const rows = [
    [text.label_status, label(text.status, summary.status)],
    [text.label_plan, summary.plan ? label(text.plan, summary.plan) : ""],
    [text.label_monitoring, summary.monitored ? text.monitoring_on : text.monitoring_off],
    [text.label_period_end, formatTime(summary.current_period_end)],
    [text.label_created, formatTime(summary.created_at)],
  ];
  const parts = [facts(rows)];
  if (summary.status === "pending_payment") {
    parts.push(el("p", { className: "hint", text: text.pending_payment_hint }));
  }

  const identifiers = el("ul", { className: "plain-list identifiers" });
  for (const identifier of summary.identifiers ?? []) {
    const note = identifier.watched ? text.identifier_watched : text.identifier_unconfirmed;
    identifiers.append(
      el("li", {}, [
        el("span", { className: "kind", text: label(text.kind, identifier.kind) }),
        " ",
        el("span", { className: "masked", text: identifier.masked ?? "" }),
        el("span", { className: identifier.watched ? "note" : "note warning", text: ` · ${note}` }),
      ]),
    );
  }
  parts.push(el("h3", { text: text.identifiers_title }), identifiers);

  const removed = summary.removed_identifiers ?? [];
  if (removed.length > 0) {
    const list = el("ul", { className: "plain-list" });
    for (const identifier of removed) {
      const when = format(text.removed_at, { date: formatTime(identifier.removed_at) });
      list.append(el("li", { text: `${label(text.kind, identifier.kind)} ${identifier.masked ?? ""} · ${when}` }));
    }
    parts.push(el("h3", { text: text.removed_title }), list);
  }
  body.replaceChildren(...parts);
}

// ---------------------------------------------------------------- alerts and their checklists

export async function renderAlerts(body) {
  const { alerts } = await account("GET", "/v1/account/alerts", 200);
  if (!Array.isArray(alerts) || alerts.length === 0) {
    body.replaceChildren(el("p", { className: "empty", text: text.alerts_empty }));
    return;
  }
  body.replaceChildren(...alerts.map(alertEntry));
}

function alertEntry(alert) {
  const breach = alert.breach ?? {};
  const titleId = `alert-${alert.alert_id}-title`;
  const matched = (alert.matched ?? [])
    .map((entry) => `${label(text.kind, entry.kind)} ${entry.masked ?? ""}`.trim())
    .join(text.list_separator);
  const levels = el("p", { className: "levels" }, [
    badge(text.label_severity, alert.severity),
    " ",
    badge(text.label_confidence, alert.confidence),
  ]);
  const rows = [
    [text.label_matched, matched],
    [text.label_data_classes, (breach.data_classes ?? []).join(text.list_separator)],
    [text.label_breach_date, formatDay(breach.breach_date)],
    [text.label_found, formatTime(alert.found_at)],
    [text.label_found_by, alert.found_by ? label(text.found_by, alert.found_by) : ""],
    [text.label_confirmed_by, label(text.confirmed_by, alert.why?.confirmed_by)],
    [text.label_channels, channelList(alert.channels ?? [])],
  ];
  const options = { className: "alert-entry", "aria-labelledby": titleId, "data-alert-id": alert.alert_id };
  return el("article", options, [
    el("h3", { id: titleId, text: breach.title || breach.name || alert.alert_id }),
    levels,
    facts(rows),
    playbook(alert.alert_id),
  ]);
}

function badge(name, level) {
  const value = label(text.level, level);
  return el("span", { className: `badge level-${level}`, text: `${name}${text.field_separator}${value}` });
}

function channelList(channels) {
  const list = el("ul", { className: "plain-list" });
  for (const channel of channels) {
    let description = label(text.channel_state, channel.state);
    if (channel.state === "deferred" && channel.release_at) {
      description = format(text.deferred_until, { time: formatTime(channel.release_at) });
    }
    if (channel.delivery) {
      description += text.list_separator + label(text.delivery, channel.delivery);
    }
    list.append(el("li", { text: `${label(text.channel, channel.channel)}${text.field_separator}${description}` }));
  }
  return list;
}

// The alert's checklist, loaded the first time it is opened.
function playbook(alertId) {
  const progress = el("span", { className: "progress" });
  const summary = el("summary", {}, [el("span", { text: text.playbook_title }), " ", progress]);
  const content = el("div", { className: "playbook" });
  const details = el("details", { className: "playbook-details", "data-alert-id": alertId }, [summary, content]);
  details.addEventListener("toggle", () => {
    if (details.open && details.dataset.state !== "loaded" && details.dataset.state !== "loading") {
      loadPlaybook(alertId, details, content, progress);
    }
  });
  return details;
}

async function loadPlaybook(alertId, details, content, progress) {
  details.dataset.state = "loading";
  content.replaceChildren(el("p", { className: "loading", text: text.loading }));
  try {
    const result = await account("GET", `/v1/account/alerts/${encodeURIComponent(alertId)}/playbook`, 200);
    renderPlaybook(alertId, result, content, progress);
    details.dataset.state = "loaded";
  } catch (error) {
    if (error instanceof SessionEndedError) {
      return;
    }
    // Closing and opening the checklist again retries.
    delete details.dataset.state;
    content.replaceChildren(el("div", { className: "alert", role: "alert" }, [el("p", { text: errorMessage(error) })]));
    if (!(error instanceof ApiError || error instanceof NetworkError)) {
      throw error;
    }
  }
}

function renderPlaybook(alertId, result, content, progress) {
  const alert = alertBox();
  const list = el("ul", { className: "checklist" });
  for (const step of result.steps ?? []) {
    const id = `step-${alertId}-${step.step_id}`;
    const box = el("input", { type: "checkbox", id, checked: step.done, "data-step-id": step.step_id });
    box.addEventListener("change", () => markStep(alertId, box, alert, content, progress));
    const item = el("li", { className: "checklist-step", "data-step-id": step.step_id }, [
      el("div", { className: "check" }, [box, el("label", { for: id, text: step.title })]),
      el("p", { className: "detail", text: step.detail }),
    ]);
    if ((step.services ?? []).length > 0) {
      item.append(serviceList(step.services));
    }
    list.append(item);
  }
  content.replaceChildren(alert, list);
  showProgress(result, progress);
}

// Links to the official services. A service reached only in an app gets its `access` text,
// which names where to find it.
function serviceList(services) {
  const list = el("ul", { className: "services", "aria-label": text.playbook_services });
  for (const service of services) {
    const url = service.url ? safeUrl(service.url) : null;
    if (url) {
      list.append(el("li", {}, [el("a", { href: url, text: service.name })]));
    } else {
      list.append(el("li", { text: `${service.name}${text.field_separator}${service.access}` }));
    }
  }
  return list;
}

function showProgress(result, progress) {
  progress.textContent = format(text.playbook_progress, { done: result.done, total: result.total });
}

async function markStep(alertId, box, alert, content, progress) {
  const wanted = box.checked;
  const stepId = box.dataset.stepId;
  hideAlert(alert);
  box.disabled = true;
  try {
    const path = `/v1/account/alerts/${encodeURIComponent(alertId)}/playbook/${encodeURIComponent(stepId)}`;
    const result = await account("PUT", path, 200, { done: wanted });
    // The response is the whole checklist: update the boxes in place, so that focus stays put.
    for (const step of result.steps ?? []) {
      const other = content.querySelector(`input[data-step-id="${CSS.escape(step.step_id)}"]`);
      if (other) {
        other.checked = Boolean(step.done);
      }
    }
    showProgress(result, progress);
  } catch (error) {
    if (error instanceof SessionEndedError) {
      return;
    }
    box.checked = !wanted;
    if (!(error instanceof ApiError || error instanceof NetworkError)) {
      throw error;
    }
    showAlert(alert, errorMessage(error));
  } finally {
    box.disabled = false;
  }
}

// ---------------------------------------------------------------- quarterly checks

export async function renderChecks(body) {
  const history = await account("GET", "/v1/account/checks", 200);
  const latest = new Map();
  for (const result of history.results ?? []) {
    // Newest quarter first, so the first result of each check is its latest.
    if (!latest.has(result.check)) {
      latest.set(result.check, result);
    }
  }

  const blocks = (history.checks ?? []).map((check) => checkBlock(check, latest.get(check.check)));
  body.replaceChildren(el("p", { className: "hint", text: text.checks_intro }), ...blocks);
}

function checkBlock(check, last) {
  const block = el("div", { className: "check-block", "data-check": check.check });
  const lastResult = el("div", { className: "last-result" });
  showLastResult(lastResult, check, last);
  block.append(el("h3", { text: check.title }), serviceList(check.services ?? []), lastResult);

  const form = el("form", { method: "post", novalidate: true });
  const alert = alertBox();
  const counts = el("fieldset", { className: "field counts", "data-field": "counts" }, [
    el("legend", { text: text.check_counts_legend }),
    el("p", { className: "hint", text: text.check_counts_hint }),
    el("p", { className: "field-error", id: `check-${check.check}-counts-error`, hidden: true }),
  ]);
  for (const [name, countLabel] of Object.entries(check.counts)) {
    const input = el("input", { type: "number", name, inputmode: "numeric", min: "0", max: "10000", step: "1" });
    counts.append(field(`check-${check.check}-${name}`, `counts.${name}`, countLabel, input));
  }
  const submit = el("button", { type: "submit", text: text.check_submit });
  const status = statusLine();
  form.append(alert, counts, submit, status);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    recordCheck(check, form, { alert, submit, status, lastResult });
  });
  // The form stays folded, so that three checks do not fill a phone's screen.
  const record = el("details", { className: "record-check" }, [el("summary", { text: text.check_submit }), form]);
  block.append(record);
  return block;
}

// Show a check's latest result and, when a result came before it, what changed since.
function showLastResult(container, check, last) {
  if (!last) {
    container.replaceChildren(el("p", { text: text.check_never }));
    return;
  }
  const counts = Object.entries(last.counts ?? {})
    .map(([name, value]) => `${check.counts[name] ?? name} ${value}`)
    .join(text.list_separator);
  const parts = [el("p", { text: format(text.check_last, { quarter: formatQuarter(last.quarter), counts }) })];
  if (last.changed_from_last === true) {
    const changes = Object.entries(last.changes ?? {}).map(([name, change]) =>
      format(text.check_change, { label: check.counts[name] ?? name, previous: change.previous, current: change.current }),
    );
    const changed = format(text.check_changed, { changes: changes.join(text.list_separator) });
    parts.push(el("p", { className: "changed", text: changed }));
  } else if (last.changed_from_last === false) {
    parts.push(el("p", { className: "hint", text: text.check_unchanged }));
  }
  container.replaceChildren(...parts);
}

async function recordCheck(check, form, { alert, submit, status, lastResult }) {
  clearFieldErrors(form);
  hideAlert(alert);
  status.textContent = "";
  const counts = {};
  for (const input of form.querySelectorAll("input[type=number]")) {
    if (input.value.trim() !== "") {
      counts[input.name] = Number(input.value);
    }
  }
  await act(
    submit,
    text.saving,
    async () => {
      const recorded = await account("POST", "/v1/account/checks", 200, { check: check.check, counts });
      showLastResult(lastResult, check, recorded);
      form.reset();
      status.textContent = recorded.message ?? "";
    },
    (error) => showFailure(form, alert, error),
  );
}

// ---------------------------------------------------------------- notification settings

export async function renderPreferences(body) {
  const preferences = await account("GET", "/v1/account/preferences", 200);

  const notices = [];
  if (preferences.sms_state && preferences.sms_state !== "ok") {
    notices.push(el("p", { className: "notice", text: label(text.sms_state, preferences.sms_state) }));
  }
  if (preferences.email_state && preferences.email_state !== "ok") {
    notices.push(el("p", { className: "notice", text: label(text.email_state, preferences.email_state) }));
  }

  const lists = preferences.email_lists ?? {};
  const channels = el("fieldset", { className: "field" }, [
    el("legend", { text: text.pref_channels }),
    checkboxField("pref-sms-alerts", "sms_alerts", text.pref_sms_alerts, preferences.sms_alerts),
    checkboxField("pref-email-alerts", "email_lists.alerts", text.pref_email_alerts, lists.alerts),
    checkboxField("pref-email-reports", "email_lists.reports", text.pref_email_reports, lists.reports),
  ]);

  const timezone = el("input", {
    type: "text",
    name: "timezone",
    autocomplete: "off",
    autocapitalize: "off",
    spellcheck: "false",
    maxlength: "64",
    list: "timezone-names",
  });
  timezone.value = preferences.timezone ?? "";
  const timezoneNames = el("datalist", { id: "timezone-names" });
  for (const name of Intl.supportedValuesOf?.("timeZone") ?? []) {
    timezoneNames.append(el("option", { value: name }));
  }

  const language = el("select", { name: "locale" });
  for (const [value, name] of Object.entries(text.locale_names)) {
    language.append(el("option", { value, text: name, selected: value === preferences.locale }));
  }

  const form = el("form", { method: "post", novalidate: true, id: "preferences-form" });
  const alert = alertBox();
  const submit = el("button", { type: "submit", id: "preferences-submit", text: text.pref_submit });
  const status = statusLine();
  form.append(
    alert,
    channels,
    field("pref-timezone", "timezone", text.pref_timezone, timezone, text.pref_timezone_hint),
    timezoneNames,
    field("pref-locale", "locale", text.pref_locale, language),
    submit,
    status,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    savePreferences(form, alert, submit, status);
  });
  body.replaceChildren(...notices, form);
}

async function savePreferences(form, alert, submit, status) {
  clearFieldErrors(form);
  hideAlert(alert);
  status.textContent = "";
  const controls = form.elements;
  const change = {
    sms_alerts: controls.namedItem("sms_alerts").checked,
    email_lists: {
      alerts: controls.namedItem("email_lists.alerts").checked,
      reports: controls.namedItem("email_lists.reports").checked,
    },
    timezone: controls.namedItem("timezone").value.trim(),
    locale: controls.namedItem("locale").value,
  };
  await act(
    submit,
    text.saving,
    async () => {
      const saved = await account("PUT", "/v1/account/preferences", 200, change);
      status.textContent = saved.message ?? "";
    },
    (error) => showFailure(form, alert, error),
  );
}

// ---------------------------------------------------------------- export and deletion

// ---------------------------------------------------------------- reports and the dossier

export async function renderReports(body, page) {
  const { reports } = await account("GET", "/v1/account/reports", 200);
  const alert = alertBox();
  const parts = [el("p", { text: text.reports_intro }), alert];
  if (!Array.isArray(reports) || reports.length === 0) {
    parts.push(el("p", { className: "empty", text: text.reports_empty }));
  } else {
    const list = el("ul", { className: "plain-list reports" });
    for (const report of reports) {
      list.append(reportEntry(report, alert));
    }
    parts.push(list, el("p", { className: "hint", text: text.report_link_note }));
  }

  const request = el("button", { type: "button", id: "report-request", text: text.report_request });
  const status = statusLine();
  request.addEventListener("click", () =>
    act(
      request,
      text.report_requesting,
      async () => {
        hideAlert(alert);
        const queued = await account("POST", "/v1/account/reports", 202);
        status.textContent = queued.message ?? "";
      },
      (error) => showAlert(alert, errorMessage(error)),
    ),
  );
  parts.push(request, status, deepReportBlock(), dossierBlock());
  body.replaceChildren(...parts);
}

// The one-off in-depth report: the API returns a signed billing link, which opens Stripe
// Checkout. Once paid, the report joins the list above and an e-mail announces it.
function deepReportBlock() {
  const alert = alertBox();
  const buy = el("button", { type: "button", id: "deep-report-buy", text: text.deep_report_buy });
  buy.addEventListener("click", () =>
    act(
      buy,
      text.loading,
      async () => {
        hideAlert(alert);
        const link = await account("POST", "/v1/account/deep-report", 200);
        const url = safeUrl(link.url ?? "");
        if (url) {
          window.location.assign(url);
        }
      },
      (error) => showAlert(alert, errorMessage(error)),
    ),
  );
  return el("div", { className: "data-block", id: "deep-report" }, [
    el("h3", { text: text.deep_report_title }),
    el("p", { text: text.deep_report_intro }),
    alert,
    buy,
  ]);
}

// One report with a button per format. The download URL is requested on click, because it
// works for a few minutes only.
function reportEntry(report, alert) {
  const line = format(text.report_line, {
    kind: label(text.report_kind, report.report_kind),
    month: report.month,
    time: formatTime(report.generated_at),
  });
  const buttons = [
    ["html", text.report_open_html],
    ["pdf", text.report_open_pdf],
  ].map(([fileFormat, name]) => {
    const button = el("button", {
      type: "button",
      className: "link",
      id: `report-${report.report_id}-${fileFormat}`,
      text: name,
    });
    button.addEventListener("click", () =>
      act(
        button,
        text.loading,
        async () => {
          hideAlert(alert);
          const path = `/v1/account/reports/${encodeURIComponent(report.report_id)}/${fileFormat}`;
          const link = await account("GET", path, 200);
          const url = safeUrl(link.url ?? "");
          if (url) {
            window.location.assign(url);
          }
        },
        (error) => showAlert(alert, errorMessage(error)),
      ),
    );
    return button;
  });
  return el("li", { className: "report-entry" }, [el("span", { text: line }), " ", ...buttons]);
}

function dossierBlock() {
  const alert = alertBox();
  const audience = el("select", { name: "audience", id: "dossier-audience" });
  for (const [value, name] of Object.entries(text.dossier_audiences)) {
    audience.append(el("option", { value, text: name }));
  }
  const form = el("form", { method: "post", novalidate: true, id: "dossier-form" });
  const submit = el("button", { type: "submit", id: "dossier-submit", text: text.dossier_submit });
  const result = el("p", { id: "dossier-result", hidden: true });
  form.append(alert, field("dossier-audience", "audience", text.dossier_audience, audience), submit);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(
      submit,
      text.loading,
      async () => {
        clearFieldErrors(form);
        hideAlert(alert);
        const created = await account("POST", "/v1/account/dossier", 201, { audience: audience.value });
        const url = safeUrl(created.url ?? "");
        const name = format(text.dossier_open, { reference: created.reference ?? "" });
        result.replaceChildren(url ? el("a", { href: url, id: "dossier-link", text: name }) : name);
        result.hidden = false;
      },
      (error) => showFailure(form, alert, error),
    );
  });
  return el("div", { className: "data-block" }, [
    el("h3", { text: text.dossier_title }),
    el("p", { text: text.dossier_intro }),
    form,
    result,
  ]);
}

export async function renderDataRights(body, page) {
  body.replaceChildren(exportBlock(), withdrawalBlock(page), deletionBlock(page));
}

function exportBlock() {
  const alert = alertBox();
  const button = el("button", { type: "button", id: "export-submit", text: text.export_submit });
  const status = statusLine();
  const result = el("div", { id: "export-result", className: "export-result", hidden: true });
  button.addEventListener("click", () =>
    act(
      button,
      text.exporting,
      async () => {
        hideAlert(alert);
        status.textContent = "";
        const created = await account("POST", "/v1/account/export", 201);
        status.textContent = created.message ?? "";
        showExport(created, result, alert);
      },
      (error) => showAlert(alert, errorMessage(error)),
    ),
  );
  return el("div", { className: "data-block" }, [
    el("h3", { text: text.export_title }),
    el("p", { text: text.export_intro }),
    alert,
    button,
    status,
    result,
  ]);
}

// Show the export's download links, and a button for new links once they expire.
function showExport(exported, result, alert) {
  const links = el("ul", { className: "plain-list download-links" });
  for (const [file, name] of [
    ["json", text.export_json],
    ["html", text.export_html],
    ["zip", text.export_zip],
  ]) {
    const url = safeUrl(exported.links?.[file] ?? "");
    if (url) {
      links.append(el("li", {}, [el("a", { href: url, id: `export-${file}`, text: name })]));
    }
  }
  const refresh = el("button", { type: "button", className: "link", text: text.export_refresh });
  refresh.addEventListener("click", () =>
    act(
      refresh,
      text.loading,
      async () => {
        hideAlert(alert);
        const path = `/v1/account/export/${encodeURIComponent(exported.export_id)}`;
        showExport(await account("GET", path, 200), result, alert);
      },
      (error) => showAlert(alert, errorMessage(error)),
    ),
  );
  const expiry = format(text.export_links_expire, { time: formatTime(exported.links_expire_at) });
  result.replaceChildren(links, el("p", { className: "hint", text: expiry }), refresh);
  result.hidden = false;
}

// A right that ends in an irreversible change. A button opens a confirmation that describes
// the consequence, and the request goes out only with its box ticked. `prefix` names the elements'
// ids (`${prefix}-open`, `-confirm`, `-understand`, `-submit`, `-cancel` and `-status`).
function confirmedAction(prefix, words, send) {
  const open = el("button", { type: "button", className: "danger", id: `${prefix}-open`, text: words.open });
  const alert = alertBox();
  const status = statusLine();
  status.id = `${prefix}-status`;
  const form = el("form", { method: "post", novalidate: true, id: `${prefix}-form` });
  const understand = checkboxField(`${prefix}-understand`, "understand", words.understand, false);
  const submit = el("button", { type: "submit", className: "danger primary", id: `${prefix}-submit`, text: words.submit });
  const cancel = el("button", { type: "button", className: "link", id: `${prefix}-cancel`, text: text.confirm_cancel });
  form.append(alert, understand, el("div", { className: "actions" }, [submit, cancel]));
  const panel = el("div", { className: "confirm-panel", id: `${prefix}-confirm`, hidden: true }, [
    el("h4", { tabindex: "-1", text: words.confirmTitle }),
    el("p", { text: words.consequence }),
    form,
  ]);

  const close = () => {
    clearFieldErrors(form);
    hideAlert(alert);
    form.elements.namedItem("understand").checked = false;
    panel.hidden = true;
    open.hidden = false;
  };
  open.addEventListener("click", () => {
    status.textContent = "";
    open.hidden = true;
    panel.hidden = false;
    panel.querySelector("h4").focus();
  });
  cancel.addEventListener("click", () => {
    close();
    open.focus();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    hideAlert(alert);
    if (!form.elements.namedItem("understand").checked) {
      placeFieldErrors(form, [{ field: "understand", message: text.confirm_understand_missing }]);
      return;
    }
    act(
      submit,
      words.busy,
      async () => {
        const message = await send();
        close();
        status.textContent = message;
      },
      (error) => showAlert(alert, errorMessage(error)),
    );
  });
  return el("div", { className: "data-block" }, [
    el("h3", { text: words.title }),
    el("p", { text: words.intro }),
    open,
    status,
    panel,
  ]);
}

// Withdrawing the separate consent to sensitive personal information stops watching the ID
// number and bank cards and deletes them. The rest of the account stays.
function withdrawalBlock(page) {
  const words = {
    title: text.withdraw_title,
    intro: text.withdraw_intro,
    open: text.withdraw_open,
    confirmTitle: text.withdraw_confirm_title,
    consequence: text.withdraw_consequence,
    understand: text.withdraw_understand,
    submit: text.withdraw_submit,
    busy: text.withdrawing,
  };
  return confirmedAction("withdraw", words, async () => {
    const path = "/v1/account/consents/sensitive_personal_information/withdraw";
    const withdrawn = await account("POST", path, 200);
    // The overview no longer lists the ID number.
    page.reloadSection("summary");
    return withdrawn.message ?? "";
  });
}

function deletionBlock(page) {
  const words = {
    title: text.delete_title,
    intro: text.delete_intro,
    open: text.delete_open,
    confirmTitle: text.delete_confirm_title,
    consequence: text.delete_consequence,
    understand: text.delete_understand,
    submit: text.delete_submit,
    busy: text.deleting,
  };
  return confirmedAction("delete", words, async () => {
    const deleted = await account("DELETE", "/v1/account", 202);
    page.endSession(deleted.message ?? "");
    return "";
  });
}
