// Task choice, text search and status filter of a system's samples page; works from file://.
(function () {
  "use strict";
  const task = document.getElementById("task-select");
  const search = document.getElementById("search");
  const status = document.getElementById("status-filter");
  const count = document.getElementById("sample-count");
  const samples = Array.from(document.querySelectorAll("details.sample"));

  function apply() {
    const q = search.value.trim().toLowerCase(), st = status.value;
    let shown = 0;
    document.querySelectorAll("div.samples").forEach(d => d.classList.toggle("hidden", d.dataset.task !== task.value));
    samples.forEach(s => {
      const ok = s.dataset.task === task.value && (!st || s.dataset.statuses.split(" ").includes(st)) &&
                 (!q || s.textContent.toLowerCase().includes(q));
      s.classList.toggle("hidden", !ok);
      if (ok) shown += 1;
    });
    count.textContent = shown + " of " + samples.filter(s => s.dataset.task === task.value).length + " samples";
  }

  const m = /task=([^&]+)/.exec(location.hash);
  if (m && Array.from(task.options).some(o => o.value === decodeURIComponent(m[1]))) task.value = decodeURIComponent(m[1]);
  [task, status].forEach(el => el.addEventListener("change", apply));
  search.addEventListener("input", apply);
  apply();
})();
