// The live part of the proxy's /state page. It polls /state.json every second, then
// follows /events (each sweep of the nodes, pushed by the proxy) and redraws the page
// from it; when the stream fails, or a filter narrows the keys, it polls again.
// Everything a node or a user sent is written with textContent (never innerHTML), so a
// key like <script> stays text. Tables are updated row by row, in place.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  // "node\u0000key" of the keys seen so far; a key not in it is new, and highlighted.
  // While a filter hides keys, nothing is forgotten, so clearing it highlights nothing.
  let seen = null;
  let last = JSON.parse($("first").textContent);
  // The nodes the last explanation named: their cards stay lit until the next one.
  let lit = [];

  function el(tag, props, children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === "text") e.textContent = v;
      else if (k === "style") e.style.cssText = v;
      else e.setAttribute(k, v);
    }
    for (const c of children || []) if (c) e.appendChild(c);
    return e;
  }

  // Makes `table`'s rows (after `head` header rows) match `rows`, each a list of cells
  // `{text, cls, parts}`: a row or cell that did not change is left as it is, so a
  // screen reader (aria-live) hears what is new, not the whole table every second.
  function syncRows(table, rows, head = 1) {
    while (table.rows.length > rows.length + head) table.deleteRow(-1);
    rows.forEach((cells, i) => {
      const tr = table.rows[i + head] || table.insertRow();
      if (cells.rowClass !== undefined && tr.className !== cells.rowClass) tr.className = cells.rowClass;
      cells.forEach((c, j) => {
        const td = tr.cells[j] || tr.insertCell();
        const key = JSON.stringify(c);
        if (td.dataset.was === key) return;
        td.dataset.was = key;
        td.className = c.cls || "";
        if (c.parts) td.replaceChildren(...c.parts());
        else td.textContent = c.text;
      });
    });
  }

  const colours = new Map(); // node name -> its colour
  function named(name, text) {
    const c = colours.get(name);
    return el("span", c ? { style: "color: " + c + "; font-weight: bold", text } : { text });
  }

  // One card per node, kept from one update to the next and filled in place: a list
  // scrolled by hand stays scrolled, and a foreign node's frame is never moved (moving an
  // iframe reloads it) nor reloaded while its page is unchanged.
  const cards = new Map(); // node name -> { root, head, frame, list }

  function cardFor(c) {
    let k = cards.get(c.name);
    if (!k) {
      k = { root: el("div", { class: "card" }), head: el("div"), frame: el("div"), list: el("div", { class: "keys" }) };
      k.table = el("table");
      k.list.append(k.table);
      k.root.append(k.head, k.frame, k.list);
      cards.set(c.name, k);
    }
    return k;
  }

  function fill(c, fresh, filter) {
    const k = cardFor(c);
    k.root.style.borderColor = c.colour;
    k.root.classList.toggle("is-down", !c.up);
    k.root.classList.toggle("lit", lit.includes(c.name));
    k.head.replaceChildren(
      el("h2", { text: c.name }),
      el("div", { class: "url", text: c.url }),
      el("div", {}, [
        el("span", { class: "badge " + (c.up ? "up" : "down"), text: c.up ? "UP" : "DOWN" }),
        c.joined ? el("span", { class: "badge joined", text: "joined" }) : null,
        c.up ? document.createTextNode(" " + c.latency_ms + " ms") : null,
      ]),
      ...[
        c.also_in && c.also_in.length ? el("div", { class: "also", text: "also in pool " + c.also_in.join(", ") }) : null,
        c.fault ? el("div", {}, [el("span", { class: "badge fault", text: c.fault })]) : null,
        teacher() ? el("div", { class: "teach" }, [
          chaosButton("partition", c.name, { node: c.name, fault: "partition" }),
          chaosButton("slow 300 ms", c.name, { node: c.name, fault: "slow", ms: 300 }),
          chaosButton("heal", c.name, null),
        ]) : null,
        c.down_note ? el("div", { class: "err", text: c.down_note }) : null,
        c.count !== null ? el("div", { class: "count", text: c.count + " keys" }) : null,
        c.error ? el("div", { class: "err", text: c.error }) : null,
        c.count !== null && c.keys.length < c.count
          ? el("div", { class: "size", text: "showing " + c.keys.length + " of " + c.count }) : null,
      ].filter(Boolean),
    );
    const frame = k.frame.firstChild;
    if (c.foreign_html === null) {
      k.frame.replaceChildren();
    } else if (!frame || frame.srcdoc !== c.foreign_html) {
      const f = el("iframe", { sandbox: "", referrerpolicy: "no-referrer", title: c.name + "'s own /state page" });
      f.srcdoc = c.foreign_html;
      k.frame.replaceChildren(f);
    }
    const rows = c.keys
      .filter((p) => !filter || p.key.toLowerCase().includes(filter))
      .map((p) => Object.assign([
        { text: p.key, cls: "k" },
        { text: p.value + "\u0000" + (p.cut_from || ""), parts: () => [
          document.createTextNode(p.value),
          p.cut_from ? el("span", { class: "size", text: " (" + p.cut_from + " bytes)" }) : null,
        ].filter(Boolean) },
      ], { rowClass: fresh.has(c.name + "\u0000" + p.key) ? "new" : "" }));
    syncRows(k.table, rows, 0);
    return k.root;
  }

  function drawCards(s, fresh, filter) {
    const box = $("cards");
    const roots = s.nodes.map((c) => fill(c, fresh, filter));
    const same = roots.length === box.children.length && roots.every((r, i) => box.children[i] === r);
    if (!same) box.replaceChildren(...roots); // the nodes changed (or the first update)
    for (const name of [...cards.keys()]) {
      if (!s.nodes.some((c) => c.name === name)) cards.delete(name);
    }
  }

  function replace(id, node) {
    const old = $(id);
    node.id = id;
    old.replaceWith(node);
  }

  // Sharding: each node's share of the keys, a node that is down as a hatched block that
  // says so. Replication: how complete each node is (a share means nothing there).
  function drawBar(s) {
    if (s.replicated) {
      replace("bar", el("div", { class: "complete", title: "how complete each node is" }, s.nodes.map((c) =>
        el("div", {}, [
          el("span", { text: c.name + ": " + (c.complete_pct === null ? "DOWN"
            : c.count + " of " + s.distinct_keys + " keys (" + c.complete_pct + "%)") }),
          el("div", { class: "meter" }, [el("span", { style: "background: " + c.colour + "; width: " + (c.complete_pct || 0) + "%" })]),
        ]))));
      return;
    }
    replace("bar", el("div", { class: "bar", title: "keys per node" }, s.nodes
      .filter((c) => !c.up || c.share_pct > 0)
      .map((c) => c.up
        ? el("span", { style: "background: " + c.colour + "; width: " + c.share_pct + "%", text: c.name + " " + c.share_pct + "%" })
        : el("span", { class: "gone", style: "width: " + (100 / s.n) + "%", text: c.name + " DOWN" }))));
  }

  // The way a request went, each node in its colour: "kv1 ✗ timeout → kv2 200".
  function way(r) {
    if (!r.trail || r.trail.length === 0) return () => [document.createTextNode(r.nodes.join(", "))];
    return () => r.trail.flatMap((t, i) => [
      i > 0 ? document.createTextNode(" → ") : null,
      named(t.node, t.node),
      el("span", { class: t.ok ? "" : "step-fail", text: (t.ok ? " " : " ✗ ") + t.outcome }),
    ].filter(Boolean)).concat(r.note ? [el("span", { class: "note", text: " · " + r.note })] : []);
  }

  // The teacher's chaos buttons. The token is typed once and kept in this tab's
  // sessionStorage (gone when the tab closes), sent in a header, never in a URL.
  const TOKEN = "kv-admin-token";
  function teacher() {
    try { return last.chaos_enabled && !!sessionStorage.getItem(TOKEN); } catch (e) { return false; }
  }
  async function chaos(method, body, node) {
    const msg = $("teacher-msg");
    try {
      const url = "chaos" + (method === "DELETE" && node ? "?node=" + encodeURIComponent(node) : "");
      const r = await fetch(url, {
        method,
        headers: { "Content-Type": "application/json", "Authorization": "Bearer " + sessionStorage.getItem(TOKEN), "ngrok-skip-browser-warning": "1" },
        body: body ? JSON.stringify(body) : undefined,
      });
      const e = await r.json();
      msg.textContent = r.ok ? e.message : "refused (" + r.status + "): " + e.error;
      if (r.status === 401) { sessionStorage.removeItem(TOKEN); drawTeacher(); }
    } catch (err) {
      msg.textContent = "cannot reach the proxy";
    }
  }
  function chaosButton(label, node, body) {
    const b = el("button", { type: "button", class: "chaos", "data-node": node, text: label });
    b.addEventListener("click", () => chaos(body ? "POST" : "DELETE", body, node));
    return b;
  }
  function drawTeacher() {
    $("teacher-form").hidden = !last.chaos_enabled;
    $("heal-all").hidden = !teacher();
    $("teacher-token").placeholder = teacher() ? "token in use in this tab" : "admin_token, kept in this tab only";
  }
  $("teacher-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = $("teacher-token").value.trim();
    if (t) sessionStorage.setItem(TOKEN, t);
    $("teacher-token").value = "";
    drawTeacher();
    draw(last);
  });
  $("heal-all").addEventListener("click", () => chaos("DELETE", null, null));

  // The ring (consistent-hashing mode): tokens as ticks round the circle, keys as dots
  // inside, both in their node's colour, clockwise from the top; the explained key and
  // its walk to the first token drawn in black.
  let explained = null; // {position, token} from /explain
  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    return e;
  }
  function at(frac, r) {
    const a = frac * 2 * Math.PI - Math.PI / 2;
    return [r * Math.cos(a), r * Math.sin(a)];
  }
  function drawRing(s) {
    $("ring-section").hidden = !s.ring;
    if (!s.ring) return;
    const colour = (i) => (s.nodes[i] ? s.nodes[i].colour : "#555");
    const parts = [svg("circle", { cx: 0, cy: 0, r: 100, fill: "none", stroke: "#888", "stroke-width": 1 })];
    for (const [frac, i] of s.ring.tokens) {
      const [x1, y1] = at(frac, 94);
      const [x2, y2] = at(frac, 108);
      parts.push(svg("line", { x1, y1, x2, y2, stroke: colour(i), "stroke-width": 1.5, class: "token" }));
    }
    for (const [frac, i] of s.ring.keys.slice(0, 1000)) {
      const [cx, cy] = at(frac, 86);
      parts.push(svg("circle", { cx, cy, r: 2, fill: colour(i), class: "key" }));
    }
    if (explained && explained.token !== null) {
      const [kx, ky] = at(explained.position, 86);
      const [tx, ty] = at(explained.token, 108);
      let sweep = explained.token - explained.position;
      if (sweep < 0) sweep += 1;
      const [ax, ay] = at(explained.position, 76);
      const [bx, by] = at(explained.token, 76);
      parts.push(svg("path", { d: `M ${ax} ${ay} A 76 76 0 ${sweep > 0.5 ? 1 : 0} 1 ${bx} ${by}`, fill: "none", stroke: "#111", "stroke-width": 2.5, class: "walk" }));
      parts.push(svg("line", { x1: bx, y1: by, x2: tx, y2: ty, stroke: "#111", "stroke-width": 2.5 }));
      parts.push(svg("circle", { cx: kx, cy: ky, r: 5, fill: "#111", class: "explained" }));
    }
    $("ring").replaceChildren(...parts);
  }

  function statusClass(status) {
    if (status < 300) return "status-ok";
    if (status < 500) return "status-miss";
    return "status-fail";
  }

  function draw(s) {
    const filter = $("filter").value.trim().toLowerCase();
    const now = new Set();
    s.nodes.forEach((c) => c.keys.forEach((p) => now.add(c.name + "\u0000" + p.key)));
    const fresh = new Set(seen === null ? [] : [...now].filter((k) => !seen.has(k)));
    seen = filter || s.filter ? new Set([...(seen || []), ...now]) : now;
    s.nodes.forEach((c) => colours.set(c.name, c.colour));
    $("mode").textContent = s.mode;
    $("rule").textContent = s.rule;
    $("notice").textContent = s.notice || "";
    $("notice").hidden = !s.notice;
    $("down-warning").textContent = s.down_warning || "";
    $("down-warning").hidden = !s.down_warning;
    for (const id of ["consistency", "anti-entropy"]) {
      const text = s[id.replace("-", "_")];
      $(id).textContent = text || "";
      $(id).hidden = !text;
    }
    drawTeacher();
    $("n").textContent = s.n;
    $("total").textContent = s.headline;
    $("timeout").textContent = s.timeout_ms;
    document.title = "kv proxy · " + s.mode;
    const events = $("events");
    events.replaceChildren(...s.events.map((e) => el("li", { class: e.kind, text: e.text })));
    drawBar(s);
    drawRing(s);
    drawCards(s, fresh, filter);
    syncRows($("recent"), s.recent.map((r) => [
      { text: r.method },
      { text: r.key },
      { text: JSON.stringify(r.trail) + (r.note || ""), parts: way(r) },
      { text: String(r.status), cls: statusClass(r.status) },
      { text: r.ms.toFixed(1) },
    ]));
    $("moves-section").hidden = !s.moves;
    if (s.moves) {
      $("moves-of").textContent = "(on " + s.moves.keys + " of the " + s.moves.of + " keys held)";
      const pct = (x) => Math.round(x * 100) + "%";
      syncRows($("moves"), s.moves.rows.map((r) => [
        { text: r.strategy },
        { text: pct(r.join) + " move" },
        { text: r.leave.map(([n, x]) => n + ": " + pct(x)).join("  ") },
        { text: r.spread.toFixed(2) },
      ]));
    }
    $("divergent-section").hidden = s.divergent.length === 0;
    syncRows($("divergent"), s.divergent.map((d) => Object.assign([
      { text: d.key },
      { text: d.missing_on.join(", ") },
      { text: JSON.stringify(d.values), parts: () => Object.entries(d.values).flatMap(([n, v], i) =>
        [i > 0 ? document.createTextNode("   ") : null, named(n, n + ": "), document.createTextNode(v)].filter(Boolean)) },
    ], { rowClass: "diverge" })));
  }

  // How old the picture is: the nodes were asked at swept_at_ms.
  function age() {
    if (last && last.swept_at_ms) {
      const s = Math.max(0, (Date.now() - last.swept_at_ms) / 1000);
      $("age").textContent = "nodes asked " + s.toFixed(0) + " s ago";
    }
  }
  setInterval(age, 1000);

  function updated() {
    $("live").textContent = "live · updated " + new Date().toLocaleTimeString();
  }

  // The stream is opened after a few seconds of polling, not at once: a page opened for a
  // glance (or rendered headless for a printout, whose clock waits for open requests)
  // never holds a stream.
  const STREAM_AFTER_MS = 5000;
  const opened = Date.now();
  let stream = null;
  function follow() {
    if (!window.EventSource || $("filter").value.trim()) return false;
    if (Date.now() - opened < STREAM_AFTER_MS) return false;
    stream = new EventSource("events");
    stream.onmessage = (ev) => {
      if ($("filter").value.trim()) return;
      last = JSON.parse(ev.data);
      draw(last);
      age();
      updated();
    };
    stream.onerror = () => {
      stream.close();
      stream = null;
      $("live").textContent = "live · polling";
      setTimeout(poll, 1000);
    };
    return true;
  }

  async function poll() {
    if (!$("filter").value.trim() && stream === null && follow()) return;
    try {
      const filter = $("filter").value.trim();
      const r = await fetch("state.json?filter=" + encodeURIComponent(filter), { cache: "no-store", headers: { "ngrok-skip-browser-warning": "1" } });
      if (r.ok) {
        last = await r.json();
        draw(last);
        age();
        updated();
      } else {
        $("live").textContent = "live · the proxy answered " + r.status;
      }
    } catch (e) {
      $("live").textContent = "live · cannot reach the proxy";
    }
    if (stream === null) setTimeout(poll, 1000);
  }

  $("filter").addEventListener("input", () => {
    draw(last);
    // A filter asks the proxy for every matching key: poll while one is typed.
    if ($("filter").value.trim() && stream !== null) {
      stream.close();
      stream = null;
      poll();
    }
  });

  // "Where does this key go?": one step per line, a long number shortened (its whole
  // value one click away), and the card of the node (or nodes) it names lit up.
  $("explain-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const key = $("explain-key").value;
    const out = $("explain-out");
    try {
      const r = await fetch("explain?key=" + encodeURIComponent(key), { headers: { "ngrok-skip-browser-warning": "1" } });
      const e = await r.json();
      if (!r.ok) {
        out.replaceChildren(el("p", { class: "err", text: e.error }));
        return;
      }
      out.replaceChildren(el("ol", {}, e.steps.map((st) => el("li", {}, [
        el("span", { class: "what", text: st.what + ": " }),
        st.full
          ? el("details", { style: "display: inline" }, [el("summary", { class: "val", text: st.value }), el("span", { class: "val", text: st.full })])
          : el("span", { class: "val", text: st.value }),
      ]))));
      lit = e.lit || [];
      explained = e.ring || null;
      drawRing(last);
      for (const [name, k] of cards) k.root.classList.toggle("lit", lit.includes(name));
    } catch (err) {
      out.textContent = "cannot reach the proxy";
    }
  });
  draw(last);
  poll();
})();
