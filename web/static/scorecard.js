// Evidence quotes on the interview page: a click opens the transcript at
// the quoted entry (its #entry-<seq> link, handled by live.js) and plays
// the recording from that moment.
(function () {
  "use strict";
  document.addEventListener("click", function (ev) {
    var a = ev.target.closest("a.evidence[data-play-ms]");
    if (!a) return;
    var live = window.Candor && window.Candor.live;
    if (live && live.seek) live.seek(parseInt(a.getAttribute("data-play-ms"), 10) || 0, true);
  });
})();
