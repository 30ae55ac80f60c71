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
  // this topic, onState("connecting"|"live"|"reconnecting"|"off").
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
      ws.onclose = function () {
        clearInterval(pingTimer);
        ws = null;
        if (stopped) return;
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
        list.insertBefore(li, firstAfter(list, "data-seq", e.seq));
      }
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
      ty.className = "event-type";
      ty.textContent = ev.type;
      li.appendChild(ty);
      var at = new Date(ev.at);
      var tm = document.createElement("time");
      tm.className = "muted small";
      if (!isNaN(at)) {
        tm.setAttribute("datetime", at.toISOString().replace(/\.\d+Z$/, "Z"));
        tm.textContent = fmtTime(at);
      }
      li.appendChild(tm);
      var data = ev.data == null ? "" : JSON.stringify(ev.data);
      if (data && data !== "{}" && data !== "null") {
        var code = document.createElement("code");
        code.className = "event-data";
        code.textContent = data;
        li.appendChild(code);
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

    function setStatus(status) {
      if (!status) return;
      root.setAttribute("data-status", status);
      setBadge(statusSlot && statusSlot.querySelector(".badge"), status);
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
          setStatus(m.data && (m.data.status || (m.data.interview && m.data.interview.status)));
          break;
        case "presence":
          setPresence(m.data && m.data.viewers);
          break;
      }
    }

    window.Candor.live = {
      lastSeq: function () { return lastSeq; },
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

    function button(id, action, testid, text, cls, retry) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "btn btn-sm " + cls;
      b.setAttribute("data-action", action);
      b.setAttribute("data-interview", id);
      b.setAttribute("data-testid", testid);
      if (retry) b.setAttribute("data-retry", "");
      b.textContent = text;
      return b;
    }

    function buttonsFor(id, status, iv) {
      var retryable = status === "failed" && iv && !iv.started_at;
      var out = [];
      if (status === "scheduled") out.push(button(id, "start", "start-interview", "Start", "btn-success"));
      if (retryable) out.push(button(id, "start", "retry-interview", "Retry", "btn-success", true));
      if (status === "starting" || status === "running") out.push(button(id, "end", "end-interview", "End", "btn-danger"));
      if (status === "scheduled" || retryable) out.push(button(id, "cancel", "cancel-interview", "Cancel", "btn-danger-ghost"));
      return { buttons: out, invite: !terminal[status] || retryable };
    }

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
      var want = buttonsFor(id, status, d.interview);
      var copy = cell.querySelector("[data-testid=copy-invite]");
      if (copy) copy.hidden = !want.invite;
      if (!canWrite) return;
      cell.querySelectorAll("button[data-action]").forEach(function (b) {
        // Leave a button whose request is in flight; app.js reloads after it.
        if (!b.disabled) b.remove();
      });
      want.buttons.forEach(function (b) { cell.appendChild(b); });
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
