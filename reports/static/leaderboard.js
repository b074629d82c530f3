// Sorting and the task filter of the leaderboard table; no dependencies, works from file://.
(function () {
  "use strict";
  const table = document.getElementById("leaderboard");
  const body = table.tBodies[0];
  const filter = document.getElementById("task-filter");
  const count = document.getElementById("row-count");

  function key(row, col, type) {
    const cell = row.cells[col];
    if (type === "num") {
      const v = cell.dataset.value;
      return v === undefined || v === "" ? null : parseFloat(v);
    }
    return cell.textContent.trim().toLowerCase();
  }

  function sortBy(th) {
    const col = th.cellIndex, type = th.dataset.type;
    // First click: numbers high to low (rank low to high), text A to Z; each further click reverses.
    let desc;
    if (th.classList.contains("sorted-asc")) desc = true;
    else if (th.classList.contains("sorted-desc")) desc = false;
    else desc = type === "num" && col !== 0;
    table.querySelectorAll("th").forEach(h => h.classList.remove("sorted-asc", "sorted-desc"));
    th.classList.add(desc ? "sorted-desc" : "sorted-asc");
    const rows = Array.from(body.rows);
    rows.sort((a, b) => {
      const x = key(a, col, type), y = key(b, col, type);
      if (x === null && y === null) return 0;
      if (x === null) return 1;  // missing values last in both directions
      if (y === null) return -1;
      const c = x < y ? -1 : x > y ? 1 : 0;
      return desc ? -c : c;
    });
    rows.forEach(r => body.appendChild(r));
  }

  function applyFilter() {
    const task = filter.value;
    let shown = 0;
    Array.from(body.rows).forEach(r => {
      const hide = task !== "" && r.dataset.task !== task;
      r.classList.toggle("hidden", hide);
      if (!hide) shown += 1;
    });
    count.textContent = shown + " row" + (shown === 1 ? "" : "s");
    if (history.replaceState) history.replaceState(null, "", task ? "#task=" + encodeURIComponent(task) : "#");
  }

  table.querySelectorAll("th.sortable").forEach(th => th.addEventListener("click", () => sortBy(th)));
  filter.addEventListener("change", applyFilter);
  const m = /task=([^&]+)/.exec(location.hash);
  if (m && Array.from(filter.options).some(o => o.value === decodeURIComponent(m[1]))) filter.value = decodeURIComponent(m[1]);
  sortBy(table.querySelector("th"));  // by rank, ascending
  applyFilter();
})();
