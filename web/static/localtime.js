// Shows every <time data-local datetime="…"> in the reader's own time zone
// (the server only knows UTC), e.g. "Tuesday 8 December 2026, 09:30 (CET)".
(function () {
  "use strict";
  document.querySelectorAll("time[data-local][datetime]").forEach(function (el) {
    var d = new Date(el.getAttribute("datetime"));
    if (isNaN(d)) return;
    el.textContent = d.toLocaleString(undefined, {
      weekday: "long", day: "numeric", month: "long", year: "numeric",
      hour: "2-digit", minute: "2-digit", timeZoneName: "short",
    });
  });
})();
