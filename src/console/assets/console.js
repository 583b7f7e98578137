// ctwatch console: small progressive enhancements. Every page works without this file.
// Text from the server or the feed is only ever inserted with textContent, never as HTML.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Rows with data-href are clickable (the first link in the row still works without JS).
  for (const row of document.querySelectorAll("tr[data-href]")) {
    row.addEventListener("click", (ev) => {
      if (ev.target.closest("a, button, input, select")) return;
      const href = row.getAttribute("data-href");
      if (href && href.startsWith("/")) window.location.assign(href);
    });
  }
  // The overview refreshes itself every 30 s while visible.
  if (window.location.pathname === "/") {
    setInterval(() => { if (!document.hidden) window.location.reload(); }, 30000);
  }
  const live = document.getElementById("live-table");
  if (live) startLive(live);
});

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function startLive(table) {
  const body = table.querySelector("tbody");
  const status = document.getElementById("live-status");
  const select = document.querySelector("#live-controls select");
  const pause = document.getElementById("live-pause");
  let paused = false;
  let source = null;
  let count = 0;

  const connect = () => {
    if (source) source.close();
    const filter = select.value;
    source = new EventSource("/stream/sse?format=lite" + (filter ? "&" + filter : ""));
    status.textContent = "connected, waiting for verified entries…";
    source.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (msg.message_type !== "certificate_update" || paused) return;
      const d = msg.data;
      const tr = document.createElement("tr");
      tr.className = "new";
      const names = d.leaf_cert.all_domains || [];
      const shown = names.slice(0, 3).join(", ") + (names.length > 3 ? " (+" + (names.length - 3) + ")" : "");
      tr.appendChild(cell(new Date(d.seen * 1000).toLocaleTimeString()));
      const namesCell = cell("", "names");
      const a = document.createElement("a");
      a.href = "/cert/" + encodeURIComponent(d.tbs_sha256);
      a.textContent = shown || "(no DNS name)";
      namesCell.appendChild(a);
      tr.appendChild(namesCell);
      tr.appendChild(cell(d.leaf_cert.issuer.CN || d.leaf_cert.issuer.O || "", "small"));
      tr.appendChild(cell(d.source.name + " #" + d.cert_index, "small"));
      tr.appendChild(cell((d.matches || []).map((m) => m.item).join(", ")));
      body.insertBefore(tr, body.firstChild);
      while (body.rows.length > 200) body.deleteRow(body.rows.length - 1);
      count += 1;
      status.textContent = count + " verified entries received";
    };
    source.addEventListener("error", (ev) => {
      if (ev.data) status.textContent = ev.data;
      else status.textContent = "disconnected; retrying…";
    });
  };
  select.addEventListener("change", connect);
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
  });
  connect();
}
