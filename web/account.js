// The account page: sign-in with a code by SMS, then the subscriber's account in sections
// (overview, alerts with their checklists, reports and the dossier, quarterly checks,
// notification settings, export and deletion). It sends requests only to the API named in config.json. The access token is kept
// in sessionStorage and removed on sign-out, when it expires and when the API rejects it.

import {
  ApiError,
  NetworkError,
  SessionEndedError,
  configureApi,
  forgetSession,
  readSession,
  request,
  saveSession,
} from "./account-api.js";
import {
  renderAlerts,
  renderChecks,
  renderDataRights,
  renderPreferences,
  renderReports,
  renderSummary,
} from "./account-sections.js";
import {
  clearFieldErrors,
  el,
  errorMessage,
  format,
  hideAlert,
  joiner,
  locale,
  maskMobile,
  placeFieldErrors,
  setBusy,
  showAlert,
  text,
} from "./account-ui.js";

// The sign-in response does not say when a new code may be requested. 60 s is the API's
// default (OtpResendIntervalSeconds), and a 429 carries the real wait in Retry-After.
const DEFAULT_RESEND_SECONDS = 60;

// The sections of the signed-in page, in order. To add a section, write its
// `render(body, page)` in account-sections.js (it loads its data and fills `body`), add its
// title to page-text in both pages, and list it here.
const SECTIONS = [
  { id: "summary", title: () => text.section_summary, render: renderSummary },
  { id: "alerts", title: () => text.section_alerts, render: renderAlerts },
  { id: "reports", title: () => text.section_reports, render: renderReports },
  { id: "checks", title: () => text.section_checks, render: renderChecks },
  { id: "preferences", title: () => text.section_preferences, render: renderPreferences },
  { id: "data", title: () => text.section_data, render: renderDataRights },
];

const elements = {
  signInTitle: document.getElementById("sign-in-title"),
  signInNotice: document.getElementById("sign-in-notice"),
  signInAlert: document.getElementById("sign-in-alert"),
  signInForm: document.getElementById("sign-in-form"),
  signInSubmit: document.getElementById("sign-in-submit"),
  mobileInput: document.getElementById("mobile"),
  codeForm: document.getElementById("code-form"),
  codeAlert: document.getElementById("code-alert"),
  codeStatus: document.getElementById("code-status"),
  codeInput: document.getElementById("code"),
  codeSubmit: document.getElementById("code-submit"),
  resend: document.getElementById("resend"),
  changeMobile: document.getElementById("change-mobile"),
  accountTitle: document.getElementById("account-title"),
  accountSections: document.getElementById("account-sections"),
  signOut: document.getElementById("sign-out"),
};

const state = {
  configured: false,
  // A sign-in request is running, so the sign-in forms ignore another submit.
  busy: false,
  mobile: null,
  signInId: null,
  resendTimer: null,
  expiryTimer: null,
};

// Page actions that the sections may call.
const page = { endSession, reloadSection };

function showStep(name) {
  for (const step of document.querySelectorAll(".step")) {
    step.hidden = step.id !== `step-${name}`;
  }
}

function setSignInBusy(button, busyText) {
  state.busy = busyText !== null;
  setBusy(button, busyText);
}

// ---------------------------------------------------------------- session

// Forget the token, remove the account's data from the page and go back to sign-in.
function endSession(notice) {
  clearTimeout(state.expiryTimer);
  forgetSession();
  elements.accountSections.replaceChildren();
  document.body.dataset.signedIn = "false";
  showSignIn(notice);
}

function signOut() {
  endSession(text.signed_out);
}

// ---------------------------------------------------------------- sign-in

function showSignIn(notice) {
  clearInterval(state.resendTimer);
  state.signInId = null;
  hideAlert(elements.signInAlert);
  clearFieldErrors(elements.signInForm);
  elements.signInNotice.textContent = notice ?? "";
  elements.signInNotice.hidden = !notice;
  showStep("sign-in");
  elements.signInTitle.focus();
}

async function requestCode(origin) {
  const button = origin === "resend" ? elements.resend : elements.signInSubmit;
  const alert = origin === "resend" ? elements.codeAlert : elements.signInAlert;
  hideAlert(alert);
  setSignInBusy(button, text.sending);
  let result;
  try {
    result = await request("POST", "/v1/sign-in", { body: { mobile: state.mobile } });
  } catch (error) {
    if (!(error instanceof NetworkError)) {
      throw error;
    }
    showAlert(alert, text.network_error);
    return;
  } finally {
    setSignInBusy(button, null);
  }

  if (result.status === 202 && result.payload?.sign_in_id) {
    state.signInId = result.payload.sign_in_id;
    showCodeStep(result.payload);
    return;
  }
  const problems = result.payload?.error?.fields;
  if (result.status === 422 && Array.isArray(problems)) {
    showStep("sign-in");
    const unplaced = placeFieldErrors(elements.signInForm, problems);
    if (unplaced.length > 0) {
      showAlert(elements.signInAlert, unplaced.map((problem) => problem.message).join(joiner));
    }
    return;
  }
  showAlert(alert, errorMessage({ result }));
  if (origin === "resend" && result.retryAfter !== null) {
    startResendCountdown(result.retryAfter);
  }
}

async function submitMobile(event) {
  event.preventDefault();
  if (state.busy || !state.configured) {
    return;
  }
  clearFieldErrors(elements.signInForm);
  elements.signInNotice.hidden = true;
  state.mobile = elements.mobileInput.value;
  await requestCode("sign-in");
}

function showCodeStep(payload) {
  clearFieldErrors(elements.codeForm);
  hideAlert(elements.codeAlert);
  elements.codeInput.value = "";
  const sentTo = format(text.code_sent_to, { mobile: maskMobile(state.mobile) });
  elements.codeStatus.textContent = [payload.message, sentTo].filter(Boolean).join(joiner);
  showStep("code");
  elements.codeInput.focus();
  startResendCountdown(DEFAULT_RESEND_SECONDS);
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
  if (state.busy || state.signInId === null) {
    return;
  }
  clearFieldErrors(elements.codeForm);
  hideAlert(elements.codeAlert);

  setSignInBusy(elements.codeSubmit, text.verifying);
  let result;
  try {
    const path = `/v1/sign-in/${encodeURIComponent(state.signInId)}/verify`;
    result = await request("POST", path, { body: { code: elements.codeInput.value } });
  } catch (error) {
    if (!(error instanceof NetworkError)) {
      throw error;
    }
    showAlert(elements.codeAlert, text.network_error);
    return;
  } finally {
    setSignInBusy(elements.codeSubmit, null);
  }

  if (result.status === 200 && typeof result.payload?.access_token === "string") {
    clearInterval(state.resendTimer);
    saveSession(result.payload.access_token, result.payload.expires_in);
    elements.codeInput.value = "";
    showAccount();
    return;
  }
  const problems = result.payload?.error?.fields;
  if (result.status === 422 && Array.isArray(problems)) {
    const unplaced = placeFieldErrors(elements.codeForm, problems);
    if (unplaced.length > 0) {
      showAlert(elements.codeAlert, unplaced.map((problem) => problem.message).join(joiner));
    } else {
      elements.codeInput.select();
    }
    return;
  }
  showAlert(elements.codeAlert, errorMessage({ result }));
}

async function resendCode() {
  if (state.busy || state.mobile === null || elements.resend.disabled) {
    return;
  }
  await requestCode("resend");
}

function changeMobile() {
  showSignIn(null);
  elements.mobileInput.focus();
}

// ---------------------------------------------------------------- the signed-in page

function showAccount() {
  const session = readSession();
  if (session === null) {
    showSignIn(null);
    return;
  }
  clearTimeout(state.expiryTimer);
  state.expiryTimer = setTimeout(() => endSession(text.session_ended), session.expires_at - Date.now());
  document.body.dataset.signedIn = "true";

  elements.accountSections.replaceChildren();
  for (const section of SECTIONS) {
    const titleId = `section-${section.id}-title`;
    const options = { className: "card", id: `section-${section.id}`, "aria-labelledby": titleId };
    const container = el("section", options, [
      el("h2", { id: titleId, text: section.title() }),
      el("div", { className: "section-body" }),
    ]);
    elements.accountSections.append(container);
    loadSection(section, container);
  }
  showStep("account");
  elements.accountTitle.focus();
}

function reloadSection(id) {
  const section = SECTIONS.find((candidate) => candidate.id === id);
  const container = document.getElementById(`section-${id}`);
  if (section && container) {
    loadSection(section, container);
  }
}

// Render one section. Its `data-state` (loading, loaded, error) lets tests wait for it.
async function loadSection(section, container) {
  const body = container.querySelector(".section-body");
  container.dataset.state = "loading";
  body.setAttribute("aria-busy", "true");
  body.replaceChildren(el("p", { className: "loading", text: text.loading }));
  try {
    await section.render(body, page);
    container.dataset.state = "loaded";
    // A link such as account/#alerts (e-mails may send one) opens at its section.
    if (window.location.hash === `#${section.id}`) {
      container.scrollIntoView({ block: "start" });
    }
  } catch (error) {
    if (error instanceof SessionEndedError || !container.isConnected) {
      return;
    }
    container.dataset.state = "error";
    const retry = el("button", { type: "button", text: text.retry });
    retry.addEventListener("click", () => loadSection(section, container));
    const alert = el("div", { className: "alert", role: "alert" }, [el("p", { text: errorMessage(error) })]);
    body.replaceChildren(alert, retry);
    if (!(error instanceof ApiError || error instanceof NetworkError)) {
      throw error;
    }
  } finally {
    body.removeAttribute("aria-busy");
  }
}

// ---------------------------------------------------------------- start

async function start() {
  for (const control of document.querySelectorAll("form input")) {
    control.dataset.describedby = control.getAttribute("aria-describedby") ?? "";
  }
  elements.signInForm.addEventListener("submit", submitMobile);
  elements.codeForm.addEventListener("submit", submitCode);
  elements.resend.addEventListener("click", resendCode);
  elements.changeMobile.addEventListener("click", changeMobile);
  elements.signOut.addEventListener("click", signOut);

  try {
    const response = await fetch(new URL("config.json", import.meta.url), { cache: "no-cache" });
    if (!response.ok) {
      throw new Error(`HTTP ${response.status}`);
    }
    const config = await response.json();
    configureApi(config.api_base_url, locale, () => endSession(text.session_ended));
    state.configured = true;
  } catch {
    elements.signInSubmit.setAttribute("aria-disabled", "true");
    showAlert(elements.signInAlert, text.config_error);
    return;
  }

  // A reload, or a return from an official service's page, keeps the tab's session.
  if (readSession() !== null) {
    showAccount();
  } else {
    document.body.dataset.signedIn = "false";
  }
  document.body.dataset.ready = "true";
}

start();
