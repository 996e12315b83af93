import { Uploader } from "shardrop";

const $ = (id) => document.getElementById(id);

// As any app does: sign in for a session token, and give it to the Uploader, which sends
// it as `Authorization: Bearer` on every API call.
async function signIn() {
  const res = await fetch("/api/v1/sessions", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: $("username").value, password: $("password").value }),
  });
  const body = await res.json();
  if (!res.ok) throw Object.assign(new Error(body.message), { code: body.code });
  return body.token;
}

$("go").addEventListener("click", async () => {
  try {
    const uploader = new Uploader({ concurrency: 4, token: await signIn() });
    const task = uploader.upload($("pick").files[0], { onStateChange: (s) => ($("state").textContent = s) });
    $("result").textContent = JSON.stringify(await task.done);
  } catch (e) {
    $("result").textContent = `error ${e.code}: ${e.message}`;
  }
});
