// Iatro web pages: the little behaviour htmx does not give.
(function () {
  "use strict";

  // Paper shows every explanation: unfold the closed <details> for printing, fold them back after.
  let unfolded = [];
  window.addEventListener("beforeprint", function () {
    unfolded = Array.from(document.querySelectorAll("details:not([open])"));
    unfolded.forEach(function (d) { d.open = true; });
  });
  window.addEventListener("afterprint", function () {
    unfolded.forEach(function (d) { d.open = false; });
    unfolded = [];
  });

  // RCP view: once a decision row is saved, the cursor goes to the next row's first choice, so a
  // meeting records decision after decision without the mouse.
  document.addEventListener("htmx:afterSettle", function (event) {
    const source = event.detail && event.detail.elt;
    const id = source && source.id;
    if (!id || id.indexOf("decision-") !== 0) { return; }
    const row = document.getElementById(id);
    if (!row || !row.classList.contains("saved")) { return; }
    let next = row.nextElementSibling;
    while (next && !(next.classList && next.classList.contains("decision-row"))) { next = next.nextElementSibling; }
    const target = next ? next.querySelector("input[type=radio]:checked, input[type=radio]") : document.getElementById("tenir-rcp");
    if (target) { target.focus(); }
  });
})();
