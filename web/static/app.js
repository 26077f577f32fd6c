// Signoff UI: "add a row" for table fields, and the state diagram (mermaid, vendored locally — no CDN).
document.addEventListener("click", function (ev) {
  var btn = ev.target.closest ? ev.target.closest("button.add-row") : null;
  if (!btn) return;
  var table = document.querySelector('table[data-table="' + btn.dataset.for + '"] tbody');
  var last = table.rows[table.rows.length - 1];
  var row = last.cloneNode(true);
  var n = table.rows.length;
  row.querySelectorAll("input, select, textarea").forEach(function (el) {
    el.name = el.name.replace(/\.(\d+)\.([^.]+)$/, "." + n + ".$2");
    if (el.type === "checkbox") el.checked = false; else el.value = "";
    el.classList.remove("bad");
  });
  row.querySelectorAll(".error").forEach(function (el) { el.remove(); });
  table.appendChild(row);
});
if (window.mermaid && document.querySelector("pre.mermaid")) {
  window.mermaid.initialize({ startOnLoad: false, securityLevel: "strict", theme: "neutral" });
  window.mermaid.run({ querySelector: "pre.mermaid" }).then(function () {
    document.body.dataset.diagram = "ready";
  }).catch(function () { document.body.dataset.diagram = "failed"; });
}
