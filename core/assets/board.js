// Kith console: drag a deal's card to another column of the board. Dropping sets the card's
// stage list to the column's stage and submits the card's own form, the same form a keyboard
// or a browser without JavaScript uses.
document.addEventListener("dragstart", function (event) {
  var card = event.target.closest && event.target.closest("li.card[draggable=true]");
  if (!card) return;
  event.dataTransfer.setData("text/plain", card.getAttribute("data-deal"));
  event.dataTransfer.effectAllowed = "move";
});
document.addEventListener("dragover", function (event) {
  if (event.target.closest && event.target.closest("section.column")) event.preventDefault();
});
document.addEventListener("drop", function (event) {
  var column = event.target.closest && event.target.closest("section.column");
  if (!column) return;
  event.preventDefault();
  var deal = event.dataTransfer.getData("text/plain");
  var card = document.querySelector('li.card[data-deal="' + CSS.escape(deal) + '"]');
  if (!card) return;
  var form = card.querySelector("form.move");
  var stage = column.getAttribute("data-stage");
  if (!form || form.querySelector("select").value === stage) return;
  form.querySelector("select").value = stage;
  form.submit();
});
