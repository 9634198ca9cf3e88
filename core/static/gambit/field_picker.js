/* The condition builder's field picker: fields described by the server ({name, label, type,
 * group, operators, choices, prefix, window}) are picked from a labelled list instead of typed;
 * the operator list follows the field's type and the value input fits it (a number, a date, a
 * yes/no, a choice or several). builders.js asks this module for the three parts of a condition
 * row when its options carry described fields; plain string lists keep the typed input. */
(function () {
  "use strict";

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (attrs[key] === null || attrs[key] === undefined) return;
      if (key === "text") node.textContent = attrs[key];
      else if (key === "className") node.className = attrs[key];
      else if (key.indexOf("on") === 0) node.addEventListener(key.slice(2), attrs[key]);
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  // Field labels stand alone in the picker: in English they read as sentences (capital first).
  function sentence(text) {
    return String(text).replace(/^([+(\s]*)([a-z])/, function (_m, lead, letter) { return lead + letter.toUpperCase(); });
  }

  function literal(text) {
    var trimmed = text.trim();
    if (/^-?\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
    if (trimmed === "true") return true;
    if (trimmed === "false") return false;
    return text;
  }

  function described(options) {
    return (options.fields || []).some(function (f) { return typeof f === "object"; });
  }

  function fieldsOf(options) {
    return (options.fields || []).filter(function (f) { return typeof f === "object"; });
  }

  /* The description of a stored field name: exact names first, then a windowed name
   * (orders in the last N days), then the longest prefix (attributes.<key>, event.<key>). */
  function describe(options, name) {
    var fields = fieldsOf(options), found = null;
    if (!name) return null;
    fields.forEach(function (f) { if (!found && !f.prefix && !f.window && f.name === name) found = f; });
    fields.forEach(function (f) { if (!found && f.window && new RegExp(f.window.pattern).test(name)) found = f; });
    fields.forEach(function (f) {
      if (f.prefix && name.indexOf(f.name) === 0 && (!found || (found.prefix && f.name.length > found.name.length))) found = f;
    });
    return found;
  }

  function defaultValue(op) {
    if (op === "exists") return true;
    if (op === "between") return ["", ""];
    if (op === "in" || op === "not_in") return [];
    return "";
  }

  function operators(editor, cond) {
    var spec = describe(editor.options, cond.field);
    var ops = spec && spec.operators ? spec.operators.slice() : (editor.options.operators || []).slice();
    if (cond.op && ops.indexOf(cond.op) < 0) ops.push(cond.op);
    return ops;
  }

  function field(editor, cond, path) {
    var t = editor.t, options = editor.options;
    var fields = fieldsOf(options);
    var spec = describe(options, cond.field);
    var other = Boolean(cond.field) && !spec;
    var fieldPath = path ? path + ".field" : "field";
    var select = el("select", { className: "gambit-field-pick", "aria-label": t.field, "data-path": fieldPath });
    select.appendChild(el("option", { value: "", text: t.choose_field || t.field }));
    var groups = {};
    fields.forEach(function (f, index) {
      var key = f.group || "";
      if (!groups[key]) {
        groups[key] = key ? el("optgroup", { label: sentence(key) }) : select;
        if (key) select.appendChild(groups[key]);
      }
      groups[key].appendChild(el("option", { value: String(index), text: sentence(f.label), "data-name": f.name }));
    });
    select.appendChild(el("option", { value: "other", text: t.other_field || "…" }));
    select.value = other ? "other" : spec ? String(fields.indexOf(spec)) : "";
    select.addEventListener("change", function () {
      var picked = select.value === "other" ? null : fields[Number(select.value)];
      if (select.value === "") cond.field = "";
      else if (!picked) cond.field = "";
      else if (picked.window) cond.field = picked.name.replace("{n}", String(picked.window["default"]));
      else cond.field = picked.name;
      var ops = picked && picked.operators ? picked.operators : options.operators;
      if (ops.indexOf(cond.op) < 0) cond.op = ops[0];
      cond.value = defaultValue(cond.op);
      cond.other = select.value === "other";
      editor.render();
      editor.changed();
    });
    var box = el("span", { className: "gambit-field-box" }, [select]);
    if (spec && spec.prefix) {
      var key = el("input", { type: "text", className: "gambit-field-key", placeholder: t.field_key, "aria-label": t.field_key,
        oninput: function () { cond.field = spec.name + key.value.trim(); editor.changed(); } });
      key.value = cond.field.slice(spec.name.length);
      box.appendChild(key);
    } else if (spec && spec.window) {
      var match = new RegExp(spec.window.pattern).exec(cond.field);
      var days = el("input", { type: "number", className: "gambit-field-window", min: spec.window.min, max: spec.window.max, step: "1",
        "aria-label": spec.window.label, title: spec.window.label,
        oninput: function () { cond.field = spec.name.replace("{n}", days.value.trim()); editor.changed(); } });
      days.value = match ? match[1] : String(spec.window["default"]);
      box.appendChild(days);
      box.appendChild(document.createTextNode(" " + spec.window.label));
    } else if (other || cond.other) {
      var free = el("input", { type: "text", className: "gambit-field", placeholder: t.field, "aria-label": t.field,
        oninput: function () { cond.field = free.value.trim(); editor.changed(); } });
      free.value = cond.field || "";
      box.appendChild(free);
    }
    return box;
  }

  /* One input of the field's type; read() gives the typed value ("" when empty). */
  function typedInput(spec, value, path, className, onInput, placeholder) {
    var type = spec ? spec.type : null;
    var input;
    if (spec && spec.choices && spec.choices.length) {
      input = el("select", { className: className, "data-path": path, onchange: onInput });
      input.appendChild(el("option", { value: "", text: "" }));
      spec.choices.forEach(function (choice) { input.appendChild(el("option", { value: choice[0], text: choice[1] })); });
      input.value = value === undefined || value === null ? "" : String(value);
      return { node: input, read: function () { return input.value; } };
    }
    if (type === "bool") {
      input = el("select", { className: className, "data-path": path, onchange: onInput });
      [["true", placeholder.yes], ["false", placeholder.no]].forEach(function (pair) {
        input.appendChild(el("option", { value: pair[0], text: pair[1] }));
      });
      input.value = value === false ? "false" : "true";
      return { node: input, read: function () { return input.value === "true"; } };
    }
    var attrs = { className: className, "data-path": path, oninput: onInput, placeholder: placeholder.text, "aria-label": placeholder.text };
    if (type === "number" || type === "integer") {
      attrs.type = "number";
      attrs.step = type === "integer" ? "1" : "any";
      input = el("input", attrs);
      input.value = value === undefined || value === null ? "" : String(value);
      return { node: input, read: function () {
        if (input.value.trim() === "") return "";
        var n = Number(input.value);
        return isNaN(n) ? input.value : n;
      } };
    }
    if (type === "date") {
      attrs.type = "date";
      input = el("input", attrs);
      input.value = typeof value === "string" ? value.slice(0, 10) : "";
      return { node: input, read: function () { return input.value; } };
    }
    if (type === "datetime") {
      attrs.type = "datetime-local";
      input = el("input", attrs);
      input.value = typeof value === "string" ? value.slice(0, 16) : "";
      return { node: input, read: function () {
        if (!input.value) return "";
        var offset = -new Date(input.value).getTimezoneOffset();
        var sign = offset >= 0 ? "+" : "-";
        var abs = Math.abs(offset);
        var pad = function (n) { return (n < 10 ? "0" : "") + n; };
        return input.value + ":00" + sign + pad(Math.floor(abs / 60)) + ":" + pad(abs % 60);
      } };
    }
    attrs.type = "text";
    input = el("input", attrs);
    input.value = value === undefined || value === null ? "" : String(value);
    return { node: input, read: function () { return type === "string" ? input.value : literal(input.value); } };
  }

  function value(editor, cond, path) {
    var t = editor.t;
    var spec = describe(editor.options, cond.field);
    var words = { text: t.value, yes: t.yes, no: t.no };
    if (cond.op === "exists") {
      return typedInput({ type: "bool" }, cond.value, path, "gambit-value", function (event) {
        cond.value = event.target.value === "true";
        editor.changed();
      }, words).node;
    }
    if (cond.op === "between") {
      var bounds = Array.isArray(cond.value) ? cond.value : ["", ""];
      cond.value = bounds;
      var low = typedInput(spec, bounds[0], path + "[0]", "gambit-value gambit-low", function () { bounds[0] = low.read(); editor.changed(); },
        { text: t.low, yes: t.yes, no: t.no });
      var high = typedInput(spec, bounds[1], path + "[1]", "gambit-value gambit-high", function () { bounds[1] = high.read(); editor.changed(); },
        { text: t.high, yes: t.yes, no: t.no });
      return el("span", { "data-path": path }, [low.node, document.createTextNode(" - "), high.node]);
    }
    if (cond.op === "in" || cond.op === "not_in") {
      var list = Array.isArray(cond.value) ? cond.value : [];
      if (spec && spec.choices && spec.choices.length) {
        var multi = el("select", { className: "gambit-value gambit-multi", multiple: "multiple", "data-path": path,
          size: String(Math.min(6, spec.choices.length)), "aria-label": t.value,
          onchange: function () {
            cond.value = Array.prototype.filter.call(multi.options, function (o) { return o.selected; })
              .map(function (o) { return o.value; });
            editor.changed();
          } });
        spec.choices.forEach(function (choice) {
          var option = el("option", { value: choice[0], text: choice[1] });
          option.selected = list.indexOf(choice[0]) >= 0;
          multi.appendChild(option);
        });
        return multi;
      }
      var numeric = spec && (spec.type === "number" || spec.type === "integer");
      var items = el("input", { type: "text", className: "gambit-value", placeholder: t.list_hint, title: t.list_hint, "data-path": path,
        oninput: function () {
          cond.value = items.value.split(",").map(function (part) {
            part = part.trim();
            if (numeric && part !== "" && !isNaN(Number(part))) return Number(part);
            return spec && spec.type === "string" ? part : literal(part);
          }).filter(function (part) { return part !== ""; });
          editor.changed();
        } });
      items.value = list.join(", ");
      return items;
    }
    var single = typedInput(spec, cond.value, path, "gambit-value", function () { cond.value = single.read(); editor.changed(); }, words);
    return single.node;
  }

  window.GambitFieldPicker = { applies: described, field: field, operators: operators, value: value };
})();
