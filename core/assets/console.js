// Kith console: the little the pages need beyond htmx. "/" focuses the search box.
document.addEventListener("keydown", function (event) {
  var target = event.target;
  var typing = target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT" || target.isContentEditable);
  if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
    var search = document.getElementById("search");
    if (search) { event.preventDefault(); search.focus(); }
  }
});
