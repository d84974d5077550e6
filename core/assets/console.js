// Kith console: the little the pages need beyond htmx. "/" focuses the search box.
document.addEventListener("keydown", function (event) {
  var target = event.target;
  var typing = target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT" || target.isContentEditable);
  if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
    var search = document.getElementById("search");
    if (search) { event.preventDefault(); search.focus(); }
  }
});

// Instants, dates and numbers in the reader's locale and time zone. The server writes them in
// UTC and ISO form inside <time datetime> and <data value>; without script that text stays.
function localize(root) {
  // The browser's own locale (its settings), as Intl takes it when none is named.
  var lang = undefined;
  root.querySelectorAll("time[data-format]").forEach(function (el) {
    var at = new Date(el.getAttribute("datetime"));
    if (isNaN(at.getTime())) { return; }
    var day = el.getAttribute("data-format") === "date";
    // A date is a calendar day: shown as such, never shifted by the reader's time zone.
    var options = day ? { dateStyle: "medium", timeZone: "UTC" } : { dateStyle: "medium", timeStyle: "short" };
    el.textContent = new Intl.DateTimeFormat(lang, options).format(at);
    if (!day) { el.title = el.getAttribute("datetime"); }
  });
  root.querySelectorAll("data[data-format=number]").forEach(function (el) {
    var n = Number(el.value);
    if (!isFinite(n)) { return; }
    el.textContent = new Intl.NumberFormat(lang, { maximumFractionDigits: 4 }).format(n);
  });
}
document.addEventListener("DOMContentLoaded", function () { localize(document); });
document.addEventListener("htmx:afterSwap", function (event) { localize(event.target); });
