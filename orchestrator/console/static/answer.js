// A task's question (its task.waiting event) and a form built from the answer's JSON schema: one field per property
// (a list for enums, a number box for numbers, a checkbox for booleans, JSON text for anything else), sent to
// POST /runs/{id}/tasks/{task}/input; the API's refusal (the schema's complaint) shows under the form.
import { postJSON } from "/ui/api.js";
import { h } from "/ui/dom.js";

function fieldFor(name, prop, required) {
  const id = `answer-${name}`;
  const attrs = { id, name, "data-field": name, required: required || null };
  if (Array.isArray(prop.enum)) {
    return h("select", attrs, required ? null : h("option", { value: "" }, "–"),
      prop.enum.map((v) => h("option", { value: JSON.stringify(v) }, String(v))));
  }
  if (prop.type === "boolean") return h("input", Object.assign(attrs, { type: "checkbox", required: null }));
  if (prop.type === "integer" || prop.type === "number") {
    return h("input", Object.assign(attrs, { type: "number", step: prop.type === "integer" ? "1" : "any",
      min: prop.minimum ?? null, max: prop.maximum ?? null }));
  }
  if (prop.type === "string") {
    return h("input", Object.assign(attrs, { type: "text", maxlength: prop.maxLength ?? null,
      placeholder: prop.pattern ? `matches ${prop.pattern}` : (prop.description || "") }));
  }
  return h("textarea", Object.assign(attrs, { rows: 3, placeholder: "JSON" }));
}

function valueOf(input, prop) {
  if (input.type === "checkbox") return input.checked;
  const raw = input.value;
  if (raw === "") return undefined;
  if (input.tagName === "SELECT") return JSON.parse(raw);
  if (prop.type === "integer" || prop.type === "number") return Number(raw);
  if (prop.type === "string") return raw;
  return JSON.parse(raw);
}

// The question box of task `taskId` of run `runId`; `onAnswered` runs once the agent has the answer.
export function questionBox(runId, taskId, question, onAnswered) {
  const schema = question.schema || {};
  const props = schema.properties || null;
  const required = new Set(schema.required || []);
  const result = h("p", { id: "answer-result", role: "status" });
  const fields = props
    ? Object.entries(props).map(([name, prop]) => h("label", { class: "answer-field" },
      h("span", {}, prop.title || name, required.has(name) ? " *" : ""), fieldFor(name, prop, required.has(name))))
    : [h("label", { class: "answer-field" }, h("span", {}, "answer (JSON)"),
      h("textarea", { id: "answer-json", rows: 4, placeholder: "JSON" }))];
  const form = h("form", { id: "answer-form", class: "answer-form" }, fields,
    h("button", { type: "submit" }, "Answer"), result);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let input;
    try {
      if (props) {
        input = {};
        for (const [name, prop] of Object.entries(props)) {
          const value = valueOf(form.querySelector(`[data-field="${CSS.escape(name)}"]`), prop);
          if (value !== undefined) input[name] = value;
        }
      } else {
        input = JSON.parse(form.querySelector("#answer-json").value);
      }
    } catch (err) {
      result.className = "error";
      result.textContent = `Not JSON: ${err.message}`;
      return;
    }
    result.className = "muted";
    result.textContent = "Sending…";
    try {
      await postJSON(`/runs/${encodeURIComponent(runId)}/tasks/${encodeURIComponent(taskId)}/input`, { input });
      result.className = "";
      result.textContent = "Answered; the task goes on.";
      onAnswered();
    } catch (err) {
      result.className = "error";
      result.textContent = String(err.message || err);
    }
  });
  return h("div", { class: "question", id: "task-question", "data-question-task": taskId },
    h("h3", {}, "Question"),
    h("p", { id: "question-text" }, question.question || ""),
    question.error ? h("p", { class: "error" }, `The last answer was refused: ${question.error}`) : null,
    question.timeout_s ? h("p", { class: "muted" }, `The agent waits up to ${question.timeout_s} s.`) : null,
    form);
}
