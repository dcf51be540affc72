// A small offline stand-in for Swagger UI: lists each operation of /openapi.json with its
// request body types, parameters and responses. No external scripts or fonts.
"use strict";

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function resolve(schema, spec) {
  if (schema && schema.$ref) return spec.components.schemas[schema.$ref.split("/").pop()];
  return schema || {};
}

function describeSchema(schema, spec) {
  schema = resolve(schema, spec);
  if (schema.properties) {
    return Object.entries(schema.properties).map(([name, field]) => {
      const f = resolve(field, spec);
      let type = f.type === "array" ? `array of ${resolve(f.items, spec).type || "object"}` : (f.type || "object");
      if (f.format === "binary") type = "the image file";
      if (f.anyOf) type = f.anyOf.map((option) => resolve(option, spec).type || "object").join(" or ");
      return `${name}: ${type}${f.description ? ` (${f.description})` : ""}`;
    }).join("\n");
  }
  return schema.format === "binary" ? "the image file's bytes" : (schema.type || "");
}

function operationCard(path, method, op, spec) {
  const card = element("section", "card");
  const title = element("h2");
  title.append(element("code", "method", method.toUpperCase()), " ", element("code", "", path));
  card.append(title, element("p", "", op.summary || ""));
  if (op.parameters && op.parameters.length) {
    card.append(element("h3", "", "Parameters"));
    const list = element("ul");
    for (const p of op.parameters) list.append(element("li", "", `${p.name} (${p.in}): ${resolve(p.schema, spec).type || ""}`));
    card.append(list);
  }
  if (op.requestBody) {
    card.append(element("h3", "", "Request body"));
    const list = element("ul");
    for (const [type, media] of Object.entries(op.requestBody.content)) {
      list.append(element("li", "", `${type}: ${describeSchema(media.schema, spec)}`));
    }
    card.append(list);
  }
  card.append(element("h3", "", "Responses"));
  const list = element("ul");
  for (const [status, response] of Object.entries(op.responses || {})) {
    const item = element("li", "", `${status}: ${response.description || ""}`);
    const media = response.content && response.content["application/json"];
    const fields = media ? describeSchema(media.schema, spec) : "";
    if (fields) item.append(element("pre", "", fields));
    list.append(item);
  }
  card.append(list);
  return card;
}

async function render() {
  const root = document.getElementById("api");
  try {
    const spec = await (await fetch("/openapi.json")).json();
    const cards = [];
    for (const [path, methods] of Object.entries(spec.paths)) {
      for (const [method, op] of Object.entries(methods)) cards.push(operationCard(path, method, op, spec));
    }
    root.replaceChildren(...cards);
  } catch (error) {
    root.replaceChildren(element("p", "", `Could not read /openapi.json: ${error}`));
  }
}

for (const code of document.querySelectorAll("pre code")) code.textContent = code.textContent.replaceAll("HOST", location.origin);
render();
