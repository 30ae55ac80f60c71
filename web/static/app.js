// Candor dashboard: small progressive enhancements. Every page works without
// this file; it adds clipboard buttons, inline start/end/cancel calls to the
// REST API, confirmations, and the question-plan and rubric editors.
(function () {
  "use strict";

  function csrfToken() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") : "";
  }

  // Exposed for live.js and tests.
  window.Candor = window.Candor || {};
  window.Candor.csrfToken = csrfToken;

  // --- Copy to clipboard -------------------------------------------------
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain-http deployments have no async clipboard: fall back to a
    // temporary selection.
    return new Promise(function (resolve, reject) {
      var ta = document.createElement("textarea");
      ta.value = text;
      ta.setAttribute("readonly", "");
      ta.style.position = "fixed";
      ta.style.opacity = "0";
      document.body.appendChild(ta);
      ta.select();
      try {
        document.execCommand("copy") ? resolve() : reject(new Error("copy refused"));
      } catch (e) {
        reject(e);
      } finally {
        document.body.removeChild(ta);
      }
    });
  }

  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("[data-copy]");
    if (!btn) return;
    var label = btn.textContent;
    copyText(btn.getAttribute("data-copy")).then(function () {
      btn.classList.add("copied");
      btn.textContent = "Copied";
    }, function () {
      window.prompt("Copy this link:", btn.getAttribute("data-copy"));
    }).then(function () {
      setTimeout(function () {
        btn.classList.remove("copied");
        btn.textContent = label;
      }, 1600);
    });
  });

  // --- Start (or retry) / end / cancel through the REST API ------------
  function showActionMessage(text, isError) {
    var box = document.querySelector("[data-testid=action-message]");
    if (!box) {
      window.alert(text);
      return;
    }
    box.textContent = text;
    box.classList.toggle("error", !!isError);
    box.hidden = false;
  }

  function describeFailure(res, body) {
    var msg = body && body.error && body.error.message;
    if (res.status === 501) {
      return "Interviews cannot be started or ended on this server yet: it has no machine provider configured. " +
        "Ask the operator to set one up (CANDOR_PROVISIONER), then try again.";
    }
    if (res.status === 409) return "That is not possible in the interview's current state" + (msg ? ": " + msg : ".");
    if (res.status === 401) return "Your session has ended. Sign in again.";
    if (res.status === 403) return "You do not have permission to do that.";
    return "The request failed" + (msg ? ": " + msg : " (HTTP " + res.status + ").");
  }

  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("button[data-action][data-interview]");
    if (!btn) return;
    var action = btn.getAttribute("data-action");
    var id = btn.getAttribute("data-interview");
    var retry = btn.hasAttribute("data-retry");
    if (action === "end" && !window.confirm("End this interview now? The transcript is finalized and the machine destroyed.")) return;
    if (action === "cancel" && !window.confirm("Cancel this interview? Its invite link stops working.")) return;
    btn.disabled = true;
    var label = btn.textContent;
    btn.textContent = { start: retry ? "Retrying…" : "Starting…", end: "Ending…", cancel: "Cancelling…" }[action] || "Working…";
    fetch("/api/v1/interviews/" + encodeURIComponent(id) + "/" + action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrfToken(), "Accept": "application/json" }
    }).then(function (res) {
      return res.json().catch(function () { return null; }).then(function (body) {
        if (res.ok) {
          showActionMessage({ start: "Interview started.", end: "Interview ended.", cancel: "Interview cancelled." }[action] || "Done.", false);
          setTimeout(function () { window.location.reload(); }, 600);
          return;
        }
        showActionMessage(describeFailure(res, body), true);
        btn.disabled = false;
        btn.textContent = label;
      });
    }, function () {
      showActionMessage("Could not reach the server. Check your connection and try again.", true);
      btn.disabled = false;
      btn.textContent = label;
    });
  });

  // --- User menu: close on a click elsewhere or Escape ---------------------
  document.addEventListener("click", function (ev) {
    document.querySelectorAll("details.user-menu[open]").forEach(function (d) {
      if (!d.contains(ev.target)) d.open = false;
    });
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.key !== "Escape") return;
    document.querySelectorAll("details.user-menu[open]").forEach(function (d) {
      d.open = false;
      d.querySelector("summary").focus();
    });
  });

  // --- Confirmations and auto-submit --------------------------------------
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var q = form.getAttribute && form.getAttribute("data-confirm");
    if (q && !window.confirm(q)) ev.preventDefault();
  });

  document.querySelectorAll("select[data-autosubmit]").forEach(function (sel) {
    var form = sel.form;
    var button = form && form.querySelector("[data-autosubmit-button]");
    if (button) button.hidden = true;
    sel.addEventListener("change", function () { form.requestSubmit ? form.requestSubmit() : form.submit(); });
  });

  // --- Question plan editor -----------------------------------------------
  // The server reads the textarea (one question per line). The editor hides
  // it, shows one input per question with reorder/remove buttons, and writes
  // the list back into the textarea on every change.
  function iconButton(label, text, attr) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "btn btn-icon";
    b.setAttribute("aria-label", label);
    b.setAttribute(attr, "");
    b.textContent = text;
    return b;
  }

  function enhanceQuestions(box) {
    var ta = box.querySelector("textarea");
    if (!ta || ta.closest("fieldset:disabled")) return;
    var list = document.createElement("ol");
    list.className = "question-list";
    list.setAttribute("data-testid", "question-list");
    var add = document.createElement("button");
    add.type = "button";
    add.className = "btn btn-sm";
    add.textContent = "Add question";
    add.setAttribute("data-testid", "question-add");

    function sync() {
      var lines = [];
      list.querySelectorAll("input").forEach(function (inp) {
        var v = inp.value.replace(/\s+/g, " ").trim();
        if (v) lines.push(v);
      });
      ta.value = lines.join("\n");
    }

    function renumber() {
      var rows = list.children;
      for (var i = 0; i < rows.length; i++) {
        var inp = rows[i].querySelector("input");
        inp.setAttribute("aria-label", "Question " + (i + 1));
        rows[i].querySelector("[data-up]").disabled = i === 0;
        rows[i].querySelector("[data-down]").disabled = i === rows.length - 1;
      }
    }

    function addRow(text, focus) {
      var li = document.createElement("li");
      li.className = "question-row";
      li.setAttribute("data-testid", "question-row");
      var inp = document.createElement("input");
      inp.type = "text";
      inp.value = text;
      inp.placeholder = "e.g. Tell me about a project you are proud of.";
      inp.setAttribute("data-testid", "question-input");
      inp.addEventListener("input", sync);
      inp.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter") {
          ev.preventDefault();
          addRow("", true);
        }
      });
      var btns = document.createElement("div");
      btns.className = "row-buttons";
      btns.appendChild(iconButton("Move up", "↑", "data-up"));
      btns.appendChild(iconButton("Move down", "↓", "data-down"));
      btns.appendChild(iconButton("Remove question", "×", "data-remove"));
      li.appendChild(inp);
      li.appendChild(btns);
      list.appendChild(li);
      renumber();
      if (focus) inp.focus();
    }

    list.addEventListener("click", function (ev) {
      var b = ev.target.closest("button");
      if (!b) return;
      var li = b.closest("li");
      if (b.hasAttribute("data-up") && li.previousElementSibling) {
        list.insertBefore(li, li.previousElementSibling);
      } else if (b.hasAttribute("data-down") && li.nextElementSibling) {
        list.insertBefore(li.nextElementSibling, li);
      } else if (b.hasAttribute("data-remove")) {
        li.remove();
        if (!list.children.length) addRow("", false);
      }
      renumber();
      sync();
    });
    add.addEventListener("click", function () { addRow("", true); });

    var lines = ta.value.split("\n").map(function (s) { return s.trim(); }).filter(Boolean);
    if (!lines.length) lines = [""];
    lines.forEach(function (l) { addRow(l, false); });
    ta.hidden = true;
    ta.after(list, add);
    ta.form.addEventListener("submit", sync);
  }

  // --- Rubric editor ------------------------------------------------------
  // Rows are plain repeated inputs the server reads in order; JS adds rows
  // and remove buttons and drops the spare empty rows rendered for no-JS use.
  function enhanceRubric(box) {
    if (box.closest("fieldset:disabled")) return;
    var list = box.querySelector(".rubric-rows");
    var add = box.querySelector("[data-rubric-add]");
    if (!list || !add) return;
    var template = list.lastElementChild.cloneNode(true);
    var counter = list.children.length;

    function isEmpty(li) {
      return Array.prototype.every.call(li.querySelectorAll("input"), function (i) { return !i.value.trim(); });
    }
    var rows = Array.prototype.slice.call(list.children);
    var filled = rows.filter(function (li) { return !isEmpty(li); }).length;
    rows.forEach(function (li) {
      if (isEmpty(li) && (filled > 0 || li !== rows[0])) li.remove();
    });
    if (!list.children.length) list.appendChild(template.cloneNode(true));

    function showRemove() {
      list.querySelectorAll("[data-rubric-remove]").forEach(function (b) { b.hidden = false; });
    }
    list.addEventListener("click", function (ev) {
      var b = ev.target.closest("[data-rubric-remove]");
      if (!b) return;
      b.closest("li").remove();
      if (!list.children.length) add.click();
    });
    add.addEventListener("click", function () {
      var li = template.cloneNode(true);
      li.querySelectorAll("input").forEach(function (inp) {
        inp.value = "";
        inp.removeAttribute("aria-invalid");
        var base = inp.id.replace(/_\d+$/, "");
        inp.id = base + "_" + counter;
        var lab = li.querySelector('label[for^="' + base + '_"]');
        if (lab) lab.setAttribute("for", inp.id);
      });
      li.querySelectorAll(".field-error").forEach(function (e) { e.remove(); });
      counter++;
      list.appendChild(li);
      showRemove();
      li.querySelector("input").focus();
    });
    add.hidden = false;
    showRemove();
  }

  // --- A recording in parts, played as one timeline ---------------------
  // Each processor (and each minute of a WAV) is a part of its own; the
  // player plays them in media order and shows where it is on the
  // interview's clock.
  function clock(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var m = Math.floor(s / 60);
    s = s % 60;
    return m + ":" + (s < 10 ? "0" : "") + s;
  }

  function enhanceRecording(box) {
    var player = box.querySelector("audio");
    var parts = Array.prototype.slice.call(box.querySelectorAll("[data-part-start-ms]"));
    var pos = box.querySelector("[data-recording-position]");
    if (!player || parts.length < 2) return;
    var current = 0;
    function show() {
      var start = startOf(current);
      pos.textContent = "Part " + (current + 1) + " of " + parts.length + " · " + clock(start + player.currentTime * 1000);
      parts.forEach(function (a, i) {
        if (i === current) a.setAttribute("aria-current", "true");
        else a.removeAttribute("aria-current");
      });
      box.setAttribute("data-current-part", String(current + 1));
    }
    function startOf(i) {
      return parseInt(parts[i].getAttribute("data-part-start-ms"), 10) || 0;
    }
    function load(i, play, offset) {
      if (i !== current || offset === undefined) {
        current = i;
        player.src = parts[i].getAttribute("href");
        player.setAttribute("data-start-ms", String(startOf(i)));
      }
      function go() {
        if (offset !== undefined) player.currentTime = offset;
        if (play) {
          var p = player.play();
          if (p && p.catch) p.catch(function () {});
        }
      }
      if (player.readyState >= 1) go();
      else player.addEventListener("loadedmetadata", go, { once: true });
      show();
    }
    // seek plays (or cues) the moment ms of the interview's media clock:
    // live.js calls it when a transcript line is clicked.
    window.Candor.recordingTimeline = {
      seek: function (ms, play) {
        var i = 0;
        for (var k = 0; k < parts.length; k++) if (startOf(k) <= ms) i = k;
        load(i, play, Math.max(0, (ms - startOf(i)) / 1000));
        return true;
      }
    };
    parts.forEach(function (a, i) {
      a.addEventListener("click", function (ev) {
        ev.preventDefault();
        load(i, true);
      });
    });
    player.addEventListener("ended", function () {
      if (current + 1 < parts.length) load(current + 1, true);
    });
    player.addEventListener("timeupdate", show);
    show();
  }

  document.querySelectorAll("[data-recording-timeline]").forEach(enhanceRecording);
  document.querySelectorAll("[data-question-editor]").forEach(enhanceQuestions);
  document.querySelectorAll("[data-rubric-editor]").forEach(enhanceRubric);

  // --- Times in the viewer's time zone ----------------------------------
  // The server renders UTC; <time data-local> is rewritten in the browser's
  // zone ("datetime": date and time; "time": time of day), with the zone
  // named so nobody has to guess.
  var zone = "";
  try { zone = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" }).formatToParts(new Date()).filter(function (p) { return p.type === "timeZoneName"; }).map(function (p) { return p.value; })[0] || ""; } catch (e) {}
  function localize(el) {
    var d = new Date(el.getAttribute("datetime"));
    if (isNaN(d)) return;
    var kind = el.getAttribute("data-local");
    var opts = kind === "time" ? { hour: "2-digit", minute: "2-digit", second: "2-digit" }
      : { day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit" };
    try {
      el.textContent = d.toLocaleString(undefined, opts) + (kind === "time" ? "" : " " + zone);
      el.title = d.toISOString();
    } catch (e) {}
  }
  window.Candor.localize = function (root) {
    (root || document).querySelectorAll("time[data-local]").forEach(localize);
  };
  window.Candor.localize();

  // --- Error summary: focus it after a failed submit ----------------------
  var summary = document.querySelector(".error-summary");
  if (summary) summary.focus();

  // --- Erase a candidate (DELETE /api/v1/candidates/:id) -------------------
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("button[data-erase-candidate]");
    if (!btn) return;
    if (!window.confirm(btn.getAttribute("data-confirm-text"))) return;
    btn.disabled = true;
    fetch("/api/v1/candidates/" + encodeURIComponent(btn.getAttribute("data-erase-candidate")), {
      method: "DELETE",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrfToken(), "Accept": "application/json" }
    }).then(function (res) {
      if (res.ok) {
        window.location.href = "/candidates";
        return;
      }
      return res.json().catch(function () { return null; }).then(function (body) {
        showActionMessage(describeFailure(res, body), true);
        btn.disabled = false;
      });
    }, function () {
      showActionMessage("Could not reach the server. Check your connection and try again.", true);
      btn.disabled = false;
    });
  });

  // Scheduling times are typed in the recruiter's zone; the server learns
  // which from this offset (minutes behind UTC, for the time entered).
  document.querySelectorAll("form [data-tz-offset]").forEach(function (el) {
    el.form.addEventListener("submit", function () {
      var when = el.form.querySelector("input[type=datetime-local]:not([value=''])");
      var d = when && when.value ? new Date(when.value) : new Date();
      el.value = String(isNaN(d) ? new Date().getTimezoneOffset() : d.getTimezoneOffset());
    });
  });
})();
