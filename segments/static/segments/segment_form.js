/* The segment form: a static segment has members, not a rule, so its rule builder is hidden. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var kind = document.getElementById("id_kind");
    var row = document.querySelector(".form-row.field-rule");
    if (!kind || !row) return;
    function toggle() { row.hidden = kind.value === "static"; }
    kind.addEventListener("change", toggle);
    toggle();
  });
})();
