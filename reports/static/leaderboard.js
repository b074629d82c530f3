// Sorting and the task filter of the leaderboard's tables; no dependencies, works from file://.
// The page splits one row per system and task over several tables (so each fits the page): sorting one table
// puts the rows of every other table in the same order, and the filter hides the same rows in all.
(function () {
  "use strict";
  const tables = Array.from(document.querySelectorAll("table.board"));
  const filter = document.getElementById("task-filter");
  const count = document.getElementById("row-count");
  const rowId = r => r.dataset.system + "\u0000" + r.dataset.task;

  function key(row, col, type) {
    const cell = row.cells[col];
    if (type === "num") {
      const v = cell.dataset.value;
      return v === undefined || v === "" ? null : parseFloat(v);
    }
    return cell.textContent.trim().toLowerCase();
  }

  function sortBy(th) {
    const table = th.closest("table"), col = th.cellIndex, type = th.dataset.type;
    // First click: numbers high to low (rank low to high), text A to Z; each further click reverses.
    let desc;
    if (th.classList.contains("sorted-asc")) desc = true;
    else if (th.classList.contains("sorted-desc")) desc = false;
    else desc = type === "num" && col !== 0;
    tables.forEach(t => t.querySelectorAll("th").forEach(h => h.classList.remove("sorted-asc", "sorted-desc")));
    th.classList.add(desc ? "sorted-desc" : "sorted-asc");
    const rows = Array.from(table.tBodies[0].rows);
    rows.sort((a, b) => {
      const x = key(a, col, type), y = key(b, col, type);
      if (x === null && y === null) return 0;
      if (x === null) return 1;  // missing values last in both directions
      if (y === null) return -1;
      const c = x < y ? -1 : x > y ? 1 : 0;
      return desc ? -c : c;
    });
    const order = new Map(rows.map((r, i) => [rowId(r), i]));
    tables.forEach(t => {
      const body = t.tBodies[0];
      Array.from(body.rows).sort((a, b) => order.get(rowId(a)) - order.get(rowId(b))).forEach(r => body.appendChild(r));
    });
  }

  function applyFilter() {
    const task = filter.value;
    // One task shown: its name in every row says nothing, so the task column is hidden (narrower tables).
    document.body.classList.toggle("one-task", task !== "");
    document.querySelectorAll("ul.headroom li").forEach(li => li.classList.toggle("hidden", task !== "" && li.dataset.task !== task));
    let shown = 0;
    tables.forEach((t, i) => Array.from(t.tBodies[0].rows).forEach(r => {
      const hide = task !== "" && r.dataset.task !== task;
      r.classList.toggle("hidden", hide);
      if (!hide && i === 0) shown += 1;
    }));
    count.textContent = shown + " row" + (shown === 1 ? "" : "s");
    if (history.replaceState) history.replaceState(null, "", task ? "#task=" + encodeURIComponent(task) : "#");
  }

  tables.forEach(t => t.querySelectorAll("th.sortable").forEach(th => th.addEventListener("click", () => sortBy(th))));
  filter.addEventListener("change", applyFilter);
  const m = /task=([^&]+)/.exec(location.hash);
  if (m && Array.from(filter.options).some(o => o.value === decodeURIComponent(m[1]))) filter.value = decodeURIComponent(m[1]);
  sortBy(tables[0].querySelector("th"));  // by rank, ascending
  applyFilter();
})();
