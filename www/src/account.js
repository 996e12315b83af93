// The account side of the page: the sign-in panel (sign in, or create an account and sign
// in), the "Signed in as" bar with the storage used, and sign-out. Uploads and files belong
// to an account, so nothing else of the page shows until someone is signed in; the page
// hears of it through `onSignIn(user)` and `onSignOut()`.

import { bytes } from "./format.js";
import { api, currentToken, onSessionEnded, setToken } from "./session.js";

const $ = (id) => document.getElementById(id);
let hooks = { onSignIn() {}, onSignOut() {} };

/** Shows one side: the workspace and account bar when signed in, the sign-in panel otherwise. */
function show(signedIn) {
  $("sign-in").hidden = signedIn;
  $("account").hidden = !signedIn;
  $("workspace").hidden = !signedIn;
  document.body.dataset.auth = signedIn ? "signed-in" : "signed-out";
}

function say(error) {
  $("auth-error").textContent = error?.message ?? "";
  $("auth-error").dataset.code = error?.code ?? "";
}

function showUsage(user) {
  const limited = user.quota_bytes != null;
  $("usage").hidden = !limited;
  $("usage").textContent = limited ? `${bytes(user.used_bytes)} of ${bytes(user.quota_bytes)} used` : "";
}

function signedIn(user) {
  $("who").textContent = user.username;
  showUsage(user);
  say(null);
  show(true);
  hooks.onSignIn(user);
}

function signedOut(error = null) {
  setToken(null);
  hooks.onSignOut();
  show(false);
  say(error);
}

/** The session is over (a 401): back to the sign-in panel, saying why. */
export function sessionEnded() {
  signedOut({ code: "unauthorized", message: "Your session has ended. Sign in again." });
}

/** Fetches the storage used again (after an upload or a delete); quiet on failure. */
export async function refreshUsage() {
  const mine = currentToken();
  try {
    const user = await api("GET", "/users/me");
    if (currentToken() === mine) showUsage(user);
  } catch {}
}

// The server's own words, which name the problem (taken, wrong password, too many tries).
function words(e) {
  const text = e.message.charAt(0).toUpperCase() + e.message.slice(1);
  const wait = e.code === "rate-limited" && e.retryAfter ? ` Try again in ${e.retryAfter} s.` : "";
  return { code: e.code, message: text + wait };
}

async function submit(e) {
  e.preventDefault();
  const creating = e.submitter?.value === "sign-up";
  const credentials = { username: $("username").value.trim(), password: $("password").value };
  const buttons = $("sign-in-form").querySelectorAll("button");
  buttons.forEach((b) => (b.disabled = true));
  say(null);
  try {
    // A new account is not a session yet: sign in with the same credentials right after.
    if (creating) await api("POST", "/users", { body: credentials, bearer: null });
    const session = await api("POST", "/sessions", { body: credentials, bearer: null });
    setToken(session.token);
    $("password").value = "";
    signedIn(session.user);
    $("zone-title").focus();
  } catch (err) {
    say(words(err));
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

async function signOut() {
  // The token is forgotten here whatever the server says: signing out must always work.
  try {
    await api("DELETE", "/sessions/current");
  } catch {}
  signedOut();
  $("username").focus();
}

/** Wires the panel and resumes a session kept from an earlier visit, if it still works. */
export async function startAccount(h) {
  hooks = h;
  onSessionEnded(sessionEnded);
  $("sign-in-form").addEventListener("submit", submit);
  $("sign-out").addEventListener("click", signOut);
  if (!currentToken()) return signedOut();
  try {
    signedIn(await api("GET", "/users/me"));
  } catch (e) {
    // A 401 has already signed out. Otherwise keep the token: a reload may find the server back.
    if (e.status !== 401) {
      show(false);
      say({ code: e.code, message: `Your session could not be checked: ${e.message} Reload to try again.` });
    }
  }
}
