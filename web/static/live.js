// Candor live views, over /api/v1/realtime (the session cookie
// authenticates it).
//
// The interview page subscribes to interview:<id> resuming after the last
// rendered seq, appends transcript entries and timeline events as they
// arrive, and follows the status and the machine card. The interviews list
// subscribes to tenant:<id> and follows each row's status. Both reconnect
// with exponential backoff; the interview page resumes from the highest seq
// seen and refetches the stored events, so a dropped connection loses
// nothing and nothing is shown twice.
(function () {
  "use strict";

  var terminal = { completed: true, failed: true, cancelled: true };

  function label(s) { return s ? s.charAt(0).toUpperCase() + s.slice(1) : "Unknown"; }

  // setBadge updates a statusBadge component in place.
  function setBadge(badge, status) {
    if (!badge) return;
    badge.className = "badge badge-" + status;
    badge.setAttribute("data-status", status);
    badge.textContent = label(status);
  }

  // channel keeps one WebSocket subscribed to topic. opts: sinceSeq()
  // (optional, for topics with sequenced items), onMessage(m) for messages of
  // this topic, onState("connecting"|"live"|"reconnecting"|"off"|"signed-out").
  function channel(topic, opts) {
    var ws = null;
    var attempt = 0;
    var retryTimer = null;
    var pingTimer = null;
    var stopped = false;

    function connect() {
      if (stopped) return;
      var proto = location.protocol === "https:" ? "wss://" : "ws://";
      ws = new WebSocket(proto + location.host + "/api/v1/realtime");
      opts.onState(attempt === 0 ? "connecting" : "reconnecting");
      ws.onopen = function () {
        var sub = { type: "subscribe", topic: topic };
        if (opts.sinceSeq) sub.since_seq = opts.sinceSeq();
        ws.send(JSON.stringify(sub));
        clearInterval(pingTimer);
        pingTimer = setInterval(function () {
          if (ws && ws.readyState === 1) ws.send(JSON.stringify({ type: "ping" }));
        }, 25000);
      };
      ws.onmessage = function (ev) {
        var m;
        try { m = JSON.parse(ev.data); } catch (e) { return; }
        if (m.topic && m.topic !== topic) return;
        if (m.type === "subscribed") {
          attempt = 0;
          opts.onState("live");
        } else if (m.type === "error" && m.error && (m.error.code === "forbidden" || m.error.code === "not_found")) {
          // An authorization error will not get better by retrying.
          stop();
          return;
        }
        opts.onMessage(m);
      };
      ws.onclose = function (ev) {
        clearInterval(pingTimer);
        ws = null;
        if (stopped) return;
        if (ev && ev.code === 4401) {
          // The sign-in (or API key) was revoked: reconnecting cannot
          // help; the user must sign in again.
          stopped = true;
          clearTimeout(retryTimer);
          opts.onState("signed-out");
          return;
        }
        opts.onState("reconnecting");
        // 0.5s, 1s, 2s … capped at 30s, with jitter so that many dashboards
        // do not reconnect in lockstep after a restart.
        var delay = Math.min(30000, 500 * Math.pow(2, attempt)) * (0.75 + Math.random() * 0.5);
        attempt++;
        retryTimer = setTimeout(connect, delay);
      };
    }

    function stop() {
      if (stopped) return;
      stopped = true;
      clearTimeout(retryTimer);
      clearInterval(pingTimer);
      if (ws) ws.close(1000, "done");
      opts.onState("off");
    }

    connect();
    return {
      stop: stop,
      // drop closes the socket as a network failure would; used by tests of
      // the reconnect path.
      drop: function () { if (ws) ws.close(); }
    };
  }

  window.Candor = window.Candor || {};

  // button builds a lifecycle button like the lifecycleButtons/detailButtons
  // components.
  function button(id, action, testid, text, cls, retry) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "btn " + cls;
    b.setAttribute("data-action", action);
    b.setAttribute("data-interview", id);
    b.setAttribute("data-testid", testid);
    if (retry) b.setAttribute("data-retry", "");
    b.textContent = text;
    return b;
  }

  // buttonsFor are the lifecycle buttons that fit status; detail selects
  // the interview page's wording.
  function buttonsFor(id, status, iv, detail) {
    var retryable = status === "failed" && iv && !iv.started_at;
    var sm = detail ? "" : "btn-sm ";
    var out = [];
    if (status === "scheduled") out.push(button(id, "start", "start-interview", detail ? "Start without the candidate" : "Start", sm + "btn-success"));
    if (retryable) out.push(button(id, "start", "retry-interview", "Retry", sm + "btn-success", true));
    if (status === "starting" || status === "running") out.push(button(id, "end", "end-interview", detail ? "End interview" : "End", sm + "btn-danger"));
    if (status === "scheduled" || retryable) out.push(button(id, "cancel", "cancel-interview", "Cancel", sm + "btn-danger-ghost"));
    return { buttons: out, invite: !terminal[status] || retryable };
  }

  // replaceButtons swaps the lifecycle buttons of cell for those of want,
  // leaving a button whose request is in flight (app.js reloads after it).
  function replaceButtons(cell, want, canWrite) {
    var copy = cell.querySelector("[data-testid=copy-invite]");
    if (copy) copy.hidden = !want.invite;
    if (!canWrite) return;
    cell.querySelectorAll("button[data-action]").forEach(function (b) {
      if (!b.disabled) b.remove();
    });
    want.buttons.forEach(function (b) { cell.appendChild(b); });
  }

  var detail = document.querySelector("[data-testid=interview-detail]");
  if (detail) interviewPage(detail);
  var listRoot = document.querySelector("[data-testid=interviews][data-tenant]");
  if (listRoot) interviewsList(listRoot);

  function interviewPage(root) {
    var id = root.getAttribute("data-interview");
    var topic = "interview:" + id;
    var list = root.querySelector("[data-testid=transcript]");
    var empty = root.querySelector("[data-testid=transcript-empty]");
    var indicator = root.querySelector("[data-testid=live-indicator]");
    var presence = root.querySelector("[data-testid=presence]");
    var jump = root.querySelector("[data-testid=jump-latest]");
    var statusSlot = root.querySelector("[data-testid=interview-status]");
    var timeline = root.querySelector("[data-testid=timeline-list]");
    var timelineEmpty = root.querySelector("[data-testid=timeline-empty]");
    var machineNone = root.querySelector("[data-testid=machine-none]");
    var machineFacts = root.querySelector("[data-testid=machine-facts]");

    var lastSeq = parseInt(root.getAttribute("data-last-seq"), 10) || 0;
    var seen = {};
    list.querySelectorAll("[data-seq]").forEach(function (li) { seen[li.getAttribute("data-seq")] = true; });

    // Events are told apart by id: the server renders data-event-id, the
    // realtime message and GET …/events carry the same id.
    var seenEvents = {};
    var lastEventID = 0;
    if (timeline) {
      timeline.querySelectorAll("[data-event-id]").forEach(function (li) {
        var n = parseInt(li.getAttribute("data-event-id"), 10) || 0;
        seenEvents[String(n)] = true;
        lastEventID = Math.max(lastEventID, n);
      });
    }

    var speakers = { candidate: "Candidate", interviewer: "Interviewer" };
    var ch = null;
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
    // A live transcript opens at its latest line; a finished one at its
    // first, or at the line the URL names (#entry-<seq>, from search).
    var isLive = root.getAttribute("data-live") === "true" && !terminal[root.getAttribute("data-status")];
    if (isLive) list.scrollTop = list.scrollHeight;
    else list.scrollTop = 0;

    // The indicator tells the connection's state; it says "Live" (in red)
    // only while the interview itself is running.
    var connState = "off";
    function setIndicator(state) {
      connState = state;
      var status = root.getAttribute("data-status");
      indicator.hidden = state === "off";
      indicator.setAttribute("data-state", state);
      indicator.setAttribute("data-running", String(status === "running"));
      indicator.querySelector(".live-label").textContent =
        state === "live" ? (status === "running" ? "Live" : "Up to date") :
        state === "signed-out" ? "Signed out: sign in again" :
        state === "reconnecting" ? "Reconnecting…" : "Connecting…";
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
      li.setAttribute("data-start-ms", String(e.start_ms || 0));
      li.id = "entry-" + e.seq;
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
      // The list is in media order, as the server renders it. Entries
      // normally arrive in that order; a late one (a retired processor's,
      // delivered after the hand-over) is slotted where it was spoken.
      lastSeq = Math.max(lastSeq, e.seq);
      list.insertBefore(li, firstAfter(list, "data-start-ms", e.start_ms || 0));
      root.setAttribute("data-last-seq", String(lastSeq));
      empty.hidden = true;
      if (follow0) {
        list.scrollTop = list.scrollHeight;
      } else {
        jump.hidden = false;
      }
    }

    // firstAfter is the first child of parent whose numeric attr exceeds n.
    function firstAfter(parent, attr, n) {
      var kids = parent.querySelectorAll("[" + attr + "]");
      for (var i = 0; i < kids.length; i++) {
        if (parseInt(kids[i].getAttribute(attr), 10) > n) return kids[i];
      }
      return null;
    }

    var months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    function pad(n) { return (n < 10 ? "0" : "") + n; }
    // fmtTime matches the server's "2 Jan 2006, 15:04 UTC".
    function fmtTime(d) {
      return d.getUTCDate() + " " + months[d.getUTCMonth()] + " " + d.getUTCFullYear() + ", " +
        pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + " UTC";
    }

    // eventElement builds the same markup as the TimelineEvent component.
    function eventElement(ev) {
      var li = document.createElement("li");
      li.setAttribute("data-testid", "event");
      li.setAttribute("data-type", ev.type);
      li.setAttribute("data-event-id", String(ev.id));
      li.className = "new";
      var ty = document.createElement("span");
      ty.className = "event-summary";
      ty.textContent = ev.summary || ev.type;
      li.appendChild(ty);
      var at = new Date(ev.at);
      var tm = document.createElement("time");
      tm.className = "muted small";
      if (!isNaN(at)) {
        tm.setAttribute("datetime", at.toISOString().replace(/\.\d+Z$/, "Z"));
        tm.setAttribute("data-local", "time");
        tm.textContent = fmtTime(at);
        if (window.Candor.localize) window.Candor.localize(li);
      }
      li.appendChild(tm);
      var data = ev.data == null ? "" : JSON.stringify(ev.data);
      if (data && data !== "{}" && data !== "null") {
        var raw = document.createElement("details");
        raw.className = "event-raw";
        var sum = document.createElement("summary");
        sum.className = "small";
        sum.textContent = "Raw data";
        var code = document.createElement("code");
        code.className = "event-data";
        code.textContent = data;
        raw.appendChild(sum);
        raw.appendChild(code);
        li.appendChild(raw);
      }
      return li;
    }

    function addEvent(ev) {
      if (!timeline || !ev || !ev.type || ev.id == null) return;
      var n = parseInt(ev.id, 10);
      if (!(n > 0) || seenEvents[String(n)]) return;
      seenEvents[String(n)] = true;
      var li = eventElement(ev);
      if (n > lastEventID) {
        timeline.appendChild(li);
        lastEventID = n;
        // Only an event newer than all shown may move the machine card:
        // a late-fetched older one describes an earlier state.
        followMachine(ev);
      } else {
        timeline.insertBefore(li, firstAfter(timeline, "data-event-id", n));
      }
      timeline.hidden = false;
      if (timelineEmpty) timelineEmpty.hidden = true;
    }

    function setMachine(m) {
      if (!machineFacts) return;
      var fields = { provider: "machine-provider", region: "machine-region" };
      Object.keys(fields).forEach(function (k) {
        if (m[k] === undefined) return;
        var dd = machineFacts.querySelector("[data-testid=" + fields[k] + "]");
        if (dd) dd.textContent = m[k] || "—";
      });
      if (m.state) {
        var badge = machineFacts.querySelector("[data-testid=machine-state] .badge");
        if (badge) {
          badge.className = "badge machine-" + m.state;
          badge.textContent = m.state;
        }
      }
      machineFacts.hidden = false;
      if (machineNone) machineNone.hidden = true;
    }

    // followMachine keeps the machine card in step with the events that
    // change it.
    function followMachine(ev) {
      var d = ev.data || {};
      switch (ev.type) {
        case "machine.launched":
          setMachine({ provider: d.provider, region: d.region, state: "running" });
          break;
        case "machine.replaced":
          setMachine({ state: "running" });
          break;
        case "interview.ended":
          if (machineFacts && !machineFacts.hidden) setMachine({ state: "destroyed" });
          break;
      }
    }

    // fetchEvents merges the stored events in: those recorded between the
    // page's render and the subscription, or while disconnected.
    function fetchEvents() {
      return fetch("/api/v1/interviews/" + encodeURIComponent(id) + "/events", {
        credentials: "same-origin",
        headers: { "Accept": "application/json" }
      }).then(function (r) { return r.ok ? r.json() : null; }).then(function (body) {
        if (body && body.events) body.events.forEach(addEvent);
      }, function () {});
    }

    var actions = root.querySelector("[data-testid=interview-actions]");
    var explainer = root.querySelector("[data-testid=start-explainer]");
    function setStatus(status, iv) {
      if (!status) return;
      var changed = root.getAttribute("data-status") !== status;
      root.setAttribute("data-status", status);
      setBadge(statusSlot && statusSlot.querySelector(".badge"), status);
      if (explainer) explainer.hidden = status !== "scheduled";
      if (actions && changed) replaceButtons(actions, buttonsFor(id, status, iv, true), root.hasAttribute("data-can-write"));
      setIndicator(connState);
      if (changed) refreshFacts();
      if (terminal[status]) finish();
    }

    // refreshFacts reloads the fields a status change moves (started,
    // ended, duration, the machine) from the API.
    function refreshFacts() {
      fetch("/api/v1/interviews/" + encodeURIComponent(id), {
        credentials: "same-origin",
        headers: { "Accept": "application/json" }
      }).then(function (r) { return r.ok ? r.json() : null; }).then(function (iv) {
        if (!iv) return;
        setTime("started-at", iv.started_at);
        setTime("ended-at", iv.ended_at);
        var dur = root.querySelector("[data-testid=duration]");
        if (dur && iv.started_at && iv.ended_at) dur.textContent = fmtDuration((new Date(iv.ended_at) - new Date(iv.started_at)) / 1000);
        if (iv.machine) {
          setMachine({ provider: iv.machine.provider, region: iv.machine.region, state: iv.machine.state });
          machineStart = iv.machine.created_at ? new Date(iv.machine.created_at) : machineStart;
          machineEnd = iv.machine.destroyed_at ? new Date(iv.machine.destroyed_at) : null;
          machineBilled = iv.machine.seconds_billed || 0;
          tickMachine();
        }
      }, function () {});
    }

    function setTime(testid, iso) {
      var dd = root.querySelector("[data-testid=" + testid + "]");
      if (!dd || !iso) return;
      var t = document.createElement("time");
      t.setAttribute("datetime", iso);
      t.setAttribute("data-local", "datetime");
      t.textContent = iso;
      dd.textContent = "";
      dd.appendChild(t);
      if (window.Candor.localize) window.Candor.localize(dd);
    }

    // fmtDuration matches the server's (views.fmtDuration).
    function fmtDuration(sec) {
      sec = Math.max(0, Math.round(sec));
      if (sec < 60) return sec + "s";
      var h = Math.floor(sec / 3600), m = Math.floor(sec / 60) % 60, s = sec % 60;
      if (h > 0) return h + "h " + pad(m) + "m";
      return m + "m " + pad(s) + "s";
    }

    // Machine time counts up while the machine runs.
    var machineTime = root.querySelector("[data-testid=machine-time]");
    var machineStart = null, machineEnd = null, machineBilled = 0;
    function tickMachine() {
      if (!machineTime || !machineStart) return;
      var secs = machineBilled > 0 ? machineBilled : ((machineEnd || new Date()) - machineStart) / 1000;
      machineTime.textContent = fmtDuration(secs);
    }
    if (machineTime && machineTime.hasAttribute("data-running")) {
      var base = parseFloat(machineTime.getAttribute("data-seconds")) || 0;
      machineStart = new Date(Date.now() - base * 1000);
    }
    setInterval(function () { if (!machineEnd && machineBilled === 0 && !terminal[root.getAttribute("data-status")]) tickMachine(); }, 1000);

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
    // live list by the stored transcript, which is complete once the
    // interview has ended.
    function finish() {
      if (stopped) return;
      stopped = true;
      if (ch) ch.stop();
      presence.hidden = true;
      fetch("/api/v1/interviews/" + encodeURIComponent(id) + "/transcript", {
        credentials: "same-origin",
        headers: { "Accept": "application/json" }
      }).then(function (r) { return r.ok ? r.json() : null; }).then(function (body) {
        if (!body || !body.entries) return;
        body.entries.forEach(addEntry);
      }, function () {});
      fetchEvents();
    }

    function onMessage(m) {
      switch (m.type) {
        case "subscribed":
          fetchEvents();
          break;
        case "transcript.entry":
          addEntry(m.data);
          break;
        case "interview.event":
          addEvent(m.data);
          break;
        case "interview.status":
          setStatus(m.data && (m.data.status || (m.data.interview && m.data.interview.status)), m.data && m.data.interview);
          break;
        case "presence":
          setPresence(m.data && m.data.viewers);
          break;
      }
    }

    // ---- the recording, seekable from the transcript ----------------------
    var players = Array.prototype.slice.call(root.querySelectorAll("[data-testid=recording-player]"));
    // A MediaRecorder WebM carries no duration until read to its end: ask
    // for a far position once, so the player learns it and shows it before
    // anyone presses play.
    players.forEach(function (a) {
      a.addEventListener("loadedmetadata", function once() {
        a.removeEventListener("loadedmetadata", once);
        if (a.duration === Infinity || isNaN(a.duration)) {
          a.addEventListener("durationchange", function back() {
            if (a.duration === Infinity || isNaN(a.duration)) return;
            a.removeEventListener("durationchange", back);
            if (!a.dataset.seeking) a.currentTime = 0;
          });
          a.currentTime = 1e101;
        }
      });
    });

    // playerAt is the recording part holding media-clock ms and the offset
    // into it.
    function playerAt(ms) {
      var best = null;
      players.forEach(function (a) {
        var start = parseInt(a.getAttribute("data-start-ms"), 10) || 0;
        if (start <= ms && (!best || start >= best.start)) best = { audio: a, start: start };
      });
      return best;
    }

    function seek(ms, play) {
      // A recording in parts plays in one player that app.js moves
      // between the parts.
      if (window.Candor.recordingTimeline) return window.Candor.recordingTimeline.seek(ms, play);
      var at = playerAt(ms);
      if (!at) return false;
      var a = at.audio;
      var t = Math.max(0, (ms - at.start) / 1000);
      a.dataset.seeking = "1";
      players.forEach(function (o) { if (o !== a) o.pause(); });
      function go() {
        a.currentTime = t;
        delete a.dataset.seeking;
        if (play) {
          var p = a.play();
          if (p && p.catch) p.catch(function () {});
        }
      }
      if (a.readyState >= 1) go();
      else {
        a.addEventListener("loadedmetadata", go, { once: true });
        a.preload = "auto";
        a.load();
      }
      return true;
    }

    list.addEventListener("click", function (ev) {
      var b = ev.target.closest("[data-seek-ms]");
      if (!b) return;
      var li = b.closest("[data-seq]");
      markCurrent(li);
      seek(parseInt(b.getAttribute("data-seek-ms"), 10) || 0, true);
    });

    function markCurrent(li) {
      list.querySelectorAll(".entry.current").forEach(function (e) { e.classList.remove("current"); });
      if (li) li.classList.add("current");
    }

    // #entry-<seq> (a search hit) opens the transcript at that line, marked,
    // with the recording cued to its moment.
    function openHash() {
      var m = /^#entry-(\d+)$/.exec(location.hash);
      if (!m) return;
      var li = document.getElementById("entry-" + m[1]);
      if (!li) return;
      markCurrent(li);
      list.scrollTop = li.offsetTop - list.offsetTop - 8;
      li.scrollIntoView({ block: "nearest" });
      seek(parseInt(li.getAttribute("data-start-ms"), 10) || 0, false);
    }
    openHash();
    window.addEventListener("hashchange", openHash);

    window.Candor.live = {
      lastSeq: function () { return lastSeq; },
      seek: seek,
      drop: function () { if (ch) ch.drop(); }
    };

    if (root.getAttribute("data-live") === "true" && !terminal[root.getAttribute("data-status")]) {
      ch = channel(topic, {
        sinceSeq: function () { return lastSeq; },
        onMessage: onMessage,
        onState: function (state) {
          setIndicator(state);
          if (state === "off") presence.hidden = true;
        }
      });
    }
  }

  // interviewsList follows the status of every row of the interviews table
  // on the tenant's topic: the badge, and the lifecycle buttons that fit the
  // new status (the same ones lifecycleButtons renders).
  function interviewsList(section) {
    var topic = "tenant:" + section.getAttribute("data-tenant");
    var canWrite = section.hasAttribute("data-can-write");

    function update(d) {
      var id = d && (d.id || (d.interview && d.interview.id));
      var status = d && (d.status || (d.interview && d.interview.status));
      if (!id || !status) return;
      var row = section.querySelector('[data-testid=interview-row][data-id="' + CSS.escape(id) + '"]');
      if (!row || row.getAttribute("data-status") === status) return;
      row.setAttribute("data-status", status);
      setBadge(row.querySelector("[data-testid=status-badge]"), status);
      var cell = row.querySelector(".row-actions");
      if (!cell) return;
      replaceButtons(cell, buttonsFor(id, status, d.interview, false), canWrite);
    }

    var ch = channel(topic, {
      onMessage: function (m) {
        if (m.type === "interview.status") update(m.data);
      },
      onState: function (state) { section.setAttribute("data-live-state", state); }
    });
    window.Candor.liveList = { drop: ch.drop };
  }
})();
