import { Uploader } from "shardrop";

const uploader = new Uploader({ concurrency: 4 });
const $ = (id) => document.getElementById(id);

$("go").addEventListener("click", async () => {
  const task = uploader.upload($("pick").files[0], { onStateChange: (s) => ($("state").textContent = s) });
  try {
    $("result").textContent = JSON.stringify(await task.done);
  } catch (e) {
    $("result").textContent = `error ${e.code}: ${e.message}`;
  }
});
