/* Gambit admin builders: a condition-tree builder, a form generated from a JSON Schema, and the
 * drag-and-drop chain builder. Each builder keeps its value as JSON in a hidden textarea, so the
 * server sees an ordinary form field; operators never type JSON for the built-in processors.
 * Texts come translated from the server in the widget's data-options (i18n). */
(function () {
  "use strict";

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else if (key === "className") node.className = attrs[key];
      else if (key.indexOf("on") === 0) node.addEventListener(key.slice(2), attrs[key]);
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  function parseLiteral(text) {
    var trimmed = text.trim();
    if (/^-?\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
    if (trimmed === "true") return true;
    if (trimmed === "false") return false;
    if (trimmed === "null") return null;
    return text;
  }

  function literalText(value) {
    return value === undefined || value === null ? "" : String(value);
  }

  function joinPath(base, part) {
    if (typeof part === "number") return base + "[" + part + "]";
    return base ? base + "." + part : part;
  }

  function fieldList(id, fields) {
    var list = el("datalist", { id: id });
    fields.forEach(function (name) { list.appendChild(el("option", { value: name })); });
    return list;
  }

  var uid = 0;

  /* ---------------------------------------------------------------------------------------
   * Condition trees: {all: [...]}, {any: [...]}, {not: node}, {field, op, value}.
   * ------------------------------------------------------------------------------------- */
  function TreeEditor(options, value, onChange, basePath) {
    this.t = options.i18n;
    this.options = options;
    this.onChange = onChange;
    this.basePath = basePath || "";
    this.listId = "gambit-fields-" + (uid += 1);
    this.root = this.toGroup(value && Object.keys(value).length ? value : null);
    this.node = el("div", { className: "gambit-tree" });
    this.render();
  }

  TreeEditor.prototype.toGroup = function (node) {
    if (!node) return { type: "all", negate: false, children: [] };
    if (node.not) {
      var inner = this.toGroup(node.not.all || node.not.any || node.not.not ? node.not : { all: [node.not] });
      inner.negate = !inner.negate;
      return inner;
    }
    if (node.all || node.any) {
      var type = node.all ? "all" : "any";
      var self = this;
      return {
        type: type,
        negate: false,
        children: (node[type] || []).map(function (child) {
          return child.field !== undefined ? { field: child.field, op: child.op || "eq", value: child.value } : self.toGroup(child);
        }),
      };
    }
    return { type: "all", negate: false, children: [{ field: node.field, op: node.op || "eq", value: node.value }] };
  };

  TreeEditor.prototype.fromGroup = function (group) {
    var self = this;
    var children = group.children
      .map(function (child) {
        if (child.children) return self.fromGroup(child);
        var out = { field: child.field, op: child.op };
        if (child.op !== "exists" || child.value === false) out.value = child.value;
        return out;
      })
      .filter(function (child) { return child !== null; });
    if (!children.length) return null;
    var node = {};
    node[group.type] = children;
    return group.negate ? { not: node } : node;
  };

  TreeEditor.prototype.value = function () { return this.fromGroup(this.root); };

  TreeEditor.prototype.changed = function () { this.onChange(this.value()); };

  TreeEditor.prototype.render = function () {
    this.node.innerHTML = "";
    this.node.appendChild(fieldList(this.listId, this.options.fields || []));
    this.node.appendChild(this.renderGroup(this.root, null, this.basePath));
  };

  TreeEditor.prototype.renderGroup = function (group, parent, path) {
    var self = this, t = this.t;
    var box = el("div", { className: "gambit-group", "data-path": path });
    var type = el("select", {
      className: "gambit-group-type",
      onchange: function () { group.type = type.value; self.render(); self.changed(); },
    }, [el("option", { value: "all", text: t.all }), el("option", { value: "any", text: t.any })]);
    type.value = group.type;
    var negate = el("input", {
      type: "checkbox",
      className: "gambit-group-not",
      onchange: function () { group.negate = negate.checked; self.changed(); },
    });
    negate.checked = group.negate;
    var childPath = joinPath(group.negate ? joinPath(path, "not") : path, group.type);
    var head = el("div", { className: "gambit-group-head" }, [
      type,
      el("label", { className: "gambit-not" }, [negate, document.createTextNode(" " + t.not)]),
    ]);
    if (parent) {
      head.appendChild(el("button", {
        type: "button",
        className: "gambit-remove",
        text: t.remove,
        onclick: function () { parent.children.splice(parent.children.indexOf(group), 1); self.render(); self.changed(); },
      }));
    }
    box.appendChild(head);
    var list = el("div", { className: "gambit-group-children" });
    if (!group.children.length) list.appendChild(el("p", { className: "help", text: t.empty_tree }));
    group.children.forEach(function (child, index) {
      var p = joinPath(childPath, index);
      list.appendChild(child.children ? self.renderGroup(child, group, p) : self.renderCondition(child, group, p));
    });
    box.appendChild(list);
    box.appendChild(el("div", { className: "gambit-group-tools" }, [
      el("button", {
        type: "button",
        className: "gambit-add-condition",
        text: t.add_condition,
        onclick: function () { group.children.push({ field: "", op: "eq", value: "" }); self.render(); self.changed(); },
      }),
      el("button", {
        type: "button",
        className: "gambit-add-group",
        text: t.add_group,
        onclick: function () { group.children.push({ type: "any", negate: false, children: [] }); self.render(); self.changed(); },
      }),
    ]));
    return box;
  };

  TreeEditor.prototype.renderCondition = function (cond, parent, path) {
    var self = this, t = this.t;
    var row = el("div", { className: "gambit-condition", "data-path": path });
    var field = el("input", {
      type: "text",
      className: "gambit-field",
      list: this.listId,
      placeholder: t.field,
      "aria-label": t.field,
      "data-path": joinPath(path, "field"),
      oninput: function () { cond.field = field.value.trim(); self.changed(); },
    });
    field.value = cond.field || "";
    var op = el("select", {
      className: "gambit-op",
      "aria-label": t.operator,
      "data-path": joinPath(path, "op"),
      onchange: function () {
        cond.op = op.value;
        cond.value = cond.op === "exists" ? true : cond.op === "between" ? ["", ""] : (cond.op === "in" || cond.op === "not_in") ? [] : "";
        self.render();
        self.changed();
      },
    });
    var picker = window.GambitFieldPicker && window.GambitFieldPicker.applies(this.options) ? window.GambitFieldPicker : null;
    (picker ? picker.operators(this, cond) : this.options.operators || []).forEach(function (name) {
      op.appendChild(el("option", { value: name, text: t["op_" + name] || name }));
    });
    op.value = cond.op || "eq";
    row.appendChild(picker ? picker.field(this, cond, path) : field);
    row.appendChild(op);
    row.appendChild(picker ? picker.value(this, cond, joinPath(path, "value")) : this.renderValue(cond, joinPath(path, "value")));
    row.appendChild(el("button", {
      type: "button",
      className: "gambit-remove",
      text: t.remove,
      onclick: function () { parent.children.splice(parent.children.indexOf(cond), 1); self.render(); self.changed(); },
    }));
    return row;
  };

  TreeEditor.prototype.renderValue = function (cond, path) {
    var self = this, t = this.t;
    if (cond.op === "exists") {
      var present = el("select", {
        className: "gambit-value",
        "data-path": path,
        onchange: function () { cond.value = present.value === "true"; self.changed(); },
      }, [el("option", { value: "true", text: t.yes }), el("option", { value: "false", text: t.no })]);
      present.value = cond.value === false ? "false" : "true";
      return present;
    }
    if (cond.op === "between") {
      var bounds = Array.isArray(cond.value) ? cond.value : ["", ""];
      cond.value = bounds;
      var low = el("input", { type: "text", className: "gambit-value gambit-low", placeholder: t.low, "data-path": path + "[0]",
        oninput: function () { bounds[0] = parseLiteral(low.value); self.changed(); } });
      var high = el("input", { type: "text", className: "gambit-value gambit-high", placeholder: t.high, "data-path": path + "[1]",
        oninput: function () { bounds[1] = parseLiteral(high.value); self.changed(); } });
      low.value = literalText(bounds[0]);
      high.value = literalText(bounds[1]);
      return el("span", { "data-path": path }, [low, document.createTextNode(" - "), high]);
    }
    if (cond.op === "in" || cond.op === "not_in") {
      var items = el("input", {
        type: "text",
        className: "gambit-value",
        placeholder: t.list_hint,
        title: t.list_hint,
        "data-path": path,
        oninput: function () {
          cond.value = items.value.split(",").map(function (part) { return parseLiteral(part.trim()); })
            .filter(function (part) { return part !== ""; });
          self.changed();
        },
      });
      items.value = (Array.isArray(cond.value) ? cond.value : []).join(", ");
      return items;
    }
    var input = el("input", {
      type: "text",
      className: "gambit-value",
      placeholder: t.value,
      "aria-label": t.value,
      "data-path": path,
      oninput: function () { cond.value = parseLiteral(input.value); self.changed(); },
    });
    input.value = literalText(cond.value);
    return input;
  };

  /* ---------------------------------------------------------------------------------------
   * A form generated from a JSON Schema (the subset the processors use).
   * Each render returns {node, get}; get() returns the value or undefined (= leave out).
   * ------------------------------------------------------------------------------------- */
  function SchemaForm(options, onChange) {
    this.options = options;
    this.t = options.i18n;
    this.onChange = onChange;
    this.listId = "gambit-fields-" + (uid += 1);
  }

  SchemaForm.prototype.label = function (name) {
    return this.t["prop_" + name] || name.replace(/_/g, " ");
  };

  SchemaForm.prototype.nullable = function (schema) {
    if (!schema.anyOf) return null;
    var rest = schema.anyOf.filter(function (s) { return s.type !== "null"; });
    return rest.length === 1 && rest.length < schema.anyOf.length ? rest[0] : null;
  };

  SchemaForm.prototype.isFieldRef = function (schema) {
    return schema.anyOf && schema.anyOf.length === 2 && schema.anyOf[1].type === "object" &&
      schema.anyOf[1].required && schema.anyOf[1].required[0] === "field";
  };

  SchemaForm.prototype.render = function (schema, value, path, required) {
    var self = this;
    var changed = function () { self.onChange(); };
    var nullable = this.nullable(schema);
    if (nullable) return this.render(nullable, value === null ? undefined : value, path, false);
    if (this.isFieldRef(schema)) return this.renderFieldRef(value, path);
    if (schema.enum) {
      var select = el("select", { "data-path": path, onchange: changed });
      if (!required) select.appendChild(el("option", { value: "", text: this.t.none }));
      schema.enum.forEach(function (option) {
        select.appendChild(el("option", { value: String(option), text: self.t["enum_" + option] || String(option) }));
      });
      select.value = value === undefined ? (required ? String(schema.enum[0]) : "") : String(value);
      return { node: select, get: function () {
        if (select.value === "") return undefined;
        var match = schema.enum.filter(function (option) { return String(option) === select.value; });
        return match.length ? match[0] : select.value;
      } };
    }
    var type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
    if (type === "object" && schema.properties) return this.renderObject(schema, value || {}, path, !required);
    if (type === "object" && schema.additionalProperties && typeof schema.additionalProperties === "object") {
      return this.renderMap(schema.additionalProperties, value || {}, path);
    }
    if (type === "array" && schema.items) return this.renderArray(schema.items, value || [], path);
    if (type === "boolean") {
      var box = el("input", { type: "checkbox", "data-path": path, onchange: changed });
      box.checked = value === true;
      return { node: box, get: function () { return box.checked ? true : (required ? false : undefined); } };
    }
    if (type === "integer" || type === "number") {
      var number = el("input", { type: "number", step: type === "integer" ? "1" : "any", "data-path": path, oninput: changed,
        min: schema.minimum !== undefined ? schema.minimum : null });
      if (schema.minimum === undefined) number.removeAttribute("min");
      number.value = value === undefined || value === null ? "" : String(value);
      return { node: number, get: function () {
        if (number.value === "") return undefined;
        return type === "integer" ? parseInt(number.value, 10) : Number(number.value);
      } };
    }
    if (type === "string") {
      var text = el("input", { type: "text", className: "vTextField", "data-path": path, oninput: changed });
      text.value = value === undefined || value === null ? "" : String(value);
      return { node: text, get: function () { return text.value === "" ? undefined : text.value; } };
    }
    return this.renderRaw(value, path);
  };

  SchemaForm.prototype.renderRaw = function (value, path) {
    var self = this;
    var area = el("textarea", { rows: "4", className: "vLargeTextField gambit-mono", "data-path": path,
      oninput: function () { self.onChange(); } });
    area.value = value === undefined ? "" : JSON.stringify(value, null, 2);
    return { node: el("div", {}, [el("p", { className: "help", text: this.t.raw_json }), area]), get: function () {
      if (!area.value.trim()) return undefined;
      try { return JSON.parse(area.value); } catch (error) { return area.value; }
    } };
  };

  SchemaForm.prototype.renderObject = function (schema, value, path, optional) {
    // An optional object left empty (a notify step's frequency cap) is left out, not sent as {}.
    var self = this;
    var required = schema.required || [];
    var getters = {};
    var box = el("div", { className: "gambit-object", "data-path": path });
    Object.keys(schema.properties).forEach(function (name) {
      var prop = schema.properties[name];
      var isRequired = required.indexOf(name) >= 0;
      var part = self.render(prop, value[name], joinPath(path, name), isRequired);
      getters[name] = part.get;
      var label = el("label", { className: isRequired ? "required" : "", text: self.label(name) });
      box.appendChild(el("div", { className: "gambit-prop", "data-prop": name }, [label, part.node]));
    });
    return { node: box, get: function () {
      var out = {};
      Object.keys(getters).forEach(function (name) {
        var v = getters[name]();
        if (v !== undefined) out[name] = v;
      });
      return Object.keys(out).length || !optional ? out : undefined;
    } };
  };

  SchemaForm.prototype.renderMap = function (valueSchema, value, path) {
    var self = this, t = this.t;
    var rows = [];
    var box = el("div", { className: "gambit-map", "data-path": path });
    var list = el("div", {});
    function addRow(key, v) {
      var keyInput = el("input", { type: "text", placeholder: t.key, className: "gambit-key", oninput: function () { self.onChange(); } });
      keyInput.value = key || "";
      var part = self.render(valueSchema, v, joinPath(path, key || "?"), true);
      var row = { key: keyInput, get: part.get };
      var line = el("div", { className: "gambit-map-row" }, [keyInput, part.node, el("button", {
        type: "button", className: "gambit-remove", text: t.remove,
        onclick: function () { rows.splice(rows.indexOf(row), 1); list.removeChild(line); self.onChange(); },
      })]);
      rows.push(row);
      list.appendChild(line);
    }
    Object.keys(value).forEach(function (key) { addRow(key, value[key]); });
    box.appendChild(list);
    box.appendChild(el("button", { type: "button", className: "gambit-add", text: t.add_entry,
      onclick: function () { addRow("", undefined); self.onChange(); } }));
    return { node: box, get: function () {
      var out = {};
      rows.forEach(function (row) {
        var v = row.get();
        if (row.key.value.trim()) out[row.key.value.trim()] = v === undefined ? "" : v;
      });
      return Object.keys(out).length ? out : undefined;
    } };
  };

  SchemaForm.prototype.renderArray = function (itemSchema, value, path) {
    var self = this, t = this.t;
    var items = [];
    var box = el("div", { className: "gambit-array", "data-path": path });
    var list = el("div", {});
    function addItem(v) {
      var part = self.render(itemSchema, v, joinPath(path, items.length), true);
      var item = { get: part.get };
      var line = el("div", { className: "gambit-array-item" }, [part.node, el("button", {
        type: "button", className: "gambit-remove", text: t.remove,
        onclick: function () { items.splice(items.indexOf(item), 1); list.removeChild(line); self.onChange(); },
      })]);
      items.push(item);
      list.appendChild(line);
    }
    value.forEach(addItem);
    box.appendChild(list);
    box.appendChild(el("button", { type: "button", className: "gambit-add", text: t.add_item,
      onclick: function () { addItem(undefined); self.onChange(); } }));
    return { node: box, get: function () {
      var out = items.map(function (item) { return item.get(); }).filter(function (v) { return v !== undefined; });
      return out.length ? out : undefined;
    } };
  };

  SchemaForm.prototype.renderFieldRef = function (value, path) {
    var self = this, t = this.t;
    var isRef = value && typeof value === "object";
    var mode = el("select", { className: "gambit-ref-mode", onchange: function () { input.setAttribute("list", mode.value === "field" ? self.listId : ""); self.onChange(); } },
      [el("option", { value: "literal", text: t.literal }), el("option", { value: "field", text: t.from_field })]);
    mode.value = isRef ? "field" : "literal";
    var input = el("input", { type: "text", "data-path": path, oninput: function () { self.onChange(); } });
    input.value = isRef ? value.field : literalText(value);
    if (isRef) input.setAttribute("list", this.listId);
    return { node: el("span", { className: "gambit-ref" }, [mode, input, fieldList(this.listId, this.options.fields || [])]), get: function () {
      if (mode.value === "field") return { field: input.value.trim() };
      return parseLiteral(input.value);
    } };
  };

  /* ---------------------------------------------------------------------------------------
   * Mounting: one builder per .gambit-builder element.
   * ------------------------------------------------------------------------------------- */
  function showErrors(container, errors) {
    container.querySelectorAll(".gambit-error").forEach(function (node) { node.remove(); });
    (errors || []).forEach(function (error) {
      var path = error.path || "";
      var target = null;
      while (target === null) {
        target = path ? container.querySelector('[data-path="' + path.replace(/"/g, '\\"') + '"]') : null;
        if (target || !path) break;
        path = path.replace(/(\.[^.[]+|\[\d+\])$/, "");
        if (path === error.path) break;
      }
      var note = el("div", { className: "gambit-error errornote", text: error.message });
      if (target) {
        target.classList.add("gambit-invalid");
        target.parentNode.insertBefore(note, target.nextSibling);
      } else {
        container.insertBefore(note, container.firstChild);
      }
    });
  }

  function readValue(textarea) {
    if (!textarea.value.trim()) return null;
    try { return JSON.parse(textarea.value); } catch (error) { return null; }
  }

  function showSample(list, sample) {
    list.innerHTML = "";
    (sample || []).forEach(function (member) {
      list.appendChild(el("li", {}, [member.url ? el("a", { href: member.url, text: member.label }) : el("span", { text: member.label })]));
    });
  }

  function mountTree(root, textarea, ui, options) {
    var counter = null;
    var sample = null;
    var timer = null;
    function count(value) {
      if (!options.countUrl || !counter) return;
      clearTimeout(timer);
      if (!value) { counter.textContent = ""; showSample(sample, []); return; }
      counter.textContent = options.i18n.counting;
      timer = setTimeout(function () {
        var body = new FormData();
        body.append("rule", JSON.stringify(value));
        var token = document.querySelector("input[name=csrfmiddlewaretoken]");
        fetch(options.countUrl, { method: "POST", body: body, credentials: "same-origin",
          headers: token ? { "X-CSRFToken": token.value } : {} })
          .then(function (response) { return response.json(); })
          .then(function (data) {
            if (data.errors) { counter.textContent = ""; showSample(sample, []); showErrors(ui, data.errors); return; }
            showErrors(ui, []);
            counter.textContent = options.i18n.count + " " + data.count;
            showSample(sample, data.sample);
          });
      }, 300);
    }
    var editor = new TreeEditor(options, readValue(textarea), function (value) {
      textarea.value = value ? JSON.stringify(value) : "";
      count(value);
    }, options.basePath || "");
    ui.appendChild(editor.node);
    if (options.countUrl) {
      counter = el("div", { className: "gambit-count", "aria-live": "polite" });
      sample = el("ul", { className: "gambit-sample" });
      ui.appendChild(counter);
      ui.appendChild(sample);
      count(editor.value());
    }
    showErrors(ui, options.errors);
    return editor;
  }

  function processorSelect(root) {
    var form = root.closest(".inline-related") || root.closest("form");
    return form ? form.querySelector('select[name$="processor"]') : null;
  }

  function mountSchemaForm(root, textarea, ui, options) {
    var select = processorSelect(root);
    function draw(value) {
      ui.innerHTML = "";
      var key = select ? select.value : "";
      var spec = options.processors[key];
      if (!spec) return;
      if (spec.description) ui.appendChild(el("p", { className: "help", text: spec.description }));
      if (key === "rule_check") {
        var reason = el("input", { type: "text", className: "vTextField", "data-path": "reason", placeholder: options.i18n.reason });
        var tree = value ? Object.assign({}, value) : {};
        reason.value = tree.reason || "";
        delete tree.reason;
        var write = function (treeValue) {
          var out = Object.assign({}, treeValue || {});
          if (reason.value.trim()) out.reason = reason.value.trim();
          textarea.value = JSON.stringify(out);
        };
        var editor = new TreeEditor(Object.assign({}, options, { optional: false, fields: options.conditionFields || options.fields }), tree, write, "");
        reason.addEventListener("input", function () { write(editor.value()); });
        ui.appendChild(editor.node);
        ui.appendChild(el("div", { className: "gambit-prop" }, [el("label", { text: options.i18n.reason }), reason]));
        write(editor.value());
        return;
      }
      var form = new SchemaForm(options, function () { write(); });
      var part = form.render(spec.schema, value || {}, "", true);
      var write = function () {
        var v = part.get();
        textarea.value = JSON.stringify(v === undefined ? {} : v);
      };
      ui.appendChild(part.node);
      write();
    }
    draw(readValue(textarea));
    showErrors(ui, options.errors);
    if (select) select.addEventListener("change", function () { draw({}); });
  }

  function mount(root) {
    if (root.dataset.mounted || root.closest(".empty-form")) return;
    root.dataset.mounted = "1";
    var options = JSON.parse(root.dataset.options || "{}");
    var textarea = root.querySelector(".gambit-builder-value");
    var ui = root.querySelector(".gambit-builder-ui");
    if (root.dataset.builder === "condition-tree") mountTree(root, textarea, ui, options);
    else if (root.dataset.builder === "schema-form") mountSchemaForm(root, textarea, ui, options);
  }

  /* ---------------------------------------------------------------------------------------
   * The chain builder: steps are a stacked inline; drag to reorder, drag or click a processor
   * from the palette to add a step. Positions are renumbered on every change.
   * ------------------------------------------------------------------------------------- */
  function renumber(group) {
    var position = 0;
    group.querySelectorAll(".inline-related:not(.empty-form)").forEach(function (row) {
      var input = row.querySelector('input[name$="-position"]');
      var deleted = row.querySelector('input[name$="-DELETE"]');
      if (input && !(deleted && deleted.checked)) input.value = position++;
      // Titles count from 1 and name the processor by its label, not its key.
      var title = row.querySelector("h3 .inline_label");
      var select = row.querySelector('select[name$="-processor"]');
      if (title && select && select.selectedIndex >= 0) {
        title.textContent = String(position) + ". " + select.options[select.selectedIndex].text;
      }
    });
  }

  function addStep(group, processor, index) {
    var link = group.querySelector(".add-row a");
    if (!link) return;
    link.click();
    var rows = group.querySelectorAll(".inline-related:not(.empty-form)");
    var row = rows[rows.length - 1];
    var container = row.parentNode;
    var others = Array.prototype.filter.call(container.children, function (child) {
      return child.classList.contains("inline-related") && !child.classList.contains("empty-form") && child !== row;
    });
    if (index !== undefined && index < others.length) container.insertBefore(row, others[index]);
    var select = row.querySelector('select[name$="-processor"]');
    if (select) {
      select.value = processor;
      select.dispatchEvent(new Event("change"));
    }
    renumber(group);
  }

  function mountChainBuilder(builder) {
    var group = document.getElementById(builder.dataset.group);
    if (!group || typeof Sortable === "undefined") return;
    var container = group.querySelector("fieldset.module") || group;
    container.classList.add("gambit-steps");
    group.querySelectorAll(".inline-related:not(.empty-form) h3").forEach(function (h3) {
      h3.classList.add("gambit-handle");
    });
    Sortable.create(container, {
      group: { name: "gambit-chain", pull: false, put: true },
      draggable: ".inline-related:not(.empty-form)",
      handle: "h3",
      animation: 150,
      forceFallback: true,
      onAdd: function (event) {
        var processor = event.item.dataset.processor;
        var index = Array.prototype.filter.call(container.children, function (child) {
          return child.classList.contains("inline-related") || child === event.item;
        }).indexOf(event.item);
        event.item.remove();
        addStep(group, processor, index);
      },
      onEnd: function () { renumber(group); },
    });
    var palette = builder.querySelector(".gambit-palette");
    Sortable.create(palette, { group: { name: "gambit-chain", pull: "clone", put: false }, sort: false, forceFallback: true });
    palette.querySelectorAll("[data-processor]").forEach(function (chip) {
      chip.addEventListener("click", function () { addStep(group, chip.dataset.processor); });
    });
    renumber(group);
    group.addEventListener("change", function (event) {
      if (event.target.name && /-(DELETE|processor)$/.test(event.target.name)) renumber(group);
    });
  }

  function mountAll(scope) {
    (scope || document).querySelectorAll(".gambit-builder").forEach(mount);
  }

  document.addEventListener("DOMContentLoaded", function () {
    mountAll(document);
    document.querySelectorAll(".gambit-chain-builder").forEach(mountChainBuilder);
  });
  document.addEventListener("formset:added", function (event) {
    mountAll(event.target);
    var h3 = event.target.querySelector("h3");
    if (h3) h3.classList.add("gambit-handle");
  });

  window.GambitBuilders = { mountAll: mountAll };
})();
