// Texts, formatting and DOM helpers of the account page. Every text comes from the page's
// page-text JSON, so the same code serves the 简体中文 and English pages.

import { ApiError, NetworkError, SessionEndedError } from "./account-api.js";

export const text = JSON.parse(document.getElementById("page-text").textContent);
export const locale = document.documentElement.lang === "en" ? "en" : "zh-CN";
// Chinese sentences join without a space.
export const joiner = locale === "en" ? " " : "";

const dateTimeFormat = new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" });
const dayFormat = new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeZone: "UTC" });

// ---------------------------------------------------------------- formatting

export function format(template, values) {
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

// Return the text for an API value from a page-text map, or the value itself when it is new.
export function label(names, value) {
  return names?.[value] ?? String(value ?? "");
}

export function formatTime(iso) {
  const moment = iso ? new Date(iso) : null;
  if (moment === null || Number.isNaN(moment.getTime())) {
    return iso ?? "";
  }
  return dateTimeFormat.format(moment);
}

// Format a calendar day (YYYY-MM-DD), such as a breach date, without moving it across time zones.
export function formatDay(day) {
  if (typeof day !== "string" || !/^\d{4}-\d{2}-\d{2}$/.test(day)) {
    return day ?? "";
  }
  return dayFormat.format(new Date(`${day}T00:00:00Z`));
}

// Format a quarter as the API writes it (2027q1).
export function formatQuarter(quarter) {
  const match = /^(\d{4})q([1-4])$/.exec(quarter);
  return match ? format(text.quarter, { year: match[1], quarter: match[2] }) : quarter;
}

export function maskMobile(mobile) {
  const digits = mobile.replace(/\D/g, "");
  if (digits.length < 8) {
    return mobile;
  }
  return `${digits.slice(0, -8).slice(-3)}****${digits.slice(-4)}`;
}

// Return an http(s) URL unchanged, or null for anything else (javascript:, data:, garbage).
export function safeUrl(value) {
  try {
    const url = new URL(value);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch {
    return null;
  }
}

// Return the message for a failed request, which is the API's own localised message when it
// sent one.
export function errorMessage(error) {
  if (error instanceof NetworkError) {
    return text.network_error;
  }
  const status = error.result?.status;
  return error.result?.payload?.error?.message ?? format(text.unexpected_error, { status });
}

// ---------------------------------------------------------------- elements

// Create an element. `options.text` sets its text, `options.className` its class, and every
// other option an attribute. True sets an empty value, and false, null or undefined leave the
// attribute out. Children are nodes or strings, never HTML.
export function el(tag, options = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(options)) {
    if (value === null || value === undefined || value === false) {
      continue;
    }
    if (name === "text") {
      node.textContent = value;
    } else if (name === "className") {
      node.className = value;
    } else {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  node.append(...children);
  return node;
}

// Build a <dl> of label and value rows, leaving out rows whose value is empty.
export function facts(rows) {
  const list = el("dl", { className: "facts" });
  for (const [term, value] of rows) {
    if (value === null || value === undefined || value === "") {
      continue;
    }
    list.append(el("dt", { text: term }), el("dd", {}, [value]));
  }
  return list;
}

// Build a form field (label, optional hint, error line and control) with ids derived from `id`.
// `fieldName` is the API's name of the field, which the API's problems use.
export function field(id, fieldName, labelText, control, hintText = null) {
  const container = el("div", { className: "field", "data-field": fieldName });
  const hint = hintText ? el("p", { className: "hint", id: `${id}-hint`, text: hintText }) : null;
  const error = el("p", { className: "field-error", id: `${id}-error`, hidden: true });
  control.id = id;
  if (hint) {
    control.setAttribute("aria-describedby", hint.id);
  }
  control.dataset.describedby = control.getAttribute("aria-describedby") ?? "";
  container.append(el("label", { for: id, text: labelText }), ...(hint ? [hint] : []), error, control);
  return container;
}

// Build a checkbox with its label beside it, as a field with its own error line.
export function checkboxField(id, fieldName, labelText, checked) {
  const box = el("input", { type: "checkbox", id, name: fieldName, checked });
  box.dataset.describedby = "";
  const error = el("p", { className: "field-error", id: `${id}-error`, hidden: true });
  const row = el("div", { className: "check" }, [box, el("label", { for: id, text: labelText })]);
  return el("div", { className: "field", "data-field": fieldName }, [error, row]);
}

// Build an error box that `showAlert` fills and focuses.
export function alertBox() {
  return el("div", { className: "alert", role: "alert", tabindex: "-1", hidden: true });
}

// Build a line that screen readers announce when its text changes.
export function statusLine() {
  return el("p", { className: "status-line", role: "status" });
}

// ---------------------------------------------------------------- messages and field errors

export function showAlert(alert, message) {
  alert.replaceChildren(el("p", { text: message }));
  alert.hidden = false;
  alert.focus();
}

export function hideAlert(alert) {
  alert.hidden = true;
  alert.replaceChildren();
}

// Show `busyText` on a button while its request runs, or restore its label (busyText null).
export function setBusy(button, busyText) {
  if (busyText !== null) {
    button.dataset.label = button.textContent;
    button.textContent = busyText;
    button.setAttribute("aria-disabled", "true");
  } else {
    button.textContent = button.dataset.label ?? button.textContent;
    button.removeAttribute("aria-disabled");
  }
}

export function clearFieldErrors(form) {
  for (const error of form.querySelectorAll(".field-error")) {
    error.hidden = true;
    error.textContent = "";
  }
  for (const control of form.querySelectorAll("[aria-invalid]")) {
    control.removeAttribute("aria-invalid");
    control.setAttribute("aria-describedby", control.dataset.describedby ?? "");
  }
}

// Place each problem ({field, message}) next to the controls of its field, focus the first of
// them, and return the problems whose field is not on the form.
export function placeFieldErrors(form, problems) {
  const unplaced = [];
  let first = null;
  for (const problem of problems) {
    const container = form.querySelector(`[data-field="${CSS.escape(problem.field)}"]`);
    if (!container || container.hidden) {
      unplaced.push(problem);
      continue;
    }
    const error = container.querySelector(".field-error");
    error.textContent = error.textContent ? error.textContent + joiner + problem.message : problem.message;
    error.hidden = false;
    for (const control of container.querySelectorAll("input, select")) {
      control.setAttribute("aria-invalid", "true");
      const described = [error.id, control.dataset.describedby].filter(Boolean).join(" ");
      control.setAttribute("aria-describedby", described);
      first ??= control;
    }
  }
  first?.focus();
  return unplaced;
}

// Show a failed request: a 422's problems beside their fields on `form`, anything else in `alert`.
export function showFailure(form, alert, error) {
  const problems = error.result?.payload?.error?.fields;
  if (error.result?.status === 422 && Array.isArray(problems)) {
    const unplaced = placeFieldErrors(form, problems);
    if (unplaced.length > 0) {
      showAlert(alert, unplaced.map((problem) => problem.message).join(joiner));
    }
    return;
  }
  showAlert(alert, errorMessage(error));
}

// Run one action of a signed-in section while `button` shows `busyText`. A rejected token has
// already ended the session, so it is ignored. The API's and the network's failures go to
// `onFailure`, and anything else is a bug and is raised.
export async function act(button, busyText, action, onFailure) {
  if (button.getAttribute("aria-disabled") === "true") {
    return;
  }
  setBusy(button, busyText);
  try {
    await action();
  } catch (error) {
    if (error instanceof SessionEndedError) {
      return;
    }
    if (error instanceof ApiError || error instanceof NetworkError) {
      onFailure(error);
      return;
    }
    throw error;
  } finally {
    setBusy(button, null);
  }
}
