// The live part of the proxy's /state page: it follows /events (each sweep of the nodes,
// pushed by the proxy) and redraws the page from it; when the stream fails, or a filter
// narrows the keys, it polls /state.json every second instead. Everything a node or a user sent is written with
// textContent (never innerHTML), so a key like <script> stays text.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  // "node\u0000key" of the keys seen so far; a key not in it is new, and highlighted.
  // While a filter hides keys, nothing is forgotten, so clearing it highlights nothing.
  let seen = null;
  let last = JSON.parse($("first").textContent);

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

  // One card per node, kept from one update to the next and filled in place: a list
  // scrolled by hand stays scrolled, and a foreign node's frame is never moved (moving an
  // iframe reloads it) nor reloaded while its page is unchanged.
  const cards = new Map(); // node name -> { root, head, frame, list }

  function cardFor(c) {
    let k = cards.get(c.name);
    if (!k) {
      k = { root: el("div", { class: "card" }), head: el("div"), frame: el("div"), list: el("div", { class: "keys" }) };
      k.root.append(k.head, k.frame, k.list);
      cards.set(c.name, k);
    }
    return k;
  }

  function fill(c, fresh, filter) {
    const k = cardFor(c);
    k.root.style.borderColor = c.colour;
    k.head.replaceChildren(
      el("h2", { text: c.name }),
      el("div", { class: "url", text: c.url }),
      el("div", {}, [
        el("span", { class: "badge " + (c.up ? "up" : "down"), text: c.up ? "UP" : "DOWN" }),
        c.joined ? el("span", { class: "badge joined", text: "joined" }) : null,
        document.createTextNode(" " + c.latency_ms + " ms"),
      ]),
      ...[
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
      .map((p) => {
        const value = el("td", { text: p.value });
        if (p.cut_from) value.appendChild(el("span", { class: "size", text: " (" + p.cut_from + " bytes)" }));
        return el("tr", fresh.has(c.name + "\u0000" + p.key) ? { class: "new" } : {}, [el("td", { class: "k", text: p.key }), value]);
      });
    k.list.replaceChildren(el("table", {}, rows));
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

  function draw(s) {
    const filter = $("filter").value.trim().toLowerCase();
    const now = new Set();
    s.nodes.forEach((c) => c.keys.forEach((p) => now.add(c.name + "\u0000" + p.key)));
    const fresh = new Set(seen === null ? [] : [...now].filter((k) => !seen.has(k)));
    seen = filter || s.filter ? new Set([...(seen || []), ...now]) : now;
    $("mode").textContent = s.mode;
    $("rule").textContent = s.rule;
    $("notice").textContent = s.notice || "";
    $("notice").hidden = !s.notice;
    $("n").textContent = s.n;
    $("total").textContent = s.total_keys;
    $("timeout").textContent = s.timeout_ms;
    document.title = "kv proxy · " + s.mode;
    replace("bar", el("div", { class: "bar", title: "keys per node" }, s.nodes
      .filter((c) => c.share_pct > 0)
      .map((c) => el("span", { style: "background: " + c.colour + "; width: " + c.share_pct + "%", text: c.name + " " + c.share_pct + "%" }))));
    drawCards(s, fresh, filter);
    replace("recent", el("table", {}, [
      el("tr", {}, ["method", "key", "node", "status", "ms"].map((h) => el("th", { text: h }))),
      ...s.recent.map((r) => el("tr", {}, [r.method, r.key, path(r), String(r.status), r.ms.toFixed(1)]
        .map((t) => el("td", { text: t })))),
    ]));
    $("divergent-section").hidden = s.divergent.length === 0;
    replace("divergent", el("table", {}, [
      el("tr", {}, ["key", "missing on", "values"].map((h) => el("th", { text: h }))),
      ...s.divergent.map((d) => el("tr", { class: "diverge" }, [
        el("td", { text: d.key }),
        el("td", { text: d.missing_on.join(", ") }),
        el("td", { text: Object.entries(d.values).map(([n, v]) => n + ": " + v).join("   ") }),
      ])),
    ]));
  }

  // The way a request went: "kv1 ✗ timeout → kv2 200".
  function path(r) {
    if (!r.trail || r.trail.length === 0) return r.nodes.join(", ");
    return r.trail.map((t) => t.node + (t.ok ? " " : " ✗ ") + t.outcome).join(" → ");
  }

  // How old the picture is: the nodes were asked at swept_at_ms.
  function age() {
    if (last && last.swept_at_ms) {
      const s = Math.max(0, (Date.now() - last.swept_at_ms) / 1000);
      $("age").textContent = "nodes asked " + s.toFixed(0) + " s ago";
    }
  }
  setInterval(age, 1000);

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
      $("live").textContent = "live";
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
        $("live").textContent = "live · updated " + new Date().toLocaleTimeString();
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
  $("explain-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const key = $("explain-key").value;
    const out = $("explain-out");
    try {
      const r = await fetch("explain?key=" + encodeURIComponent(key), { headers: { "ngrok-skip-browser-warning": "1" } });
      const e = await r.json();
      out.textContent = r.ok ? e.words : e.error;
    } catch (err) {
      out.textContent = "cannot reach the proxy";
    }
  });
  draw(last);
  poll();
})();
