// The live part of a storage node's /state page: every second it reads /dump and redraws
// the table. Keys and values are written with textContent, never as markup.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const rows = Number(document.currentScript.dataset.rows) || 2000;
  let seen = null;
  let last = null;

  function cut(text) {
    const chars = Array.from(text);
    return chars.length > 120 ? chars.slice(0, 120).join("") + "…" : text;
  }

  function draw(dump) {
    const filter = $("filter").value.trim().toLowerCase();
    const keys = Object.keys(dump.data);
    const fresh = seen === null ? new Set() : new Set(keys.filter((k) => !seen.has(k)));
    seen = new Set(keys);
    $("count").textContent = dump.count;
    const body = document.createElement("tbody");
    body.id = "rows";
    for (const k of keys) {
      if (filter && !k.toLowerCase().includes(filter)) continue;
      const text = JSON.stringify(dump.data[k]);
      const tr = document.createElement("tr");
      if (fresh.has(k)) tr.className = "new";
      const kd = document.createElement("td");
      kd.textContent = k;
      const vd = document.createElement("td");
      vd.textContent = cut(text);
      if (cut(text) !== text) {
        const size = document.createElement("span");
        size.className = "size";
        size.textContent = " (" + new TextEncoder().encode(text).length + " bytes)";
        vd.appendChild(size);
      }
      tr.append(kd, vd);
      body.appendChild(tr);
    }
    $("rows").replaceWith(body);
    $("more").textContent = keys.length < dump.count ? "Showing the first " + keys.length + " of " + dump.count + " keys." : "";
  }

  async function poll() {
    try {
      const r = await fetch("dump?limit=" + rows, { cache: "no-store", headers: { "ngrok-skip-browser-warning": "1" } });
      if (r.ok) {
        last = await r.json();
        draw(last);
        $("live").textContent = "live · updated " + new Date().toLocaleTimeString();
      }
    } catch (e) {
      $("live").textContent = "live · cannot reach the node";
    }
    setTimeout(poll, 1000);
  }

  $("filter").addEventListener("input", () => last && draw(last));
  poll();
})();
