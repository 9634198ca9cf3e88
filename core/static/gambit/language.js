// Submits the language picker as soon as a language is chosen (no inline handler: CSP).
document.addEventListener("DOMContentLoaded", function () {
  var select = document.getElementById("gambit-language-select");
  if (select) select.addEventListener("change", function () { select.form.submit(); });
});
