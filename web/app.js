// The signup page: details form, SMS code, e-mail confirmation notice and the redirect to
// checkout. It sends requests only to the signup API named in config.json and stores nothing
// in the browser (no cookies, no local storage, no analytics).

const REDIRECT_SECONDS = 5;
const DEFAULT_RESEND_SECONDS = 60;
const REFERRAL_CODE = /^[A-Za-z0-9]{4,32}$/;

const text = JSON.parse(document.getElementById("page-text").textContent);
const locale = document.documentElement.lang === "en" ? "en" : "zh-CN";
// Chinese sentences and lines join without a space.
const joiner = locale === "en" ? " " : "";

const elements = {
  detailsForm: document.getElementById("details-form"),
  detailsAlert: document.getElementById("details-alert"),
  detailsSubmit: document.getElementById("details-submit"),
  codeForm: document.getElementById("code-form"),
  codeAlert: document.getElementById("code-alert"),
  codeStatus: document.getElementById("code-status"),
  codeInput: document.getElementById("code"),
  codeSubmit: document.getElementById("code-submit"),
  resend: document.getElementById("resend"),
  editDetails: document.getElementById("edit-details"),
  doneTitle: document.getElementById("done-title"),
  doneStatus: document.getElementById("done-status"),
  emailNotice: document.getElementById("email-notice"),
  paymentMessage: document.getElementById("payment-message"),
  redirectStatus: document.getElementById("redirect-status"),
  checkoutLink: document.getElementById("checkout-link"),
  stay: document.getElementById("stay"),
};

const state = {
  config: null,
  busy: false,
  // The last body that reached the API with 202, for "send a new code".
  body: null,
  signupId: null,
  // A request whose response was lost keeps its Idempotency-Key, so that sending the same body
  // again cannot create a second signup or a second SMS.
  unanswered: null,
  resendTimer: null,
  redirectTimer: null,
};

class NetworkError extends Error {}

function format(template, values) {
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

function newIdempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

async function postJson(path, body, idempotencyKey) {
  const headers = {
    "Content-Type": "application/json",
    Accept: "application/json",
    // API messages, field errors included, come in the page's language.
    "Accept-Language": locale,
  };
  if (idempotencyKey) {
    headers["Idempotency-Key"] = idempotencyKey;
  }

  let response;
  try {
    response = await fetch(state.config.api_base_url + path, {
      method: "POST",
      headers,
      body: JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (error) {
    throw new NetworkError(String(error));
  }

  let payload = null;
  try {
    payload = await response.json();
  } catch {
    payload = null;
  }
  const retryAfter = Number.parseInt(response.headers.get("Retry-After") ?? "", 10);
  return { status: response.status, payload, retryAfter: Number.isFinite(retryAfter) ? retryAfter : null };
}

// ---------------------------------------------------------------- steps and messages

function showStep(name) {
  for (const step of document.querySelectorAll(".step")) {
    step.hidden = step.id !== `step-${name}`;
  }
}

function showAlert(alert, message) {
  alert.replaceChildren();
  const paragraph = document.createElement("p");
  paragraph.textContent = message;
  alert.append(paragraph);
  alert.hidden = false;
  alert.focus();
}

function hideAlert(alert) {
  alert.hidden = true;
  alert.replaceChildren();
}

function setBusy(button, busyText) {
  state.busy = busyText !== null;
  if (state.busy) {
    button.dataset.label = button.textContent;
    button.textContent = busyText;
    button.setAttribute("aria-disabled", "true");
  } else {
    button.textContent = button.dataset.label ?? button.textContent;
    button.removeAttribute("aria-disabled");
  }
}

function clearFieldErrors(form) {
  for (const error of form.querySelectorAll(".field-error")) {
    error.hidden = true;
    error.textContent = "";
  }
  for (const control of form.querySelectorAll("[aria-invalid]")) {
    control.removeAttribute("aria-invalid");
    control.setAttribute("aria-describedby", control.dataset.describedby);
  }
}

function fieldLabel(container) {
  const label = container.querySelector("legend, label");
  return label ? label.textContent.trim() : "";
}

// Place each problem next to its field and return the problems placed and the rest, which have
// no visible field and go to the summary.
function placeFieldErrors(form, problems) {
  const placed = [];
  const unplaced = [];
  for (const problem of problems) {
    const container = form.querySelector(`[data-field="${CSS.escape(problem.field)}"]`);
    if (!container || container.hidden) {
      unplaced.push(problem);
      continue;
    }
    const error = container.querySelector(".field-error");
    error.textContent = error.textContent ? error.textContent + joiner + problem.message : problem.message;
    error.hidden = false;
    for (const control of container.querySelectorAll("input")) {
      control.setAttribute("aria-invalid", "true");
      const described = [error.id, control.dataset.describedby].filter(Boolean).join(" ");
      control.setAttribute("aria-describedby", described);
    }
    placed.push({ container, problem });
  }
  return { placed, unplaced };
}

function showSummary(alert, placed, unplaced) {
  alert.replaceChildren();
  const title = document.createElement("p");
  title.className = "alert-title";
  title.textContent = text.summary_title;
  const list = document.createElement("ul");
  for (const { container, problem } of placed) {
    const control = container.querySelector("input");
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = `#${control.id}`;
    link.textContent = `${fieldLabel(container)}${text.field_separator}${problem.message}`;
    link.addEventListener("click", (event) => {
      event.preventDefault();
      control.focus();
      control.scrollIntoView({ block: "center" });
    });
    item.append(link);
    list.append(item);
  }
  for (const problem of unplaced) {
    const item = document.createElement("li");
    item.textContent = problem.message;
    list.append(item);
  }
  alert.append(title, list);
  alert.hidden = false;
  alert.focus();
}

function errorMessage(result) {
  return result.payload?.error?.message ?? format(text.unexpected_error, { status: result.status });
}

function maskMobile(mobile) {
  const digits = mobile.replace(/\D/g, "");
  if (digits.length < 8) {
    return mobile;
  }
  return `${digits.slice(0, -8).slice(-3)}****${digits.slice(-4)}`;
}

function safeCheckoutUrl(value) {
  try {
    const url = new URL(value);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- step 1: details

function readDetails() {
  const form = elements.detailsForm;
  const data = new FormData(form);
  const body = {
    name: String(data.get("name") ?? ""),
    id_number: String(data.get("id_number") ?? ""),
    mobile: String(data.get("mobile") ?? ""),
    email: String(data.get("email") ?? ""),
    plan: String(data.get("plan") ?? ""),
    locale,
    consents: {},
  };
  const timezone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (timezone) {
    body.timezone = timezone;
  }
  const referral = String(data.get("referral_code") ?? "").trim();
  if (referral) {
    body.referral_code = referral;
  }
  for (const [kind, consent] of Object.entries(state.config.consents)) {
    const checkbox = form.elements.namedItem(`consents.${kind}`);
    body.consents[kind] = { accepted: Boolean(checkbox?.checked), version: consent.version };
  }
  return body;
}

async function requestCode(body, origin) {
  const button = origin === "resend" ? elements.resend : elements.detailsSubmit;
  const alert = origin === "resend" ? elements.codeAlert : elements.detailsAlert;
  const serialized = JSON.stringify(body);
  const key = state.unanswered?.body === serialized ? state.unanswered.key : newIdempotencyKey();
  state.unanswered = { body: serialized, key };

  hideAlert(alert);
  setBusy(button, text.sending);
  let result;
  try {
    result = await postJson("/v1/signups", body, key);
  } catch (error) {
    if (!(error instanceof NetworkError)) {
      throw error;
    }
    showAlert(alert, text.network_error);
    return;
  } finally {
    setBusy(button, null);
  }
  state.unanswered = null;

  if (result.status === 202 && result.payload?.signup_id) {
    state.body = body;
    state.signupId = result.payload.signup_id;
    showCodeStep(result.payload);
    return;
  }

  const problems = result.payload?.error?.fields;
  if (result.status === 422 && Array.isArray(problems)) {
    showStep("details");
    clearFieldErrors(elements.detailsForm);
    const { placed, unplaced } = placeFieldErrors(elements.detailsForm, problems);
    showSummary(elements.detailsAlert, placed, unplaced);
    return;
  }
  showAlert(alert, errorMessage(result));
  if (origin === "resend" && result.retryAfter !== null) {
    startResendCountdown(result.retryAfter);
  }
}

async function submitDetails(event) {
  event.preventDefault();
  if (state.busy || state.config === null) {
    return;
  }
  clearFieldErrors(elements.detailsForm);
  await requestCode(readDetails(), "details");
}

// ---------------------------------------------------------------- step 2: code

function showCodeStep(payload) {
  clearFieldErrors(elements.codeForm);
  hideAlert(elements.codeAlert);
  elements.codeInput.value = "";
  const sentTo = format(text.code_sent_to, { mobile: maskMobile(state.body.mobile) });
  elements.codeStatus.textContent = [payload.message, sentTo].filter(Boolean).join(joiner);
  showStep("code");
  elements.codeInput.focus();
  startResendCountdown(Number.isInteger(payload.resend_after) ? payload.resend_after : DEFAULT_RESEND_SECONDS);
}

function startResendCountdown(seconds) {
  clearInterval(state.resendTimer);
  const deadline = Date.now() + seconds * 1000;
  const tick = () => {
    const left = Math.ceil((deadline - Date.now()) / 1000);
    if (left <= 0) {
      clearInterval(state.resendTimer);
      elements.resend.disabled = false;
      elements.resend.textContent = text.resend;
      return;
    }
    elements.resend.disabled = true;
    elements.resend.textContent = format(text.resend_wait, { seconds: left });
  };
  tick();
  state.resendTimer = setInterval(tick, 1000);
}

async function submitCode(event) {
  event.preventDefault();
  if (state.busy || state.signupId === null) {
    return;
  }
  clearFieldErrors(elements.codeForm);
  hideAlert(elements.codeAlert);

  setBusy(elements.codeSubmit, text.verifying);
  let result;
  try {
    const path = `/v1/signups/${encodeURIComponent(state.signupId)}/verify`;
    result = await postJson(path, { code: elements.codeInput.value });
  } catch (error) {
    if (!(error instanceof NetworkError)) {
      throw error;
    }
    showAlert(elements.codeAlert, text.network_error);
    return;
  } finally {
    setBusy(elements.codeSubmit, null);
  }

  if (result.status === 200 && result.payload) {
    showDone(result.payload);
    return;
  }
  const problems = result.payload?.error?.fields;
  if (result.status === 422 && Array.isArray(problems)) {
    const { placed, unplaced } = placeFieldErrors(elements.codeForm, problems);
    if (unplaced.length > 0) {
      showAlert(elements.codeAlert, unplaced.map((problem) => problem.message).join(joiner));
    }
    if (placed.length > 0) {
      elements.codeInput.focus();
      elements.codeInput.select();
    }
    return;
  }
  showAlert(elements.codeAlert, errorMessage(result));
}

async function resendCode() {
  if (state.busy || state.body === null || elements.resend.disabled) {
    return;
  }
  await requestCode(state.body, "resend");
}

function editDetails() {
  clearInterval(state.resendTimer);
  showStep("details");
  document.getElementById("name").focus();
}

// ---------------------------------------------------------------- step 3: done

function showDone(payload) {
  clearInterval(state.resendTimer);
  elements.doneStatus.textContent = payload.message ?? "";
  elements.emailNotice.textContent = format(text.email_notice, { email: state.body.email.trim() });

  const nextStep = payload.next_step ?? {};
  elements.paymentMessage.textContent = nextStep.message ?? "";
  const checkoutUrl = nextStep.available ? safeCheckoutUrl(nextStep.checkout_url) : null;
  showStep("done");
  elements.doneTitle.focus();
  if (checkoutUrl === null) {
    return;
  }

  elements.checkoutLink.href = checkoutUrl;
  elements.checkoutLink.hidden = false;
  elements.stay.hidden = false;
  let left = REDIRECT_SECONDS;
  elements.redirectStatus.textContent = format(text.redirect_in, { seconds: left });
  state.redirectTimer = setInterval(() => {
    left -= 1;
    if (left <= 0) {
      clearInterval(state.redirectTimer);
      window.location.assign(checkoutUrl);
      return;
    }
    elements.redirectStatus.textContent = format(text.redirect_in, { seconds: left });
  }, 1000);
}

function stayOnPage() {
  clearInterval(state.redirectTimer);
  elements.redirectStatus.textContent = text.redirect_stopped;
  elements.stay.hidden = true;
  elements.checkoutLink.focus();
}

// ---------------------------------------------------------------- consent texts

// Return the lines of the "## <heading>" section of a consent text, or every line without it.
function consentSection(markdown, heading) {
  const lines = markdown.split(/\r?\n/);
  const start = lines.findIndex((line) => line.trim() === `## ${heading}`);
  if (start < 0) {
    return lines;
  }
  const rest = lines.slice(start + 1);
  const end = rest.findIndex((line) => line.startsWith("## "));
  return end < 0 ? rest : rest.slice(0, end);
}

// Render the paragraphs and "-" or "1." lists of plain Markdown as text nodes, never as HTML.
function renderConsent(target, lines) {
  target.replaceChildren();
  let block = null;
  let item = null;
  for (const raw of lines) {
    const line = raw.trim();
    const marker = /^(-|\d+\.)\s+(.*)$/.exec(line);
    if (line === "" || line.startsWith("#")) {
      block = null;
      item = null;
    } else if (marker) {
      const ordered = marker[1] !== "-";
      if (block === null || block.tagName !== (ordered ? "OL" : "UL")) {
        block = document.createElement(ordered ? "ol" : "ul");
        target.append(block);
      }
      item = document.createElement("li");
      item.textContent = marker[2];
      block.append(item);
    } else if (item !== null) {
      item.textContent += joiner + line;
    } else if (block !== null && block.tagName === "P") {
      block.textContent += joiner + line;
    } else {
      block = document.createElement("p");
      block.textContent = line;
      target.append(block);
    }
  }
}

async function loadConsentText(details) {
  const target = details.querySelector(".consent-text");
  const consent = state.config?.consents[details.dataset.consent];
  if (!consent) {
    target.textContent = text.consent_error;
    return;
  }
  target.textContent = text.consent_loading;
  try {
    const response = await fetch(new URL(consent.text, import.meta.url));
    if (!response.ok) {
      throw new Error(`HTTP ${response.status}`);
    }
    renderConsent(target, consentSection(await response.text(), text.consent_section));
    details.dataset.loaded = "true";
  } catch {
    target.textContent = text.consent_error;
  }
}

// ---------------------------------------------------------------- start

function keepQueryOnLanguageLinks() {
  if (!window.location.search) {
    return;
  }
  for (const link of document.querySelectorAll("a[data-keep-query]")) {
    const url = new URL(link.getAttribute("href"), window.location.href);
    url.search = window.location.search;
    link.href = url.href;
  }
}

function prefillReferralCode() {
  const code = new URLSearchParams(window.location.search).get("ref");
  if (code && REFERRAL_CODE.test(code)) {
    document.getElementById("referral_code").value = code;
  }
}

async function start() {
  for (const control of document.querySelectorAll("form input")) {
    control.dataset.describedby = control.getAttribute("aria-describedby") ?? "";
  }
  keepQueryOnLanguageLinks();
  prefillReferralCode();
  elements.detailsForm.addEventListener("submit", submitDetails);
  elements.codeForm.addEventListener("submit", submitCode);
  elements.resend.addEventListener("click", resendCode);
  elements.editDetails.addEventListener("click", editDetails);
  elements.stay.addEventListener("click", stayOnPage);
  for (const details of document.querySelectorAll("details[data-consent]")) {
    details.addEventListener("toggle", () => {
      if (details.open && details.dataset.loaded !== "true") {
        loadConsentText(details);
      }
    });
  }

  try {
    const response = await fetch(new URL("config.json", import.meta.url), { cache: "no-cache" });
    if (!response.ok) {
      throw new Error(`HTTP ${response.status}`);
    }
    state.config = await response.json();
  } catch {
    elements.detailsSubmit.setAttribute("aria-disabled", "true");
    showAlert(elements.detailsAlert, text.config_error);
    return;
  }

  for (const container of document.querySelectorAll("[data-consent].consent")) {
    container.hidden = !(container.dataset.consent in state.config.consents);
  }
  document.body.dataset.ready = "true";
}

start();
