// Candor candidate page. Walks the candidate through consent and a
// microphone check, then joins the interview: POST <invite>/join starts it
// (or returns the running processor), the microphone goes to the processor
// over WHIP (WebRTC, Opus) or, when ICE does not connect in time, as 16 kHz
// s16le PCM over a WebSocket; captions, state and the interviewer's voice
// come back over <processor>/events. Drops are repaired on their own by
// asking the control plane again where the processor is.
//
// Query parameters (for tests and troubleshooting):
//   force=ws   skip WebRTC and send audio over the WebSocket
//   ice_ms=N   how long ICE may take before falling back (default 4000)
//   raw=1      ask for the microphone without echo cancellation, noise
//              suppression and gain control (fake devices, measurements)
(function () {
  "use strict";

  var root = document.querySelector("[data-testid=candidate-page]");
  if (!root) return;

  var base = root.getAttribute("data-base");
  var params = new URLSearchParams(location.search);
  var forceWS = params.get("force") === "ws";
  var iceTimeout = parseInt(params.get("ice_ms"), 10) || 4000;
  // relay=1 uses TURN only (diagnostics: does the TURN path work here?).
  var forceRelay = params.get("relay") === "1";
  var raw = params.get("raw") === "1";
  var videoLimit = parseInt(root.getAttribute("data-video-limit"), 10) || 0;

  // Wall-clock instants (Date.now()) of what happened, for tests and
  // latency measurements.
  var timing = (window.candorTiming = {});

  function $(id) { return document.querySelector("[data-testid=" + id + "]"); }

  // ---- steps -------------------------------------------------------------

  var order = ["welcome", "consent", "devices", "live", "closing"];
  function show(step) {
    document.querySelectorAll("[data-step]").forEach(function (s) {
      s.hidden = s.getAttribute("data-step") !== step;
    });
    var at = order.indexOf(step);
    document.querySelectorAll("[data-step-dot]").forEach(function (li) {
      var i = order.indexOf(li.getAttribute("data-step-dot"));
      li.className = i < at ? "done" : i === at ? "current" : "";
      if (i === at) li.setAttribute("aria-current", "step"); else li.removeAttribute("aria-current");
    });
    var heading = document.querySelector("[data-step=" + step + "] h1, [data-step=" + step + "] h2");
    if (heading) { heading.setAttribute("tabindex", "-1"); heading.focus({ preventScroll: true }); }
    if (step !== "devices" && step !== "live" && step !== "closing") stopPreview();
    if (step === "devices") startPreview();
  }
  document.querySelectorAll("[data-next]").forEach(function (b) {
    b.addEventListener("click", function () { show(b.getAttribute("data-next")); });
  });

  function showError(el, msg) {
    el.textContent = msg || "";
    el.hidden = !msg;
  }

  // ---- HTTP ----------------------------------------------------------------

  // postJSON posts body and returns the JSON answer. Errors carry status,
  // code and final (the interview cannot be joined any more).
  function request(method, url, body, type) {
    var headers = { Accept: "application/json" };
    if (type) headers["Content-Type"] = type;
    return fetch(url, { method: method, headers: headers, body: body, credentials: "same-origin" }).then(function (res) {
      return res.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        if (res.ok) return data;
        var e = (data && data.error) || {};
        var err = new Error(e.message || "the server answered " + res.status);
        err.status = res.status;
        err.code = e.code || "";
        err.final = res.status === 404 || /^this (interview has ended|interview could not|invitation has expired)/.test(err.message);
        throw err;
      });
    });
  }
  function postJSON(url, body) { return request("POST", url, JSON.stringify(body || {}), "application/json"); }

  // ---- consent ---------------------------------------------------------------

  var consent = $("consent");
  var consentNext = $("consent-continue");
  consent.addEventListener("change", function () { consentNext.disabled = !consent.checked; });
  consentNext.addEventListener("click", function () {
    if (!consent.checked) return;
    consentNext.disabled = true;
    postJSON(base + "/consent", { consent: true }).then(function () {
      showError($("consent-error"), "");
      show("devices");
    }, function (err) {
      showError($("consent-error"), "Your consent could not be saved: " + err.message + ". Please try again.");
    }).then(function () { consentNext.disabled = !consent.checked; });
  });

  // ---- microphone and camera ---------------------------------------------------

  var cameraBox = $("camera");
  var preview = $("preview");
  var joinBtn = $("join");
  var previewStream = null;
  var previewSeq = 0;

  function audioConstraints() {
    var on = !raw;
    return { echoCancellation: on, noiseSuppression: on, autoGainControl: on, channelCount: 1 };
  }
  function getMedia(withVideo) {
    return navigator.mediaDevices.getUserMedia({
      audio: audioConstraints(),
      video: withVideo ? { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 15 } } : false
    });
  }
  function stopTracks(stream) {
    if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
  }

  function startPreview() {
    var seq = ++previewSeq;
    stopPreview(true);
    joinBtn.disabled = true;
    showError($("device-error"), "");
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      showError($("device-error"), "This browser cannot use a microphone here. Open the link in a current Chrome, Edge, Firefox or Safari.");
      return;
    }
    getMedia(cameraBox.checked).then(function (stream) {
      if (seq !== previewSeq) { stopTracks(stream); return; }
      previewStream = stream;
      var track = stream.getAudioTracks()[0];
      $("mic-name").textContent = track && track.label ? "Using: " + track.label : "";
      meter.attach(stream);
      if (cameraBox.checked) { preview.srcObject = stream; preview.hidden = false; }
      joinBtn.disabled = false;
    }, function (err) {
      if (seq !== previewSeq) return;
      var msg = err && err.name === "NotAllowedError"
        ? "The browser was not allowed to use your microphone. Allow it (the camera icon in the address bar), then try again."
        : err && err.name === "NotFoundError"
          ? "No microphone" + (cameraBox.checked ? " or camera" : "") + " was found. Connect one and try again."
          : "The microphone could not be started: " + (err && err.message ? err.message : err);
      showError($("device-error"), msg);
    });
  }
  function stopPreview(keepSeq) {
    if (!keepSeq) previewSeq++;
    if (previewStream && previewStream !== media) stopTracks(previewStream);
    previewStream = null;
    preview.srcObject = null;
    preview.hidden = true;
    if (!media) meter.detach();
  }
  cameraBox.addEventListener("change", startPreview);

  // meter draws the microphone level into every .cand-meter on the page.
  var meter = (function () {
    var ctx = null, analyser = null, source = null, raf = 0, buf = null;
    var fills = document.querySelectorAll(".cand-meter-fill");
    var bar = $("level-meter");
    function draw() {
      raf = requestAnimationFrame(draw);
      analyser.getFloatTimeDomainData(buf);
      var sum = 0;
      for (var i = 0; i < buf.length; i++) sum += buf[i] * buf[i];
      var db = 20 * Math.log10(Math.sqrt(sum / buf.length) + 1e-9);
      var level = Math.max(0, Math.min(100, Math.round((db + 60) * 100 / 50)));
      fills.forEach(function (f) { f.style.width = level + "%"; });
      bar.setAttribute("aria-valuenow", String(level));
    }
    return {
      attach: function (stream) {
        this.detach();
        ctx = ctx || new AudioContext();
        if (ctx.state === "suspended") ctx.resume();
        analyser = ctx.createAnalyser();
        analyser.fftSize = 1024;
        buf = new Float32Array(analyser.fftSize);
        source = ctx.createMediaStreamSource(stream);
        source.connect(analyser);
        draw();
      },
      detach: function () {
        cancelAnimationFrame(raf);
        if (source) source.disconnect();
        source = null;
        fills.forEach(function (f) { f.style.width = "0%"; });
      }
    };
  })();

  // ---- live interview ---------------------------------------------------------------

  var statusEl = $("status");
  var statusPill = statusEl.parentNode;
  var hint = $("hint");
  var captions = $("captions");
  var transportEl = $("transport");
  var endBtn = $("end");
  var selfView = $("self-view");

  var media = null;     // the interview's microphone (+ camera) stream
  var withVideo = false;
  var join = null;      // the last join answer: processor_url, token
  var gen = 0;          // connection generation; a stale callback checks it
  var conn = null;      // this generation's transports
  var ended = false;
  var ending = false;   // the candidate clicked End; a drop now is the processor going away
  var attempt = 0;
  var retryTimer = 0;
  var seen = {};

  function setStatus(s) {
    statusEl.textContent = s;
    statusPill.setAttribute("data-state", s);
    document.querySelector(".cand-status-slot").hidden = false;
  }

  joinBtn.addEventListener("click", function () {
    joinBtn.disabled = true;
    withVideo = cameraBox.checked;
    player.init(); // inside the click: browsers allow sound after a gesture
    show("live");
    setStatus("connecting");
    hint.textContent = "Starting your interview. This can take a few seconds…";
    connect();
  });

  // connect asks the control plane for the processor (starting the
  // interview the first time) and opens this generation's transports.
  function connect() {
    var my = ++gen;
    conn = { pc: null, dc: null, ws: null, events: null, capture: null, whip: null, timer: 0, live: false };
    postJSON(base + "/join", {}).then(function (j) {
      if (my !== gen || ended) return;
      join = j;
      return ensureMedia().then(function () {
        if (my !== gen || ended) return;
        openEvents(my);
        if (forceWS) startWS(my, "forced");
        else startWHIP(my).catch(function (err) {
          if (my !== gen) return;
          console.warn("candor: WebRTC failed, using the WebSocket", err);
          startWS(my, "webrtc-error");
        });
      });
    }).catch(function (err) {
      if (my !== gen || ended) return;
      if (err && err.final) { finish(err.message); return; }
      console.warn("candor: join failed", err);
      drop(my, err && err.message);
    });
  }

  // ensureMedia acquires the interview's stream once: a fresh capture, so
  // that what is said from now on is what the processor hears.
  function ensureMedia() {
    if (media) return Promise.resolve(media);
    stopPreview();
    return getMedia(withVideo).then(function (stream) {
      media = stream;
      timing.audioStart = Date.now();
      meter.attach(stream);
      if (withVideo) {
        selfView.srcObject = stream;
        selfView.hidden = false;
        recorder.start(stream);
      }
      stream.getAudioTracks().forEach(function (t) {
        t.addEventListener("ended", function () {
          if (!ended) hint.textContent = "Your microphone stopped. Check that it is connected.";
        });
      });
      return stream;
    });
  }

  function live(my, transport) {
    if (my !== gen || ended || conn.live) return;
    conn.live = true;
    attempt = 0;
    timing.live = timing.live || Date.now();
    setStatus("live");
    transportEl.textContent = transport === "webrtc" ? "Connected (WebRTC)" : "Connected (WebSocket)";
    transportEl.setAttribute("data-transport", transport);
    hint.textContent = hintNow();
  }

  // hintNow is what the candidate should do, from the conversation so far
  // (after a reload too).
  function hintNow() {
    if (closing) return "The interviewer has finished. You can end the interview.";
    var last = captions.lastElementChild;
    if (!last) return "Listening. The interviewer will speak first.";
    if (last.getAttribute("data-speaker") === "interviewer") return "Answer in your own words. Take your time.";
    return "Listening. Keep going, or pause and the interviewer will continue.";
  }

  // drop tears this generation down and tries again with backoff.
  function drop(my, why) {
    if (my !== gen || ended || ending) return;
    gen++;
    teardown();
    setStatus("reconnecting");
    hint.textContent = "The connection dropped. Reconnecting…";
    var delay = Math.min(5000, 500 * Math.pow(2, attempt++));
    clearTimeout(retryTimer);
    retryTimer = setTimeout(function () { if (!ended) connect(); }, delay);
    if (why) console.warn("candor: reconnecting:", why);
  }

  function teardown() {
    var c = conn;
    if (!c) return;
    conn = null;
    clearTimeout(c.timer);
    if (c.capture) c.capture.stop();
    if (c.ws) { c.ws.onclose = null; c.ws.close(); }
    if (c.events) { c.events.onclose = null; c.events.close(); }
    if (c.pc) { c.pc.onconnectionstatechange = null; c.pc.close(); }
    if (c.whip && join) {
      fetch(c.whip, { method: "DELETE", headers: { Authorization: "Bearer " + join.token } }).catch(function () {});
    }
  }

  function wsURL(path) {
    return join.processor_url.replace(/^http/, "ws").replace(/\/$/, "") + path + "?token=" + encodeURIComponent(join.token);
  }

  // ---- events: captions, state, interviewer speech ----

  function openEvents(my) {
    var ws = new WebSocket(wsURL("/events"));
    ws.binaryType = "arraybuffer";
    conn.events = ws;
    ws.onmessage = function (m) { if (my === gen) onInterviewer(m.data, "events"); };
    ws.onclose = function () { drop(my, "events closed"); };
  }

  function onInterviewer(data, from) {
    if (typeof data !== "string") {
      // Speech comes over /events; the data channel's copy is used only
      // while /events is down, so nothing plays twice.
      var eventsOpen = conn && conn.events && conn.events.readyState === WebSocket.OPEN;
      if (from === "events" || !eventsOpen) player.play(data);
      return;
    }
    var msg;
    try { msg = JSON.parse(data); } catch (e) { return; }
    if (msg.type === "caption") addCaption(msg);
    else if (msg.type === "interrupt") player.interrupt();
    else if (msg.type === "state" && msg.state === "ended") finish();
    else if (msg.type === "state" && msg.state === "closing") startClosing();
  }

  function addCaption(c) {
    if (!c.text || seen[c.seq]) return;
    seen[c.seq] = true;
    var li = document.createElement("li");
    li.className = "cand-caption from-" + c.speaker;
    li.setAttribute("data-testid", "caption");
    li.setAttribute("data-speaker", c.speaker);
    li.setAttribute("data-seq", String(c.seq));
    var who = document.createElement("span");
    who.className = "cand-caption-who";
    who.textContent = c.speaker === "interviewer" ? "Interviewer" : "You";
    var text = document.createElement("span");
    text.className = "cand-caption-text";
    text.textContent = c.text;
    li.appendChild(who);
    li.appendChild(text);
    // Captions arrive in seq order; a late one is slotted in place.
    var after = null;
    for (var n = captions.lastElementChild; n; n = n.previousElementSibling) {
      if (parseInt(n.getAttribute("data-seq"), 10) < c.seq) { after = n; break; }
    }
    captions.insertBefore(li, after ? after.nextSibling : captions.firstChild);
    captions.scrollTop = captions.scrollHeight;
    if (!closing) hint.textContent = hintNow();
  }

  // player plays the interviewer's s16le 16 kHz mono PCM gaplessly.
  var player = (function () {
    var ctx = null, next = 0, speakingTimer = 0;
    // scheduled holds the sources not yet finished, so that barge-in can
    // silence the interviewer at once.
    var scheduled = [];
    var who = $("interviewer");
    return {
      init: function () {
        if (!ctx) ctx = new AudioContext();
        if (ctx.state === "suspended") ctx.resume();
      },
      // suspended: the browser holds sound back until the candidate
      // interacts with the page (a reload has had no click yet).
      suspended: function () { return !!ctx && ctx.state === "suspended"; },
      play: function (buf) {
        if (!ctx || ended) return;
        var pcm = new Int16Array(buf, 0, buf.byteLength >> 1);
        if (!pcm.length) return;
        var ab = ctx.createBuffer(1, pcm.length, 16000);
        var ch = ab.getChannelData(0);
        for (var i = 0; i < pcm.length; i++) ch[i] = pcm[i] / 32768;
        var src = ctx.createBufferSource();
        src.buffer = ab;
        src.connect(ctx.destination);
        var at = Math.max(ctx.currentTime + 0.05, next);
        scheduled.push(src);
        src.onended = function () { scheduled.splice(scheduled.indexOf(src), 1); };
        src.start(at);
        next = at + ab.duration;
        who.setAttribute("data-speaking", "true");
        clearTimeout(speakingTimer);
        speakingTimer = setTimeout(function () { who.setAttribute("data-speaking", "false"); }, (next - ctx.currentTime) * 1000 + 100);
      },
      // interrupt drops what the interviewer has queued: the candidate
      // started speaking over it (barge-in).
      interrupt: function () {
        scheduled.splice(0).forEach(function (src) { try { src.stop(); } catch (e) {} });
        next = 0;
        clearTimeout(speakingTimer);
        who.setAttribute("data-speaking", "false");
      },
      stop: function () { if (ctx) ctx.close(); ctx = null; }
    };
  })();

  // ---- WHIP (RFC 9725) ----

  function startWHIP(my) {
    var pc = new RTCPeerConnection({ iceServers: join.ice_servers || [], iceTransportPolicy: forceRelay ? "relay" : "all" });
    conn.pc = pc;
    // The data channel is created before the offer so that it is in it.
    var dc = pc.createDataChannel("interviewer");
    dc.binaryType = "arraybuffer";
    dc.onmessage = function (m) { if (my === gen) onInterviewer(m.data, "dc"); };
    conn.dc = dc;
    media.getAudioTracks().forEach(function (t) {
      pc.addTransceiver(t, { direction: "sendonly", streams: [media] });
    });
    pc.onconnectionstatechange = function () {
      if (my !== gen) return;
      var st = pc.connectionState;
      if (st === "connected") { clearTimeout(conn.timer); live(my, "webrtc"); }
      else if (st === "failed" || st === "closed") drop(my, "webrtc " + st);
      else if (st === "disconnected") {
        // Often recovers on its own; give it a moment.
        setTimeout(function () { if (my === gen && pc.connectionState === "disconnected") drop(my, "webrtc disconnected"); }, 3000);
      }
    };
    return pc.createOffer().then(function (offer) {
      return pc.setLocalDescription(offer);
    }).then(function () {
      return gathered(pc, 2000);
    }).then(function () {
      if (my !== gen) return;
      return fetch(join.processor_url.replace(/\/$/, "") + "/whip", {
        method: "POST",
        headers: { "Content-Type": "application/sdp", Authorization: "Bearer " + join.token },
        body: pc.localDescription.sdp
      }).then(function (res) {
        if (res.status !== 201) {
          return res.text().then(function (t) { throw new Error("WHIP answered " + res.status + ": " + t); });
        }
        var loc = res.headers.get("Location");
        if (loc && conn) conn.whip = new URL(loc, join.processor_url).href;
        return res.text();
      }).then(function (answer) {
        if (my !== gen) return;
        conn.timer = setTimeout(function () {
          if (my !== gen || conn.live) return;
          console.warn("candor: ICE did not connect within " + iceTimeout + " ms; using the WebSocket");
          fallback(my);
        }, iceTimeout);
        return pc.setRemoteDescription({ type: "answer", sdp: answer });
      });
    });
  }

  // fallback replaces WebRTC with the WebSocket within this generation.
  function fallback(my) {
    var pc = conn.pc;
    conn.pc = null;
    if (pc) { pc.onconnectionstatechange = null; pc.close(); }
    if (conn.whip) {
      fetch(conn.whip, { method: "DELETE", headers: { Authorization: "Bearer " + join.token } }).catch(function () {});
      conn.whip = null;
    }
    startWS(my, "ice-timeout");
  }

  // gathered resolves when ICE gathering completes (WHIP sends one offer
  // with every candidate), or after ms.
  function gathered(pc, ms) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise(function (resolve) {
      var t = setTimeout(resolve, ms);
      pc.addEventListener("icegatheringstatechange", function () {
        if (pc.iceGatheringState === "complete") { clearTimeout(t); resolve(); }
      });
    });
  }

  // ---- WebSocket audio fallback ----

  // The fallback sends Opus in WebM from MediaRecorder (about 4 KB/s) where
  // the browser has it, PCM (32 KB/s) otherwise or with ?ws=pcm.
  var wsWebM = params.get("ws") !== "pcm" && !!window.MediaRecorder &&
    MediaRecorder.isTypeSupported("audio/webm;codecs=opus");

  function startWS(my, why) {
    timing.transport = "websocket";
    var ws = new WebSocket(wsURL("/ws/audio") + (wsWebM ? "&format=webm" : ""));
    ws.binaryType = "arraybuffer";
    conn.ws = ws;
    ws.onopen = function () {
      if (my !== gen) return;
      if (wsWebM) {
        var rec;
        try {
          rec = new MediaRecorder(new MediaStream(media.getAudioTracks()), { mimeType: "audio/webm;codecs=opus", audioBitsPerSecond: 32000 });
        } catch (err) {
          drop(my, "audio recorder: " + err);
          return;
        }
        rec.ondataavailable = function (e) {
          if (ws.readyState !== WebSocket.OPEN || !e.data || !e.data.size) return;
          if (!timing.firstFrame) timing.firstFrame = Date.now();
          ws.send(e.data);
        };
        rec.start(250);
        conn.capture = { stop: function () { if (rec.state !== "inactive") rec.stop(); } };
        live(my, "websocket");
        return;
      }
      capturePCM(media, function (frame) {
        if (ws.readyState !== WebSocket.OPEN) return;
        if (!timing.firstFrame) timing.firstFrame = Date.now();
        ws.send(frame);
      }).then(function (cap) {
        if (my !== gen || !conn) { cap.stop(); return; }
        conn.capture = cap;
        live(my, "websocket");
      }, function (err) {
        drop(my, "audio capture: " + err);
      });
    };
    ws.onclose = function () { drop(my, "audio websocket closed (" + why + ")"); };
  }

  // downsampler turns float samples at rate into s16 16 kHz frames of 20 ms:
  // a box filter over each output period (after a 7 kHz low-pass in the
  // graph) is plenty for speech. It runs in the AudioWorklet (its source is
  // reused there) or, without worklets, in a ScriptProcessor.
  function downsampler(rate, emit) {
    var ratio = rate / 16000, pos = 0, acc = 0, n = 0, out = new Int16Array(320), o = 0;
    return function (a, b) {
      for (var i = 0; i < a.length; i++) {
        acc += b ? (a[i] + b[i]) * 0.5 : a[i];
        n++;
        pos += 1;
        if (pos >= ratio) {
          pos -= ratio;
          var v = acc / n;
          acc = 0; n = 0;
          v = v < -1 ? -1 : v > 1 ? 1 : v;
          out[o++] = v < 0 ? v * 32768 : v * 32767;
          if (o === out.length) { emit(out.buffer); out = new Int16Array(320); o = 0; }
        }
      }
    };
  }

  var workletSource =
    "var downsampler = " + downsampler.toString() + ";\n" +
    "registerProcessor('candor-pcm', class extends AudioWorkletProcessor {\n" +
    "  constructor() { super(); var port = this.port;\n" +
    "    this.push = downsampler(sampleRate, function (buf) { port.postMessage(buf, [buf]); }); }\n" +
    "  process(inputs) { var ch = inputs[0];\n" +
    "    if (ch && ch.length) this.push(ch[0], ch.length > 1 ? ch[1] : null);\n" +
    "    return true; }\n" +
    "});\n";

  // capturePCM feeds 16 kHz s16le frames of stream to emit until stop().
  function capturePCM(stream, emit) {
    var ctx = new AudioContext();
    var src = ctx.createMediaStreamSource(stream);
    var lp = ctx.createBiquadFilter();
    lp.type = "lowpass";
    lp.frequency.value = 7000;
    var sink = ctx.createGain();
    sink.gain.value = 0;
    src.connect(lp);
    sink.connect(ctx.destination);
    var stop = function (node) {
      return {
        stop: function () {
          try { src.disconnect(); node.disconnect(); } catch (e) { /* already */ }
          ctx.close();
        }
      };
    };
    var start = ctx.state === "suspended" ? ctx.resume() : Promise.resolve();
    if (ctx.audioWorklet) {
      var url = URL.createObjectURL(new Blob([workletSource], { type: "text/javascript" }));
      return start.then(function () { return ctx.audioWorklet.addModule(url); }).then(function () {
        URL.revokeObjectURL(url);
        var node = new AudioWorkletNode(ctx, "candor-pcm", { numberOfOutputs: 1, outputChannelCount: [1] });
        node.port.onmessage = function (m) { emit(m.data); };
        lp.connect(node);
        node.connect(sink);
        return stop(node);
      });
    }
    return start.then(function () {
      var node = ctx.createScriptProcessor(4096, 2, 1);
      var push = downsampler(ctx.sampleRate, emit);
      node.onaudioprocess = function (e) {
        var ib = e.inputBuffer;
        push(ib.getChannelData(0), ib.numberOfChannels > 1 ? ib.getChannelData(1) : null);
      };
      lp.connect(node);
      node.connect(sink);
      return stop(node);
    });
  }

  // ---- camera recording ----

  var recorder = (function () {
    var rec = null, chunks = [], bytes = 0, done = null, overLimit = false;
    function pick() {
      var types = ["video/webm;codecs=vp8,opus", "video/webm;codecs=vp9,opus", "video/webm"];
      for (var i = 0; i < types.length; i++) if (MediaRecorder.isTypeSupported(types[i])) return types[i];
      return "";
    }
    return {
      start: function (stream) {
        if (typeof MediaRecorder === "undefined") return;
        try {
          rec = new MediaRecorder(stream, { mimeType: pick(), videoBitsPerSecond: 600000 });
        } catch (e) { console.warn("candor: cannot record video", e); return; }
        done = new Promise(function (resolve) { rec.onstop = resolve; });
        rec.ondataavailable = function (e) {
          if (!e.data || !e.data.size) return;
          if (videoLimit && bytes + e.data.size > videoLimit) {
            overLimit = true;
            if (rec.state !== "inactive") rec.stop();
            return;
          }
          chunks.push(e.data);
          bytes += e.data.size;
        };
        rec.start(1000);
      },
      // finish stops recording and uploads what was recorded.
      finish: function () {
        if (!rec) return Promise.resolve(null);
        if (rec.state !== "inactive") rec.stop();
        return done.then(function () {
          if (!chunks.length) return null;
          var blob = new Blob(chunks, { type: "video/webm" });
          chunks = [];
          return request("PUT", base + "/video", blob, "video/webm").then(function () { return overLimit ? "partial" : "ok"; });
        });
      }
    };
  })();

  // ---- after the closing line -----------------------------------------
  // The interviewer has said its closing line: tell the candidate it is
  // over and end it after a short countdown they can stop ("I have more to
  // add"). The processor itself waits for minutes of silence, so speaking
  // on is always possible.
  var closing = false;
  var closingSeconds = parseInt(params.get("closing_s"), 10) || 15;
  var closingTimer = 0;
  var banner = $("closing-banner");
  var countdownEl = $("closing-countdown");

  function startClosing() {
    if (closing || ended || ending) return;
    closing = true;
    hint.textContent = hintNow();
    banner.hidden = false;
    var left = closingSeconds;
    countdownEl.textContent = String(left);
    timing.closing = Date.now();
    clearInterval(closingTimer);
    closingTimer = setInterval(function () {
      left--;
      countdownEl.textContent = String(Math.max(0, left));
      if (left <= 0) {
        clearInterval(closingTimer);
        banner.hidden = true;
        endInterview();
      }
    }, 1000);
  }

  $("more-to-add").addEventListener("click", function () {
    clearInterval(closingTimer);
    banner.hidden = true;
    timing.moreToAdd = Date.now();
    hint.textContent = "Go ahead, the interviewer is still listening. Select End interview when you are done.";
  });
  $("end-now").addEventListener("click", function () {
    clearInterval(closingTimer);
    banner.hidden = true;
    endInterview();
  });

  // ---- end ----

  endBtn.addEventListener("click", endInterview);

  function endInterview() {
    if (ended || ending) return;
    clearInterval(closingTimer);
    banner.hidden = true;
    ending = true;
    endBtn.disabled = true;
    endBtn.textContent = "Ending…";
    hint.textContent = "Saving your interview…";
    postJSON(base + "/end", {}).then(function () { finish(); }, function (err) {
      if (err && err.final) { finish(); return; }
      ending = false;
      if (!conn || !conn.live) drop(gen, "end failed");
      endBtn.disabled = false;
      endBtn.textContent = "End interview";
      hint.textContent = "The interview could not be ended: " + err.message + ". Please try again.";
    });
  }

  // finish shows the closing screen and releases everything; the camera
  // recording, if any, is uploaded first.
  function finish(why) {
    if (ended) return;
    ended = true;
    gen++;
    clearTimeout(retryTimer);
    teardown();
    setStatus("ended");
    timing.ended = Date.now();
    show("closing");
    if (why && !ending) {
      document.getElementById("closing-title").textContent = why.charAt(0).toUpperCase() + why.slice(1);
      $("closing-text").textContent = "If you think this is a mistake, contact the person who invited you.";
    }
    var up = $("upload-status");
    if (withVideo) {
      up.hidden = false;
      up.textContent = "Uploading your video… please keep this page open.";
    }
    recorder.finish().then(function (res) {
      if (res === "ok") up.textContent = "Your video was uploaded.";
      else if (res === "partial") up.textContent = "Your video was uploaded (the first part only: it was too long to keep whole).";
    }, function (err) {
      up.textContent = "Your video could not be uploaded: " + err.message;
    }).then(function () {
      stopTracks(media);
      meter.detach();
      player.stop();
    });
  }

  // A reload while the interview runs rejoins it: the live step with the
  // conversation so far (rendered by the server), the microphone reopened
  // (the browser remembers the permission) and the interviewer's voice on
  // as soon as the browser allows sound.
  captions.querySelectorAll("[data-seq]").forEach(function (li) { seen[li.getAttribute("data-seq")] = true; });
  if (root.getAttribute("data-running") === "true" && root.getAttribute("data-consented") === "true") {
    show("live");
    setStatus("connecting");
    hint.textContent = "Welcome back. Reconnecting you to the interview…";
    captions.scrollTop = captions.scrollHeight;
    player.init();
    if (player.suspended()) {
      var soundOff = $("sound-off");
      soundOff.hidden = false;
      $("sound-on").addEventListener("click", function () {
        player.init();
        soundOff.hidden = true;
      });
    }
    timing.rejoined = Date.now();
    connect();
  }
})();
