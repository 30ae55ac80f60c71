// Candor live interview view. Opens /api/v1/realtime (the session cookie
// authenticates it), subscribes to interview:<id> resuming after the last
// rendered seq, and appends transcript entries as they arrive. Reconnects
// with exponential backoff, always resuming from the highest seq seen, so a
// dropped connection loses nothing and a replayed entry is never shown twice.
(function () {
  "use strict";

  var root = document.querySelector("[data-testid=interview-detail]");
  if (!root) return;

  var id = root.getAttribute("data-interview");
  var topic = "interview:" + id;
  var list = root.querySelector("[data-testid=transcript]");
  var empty = root.querySelector("[data-testid=transcript-empty]");
  var indicator = root.querySelector("[data-testid=live-indicator]");
  var presence = root.querySelector("[data-testid=presence]");
  var jump = root.querySelector("[data-testid=jump-latest]");
  var statusSlot = root.querySelector("[data-testid=interview-status]");

  var lastSeq = parseInt(root.getAttribute("data-last-seq"), 10) || 0;
  var seen = {};
  list.querySelectorAll("[data-seq]").forEach(function (li) { seen[li.getAttribute("data-seq")] = true; });

  var terminal = { completed: true, failed: true, cancelled: true };
  var speakers = { candidate: "Candidate", interviewer: "Interviewer" };

  var ws = null;
  var attempt = 0;
  var retryTimer = null;
  var pingTimer = null;
  var stopped = false;

  // The reader "follows" the transcript while they are at (or near) its
  // bottom; scrolling up to reread stops auto-scroll until they come back.
  var follow = true;
  function atBottom() { return list.scrollHeight - list.scrollTop - list.clientHeight < 40; }
  list.addEventListener("scroll", function () {
    follow = atBottom();
    if (follow) jump.hidden = true;
  });
  jump.addEventListener("click", function () {
    follow = true;
    jump.hidden = true;
    list.scrollTop = list.scrollHeight;
  });
  list.scrollTop = list.scrollHeight;

  function setIndicator(state) {
    indicator.hidden = state === "off";
    indicator.setAttribute("data-state", state);
    indicator.querySelector(".live-label").textContent =
      state === "live" ? "Live" : state === "reconnecting" ? "Reconnecting…" : "Connecting…";
  }

  function clock(ms) {
    var s = Math.floor((ms || 0) / 1000);
    var m = Math.floor(s / 60);
    s = s % 60;
    return m + ":" + (s < 10 ? "0" : "") + s;
  }

  // entryElement builds the same markup as the TranscriptEntry component.
  function entryElement(e) {
    var li = document.createElement("li");
    li.className = "entry entry-" + e.speaker + " new";
    li.setAttribute("data-testid", "transcript-entry");
    li.setAttribute("data-speaker", e.speaker);
    li.setAttribute("data-seq", String(e.seq));
    var meta = document.createElement("div");
    meta.className = "entry-meta";
    var sp = document.createElement("span");
    sp.className = "speaker";
    sp.textContent = speakers[e.speaker] || e.speaker;
    var cl = document.createElement("span");
    cl.className = "clock muted";
    cl.textContent = clock(e.start_ms);
    meta.appendChild(sp);
    meta.appendChild(cl);
    var p = document.createElement("p");
    p.className = "entry-text";
    p.textContent = e.text;
    li.appendChild(meta);
    li.appendChild(p);
    return li;
  }

  function addEntry(e) {
    if (!e || typeof e.seq !== "number" || e.seq <= 0) return;
    var key = String(e.seq);
    if (seen[key]) return;
    seen[key] = true;
    var follow0 = follow || atBottom();
    var li = entryElement(e);
    // Entries normally arrive in order; a late one is slotted by seq.
    if (e.seq > lastSeq) {
      list.appendChild(li);
      lastSeq = e.seq;
    } else {
      var before = null;
      list.querySelectorAll("[data-seq]").forEach(function (x) {
        if (!before && parseInt(x.getAttribute("data-seq"), 10) > e.seq) before = x;
      });
      list.insertBefore(li, before);
    }
    root.setAttribute("data-last-seq", String(lastSeq));
    empty.hidden = true;
    if (follow0) {
      list.scrollTop = list.scrollHeight;
    } else {
      jump.hidden = false;
    }
  }

  function label(s) { return s ? s.charAt(0).toUpperCase() + s.slice(1) : "Unknown"; }

  function setStatus(status) {
    if (!status) return;
    root.setAttribute("data-status", status);
    var badge = statusSlot && statusSlot.querySelector(".badge");
    if (badge) {
      badge.className = "badge badge-" + status;
      badge.setAttribute("data-status", status);
      badge.textContent = label(status);
    }
    if (terminal[status]) finish();
  }

  // setPresence lists who else follows this interview; the reader is "you".
  var self = root.getAttribute("data-viewer");
  function setPresence(viewers) {
    viewers = viewers || [];
    var others = viewers.filter(function (v) { return !self || v.id !== self; })
      .map(function (v) { return v.name || "Someone"; });
    if (!viewers.length) {
      presence.hidden = true;
      return;
    }
    if (!others.length) {
      presence.textContent = "Only you are watching";
    } else if (others.length === 1) {
      presence.textContent = "You and " + others[0] + " are watching";
    } else {
      presence.textContent = "You and " + others.length + " others are watching";
    }
    presence.title = others.join(", ");
    presence.setAttribute("data-viewers", String(viewers.length));
    presence.hidden = false;
  }

  // finish runs when the interview is over: stop listening and replace the
  // live list by the stored transcript, which is complete once the interview
  // has ended.
  function finish() {
    if (stopped) return;
    stopped = true;
    clearTimeout(retryTimer);
    clearInterval(pingTimer);
    if (ws) ws.close(1000, "interview over");
    setIndicator("off");
    presence.hidden = true;
    fetch("/api/v1/interviews/" + encodeURIComponent(id) + "/transcript", {
      credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (r) { return r.ok ? r.json() : null; }).then(function (body) {
      if (!body || !body.entries) return;
      body.entries.forEach(addEntry);
    }, function () {});
  }

  function onMessage(ev) {
    var m;
    try { m = JSON.parse(ev.data); } catch (e) { return; }
    if (m.topic && m.topic !== topic) return;
    switch (m.type) {
      case "subscribed":
        attempt = 0;
        setIndicator("live");
        break;
      case "transcript.entry":
        addEntry(m.data);
        break;
      case "interview.status":
        setStatus(m.data && (m.data.status || (m.data.interview && m.data.interview.status)));
        break;
      case "presence":
        setPresence(m.data && m.data.viewers);
        break;
      case "error":
        // An authorization error will not get better by retrying.
        if (m.error && (m.error.code === "forbidden" || m.error.code === "not_found")) {
          stopped = true;
          setIndicator("off");
        }
        break;
    }
  }

  function connect() {
    if (stopped) return;
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(proto + location.host + "/api/v1/realtime");
    setIndicator(attempt === 0 ? "connecting" : "reconnecting");
    ws.onopen = function () {
      ws.send(JSON.stringify({ type: "subscribe", topic: topic, since_seq: lastSeq }));
      clearInterval(pingTimer);
      pingTimer = setInterval(function () {
        if (ws && ws.readyState === 1) ws.send(JSON.stringify({ type: "ping" }));
      }, 25000);
    };
    ws.onmessage = onMessage;
    ws.onclose = function () {
      clearInterval(pingTimer);
      ws = null;
      if (stopped) return;
      setIndicator("reconnecting");
      // 0.5s, 1s, 2s … capped at 30s, with jitter so that many dashboards
      // do not reconnect in lockstep after a restart.
      var delay = Math.min(30000, 500 * Math.pow(2, attempt)) * (0.75 + Math.random() * 0.5);
      attempt++;
      retryTimer = setTimeout(connect, delay);
    };
  }

  window.Candor = window.Candor || {};
  window.Candor.live = {
    lastSeq: function () { return lastSeq; },
    // drop closes the socket as a network failure would; used by tests of
    // the reconnect path.
    drop: function () { if (ws) ws.close(); }
  };

  if (root.getAttribute("data-live") === "true" && !terminal[root.getAttribute("data-status")]) {
    connect();
  }
})();
