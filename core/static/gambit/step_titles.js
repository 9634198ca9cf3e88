// A read-only chain (its activity is live) has no builder: its step titles still count from 1
// and name the processor by its label, as the builder's do (the server's title is "0. key").
document.addEventListener("DOMContentLoaded", function () {
  var position = 0;
  document.querySelectorAll("#steps-group .inline-related:not(.empty-form)").forEach(function (row) {
    var label = row.querySelector(".field-step_processor .readonly");
    var title = row.querySelector("h3 .inline_label");
    position += 1;
    if (label && title) title.textContent = String(position) + ". " + label.textContent.trim();
  });
});
