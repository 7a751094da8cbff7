// A task's output held for approval (its task.approval_requested event): the output, who may decide, a comment and
// Approve / Reject buttons, sent to POST /runs/{id}/tasks/{task}/approval; the API's refusal shows under them.
import { postJSON } from "/ui/api.js";
import { h, json } from "/ui/dom.js";

// The approval box of task `taskId` of run `runId`; `onDecided` runs once the decision is taken.
export function approvalBox(runId, taskId, request, onDecided) {
  const result = h("p", { id: "approval-result", role: "status" });
  const comment = h("input", { id: "approval-comment", type: "text", maxlength: 2000, placeholder: "why (recorded; a rejection's reason)" });
  const decide = async (approve) => {
    result.className = "muted";
    result.textContent = "Sending…";
    try {
      await postJSON(`/runs/${encodeURIComponent(runId)}/tasks/${encodeURIComponent(taskId)}/approval`,
        { approve, comment: comment.value });
      result.className = "";
      result.textContent = approve ? "Approved; the task goes on." : "Rejected; the next attempt is tried.";
      onDecided();
    } catch (err) {
      result.className = "error";
      result.textContent = String(err.message || err);
    }
  };
  const by = (request.by || []).length ? request.by.join(", ") : "anyone who may see the run";
  return h("div", { class: "question", id: "task-approval", "data-approval-task": taskId },
    h("h3", {}, "Output held for approval"),
    h("div", { id: "held-output" }, json(request.output)),
    h("p", { class: "muted" }, `Attempt ${request.attempt || "?"} · may decide: ${by} (or admin)`),
    h("div", { class: "answer-form" },
      h("label", { class: "answer-field" }, h("span", {}, "comment"), comment),
      h("div", {},
        h("button", { type: "button", id: "approve-button", onclick: () => decide(true) }, "Approve"), " ",
        h("button", { type: "button", id: "reject-button", class: "reject", onclick: () => decide(false) }, "Reject")),
      result));
}
