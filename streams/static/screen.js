// leadsla team screen. Every REFRESH_MS it asks the worker that served the
// page for /api/compliance and /api/screen, and every QUEUE_EVERY-th time for
// /api/queue (each answers for the whole group), and redraws without a
// reload; the countdowns and the clock tick every second
// in between, on the worker's time (the skew to this browser is measured on
// each refresh). Data only ever reaches the page as text (textContent,
// attributes, SVG geometry): never as markup.
//
// Auth: with LEADSLA_API_TOKEN set, open the page as /#token=<token>. The
// token is kept in sessionStorage (this tab only) and removed from the
// address bar, then sent as "Authorization: Bearer". A 401 hides the board.
"use strict";

(() => {
  const REFRESH_MS = 5000;
  // The queue is a pass over every lead each worker holds: asked every third
  // refresh (the countdowns tick here in between).
  const QUEUE_EVERY = 3;
  // More rows than a screen holds: the list shows as many as fit.
  const QUEUE_ROWS = 40;
  const TOKEN_KEY = "leadsla.screen.token";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const nf = new Intl.NumberFormat("en");

  let token = takeToken();
  let skewMs = 0; // worker clock minus browser clock
  let busy = false;
  let locked = false;
  let lastOk = null;
  let refreshes = 0;
  let queue = null; // the last queue answer
  let shown = null; // the last [compliance, screen] answers, drawn again when the window changes size
  let labels = new Map(); // policy name -> what a person reads (the last /api/screen answer)
  let policyInfo = new Map(); // policy name -> its /api/screen entry (calendar, goal_seconds)

  const $ = (id) => document.getElementById(id);

  // -- small DOM helpers: text only -----------------------------------------------

  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = String(v);
      else e.setAttribute(k, String(v));
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c); // strings become text nodes
    return e;
  }

  function svg(tag, attrs) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") e.textContent = String(v);
      else e.setAttribute(k, String(v));
    }
    return e;
  }

  function setNumber(id, n) {
    const e = $(id);
    e.textContent = fmt(n);
    e.dataset.value = String(n);
    e.classList.toggle("zero", n === 0);
  }

  function fmt(n) {
    if (n === null || n === undefined || Number.isNaN(n)) return "–";
    return Number.isInteger(n) ? nf.format(n) : nf.format(Math.round(n * 10) / 10);
  }

  function pct(r) {
    return r === null || r === undefined ? "–" : (r * 100).toFixed(1) + "%";
  }

  function two(n) {
    return String(n).padStart(2, "0");
  }

  // A duration of wall-clock time, ms >= 0: "1d 02:03:04", "02:03:04".
  function countdown(ms) {
    let s = Math.floor(Math.max(0, ms) / 1000);
    const d = Math.floor(s / 86400);
    s -= d * 86400;
    const text = `${two(Math.floor(s / 3600))}:${two(Math.floor((s % 3600) / 60))}:${two(s % 60)}`;
    return (d ? `${d}d ` : "") + text;
  }

  // Business seconds as hours and minutes, never days (a business day is
  // not 24 hours), cut to whole minutes and spelled as `leadsla queue`
  // spells them: "12h05m bh", "38h bh", "45m bh", "<1m bh" (the unit in a
  // span of its own).
  function businessTime(seconds) {
    const s = Math.max(0, seconds);
    const m = Math.floor(s / 60);
    const h = Math.floor(m / 60);
    const text = m === 0 ? (s > 0 ? "<1m" : "0m") : h === 0 ? `${m}m` : m % 60 ? `${h}h${two(m % 60)}m` : `${h}h`;
    return el("span", { class: "bh" }, `${text} `, el("span", { class: "unit", text: "bh" }));
  }

  // -- auth -------------------------------------------------------------------------

  function takeToken() {
    const params = new URLSearchParams(location.hash.slice(1));
    if (params.has("token")) {
      const t = params.get("token");
      if (t) sessionStorage.setItem(TOKEN_KEY, t);
      else sessionStorage.removeItem(TOKEN_KEY);
      // Off the address bar: a screen in a room is read by everyone.
      history.replaceState(null, "", location.pathname + location.search);
    }
    return sessionStorage.getItem(TOKEN_KEY);
  }

  window.addEventListener("hashchange", () => {
    token = takeToken();
    locked = false;
    queue = null;
    refresh();
  });

  // -- fetching -----------------------------------------------------------------------

  async function getJson(path) {
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    const r = await fetch(path, { headers, cache: "no-store", credentials: "omit" });
    let body = null;
    try {
      body = await r.json();
    } catch (e) {
      body = null;
    }
    return { path, status: r.status, body };
  }

  async function refresh() {
    if (busy || locked) return;
    busy = true;
    try {
      const withQueue = queue === null || refreshes % QUEUE_EVERY === 0;
      const t0 = Date.now();
      const calls = [getJson("/api/compliance"), getJson("/api/screen")];
      if (withQueue) calls.push(getJson(`/api/queue?limit=${QUEUE_ROWS}`));
      const answers = await Promise.all(calls);
      const t1 = Date.now();
      const denied = answers.find((a) => a.status === 401);
      if (denied) return lock(denied.body);
      const failed = answers.find((a) => a.status !== 200 || a.body === null);
      if (failed) return problem(`${failed.path} answered ${failed.status}` +
                                 (failed.body && failed.body.error ? `: ${failed.body.error}` : ""));
      const [c, s, q] = answers;
      refreshes += 1;
      skewMs = Date.parse(s.body.as_of) - (t0 + t1) / 2;
      if (q) queue = q.body;
      shown = [c.body, s.body];
      const partial = [c.body, s.body, queue].some((a) => a.complete === false);
      // The notice first: it takes height from the board, whose lists fit what is left.
      notice(partial ? "Some partitions have no worker right now (a rebalance): the numbers are incomplete." : null,
             "warn");
      render(c.body, s.body);
      lastOk = new Date(Date.now() + skewMs);
      const workers = s.body.workers ? s.body.workers.length : 1;
      status(`Updated ${timeOf(lastOk)} · ${workers} worker${workers === 1 ? "" : "s"}`, false);
      document.body.dataset.state = partial ? "partial" : "ok";
    } catch (e) {
      problem(`cannot reach the worker (${e && e.message ? e.message : e})`);
    } finally {
      busy = false;
    }
  }

  function lock(body) {
    locked = true;
    queue = null;
    shown = null;
    document.body.dataset.state = "locked";
    // Nothing of the group's data stays on screen without a valid token.
    for (const id of ["compliance-rows", "deadlines", "targets", "leaderboard", "strikes-rows"]) $(id).replaceChildren();
    const how = el("code", { text: `${location.origin}/#token=<LEADSLA_API_TOKEN>` });
    const why = token
      ? "The API refused the token (401)."
      : "This screen needs the API token (401).";
    notice([why, " Open ", how, " — the token stays in this browser tab only.",
            body && body.error ? ` (${body.error})` : ""], "error");
    status("Locked: no valid token", true);
  }

  function problem(message) {
    document.body.dataset.state = lastOk ? "stale" : "error";
    notice(lastOk ? `${message}. Showing the numbers of ${timeOf(lastOk)}.` : message, "error");
    status(lastOk ? `Stale since ${timeOf(lastOk)}` : "No data", true);
    if (shown) render(...shown); // the notice took height: the lists fit again
  }

  function notice(parts, kind) {
    const n = $("notice");
    if (parts === null) {
      n.hidden = true;
      n.replaceChildren();
      return;
    }
    n.className = "notice" + (kind === "warn" ? " warn" : "");
    n.replaceChildren(...(Array.isArray(parts) ? parts : [parts]));
    n.hidden = false;
  }

  function status(text, stale) {
    const s = $("status");
    s.textContent = text;
    s.classList.toggle("stale", stale);
  }

  function timeOf(d) {
    return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  }

  // -- rendering ---------------------------------------------------------------------

  // What a person reads for a policy or target: its description, else the
  // words of its name (never the id, which a screen would break mid-word).
  function labelOf(item, name) {
    return item && item.label ? item.label : String(name).replace(/_/g, " ");
  }

  // Each column top to bottom: a list's box is only known once the panels
  // above it hold their rows (fit).
  function render(compliance, screen) {
    labels = new Map(screen.policies.map((p) => [p.policy, labelOf(p, p.policy)]));
    policyInfo = new Map(screen.policies.map((p) => [p.policy, p]));
    renderCompliance(compliance, screen);
    if (queue) renderDeadlines(queue);
    renderTargets(screen.targets);
    renderAccountability(screen);
    tick(); // the clock on the worker's time at once, not a second later
  }

  window.addEventListener("resize", () => {
    if (shown && !locked) render(...shown);
  });

  // Put `items` in `list` and keep the first ones that fit `box` whole (a
  // .fit element: overflow hidden, its height set by the layout), followed
  // by the line `more(n)` makes when n of `total` rows are left out. Rows
  // are taken from the end, so the most urgent or most important stay.
  function fit(box, list, items, total, more) {
    list.replaceChildren(...items);
    let kept = items.length;
    for (;;) {
      const left = total - kept;
      const line = left > 0 ? more(left) : null;
      if (line) list.append(line);
      const last = list.lastElementChild;
      if (!last || kept === 0 || last.getBoundingClientRect().bottom <= box.getBoundingClientRect().bottom + 0.5) {
        return kept;
      }
      if (line) line.remove();
      items[--kept].remove();
    }
  }

  const moreItem = (n) => el("li", { class: "more", "data-more": n, text: `+${fmt(n)} more` });
  const moreRow = (columns) => (n) => el("tr", { class: "more-row", "data-more": n },
    el("td", { class: "more", colspan: columns, text: `+${fmt(n)} more` }));

  function renderCompliance(compliance, screen) {
    // The API answers per policy and team: the screen shows policies.
    const byPolicy = new Map();
    for (const r of compliance.policies) {
      const p = byPolicy.get(r.policy) || { met: 0, breached: 0, open: 0, period: r.period };
      p.met += r.met;
      p.breached += r.breached;
      p.open += r.open;
      byPolicy.set(r.policy, p);
    }
    const rows = [];
    let open = 0, atRisk = 0, breachesToday = 0, met = 0, decided = 0;
    const periods = new Set();
    for (const sp of screen.policies) {
      const p = byPolicy.get(sp.policy) || { met: 0, breached: 0, open: 0, period: null };
      if (p.period) periods.add(p.period);
      const d = p.met + p.breached;
      const ratio = d ? p.met / d : null;
      open += p.open;
      atRisk += sp.at_risk;
      breachesToday += sp.today.breached;
      met += p.met;
      decided += d;
      const verdict = ratio === null ? "muted" : ratio >= sp.objective ? "ok" : "bad";
      const todayVerdict = sp.today.ratio === null ? "muted" : sp.today.ratio >= sp.objective ? "ok" : "bad";
      rows.push(el("tr", { "data-policy": sp.policy },
        el("td", { class: "name", text: labelOf(sp, sp.policy) }),
        el("td", {}, el("span", { class: "period-met ok", text: fmt(p.met) }), el("span", { class: "sep", text: " · " }),
          el("span", { class: "period-breached" + (p.breached ? " bad" : ""), text: fmt(p.breached) })),
        el("td", { class: "period-ratio" },
          el("span", { class: verdict, text: pct(ratio) }),
          el("span", { class: "objective", text: ` / ${pct(sp.objective)}` })),
        el("td", {}, el("span", { class: "today-met ok", text: fmt(sp.today.met) }), el("span", { class: "sep", text: " · " }),
          el("span", { class: "today-breached" + (sp.today.breached ? " bad" : ""), text: fmt(sp.today.breached) })),
        el("td", { class: "today-ratio " + todayVerdict, text: pct(sp.today.ratio) }),
        el("td", { class: "open", text: fmt(p.open) }),
        el("td", { class: "at-risk" + (sp.at_risk ? " risk" : ""), text: fmt(sp.at_risk) })));
    }
    fit($("compliance-box"), $("compliance-rows"), rows, rows.length, moreRow(7));
    $("period-head").textContent = periods.size ? `This period (${[...periods].join(", ")})` : "This period";
    setNumber("kpi-open", open);
    setNumber("kpi-at-risk", atRisk);
    setNumber("kpi-breaches-today", breachesToday);
    const r = $("kpi-period-ratio");
    r.textContent = pct(decided ? met / decided : null);
    r.dataset.value = decided ? String(met / decided) : "";
  }

  // Overdue first (the oldest deadline first), then at risk, then the API's
  // order (by deadline): a clock past its deadline on a partition whose
  // watermark trails may not be flagged at risk, yet it is the most urgent.
  function urgency(row) {
    return isOverdue(row) ? 0 : row.at_risk ? 1 : 2;
  }

  function isOverdue(row) {
    return row.overdue === true || row.remaining_seconds === 0;
  }

  function renderDeadlines(queue) {
    const rows = queue.clocks.map((row, i) => [row, i]).sort(([a, i], [b, j]) => {
      const u = urgency(a) - urgency(b);
      if (u) return u;
      if (urgency(a) === 0 && a.deadline && b.deadline) return Date.parse(a.deadline) - Date.parse(b.deadline) || i - j;
      return i - j;
    }).map(([row]) => row);
    const items = rows.map((row) => {
      const meta = [row.team, row.rep, row.lead_id].filter(Boolean).join(" · ");
      const info = policyInfo.get(row.policy) || {};
      // A clock under a business-hours calendar shows the server's business
      // seconds (the queue's figures, as `leadsla queue` shows them): a
      // wall-clock countdown to its deadline would count nights and weekends.
      const calendar = row.calendar !== undefined ? row.calendar : info.calendar;
      const goal = row.goal_seconds !== undefined ? row.goal_seconds : info.goal_seconds;
      const business = calendar && row.remaining_seconds !== null && row.remaining_seconds !== undefined;
      return el("li", { "data-lead": row.lead_id, "data-policy": row.policy, "data-state": row.state,
                        "data-deadline": business ? null : row.deadline,
                        "data-calendar": business ? calendar : null,
                        "data-remaining": business ? row.remaining_seconds : null,
                        "data-over": business && goal !== null && goal !== undefined
                          ? Math.max(0, row.elapsed_seconds - goal) : null,
                        "data-at-risk": row.at_risk ? "true" : "false",
                        "data-overdue": isOverdue(row) ? "true" : "false" },
        el("span", { class: "countdown" }),
        el("span", { class: "tag state" }),
        el("span", { class: "what" },
          el("span", { class: "policy", text: labels.get(row.policy) || labelOf(null, row.policy) }),
          el("span", { class: "meta", text: meta })));
    });
    $("queue-total").textContent = `${fmt(queue.total)} open`;
    $("queue-total").dataset.value = String(queue.total);
    const now = Date.now() + skewMs;
    for (const li of items) paint(li, now); // the timers' text, before their rows are measured
    if (items.length) fit($("deadlines-box"), $("deadlines"), items, queue.total, moreItem);
    else $("deadlines").replaceChildren(el("li", { class: "empty", text: "No open clocks." }));
  }

  // One deadline row at worker time `now` (ms): its timer, tag and colour.
  // A clock past its deadline (the API's overdue, or a live deadline that
  // passed since) says OVERDUE and how long ago the deadline was, counting
  // up: never a negative countdown.
  function paint(li, now) {
    const d = li.dataset;
    const cd = li.querySelector(".countdown");
    let overdue = d.overdue === "true";
    if (d.calendar) {
      if (overdue) {
        cd.replaceChildren(el("span", { class: "cap", text: "over" }), " ",
                           d.over === undefined ? "" : businessTime(Number(d.over)));
      } else {
        cd.replaceChildren(businessTime(Number(d.remaining)));
      }
    } else if (d.deadline) {
      const left = Date.parse(d.deadline) - now;
      overdue = overdue || left < 0;
      if (overdue) cd.replaceChildren(el("span", { class: "cap", text: "over" }), " ", countdown(Math.max(0, -left)));
      else cd.textContent = countdown(left);
    } else {
      cd.textContent = d.state; // paused, or pending without a start yet
    }
    const atRisk = !overdue && d.atRisk === "true";
    li.classList.toggle("overdue", overdue);
    li.classList.toggle("at-risk", atRisk);
    li.querySelector(".tag.state").textContent = overdue ? "OVERDUE" : atRisk ? "AT RISK" : d.state;
  }

  function renderTargets(targets) {
    const box = $("targets");
    if (!targets.length) {
      box.replaceChildren(el("div", { class: "empty", text: "No delivery targets in the policies file." }));
      return;
    }
    const items = targets.map((t) => {
      const onPace = t.cumulative.length ? t.cumulative[t.cumulative.length - 1] >= t.goal_line : true;
      // Leads are whole: what was delivered and the forecast round down, the
      // goal line up (51.2 leads to be on pace means 52), so each figure
      // agrees with the colour the exact value gives it.
      const figures = [
        figure("Delivered", "delivered", t.delivered, leadsDown, t.goal, onPace ? "ok" : "risk"),
        figure("Goal line today", "goal-line", t.goal_line, leadsUp, null, null),
        figure("Forecast", "forecast", t.forecast, leadsDown, t.goal, t.forecast >= t.goal ? "ok" : "risk"),
      ];
      if (t.value_delivered !== null) {
        figures.push(figure("Value", "value", t.value_delivered, null, t.value_goal, null));
      }
      return el("div", { class: "target", "data-target": t.target },
        el("div", { class: "title", text: `${labelOf(t, t.target)} · ${t.period} · day ${t.day} of ${t.days}` }),
        el("div", { class: "figures" }, ...figures),
        waterfall(t));
    });
    fit(box, box, items, items.length, (n) => el("div", { class: "more", "data-more": n, text: `+${fmt(n)} more` }));
  }

  // Whole leads from a float the API summed or divided (a sum of ones may
  // come out as 2.9999999999: that is 3 leads).
  const leadsDown = (n) => Math.floor(n + 1e-9);
  const leadsUp = (n) => Math.ceil(n - 1e-9);

  // One figure: `value` (kept exact in data-value) shown through `whole`
  // (leadsDown or leadsUp for a count of leads; null for a weighted value).
  function figure(label, key, value, whole, of, cls) {
    const shown = whole && Number.isFinite(value) ? whole(value) : value;
    const v = el("div", { class: "value " + (cls || ""), "data-key": key, "data-value": value, text: fmt(shown) });
    if (of !== null && of !== undefined) v.append(el("span", { class: "of", text: ` / ${fmt(of)}` }));
    return el("div", { class: "figure" }, el("div", { class: "label", text: label }), v);
  }

  // Cumulative delivered per day (a column each day, the day's own leads
  // bright on top: the waterfall), the goal line from 0 to the goal, and the
  // forecast from today to the period's end.
  function waterfall(t) {
    const W = 640, H = 170, L = 44, R = 12, T = 10, B = 22;
    const top = Math.max(t.goal, t.forecast, ...t.cumulative, 1) * 1.08;
    const x = (day) => L + (W - L - R) * day / t.days;
    const y = (v) => T + (H - T - B) * (1 - v / top);
    const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img",
                           "aria-label": `${t.target}: cumulative delivered per day against the goal line` });
    for (const v of [0, t.goal]) {
      g.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#2a3644", "stroke-width": 1 }));
      g.append(svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", text: fmt(v) }));
    }
    const bw = Math.max(1, (W - L - R) / t.days * 0.78);
    let before = 0;
    t.cumulative.forEach((total, i) => {
      const day = i + 1;
      const line = t.goal * day / t.days;
      const colour = total >= line ? "#3ddc84" : "#ffb020";
      const x0 = x(i) + ((W - L - R) / t.days - bw) / 2;
      g.append(svg("rect", { x: x0, y: y(before), width: bw, height: Math.max(0, y(0) - y(before)),
                             fill: colour, "fill-opacity": 0.35, "data-day": day }));
      g.append(svg("rect", { x: x0, y: y(total), width: bw, height: Math.max(1.5, y(before) - y(total)),
                             fill: colour, "data-day": day, "data-cumulative": total }));
      before = total;
    });
    g.append(svg("line", { x1: x(0), y1: y(0), x2: x(t.days), y2: y(t.goal), stroke: "#6cb8ff",
                           "stroke-width": 2.5, "stroke-dasharray": "7 5", class: "goal-line" }));
    if (t.cumulative.length) {
      g.append(svg("line", { x1: x(t.day), y1: y(t.cumulative[t.cumulative.length - 1]), x2: x(t.days),
                             y2: y(t.forecast), stroke: "#f4f7fa", "stroke-width": 1.5, "stroke-dasharray": "2 4",
                             class: "forecast" }));
    }
    g.append(svg("text", { x: L, y: H - 6, text: "day 1" }));
    g.append(svg("text", { x: W - R, y: H - 6, "text-anchor": "end", text: `day ${t.days}` }));
    return g;
  }

  function renderAccountability(screen) {
    const board = screen.leaderboard.map((r) => el("li", { "data-team": r.team },
      el("span", { class: "team", text: r.team }), el("span", { class: "points", text: fmt(r.points) })));
    if (board.length) fit($("leaderboard-box"), $("leaderboard"), board, board.length, moreItem);
    else $("leaderboard").replaceChildren(el("li", { class: "empty", text: "No period judged yet." }));
    const rows = screen.levels.map((lv) => {
      const name = lv.kind === "policy"
        ? [`${labelOf(lv, lv.name)} · `, el("span", { class: "team", text: lv.team })]
        : [`${labelOf(lv, lv.name)} (target)`];
      const [last, cls] = verdict(lv);
      return el("tr", { "data-kind": lv.kind, "data-name": lv.name, "data-team": lv.team,
                        "data-under-review": lv.under_review ? "true" : "false",
                        "data-judged": lv.last_judged === false ? "false" : "true" },
        el("td", { class: "name" }, ...name, lv.under_review ? " " : null,
          lv.under_review ? el("span", { class: "badge", text: "UNDER REVIEW" }) : null),
        el("td", { class: "strikes" + (lv.strikes ? " bad" : ""), text: `${lv.strikes} / ${lv.review_after}` }),
        el("td", { class: "last " + cls }, ...last));
    });
    if (rows.length) fit($("strikes-box"), $("strikes-rows"), rows, rows.length, moreRow(3));
    else $("strikes-rows").replaceChildren(el("tr", {}, el("td", { class: "empty", colspan: 3, text: "No level judged yet." })));
  }

  // The last period's verdict of a level as [text, class]. A policy's period
  // with fewer decisions than its min_decisions is not judged: the ledger
  // counts it as met (it is no miss), but it is no achievement, so it is
  // never shown as met, nor in the colour of one.
  function verdict(lv) {
    if (lv.last_met === null || lv.last_met === undefined) return [["–"], "muted"];
    if (lv.last_judged === false) {
      const n = lv.last_decided === null || lv.last_decided === undefined
        ? `fewer than ${fmt(lv.min_decisions)}` : `${fmt(lv.last_decided)} of ${fmt(lv.min_decisions)}`;
      return [["not judged ", el("span", { class: "why", text: `(${n} decisions)` })], "muted"];
    }
    return lv.last_met ? [["met"], "ok"] : [["missed"], "bad"];
  }

  // -- every second -------------------------------------------------------------------

  function tick() {
    const now = Date.now() + skewMs;
    $("clock").textContent = timeOf(new Date(now));
    for (const li of document.querySelectorAll("#deadlines li[data-lead]")) paint(li, now);
  }

  setInterval(tick, 1000);
  setInterval(refresh, REFRESH_MS);
  tick();
  refresh();
})();
